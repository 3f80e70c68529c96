package circuit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/vitalproof/vitalproof/zk/statement"
)

// Version names the circuits' constraint design. It changes whenever the
// constraints change, and with it every circuit's ID and keys.
const Version = "vitalproof/audit/v1"

// ID names the circuit of kinds over shape, e.g.
// "vitalproof/audit/v1/range+tir/24x60".
func ID(shape Shape, kinds statement.Kind) string {
	return Version + "/" + kinds.String() + "/" + shape.String()
}

// ParseID parses a circuit ID that [ID] returns.
func ParseID(id string) (Shape, statement.Kind, error) {
	rest, ok := strings.CutPrefix(id, Version+"/")
	kindStr, shapeStr, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return Shape{}, 0, errors.New("malformed circuit ID")
	}
	kinds, err := statement.ParseKind(kindStr)
	if err != nil {
		return Shape{}, 0, err
	}
	shape, err := ParseShape(shapeStr)
	if err != nil {
		return Shape{}, 0, err
	}
	return shape, kinds, nil
}

// Compile compiles the circuit of kinds over shape to an R1CS on BN254, for
// Groth16. Compiling the 43,200-reading shape takes about a minute and a few
// GiB; callers cache the result with the keys (package zk/keys).
func Compile(shape Shape, kinds statement.Kind) (constraint.ConstraintSystem, error) {
	c, err := New(shape, kinds)
	if err != nil {
		return nil, fmt.Errorf("couldn't compile circuit: %w", err)
	}
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, fmt.Errorf("couldn't compile circuit %s: %w", ID(shape, kinds), err)
	}
	return cs, nil
}
