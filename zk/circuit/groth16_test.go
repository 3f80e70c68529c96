package circuit

import (
	"bytes"
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

// checkCircuit is gnark's test.Assert.CheckCircuit with its prover profile
// (which gnark's default `go test` profile leaves out, and without which it
// solves with ccs.Solve: that panics once std/rangecheck is used, as the
// range checker needs the Groth16 commitment). For every assignment it
// checks the verdict of gnark's test engine (test.IsSolved), then on the
// real backend, Groth16 on BN254, it compiles and sets up once, proves and
// verifies each valid assignment (round-tripping the proof) and expects
// proving to fail for each invalid one. In -short mode only the test engine
// runs.
//
// Invalid assignments are solved with a lenient multiplicities hint, which
// ignores queries outside the range checker's table instead of failing: a
// malicious prover runs whatever hints it likes, so the constraints, not the
// honest hint, must refuse them.
func checkCircuit(t *testing.T, c frontend.Circuit, valid, invalid map[string]frontend.Circuit) {
	t.Helper()
	field := ecc.BN254.ScalarField()
	for name, a := range valid {
		if err := test.IsSolved(c, a, field); err != nil {
			t.Errorf("%s: test engine: valid assignment not solved: %v", name, err)
		}
	}
	lenient := solver.GetHintID(multiplicitiesHint)
	for name, a := range invalid {
		if err := test.IsSolved(c, a, field, test.WithReplacementHint(lenient, lenientMultiplicities)); err == nil {
			t.Errorf("%s: test engine: invalid assignment solved", name)
		}
	}
	if testing.Short() || t.Failed() {
		return
	}
	cs, err := frontend.Compile(field, r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range valid {
		full, err := frontend.NewWitness(a, field)
		if err != nil {
			t.Fatal(err)
		}
		public, err := full.Public()
		if err != nil {
			t.Fatal(err)
		}
		proof, err := groth16.Prove(cs, pk, full)
		if err != nil {
			t.Errorf("%s: groth16: valid assignment not proved: %v", name, err)
			continue
		}
		var buf bytes.Buffer
		if _, err := proof.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		proof = groth16.NewProof(ecc.BN254)
		if _, err := proof.ReadFrom(&buf); err != nil {
			t.Fatal(err)
		}
		if err := groth16.Verify(proof, vk, public); err != nil {
			t.Errorf("%s: groth16: proof does not verify: %v", name, err)
		}
	}
	for name, a := range invalid {
		full, err := frontend.NewWitness(a, field)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := groth16.Prove(cs, pk, full, backend.WithSolverOptions(solver.OverrideHint(lenient, lenientMultiplicities))); err == nil {
			t.Errorf("%s: groth16: invalid assignment proved", name)
		}
	}
}

// lenientMultiplicities is multiplicitiesHint without its refusal: queries
// outside the table are not counted.
func lenientMultiplicities(_ *big.Int, inputs, outputs []*big.Int) error {
	for i := range outputs {
		outputs[i].SetInt64(0)
	}
	for _, q := range inputs {
		if q.IsInt64() && q.Int64() < int64(len(outputs)) {
			outputs[q.Int64()].Add(outputs[q.Int64()], big.NewInt(1))
		}
	}
	return nil
}
