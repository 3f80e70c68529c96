package log

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrInvalidProof is returned (wrapped) by [VerifyInclusion] and
// [VerifyConsistency] when a proof does not verify: a log that hands out such
// a proof is broken or lying, so callers must not retry it as a transient
// error.
var ErrInvalidProof = errors.New("invalid Merkle proof")

// EmptyRoot is the root hash of the empty tree: SHA-256 of the empty string
// (RFC 6962, section 2.1).
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the RFC 6962 leaf hash of data, SHA-256(0x00 || data): the
// hash that identifies a leaf in [Log.InclusionByHash] and in receipts.
func LeafHash(data []byte) Hash {
	return Hash(rfc6962.DefaultHasher.HashLeaf(data))
}

// VerifyInclusion checks that proof proves that the leaf with hash leafHash
// is at index in the tree root. It returns an error wrapping
// [ErrInvalidProof] if it does not.
func VerifyInclusion(leafHash Hash, index uint64, p []Hash, root Root) error {
	if index >= root.Size {
		return fmt.Errorf("%w: index %d is not in a tree of size %d", ErrInvalidProof, index, root.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, root.Size, leafHash[:], byteSlices(p), root.Hash[:]); err != nil {
		return fmt.Errorf("%w: inclusion of index %d in the tree of size %d does not verify", ErrInvalidProof, index, root.Size)
	}
	return nil
}

// VerifyConsistency checks that proof proves that the tree oldRoot is a prefix
// of the tree newRoot (RFC 6962, section 2.1.2). Equal sizes need equal
// hashes and an empty proof; any tree extends the empty tree with an empty
// proof. It returns an error wrapping [ErrInvalidProof] if the proof does not
// verify.
func VerifyConsistency(oldRoot, newRoot Root, p []Hash) error {
	if oldRoot.Size > newRoot.Size {
		return fmt.Errorf("%w: tree of size %d cannot extend a tree of size %d", ErrInvalidProof, newRoot.Size, oldRoot.Size)
	}
	if oldRoot.Size == 0 && oldRoot.Hash != EmptyRoot {
		return fmt.Errorf("%w: the empty tree has another root hash", ErrInvalidProof)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, oldRoot.Size, newRoot.Size, byteSlices(p), oldRoot.Hash[:], newRoot.Hash[:]); err != nil {
		return fmt.Errorf("%w: consistency of the tree of size %d with the tree of size %d does not verify", ErrInvalidProof, newRoot.Size, oldRoot.Size)
	}
	return nil
}

func byteSlices(hs []Hash) [][]byte {
	s := make([][]byte, len(hs))
	for i := range hs {
		s[i] = hs[i][:]
	}
	return s
}
