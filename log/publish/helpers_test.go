package publish

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/log/witness"
)

const (
	testOrigin     = "vitalproof.example/ledger"
	testInterval   = 20 * time.Millisecond
	testTimeout    = 2 * time.Second
	testAwait      = 15 * time.Second
	settleDuration = 300 * time.Millisecond // long enough for many rounds
)

func newSigner(t testing.TB) *checkpoint.Signer {
	t.Helper()
	skey, _, err := checkpoint.GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLog is an in-memory log with the leaves the test appended.
type testLog struct {
	*logtest.MemLog
	mu     sync.Mutex
	leaves [][]byte
}

func newTestLog() *testLog { return &testLog{MemLog: logtest.NewMemLog()} }

// add appends and integrates n new leaves and returns the new tree size.
func (l *testLog) add(t testing.TB, n int) uint64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var batch [][]byte
	for range n {
		batch = append(batch, fmt.Appendf(nil, "entry %d", len(l.leaves)+len(batch)))
	}
	if err := l.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	l.leaves = append(l.leaves, batch...)
	return l.Integrate().Size
}

// testWitness is a real tlog-witness (package log/witness) on its own
// database, served on a loopback port that the test can take down and
// bring back up at the same address.
type testWitness struct {
	name  string // in the policy
	vkey  string
	w     *witness.Witness
	addr  string
	delay atomic.Int64 // nanoseconds to wait before each request
	reqs  atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func startWitness(t testing.TB, name, keyName string, logVKey string) *testWitness {
	t.Helper()
	ctx := context.Background()
	db, err := witness.Open(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs, err := witness.ParseLogs([]byte("log " + logVKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := witness.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(ctx, witness.Config{Signer: signer, Logs: logs, DB: db, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{name: name, vkey: vkey, w: w, addr: "127.0.0.1:0"}
	tw.up(t)
	t.Cleanup(tw.down)
	return tw
}

func (tw *testWitness) url() string { return "http://" + tw.addr + "/" }

func (tw *testWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	tw.reqs.Add(1)
	if d := time.Duration(tw.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	tw.w.Handler().ServeHTTP(rw, r)
}

// up starts serving, at the same address as before if there was one.
func (tw *testWitness) up(t testing.TB) {
	t.Helper()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after down
		if ln, err = net.Listen("tcp", tw.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	tw.addr = ln.Addr().String()
	tw.srv = &http.Server{Handler: tw}
	go tw.srv.Serve(ln)
}

// down stops serving: connections are refused until up.
func (tw *testWitness) down() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.srv != nil {
		tw.srv.Close()
		tw.srv = nil
	}
}

func (tw *testWitness) verifier(t testing.TB) *torchwood.CosignatureVerifier {
	t.Helper()
	v, err := torchwood.NewCosignatureVerifier(tw.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (tw *testWitness) policyLine() string {
	return fmt.Sprintf("witness %s %s %s\n", tw.name, tw.vkey, tw.url())
}

func (tw *testWitness) conflicts() float64 {
	return metricValue(witnessErrorsTotal.WithLabelValues(tw.name, "conflict"))
}

// startWitnesses starts n witnesses named <prefix>0.. with key names
// <prefix>N.example/witness, trusting the log of signer.
func startWitnesses(t testing.TB, prefix string, n int, s *checkpoint.Signer) []*testWitness {
	t.Helper()
	ws := make([]*testWitness, n)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			name := fmt.Sprintf("%s%d", prefix, i)
			ws[i] = startWitness(t, name, strings.ToLower(name)+".example/witness", s.VerifierKey())
		})
	}
	wg.Wait()
	for _, w := range ws {
		if w == nil {
			t.FailNow()
		}
	}
	return ws
}

// policyText returns a policy with the log, the witnesses and the given
// group and quorum lines.
func policyText(s *checkpoint.Signer, ws []*testWitness, lines ...string) []byte {
	var b strings.Builder
	b.WriteString("# test policy\nlog " + s.VerifierKey() + "\n")
	for _, w := range ws {
		b.WriteString(w.policyLine())
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

// groupOf returns "group <name> <k> <members...>".
func groupOf(name, k string, ws []*testWitness) string {
	g := "group " + name + " " + k
	for _, w := range ws {
		g += " " + w.name
	}
	return g
}

// publisherDB returns a fresh history database.
func publisherDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// running is a Publisher whose Run goroutine the test can stop.
type running struct {
	*Publisher
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// stop stops Run and returns its error.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// startPublisher creates a Publisher and runs it until the test ends, when
// Run must return nil.
func startPublisher(t testing.TB, cfg Config) *running {
	t.Helper()
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, p)
}

func run(t testing.TB, p *Publisher) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Publisher: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = p.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
			if r.err != nil {
				t.Errorf("Run = %v", r.err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func testConfig(t testing.TB, l log.Log, s *checkpoint.Signer, policy []byte, db *sql.DB) Config {
	return NewConfig(l, s, policy, db).WithInterval(testInterval).WithWitnessTimeout(testTimeout).WithLogger(testLogger(t))
}

// await waits for a published checkpoint covering size.
func await(t testing.TB, p *Publisher, size uint64) ([]byte, log.Root) {
	t.Helper()
	p.Wake()
	ctx, cancel := context.WithTimeout(context.Background(), testAwait)
	defer cancel()
	signed, root, err := p.Await(ctx, size)
	if err != nil {
		t.Fatalf("no checkpoint of size >= %d published: %v", size, err)
	}
	return signed, root
}

// eventually polls cond until it holds or fails the test after testAwait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testAwait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cosigners opens signed with the log's key and the witnesses' keys, using
// golang.org/x/mod/sumdb/note and torchwood's cosignature verifier (not the
// publisher's code), and returns the names of the witnesses that cosigned.
func cosigners(t testing.TB, signed []byte, s *checkpoint.Signer, ws []*testWitness) []string {
	t.Helper()
	vs := []note.Verifier{s.Verifier()}
	names := make(map[string]string)
	for _, w := range ws {
		v := w.verifier(t)
		vs = append(vs, v)
		names[v.Name()] = w.name
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		t.Fatalf("couldn't open published checkpoint: %v\n%s", err, signed)
	}
	if n.Sigs[0].Name != s.Origin() {
		t.Errorf("first signature is by %q, not the log", n.Sigs[0].Name)
	}
	var out []string
	for _, sig := range n.Sigs[1:] {
		name, ok := names[sig.Name]
		if !ok {
			t.Errorf("signature by unknown key %q", sig.Name)
		}
		ts, err := torchwood.CosignatureTimestamp(sig)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(time.Unix(ts, 0)); d < -time.Minute || d > time.Minute {
			t.Errorf("cosignature timestamp is %v away from now", d)
		}
		out = append(out, name)
	}
	if len(n.Sigs) != strings.Count(string(signed), "\n— ") {
		t.Errorf("note has signature lines that do not verify:\n%s", signed)
	}
	return out
}

// checkReceipts checks that every leaf of the tree of signed has a receipt
// that verifies with policy, with receipt.Verify (and so torchwood).
func checkReceipts(t testing.TB, l *testLog, policy, signed []byte, root log.Root) {
	t.Helper()
	l.mu.Lock()
	leaves := l.leaves[:root.Size]
	l.mu.Unlock()
	for i, leaf := range leaves {
		proof, err := l.InclusionProof(context.Background(), uint64(i), root.Size)
		if err != nil {
			t.Fatal(err)
		}
		v, err := receipt.Verify(policy, receipt.Format(uint64(i), leaf, proof, signed))
		if err != nil {
			t.Fatalf("receipt of entry %d: %v", i, err)
		}
		if v.Root() != root {
			t.Fatalf("receipt of entry %d proves tree %v, want %v", i, v.Root(), root)
		}
	}
}

// verifyPolicy checks signed against policy with torchwood alone.
func verifyPolicy(t testing.TB, policy, signed []byte) error {
	t.Helper()
	pol, err := torchwood.ParsePolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = torchwood.VerifyCheckpoint(signed, pol)
	return err
}

// quietLogger drops everything but errors (witness request logs are noisy).
func quietLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// recorder is a slog handler that keeps records and echoes them to the test
// log.
type recorder struct {
	t       testing.TB
	mu      *sync.Mutex
	records *[]slog.Record
	attrs   []slog.Attr
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(newRecorder(t))
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, mu: new(sync.Mutex), records: new([]slog.Record)}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	r.mu.Lock()
	*r.records = append(*r.records, rec)
	r.mu.Unlock()
	var b strings.Builder
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if !testing.Verbose() && rec.Level < slog.LevelWarn {
		return nil
	}
	r.t.Logf("%s %s%s", rec.Level, rec.Message, b.String())
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// count returns the number of records at level whose message contains msg.
func (r *recorder) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range *r.records {
		if rec.Level == level && strings.Contains(rec.Message, msg) {
			n++
		}
	}
	return n
}

var errInjected = errors.New("injected failure")

// metricValue returns the value of a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
