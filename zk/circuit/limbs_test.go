package circuit

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/test"
)

// rangerCircuit bounds X below 2^22 with ranger.check and Y below 2^5 with
// ranger.short.
type rangerCircuit struct {
	X, Y frontend.Variable
}

func (c *rangerCircuit) Define(api frontend.API) error {
	r := newRanger(api)
	r.check(c.X, 22)
	r.short(c.Y, 5)
	return nil
}

// TestRanger checks the range checker against provers that run their own
// hints: limbs that do not recompose, a low limb past the table, and
// multiplicities that ignore queries outside the table.
func TestRanger(t *testing.T) {
	zeros := func(_ *big.Int, _, out []*big.Int) error {
		for i := range out {
			out[i].SetInt64(0)
		}
		return nil
	}
	allLow := func(_ *big.Int, in, out []*big.Int) error {
		out[0].Set(in[0])
		for i := 1; i < len(out); i++ {
			out[i].SetInt64(0)
		}
		return nil
	}
	limbs, mult := solver.GetHintID(limbsHint), solver.GetHintID(multiplicitiesHint)
	tests := []struct {
		name  string
		x, y  any
		hints map[solver.HintID]solver.Hint
		valid bool
	}{
		{name: "largest", x: 1<<22 - 1, y: 31, valid: true},
		{name: "zero", x: 0, y: 0, valid: true},
		{name: "x past 22 bits", x: 1 << 22, y: 0},
		{name: "x negative", x: -1, y: 0},
		{name: "y past 5 bits (shifted limb)", x: 0, y: 32},
		{name: "limbs that do not recompose", x: 1 << 22, y: 0, hints: map[solver.HintID]solver.Hint{limbs: zeros}},
		{name: "a low limb past the table", x: 1 << 22, y: 0, hints: map[solver.HintID]solver.Hint{limbs: allLow}},
	}
	field := ecc.BN254.ScalarField()
	c := &rangerCircuit{}
	ccs, err := frontend.Compile(field, r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &rangerCircuit{X: tt.x, Y: tt.y}
			var engineOpts []test.TestEngineOption
			var solverOpts []solver.Option
			hints := map[solver.HintID]solver.Hint{mult: lenientMultiplicities}
			if tt.valid {
				hints = nil
			}
			for id, h := range tt.hints {
				hints[id] = h
			}
			for id, h := range hints {
				engineOpts = append(engineOpts, test.WithReplacementHint(id, h))
				solverOpts = append(solverOpts, solver.OverrideHint(id, h))
			}
			err := test.IsSolved(c, a, field, engineOpts...)
			if tt.valid != (err == nil) {
				t.Fatalf("test engine: valid %v, got %v", tt.valid, err)
			}
			if testing.Short() {
				return
			}
			w, err := frontend.NewWitness(a, field)
			if err != nil {
				t.Fatal(err)
			}
			proof, err := groth16.Prove(ccs, pk, w, backend.WithSolverOptions(solverOpts...))
			if tt.valid != (err == nil) {
				t.Fatalf("groth16: valid %v, got %v", tt.valid, err)
			}
			if tt.valid {
				pub, _ := w.Public()
				if err := groth16.Verify(proof, vk, pub); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
