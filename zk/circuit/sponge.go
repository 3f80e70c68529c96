package circuit

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/permutation/poseidon2"

	"github.com/vitalproof/vitalproof/zk/statement"
)

// sponge is the in-circuit twin of [statement.Sponge], the digest's
// Poseidon2 sponge (width 4, rate 3): 264 constraints per block of three
// elements, against 561 for the commitment's width-2 Merkle–Damgård.
type sponge struct {
	api   frontend.API
	perm  *poseidon2.Permutation
	state []frontend.Variable
}

func newSponge(api frontend.API) (*sponge, error) {
	perm, err := poseidon2.NewPoseidon2FromParameters(api, statement.SpongeWidth, statement.SpongeFullRounds, statement.SpongePartialRounds)
	if err != nil {
		return nil, fmt.Errorf("couldn't build digest sponge: %w", err)
	}
	tag := statement.DigestTag()
	return &sponge{api: api, perm: perm, state: []frontend.Variable{tag.BigInt(new(big.Int)), 0, 0, 0}}, nil
}

// absorb adds a block to lanes 1 to 3 and permutes.
func (s *sponge) absorb(a, b, c frontend.Variable) {
	for j, v := range []frontend.Variable{a, b, c} {
		s.state[1+j] = s.api.Add(s.state[1+j], v)
	}
	if err := s.perm.Permutation(s.state); err != nil {
		panic(err) // the state has the permutation's width
	}
}
