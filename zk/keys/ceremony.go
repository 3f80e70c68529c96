package keys

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs_bn254 "github.com/consensys/gnark/constraint/bn254"
)

// The ceremony (gnark's backend/groth16/bn254/mpcsetup) makes production
// keys in two phases. Phase 1 (powers of tau) serves every circuit of a
// domain size; phase 2 is specific to one compiled circuit. In each phase,
// participants take turns: each reads the previous state, adds its secret
// randomness ([ContributePhase1], [ContributePhase2]), forgets it, and
// publishes the new state. The coordinator verifies every contribution
// against its predecessor ([VerifyPhase1], [FinishCeremony]) and seals each
// phase with a public random beacon chosen after the last contribution. The
// keys are sound if at least one participant was honest.

var errNotR1CS = errors.New("constraint system is not a BN254 R1CS")

// DomainSize returns the phase 1 domain size that cs needs.
func DomainSize(cs constraint.ConstraintSystem) uint64 {
	return ecc.NextPowerOfTwo(uint64(cs.GetNbConstraints()))
}

// ContributePhase1 reads the previous phase 1 state from prev (nil for the
// first participant, who starts a ceremony of domain size n), adds a
// contribution and writes the new state to next.
func ContributePhase1(prev io.Reader, next io.Writer, n uint64) error {
	p := mpcsetup.NewPhase1(n)
	if prev != nil {
		p = new(mpcsetup.Phase1)
		if _, err := p.ReadFrom(prev); err != nil {
			return fmt.Errorf("couldn't read phase 1 state: %w", err)
		}
	}
	p.Contribute()
	if _, err := p.WriteTo(next); err != nil {
		return fmt.Errorf("couldn't write phase 1 contribution: %w", err)
	}
	return nil
}

// VerifyPhase1 verifies the chain of phase 1 contributions, in order, for
// domain size n, and seals it with beacon. The result is the input of
// phase 2 for every circuit of that domain size.
func VerifyPhase1(n uint64, beacon []byte, contributions ...io.Reader) (*mpcsetup.SrsCommons, error) {
	if len(contributions) == 0 {
		return nil, errors.New("couldn't verify phase 1: no contribution")
	}
	prev := mpcsetup.NewPhase1(n)
	for i, r := range contributions {
		next := new(mpcsetup.Phase1)
		if _, err := next.ReadFrom(r); err != nil {
			return nil, fmt.Errorf("couldn't read phase 1 contribution %d: %w", i, err)
		}
		if err := prev.Verify(next); err != nil {
			return nil, fmt.Errorf("couldn't verify phase 1 contribution %d: %w", i, err)
		}
		prev = next
	}
	commons := prev.Seal(beacon)
	return &commons, nil
}

// ContributePhase2 reads the previous phase 2 state of cs from prev (nil for
// the first participant, who starts from commons), adds a contribution and
// writes the new state to next.
func ContributePhase2(prev io.Reader, next io.Writer, cs constraint.ConstraintSystem, commons *mpcsetup.SrsCommons) error {
	p := new(mpcsetup.Phase2)
	if prev == nil {
		r1cs, ok := cs.(*cs_bn254.R1CS)
		if !ok {
			return fmt.Errorf("couldn't start phase 2: %w", errNotR1CS)
		}
		p.Initialize(r1cs, commons)
	} else if _, err := p.ReadFrom(prev); err != nil {
		return fmt.Errorf("couldn't read phase 2 state: %w", err)
	}
	p.Contribute()
	if _, err := p.WriteTo(next); err != nil {
		return fmt.Errorf("couldn't write phase 2 contribution: %w", err)
	}
	return nil
}

// FinishCeremony verifies the chain of phase 2 contributions for cs (the
// compiled circuit named id) on top of commons, seals it with beacon and
// returns the production keys. phase1Contributions is recorded in the
// metadata.
func FinishCeremony(ctx context.Context, cs constraint.ConstraintSystem, id string, commons *mpcsetup.SrsCommons, beacon []byte, phase1Contributions int, contributions ...io.Reader) (*Keys, error) {
	if len(contributions) == 0 {
		return nil, errors.New("couldn't verify phase 2: no contribution")
	}
	r1cs, ok := cs.(*cs_bn254.R1CS)
	if !ok {
		return nil, fmt.Errorf("couldn't verify phase 2: %w", errNotR1CS)
	}
	prev := new(mpcsetup.Phase2)
	evals := prev.Initialize(r1cs, commons)
	for i, r := range contributions {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("couldn't verify phase 2: %w", err)
		}
		next := new(mpcsetup.Phase2)
		if _, err := next.ReadFrom(r); err != nil {
			return nil, fmt.Errorf("couldn't read phase 2 contribution %d: %w", i, err)
		}
		if err := prev.Verify(next); err != nil {
			return nil, fmt.Errorf("couldn't verify phase 2 contribution %d: %w", i, err)
		}
		prev = next
	}
	pk, vk := prev.Seal(commons, &evals, beacon)
	slog.InfoContext(ctx, "ceremony sealed", "circuit", id, "phase1_contributions", phase1Contributions, "phase2_contributions", len(contributions))
	return newKeys(cs, id, pk, vk, Metadata{
		Setup:               SetupCeremony,
		Phase1Contributions: phase1Contributions,
		Phase2Contributions: len(contributions),
		Beacon:              hex.EncodeToString(beacon),
	})
}
