package trillianlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/logtest"
)

// testLogger logs Warn and above to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startEmbedded(t testing.TB, dsn string) (*Log, func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, shutdown, err := NewEmbedded(ctx, EmbeddedOptions{DSN: dsn, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewEmbedded: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return l, shutdown
}

func TestEmbeddedOracle(t *testing.T) {
	l, _ := startEmbedded(t, testdb.New(t))
	logtest.Run(t, l, logtest.Options{})
}

func TestEmbeddedRestart(t *testing.T) {
	dsn := testdb.New(t)
	ctx := t.Context()
	l1, shutdown1 := startEmbedded(t, dsn)
	var first [][]byte
	for i := range 50 {
		first = append(first, fmt.Appendf(nil, "before restart %d", i))
	}
	if err := l1.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	root1 := waitForSize(t, l1, 50)
	// Queued but (probably) not integrated when the log stops: Append's
	// durability promise says they are integrated after the restart.
	var queued [][]byte
	for i := range 500 {
		queued = append(queued, fmt.Appendf(nil, "queued at shutdown %d", i))
	}
	if err := l1.Append(ctx, queued); err != nil {
		t.Fatal(err)
	}
	if err := shutdown1(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := l1.Append(ctx, [][]byte{[]byte("after shutdown")}); err == nil {
		t.Error("Append after shutdown succeeded")
	}

	l2, _ := startEmbedded(t, dsn)
	if l2.TreeID() != l1.TreeID() {
		t.Fatalf("tree ID after restart = %d, want %d", l2.TreeID(), l1.TreeID())
	}
	root2 := waitForSize(t, l2, 550)
	p, err := l2.ConsistencyProof(ctx, root1.Size, root2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.VerifyConsistency(root1, root2, p); err != nil {
		t.Fatalf("tree after restart does not extend the tree before: %v", err)
	}
	for _, v := range append(first, queued...) {
		if _, _, err := l2.InclusionByHash(ctx, log.LeafHash(v), root2.Size); err != nil {
			t.Fatalf("leaf %q lost across restart: %v", v, err)
		}
	}
}

func TestEmbeddedOptions(t *testing.T) {
	dsn := testdb.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		opts EmbeddedOptions
	}{
		{"no DSN", EmbeddedOptions{}},
		{"tree name too long", EmbeddedOptions{DSN: dsn, TreeName: strings.Repeat("x", MaxTreeNameLength+1)}},
		{"tree name with spaces", EmbeddedOptions{DSN: dsn, TreeName: " x"}},
		{"bad DSN", EmbeddedOptions{DSN: "not a dsn"}},
		{"no server", EmbeddedOptions{DSN: "root@tcp(127.0.0.1:1)/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = testLogger(t)
			if _, _, err := NewEmbedded(ctx, tc.opts); err == nil {
				t.Error("NewEmbedded succeeded")
			}
		})
	}
	o := EmbeddedOptions{DSN: "user:secret@tcp(db:3306)/trillian"}.withDefaults()
	if s := slog.AnyValue(o).Resolve().String(); strings.Contains(s, "secret") || !strings.Contains(s, "vitalproof") {
		t.Errorf("options log as %s", s)
	}
}

func TestAppendValidation(t *testing.T) {
	l, _ := startEmbedded(t, testdb.New(t))
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		leaves [][]byte
	}{
		{"empty leaf", [][]byte{[]byte("ok"), {}}},
		{"large leaf", [][]byte{[]byte("ok"), make([]byte, MaxLeafSize+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Append(ctx, tc.leaves); err == nil {
				t.Error("Append succeeded")
			}
		})
	}
	if err := l.Append(ctx, nil); err != nil {
		t.Errorf("Append(nil) = %v", err)
	}
	if err := l.Append(ctx, [][]byte{make([]byte, MaxLeafSize)}); err != nil {
		t.Errorf("Append(leaf of MaxLeafSize) = %v", err)
	}
	waitForSize(t, l, 1) // and not the leaves of the refused batches
}

func TestApplySchema(t *testing.T) {
	if n := len(statements(Schema)); n != 9 {
		t.Errorf("Schema has %d statements, want 9 (7 tables, 2 indexes)", n)
	}
	dsn := testdb.New(t)
	l, shutdown := startEmbedded(t, dsn)
	_ = l
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A second start applies the schema again over the existing tables
	// and indexes.
	startEmbedded(t, dsn)
}

func waitForSize(t testing.TB, l *Log, size uint64) log.Root {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := l.Root(context.Background())
		if err != nil {
			t.Fatalf("Root: %v", err)
		}
		if r.Size == size {
			return r
		}
		if r.Size > size || time.Now().After(deadline) {
			t.Fatalf("tree size %d, want %d", r.Size, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkAppend measures Append of batches of 1000 new leaves to the
// embedded log (queueing, durably), and how fast the sequencer integrates
// them.
func BenchmarkAppend(b *testing.B) {
	l, _ := startEmbedded(b, testdb.New(b))
	ctx := context.Background()
	start, err := l.Root(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	n := 0
	t0 := time.Now()
	for b.Loop() {
		leaves := make([][]byte, batch)
		for i := range leaves {
			leaves[i] = fmt.Appendf(nil, "benchmark leaf %d: %0200d", n+i, 0) // about the size of an entry
		}
		if err := l.Append(ctx, leaves); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "leaves/s")
	b.StopTimer()
	waitForSize(b, l, start.Size+uint64(n))
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "integrated-leaves/s")
}

var _ = errors.New
