package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/torchwood"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// maxPolicySize bounds the tlog-policy text Verify accepts.
const maxPolicySize = 64 << 10

// Verify checks bundle offline against policy, a tlog-policy text naming the
// log's key and its witnesses' quorum, with the verifying keys of ks, and
// returns what the bundle proves. It makes the checks listed in the package
// documentation, in that order, and stops at the first failure with an
// error wrapping the sentinel of that check. ctx bounds the key store's
// I/O.
func Verify(ctx context.Context, bundle, policy []byte, ks KeyStore, opts ...VerifyOption) (*Result, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	b, err := Parse(bundle)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w", err)
	}
	pol, err := parsePolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: %v", ErrPolicy, err)
	}
	cp, n, err := torchwood.VerifyCheckpoint(b.Checkpoint, pol)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: %v", ErrCheckpoint, err)
	}
	if cp.Extension != "" {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: checkpoint has extension lines", ErrCheckpoint)
	}
	cosigned, hasTime := earliestCosignature(pol, n.Sigs)
	// A plain log cannot show that no later link exists: "after head" is
	// allowed only if the period had not ended when the checkpoint was
	// cosigned.
	head := func(last *wearables.Entry) error {
		if !hasTime {
			return fmt.Errorf("%w: no entry after the last one (seq %d), and the checkpoint carries no cosignature time to show that the period had not ended", ErrIncomplete, last.Header.Seq)
		}
		if cosigned >= b.PeriodEnd {
			return fmt.Errorf("%w: no entry after the last one (seq %d), yet the period ended before the checkpoint was cosigned", ErrIncomplete, last.Header.Seq)
		}
		return nil
	}
	c, err := check(b, tree{size: uint64(cp.N), hash: cp.Hash}, o.registrar, head)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w", err)
	}
	k, err := ks.VerifyingKey(ctx, b.Proof.VerifyingKey)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, fmt.Errorf("couldn't verify audit bundle: %w", err)
		}
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: %v", ErrUnknownKey, err)
	}
	if k.Meta.Circuit != b.Proof.Circuit {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: the key with this fingerprint is for circuit %q, not %q", ErrKeyMismatch, k.Meta.Circuit, b.Proof.Circuit)
	}
	if k.Unsafe() != b.Development {
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: the bundle says its keys are %s keys, the key store says %s", ErrKeyMismatch, setupName(b.Development), setupName(k.Unsafe()))
	}
	if err := prove.Verify(k, c.stmt, b.Proof); err != nil {
		if err.Error() == ErrProof.Error() {
			return nil, fmt.Errorf("couldn't verify audit bundle: %w against the public inputs recomputed from the entries and the statement", ErrProof)
		}
		return nil, fmt.Errorf("couldn't verify audit bundle: %w: %v", ErrProof, err)
	}
	r := c.result(b)
	r.Origin, r.TreeSize = cp.Origin, uint64(cp.N)
	r.HeadClaimed = b.After == nil
	if hasTime {
		r.CosignedAt = time.Unix(cosigned, 0).UTC()
	}
	r.RegistrarVerified = o.registrar != nil
	r.Unsafe = k.Unsafe()
	slog.DebugContext(ctx, "verified audit bundle", "device", r.DeviceID, "metric", r.Metric, "statement", r.Kinds.String(),
		"entries", r.Entries, "circuit", r.Circuit, "unsafe_keys", r.Unsafe, "head_claimed", r.HeadClaimed)
	return r, nil
}

func setupName(development bool) string {
	if development {
		return keysDevelopment
	}
	return keysCeremony
}

// parsePolicy parses tlog-policy text with torchwood, after refusing what
// torchwood v0.9.0's parser panics on (a line of white space other than
// spaces and tabs).
func parsePolicy(text []byte) (torchwood.Policy, error) {
	if len(text) > maxPolicySize {
		return nil, fmt.Errorf("larger than %d bytes", maxPolicySize)
	}
	for i, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if len(strings.Fields(line)) == 0 && strings.Trim(line, " \t") != "" {
			return nil, fmt.Errorf("line %d: white space other than spaces and tabs", i+1)
		}
	}
	return torchwood.ParsePolicy(text)
}

// earliestCosignature returns the earliest timestamp of the verified
// cosignatures among sigs (c2sp.org/tlog-cosignature, by the policy's
// witnesses), and false if there is none.
func earliestCosignature(pol torchwood.Policy, sigs []note.Signature) (int64, bool) {
	var earliest int64
	found := false
	for _, sig := range sigs {
		v, err := pol.Verifier(sig.Name, sig.Hash)
		if err != nil {
			continue
		}
		if _, ok := v.(*torchwood.CosignatureVerifier); !ok {
			continue
		}
		t, err := torchwood.CosignatureTimestamp(sig)
		if err != nil {
			continue
		}
		if !found || t < earliest {
			earliest, found = t, true
		}
	}
	return earliest, found
}

// entryName names the i-th (0-based) of n entries in errors, counting from 1.
func entryName(i, n int) string { return fmt.Sprintf("entry %d of %d", i+1, n) }

// tree is the tree a checkpoint commits to.
type tree struct {
	size uint64
	hash [32]byte
}

// checked is what check learns of a bundle.
type checked struct {
	reg     *wearables.RegistrationRecord
	before  *wearables.Entry
	entries []*wearables.Entry
	after   *wearables.Entry
	stmt    *statement.Statement
}

func (c *checked) last() *wearables.Entry { return c.entries[len(c.entries)-1] }

// check makes the checks that need neither the policy nor the keys, in the
// order of the package documentation: inclusion in t, registration (signed
// by registrar, if not nil), attestation and signatures, completeness and
// the statement. When the bundle has no after-bracket, head decides whether
// that is allowed (it needs the checkpoint's verified time); nil allows it.
func check(b *Bundle, t tree, registrar note.Verifier, head func(last *wearables.Entry) error) (*checked, error) {
	if err := inclusion(b, t); err != nil {
		return nil, err
	}
	c := &checked{}
	var err error
	if c.reg, err = registration(b, registrar); err != nil {
		return nil, err
	}
	if err := c.signatures(b); err != nil {
		return nil, err
	}
	if err := c.completeness(b, head); err != nil {
		return nil, err
	}
	if err := c.statement(b); err != nil {
		return nil, err
	}
	return c, nil
}

// inclusion checks every leaf's inclusion proof against t.
func inclusion(b *Bundle, t tree) error {
	check := func(what string, l *Leaf) error {
		if l.Index >= t.size {
			return fmt.Errorf("%w: %s: index %d is beyond the checkpoint's tree of size %d", ErrInclusion, what, l.Index, t.size)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(l.Bytes)
		hashes := make([][]byte, len(l.Proof))
		for i := range l.Proof {
			hashes[i] = l.Proof[i][:]
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, l.Index, t.size, leaf, hashes, t.hash[:]); err != nil {
			return fmt.Errorf("%w: %s at index %d in the tree of size %d", ErrInclusion, what, l.Index, t.size)
		}
		return nil
	}
	if err := check("registration record", &b.Registration); err != nil {
		return err
	}
	if b.Before != nil {
		if err := check("entry before the period", b.Before); err != nil {
			return err
		}
	}
	if err := eachEntry(len(b.Entries), func(i int) error {
		return check(entryName(i, len(b.Entries)), &b.Entries[i])
	}); err != nil {
		return err
	}
	if b.After != nil {
		if err := check("entry after the period", b.After); err != nil {
			return err
		}
	}
	return nil
}

// parallelMin is the number of entries from which eachEntry spreads the
// work over goroutines.
const parallelMin = 32

// eachEntry calls f for each of n entries, on up to GOMAXPROCS goroutines,
// and returns the error of the first entry, in order, for which f failed,
// as a sequential loop would. f must be safe to call concurrently for
// different entries. Checking an entry (its inclusion proof or its
// signature) is independent of the others, and a bundle may hold thousands.
func eachEntry(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = f(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		// Entries before a failed one were all checked: workers take
		// indices in order and finish the one they took.
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// registration checks that the registration record is for the bundle's
// device and, if registrar is not nil, signed by it.
func registration(b *Bundle, registrar note.Verifier) (*wearables.RegistrationRecord, error) {
	var rr *wearables.RegistrationRecord
	var err error
	if registrar != nil {
		rr, err = wearables.VerifyRegistration(b.Registration.Bytes, registrar)
	} else {
		rr, err = wearables.ParseRegistration(b.Registration.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistration, err)
	}
	if rr.Registration.DeviceID != b.DeviceID {
		return nil, fmt.Errorf("%w: the record registers device %q, the bundle audits device %q", ErrRegistration, rr.Registration.DeviceID, b.DeviceID)
	}
	return rr, nil
}

// signatures parses the entries and brackets and checks that each is a
// device-attested entry of the bundle's device signed by the registered
// key.
func (c *checked) signatures(b *Bundle) error {
	v, err := c.reg.Registration.Verifier()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRegistration, err)
	}
	verify := func(what string, l *Leaf) (*wearables.Entry, error) {
		// The common case first: a well-formed entry signed by the
		// registered key; then each failure's precise reason.
		if e, err := wearables.VerifyEntry(l.Bytes, v); err == nil &&
			e.Header.Attestation == wearables.AttestDevice && e.Header.DeviceID == b.DeviceID {
			return e, nil
		}
		e, err := wearables.ParseEntry(l.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
		}
		if e.Header.Attestation != wearables.AttestDevice {
			return nil, fmt.Errorf("%w: %s (seq %d) has attestation %q", ErrAttestation, what, e.Header.Seq, e.Header.Attestation)
		}
		if e.Header.DeviceID != b.DeviceID {
			return nil, fmt.Errorf("%w: %s is an entry of device %q, not of the registered device %q", ErrSignature, what, e.Header.DeviceID, b.DeviceID)
		}
		if _, err := wearables.VerifyEntry(l.Bytes, v); err != nil {
			return nil, fmt.Errorf("%w: %s (seq %d)", ErrSignature, what, e.Header.Seq)
		}
		return e, nil
	}
	if b.Before != nil {
		if c.before, err = verify("entry before the period", b.Before); err != nil {
			return err
		}
	}
	c.entries = make([]*wearables.Entry, len(b.Entries))
	if err := eachEntry(len(b.Entries), func(i int) error {
		var err error
		c.entries[i], err = verify(entryName(i, len(b.Entries)), &b.Entries[i])
		return err
	}); err != nil {
		return err
	}
	if b.After != nil {
		if c.after, err = verify("entry after the period", b.After); err != nil {
			return err
		}
	}
	return nil
}

// completeness checks that the entries and brackets are consecutive links
// of the device's chain for the bundle's metric, with the brackets outside
// the period.
func (c *checked) completeness(b *Bundle, head func(last *wearables.Entry) error) error {
	chain := b.DeviceID + "/" + b.Metric + "/" + string(wearables.AttestDevice)
	link := func(what string, prev, e *wearables.Entry) error {
		if e.Header.ChainKey() != chain {
			return fmt.Errorf("%w: %s is of chain %q, not %q", ErrIncomplete, what, e.Header.ChainKey(), chain)
		}
		if prev == nil {
			return nil
		}
		if e.Header.Seq != prev.Header.Seq+1 {
			return fmt.Errorf("%w: %s has seq %d, but the link before it has seq %d", ErrIncomplete, what, e.Header.Seq, prev.Header.Seq)
		}
		if e.Header.Prev != prev.LeafHash() {
			return fmt.Errorf("%w: %s (seq %d) does not link to the entry before it", ErrIncomplete, what, e.Header.Seq)
		}
		return nil
	}
	first := c.entries[0]
	switch {
	case c.before == nil && first.Header.Seq != 1:
		return fmt.Errorf("%w: the first entry has seq %d, and the entry before it (the bracket at the period's start) is missing", ErrIncomplete, first.Header.Seq)
	case c.before != nil:
		if err := link("the entry before the period", nil, c.before); err != nil {
			return err
		}
		if c.before.Header.WindowEnd > b.PeriodStart {
			return fmt.Errorf("%w: the entry before the period (seq %d) ends after the period starts", ErrIncomplete, c.before.Header.Seq)
		}
	}
	prev := c.before
	for i, e := range c.entries {
		if err := link(entryName(i, len(c.entries)), prev, e); err != nil {
			return err
		}
		prev = e
	}
	if c.after != nil {
		if err := link("the entry after the period", prev, c.after); err != nil {
			return err
		}
		if c.after.Header.WindowStart < b.PeriodEnd {
			return fmt.Errorf("%w: the entry after the period (seq %d) starts before the period ends", ErrIncomplete, c.after.Header.Seq)
		}
	} else if head != nil {
		if err := head(prev); err != nil {
			return err
		}
	}
	return nil
}

// statement builds the statement the proof is about from the entries and
// checks that it is well formed and fits the proof's circuit.
func (c *checked) statement(b *Bundle) error {
	m, ok := wearables.MetricByCode(b.Metric)
	if !ok {
		return fmt.Errorf("%w: unknown metric", ErrStatement)
	}
	s := &statement.Statement{
		Kinds: b.Kinds, Params: b.Params, DeviceID: b.DeviceID, Metric: m.ID,
		PeriodStart: b.PeriodStart, PeriodEnd: b.PeriodEnd,
	}
	for _, e := range c.entries {
		h := &e.Header
		s.Entries = append(s.Entries, statement.Entry{Commitment: h.Commitment, WindowStart: h.WindowStart, WindowEnd: h.WindowEnd, Count: h.Count})
	}
	if err := s.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrStatement, err)
	}
	shape, kinds, err := circuit.ParseID(b.Proof.Circuit)
	if err != nil {
		return fmt.Errorf("%w: the proof's circuit ID does not parse", ErrStatement)
	}
	if kinds != b.Kinds {
		return fmt.Errorf("%w: the statement is %s but the circuit proves %s", ErrStatement, b.Kinds, kinds)
	}
	if len(s.Entries) > shape.Entries {
		return fmt.Errorf("%w: %d entries, more than the circuit's %d", ErrStatement, len(s.Entries), shape.Entries)
	}
	for i, e := range s.Entries {
		if e.Count > shape.PerEntry {
			return fmt.Errorf("%w: %s has %d readings, more than the circuit's %d", ErrStatement, entryName(i, len(s.Entries)), e.Count, shape.PerEntry)
		}
	}
	// The rest of what the public inputs need: commitments that are field
	// elements. The proof's verification computes the inputs themselves.
	for i, e := range s.Entries {
		var x fr.Element
		if err := x.SetBytesCanonical(e.Commitment[:]); err != nil {
			return fmt.Errorf("%w: %s: the commitment is not a canonical field element", ErrStatement, entryName(i, len(s.Entries)))
		}
	}
	c.stmt = s
	return nil
}

// result returns what the checked bundle proves, less what only Verify
// knows (checkpoint, keys).
func (c *checked) result(b *Bundle) *Result {
	r := &Result{
		Kinds: b.Kinds, Params: b.Params, DeviceID: b.DeviceID, Metric: b.Metric,
		PeriodStart: time.Unix(b.PeriodStart, 0).UTC(), PeriodEnd: time.Unix(b.PeriodEnd, 0).UTC(),
		Entries: len(c.entries), FirstSeq: c.entries[0].Header.Seq, LastSeq: c.last().Header.Seq,
		Registration: c.reg.Registration, Registrar: c.reg.Registrar,
		Circuit: b.Proof.Circuit, VerifyingKey: b.Proof.VerifyingKey,
	}
	for _, e := range c.entries {
		r.Readings += e.Header.Count
	}
	return r
}
