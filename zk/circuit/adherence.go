package circuit

import (
	"github.com/consensys/gnark/frontend"
)

// adherence proves day starts for the [statement.Adherence] part of entry i.
//
// Readings are in strictly increasing time order across the whole statement
// (offsets within an entry, windows between entries). For reading j at time
// t_j = WindowStart + Offset[j] - PeriodStart, NewDay[j] = 1 claims that a
// day starts after the previous reading and no later than this one:
//
//	t_{j-1} < 86400·Day[j] = t_j - DayPhase[j] ≤ t_j,
//
// proved by DayPhase[j] ≥ 0, the offsets' gap check (which subtracts
// DayPhase[j], so Offset[j] - Offset[j-1] - 1 - DayPhase[j] ≥ 0), Day[j]
// below 2^11, and NewDay[j]·(t_j - DayPhase[j] - 86400·Day[j]) = 0. Each day
// start lies between a different pair of consecutive readings, so the
// readings cover at least 1 + Σ NewDay distinct days. NewDay[j] ∈ {0, a[j]}:
// padding never counts. The first reading of an entry is compared with the
// previous entry's last offset (Offset[r-1], which bounds its last real
// reading) with 33-bit checks; the statement's first reading is day one.
// Cost per reading: 6 constraints.
func (b *builder) adherence(i int, a []frontend.Variable) {
	api, c := b.api, b.c
	e := &c.Entries[i]
	r := c.shape.PerEntry
	start := api.Sub(e.WindowStart, c.PeriodStart)
	for j := 0; j < r; j++ {
		f, phase, day := e.NewDay[j], e.DayPhase[j], e.Day[j]
		if i == 0 && j == 0 {
			api.AssertIsEqual(f, 0)
			api.AssertIsEqual(phase, 0)
			api.AssertIsEqual(day, 0)
			continue
		}
		api.AssertIsEqual(api.Mul(f, api.Sub(f, a[j])), 0)
		b.check(day, dayBits)
		t := api.Add(start, e.Offset[j])
		api.AssertIsEqual(api.Mul(f, api.Sub(t, phase, api.Mul(day, dayLength))), 0)
		b.newDays = api.Add(b.newDays, f)
		if j > 0 {
			b.check(phase, gapBits) // the gap check subtracts it
			continue
		}
		// First reading of entry i > 0: after the previous entry's last.
		p := &c.Entries[i-1]
		prev := api.Add(p.WindowStart, p.Offset[r-1])
		b.check(phase, spanBits)
		b.check(api.Sub(api.Mul(b.act[i], api.Sub(api.Add(e.WindowStart, e.Offset[0]), prev, 1)), phase), spanBits)
	}
}
