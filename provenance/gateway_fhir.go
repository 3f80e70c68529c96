package provenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/commitment"
)

// SubmitFHIR ingests a FHIR R4 Observation or Bundle. Batches that a
// device signed (a Bundle whose Provenance carries the device's entry) are
// handled as [Gateway.SubmitBatch] handles native ones; Observations
// without a device signature are grouped by device and metric, committed
// by the gateway and signed with the hospital's key (attestation
// "gateway"). Every part is validated before anything is written.
func (g *Gateway) SubmitFHIR(ctx context.Context, resource []byte) ([]BatchResult, error) {
	imp, err := wearables.ImportFHIR(resource)
	if err != nil {
		g.refused(invalid("resource", "%v", err))
		return nil, invalid("resource", "%v", err)
	}
	if len(imp.Attested) == 0 && len(imp.Unattested) == 0 {
		return nil, invalid("resource", "holds no Observation")
	}
	var subs []*submission
	for i, a := range imp.Attested {
		s, err := g.prepare(BatchSubmission{Entry: a.Batch.Entry.Bytes, Salt: a.Batch.Salt[:], Readings: a.Batch.Readings, PatientRef: a.PatientRef})
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Field = fmt.Sprintf("attested[%d].%s", i, e.Field)
			}
			g.refused(err)
			return nil, err
		}
		subs = append(subs, s)
	}
	now := g.cfg.Now()
	for i, grp := range imp.Unattested {
		if err := checkGroup(grp, now); err != nil {
			err.Field = fmt.Sprintf("observations[%d].%s", i, err.Field)
			g.refused(err)
			return nil, err
		}
	}
	for _, s := range subs {
		if err := g.enqueue(ctx, s); err != nil {
			return nil, err
		}
	}
	attested, err := g.attest(ctx, imp.Unattested)
	if err != nil {
		return nil, err
	}
	subs = append(subs, attested...)
	results := make([]BatchResult, len(subs))
	var firstErr error
	for i, s := range subs {
		res, err := g.wait(ctx, s)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		results[i] = res
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return results, nil
}

// checkGroup validates unattested Observations: known metric, values in
// range, times strictly increasing, not in the future, and within one window.
func checkGroup(grp wearables.ObservationGroup, now time.Time) *Error {
	m, ok := wearables.MetricByCode(grp.Metric)
	if !ok {
		return invalid("metric", "unknown metric")
	}
	if !wearables.ValidID(grp.DeviceID) {
		return invalid("device", "must reference Device/<registry ID>")
	}
	if len(grp.Times) == 0 || len(grp.Times) != len(grp.Values) {
		return invalid("readings", "no readings")
	}
	for i, t := range grp.Times {
		if t.After(now) {
			return invalid(fmt.Sprintf("readings[%d]", i), "time is in the future")
		}
		if i > 0 && !t.After(grp.Times[i-1]) {
			return invalid(fmt.Sprintf("readings[%d]", i), "two observations at the same time, or out of order")
		}
		if err := m.CheckFixed(grp.Values[i]); err != nil {
			return invalid(fmt.Sprintf("readings[%d]", i), "%v", err)
		}
	}
	start, end := groupWindow(grp.Times[0], grp.Times[len(grp.Times)-1])
	if end-start > commitment.MaxOffset+1 {
		return invalid("readings", "span more than 2^22 seconds")
	}
	return nil
}

// groupWindow is the window of gateway-attested readings: from the start of
// the hour of the first to the end of the hour of the last.
func groupWindow(first, last time.Time) (int64, int64) {
	start := first.UTC().Truncate(time.Hour)
	end := last.UTC().Truncate(time.Hour).Add(time.Hour)
	return start.Unix(), end.Unix()
}

// attest commits, signs, stores and enqueues gateway-attested entries for
// groups of unattested Observations. The chain head advances in the same
// transaction that stores the private row, so a crash cannot fork the
// gateway's chain.
func (g *Gateway) attest(ctx context.Context, groups []wearables.ObservationGroup) ([]*submission, error) {
	g.attestMu.Lock()
	defer g.attestMu.Unlock()
	var subs []*submission
	for _, grp := range groups {
		for lo := 0; lo < len(grp.Times); lo += wearables.MaxBatchReadings {
			hi := min(lo+wearables.MaxBatchReadings, len(grp.Times))
			s, err := g.attestOne(ctx, grp, lo, hi)
			if err != nil {
				return nil, err
			}
			if err := g.enqueue(ctx, s); err != nil {
				return nil, err
			}
			subs = append(subs, s)
		}
	}
	return subs, nil
}

func (g *Gateway) attestOne(ctx context.Context, grp wearables.ObservationGroup, lo, hi int) (*submission, error) {
	m, _ := wearables.MetricByCode(grp.Metric)
	start, end := groupWindow(grp.Times[lo], grp.Times[hi-1])
	readings := make([]wearables.Reading, 0, hi-lo)
	for i := lo; i < hi; i++ {
		readings = append(readings, wearables.Reading{Offset: uint32(grp.Times[i].Unix() - start), Value: grp.Values[i]})
	}
	salt, err := commitment.NewSalt()
	if err != nil {
		return nil, internal("draw salt", err)
	}
	c, err := commitment.Commit(&commitment.Opening{Salt: salt, DeviceID: grp.DeviceID, Metric: m.ID, WindowStart: start, WindowEnd: end, Readings: readings})
	if err != nil {
		return nil, internal("commit readings", err)
	}
	hdr := wearables.EntryHeader{
		DeviceID: grp.DeviceID, Metric: grp.Metric, WindowStart: start, WindowEnd: end, Count: len(readings),
		Commitment: c, Hospital: g.cfg.HospitalID, Attestation: wearables.AttestGateway,
	}
	var s *submission
	err = inTx(ctx, g.cfg.DB, func(tx *sql.Tx) error {
		var seq uint64
		var head []byte
		err := tx.QueryRowContext(ctx, "SELECT seq, head_hash FROM gateway_chains WHERE chain_key = ? FOR UPDATE", hdr.ChainKey()).Scan(&seq, &head)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return internal("lock gateway chain", err)
		}
		hdr.Seq = seq + 1
		if seq > 0 {
			hdr.Prev = [32]byte(head)
		}
		raw, err := wearables.SignEntry(&hdr, g.cfg.HospitalSigner)
		if err != nil {
			return internal("sign entry", err)
		}
		e, err := wearables.ParseEntry(raw)
		if err != nil {
			return internal("parse own entry", err)
		}
		s = &submission{entry: e, salt: salt, readings: readings, patientRef: grp.PatientRef, stored: true}
		if _, err := tx.ExecContext(ctx, insertBatchSQL+rowPlaceholders(1, 11), storeArgs(s)...); err != nil {
			return internal("store batch", err)
		}
		h := e.LeafHash()
		if _, err := tx.ExecContext(ctx, "INSERT INTO gateway_chains (chain_key, seq, head_hash) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq), head_hash = VALUES(head_hash)",
			hdr.ChainKey(), hdr.Seq, h[:]); err != nil {
			return internal("advance gateway chain", err)
		}
		return nil
	})
	return s, err
}
