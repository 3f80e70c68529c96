package audit

import (
	"errors"
	"fmt"
	"slices"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// Parts are what a bundle is built from. A gateway's audit job has the
// statement it proved (whose entries are the public parts of Entries), the
// proof and whether its keys are development keys; it gets the registration
// record, the brackets and every inclusion proof from the ledger, all
// against one signed checkpoint.
type Parts struct {
	Statement *statement.Statement
	Proof     *prove.Proof
	// Development is true for development keys ([prove.Prover.Unsafe]).
	Development bool
	// Registration is the device's registration record.
	Registration Leaf
	// Before is the entry just before the first, nil if the first has seq 1.
	Before *Leaf
	// Entries are the statement's entries in chain order.
	Entries []Leaf
	// After is the entry just after the last, or nil if the last is the
	// chain's head at the checkpoint; [Verify] then accepts the bundle only
	// if the checkpoint was cosigned before the period's end.
	After *Leaf
	// Checkpoint is the signed checkpoint of the tree every proof is in.
	Checkpoint []byte
}

// Build assembles and encodes the bundle of p. Before it encodes anything it
// checks what needs neither the policy nor the verifying key: that every
// inclusion proof verifies against the checkpoint's tree (whose signatures
// it does not check), that the registration record is for the statement's
// device, that every entry is device-attested and signed by the registered
// key, that the entries and brackets are consecutive links of the device's
// chain bracketing the period, and that the statement's entries are the
// entries' public parts. A gateway that holds the policy and its keys should
// also [Verify] the result before handing it out. Errors wrap the sentinels
// that Verify uses.
func Build(p *Parts) ([]byte, error) {
	s := p.Statement
	if s == nil || p.Proof == nil {
		return nil, fmt.Errorf("couldn't build audit bundle: %w: statement or proof missing", ErrMalformed)
	}
	m, ok := wearables.MetricByID(s.Metric)
	if !ok {
		return nil, fmt.Errorf("couldn't build audit bundle: %w: unknown metric", ErrStatement)
	}
	b := &Bundle{
		Kinds: s.Kinds, Params: s.Params, DeviceID: s.DeviceID, Metric: m.Code,
		PeriodStart: s.PeriodStart, PeriodEnd: s.PeriodEnd,
		Development: p.Development, Proof: p.Proof,
		Registration: p.Registration, Before: p.Before, Entries: p.Entries, After: p.After,
		Checkpoint: p.Checkpoint,
	}
	if err := b.checkSyntax(); err != nil {
		return nil, fmt.Errorf("couldn't build audit bundle: %w", err)
	}
	t, err := unverifiedTree(p.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("couldn't build audit bundle: %w", err)
	}
	c, err := check(b, t, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't build audit bundle: %w", err)
	}
	if !slices.Equal(c.stmt.Entries, s.Entries) {
		return nil, fmt.Errorf("couldn't build audit bundle: %w: the statement's entries are not the public parts of the bundle's entries", ErrStatement)
	}
	out, err := b.Marshal()
	if err != nil {
		return nil, fmt.Errorf("couldn't build audit bundle: %w", err)
	}
	return out, nil
}

// unverifiedTree returns the tree of a signed checkpoint without checking
// its signatures.
func unverifiedTree(signed []byte) (tree, error) {
	_, err := note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return tree{}, fmt.Errorf("%w: not a signed note", ErrCheckpoint)
	}
	cp, err := torchwood.ParseCheckpoint(unverified.Note.Text)
	if err != nil {
		return tree{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	return tree{size: uint64(cp.N), hash: cp.Hash}, nil
}
