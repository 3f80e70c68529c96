package circuit

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	cryptoposeidon2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// headerElements is the number of elements the commitment hashes before
// the packed readings: Tag, Salt, Device, Metric, WindowStart, WindowEnd,
// Count.
const headerElements = 7

// Prefix returns the Merkle–Damgård state of an opening's commitment after
// its seven header elements (Tag, Salt, Device, Metric, WindowStart,
// WindowEnd, Count): the native twin of the state that [Commit] starts
// from. It depends on the salt and is private.
func Prefix(o *commitment.Opening) (fr.Element, error) {
	els, err := commitment.Elements(o)
	if err != nil {
		return fr.Element{}, fmt.Errorf("couldn't compute commitment prefix: %w", err)
	}
	return prefixOf(els[:headerElements]), nil
}

// prefixOf hashes header, the commitment's header elements.
func prefixOf(header []fr.Element) fr.Element {
	h := cryptoposeidon2.NewMerkleDamgardHasher()
	for i := range header {
		b := header[i].Bytes()
		h.Write(b[:])
	}
	var p fr.Element
	p.SetBytes(h.State())
	return p
}

// Commit returns the commitment of package zk/commitment, recomputed in the
// circuit from prefix, the hash state after the commitment's header
// elements ([Prefix]), and the entry's packed elements up to the one that
// last selects: last[m] is 1 if packed[m] is the last element hashed and 0
// otherwise, and the caller must constrain it. The hash is gnark's
// std/hash/poseidon2, the twin of gnark-crypto's: 186 constraints per packed
// element, plus one for its selection.
//
// Starting from a private prefix state rather than from the salt and the
// header saves six permutations per entry and binds as much: the readings'
// elements are bound to the commitment by the collision resistance of the
// Merkle–Damgård chain from any starting state (the prover chooses the salt
// anyway), and the header's window and count, which the circuit does use,
// are bound by the statement's digest, which the verifier computes from the
// entries themselves. What is not proved is that the commitment was made
// over its own entry's header: the device (or, for gateway-attested
// entries, the gateway, which checks every device batch so at ingest)
// computes it so.
func Commit(api frontend.API, prefix frontend.Variable, packed, last []frontend.Variable) (frontend.Variable, error) {
	if len(last) != len(packed) {
		return nil, fmt.Errorf("couldn't build commitment: %d packed elements but %d selectors", len(packed), len(last))
	}
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, fmt.Errorf("couldn't build commitment: %w", err)
	}
	if err := h.SetState([]frontend.Variable{prefix}); err != nil {
		return nil, fmt.Errorf("couldn't build commitment: %w", err)
	}
	var out frontend.Variable = 0
	for m := range packed {
		h.Write(packed[m])
		out = api.Add(out, api.Mul(last[m], h.State()[0]))
	}
	return out, nil
}

// Pack returns the packed element of words, the readings' words
// (Offset << ValueBits | Value) in order, at most [commitment.PerElement] of
// them. It is linear: it adds no constraint, and it is injective only for
// words below 2^ReadingBits, which the caller must ensure.
func Pack(api frontend.API, words []frontend.Variable) frontend.Variable {
	var p frontend.Variable = 0
	shift := new(big.Int)
	for t, w := range words {
		shift.Lsh(big.NewInt(1), uint(t*commitment.ReadingBits))
		p = api.Add(p, api.Mul(w, shift))
	}
	return p
}
