// Package checkpoint signs and opens the log's checkpoints: C2SP
// tlog-checkpoint bodies (c2sp.org/tlog-checkpoint) in Ed25519 signed notes
// (c2sp.org/signed-note, golang.org/x/mod/sumdb/note).
//
// A signed checkpoint of a tree of 923748 leaves looks like this:
//
//	vitalproof.example/log
//	923748
//	nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=
//
//	— vitalproof.example/log Az3grrlC...base64(key ID || Ed25519 signature)...
//
// The body is the origin (the log's name), the tree size in decimal without
// leading zeros and the base64 RFC 6962 root hash, each on its own line. It
// carries no extension lines. The signing key's name is the origin, so a
// verifier key ("vkey", see [note.NewVerifier]) names the log it verifies, as
// c2sp.org/tlog-policy expects.
//
// Keys are note key strings: [GenerateKey] makes a pair, [NewSigner] loads the
// private one, and [LoadOrCreateKey] keeps it in a file of mode 0600 holding
// the private key string and a newline.
//
// [Publisher] signs the log's latest tree on demand, re-signing only when the
// tree grew and only after checking that the new tree extends the last one it
// signed. Witness cosignatures (c2sp.org/tlog-cosignature) are added to these
// notes by another layer; [Open] ignores signatures from keys it was not
// given.
package checkpoint

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vitalproof/vitalproof/log"
)

var (
	errMalformedCheckpoint = errors.New("malformed checkpoint")
	errExtension           = errors.New("checkpoint has extension lines")
	errBadOrigin           = errors.New("invalid origin: must be non-empty, without spaces or '+'")
)

// GenerateKey returns a new Ed25519 key pair for the log named origin: the
// private key string (keep it secret) and the verifier key string (publish
// it; it goes in the "log" line of a tlog-policy).
func GenerateKey(origin string) (skey, vkey string, err error) {
	if !validOrigin(origin) {
		return "", "", errBadOrigin
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate checkpoint key: %w", err)
	}
	return skey, vkey, nil
}

// A Signer signs checkpoints of one log with its Ed25519 note key. It is safe
// for concurrent use.
type Signer struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// NewSigner returns a Signer for the private key string skey (as returned by
// [GenerateKey]). The key's name is the checkpoints' origin.
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	if !validOrigin(s.Name()) {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", errBadOrigin)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	if v.KeyHash() != s.KeyHash() {
		return nil, errors.New("couldn't load checkpoint key: key hash mismatch")
	}
	return &Signer{signer: s, verifier: v, vkey: vkey}, nil
}

// verifierKey derives the verifier key string of the Ed25519 private key
// string skey, which note.NewSigner has already validated.
func verifierKey(skey string) (string, error) {
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return "", errors.New("malformed private key")
	}
	key, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an Ed25519 private key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(fields[2], pub)
}

// Origin returns the origin of the checkpoints s signs, its key's name.
func (s *Signer) Origin() string { return s.signer.Name() }

// VerifierKey returns the verifier key string of s, for a tlog-policy "log"
// line.
func (s *Signer) VerifierKey() string { return s.vkey }

// Verifier returns the note verifier of s.
func (s *Signer) Verifier() note.Verifier { return s.verifier }

// Sign returns the signed checkpoint of root.
func (s *Signer) Sign(root log.Root) ([]byte, error) {
	body, err := Format(s.Origin(), root)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: string(body)}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return signed, nil
}

// Format returns the unsigned checkpoint body of root for the log origin.
func Format(origin string, root log.Root) ([]byte, error) {
	if !validOrigin(origin) {
		return nil, errBadOrigin
	}
	if root.Size > math.MaxInt64 {
		return nil, fmt.Errorf("tree size %d is too large for a checkpoint", root.Size)
	}
	c := torchwood.Checkpoint{Origin: origin, Tree: tlog.Tree{N: int64(root.Size), Hash: tlog.Hash(root.Hash)}}
	return []byte(c.String()), nil
}

// Open verifies that signed is a checkpoint signed by v, whose name must be
// the checkpoint's origin, and returns the tree it commits to and its origin.
// Signatures by other keys (witness cosignatures) are ignored. A bad or
// missing signature yields an error wrapping [note.UnverifiedNoteError] or
// [note.InvalidSignatureError]; a checkpoint body with extension lines is
// refused.
func Open(signed []byte, v note.Verifier) (root log.Root, origin string, err error) {
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.Name()), torchwood.SingleVerifierPolicy(v))
	c, _, err := torchwood.VerifyCheckpoint(signed, policy)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return log.Root{}, "", fmt.Errorf("couldn't open checkpoint: %w", err)
		}
		return log.Root{}, "", fmt.Errorf("couldn't open checkpoint: %w", errMalformedCheckpoint)
	}
	if c.Extension != "" {
		return log.Root{}, "", fmt.Errorf("couldn't open checkpoint: %w", errExtension)
	}
	return log.Root{Size: uint64(c.N), Hash: log.Hash(c.Hash)}, c.Origin, nil
}

// validOrigin reports whether origin can be a checkpoint origin and a note
// key name: non-empty valid UTF-8 without spaces or plus signs.
func validOrigin(origin string) bool {
	return origin != "" && utf8.ValidString(origin) &&
		!strings.ContainsFunc(origin, unicode.IsSpace) && !strings.Contains(origin, "+")
}
