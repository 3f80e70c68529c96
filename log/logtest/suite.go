package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/vitalproof/vitalproof/log"
)

// Options configure [Run].
type Options struct {
	// Rounds of appends; the root after each is kept, to check proofs in
	// and between historical trees. Default 3.
	Rounds int
	// LeavesPerRound is how many distinct new leaves each round appends
	// (with duplicates on top). Default 200.
	LeavesPerRound int
	// Timeout bounds the wait for one round's integration. Default 60s.
	Timeout time.Duration
	// Integrate, if set, is called after each Append; for logs that do not
	// sequence by themselves, such as MemLog (pass its Integrate).
	Integrate func()
	// Settle is how long to wait before checking that appending leaves again
	// added nothing. Default 300ms.
	Settle time.Duration
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.LeavesPerRound <= 0 {
		o.LeavesPerRound = 200
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Integrate == nil {
		o.Integrate = func() {}
	}
	if o.Settle <= 0 {
		o.Settle = 300 * time.Millisecond
	}
}

// Run is the oracle test of a [log.Log], which must be empty: it appends
// rounds of leaves (some duplicated within and across rounds), waits for
// their integration, reads them back, and compares every root, inclusion
// proof (by index and by hash) and consistency proof between the rounds'
// trees with an in-memory reference tree built from the leaves in the order
// the log integrated them. It checks the ErrOutOfRange and ErrNotIntegrated
// cases, that appending leaves again adds nothing, and runs an [log.Awaiter]
// against the log.
func Run(t *testing.T, l log.Log, o Options) {
	t.Helper()
	o.defaults()
	ctx := t.Context()

	root0, err := l.Root(ctx)
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	if root0.Size != 0 || root0.Hash != log.EmptyRoot {
		t.Fatalf("Root of a new log = %d %x, want the empty tree", root0.Size, root0.Hash)
	}
	checkEmpty(t, l)

	var (
		all   [][]byte // distinct leaves in append order
		seen  = map[log.Hash]int{}
		roots = []log.Root{root0}
		round = map[log.Hash]int{} // round that first appended each leaf
	)
	for r := range o.Rounds {
		var batch [][]byte
		for i := range o.LeavesPerRound {
			v := fmt.Appendf(nil, "logtest round %d leaf %d", r, i)
			batch = append(batch, v)
			if i%10 == 0 {
				batch = append(batch, v) // duplicate within the batch
			}
		}
		for i := 0; i < len(all) && i < 5; i++ {
			batch = append(batch, all[i]) // duplicates of earlier rounds
		}
		for _, v := range batch {
			h := log.LeafHash(v)
			if _, ok := seen[h]; !ok {
				seen[h] = len(all)
				round[h] = r + 1
				all = append(all, v)
			}
		}
		// Four concurrent Appends of the whole batch, each starting at
		// another place: every leaf is queued up to five times at once.
		errs := make(chan error, 4)
		for g := range 4 {
			go func() {
				k := g * len(batch) / 4
				errs <- l.Append(ctx, append(append([][]byte(nil), batch[k:]...), batch[:k]...))
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: Append: %v", r, err)
			}
		}
		o.Integrate()
		roots = append(roots, waitForSize(t, l, uint64(len(all)), o.Timeout))
	}
	size := uint64(len(all))

	// The leaves, in integration order: each appended leaf exactly once,
	// each in the tree of the round that appended it.
	got := readAll(t, l, size)
	ref := testonly.New(rfc6962.DefaultHasher)
	ref.AppendData(got...)
	indexOf := map[log.Hash]uint64{}
	for i, v := range got {
		h := log.LeafHash(v)
		if _, ok := seen[h]; !ok {
			t.Fatalf("leaf %d was never appended", i)
		}
		if _, ok := indexOf[h]; ok {
			t.Fatalf("leaf %d is a duplicate", i)
		}
		indexOf[h] = uint64(i)
		if r := round[h]; uint64(i) >= roots[r].Size {
			t.Errorf("leaf %d appended in round %d is not in that round's tree of size %d", i, r, roots[r].Size)
		}
	}

	for _, r := range roots {
		if want := log.Hash(ref.HashAt(r.Size)); r.Hash != want {
			t.Errorf("root of size %d = %x, want %x", r.Size, r.Hash, want)
		}
	}
	checkInclusion(t, l, ref, got, roots)
	checkConsistency(t, l, ref, roots)
	checkLeavesRanges(t, l, got)
	checkOutOfRange(t, l, got)

	// Appending everything again adds nothing.
	if err := l.Append(ctx, all); err != nil {
		t.Fatalf("Append again: %v", err)
	}
	o.Integrate()
	time.Sleep(o.Settle)
	if r, err := l.Root(ctx); err != nil || r != roots[len(roots)-1] {
		t.Errorf("after appending the same leaves again, Root = %v, %v; want %v", r, err, roots[len(roots)-1])
	}

	t.Run("Awaiter", func(t *testing.T) { checkAwaiter(t, l, got, o) })
}

func checkEmpty(t *testing.T, l log.Log) {
	t.Helper()
	ctx := t.Context()
	if _, err := l.InclusionProof(ctx, 0, 1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("empty log: InclusionProof(0, 1) error = %v, want ErrOutOfRange", err)
	}
	if _, err := l.ConsistencyProof(ctx, 0, 1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("empty log: ConsistencyProof(0, 1) error = %v, want ErrOutOfRange", err)
	}
	if _, err := l.Leaves(ctx, 0, 1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("empty log: Leaves(0, 1) error = %v, want ErrOutOfRange", err)
	}
	if _, _, err := l.InclusionByHash(ctx, log.LeafHash([]byte("x")), 0); !errors.Is(err, log.ErrNotIntegrated) {
		t.Errorf("empty log: InclusionByHash(h, 0) error = %v, want ErrNotIntegrated", err)
	}
}

func waitForSize(t *testing.T, l log.Log, size uint64, timeout time.Duration) log.Root {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := l.Root(t.Context())
		if err != nil {
			t.Fatalf("Root: %v", err)
		}
		if r.Size == size {
			return r
		}
		if r.Size > size {
			t.Fatalf("tree size %d, want %d: duplicates were integrated", r.Size, size)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree size %d after %v, want %d", r.Size, timeout, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAll(t *testing.T, l log.Log, size uint64) [][]byte {
	t.Helper()
	var got [][]byte
	for uint64(len(got)) < size {
		ls, err := l.Leaves(t.Context(), uint64(len(got)), size-uint64(len(got)))
		if err != nil {
			t.Fatalf("Leaves(%d, %d): %v", len(got), size-uint64(len(got)), err)
		}
		if len(ls) == 0 {
			t.Fatalf("Leaves(%d, %d) returned nothing", len(got), size-uint64(len(got)))
		}
		got = append(got, ls...)
	}
	if uint64(len(got)) != size {
		t.Fatalf("read %d leaves, want %d", len(got), size)
	}
	return got
}

func checkInclusion(t *testing.T, l log.Log, ref *testonly.Tree, leaves [][]byte, roots []log.Root) {
	t.Helper()
	ctx := t.Context()
	last := roots[len(roots)-1]
	for _, r := range roots[1:] {
		step := uint64(7)
		if r == last {
			step = 2 // every other leaf in the final tree
		}
		for i := uint64(0); i < r.Size; i += step {
			want := toHashes(must(ref.InclusionProof(i, r.Size)))
			p, err := l.InclusionProof(ctx, i, r.Size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, r.Size, err)
			}
			if !equalHashes(p, want) {
				t.Fatalf("InclusionProof(%d, %d) differs from the reference", i, r.Size)
			}
			h := log.LeafHash(leaves[i])
			if err := log.VerifyInclusion(h, i, p, r); err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, r.Size, err)
			}
			idx, p, err := l.InclusionByHash(ctx, h, r.Size)
			if err != nil {
				t.Fatalf("InclusionByHash(leaf %d, %d): %v", i, r.Size, err)
			}
			if idx != i || !equalHashes(p, want) {
				t.Fatalf("InclusionByHash(leaf %d, %d) = index %d and a proof that differs: %v", i, r.Size, idx, !equalHashes(p, want))
			}
		}
	}
	// A leaf is not in a tree that precedes it.
	for _, r := range roots[1 : len(roots)-1] {
		h := log.LeafHash(leaves[r.Size])
		if _, _, err := l.InclusionByHash(ctx, h, r.Size); !errors.Is(err, log.ErrNotIntegrated) {
			t.Errorf("InclusionByHash(leaf %d, %d) error = %v, want ErrNotIntegrated", r.Size, r.Size, err)
		}
	}
}

func checkConsistency(t *testing.T, l log.Log, ref *testonly.Tree, roots []log.Root) {
	t.Helper()
	for i, r1 := range roots {
		for _, r2 := range roots[i:] {
			p, err := l.ConsistencyProof(t.Context(), r1.Size, r2.Size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", r1.Size, r2.Size, err)
			}
			if want := toHashes(must(ref.ConsistencyProof(r1.Size, r2.Size))); !equalHashes(p, want) {
				t.Fatalf("ConsistencyProof(%d, %d) differs from the reference", r1.Size, r2.Size)
			}
			if err := log.VerifyConsistency(r1, r2, p); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", r1.Size, r2.Size, err)
			}
		}
	}
}

func checkLeavesRanges(t *testing.T, l log.Log, leaves [][]byte) {
	t.Helper()
	size := uint64(len(leaves))
	for _, tc := range []struct{ start, count uint64 }{
		{0, 1}, {1, 3}, {size - 1, 1}, {size - 1, 10}, {size / 2, size},
	} {
		got, err := l.Leaves(t.Context(), tc.start, tc.count)
		if err != nil {
			t.Fatalf("Leaves(%d, %d): %v", tc.start, tc.count, err)
		}
		if len(got) == 0 || uint64(len(got)) > tc.count || tc.start+uint64(len(got)) > size {
			t.Fatalf("Leaves(%d, %d) returned %d leaves", tc.start, tc.count, len(got))
		}
		for i, v := range got {
			if !bytes.Equal(v, leaves[tc.start+uint64(i)]) {
				t.Fatalf("Leaves(%d, %d)[%d] is not leaf %d", tc.start, tc.count, i, tc.start+uint64(i))
			}
		}
	}
	if got, err := l.Leaves(t.Context(), 0, 0); err != nil || len(got) != 0 {
		t.Errorf("Leaves(0, 0) = %d leaves, %v; want none", len(got), err)
	}
}

func checkOutOfRange(t *testing.T, l log.Log, leaves [][]byte) {
	t.Helper()
	ctx := t.Context()
	size := uint64(len(leaves))
	if _, err := l.InclusionProof(ctx, size, size); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("InclusionProof(%d, %d) error = %v, want ErrOutOfRange", size, size, err)
	}
	if _, err := l.InclusionProof(ctx, 0, size+1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("InclusionProof(0, %d) error = %v, want ErrOutOfRange", size+1, err)
	}
	if _, err := l.ConsistencyProof(ctx, 1, size+1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("ConsistencyProof(1, %d) error = %v, want ErrOutOfRange", size+1, err)
	}
	if _, err := l.Leaves(ctx, size, 1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("Leaves(%d, 1) error = %v, want ErrOutOfRange", size, err)
	}
	if _, _, err := l.InclusionByHash(ctx, log.LeafHash(leaves[0]), size+1); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("InclusionByHash(leaf 0, %d) error = %v, want ErrOutOfRange", size+1, err)
	}
	if _, _, err := l.InclusionByHash(ctx, log.LeafHash([]byte("never appended")), size); !errors.Is(err, log.ErrNotIntegrated) {
		t.Errorf("InclusionByHash(unknown, %d) error = %v, want ErrNotIntegrated", size, err)
	}
}

func checkAwaiter(t *testing.T, l log.Log, leaves [][]byte, o Options) {
	ctx := t.Context()
	a := log.NewAwaiter(ctx, l, 10*time.Millisecond)
	defer a.Close()

	// A leaf integrated before Await is found by looking it up.
	i, r, err := a.Await(ctx, log.LeafHash(leaves[3]))
	if err != nil || i != 3 || r.Size < 4 {
		t.Fatalf("Await(integrated leaf 3) = %d, %v, %v", i, r, err)
	}

	// New leaves are found by the scan, whoever waits for them.
	var fresh [][]byte
	for i := range 25 {
		fresh = append(fresh, fmt.Appendf(nil, "logtest awaited leaf %d", i))
	}
	type result struct {
		n     int
		index uint64
		root  log.Root
		err   error
	}
	results := make(chan result, len(fresh))
	for n, v := range fresh {
		go func() {
			i, r, err := a.Await(ctx, log.LeafHash(v))
			results <- result{n, i, r, err}
		}()
	}
	if err := l.Append(ctx, fresh); err != nil {
		t.Fatalf("Append: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // let the awaiter poll before integration
	o.Integrate()
	for range fresh {
		var res result
		select {
		case res = <-results:
		case <-time.After(o.Timeout):
			t.Fatal("Await did not return")
		}
		if res.err != nil {
			t.Fatalf("Await(fresh leaf %d): %v", res.n, res.err)
		}
		if res.index >= res.root.Size || res.index < uint64(len(leaves)) {
			t.Fatalf("Await(fresh leaf %d) = index %d in tree %d", res.n, res.index, res.root.Size)
		}
		got, err := l.Leaves(ctx, res.index, 1)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0], fresh[res.n]) {
			t.Fatalf("Await(fresh leaf %d) = index %d, which holds another leaf (%v)", res.n, res.index, err)
		}
		p, err := l.InclusionProof(ctx, res.index, res.root.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.VerifyInclusion(log.LeafHash(fresh[res.n]), res.index, p, res.root); err != nil {
			t.Fatalf("Await(fresh leaf %d) returned a root that does not include it: %v", res.n, err)
		}
	}

	// A leaf never appended: Await gives up with the context.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := a.Await(cctx, log.LeafHash([]byte("never"))); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Await(never appended) error = %v, want DeadlineExceeded", err)
	}

	// Close fails pending waiters.
	done := make(chan error, 1)
	go func() {
		_, _, err := a.Await(ctx, log.LeafHash([]byte("never either")))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Await after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Error("Close did not fail a pending Await")
	}
	if _, _, err := a.Await(ctx, log.LeafHash(leaves[0])); err == nil {
		t.Error("Await on a closed Awaiter returned no error")
	}
}

func equalHashes(a, b []log.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
