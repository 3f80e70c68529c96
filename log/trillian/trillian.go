// Package trillianlog implements [log.Log] on a Google Trillian v1 log tree
// stored in MySQL or MariaDB.
//
// Two modes share one implementation of the reads:
//
//   - [NewEmbedded] runs Trillian inside the process: it applies Trillian's
//     MySQL schema (idempotently), serves Trillian's log and admin gRPC
//     servers on an in-process listener that nothing outside the process can
//     reach, runs the sequencer, and queues appended leaves straight through
//     Trillian's storage layer in large transactions (much faster than one
//     QueueLeaf RPC per leaf). This is the single-binary default.
//   - [NewRemote] talks gRPC to a trillian_log_server (which also serves the
//     admin API) with a trillian_log_signer sequencing, the way Trillian is
//     deployed at scale; it queues leaves with concurrent QueueLeaf calls.
//
// Both find their tree by display name (or, remotely, by ID) and can create
// and initialise it on first start.
//
// Leaves are hashed per RFC 6962 and identified by their leaf hash: the
// LeafIdentityHash Trillian deduplicates on is the Merkle leaf hash, so
// appending a leaf twice queues it once ([log.Log]'s idempotency contract).
//
// Every root this package returns is checked to be consistent with the
// previous one it returned (with a consistency proof from Trillian), and every
// proof and leaf is checked against what was asked: leaf hashes are
// recomputed, proof lengths checked, and proofs verified against the root of
// the requested tree size whenever that root is one of the recent roots it
// saw (which is the common case: callers ask for proofs in the tree of a
// root they just got).
package trillianlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/proof"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vitalproof/vitalproof/log"
)

const (
	// DefaultTreeName is the display name of the tree when none is given.
	DefaultTreeName = "vitalproof"
	// MaxTreeNameLength is the longest display name Trillian's MySQL schema
	// stores (Trees.DisplayName is VARCHAR(20)).
	MaxTreeNameLength = 20
	// MaxLeafSize bounds the size of one leaf passed to Append.
	MaxLeafSize = 64 << 10
	// MaxLeavesPerCall bounds how many leaves one Leaves call returns.
	MaxLeavesPerCall = 1000

	// recentRoots is how many recent roots are kept to verify proofs against.
	recentRoots = 1024
	// maxRecvMsgSize lets a Leaves response of MaxLeavesPerCall leaves of
	// MaxLeafSize through gRPC.
	maxRecvMsgSize = MaxLeavesPerCall*(MaxLeafSize+1024) + 1<<20
)

var (
	errClosed    = errors.New("log is shut down")
	errEmptyLeaf = errors.New("leaf is empty")
	errLargeLeaf = fmt.Errorf("leaf is larger than %d bytes", MaxLeafSize)
)

// Log is a Trillian log tree behind the [log.Log] interface. It is safe for
// concurrent use.
type Log struct {
	client trillian.TrillianLogClient
	tree   *trillian.Tree
	logger *slog.Logger
	// queue durably queues leaves whose hashes are already set.
	queue func(ctx context.Context, leaves []*trillian.LogLeaf) error
	// closeConns closes the gRPC connections; see Close.
	closeConns func() error

	closeMu   sync.RWMutex // read-held by Append calls in flight
	closed    bool
	closeErr  error
	closeOnce sync.Once

	// rootSem serialises Root calls, so that each new root is checked for
	// consistency against the previous one.
	rootSem chan struct{}

	mu     sync.Mutex
	latest log.Root // latest verified root; zero before the first Root
	roots  map[uint64]log.Hash
	order  []uint64 // sizes in roots, oldest first
}

var _ log.Log = (*Log)(nil)

func newLog(client trillian.TrillianLogClient, tree *trillian.Tree, logger *slog.Logger) *Log {
	return &Log{
		client:  client,
		tree:    tree,
		logger:  logger,
		rootSem: make(chan struct{}, 1),
		roots:   make(map[uint64]log.Hash),
	}
}

// TreeID returns the ID of the Trillian tree.
func (l *Log) TreeID() int64 { return l.tree.TreeId }

// Close closes the Log's gRPC connections. It is idempotent. For a log made
// by NewEmbedded, call the shutdown function instead, which calls Close.
func (l *Log) Close() error {
	l.closeMu.Lock()
	l.closed = true
	l.closeMu.Unlock()
	l.closeOnce.Do(func() {
		if l.closeConns != nil {
			l.closeErr = l.closeConns()
		}
	})
	return l.closeErr
}

// Append implements [log.Log.Append]. Leaves must be non-empty and at most
// MaxLeafSize bytes; a batch with an invalid leaf queues nothing.
func (l *Log) Append(ctx context.Context, leaves [][]byte) error {
	if len(leaves) == 0 {
		return nil
	}
	// Duplicates within the batch are dropped here: queued concurrently,
	// they would race in Trillian's storage (see retryable).
	ls := make([]*trillian.LogLeaf, 0, len(leaves))
	seen := make(map[log.Hash]bool, len(leaves))
	for i, v := range leaves {
		switch {
		case len(v) == 0:
			return fmt.Errorf("couldn't append leaf %d: %w", i, errEmptyLeaf)
		case len(v) > MaxLeafSize:
			return fmt.Errorf("couldn't append leaf %d: %w", i, errLargeLeaf)
		}
		h := log.LeafHash(v)
		if seen[h] {
			continue
		}
		seen[h] = true
		ls = append(ls, &trillian.LogLeaf{LeafValue: v, MerkleLeafHash: h[:], LeafIdentityHash: h[:]})
	}
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return fmt.Errorf("couldn't append leaves: %w", errClosed)
	}
	if err := l.queue(ctx, ls); err != nil {
		return fmt.Errorf("couldn't append leaves: %w", err)
	}
	return nil
}

// Root implements [log.Log.Root]. Calls are serialised and each root is
// checked to extend the previous one with a consistency proof; a root that
// does not, or a tree that shrinks, is an error.
func (l *Log) Root(ctx context.Context) (log.Root, error) {
	select {
	case l.rootSem <- struct{}{}:
	case <-ctx.Done():
		return log.Root{}, fmt.Errorf("couldn't read root: %w", ctx.Err())
	}
	defer func() { <-l.rootSem }()
	l.mu.Lock()
	prev := l.latest
	l.mu.Unlock()

	req := &trillian.GetLatestSignedLogRootRequest{LogId: l.tree.TreeId}
	if prev.Size > 0 {
		req.FirstTreeSize = int64(prev.Size)
	}
	resp, err := l.client.GetLatestSignedLogRoot(ctx, req)
	if err != nil {
		return log.Root{}, fmt.Errorf("couldn't read root: %w", mapError(err))
	}
	root, err := parseRoot(resp.GetSignedLogRoot())
	if err != nil {
		return log.Root{}, err
	}
	switch {
	case prev.Size == 0 && root.Size == 0:
		if root.Hash != log.EmptyRoot {
			return log.Root{}, errors.New("couldn't read root: the empty tree has a wrong root hash")
		}
	case root.Size < prev.Size:
		return log.Root{}, fmt.Errorf("couldn't read root: tree size went back from %d to %d", prev.Size, root.Size)
	case root.Size == prev.Size:
		if root.Hash != prev.Hash {
			return log.Root{}, fmt.Errorf("couldn't read root: two roots for tree size %d: %x and %x", root.Size, prev.Hash, root.Hash)
		}
	case prev.Size > 0:
		p, err := hashes(resp.GetProof().GetHashes())
		if err != nil {
			return log.Root{}, fmt.Errorf("couldn't read root: consistency proof: %w", err)
		}
		if err := log.VerifyConsistency(prev, root, p); err != nil {
			return log.Root{}, fmt.Errorf("couldn't read root: %w", err)
		}
	}
	l.remember(root, true)
	return root, nil
}

// remember records root among the recent roots and, if latest is set, as the
// latest root. l.mu must not be held.
func (l *Log) remember(root log.Root, latest bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if latest && root.Size >= l.latest.Size {
		l.latest = root
	}
	if _, ok := l.roots[root.Size]; ok {
		return
	}
	l.roots[root.Size] = root.Hash
	l.order = append(l.order, root.Size)
	if len(l.order) > recentRoots {
		delete(l.roots, l.order[0])
		l.order = l.order[1:]
	}
}

// knownRoot returns the verified root of the tree of the given size, if it is
// among the recent roots.
func (l *Log) knownRoot(size uint64) (log.Root, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.roots[size]
	return log.Root{Size: size, Hash: h}, ok
}

// checkSize returns ErrOutOfRange unless the tree has reached size, reading
// the root again only if the latest known root is smaller.
func (l *Log) checkSize(ctx context.Context, size uint64) error {
	l.mu.Lock()
	latest := l.latest.Size
	l.mu.Unlock()
	if size <= latest {
		return nil
	}
	root, err := l.Root(ctx)
	if err != nil {
		return err
	}
	if size > root.Size {
		return fmt.Errorf("%w: tree size %d > %d", log.ErrOutOfRange, size, root.Size)
	}
	return nil
}

// InclusionByHash implements [log.Log.InclusionByHash].
func (l *Log) InclusionByHash(ctx context.Context, leafHash log.Hash, treeSize uint64) (uint64, []log.Hash, error) {
	if err := l.checkSize(ctx, treeSize); err != nil {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", err)
	}
	if treeSize == 0 {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", log.ErrNotIntegrated)
	}
	resp, err := l.client.GetInclusionProofByHash(ctx, &trillian.GetInclusionProofByHashRequest{
		LogId:           l.tree.TreeId,
		LeafHash:        leafHash[:],
		TreeSize:        int64(treeSize),
		OrderBySequence: true,
	})
	if status.Code(err) == codes.NotFound {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", log.ErrNotIntegrated)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", mapError(err))
	}
	if len(resp.GetProof()) == 0 {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", log.ErrNotIntegrated)
	}
	pr := resp.GetProof()[0] // the first sequenced, with OrderBySequence
	if pr.GetLeafIndex() < 0 || uint64(pr.GetLeafIndex()) >= treeSize {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: Trillian returned index %d for tree size %d", pr.GetLeafIndex(), treeSize)
	}
	index := uint64(pr.GetLeafIndex())
	p, err := l.checkInclusion(leafHash, index, treeSize, pr.GetHashes())
	if err != nil {
		return 0, nil, fmt.Errorf("couldn't prove inclusion by hash: %w", err)
	}
	return index, p, nil
}

// InclusionProof implements [log.Log.InclusionProof].
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([]log.Hash, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("couldn't prove inclusion: %w: index %d in tree size %d", log.ErrOutOfRange, index, treeSize)
	}
	if err := l.checkSize(ctx, treeSize); err != nil {
		return nil, fmt.Errorf("couldn't prove inclusion: %w", err)
	}
	resp, err := l.client.GetEntryAndProof(ctx, &trillian.GetEntryAndProofRequest{
		LogId:     l.tree.TreeId,
		LeafIndex: int64(index),
		TreeSize:  int64(treeSize),
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't prove inclusion: %w", mapError(err))
	}
	if resp.GetProof() == nil || resp.GetLeaf() == nil {
		return nil, fmt.Errorf("couldn't prove inclusion: %w: tree size %d", log.ErrOutOfRange, treeSize)
	}
	leaf := resp.GetLeaf()
	h := log.LeafHash(leaf.GetLeafValue())
	if leaf.GetLeafIndex() != int64(index) || string(leaf.GetMerkleLeafHash()) != string(h[:]) {
		return nil, fmt.Errorf("couldn't prove inclusion: Trillian returned another leaf than index %d", index)
	}
	p, err := l.checkInclusion(h, index, treeSize, resp.GetProof().GetHashes())
	if err != nil {
		return nil, fmt.Errorf("couldn't prove inclusion: %w", err)
	}
	return p, nil
}

// checkInclusion converts an inclusion proof and checks it: against the root
// of treeSize if that root is known, otherwise only its length.
func (l *Log) checkInclusion(leafHash log.Hash, index, treeSize uint64, raw [][]byte) ([]log.Hash, error) {
	p, err := hashes(raw)
	if err != nil {
		return nil, err
	}
	if root, ok := l.knownRoot(treeSize); ok {
		if err := log.VerifyInclusion(leafHash, index, p, root); err != nil {
			return nil, err
		}
		return p, nil
	}
	nodes, err := proof.Inclusion(index, treeSize)
	if err != nil {
		return nil, err
	}
	if want := proofLen(nodes); len(p) != want {
		return nil, fmt.Errorf("%w: %d hashes, want %d", log.ErrInvalidProof, len(p), want)
	}
	return p, nil
}

// proofLen returns how many hashes a proof of nodes has: its node IDs, less
// those combined into one ephemeral node (as Rehash combines them).
func proofLen(nodes proof.Nodes) int {
	h := make([][]byte, len(nodes.IDs))
	r, err := nodes.Rehash(h, func(_, _ []byte) []byte { return nil })
	if err != nil {
		return len(nodes.IDs)
	}
	return len(r)
}

// ConsistencyProof implements [log.Log.ConsistencyProof]. The proof from the
// empty tree, and between equal sizes, is empty.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([]log.Hash, error) {
	if from > to {
		return nil, fmt.Errorf("couldn't prove consistency: %w: from size %d > to size %d", log.ErrOutOfRange, from, to)
	}
	if err := l.checkSize(ctx, to); err != nil {
		return nil, fmt.Errorf("couldn't prove consistency: %w", err)
	}
	if from == 0 || from == to {
		return []log.Hash{}, nil
	}
	resp, err := l.client.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{
		LogId:          l.tree.TreeId,
		FirstTreeSize:  int64(from),
		SecondTreeSize: int64(to),
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't prove consistency: %w", mapError(err))
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("couldn't prove consistency: %w: tree size %d", log.ErrOutOfRange, to)
	}
	p, err := hashes(resp.GetProof().GetHashes())
	if err != nil {
		return nil, fmt.Errorf("couldn't prove consistency: %w", err)
	}
	r1, ok1 := l.knownRoot(from)
	r2, ok2 := l.knownRoot(to)
	if ok1 && ok2 {
		if err := log.VerifyConsistency(r1, r2, p); err != nil {
			return nil, fmt.Errorf("couldn't prove consistency: %w", err)
		}
		return p, nil
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't prove consistency: %w", err)
	}
	if want := proofLen(nodes); len(p) != want {
		return nil, fmt.Errorf("couldn't prove consistency: %w: %d hashes, want %d", log.ErrInvalidProof, len(p), want)
	}
	return p, nil
}

// Leaves implements [log.Log.Leaves]. It returns at most MaxLeavesPerCall
// leaves, and ErrOutOfRange if start is not below the tree size.
func (l *Log) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	if count == 0 {
		return nil, nil
	}
	if err := l.checkSize(ctx, start+1); err != nil {
		return nil, fmt.Errorf("couldn't read leaves: %w", err)
	}
	count = min(count, MaxLeavesPerCall)
	resp, err := l.client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{
		LogId:      l.tree.TreeId,
		StartIndex: int64(start),
		Count:      int64(count),
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read leaves: %w", mapError(err))
	}
	if len(resp.GetLeaves()) == 0 {
		return nil, fmt.Errorf("couldn't read leaves: %w: start %d", log.ErrOutOfRange, start)
	}
	if uint64(len(resp.GetLeaves())) > count {
		return nil, fmt.Errorf("couldn't read leaves: Trillian returned %d leaves, asked for %d", len(resp.GetLeaves()), count)
	}
	out := make([][]byte, len(resp.GetLeaves()))
	for i, leaf := range resp.GetLeaves() {
		h := log.LeafHash(leaf.GetLeafValue())
		if leaf.GetLeafIndex() != int64(start)+int64(i) || string(leaf.GetMerkleLeafHash()) != string(h[:]) {
			return nil, fmt.Errorf("couldn't read leaves: Trillian returned a wrong leaf for index %d", start+uint64(i))
		}
		out[i] = leaf.GetLeafValue()
	}
	return out, nil
}

func parseRoot(slr *trillian.SignedLogRoot) (log.Root, error) {
	var r types.LogRootV1
	if err := r.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return log.Root{}, fmt.Errorf("couldn't parse Trillian log root: %w", err)
	}
	if len(r.RootHash) != len(log.Hash{}) {
		return log.Root{}, fmt.Errorf("couldn't parse Trillian log root: %d-byte root hash", len(r.RootHash))
	}
	return log.Root{Size: r.TreeSize, Hash: log.Hash(r.RootHash)}, nil
}

func hashes(raw [][]byte) ([]log.Hash, error) {
	p := make([]log.Hash, len(raw))
	for i, h := range raw {
		if len(h) != len(log.Hash{}) {
			return nil, fmt.Errorf("%w: %d-byte hash", log.ErrInvalidProof, len(h))
		}
		p[i] = log.Hash(h)
	}
	return p, nil
}

// mapError maps Trillian's OutOfRange status to log.ErrOutOfRange and keeps
// any other error as it is.
func mapError(err error) error {
	if status.Code(err) == codes.OutOfRange {
		return fmt.Errorf("%w: %v", log.ErrOutOfRange, status.Convert(err).Message())
	}
	return err
}

// retryable reports whether a queueing error is worth retrying: a deadlock,
// transient unavailability, or Trillian's MySQL storage losing a race on a
// duplicate leaf. In that last case two transactions queue the same leaf at
// once; the second hits the duplicate key, but its snapshot predates the
// first's commit, so it cannot read the existing leaf back and fails with
// "failed to retrieve all existing leaves". A new transaction sees it.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Aborted, codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return strings.Contains(err.Error(), "failed to retrieve all existing leaves")
}

// withRetries calls f until it succeeds, fails with an error that is not
// retryable, or has failed attempts times, backing off in between.
func withRetries(ctx context.Context, attempts int, f func() error) error {
	backoff := 20 * time.Millisecond
	for i := 1; ; i++ {
		err := f()
		if err == nil || i == attempts || !retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff *= 2
	}
}

// checkQueued checks the per-leaf statuses of a queueing call: queued and
// already-present leaves are both fine.
func checkQueued(queued []*trillian.QueuedLogLeaf, n int) error {
	if len(queued) != n {
		return fmt.Errorf("Trillian queued %d leaves, want %d", len(queued), n)
	}
	for i, q := range queued {
		if err := checkStatus(q); err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
	}
	return nil
}

// checkStatus returns the error of a leaf that was neither queued nor
// already present.
func checkStatus(q *trillian.QueuedLogLeaf) error {
	switch codes.Code(q.GetStatus().GetCode()) {
	case codes.OK, codes.AlreadyExists:
		return nil
	}
	return status.ErrorProto(q.GetStatus())
}

// grpcCallOptions are the call options for every log client.
var grpcCallOptions = []grpc.CallOption{grpc.MaxCallRecvMsgSize(maxRecvMsgSize)}
