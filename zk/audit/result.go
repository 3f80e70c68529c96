package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// Result is what a verified bundle proves.
type Result struct {
	// Kinds and Params are the statement proved, in the metric's
	// fixed-point encoding; [Result.Claim] says it in words.
	Kinds  statement.Kind
	Params statement.Params
	// DeviceID and Metric (a metric code) name the chain audited.
	DeviceID string
	Metric   string
	// PeriodStart and PeriodEnd bound the period, end exclusive.
	PeriodStart, PeriodEnd time.Time
	// Entries and Readings count the entries and their readings.
	Entries, Readings int
	// FirstSeq and LastSeq are the chain positions of the first and last
	// entries.
	FirstSeq, LastSeq uint64
	// Registration is the device's registration record, signed by
	// Registrar; RegistrarVerified says whether that signature was checked
	// ([WithRegistrar]).
	Registration      wearables.Registration
	Registrar         string
	RegistrarVerified bool
	// Origin and TreeSize are the log and tree of the checkpoint.
	Origin   string
	TreeSize uint64
	// CosignedAt is the earliest verified cosignature time of the
	// checkpoint, zero if it has none.
	CosignedAt time.Time
	// HeadClaimed is true when the bundle has no entry after the period:
	// completeness after LastSeq rests on the claim that it was the chain's
	// head at the checkpoint, which no plain log can prove, and covers only
	// entries logged by CosignedAt.
	HeadClaimed bool
	// Circuit is the circuit's ID and VerifyingKey the fingerprint of its
	// verifying key.
	Circuit      string
	VerifyingKey [32]byte
	// Unsafe is true when the verifying key comes from a development setup:
	// UNSAFE FOR PRODUCTION, whoever ran it can forge proofs.
	Unsafe bool
}

// Claim returns the statement in words, with the parameters in the
// metric's unit, e.g. "every reading in [40, 400] mg/dL; at least 70% of
// readings in [70, 180] mg/dL".
func (r *Result) Claim() string {
	m, _ := wearables.MetricByCode(r.Metric)
	num := func(x uint32) string { return strconv.FormatFloat(m.Decode(x), 'f', -1, 64) }
	v := func(x uint32) string { return num(x) + " " + m.Unit }
	iv := func(lo, hi uint32) string { return "[" + num(lo) + ", " + num(hi) + "] " + m.Unit }
	p := &r.Params
	var parts []string
	if r.Kinds&statement.Range != 0 {
		parts = append(parts, "every reading in "+iv(p.RangeLo, p.RangeHi))
	}
	if r.Kinds&statement.TimeInRange != 0 {
		parts = append(parts, fmt.Sprintf("at least %d%% of readings in %s", p.TIRPercent, iv(p.TIRLo, p.TIRHi)))
	}
	if r.Kinds&statement.Adherence != 0 {
		parts = append(parts, fmt.Sprintf("readings on at least %d days", p.MinDays))
	}
	if r.Kinds&statement.MeanBelow != 0 {
		parts = append(parts, "mean below "+v(p.MeanBound))
	}
	if r.Kinds&statement.MaxBelow != 0 {
		parts = append(parts, "every reading below "+v(p.MaxBound))
	}
	return strings.Join(parts, "; ")
}

// String summarizes the result on one line.
func (r *Result) String() string {
	return fmt.Sprintf("device %s, %s, %s to %s: %s; %d entries (seq %d to %d), %d readings; log %s, tree %d; circuit %s",
		r.DeviceID, r.Metric, r.PeriodStart.Format(time.RFC3339), r.PeriodEnd.Format(time.RFC3339), r.Claim(),
		r.Entries, r.FirstSeq, r.LastSeq, r.Readings, r.Origin, r.TreeSize, r.Circuit)
}

// Warnings returns what a reader of the result must be told besides the
// summary: development keys (UNSAFE FOR PRODUCTION), a completeness that
// rests on a head claim, and an unchecked registrar signature.
func (r *Result) Warnings() []string {
	var w []string
	if r.Unsafe {
		w = append(w, keys.UnsafeWarning)
	}
	if r.HeadClaimed {
		w = append(w, fmt.Sprintf("no entry after seq %d: complete only for entries logged by %s, on the hospital's word that seq %d was the chain's head at the checkpoint (a log cannot prove that no later entry exists)",
			r.LastSeq, r.CosignedAt.Format(time.RFC3339), r.LastSeq))
	}
	if !r.RegistrarVerified {
		w = append(w, fmt.Sprintf("registration record trusted because the log includes it; its signature by %q was not checked", r.Registrar))
	}
	return w
}
