package audits

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"filippo.io/torchwood"
	"github.com/consensys/gnark/constraint"

	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

func refusal(kind provenance.Kind, field, format string, args ...any) *provenance.Error {
	return &provenance.Error{Kind: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// run proves j's statement and builds its bundle.
func (s *Service) run(ctx context.Context, j *Job) ([]byte, error) {
	r := &j.Request
	metric, _ := wearables.MetricByCode(r.Metric)

	s.progress(ctx, j, 5, "collecting the period's batches from the private store")
	before, batches, after, err := s.cfg.Store.PeriodBatches(ctx, r.DeviceID, r.Metric, r.PeriodStart, r.PeriodEnd)
	if err != nil {
		return nil, err
	}
	if len(batches) == 0 {
		return nil, refusal(provenance.KindNotFound, "", "this gateway holds no device-attested %s batch of device %s in the period", r.Metric, r.DeviceID)
	}
	for i := range batches {
		b := &batches[i]
		if !b.Logged {
			return nil, refusal(provenance.KindPending, "", "batch %d of the period (seq %d) has no receipt yet; ask again once it is logged", i, b.Entry.Header.Seq)
		}
		if i > 0 && b.Entry.Header.Seq != batches[i-1].Entry.Header.Seq+1 {
			return nil, refusal(provenance.KindConflict, "", "this gateway lacks the device's batch of seq %d (between %d and %d): the chain cannot be shown complete",
				batches[i-1].Entry.Header.Seq+1, batches[i-1].Entry.Header.Seq, b.Entry.Header.Seq)
		}
	}
	first := batches[0].Entry.Header.Seq
	if first > 1 && (before == nil || before.Entry.Header.Seq != first-1 || !before.Logged) {
		return nil, refusal(provenance.KindConflict, "", "this gateway lacks the logged batch just before the period (seq %d), which shows that none was left out", first-1)
	}
	if first == 1 {
		before = nil
	}
	last := batches[len(batches)-1].Entry.Header.Seq
	if after != nil && (after.Entry.Header.Seq != last+1 || !after.Logged) {
		after = nil // the chain's head, as far as this gateway knows
	}

	st := &statement.Statement{Kinds: r.Kinds, Params: r.Params, DeviceID: r.DeviceID, Metric: metric.ID,
		PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd}
	openings := make([]statement.Opening, len(batches))
	maxCount := 0
	j.Readings = 0
	for i, b := range batches {
		h := &b.Entry.Header
		st.Entries = append(st.Entries, statement.Entry{Commitment: h.Commitment, WindowStart: h.WindowStart, WindowEnd: h.WindowEnd, Count: h.Count})
		openings[i] = statement.Opening{Salt: b.Salt, Readings: b.Readings}
		maxCount = max(maxCount, h.Count)
		j.Readings += h.Count
	}
	j.Entries = len(batches)
	s.progress(ctx, j, 10, "checking the statement on the readings")
	if err := st.Check(); err != nil {
		return nil, refusal(provenance.KindInvalid, "", "the statement does not fit the period's entries: %v", err)
	}
	if err := st.Holds(openings); err != nil {
		if errors.Is(err, statement.ErrFalse) {
			return nil, refusal(provenance.KindConflict, "", "the statement is false on the hospital's readings (%v); no proof is made", err)
		}
		return nil, refusal(provenance.KindInternal, "", "the stored readings do not open the logged commitments (%v)", err)
	}

	shape, ok := s.shapeFor(len(batches), maxCount)
	if !ok {
		return nil, refusal(provenance.KindInvalid, "", "no circuit capacity fits %d entries of up to %d readings (offered: %s)", len(batches), maxCount, s.shapesString())
	}
	id := circuit.ID(shape, r.Kinds)
	j.Circuit = id
	s.progress(ctx, j, 15, "loading the circuit "+id)
	cache := &keys.Cache{Dir: s.cfg.KeysDir}
	cs, err := cache.Compiled(ctx, id, func() (constraint.ConstraintSystem, error) { return circuit.Compile(shape, r.Kinds) })
	if err != nil {
		return nil, internal("compile circuit", err)
	}
	setup := s.noSetup
	if s.cfg.DevKeys {
		setup = func(ctx context.Context, cs constraint.ConstraintSystem, id string) (*keys.Keys, error) {
			s.progress(ctx, j, 25, "development setup of "+id+" (UNSAFE FOR PRODUCTION; once per circuit, may take minutes)")
			s.log.WarnContext(ctx, "making development keys: UNSAFE FOR PRODUCTION", "circuit", id)
			return keys.DevSetup(ctx, cs, id)
		}
	}
	s.progress(ctx, j, 20, "loading the keys of "+id)
	k, err := cache.Get(ctx, cs, id, setup)
	if err != nil {
		var e *provenance.Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, internal("load keys", err)
	}
	j.UnsafeKeys = k.Unsafe()
	prover, err := prove.NewProver(shape, r.Kinds, cs, k)
	if err != nil {
		return nil, internal("create prover", err)
	}
	s.progress(ctx, j, 50, fmt.Sprintf("proving over %d entries, %d readings", j.Entries, j.Readings))
	proof, err := prover.Prove(ctx, st, openings)
	if err != nil {
		return nil, internal("prove", err)
	}

	s.progress(ctx, j, 85, "fetching the checkpoint, the registration and inclusion proofs from the ledger")
	parts, err := s.gather(ctx, r, before, batches, after)
	if err != nil {
		return nil, err
	}
	parts.Statement, parts.Proof, parts.Development = st, proof, prover.Unsafe()
	bundle, err := audit.Build(parts)
	if err != nil {
		return nil, internal("build bundle", err)
	}
	return bundle, nil
}

// noSetup is the SetupFunc when development keys are not allowed.
func (s *Service) noSetup(_ context.Context, _ constraint.ConstraintSystem, id string) (*keys.Keys, error) {
	return nil, refusal(provenance.KindUnavailable, "", "this gateway has no keys for circuit %s: the consortium's ceremony keys must be installed in its key directory", id)
}

func (s *Service) shapeFor(entries, perEntry int) (circuit.Shape, bool) {
	var best circuit.Shape
	found := false
	for _, sh := range s.cfg.Shapes {
		if entries <= sh.Entries && perEntry <= sh.PerEntry && (!found || sh.Capacity() < best.Capacity()) {
			best, found = sh, true
		}
	}
	return best, found
}

func (s *Service) shapesString() string {
	var out []string
	for _, sh := range s.cfg.Shapes {
		out = append(out, sh.String())
	}
	return strings.Join(out, ", ")
}

// gather gets from the ledger the latest published checkpoint, the
// device's registration record and every leaf's inclusion proof in that
// checkpoint's tree.
func (s *Service) gather(ctx context.Context, r *Request, before *provenance.StoredBatch, batches []provenance.StoredBatch, after *provenance.StoredBatch) (*audit.Parts, error) {
	cp, err := s.cfg.Ledger.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	text, _, ok := strings.Cut(string(cp), "\n\n")
	if !ok {
		return nil, internal("read checkpoint", errors.New("no signatures"))
	}
	c, err := torchwood.ParseCheckpoint(text + "\n")
	if err != nil {
		return nil, internal("read checkpoint", err)
	}
	size := uint64(c.N)
	dev, err := s.cfg.Ledger.Device(ctx, r.DeviceID)
	if err != nil {
		return nil, err
	}
	if !dev.RegistrationLogged || len(dev.Registration) == 0 {
		return nil, refusal(provenance.KindPending, "", "the device's registration record is not yet logged")
	}
	leaf := func(index uint64, b []byte) (audit.Leaf, error) {
		if index >= size {
			return audit.Leaf{}, refusal(provenance.KindPending, "", "leaf %d is not yet covered by the latest published checkpoint (tree size %d); ask again shortly", index, size)
		}
		p, err := s.cfg.Ledger.InclusionProof(ctx, index, size)
		if err != nil {
			return audit.Leaf{}, err
		}
		return audit.Leaf{Index: index, Bytes: b, Proof: p}, nil
	}
	parts := &audit.Parts{Checkpoint: cp}
	if parts.Registration, err = leaf(dev.RegistrationIndex, dev.Registration); err != nil {
		return nil, err
	}
	if before != nil {
		l, err := leaf(before.Index, before.Entry.Bytes)
		if err != nil {
			return nil, err
		}
		parts.Before = &l
	}
	for _, b := range batches {
		l, err := leaf(b.Index, b.Entry.Bytes)
		if err != nil {
			return nil, err
		}
		parts.Entries = append(parts.Entries, l)
	}
	if after != nil && after.Index < size {
		l, err := leaf(after.Index, after.Entry.Bytes)
		if err != nil {
			return nil, err
		}
		parts.After = &l
	}
	return parts, nil
}
