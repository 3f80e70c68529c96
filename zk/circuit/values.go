package circuit

import (
	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/statement"
)

// values returns the values of e's reading slots, defined by their limbs
// (see [Entry]), bounds them, and proves the [statement.Range] and
// [statement.MaxBelow] parts.
//
// Range: value = RangeLo + Value0 + 2^11·Value1 with both limbs below 2^11
// gives value ≥ RangeLo, and RangeHi - value below 2^22 gives value ≤
// RangeHi (RangeLo ≤ RangeHi < 2^20, so neither wraps around the field).
// That bounds every value below 2^20, which makes the packing injective.
// Without Range, the TimeInRange part bounds the values, and without both,
// value = Value0 + 2^11·Value1 with Value1 below 2^9. MaxBelow: MaxBound - 1
// - value below 2^22. All checks cover padding slots too, which the prover
// fills with the base value. Cost per reading: 5 constraints for Range, 3
// for the bare bound, 3 for MaxBelow.
func (b *builder) values(e *Entry) []frontend.Variable {
	api, c := b.api, b.c
	vals := make([]frontend.Variable, len(e.Value0))
	for j := range vals {
		v0, v1 := e.Value0[j], e.Value1[j]
		switch {
		case b.on(statement.Range):
			vals[j] = api.Add(c.RangeLo, v0, api.Mul(v1, 1<<limbBits))
			b.r.limb(v0)
			b.r.limb(v1)
			b.check(api.Sub(c.RangeHi, vals[j]), gapBits)
		case b.on(statement.TimeInRange):
			// [builder.timeInRange] bounds the value.
			vals[j] = api.Add(api.Mul(e.InRange[j], c.TIRLo), v0, api.Mul(v1, 1<<limbBits))
		default:
			vals[j] = api.Add(v0, api.Mul(v1, 1<<limbBits))
			b.r.limb(v0)
			b.r.short(v1, valueBits-limbBits)
		}
		if b.on(statement.MaxBelow) {
			b.check(api.Sub(c.MaxBound, 1, vals[j]), gapBits)
		}
	}
	return vals
}
