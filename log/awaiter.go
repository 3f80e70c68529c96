package log

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultAwaitInterval is how often an [Awaiter] polls the log while someone
// waits. It matches the embedded Trillian sequencer's default interval, so a
// leaf is usually seen within one or two sequencing passes.
const DefaultAwaitInterval = 50 * time.Millisecond

const (
	// awaitScanLimit bounds how many new leaves one poll reads to find the
	// waited-for hashes. Beyond it the awaiter looks each waiter up by hash
	// instead (cheaper when few wait and the tree grew a lot).
	awaitScanLimit = 10_000
	// awaitLookupAfter is how many intervals a waiter waits before the
	// awaiter also looks its hash up in the whole tree, which finds leaves
	// integrated before Await was called (resubmissions, duplicates).
	awaitLookupAfter = 10
	// awaitPollTimeout bounds the log calls of one poll.
	awaitPollTimeout = 30 * time.Second
)

var errAwaiterClosed = errors.New("awaiter is closed")

// An Awaiter waits for queued leaves to be integrated, for many callers at
// once, with one poll loop: it is the counterpart of [Log.Append], as
// Tessera's PublicationAwaiter is of its Add.
//
// Each poll reads the latest root and, if the tree grew, the new leaves, and
// resolves every waiter whose leaf hash is among them. A waiter that is not
// resolved after a few polls is also looked up by hash in the whole tree
// once, so leaves integrated before Await was called are found too.
//
// An Awaiter only reads the log; it is safe for concurrent use.
type Awaiter struct {
	log      Log
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
	wake     chan struct{}

	mu      sync.Mutex
	closed  bool
	waiters map[Hash][]*waiter
	// scanned is the tree size up to which leaves were read for waiters;
	// valid once started is set.
	scanned uint64
	started bool
	lastErr error
}

type waiter struct {
	ch        chan awaitResult // buffered, receives exactly one result
	polls     int              // polls since registration
	lookedUp  bool             // found absent from the tree of size >= registration's scanned
	needsLook bool             // must be looked up at the next poll
}

type awaitResult struct {
	index uint64
	root  Root
	err   error
}

// NewAwaiter starts an Awaiter polling l every interval (DefaultAwaitInterval
// if interval is not positive) while anyone waits. It stops when ctx is done
// or Close is called; call Close in any case to release it.
func NewAwaiter(ctx context.Context, l Log, interval time.Duration) *Awaiter {
	if interval <= 0 {
		interval = DefaultAwaitInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &Awaiter{
		log:      l,
		interval: interval,
		cancel:   cancel,
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		waiters:  make(map[Hash][]*waiter),
	}
	go a.loop(ctx)
	return a
}

// Await blocks until the leaf with the RFC 6962 leaf hash leafHash (see
// [LeafHash]) is integrated and returns its index and a root of a tree that
// contains it. It returns an error when ctx is done first (wrapping
// ctx.Err() and mentioning the last error reading the log, if any) or when
// the Awaiter is closed.
func (a *Awaiter) Await(ctx context.Context, leafHash Hash) (uint64, Root, error) {
	w := &waiter{ch: make(chan awaitResult, 1)}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return 0, Root{}, fmt.Errorf("couldn't await leaf: %w", errAwaiterClosed)
	}
	a.waiters[leafHash] = append(a.waiters[leafHash], w)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}

	select {
	case r := <-w.ch:
		return r.index, r.root, r.err
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.remove(leafHash, w)
	select {
	case r := <-w.ch: // resolved while we were giving up: take it
		return r.index, r.root, r.err
	default:
	}
	if a.lastErr != nil {
		return 0, Root{}, fmt.Errorf("couldn't await leaf: %w (last error reading the log: %v)", ctx.Err(), a.lastErr)
	}
	return 0, Root{}, fmt.Errorf("couldn't await leaf: %w", ctx.Err())
}

// Close stops the poll loop and fails every pending Await. It is idempotent.
func (a *Awaiter) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return
	}
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, ws := range a.waiters {
		for _, w := range ws {
			w.ch <- awaitResult{err: fmt.Errorf("couldn't await leaf: %w", errAwaiterClosed)}
		}
		delete(a.waiters, h)
	}
}

// remove drops w from the waiters of h. a.mu must be held.
func (a *Awaiter) remove(h Hash, w *waiter) {
	ws := a.waiters[h]
	for i := range ws {
		if ws[i] == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(a.waiters, h)
	} else {
		a.waiters[h] = ws
	}
}

// resolve hands index and root to every waiter of h. a.mu must be held.
func (a *Awaiter) resolve(h Hash, index uint64, root Root) {
	for _, w := range a.waiters[h] {
		w.ch <- awaitResult{index: index, root: root}
	}
	delete(a.waiters, h)
}

func (a *Awaiter) loop(ctx context.Context) {
	defer close(a.done)
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		a.mu.Lock()
		idle := len(a.waiters) == 0
		a.mu.Unlock()
		if idle {
			select {
			case <-a.wake:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		pctx, cancel := context.WithTimeout(ctx, awaitPollTimeout)
		err := a.poll(pctx)
		cancel()
		a.mu.Lock()
		a.lastErr = err
		a.mu.Unlock()
	}
}

// poll reads the latest root, scans the leaves added since the last poll and
// looks up the waiters that are due for it.
func (a *Awaiter) poll(ctx context.Context) error {
	root, err := a.log.Root(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read root: %w", err)
	}
	a.mu.Lock()
	for _, ws := range a.waiters {
		for _, w := range ws {
			w.polls++
		}
	}
	if !a.started || root.Size < a.scanned || root.Size-a.scanned > awaitScanLimit || len(a.waiters) == 0 {
		// Nothing read yet, or too much (or nobody) to read: skip ahead
		// and look everyone present up instead.
		a.skipTo(root.Size)
	}
	start := a.scanned
	a.mu.Unlock()

	for start < root.Size {
		leaves, err := a.log.Leaves(ctx, start, root.Size-start)
		if err != nil {
			return fmt.Errorf("couldn't read leaves from %d: %w", start, err)
		}
		if len(leaves) == 0 {
			return fmt.Errorf("couldn't read leaves from %d: none returned below tree size %d", start, root.Size)
		}
		a.mu.Lock()
		for i, leaf := range leaves {
			h := LeafHash(leaf)
			if _, ok := a.waiters[h]; ok {
				a.resolve(h, start+uint64(i), root)
			}
		}
		start += uint64(len(leaves))
		a.scanned = start
		a.mu.Unlock()
	}

	// Waiters still pending are not in [since, root.Size); look up those
	// that waited long enough (or were skipped over) in the whole tree.
	var dues []awaitDue
	a.mu.Lock()
	for h, ws := range a.waiters {
		var d []*waiter
		for _, w := range ws {
			if w.needsLook || (!w.lookedUp && w.polls >= awaitLookupAfter) {
				d = append(d, w)
			}
		}
		if len(d) > 0 {
			dues = append(dues, awaitDue{h, d})
		}
	}
	a.mu.Unlock()
	for _, d := range dues {
		var index uint64
		err := ErrNotIntegrated // nothing is in the empty tree
		if root.Size > 0 {
			index, _, err = a.log.InclusionByHash(ctx, d.h, root.Size)
		}
		if errors.Is(err, ErrNotIntegrated) {
			a.mu.Lock()
			for _, w := range d.w {
				w.lookedUp, w.needsLook = true, false
			}
			a.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("couldn't look up a leaf by hash: %w", err)
		}
		a.mu.Lock()
		a.resolve(d.h, index, root)
		a.mu.Unlock()
	}
	return nil
}

// skipTo moves the scan position to size without reading leaves, so every
// pending waiter must be looked up. a.mu must be held.
func (a *Awaiter) skipTo(size uint64) {
	a.started = true
	a.scanned = size
	for _, ws := range a.waiters {
		for _, w := range ws {
			w.needsLook = true
		}
	}
}

// awaitDue is a leaf hash whose waiters are due for a lookup.
type awaitDue struct {
	h Hash
	w []*waiter
}
