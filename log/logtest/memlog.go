// Package logtest helps test code built on [log.Log]: [MemLog] is a
// complete in-memory log whose integration the test drives, and [Run] is the
// oracle test every implementation of log.Log must pass (it compares what the
// log returns with an in-memory reference tree, as Trillian's integration
// tests do).
package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/vitalproof/vitalproof/log"
)

// MemLog is an in-memory [log.Log]. Appended leaves are queued until the test
// calls Integrate (or AutoIntegrate), so tests can observe both states. It is
// safe for concurrent use.
type MemLog struct {
	mu     sync.Mutex
	tree   *testonly.Tree
	leaves [][]byte
	index  map[log.Hash]uint64
	queued map[log.Hash]bool
	queue  [][]byte
	err    error
}

var _ log.Log = (*MemLog)(nil)

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog {
	return &MemLog{
		tree:   testonly.New(rfc6962.DefaultHasher),
		index:  make(map[log.Hash]uint64),
		queued: make(map[log.Hash]bool),
	}
}

// SetError makes every following call fail with err, until SetError(nil).
func (m *MemLog) SetError(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

// Integrate integrates every queued leaf, in the order they were queued, and
// returns the new root.
func (m *MemLog) Integrate() log.Root {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.queue {
		h := log.LeafHash(v)
		m.index[h] = uint64(len(m.leaves))
		m.leaves = append(m.leaves, v)
		m.tree.AppendData(v)
		delete(m.queued, h)
	}
	m.queue = nil
	return m.root()
}

// AutoIntegrate integrates queued leaves every interval until ctx is done,
// like a sequencer.
func (m *MemLog) AutoIntegrate(ctx context.Context, interval time.Duration) {
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.Integrate()
			}
		}
	}()
}

func (m *MemLog) root() log.Root {
	return log.Root{Size: m.tree.Size(), Hash: log.Hash(m.tree.Hash())}
}

// Append implements [log.Log.Append].
func (m *MemLog) Append(ctx context.Context, leaves [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for _, v := range leaves {
		if len(v) == 0 {
			return errors.New("empty leaf")
		}
	}
	for _, v := range leaves {
		h := log.LeafHash(v)
		if _, ok := m.index[h]; ok || m.queued[h] {
			continue
		}
		m.queued[h] = true
		m.queue = append(m.queue, append([]byte(nil), v...))
	}
	return nil
}

// Root implements [log.Log.Root].
func (m *MemLog) Root(ctx context.Context) (log.Root, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return log.Root{}, m.err
	}
	return m.root(), nil
}

// InclusionByHash implements [log.Log.InclusionByHash].
func (m *MemLog) InclusionByHash(ctx context.Context, leafHash log.Hash, treeSize uint64) (uint64, []log.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, nil, m.err
	}
	if treeSize > m.tree.Size() {
		return 0, nil, log.ErrOutOfRange
	}
	i, ok := m.index[leafHash]
	if !ok || i >= treeSize {
		return 0, nil, log.ErrNotIntegrated
	}
	p, err := m.tree.InclusionProof(i, treeSize)
	return i, toHashes(p), err
}

// InclusionProof implements [log.Log.InclusionProof].
func (m *MemLog) InclusionProof(ctx context.Context, index, treeSize uint64) ([]log.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if index >= treeSize || treeSize > m.tree.Size() {
		return nil, fmt.Errorf("%w: index %d, tree size %d", log.ErrOutOfRange, index, treeSize)
	}
	p, err := m.tree.InclusionProof(index, treeSize)
	return toHashes(p), err
}

// ConsistencyProof implements [log.Log.ConsistencyProof].
func (m *MemLog) ConsistencyProof(ctx context.Context, from, to uint64) ([]log.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if from > to || to > m.tree.Size() {
		return nil, fmt.Errorf("%w: from %d, to %d", log.ErrOutOfRange, from, to)
	}
	p, err := m.tree.ConsistencyProof(from, to)
	return toHashes(p), err
}

// Leaves implements [log.Log.Leaves].
func (m *MemLog) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if count == 0 {
		return nil, nil
	}
	if start >= uint64(len(m.leaves)) {
		return nil, log.ErrOutOfRange
	}
	end := min(start+count, uint64(len(m.leaves)))
	out := make([][]byte, 0, end-start)
	for _, v := range m.leaves[start:end] {
		out = append(out, append([]byte(nil), v...))
	}
	return out, nil
}

func toHashes(p [][]byte) []log.Hash {
	out := make([]log.Hash, len(p))
	for i := range p {
		out[i] = log.Hash(p[i])
	}
	return out
}
