package circuit

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/multicommit"
)

// ranger proves that variables lie in [0, 2^limbBits) with the
// log-derivative lookup argument [Haböck22] into the table 0 … 2^limbBits-1,
// as gnark's std/rangecheck does on Groth16: with multiplicities m_t, it
// checks Σ_q 1/(X - q) = Σ_t m_t/(X - t) at a challenge X derived from the
// Groth16 (BSB22) commitment to the queries and multiplicities
// (std/multicommit). A query costs one constraint, the table 2^limbBits.
//
// Unlike std/rangecheck, it takes limbs from the caller: a quantity that is
// defined as a combination of limb witnesses (a reading's value, see
// [Entry]) needs no recomposition constraint. [ranger.check] bounds any
// variable as std/rangecheck does: limbs from a hint, one recomposition
// constraint, and a top limb shorter than limbBits checked twice, as is and
// shifted to full width.
//
// [Haböck22]: https://eprint.iacr.org/2022/1530
type ranger struct {
	api     frontend.API
	queries []frontend.Variable
}

func init() {
	solver.RegisterHint(GetHints()...)
}

// GetHints returns the hints of the package's circuits, for provers that
// register hints explicitly.
func GetHints() []solver.Hint {
	return []solver.Hint{limbsHint, multiplicitiesHint}
}

// newRanger returns a range checker whose argument is built when the
// circuit's definition ends.
func newRanger(api frontend.API) *ranger {
	r := &ranger{api: api}
	api.Compiler().Defer(r.build)
	return r
}

// limb asserts 0 ≤ x < 2^limbBits: one constraint.
func (r *ranger) limb(x frontend.Variable) { r.queries = append(r.queries, x) }

// short asserts 0 ≤ x < 2^bits for 0 < bits ≤ limbBits: x and
// x·2^(limbBits-bits) are limbs (one constraint for a full limb, two
// otherwise).
func (r *ranger) short(x frontend.Variable, bits int) {
	r.limb(x)
	if bits < limbBits {
		r.limb(r.api.Mul(x, pow2(limbBits-bits)))
	}
}

// check asserts 0 ≤ x < 2^bits as integers, for 0 < bits < 250.
func (r *ranger) check(x frontend.Variable, bits int) {
	if bits <= limbBits {
		r.short(x, bits)
		return
	}
	n := (bits + limbBits - 1) / limbBits
	limbs, err := r.api.Compiler().NewHint(limbsHint, n, x)
	if err != nil {
		panic(err) // the hint is registered
	}
	var sum frontend.Variable = 0
	for i, l := range limbs {
		sum = r.api.Add(sum, r.api.Mul(l, pow2(i*limbBits)))
		if i < n-1 {
			r.limb(l)
		} else {
			r.short(l, bits-(n-1)*limbBits)
		}
	}
	r.api.AssertIsEqual(sum, x)
}

// build adds the lookup argument over the queries collected.
func (r *ranger) build(api frontend.API) error {
	if len(r.queries) == 0 {
		return nil
	}
	mult, err := api.Compiler().NewHint(multiplicitiesHint, 1<<limbBits, r.queries...)
	if err != nil {
		return err
	}
	committed := append(append([]frontend.Variable(nil), r.queries...), mult...)
	multicommit.WithCommitment(api, func(api frontend.API, x frontend.Variable) error {
		var lhs, rhs frontend.Variable = 0, 0
		for _, q := range r.queries {
			lhs = api.Add(lhs, api.Inverse(api.Sub(x, q)))
		}
		for t, m := range mult {
			rhs = api.Add(rhs, api.DivUnchecked(m, api.Sub(x, t)))
		}
		api.AssertIsEqual(lhs, rhs)
		return nil
	}, committed...)
	return nil
}

var errLimb = errors.New("value out of the range checker's table")

// limbsHint splits inputs[0] into len(outputs) limbs of limbBits bits, the
// last one taking the rest.
func limbsHint(_ *big.Int, inputs, outputs []*big.Int) error {
	x := new(big.Int).Set(inputs[0])
	mask := big.NewInt(1<<limbBits - 1)
	for i := range outputs {
		if i == len(outputs)-1 {
			outputs[i].Set(x)
			break
		}
		outputs[i].And(x, mask)
		x.Rsh(x, limbBits)
	}
	return nil
}

// multiplicitiesHint counts how many times each table entry is queried.
func multiplicitiesHint(_ *big.Int, inputs, outputs []*big.Int) error {
	counts := make([]int64, len(outputs))
	for _, q := range inputs {
		if !q.IsInt64() || q.Int64() >= int64(len(outputs)) {
			return errLimb
		}
		counts[q.Int64()]++
	}
	for i := range outputs {
		outputs[i].SetInt64(counts[i])
	}
	return nil
}
