package log_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/logtest"
)

func TestAwaiterScan(t *testing.T) {
	ctx := t.Context()
	m := logtest.NewMemLog()
	a := log.NewAwaiter(ctx, m, time.Millisecond)
	defer a.Close()

	// Several waiters, two on the same leaf.
	leaves := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	var wg sync.WaitGroup
	got := make([]uint64, 4)
	errs := make([]error, 4)
	for i, v := range append(leaves, leaves[1]) {
		wg.Go(func() {
			got[i], _, errs[i] = a.Await(ctx, log.LeafHash(v))
		})
	}
	time.Sleep(20 * time.Millisecond) // the awaiter has started polling
	if err := m.Append(ctx, leaves); err != nil {
		t.Fatal(err)
	}
	m.Integrate()
	wg.Wait()
	for i, want := range []uint64{0, 1, 2, 1} {
		if errs[i] != nil || got[i] != want {
			t.Errorf("waiter %d: Await = %d, %v; want %d", i, got[i], errs[i], want)
		}
	}
}

func TestAwaiterLookup(t *testing.T) {
	ctx := t.Context()
	m := logtest.NewMemLog()
	a := log.NewAwaiter(ctx, m, time.Millisecond)
	defer a.Close()

	// Integrated before anyone waited.
	m.Append(ctx, [][]byte{[]byte("early")})
	m.Integrate()
	if i, r, err := a.Await(ctx, log.LeafHash([]byte("early"))); err != nil || i != 0 || r.Size != 1 {
		t.Fatalf("Await(early) = %d, %v, %v", i, r, err)
	}

	// Integrated while nobody waited, after the awaiter started.
	m.Append(ctx, [][]byte{[]byte("while idle")})
	m.Integrate()
	time.Sleep(10 * time.Millisecond)
	if i, _, err := a.Await(ctx, log.LeafHash([]byte("while idle"))); err != nil || i != 1 {
		t.Fatalf("Await(while idle) = %d, %v", i, err)
	}

	// The tree grows by more than the scan limit at once: the waiter is
	// looked up instead.
	var many [][]byte
	for i := range 10_050 {
		many = append(many, fmt.Appendf(nil, "many %d", i))
	}
	res := make(chan error, 1)
	go func() {
		i, _, err := a.Await(ctx, log.LeafHash(many[10_000]))
		if err == nil && i != 2+10_000 {
			err = fmt.Errorf("index %d", i)
		}
		res <- err
	}()
	time.Sleep(10 * time.Millisecond)
	m.Append(ctx, many)
	m.Integrate()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Await after a large jump: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Await after a large jump did not return")
	}
}

func TestAwaiterErrors(t *testing.T) {
	ctx := t.Context()
	m := logtest.NewMemLog()
	a := log.NewAwaiter(ctx, m, time.Millisecond)
	defer a.Close()

	m.SetError(errors.New("database on fire"))
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _, err := a.Await(cctx, log.LeafHash([]byte("x")))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "database on fire") {
		t.Errorf("Await while the log fails = %v, want DeadlineExceeded mentioning the log's error", err)
	}

	// The log recovers: waiting works again.
	m.SetError(nil)
	m.Append(ctx, [][]byte{[]byte("x")})
	m.Integrate()
	if i, _, err := a.Await(ctx, log.LeafHash([]byte("x"))); err != nil || i != 0 {
		t.Errorf("Await after recovery = %d, %v", i, err)
	}

	// The parent context ends: pending waiters fail, later ones too.
	pctx, pcancel := context.WithCancel(ctx)
	b := log.NewAwaiter(pctx, m, time.Millisecond)
	defer b.Close()
	pcancel()
	time.Sleep(10 * time.Millisecond)
	b.Close()
	if _, _, err := b.Await(ctx, log.LeafHash([]byte("x"))); err == nil {
		t.Error("Await on a closed awaiter returned no error")
	}
	b.Close() // idempotent
}
