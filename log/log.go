// Package log is VitalProof's Merkle log layer: the append-only log behind a
// small interface, checkpoints, receipts and proof verification.
//
// The [Log] interface is what the ledger personality (package provenance)
// needs of a log engine. Package log/trillian implements it on Google
// Trillian, embedded in-process or over gRPC; another engine (Tessera, say)
// could implement it too, and package log/logtest holds the oracle test any
// implementation must pass and an in-memory Log for tests.
//
// Around the interface: [LeafHash] (the RFC 6962 leaf hash that identifies a
// leaf), [VerifyInclusion] and [VerifyConsistency] (RFC 6962 proof checks
// with errors wrapping [ErrInvalidProof]), and the [Awaiter], which waits for
// queued leaves to be integrated. Checkpoints are in log/checkpoint and
// receipts in log/receipt.
package log

import (
	"context"
	"errors"
)

// Hash is a SHA-256 hash: an RFC 6962 leaf or node hash, or a root.
type Hash = [32]byte

// Root is the state of the integrated tree.
type Root struct {
	Size uint64
	Hash Hash
}

// ErrNotIntegrated is returned for a leaf that was queued but is not yet in
// the tree of the requested size.
var ErrNotIntegrated = errors.New("leaf is not integrated yet")

// ErrOutOfRange is returned for an index or tree size beyond the tree.
var ErrOutOfRange = errors.New("index or tree size beyond the tree")

// Log is an append-only Merkle log of opaque leaves, hashed per RFC 6962.
//
// Implementations are safe for concurrent use.
type Log interface {
	// Append queues leaves for integration. When it returns nil every leaf is
	// durably queued and will be integrated even if the process then dies.
	// It is idempotent on the leaf hash: queueing a leaf that is already
	// queued or integrated is not an error and adds nothing.
	Append(ctx context.Context, leaves [][]byte) error
	// Root returns the latest integrated tree.
	Root(ctx context.Context) (Root, error)
	// InclusionByHash returns the index of the integrated leaf with the given
	// RFC 6962 leaf hash and its inclusion proof in the tree of size
	// treeSize, or ErrNotIntegrated.
	InclusionByHash(ctx context.Context, leafHash Hash, treeSize uint64) (index uint64, proof []Hash, err error)
	// InclusionProof returns the inclusion proof of leaf index in the tree of size treeSize.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([]Hash, error)
	// ConsistencyProof returns the proof that the tree of size from is a prefix of the tree of size to.
	ConsistencyProof(ctx context.Context, from, to uint64) ([]Hash, error)
	// Leaves returns up to count integrated leaves starting at index start.
	Leaves(ctx context.Context, start, count uint64) ([][]byte, error)
}
