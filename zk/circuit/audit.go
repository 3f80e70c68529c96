package circuit

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// Circuit proves a [statement.Statement] of kinds Kinds over up to
// Shape.Entries entries of up to Shape.PerEntry readings each.
//
// Public inputs, in order (see package zk/statement): Digest, PeriodStart,
// PeriodEnd, RangeLo, RangeHi, TIRLo, TIRHi, TIRPercent, MinDays, MeanBound,
// MaxBound. Everything else is private. Build the circuit to compile with
// [New] and assignments with [Assign].
type Circuit struct {
	Digest      frontend.Variable `gnark:",public"`
	PeriodStart frontend.Variable `gnark:",public"`
	PeriodEnd   frontend.Variable `gnark:",public"`
	RangeLo     frontend.Variable `gnark:",public"`
	RangeHi     frontend.Variable `gnark:",public"`
	TIRLo       frontend.Variable `gnark:",public"`
	TIRHi       frontend.Variable `gnark:",public"`
	TIRPercent  frontend.Variable `gnark:",public"`
	MinDays     frontend.Variable `gnark:",public"`
	MeanBound   frontend.Variable `gnark:",public"`
	MaxBound    frontend.Variable `gnark:",public"`

	// Device is [commitment.DeviceElement] of the device ID; Metric the
	// metric's identifier. They enter the digest.
	Device, Metric frontend.Variable
	// Last[i] is 1 if entry i is the statement's last entry, 0 otherwise:
	// exactly one is 1, and the number of entries is its index plus one.
	Last    []frontend.Variable
	Entries []Entry

	shape Shape
	kinds statement.Kind
}

// Entry is the private witness of one entry slot. Slots past the
// statement's last entry are padding: Count 0.
type Entry struct {
	// Prefix is the entry commitment's hash state after its header
	// elements ([Prefix]); it depends on the salt.
	Prefix frontend.Variable
	// WindowStart, WindowEnd and Count are the entry's, bound by the digest.
	WindowStart, WindowEnd, Count frontend.Variable
	// End[j] is 1 if Count is j+1 and 0 otherwise (all 0 in a padding slot).
	End []frontend.Variable
	// Offset holds the readings' offsets, PerEntry of them. Reading slots at
	// or past Count are padding (see the package documentation).
	Offset []frontend.Variable
	// Value0 and Value1 are 11-bit limbs that define the readings' values:
	// value = base + Value0 + 2^11·Value1, where base is RangeLo with the
	// Range part, InRange[j]·TIRLo with TimeInRange but not Range, and 0
	// otherwise (then Value1 < 2^9). So the limbs' range checks bound the
	// value from below, and below 2^20, without a recomposition constraint.
	Value0, Value1 []frontend.Variable
	// InRange[j] is 1 only if reading j is a reading in [TIRLo, TIRHi]
	// (TimeInRange only).
	InRange []frontend.Variable
	// NewDay[j] is 1 only if a day starts after reading j-1 and no later
	// than reading j, at PeriodStart + 86400·Day[j] = time_j - DayPhase[j]
	// (Adherence only; for j = 0, reading j-1 is the previous entry's last).
	NewDay, DayPhase, Day []frontend.Variable
}

const (
	limbBits  = 11                    // the range checker's limb: a 2^11-entry table
	gapBits   = commitment.OffsetBits // offsets, gaps, distances to bounds: two limbs
	valueBits = commitment.ValueBits  // a value on its own: a limb, a short limb and its shift
	timeBits  = 63                    // Unix seconds
	spanBits  = 3 * limbBits          // differences of times in a period (up to 2^33 s)
	dayBits   = limbBits              // day numbers and MinDays: one limb
	pctBits   = 7                     // a percentage
	maxPct    = 100                   // TIRPercent ≤ maxPct
	wordShift = commitment.ValueBits  // word = offset << wordShift | value
	elemSize  = commitment.PerElement // readings per packed element
	sumBits   = 5 * limbBits          // MeanBound·total - sum < 2^20·2^30
	dayCntBit = 3 * limbBits          // 1 + days proved - MinDays
	pctCntBit = 4 * limbBits          // 100·inRange - TIRPercent·total < 2^7·2^30
	dayLength = statement.DayLength   // seconds in a day
	// The digest's entry element e = WindowStart + 2^63·(window-1) + 2^85·Count,
	// two of them to an element: E = e_0 + 2^99·e_1.
	winShift   = timeBits
	countShift = timeBits + gapBits
	pairShift  = countShift + 14
)

func pow2(n int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(n)) }

var errAlloc = errors.New("circuit is not allocated for its shape: use New or Assign")

// New returns the circuit of kinds over shape, to compile.
func New(shape Shape, kinds statement.Kind) (*Circuit, error) {
	if err := shape.Check(); err != nil {
		return nil, err
	}
	if err := checkKinds(kinds); err != nil {
		return nil, err
	}
	c := &Circuit{shape: shape, kinds: kinds, Last: make([]frontend.Variable, shape.Entries), Entries: make([]Entry, shape.Entries)}
	for i := range c.Entries {
		c.Entries[i] = newEntry(shape, kinds)
	}
	return c, nil
}

func checkKinds(k statement.Kind) error {
	if _, err := statement.ParseKind(k.String()); err != nil || k == 0 {
		return errors.New("unknown statement kind")
	}
	return nil
}

func newEntry(shape Shape, kinds statement.Kind) Entry {
	r := shape.PerEntry
	e := Entry{End: make([]frontend.Variable, r), Offset: make([]frontend.Variable, r),
		Value0: make([]frontend.Variable, r), Value1: make([]frontend.Variable, r)}
	if kinds&statement.TimeInRange != 0 {
		e.InRange = make([]frontend.Variable, r)
	}
	if kinds&statement.Adherence != 0 {
		e.NewDay = make([]frontend.Variable, r)
		e.DayPhase = make([]frontend.Variable, r)
		e.Day = make([]frontend.Variable, r)
	}
	return e
}

// Shape returns the circuit's shape.
func (c *Circuit) Shape() Shape { return c.shape }

// Kinds returns the statement parts the circuit proves.
func (c *Circuit) Kinds() statement.Kind { return c.kinds }

// Define implements [frontend.Circuit].
func (c *Circuit) Define(api frontend.API) error {
	if err := c.shape.Check(); err != nil {
		return fmt.Errorf("couldn't define circuit: %w", err)
	}
	if len(c.Entries) != c.shape.Entries || len(c.Last) != c.shape.Entries {
		return fmt.Errorf("couldn't define circuit: %w", errAlloc)
	}
	b := &builder{api: api, c: c, r: newRanger(api)}
	b.params()

	// The number of entries n: Last is one-hot, entry i is real iff i < n.
	n := b.oneHot(c.Last, 1)
	b.act = make([]frontend.Variable, len(c.Entries))
	var done frontend.Variable = 0
	for i := range c.Entries {
		b.act[i] = api.Sub(1, done)
		done = api.Add(done, c.Last[i])
	}

	coms := make([]frontend.Variable, len(c.Entries))
	elems := make([]frontend.Variable, len(c.Entries))
	var lastEnd frontend.Variable = 0
	for i := range c.Entries {
		var err error
		if coms[i], elems[i], err = b.entry(i); err != nil {
			return fmt.Errorf("couldn't define circuit: entry %d: %w", i, err)
		}
		lastEnd = api.Add(lastEnd, api.Mul(c.Last[i], c.Entries[i].WindowEnd))
	}
	// The last entry ends in the period (earlier ones end before it starts).
	b.check(api.Sub(c.PeriodEnd, lastEnd), spanBits)

	// The digest: entries in pairs, a missing one's commitment and element
	// zero (padding slots' are zero), the state after the last real pair.
	sp, err := newSponge(api)
	if err != nil {
		return fmt.Errorf("couldn't define circuit: %w", err)
	}
	sp.absorb(c.Device, c.Metric, n)
	var digest frontend.Variable = 0
	for p := 0; p < len(c.Entries); p += 2 {
		var c1, e1, last frontend.Variable = 0, 0, c.Last[p]
		if p+1 < len(c.Entries) {
			c1, e1, last = coms[p+1], elems[p+1], api.Add(last, c.Last[p+1])
		}
		sp.absorb(coms[p], c1, api.Add(elems[p], api.Mul(e1, pow2(pairShift))))
		digest = api.Add(digest, api.Mul(last, sp.state[1]))
	}
	api.AssertIsEqual(digest, c.Digest)
	b.totals()
	return nil
}

// builder holds what the constraints of one Define share.
type builder struct {
	api frontend.API
	c   *Circuit
	r   *ranger
	act []frontend.Variable // act[i] = 1 iff entry i is real

	total   frontend.Variable // number of readings
	inRange frontend.Variable // TimeInRange: readings counted in range
	sum     frontend.Variable // MeanBelow: sum of the values
	newDays frontend.Variable // Adherence: day starts proved
}

func (b *builder) on(k statement.Kind) bool { return b.c.kinds&k != 0 }

// check asserts 0 ≤ x < 2^bits as integers.
func (b *builder) check(x frontend.Variable, bits int) { b.r.check(x, bits) }

// oneHot asserts that sel is boolean with exactly one 1 and returns
// Σ (j+offset)·sel[j], the index of the 1 plus offset.
func (b *builder) oneHot(sel []frontend.Variable, offset int) frontend.Variable {
	var s, idx frontend.Variable = 0, 0
	for j := range sel {
		b.api.AssertIsBoolean(sel[j])
		s = b.api.Add(s, sel[j])
		idx = b.api.Add(idx, b.api.Mul(sel[j], j+offset))
	}
	b.api.AssertIsEqual(s, 1)
	return idx
}

// params constrains the public parameters: those of the circuit's parts to
// their ranges (which the soundness arguments below rely on), the others to
// zero.
func (b *builder) params() {
	api, c := b.api, b.c
	b.check(c.PeriodStart, timeBits)
	b.check(c.PeriodEnd, timeBits)
	b.check(api.Sub(c.PeriodEnd, c.PeriodStart, 1), spanBits)
	zero := func(vs ...frontend.Variable) {
		for _, v := range vs {
			api.AssertIsEqual(v, 0)
		}
	}
	interval := func(lo, hi frontend.Variable) {
		b.check(lo, valueBits)
		b.check(hi, valueBits)
		b.check(api.Sub(hi, lo), valueBits)
	}
	if b.on(statement.Range) {
		interval(c.RangeLo, c.RangeHi)
	} else {
		zero(c.RangeLo, c.RangeHi)
	}
	if b.on(statement.TimeInRange) {
		interval(c.TIRLo, c.TIRHi)
		b.check(c.TIRPercent, pctBits)
		b.check(api.Sub(maxPct, c.TIRPercent), pctBits)
	} else {
		zero(c.TIRLo, c.TIRHi, c.TIRPercent)
	}
	if b.on(statement.Adherence) {
		b.check(c.MinDays, dayBits)
	} else {
		zero(c.MinDays)
	}
	if b.on(statement.MeanBelow) {
		b.check(api.Sub(c.MeanBound, 1), valueBits)
	} else {
		zero(c.MeanBound)
	}
	if b.on(statement.MaxBelow) {
		b.check(api.Sub(c.MaxBound, 1), valueBits)
	} else {
		zero(c.MaxBound)
	}
	b.total, b.inRange, b.sum, b.newDays = 0, 0, 0, 0
}

// entry constrains entry slot i and returns its commitment and its element
// e_i of the digest (both 0 for a padding slot).
func (b *builder) entry(i int) (com, d frontend.Variable, err error) {
	api, c := b.api, b.c
	e := &c.Entries[i]
	r := c.shape.PerEntry
	if len(e.End) != r || len(e.Offset) != r || len(e.Value0) != r || len(e.Value1) != r ||
		(b.on(statement.TimeInRange) && len(e.InRange) != r) ||
		(b.on(statement.Adherence) && (len(e.NewDay) != r || len(e.DayPhase) != r || len(e.Day) != r)) {
		return nil, nil, errAlloc
	}
	act := b.act[i]

	// Count: End is one-hot over 1..PerEntry in a real entry, all zero in a
	// padding slot; reading slot j is real iff a[j] = [j < Count] = 1.
	var s, cnt frontend.Variable = 0, 0
	for j := range e.End {
		api.AssertIsBoolean(e.End[j])
		s = api.Add(s, e.End[j])
		cnt = api.Add(cnt, api.Mul(e.End[j], j+1))
	}
	api.AssertIsEqual(s, act)
	api.AssertIsEqual(cnt, e.Count)
	a := make([]frontend.Variable, r+1)
	a[0] = act
	for j := 1; j <= r; j++ {
		a[j] = api.Sub(a[j-1], e.End[j-1])
	}
	b.total = api.Add(b.total, e.Count)

	// Window: 1 ≤ WindowEnd - WindowStart ≤ 2^22 and every offset below it.
	// Entries in time order inside the period (checked for real entries).
	window := api.Sub(e.WindowEnd, e.WindowStart)
	b.check(api.Sub(window, 1), gapBits)
	b.check(api.Sub(window, 1, e.Offset[r-1]), gapBits)
	if i == 0 {
		b.check(api.Sub(e.WindowStart, c.PeriodStart), spanBits)
	} else {
		b.check(api.Mul(act, api.Sub(e.WindowStart, c.Entries[i-1].WindowEnd)), spanBits)
	}

	// Offsets: real readings strictly increasing, padding slots
	// non-decreasing, all up to Offset[r-1] < window. (Offset[0] ≥ 0 needs
	// no check: a negative first offset would need a value of 2^20 or more
	// for the packed word to open the commitment.)
	for j := 1; j < r; j++ {
		gap := api.Sub(e.Offset[j], e.Offset[j-1], a[j])
		if b.on(statement.Adherence) {
			gap = api.Sub(gap, e.DayPhase[j])
		}
		b.check(gap, gapBits)
	}

	// Values and the parts' per-reading constraints.
	vals := b.values(e)
	if b.on(statement.TimeInRange) {
		b.timeInRange(e, a, vals)
	}
	if b.on(statement.MeanBelow) {
		b.mean(a, vals)
	}
	if b.on(statement.Adherence) {
		b.adherence(i, a)
	}

	// Commitment: real readings packed six to an element, padding slots
	// contribute zero; the element holding reading Count-1 is the last one
	// hashed: last[m] = a[6m] - a[6m+6].
	words := make([]frontend.Variable, r)
	for j := range words {
		words[j] = api.Mul(a[j], api.Add(api.Mul(e.Offset[j], 1<<wordShift), vals[j]))
	}
	var packed, last []frontend.Variable
	for m := 0; m < r/elemSize; m++ {
		packed = append(packed, Pack(api, words[m*elemSize:(m+1)*elemSize]))
		last = append(last, api.Sub(a[m*elemSize], a[(m+1)*elemSize]))
	}
	com, err = Commit(api, e.Prefix, packed, last)
	if err != nil {
		return nil, nil, err
	}
	// e_i, zero in a padding slot (whose window is not range checked).
	d = api.Mul(act, api.Add(e.WindowStart, api.Mul(api.Sub(window, 1), pow2(winShift)), api.Mul(e.Count, pow2(countShift))))
	return com, d, nil
}

// totals asserts the parts' checks over all readings.
func (b *builder) totals() {
	api, c := b.api, b.c
	if b.on(statement.TimeInRange) {
		// 100·inRange ≥ TIRPercent·total
		b.check(api.Sub(api.Mul(b.inRange, maxPct), api.Mul(c.TIRPercent, b.total)), pctCntBit)
	}
	if b.on(statement.MeanBelow) {
		// sum < MeanBound·total
		b.check(api.Sub(api.Mul(c.MeanBound, b.total), b.sum, 1), sumBits)
	}
	if b.on(statement.Adherence) {
		// the first reading's day and one per proved day start
		b.check(api.Sub(api.Add(b.newDays, 1), c.MinDays), dayCntBit)
	}
}
