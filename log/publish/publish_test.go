package publish

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/log/witness"
)

func TestPublishQuorum(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "Q", 3, s)
	policy := policyText(s, ws, groupOf("hospitals", "2", ws), "quorum hospitals")
	l := newTestLog()
	before := metricValue(publicationsTotal.WithLabelValues("met"))
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)))

	if _, _, err := p.Latest(context.Background()); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("Latest before any entry = %v, want ErrNotPublished", err)
	}
	size := l.add(t, 5)
	signed, root := await(t, p.Publisher, size)
	if root.Size != size {
		t.Fatalf("published size %d, want %d", root.Size, size)
	}
	if got := cosigners(t, signed, s, ws); len(got) < 2 {
		t.Fatalf("published with cosignatures of %v, want at least 2", got)
	}
	if err := verifyPolicy(t, policy, signed); err != nil {
		t.Fatalf("torchwood: published checkpoint does not satisfy the policy: %v", err)
	}
	checkReceipts(t, l, policy, signed, root)
	first := root

	// More entries: a new checkpoint that extends the first.
	size = l.add(t, 7)
	signed, root = await(t, p.Publisher, size)
	checkReceipts(t, l, policy, signed, root)
	proof, err := l.ConsistencyProof(context.Background(), first.Size, root.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.VerifyConsistency(first, root, proof); err != nil {
		t.Fatal(err)
	}
	// All three witnesses are up: the third cosignature arrives too.
	eventually(t, "third cosignature", func() bool {
		signed, _, _ := p.Latest(context.Background())
		return len(cosigners(t, signed, s, ws)) == 3
	})
	c, err := p.At(context.Background(), size)
	if err != nil || !c.Witnessed || c.Tree() != root {
		t.Fatalf("At(%d) = %+v, %v", size, c, err)
	}
	if got := metricValue(publicationsTotal.WithLabelValues("met")) - before; got < 2 {
		t.Errorf("publications metric grew by %v, want >= 2", got)
	}
	// A checkpoint signature is only the log's key with that policy: the
	// same note without cosignatures does not verify.
	logOnly, err := s.Sign(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyPolicy(t, policy, logOnly); err == nil {
		t.Error("a checkpoint without cosignatures satisfies the policy")
	}
}

// Checkpoints are batched: entries integrated one at a time while the
// publisher runs get far fewer checkpoints than entries.
func TestPublishBatches(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "B", 1, s)
	policy := policyText(s, ws, "quorum B0")
	l := newTestLog()
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)).WithInterval(50*time.Millisecond))
	var size uint64
	for range 200 {
		size = l.add(t, 1)
		time.Sleep(time.Millisecond)
	}
	await(t, p.Publisher, size)
	h, err := p.History(context.Background(), 0, MaxHistoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 || len(h) > 50 {
		t.Errorf("%d checkpoints for %d entries integrated one by one", len(h), size)
	}
}

func TestWitnessesDown(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "D", 3, s)
	policy := policyText(s, ws, groupOf("hospitals", "2", ws), "quorum hospitals")
	l := newTestLog()
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)))
	ctx := context.Background()

	// One witness down: still published, by the other two.
	ws[2].down()
	size := l.add(t, 4)
	signed, root := await(t, p.Publisher, size)
	if got := cosigners(t, signed, s, ws); !slices.Equal(got, []string{"D0", "D1"}) {
		t.Fatalf("cosigned by %v, want D0 and D1", got)
	}
	checkReceipts(t, l, policy, signed, root)

	// Two down: below quorum, nothing is published while the log grows.
	ws[1].down()
	reqs := ws[0].reqs.Load()
	for range 5 {
		l.add(t, 3)
		p.Wake()
		time.Sleep(settleDuration / 5)
	}
	time.Sleep(settleDuration)
	if ws[0].reqs.Load() == reqs {
		t.Fatal("the witness that is up was not sent the new checkpoints")
	}
	got, gotRoot, err := p.Latest(ctx)
	if err != nil || gotRoot != root || !bytes.Equal(got, signed) {
		t.Fatalf("below quorum, Latest moved to %v (%v)", gotRoot, err)
	}
	if h, _ := p.History(ctx, 0, 10); len(h) != 1 {
		t.Fatalf("below quorum, history has %d checkpoints, want 1", len(h))
	}

	// They come back: the newest checkpoint covers every entry.
	ws[1].up(t)
	ws[2].up(t)
	size = l.add(t, 1)
	signed, root = await(t, p.Publisher, size)
	if root.Size != size {
		t.Fatalf("published %d, want %d", root.Size, size)
	}
	if got := cosigners(t, signed, s, ws); len(got) < 2 {
		t.Fatalf("cosigned by %v", got)
	}
	checkReceipts(t, l, policy, signed, root)
	// The witness that was down since the start is caught up too.
	eventually(t, "D2 cosigns", func() bool {
		signed, _, _ := p.Latest(ctx)
		return len(cosigners(t, signed, s, ws)) == 3
	})
}

func TestWitnessAhead(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "A", 2, s)
	policy := policyText(s, ws, groupOf("both", "all", ws), "quorum both")
	l := newTestLog()
	ctx := context.Background()

	// Before the publisher runs, A0 cosigns the tree of size 6 (sent by
	// another instance of the log, say): the publisher, with no history,
	// believes A0 is at 0.
	l.add(t, 6)
	cp6, err := s.Sign(log.Root{Size: 6, Hash: mustRoot(t, l)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&witness.Client{}).AddCheckpoint(ctx, ws[0].url(), 0, nil, cp6); err != nil {
		t.Fatal(err)
	}
	size := l.add(t, 4)
	before := ws[0].conflicts()
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)))
	signed, root := await(t, p.Publisher, size)
	if got := cosigners(t, signed, s, ws); len(got) != 2 || root.Size != size {
		t.Fatalf("published %d cosigned by %v", root.Size, got)
	}
	if got := ws[0].conflicts() - before; got != 1 {
		t.Errorf("%v conflicts from A0, want 1", got)
	}
	if got := ws[1].conflicts(); got != 0 {
		t.Errorf("%v conflicts from A1, want 0", got)
	}
}

func mustRoot(t testing.TB, l *testLog) log.Hash {
	t.Helper()
	r, err := l.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.Hash
}

func TestLateCosignature(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "L", 3, s)
	policy := policyText(s, ws, groupOf("hospitals", "2", ws), "quorum hospitals")
	ws[2].delay.Store(int64(1500 * time.Millisecond))
	l := newTestLog()
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)))
	ctx := context.Background()

	size := l.add(t, 3)
	signed, _ := await(t, p.Publisher, size)
	if got := cosigners(t, signed, s, ws); !slices.Equal(got, []string{"L0", "L1"}) {
		t.Fatalf("published with %v, want L0 and L1 (L2 is slow)", got)
	}
	eventually(t, "late cosignature merged", func() bool {
		c, err := p.At(ctx, size)
		return err == nil && len(cosigners(t, c.Note, s, ws)) == 3
	})
	signed, _, err := p.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := cosigners(t, signed, s, ws); !slices.Equal(got, []string{"L0", "L1", "L2"}) {
		t.Fatalf("Latest after the late cosignature has %v", got)
	}
	// Canonical order: the log's line, then the cosignatures by key name.
	_, sigs, err := splitNote(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(sigs[1:], func(a, b sigLine) int { return strings.Compare(a.name, b.name) }) || sigs[0].name != testOrigin {
		t.Errorf("signature lines not in canonical order:\n%s", signed)
	}
	if h, _ := p.History(ctx, 0, 10); len(h) != 1 {
		t.Errorf("merging made %d history rows, want 1", len(h))
	}
	checkReceipts(t, l, policy, signed, log.Root{Size: size, Hash: mustRoot(t, l)})
}

func TestHistoryAndQuorumNone(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	policy := receipt.Policy(s.VerifierKey())
	l := newTestLog()
	before := metricValue(publicationsTotal.WithLabelValues("none"))
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)).WithInterval(time.Hour))
	ctx := context.Background()
	for i := 1; i <= 7; i++ {
		size := l.add(t, 1)
		signed, root := await(t, p.Publisher, size)
		if root.Size != uint64(i) {
			t.Fatalf("published %d, want %d", root.Size, i)
		}
		if strings.Count(string(signed), "\n— ") != 1 {
			t.Fatalf("quorum none: want the log's signature only:\n%s", signed)
		}
		checkReceipts(t, l, policy, signed, root)
	}
	if got := metricValue(publicationsTotal.WithLabelValues("none")) - before; got != 7 {
		t.Errorf("%v publications without witnesses, want 7", got)
	}
	for _, tc := range []struct {
		before uint64
		limit  int
		want   []uint64
	}{
		{0, 3, []uint64{7, 6, 5}},
		{5, 3, []uint64{4, 3, 2}},
		{2, 3, []uint64{1}},
		{1, 3, nil},
		{100, 2, []uint64{7, 6}},
		{0, 0, []uint64{7, 6, 5, 4, 3, 2, 1}},
		{0, -1, []uint64{7, 6, 5, 4, 3, 2, 1}},
	} {
		h, err := p.History(ctx, tc.before, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, c := range h {
			got = append(got, c.Size)
			root, _, err := checkpoint.Open(c.Note, s.Verifier())
			if err != nil || root != c.Tree() || !c.Witnessed || c.PublishedAt.IsZero() || time.Since(c.PublishedAt) > time.Minute {
				t.Errorf("history row %d: %v %v %+v", c.Size, root, err, c)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("History(%d, %d) = %v, want %v", tc.before, tc.limit, got, tc.want)
		}
	}
	// A monitor audits any two.
	a, err := p.At(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.At(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := l.ConsistencyProof(ctx, 2, 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.VerifyConsistency(a.Tree(), b.Tree(), proof); err != nil {
		t.Error(err)
	}
	if _, err := p.At(ctx, 100); !errors.Is(err, ErrNotFound) {
		t.Errorf("At(100) = %v, want ErrNotFound", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "R", 3, s)
	policy := policyText(s, ws, groupOf("hospitals", "2", ws), "quorum hospitals")
	l := newTestLog()
	db := publisherDB(t)
	ctx := context.Background()

	p1, err := New(ctx, testConfig(t, l, s, policy, db))
	if err != nil {
		t.Fatal(err)
	}
	r1 := run(t, p1)
	await(t, p1, l.add(t, 5))
	size := l.add(t, 3)
	await(t, p1, size)
	eventually(t, "all three cosign", func() bool {
		signed, _, _ := p1.Latest(ctx)
		return len(cosigners(t, signed, s, ws)) == 3
	})
	if err := r1.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want, wantRoot, _ := p1.Latest(ctx)

	var conflicts []float64
	for _, w := range ws {
		conflicts = append(conflicts, w.conflicts())
	}
	p2, err := New(ctx, testConfig(t, l, s, policy, db))
	if err != nil {
		t.Fatal(err)
	}
	got, root, err := p2.Latest(ctx)
	if err != nil || root != wantRoot || !bytes.Equal(got, want) {
		t.Fatalf("after restart, Latest = %v, %v; want %v", root, err, wantRoot)
	}
	run(t, p2)
	size = l.add(t, 4)
	signed, _ := await(t, p2, size)
	eventually(t, "all three cosign after restart", func() bool {
		signed, _, _ = p2.Latest(ctx)
		return len(cosigners(t, signed, s, ws)) == 3
	})
	for i, w := range ws {
		if got := w.conflicts(); got != conflicts[i] {
			t.Errorf("witness %s answered %v conflicts after restart: its size was not seeded from the history", w.name, got-conflicts[i])
		}
	}
	h, err := p2.History(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for _, c := range h {
		sizes = append(sizes, c.Size)
	}
	if !slices.Equal(sizes, []uint64{12, 8, 5}) {
		t.Errorf("history after restart: %v, want [12 8 5]", sizes)
	}
}

func TestNestedGroups(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "N", 5, s)
	// Two of the three university hospitals and any of the two clinics.
	policy := policyText(s, ws,
		groupOf("university", "2", ws[:3]),
		groupOf("clinics", "any", ws[3:]),
		"group consortium all university clinics",
		"quorum consortium")
	l := newTestLog()
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)))
	ctx := context.Background()

	// Both clinics down: three cosignatures, but no quorum.
	ws[3].down()
	ws[4].down()
	l.add(t, 3)
	p.Wake()
	time.Sleep(settleDuration)
	if _, _, err := p.Latest(ctx); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("published without any clinic: %v", err)
	}
	// One clinic back: quorum.
	ws[4].up(t)
	size := l.add(t, 1)
	signed, root := await(t, p.Publisher, size)
	got := cosigners(t, signed, s, ws)
	if !slices.Contains(got, "N4") || len(got) < 3 {
		t.Fatalf("cosigned by %v, want N4 and two of N0..N2", got)
	}
	if err := verifyPolicy(t, policy, signed); err != nil {
		t.Fatal(err)
	}
	checkReceipts(t, l, policy, signed, root)

	// Two university hospitals down: the clinics alone are not a quorum.
	ws[0].down()
	ws[1].down()
	l.add(t, 2)
	p.Wake()
	time.Sleep(settleDuration)
	if _, r, _ := p.Latest(ctx); r != root {
		t.Fatalf("published %v with one university hospital", r)
	}
	ws[1].up(t)
	size = l.add(t, 1)
	signed, root = await(t, p.Publisher, size)
	if err := verifyPolicy(t, policy, signed); err != nil {
		t.Fatal(err)
	}
	checkReceipts(t, l, policy, signed, root)
}

func TestFailOpen(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	ws := startWitnesses(t, "F", 2, s)
	policy := policyText(s, ws, groupOf("both", "all", ws), "quorum both")
	ws[0].down()
	ws[1].down()
	l := newTestLog()
	rec := newRecorder(t)
	p := startPublisher(t, testConfig(t, l, s, policy, publisherDB(t)).WithFailOpen(true).WithLogger(slog.New(rec)))
	if rec.count(slog.LevelError, "FAIL-OPEN") != 1 {
		t.Error("fail-open is not logged at Error at start")
	}
	size := l.add(t, 2)
	signed, _ := await(t, p.Publisher, size)
	if err := verifyPolicy(t, policy, signed); err == nil {
		t.Fatal("a checkpoint published without witnesses satisfies the policy")
	}
	c, err := p.At(context.Background(), size)
	if err != nil || c.Witnessed {
		t.Fatalf("At = %+v, %v; want Witnessed false", c, err)
	}
	if rec.count(slog.LevelError, "WITHOUT a witness quorum") == 0 {
		t.Error("fail-open publication not logged at Error")
	}
	// The witnesses return: their late cosignatures make it witnessed.
	ws[0].up(t)
	ws[1].up(t)
	eventually(t, "late quorum", func() bool {
		c, err := p.At(context.Background(), size)
		return err == nil && c.Witnessed && verifyPolicy(t, policy, c.Note) == nil
	})
}

// faultyLog lets a test change the root the log reports.
type faultyLog struct {
	*testLog
	mu   sync.Mutex
	root func(log.Root) log.Root
}

func (f *faultyLog) setRoot(fn func(log.Root) log.Root) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.root = fn
}

func (f *faultyLog) Root(ctx context.Context) (log.Root, error) {
	r, err := f.testLog.Root(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || f.root == nil {
		return r, err
	}
	return f.root(r), nil
}

func TestRunStopsOnContradiction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		root func(log.Root) log.Root
		grow int // leaves added after the fault is set
	}{
		{"log shrank", func(r log.Root) log.Root { return log.Root{Size: r.Size - 1, Hash: r.Hash} }, 0},
		{"same size, other root", func(r log.Root) log.Root { r.Hash[0] ^= 1; return r }, 0},
		{"does not extend", func(r log.Root) log.Root { r.Hash[0] ^= 1; return r }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSigner(t)
			l := &faultyLog{testLog: newTestLog()}
			p, err := New(context.Background(), testConfig(t, l, s, receipt.Policy(s.VerifierKey()), publisherDB(t)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			_, root := await(t, p, l.add(t, 4))
			l.setRoot(tc.root)
			l.add(t, tc.grow)
			p.Wake()
			select {
			case err := <-done:
				if !errors.Is(err, errFatal) {
					t.Errorf("Run = %v, want a fatal error", err)
				}
			case <-time.After(testAwait):
				t.Fatal("Run did not stop")
			}
			if _, r, _ := p.Latest(context.Background()); r != root {
				t.Errorf("Latest moved to %v", r)
			}
		})
	}
	// The log failing is not fatal: Run retries.
	t.Run("log unavailable", func(t *testing.T) {
		t.Parallel()
		s := newSigner(t)
		l := newTestLog()
		p := startPublisher(t, testConfig(t, l, s, receipt.Policy(s.VerifierKey()), publisherDB(t)))
		l.SetError(errInjected)
		time.Sleep(5 * testInterval)
		l.SetError(nil)
		await(t, p.Publisher, l.add(t, 2))
	})
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	other := newSigner(t)
	db := publisherDB(t)
	l := newTestLog()
	_, wvkey, err := witness.GenerateKey("w.example/witness")
	if err != nil {
		t.Fatal(err)
	}
	_, wvkey2, err := witness.GenerateKey("w2.example/witness")
	if err != nil {
		t.Fatal(err)
	}
	logLine := "log " + s.VerifierKey() + "\n"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no log", Config{Signer: s, Policy: receipt.Policy(s.VerifierKey()), DB: db}, "Config.Log"},
		{"no signer", Config{Log: l, Policy: receipt.Policy(s.VerifierKey()), DB: db}, "Config.Signer"},
		{"no policy", Config{Log: l, Signer: s, DB: db}, "Config.Policy"},
		{"no db", Config{Log: l, Signer: s, Policy: receipt.Policy(s.VerifierKey())}, "Config.DB"},
		{"negative interval", NewConfig(l, s, receipt.Policy(s.VerifierKey()), db).WithInterval(-1), "Interval"},
		{"negative timeout", NewConfig(l, s, receipt.Policy(s.VerifierKey()), db).WithWitnessTimeout(-1), "WitnessTimeout"},
		{"other log key", NewConfig(l, s, receipt.Policy(other.VerifierKey()), db), "policy's log key"},
		{"two logs", NewConfig(l, s, []byte(logLine+"log "+other.VerifierKey()+"\nquorum none\n"), db), "exactly one log line"},
		{"malformed", NewConfig(l, s, []byte(logLine+"quorum\n"), db), "quorum"},
		{"no quorum", NewConfig(l, s, []byte(logLine), db), "no quorum"},
		{"witness without URL", NewConfig(l, s, []byte(logLine+"witness W "+wvkey+"\nquorum W\n"), db), "witness <name> <vkey> <url>"},
		{"witness URL not http", NewConfig(l, s, []byte(logLine+"witness W "+wvkey+" ftp://w.example/\nquorum W\n"), db), "witness URL"},
		{"witness key is a log key", NewConfig(l, s, []byte(logLine+"witness W "+other.VerifierKey()+" https://w.example/\nquorum W\n"), db), "invalid witness key"},
		{"same witness key twice", NewConfig(l, s, []byte(logLine+"witness W "+wvkey+" https://w.example/\nwitness V "+wvkey+" https://v.example/\ngroup g any W V\nquorum g\n"), db), "listed twice"},
		{"witness in two groups", NewConfig(l, s, []byte(logLine+"witness W "+wvkey+" https://w.example/\nwitness V "+wvkey2+" https://v.example/\ngroup a any W V\ngroup b any W\ngroup c all a b\nquorum c\n"), db), "multiple verifiers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// A witness no quorum path needs is not contacted, and quorum none
	// publishes the log's signature alone.
	p, err := New(context.Background(), NewConfig(l, s, []byte(logLine+"witness W "+wvkey+" https://w.example/\nquorum none\n"), db).WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.witnesses) != 0 {
		t.Errorf("%d witnesses to contact with quorum none", len(p.witnesses))
	}
}
