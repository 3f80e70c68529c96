package provenance

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/wearables"
)

// An Approval is a member hospital's signed vote to admit a manufacturer to
// the consortium or to suspend it. The ledger appends each approval to the
// log, so that who admitted whom is public and cannot be rewritten, and
// acts once a quorum of hospitals approved (as the Matter ecosystem's
// compliance ledger admits vendors through a quorum of trustees).
//
// # Encoding (approval format v1)
//
// An approval is a signed note (C2SP signed-note) whose text is exactly
// these six lines:
//
//	vitalproof/approval/v1
//	manufacturer <manufacturer ID>
//	action admit|suspend
//	key <base64 of the manufacturer's 32-byte Ed25519 public key>
//	hospital <hospital ID>
//	time <Unix seconds>
//
// followed by a blank line and exactly one signature line, by the
// hospital's key (key name: the hospital ID), the key the hospital was
// admitted with. The key line binds the vote to the key the manufacturer
// was proposed with.
type Approval struct {
	Manufacturer string
	Action       ApprovalAction
	PublicKey    ed25519.PublicKey
	Hospital     string
	Time         int64
}

// ApprovalAction is what an approval votes for.
type ApprovalAction string

// Approval actions.
const (
	ActionAdmit   ApprovalAction = "admit"
	ActionSuspend ApprovalAction = "suspend"
)

const (
	approvalMagic = "vitalproof/approval/v1"
	// MaxApprovalSize bounds an approval's encoding.
	MaxApprovalSize = 1024
)

var errMalformedApproval = errors.New("malformed approval")

// Body returns the approval's note text.
func (a *Approval) Body() ([]byte, error) {
	if !wearables.ValidID(a.Manufacturer) || !wearables.ValidID(a.Hospital) {
		return nil, fmt.Errorf("%w: manufacturer and hospital must be registry IDs", errMalformedApproval)
	}
	if a.Action != ActionAdmit && a.Action != ActionSuspend {
		return nil, fmt.Errorf("%w: action must be admit or suspend", errMalformedApproval)
	}
	if len(a.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key must be a 32-byte Ed25519 public key", errMalformedApproval)
	}
	if a.Time < 0 {
		return nil, fmt.Errorf("%w: time must not be before 1970", errMalformedApproval)
	}
	return fmt.Appendf(nil, "%s\nmanufacturer %s\naction %s\nkey %s\nhospital %s\ntime %d\n",
		approvalMagic, a.Manufacturer, a.Action, base64.StdEncoding.EncodeToString(a.PublicKey), a.Hospital, a.Time), nil
}

// Sign signs the approval with the hospital's key and returns its bytes.
func (a *Approval) Sign(s note.Signer) ([]byte, error) {
	if s.Name() != a.Hospital {
		return nil, fmt.Errorf("couldn't sign approval: key is named %q, not the hospital %q", s.Name(), a.Hospital)
	}
	body, err := a.Body()
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(body)}, s)
}

// ParseApproval parses an approval and verifies its one signature with v,
// the key of the hospital it names. It accepts only the canonical encoding.
func ParseApproval(b []byte, v note.Verifier) (*Approval, error) {
	if len(b) > MaxApprovalSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformedApproval, MaxApprovalSize)
	}
	n, err := note.Open(b, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("approval does not verify with the hospital's key: %w", err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return nil, fmt.Errorf("%w: want exactly one signature", errMalformedApproval)
	}
	a, err := parseApprovalBody(n.Text)
	if err != nil {
		return nil, err
	}
	if a.Hospital != v.Name() {
		return nil, fmt.Errorf("%w: names hospital %q but is signed by %q", errMalformedApproval, a.Hospital, v.Name())
	}
	// Canonical: the text re-encodes the same, and one signature line follows.
	body, err := a.Body()
	if err != nil {
		return nil, err
	}
	if string(body) != n.Text || bytes.Count(b[len(body):], []byte("\n")) != 2 {
		return nil, fmt.Errorf("%w: not in canonical form", errMalformedApproval)
	}
	return a, nil
}

func parseApprovalBody(text string) (*Approval, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	want := []string{"", "manufacturer", "action", "key", "hospital", "time"}
	if len(lines) != len(want) || lines[0] != approvalMagic {
		return nil, fmt.Errorf("%w: want the %s header and five lines", errMalformedApproval, approvalMagic)
	}
	vals := make([]string, len(want))
	for i := 1; i < len(lines); i++ {
		k, v, ok := strings.Cut(lines[i], " ")
		if !ok || k != want[i] || v == "" {
			return nil, fmt.Errorf("%w: line %d must be %q", errMalformedApproval, i+1, want[i])
		}
		vals[i] = v
	}
	key, err := base64.StdEncoding.DecodeString(vals[3])
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key must be a base64 32-byte Ed25519 public key", errMalformedApproval)
	}
	t, err := strconv.ParseInt(vals[5], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: time must be Unix seconds", errMalformedApproval)
	}
	a := &Approval{Manufacturer: vals[1], Action: ApprovalAction(vals[2]), PublicKey: key, Hospital: vals[4], Time: t}
	if _, err := a.Body(); err != nil {
		return nil, err
	}
	return a, nil
}
