package log_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/vitalproof/vitalproof/log"
)

func refTree(n int) (*testonly.Tree, [][]byte) {
	tree := testonly.New(rfc6962.DefaultHasher)
	var leaves [][]byte
	for i := range n {
		v := fmt.Appendf(nil, "leaf %d", i)
		leaves = append(leaves, v)
		tree.AppendData(v)
	}
	return tree, leaves
}

func hashes(p [][]byte) []log.Hash {
	out := make([]log.Hash, len(p))
	for i := range p {
		out[i] = log.Hash(p[i])
	}
	return out
}

func rootAt(tree *testonly.Tree, size uint64) log.Root {
	return log.Root{Size: size, Hash: log.Hash(tree.HashAt(size))}
}

func TestLeafHash(t *testing.T) {
	// RFC 6962 leaf hash of the empty string and of "a", from the RFC's
	// test vectors as used by transparency-dev/merkle.
	for _, tc := range []struct {
		data string
		want string
	}{
		{"", "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
		{"\x00", "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"},
	} {
		if got := log.LeafHash([]byte(tc.data)); fmt.Sprintf("%x", got) != tc.want {
			t.Errorf("LeafHash(%q) = %x, want %s", tc.data, got, tc.want)
		}
	}
	if got := fmt.Sprintf("%x", log.EmptyRoot); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("EmptyRoot = %s", got)
	}
}

func TestVerifyInclusion(t *testing.T) {
	tree, leaves := refTree(13)
	for size := uint64(1); size <= 13; size++ {
		root := rootAt(tree, size)
		for i := uint64(0); i < size; i++ {
			p := hashes(must(tree.InclusionProof(i, size)))
			if err := log.VerifyInclusion(log.LeafHash(leaves[i]), i, p, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d): %v", i, size, err)
			}
		}
	}

	root := rootAt(tree, 13)
	good := hashes(must(tree.InclusionProof(5, 13)))
	leaf := log.LeafHash(leaves[5])
	flipped := append([]log.Hash(nil), good...)
	flipped[1][0] ^= 1
	for _, tc := range []struct {
		name  string
		leaf  log.Hash
		index uint64
		proof []log.Hash
		root  log.Root
	}{
		{"other leaf", log.LeafHash(leaves[6]), 5, good, root},
		{"other index", leaf, 6, good, root},
		{"index beyond tree", leaf, 13, good, root},
		{"flipped proof hash", leaf, 5, flipped, root},
		{"short proof", leaf, 5, good[:len(good)-1], root},
		{"long proof", leaf, 5, append(good, good[0]), root},
		{"other root", leaf, 5, good, rootAt(tree, 12)},
		{"other size", leaf, 5, good, log.Root{Size: 8, Hash: root.Hash}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := log.VerifyInclusion(tc.leaf, tc.index, tc.proof, tc.root); !errors.Is(err, log.ErrInvalidProof) {
				t.Errorf("error = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestVerifyConsistency(t *testing.T) {
	tree, _ := refTree(17)
	for s1 := uint64(0); s1 <= 17; s1++ {
		for s2 := s1; s2 <= 17; s2++ {
			p := hashes(must(tree.ConsistencyProof(s1, s2)))
			if err := log.VerifyConsistency(rootAt(tree, s1), rootAt(tree, s2), p); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d): %v", s1, s2, err)
			}
		}
	}

	r5, r13 := rootAt(tree, 5), rootAt(tree, 13)
	good := hashes(must(tree.ConsistencyProof(5, 13)))
	flipped := append([]log.Hash(nil), good...)
	flipped[0][31] ^= 0x80
	forked := r13
	forked.Hash[0] ^= 1
	for _, tc := range []struct {
		name     string
		old, new log.Root
		proof    []log.Hash
	}{
		{"flipped proof hash", r5, r13, flipped},
		{"short proof", r5, r13, good[:len(good)-1]},
		{"forked new root", r5, forked, good},
		{"other old root", rootAt(tree, 6), r13, good},
		{"shrinking", r13, r5, good},
		{"same size other hash", r13, forked, nil},
		{"same size with proof", r13, r13, good},
		{"bad empty root", log.Root{}, r13, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := log.VerifyConsistency(tc.old, tc.new, tc.proof); !errors.Is(err, log.ErrInvalidProof) {
				t.Errorf("error = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
