package witness

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vitalproof/vitalproof/internal/testdb"
)

// testLog is a log kept by the test itself, with golang.org/x/mod/sumdb/tlog
// (not the transparency-dev/merkle code the witness checks proofs with).
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	leaves int
	tag    string
	hashes []tlog.Hash // tlog stored hashes
	// leaf, if not nil, makes leaf i instead of the default.
	leaf func(i int) []byte
}

func newTestLog(t testing.TB, origin string, leaves int) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{origin: origin, signer: s, vkey: vkey, tag: "main"}
	l.append(t, leaves)
	return l
}

func (l *testLog) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

func (l *testLog) append(t testing.TB, n int) {
	t.Helper()
	for range n {
		leaf := fmt.Appendf(nil, "%s leaf %d (%s)", l.origin, l.leaves, l.tag)
		if l.leaf != nil {
			leaf = l.leaf(l.leaves)
		}
		hs, err := tlog.StoredHashes(int64(l.leaves), leaf, l.hashReader())
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.leaves++
	}
}

// fork returns a log with the same key and the same first at leaves, then
// extra leaves of its own.
func (l *testLog) fork(t testing.TB, at, extra int) *testLog {
	t.Helper()
	f := &testLog{origin: l.origin, signer: l.signer, vkey: l.vkey, leaves: at, tag: "fork"}
	f.hashes = append([]tlog.Hash(nil), l.hashes[:tlog.StoredHashCount(int64(at))]...)
	f.append(t, extra)
	return f
}

func (l *testLog) root(t testing.TB, n int) [32]byte {
	t.Helper()
	h, err := tlog.TreeHash(int64(n), l.hashReader())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *testLog) proof(t testing.TB, old, n int) [][32]byte {
	t.Helper()
	if old == 0 || old == n {
		return nil
	}
	p, err := tlog.ProveTree(int64(n), int64(old), l.hashReader())
	if err != nil {
		t.Fatal(err)
	}
	out := make([][32]byte, len(p))
	for i, h := range p {
		out[i] = h
	}
	return out
}

func (l *testLog) text(t testing.TB, n int) string {
	return torchwood.Checkpoint{Origin: l.origin, Tree: tlog.Tree{N: int64(n), Hash: l.root(t, n)}}.String()
}

func (l *testLog) checkpoint(t testing.TB, n int, extra ...note.Signer) []byte {
	t.Helper()
	signed, err := note.Sign(&note.Note{Text: l.text(t, n)}, append([]note.Signer{l.signer}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (l *testLog) body(t testing.TB, old, n int) []byte {
	return formatRequest(uint64(old), l.proof(t, old, n), l.checkpoint(t, n))
}

func (l *testLog) logConfig(t testing.TB) Log {
	t.Helper()
	logs, err := ParseLogs([]byte("log " + l.vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return logs[0]
}

const testWitnessName = "hospital1.example/witness"

type testWitness struct {
	*Witness
	url  string
	vkey string
	dsn  string
}

// newTestWitness starts a witness trusting logs, on a fresh database, or on
// dsn if not empty, with the key skey, or a new key if empty.
func newTestWitness(t testing.TB, dsn, skey string, logs ...*testLog) *testWitness {
	t.Helper()
	ctx := context.Background()
	if dsn == "" {
		dsn = testdb.New(t)
	}
	if skey == "" {
		var err error
		if skey, _, err = GenerateKey(testWitnessName); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var cfg []Log
	for _, l := range logs {
		cfg = append(cfg, l.logConfig(t))
	}
	w, err := New(ctx, Config{Signer: signer, Logs: cfg, DB: db, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &testWitness{Witness: w, url: srv.URL, vkey: w.VerifierKey(), dsn: dsn}
}

type response struct {
	code  int
	ctype string
	body  string
}

func post(t testing.TB, url string, body []byte) response {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// mustCosign sends l's checkpoint of size n with a proof from old and fails
// unless the witness cosigns it; it returns the cosignature lines.
func (w *testWitness) mustCosign(t testing.TB, l *testLog, old, n int) []byte {
	t.Helper()
	r := post(t, w.url, l.body(t, old, n))
	if r.code != http.StatusOK {
		t.Fatalf("add-checkpoint old %d size %d: got %d %q, want 200", old, n, r.code, r.body)
	}
	return []byte(r.body)
}

// latest returns the witness's monitoring checkpoint for l, or nil on 404.
func (w *testWitness) latest(t testing.TB, origin string) []byte {
	t.Helper()
	resp, err := http.Get(w.url + "/" + OriginHash(origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil
	case http.StatusOK:
		return b
	}
	t.Fatalf("GET checkpoint: %d %q", resp.StatusCode, b)
	return nil
}

// verifyCosigned opens the note with the log's key and the witness's
// cosignature verifier (x/mod note + torchwood, not the witness's code) and
// returns its checkpoint.
func verifyCosigned(t testing.TB, signed []byte, logVKey, witnessVKey string) torchwood.Checkpoint {
	t.Helper()
	lv, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := torchwood.NewCosignatureVerifier(witnessVKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(lv, wv))
	if err != nil {
		t.Fatalf("couldn't open cosigned checkpoint: %v\n%s", err, signed)
	}
	var cosigned bool
	for _, s := range n.Sigs {
		if s.Name == wv.Name() && s.Hash == wv.KeyHash() {
			cosigned = true
			ts, err := torchwood.CosignatureTimestamp(s)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(time.Unix(ts, 0)); d < -time.Minute || d > time.Minute {
				t.Errorf("cosignature timestamp %d is %v away from now", ts, d)
			}
		}
	}
	if !cosigned || len(n.Sigs) != 2 {
		t.Fatalf("want a log signature and a cosignature, got %d verified signatures", len(n.Sigs))
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimSuffix(p, []byte("\n")))
	return len(p), nil
}

// rows counts the rows of a witness table, read with plain SQL.
func rows(t testing.TB, dsn, table string) int {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
