package circuit

import (
	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// timeInRange proves the [statement.TimeInRange] part's count.
//
// InRange[j] ∈ {0, a[j]}, so only real readings count; InRange[j] = 1
// implies TIRLo ≤ value ≤ TIRHi. A prover may leave an in-range reading
// uncounted: that only weakens its claim, so the converse is not proved.
// [builder.totals] then checks 100·Σ InRange ≥ TIRPercent·total.
//
// With the Range part, which bounds every value already, the implication
// is x = InRange[j]·(value - TIRLo) and TIRHi - TIRLo - x both below 2^22: 8
// constraints per reading. Without it, one pair of bounds serves both the
// implication and the value's own bound below 2^20: value = f·TIRLo +
// Value0 + 2^11·Value1 with both limbs below 2^11 (see [builder.values]),
// and f·TIRHi + (1-f)·(2^20-1) - value below 2^22, for f = InRange[j]: 8
// constraints per reading too, the value's bound included.
func (b *builder) timeInRange(e *Entry, a, vals []frontend.Variable) {
	api, c := b.api, b.c
	width := api.Sub(c.TIRHi, c.TIRLo)
	for j, v := range vals {
		f := e.InRange[j]
		api.AssertIsEqual(api.Mul(f, api.Sub(f, a[j])), 0)
		if b.on(statement.Range) {
			x := api.Mul(f, api.Sub(v, c.TIRLo))
			b.check(x, gapBits)
			b.check(api.Sub(width, x), gapBits)
		} else {
			b.r.limb(e.Value0[j])
			b.r.limb(e.Value1[j])
			hi := api.Add(api.Mul(f, api.Sub(c.TIRHi, commitment.MaxValue)), commitment.MaxValue)
			b.check(api.Sub(hi, v), gapBits)
		}
		b.inRange = api.Add(b.inRange, f)
	}
}
