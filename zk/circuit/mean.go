package circuit

import (
	"github.com/consensys/gnark/frontend"
)

// mean sums the real readings' values for the [statement.MeanBelow] part:
// padding slots are multiplied by a[j] = 0. [builder.totals] then checks
// Σ value < MeanBound·total. Cost per reading: 1 constraint.
func (b *builder) mean(a, vals []frontend.Variable) {
	api := b.api
	for j, v := range vals {
		b.sum = api.Add(b.sum, api.Mul(a[j], v))
	}
}
