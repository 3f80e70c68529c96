// Package quorum evaluates a signed checkpoint against a tlog-policy and
// says precisely why it does or does not satisfy it.
//
// A checkpoint (c2sp.org/tlog-checkpoint) is a signed note carrying the
// log's Ed25519 signature and witness cosignatures (c2sp.org/tlog-cosignature,
// cosignature/v1). A policy (c2sp.org/tlog-policy) names the log's key, the
// witnesses, groups of witnesses and groups, and the quorum:
//
//	log vitalproof.example/ledger+1a2b3c4d+AU...
//	witness H1 h1.example/witness+0a1b2c3d+BA... https://h1.example/witness
//	witness H2 h2.example/witness+5e6f7a8b+BA... https://h2.example/witness
//	witness H3 h3.example/witness+9c8d7e6f+BA... https://h3.example/witness
//	group hospitals 2 H1 H2 H3
//	quorum hospitals
//
// [Check] returns a [Report]: the checkpoint's origin and tree, whether the
// log's key signed it, each witness's cosignature (with its timestamp), absent
// or invalid, and whether each group of the quorum is met. When the checkpoint
// fails the policy, the report's [Report.Reason] names what is missing:
//
//	quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (no cosignature), H3 (cosignature does not verify)
//
// The verdict is filippo.io/torchwood's (torchwood.ParsePolicy and
// torchwood.VerifyCheckpoint); each signature is checked with torchwood's
// cosignature verifier or golang.org/x/mod/sumdb/note's Ed25519 verifier.
// This package only explains the verdict: it never accepts a checkpoint that
// torchwood refuses.
//
// As with golang.org/x/mod/sumdb/note, signatures by keys the policy does not
// name are ignored, and a signature by a key the quorum counts that does not
// verify makes the whole checkpoint invalid, even if enough others verify.
package quorum

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
)

// Errors of [Check]; its errors wrap exactly one of them.
var (
	// ErrMalformedPolicy: the policy text does not parse.
	ErrMalformedPolicy = errors.New("malformed policy")
	// ErrMalformedCheckpoint: the input is not a signed note whose text is
	// a tlog-checkpoint.
	ErrMalformedCheckpoint = errors.New("malformed checkpoint")
	// ErrNotSatisfied: the checkpoint's signatures do not satisfy the
	// policy; the error says why and the report says it in detail.
	ErrNotSatisfied = errors.New("checkpoint does not satisfy the policy")
)

// SigState is what a checkpoint holds for one key of the policy.
type SigState int

const (
	// Missing: no signature by the key, nor under its name.
	Missing SigState = iota
	// Signed: a signature by the key that verifies.
	Signed
	// BadSignature: a signature with the key's name and key hash that does
	// not verify.
	BadSignature
	// OtherKey: a signature under the key's name but with another key
	// hash, so by another key than the policy's.
	OtherKey
)

// String returns "missing", "signed", "bad signature" or "other key".
func (s SigState) String() string {
	switch s {
	case Missing:
		return "missing"
	case Signed:
		return "signed"
	case BadSignature:
		return "bad signature"
	case OtherKey:
		return "other key"
	}
	return fmt.Sprintf("SigState(%d)", int(s))
}

// LogStatus is the log's signature for one "log" line of the policy.
type LogStatus struct {
	// KeyName and KeyHash identify the policy's log key. KeyName must be
	// the checkpoint's origin.
	KeyName string
	KeyHash uint32
	// State is what the checkpoint holds for the key.
	State SigState
	// OtherKeyHash is the key hash of the signature under KeyName when
	// State is OtherKey.
	OtherKeyHash uint32
}

// WitnessStatus is one witness of the policy and its cosignature.
type WitnessStatus struct {
	// Name is the witness's name in the policy.
	Name string
	// KeyName and KeyHash identify its cosignature/v1 key.
	KeyName string
	KeyHash uint32
	// State is what the checkpoint holds for the key.
	State SigState
	// OtherKeyHash is the key hash of the signature under KeyName when
	// State is OtherKey.
	OtherKeyHash uint32
	// Time is the cosignature's timestamp when State is Signed.
	Time time.Time
	// InQuorum reports whether the quorum counts the witness, directly or
	// through groups. Cosignatures of other witnesses are ignored.
	InQuorum bool
}

// Component is a witness or a group of the policy's quorum, evaluated.
type Component struct {
	// Name is the witness's or group's name in the policy.
	Name string
	// Witness is the witness's status, nil for a group.
	Witness *WitnessStatus
	// Threshold is how many of Members a group needs.
	Threshold int
	// Members are a group's witnesses and groups.
	Members []*Component
	// Met reports whether the witness cosigned (State Signed) or at least
	// Threshold members of the group are met.
	Met bool
}

// Have returns how many of a group's members are met.
func (c *Component) Have() int {
	n := 0
	for _, m := range c.Members {
		if m.Met {
			n++
		}
	}
	return n
}

// Report is a checkpoint evaluated against a policy.
type Report struct {
	// Origin, Size and RootHash are the checkpoint's.
	Origin   string
	Size     uint64
	RootHash log.Hash
	// Logs are the log keys of the policy, in order, each of which must
	// have signed.
	Logs []LogStatus
	// LogSigned reports whether the policy names a log key and every log
	// key signed (State Signed).
	LogSigned bool
	// OriginOK reports whether the policy names a log key and Origin is
	// the name of every log key.
	OriginOK bool
	// Witnesses are the policy's witnesses, in order.
	Witnesses []WitnessStatus
	// QuorumName is the quorum's witness or group name, "none" for a
	// policy that needs only the log's signature.
	QuorumName string
	// Quorum is the quorum, evaluated; nil for "quorum none". Its
	// components point into Witnesses.
	Quorum *Component
	// Satisfied is torchwood's verdict: the checkpoint satisfies the policy.
	Satisfied bool
	// Problems say, when Satisfied is false, everything that is wrong, one
	// sentence each, naming keys, witnesses and groups.
	Problems []string
}

// Check parses policy (see [ParsePolicy]) and evaluates signedCheckpoint
// against it (see [Policy.Check]).
func Check(policy, signedCheckpoint []byte) (*Report, error) {
	p, err := ParsePolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't check checkpoint: %w", err)
	}
	return p.Check(signedCheckpoint)
}

// Check evaluates signedCheckpoint against p. It returns the report with a
// nil error when the checkpoint satisfies p; the report with an error
// wrapping [ErrNotSatisfied] and the report's [Report.Reason] when it does
// not; and a nil report with an error wrapping [ErrMalformedCheckpoint]
// when signedCheckpoint is not a signed note carrying a tlog-checkpoint.
// Errors never include the note.
func (p *Policy) Check(signedCheckpoint []byte) (*Report, error) {
	r, problems, err := p.analyze(signedCheckpoint)
	if err != nil {
		return nil, err
	}
	_, _, verdict := torchwood.VerifyCheckpoint(signedCheckpoint, p.tw)
	if verdict == nil {
		r.Satisfied = true
		return r, nil
	}
	r.Problems = problems
	if len(r.Problems) == 0 {
		r.Problems = []string{fmt.Sprintf("torchwood refuses the checkpoint: %v", verdict)}
	}
	return r, fmt.Errorf("%w: %s", ErrNotSatisfied, r.Reason())
}

// analyze reads every signature of signedCheckpoint and returns the report
// without a verdict, and what keeps the checkpoint from satisfying p.
func (p *Policy) analyze(signedCheckpoint []byte) (*Report, []string, error) {
	// Opening the note with no known key yields every signature, unverified,
	// after the same syntax checks as torchwood's note.Open.
	_, err := note.Open(signedCheckpoint, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, nil, fmt.Errorf("%w: not a signed note", ErrMalformedCheckpoint)
	}
	n := unverified.Note
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the note's text is not a tlog-checkpoint", ErrMalformedCheckpoint)
	}
	r := &Report{Origin: c.Origin, Size: uint64(c.N), RootHash: log.Hash(c.Hash)}
	sigs := newSigSet(n)
	r.LogSigned, r.OriginOK = len(p.logs) > 0, len(p.logs) > 0
	for _, v := range p.logs {
		st, other := p.state(sigs, v)
		r.Logs = append(r.Logs, LogStatus{KeyName: v.Name(), KeyHash: v.KeyHash(), State: st, OtherKeyHash: other})
		r.LogSigned = r.LogSigned && st == Signed
		r.OriginOK = r.OriginOK && v.Name() == c.Origin
	}
	for _, w := range p.witnesses {
		st, other := p.state(sigs, w.verifier)
		ws := WitnessStatus{Name: w.name, KeyName: w.verifier.Name(), KeyHash: w.verifier.KeyHash(), State: st, OtherKeyHash: other}
		if st == Signed {
			ts, err := torchwood.CosignatureTimestamp(sigs.find(w.verifier.Name(), w.verifier.KeyHash()).sig)
			if err != nil {
				// Unreachable: a cosignature that verifies has a timestamp.
				return nil, nil, fmt.Errorf("%w: cosignature of witness %s without a timestamp", ErrMalformedCheckpoint, w.name)
			}
			ws.Time = time.Unix(ts, 0).UTC()
		}
		r.Witnesses = append(r.Witnesses, ws)
	}
	r.QuorumName = "none"
	if p.quorum != "" {
		r.QuorumName = p.quorum
		r.Quorum = p.evaluate(p.quorum, r, make(map[string]*Component))
	}
	return r, p.problems(r, sigs), nil
}

// evaluate builds the component named name, sharing components that appear
// in several groups, and marks the witnesses it reaches as in the quorum.
func (p *Policy) evaluate(name string, r *Report, done map[string]*Component) *Component {
	if c, ok := done[name]; ok {
		return c
	}
	pc := p.byName[name]
	c := &Component{Name: name, Threshold: pc.threshold}
	if pc.witness >= 0 {
		c.Witness = &r.Witnesses[pc.witness]
		c.Witness.InQuorum = true
		c.Met = c.Witness.State == Signed
	} else {
		for _, m := range pc.members {
			c.Members = append(c.Members, p.evaluate(m, r, done))
		}
		c.Met = c.Have() >= c.Threshold
	}
	done[name] = c
	return c
}

// problems lists what keeps the checkpoint from satisfying the policy, as
// far as the report shows it; it is empty when nothing does.
func (p *Policy) problems(r *Report, sigs *sigSet) []string {
	var out []string
	if len(p.logs) == 0 {
		out = append(out, "the policy has no log line, so nothing checks the checkpoint's origin")
	}
	for _, l := range r.Logs {
		switch l.State {
		case Missing:
			out = append(out, fmt.Sprintf("no signature by the log's key %s", keyID(l.KeyName, l.KeyHash)))
		case BadSignature:
			out = append(out, fmt.Sprintf("the log's signature by %s does not verify", keyID(l.KeyName, l.KeyHash)))
		case OtherKey:
			out = append(out, fmt.Sprintf("the log's signature is by key %s, not the policy's %s",
				keyID(l.KeyName, l.OtherKeyHash), keyID(l.KeyName, l.KeyHash)))
		}
	}
	seen := make(map[string]bool)
	for _, l := range r.Logs {
		if l.KeyName != r.Origin && !seen[l.KeyName] {
			seen[l.KeyName] = true
			out = append(out, fmt.Sprintf("origin %q is not the log's name %q", r.Origin, l.KeyName))
		}
	}
	// Signatures by keys torchwood's policy knows: note.Open checks the
	// first by each key and refuses the whole note if it does not verify.
	for _, s := range sigs.list {
		v, err := p.tw.Verifier(s.sig.Name, s.sig.Hash)
		var unknown *note.UnknownVerifierError
		switch {
		case errors.As(err, &unknown):
		case err != nil:
			out = append(out, fmt.Sprintf("the policy refuses the signature by %s: %v", keyID(s.sig.Name, s.sig.Hash), err))
		case !v.Verify([]byte(sigs.text), s.raw):
			if p.isLogKey(s.sig.Name, s.sig.Hash) {
				continue // said above
			}
			out = append(out, fmt.Sprintf("%s, and a bad signature by a key of the policy invalidates the checkpoint",
				p.badCosignature(s.sig.Name, s.sig.Hash)))
		}
	}
	if r.Quorum != nil && !r.Quorum.Met {
		out = append(out, "quorum not met: "+explain(r.Quorum, true))
	}
	return out
}

func (p *Policy) isLogKey(name string, hash uint32) bool {
	return slices.ContainsFunc(p.logs, func(v note.Verifier) bool { return v.Name() == name && v.KeyHash() == hash })
}

// badCosignature says whose cosignature does not verify.
func (p *Policy) badCosignature(name string, hash uint32) string {
	var names []string
	for _, w := range p.witnesses {
		if w.verifier.Name() == name && w.verifier.KeyHash() == hash {
			names = append(names, w.name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("the signature by %s does not verify", keyID(name, hash))
	}
	return fmt.Sprintf("the cosignature of witness %s does not verify", strings.Join(names, ", "))
}

// Reason returns the report's problems in one line, "" when the checkpoint
// satisfies the policy.
func (r *Report) Reason() string {
	if r.Satisfied {
		return ""
	}
	return strings.Join(r.Problems, "; ")
}

// Cosigners returns the names of the witnesses whose cosignatures verify,
// in policy order.
func (r *Report) Cosigners() []string {
	var out []string
	for _, w := range r.Witnesses {
		if w.State == Signed {
			out = append(out, w.Name)
		}
	}
	return out
}

// Summary returns one line: who signed and how the quorum was met, such as
// "cosigned by H1, H3 (quorum 2 of 3 met)", or "not satisfied: " and the
// reason.
func (r *Report) Summary() string {
	if !r.Satisfied {
		return "not satisfied: " + r.Reason()
	}
	who := "signed by the log"
	if c := r.Cosigners(); len(c) > 0 {
		who = "cosigned by " + strings.Join(c, ", ")
	}
	switch {
	case r.Quorum == nil:
		return who + " (quorum none)"
	case r.Quorum.Witness != nil:
		return fmt.Sprintf("%s (quorum %s met)", who, r.Quorum.Name)
	default:
		return fmt.Sprintf("%s (quorum %d of %d met)", who, r.Quorum.Threshold, len(r.Quorum.Members))
	}
}

// String returns the report on several lines: the checkpoint, each key's
// signature, each group of the quorum and the verdict.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint %q, tree size %d, root hash %s\n", r.Origin, r.Size, base64.StdEncoding.EncodeToString(r.RootHash[:]))
	for _, l := range r.Logs {
		fmt.Fprintf(&b, "log key %s: %s\n", keyID(l.KeyName, l.KeyHash), describe(l.State, l.OtherKeyHash, false))
	}
	for _, w := range r.Witnesses {
		s := describe(w.State, w.OtherKeyHash, true)
		if w.State == Signed {
			s += " at " + w.Time.Format(time.RFC3339)
		}
		if !w.InQuorum {
			s += " (not in the quorum)"
		}
		fmt.Fprintf(&b, "witness %s (key %s): %s\n", w.Name, keyID(w.KeyName, w.KeyHash), s)
	}
	if r.Quorum == nil {
		b.WriteString("quorum none: the log's signature is enough\n")
	} else {
		printed := make(map[*Component]bool)
		var walk func(c *Component)
		walk = func(c *Component) {
			if printed[c] || c.Witness != nil {
				return
			}
			printed[c] = true
			for _, m := range c.Members {
				walk(m)
			}
			kind := "group"
			if c == r.Quorum {
				kind = "quorum group"
			}
			fmt.Fprintf(&b, "%s %q needs %d of %s: %s\n", kind, c.Name, c.Threshold, memberNames(c), groupState(c))
		}
		if w := r.Quorum.Witness; w != nil {
			fmt.Fprintf(&b, "quorum witness %s: %s\n", r.Quorum.Name, describe(w.State, w.OtherKeyHash, true))
		}
		walk(r.Quorum)
	}
	if r.Satisfied {
		b.WriteString("policy satisfied: " + r.Summary() + "\n")
	} else {
		b.WriteString("policy NOT satisfied:\n")
		for _, p := range r.Problems {
			b.WriteString("  - " + p + "\n")
		}
	}
	return b.String()
}

// groupState says whether group c is met, by whom, or how many it lacks.
func groupState(c *Component) string {
	var met []string
	for _, m := range c.Members {
		if m.Met {
			met = append(met, m.Name)
		}
	}
	if c.Met {
		return "met by " + strings.Join(met, ", ")
	}
	s := fmt.Sprintf("not met, %d more needed", c.Threshold-len(met))
	if len(met) > 0 {
		s += " (met by " + strings.Join(met, ", ") + ")"
	}
	return s
}

// explain says why c is not met: for a group, what it needs, which members
// are met and why each other member is not, recursively. top includes the
// group's name.
func explain(c *Component, top bool) string {
	if c.Witness != nil {
		return fmt.Sprintf("witness %s: %s", c.Name, describe(c.Witness.State, c.Witness.OtherKeyHash, true))
	}
	var met, missing []string
	onlyWitnesses := true
	for _, m := range c.Members {
		if m.Witness == nil {
			onlyWitnesses = false
		}
		switch {
		case m.Met:
			met = append(met, m.Name)
		case m.Witness != nil:
			missing = append(missing, fmt.Sprintf("%s (%s)", m.Name, describe(m.Witness.State, m.Witness.OtherKeyHash, true)))
		default:
			missing = append(missing, fmt.Sprintf("%s (%s)", m.Name, explain(m, false)))
		}
	}
	var b strings.Builder
	if top {
		fmt.Fprintf(&b, "group %q ", c.Name)
	}
	fmt.Fprintf(&b, "needs %d of %s; ", c.Threshold, memberNames(c))
	label := "cosigned by "
	if !onlyWitnesses {
		label = "met: "
	}
	if len(met) == 0 {
		met = []string{"none"}
	}
	b.WriteString(label + strings.Join(met, ", "))
	if len(missing) > 0 {
		b.WriteString("; missing " + strings.Join(missing, ", "))
	}
	return b.String()
}

func memberNames(c *Component) string {
	names := make([]string, len(c.Members))
	for i, m := range c.Members {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

// describe says what a key's state means, for a log signature or a witness
// cosignature.
func describe(s SigState, otherHash uint32, cosignature bool) string {
	sig := "signature"
	if cosignature {
		sig = "cosignature"
	}
	switch s {
	case Signed:
		if cosignature {
			return "cosigned"
		}
		return "signed"
	case BadSignature:
		return sig + " does not verify"
	case OtherKey:
		return fmt.Sprintf("%s by another key of that name, key hash %08x", sig, otherHash)
	}
	return "no " + sig
}

// keyID names a key as "name"+hash, the first fields of its vkey.
func keyID(name string, hash uint32) string { return fmt.Sprintf("%q+%08x", name, hash) }

// sigSet is a note's signatures, the first by each key, as note.Open would
// check them.
type sigSet struct {
	text string
	list []sigEntry
}

type sigEntry struct {
	sig note.Signature
	raw []byte // the signature after the key hash
}

func newSigSet(n *note.Note) *sigSet {
	s := &sigSet{text: n.Text}
	for _, sig := range n.UnverifiedSigs {
		if s.find(sig.Name, sig.Hash) != nil {
			continue
		}
		// note.Open has checked the base64 and that it holds more than a
		// key hash.
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		if err != nil || len(raw) < 5 {
			continue
		}
		s.list = append(s.list, sigEntry{sig: sig, raw: raw[4:]})
	}
	return s
}

func (s *sigSet) find(name string, hash uint32) *sigEntry {
	for i := range s.list {
		if s.list[i].sig.Name == name && s.list[i].sig.Hash == hash {
			return &s.list[i]
		}
	}
	return nil
}

// state returns what the note holds for v's key and, for OtherKey, the key
// hash of the signature under v's name. A signature by another key of the
// policy with the same name is that key's, not v's under another key.
func (p *Policy) state(s *sigSet, v note.Verifier) (SigState, uint32) {
	if e := s.find(v.Name(), v.KeyHash()); e != nil {
		if v.Verify([]byte(s.text), e.raw) {
			return Signed, 0
		}
		return BadSignature, 0
	}
	for _, e := range s.list {
		if e.sig.Name == v.Name() && !p.isPolicyKey(e.sig.Name, e.sig.Hash) {
			return OtherKey, e.sig.Hash
		}
	}
	return Missing, 0
}

// isPolicyKey reports whether the policy names the key (name, hash).
func (p *Policy) isPolicyKey(name string, hash uint32) bool {
	return p.isLogKey(name, hash) || slices.ContainsFunc(p.witnesses, func(w policyWitness) bool {
		return w.verifier.Name() == name && w.verifier.KeyHash() == hash
	})
}
