package witness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestAddCheckpoint has one case per clause of c2sp.org/tlog-witness
// add-checkpoint. Each runs on a fresh witness that trusts l (20 leaves),
// after the witness cosigned the checkpoints of before, and checks the
// answer, the evidence kept and that a refusal leaves the state alone.
func TestAddCheckpoint(t *testing.T) {
	t.Parallel()
	type step struct{ old, size int }
	tests := []struct {
		name   string
		clause string
		before []step
		// body builds the request from the trusted log l.
		body         func(t *testing.T, l *testLog) []byte
		wantCode     int
		wantBody     string // exact for 409, a substring otherwise
		wantEvidence string
	}{
		{
			name:     "first checkpoint",
			clause:   "old size zero if it never cosigned a checkpoint for that origin",
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 0, 5) },
			wantCode: 200,
			wantBody: "— " + testWitnessName + " ",
		},
		{
			name:     "consistent extension",
			clause:   "all the checks pass: update the record and return cosignatures",
			before:   []step{{0, 5}},
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 5, 13) },
			wantCode: 200,
			wantBody: "— " + testWitnessName + " ",
		},
		{
			name:     "same size same root",
			clause:   "if the old size matches the checkpoint size, the root hashes must be identical",
			before:   []step{{0, 5}},
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 5, 5) },
			wantCode: 200,
			wantBody: "— " + testWitnessName + " ",
		},
		{
			name:   "unknown signatures ignored",
			clause: "it MUST ignore signatures from unknown keys",
			body: func(t *testing.T, l *testLog) []byte {
				other := newTestLog(t, "other.example/log", 0)
				stranger := newTestLog(t, l.origin, 0) // same name, other key
				cp := l.checkpoint(t, 5, other.signer, stranger.signer)
				return formatRequest(0, nil, cp)
			},
			wantCode: 200,
			wantBody: "— " + testWitnessName + " ",
		},
		{
			name:   "unknown origin",
			clause: "if the checkpoint origin is unknown: 404",
			body: func(t *testing.T, l *testLog) []byte {
				return newTestLog(t, "unknown.example/log", 5).body(t, 0, 5)
			},
			wantCode: 404,
			wantBody: "unknown log",
		},
		{
			name:   "signed by an untrusted key",
			clause: "if none of the signatures verify against a trusted public key: 403",
			body: func(t *testing.T, l *testLog) []byte {
				impostor := newTestLog(t, l.origin, 5)
				return impostor.body(t, 0, 5)
			},
			wantCode: 403,
			wantBody: "not signed by a trusted log key",
		},
		{
			name:   "trusted key signature does not verify",
			clause: "the witness MUST verify the checkpoint signature against the trusted keys",
			body: func(t *testing.T, l *testLog) []byte {
				return formatRequest(0, nil, corruptSignature(t, l.checkpoint(t, 5)))
			},
			wantCode: 403,
			wantBody: "not signed by a trusted log key",
		},
		{
			name:     "old size larger than checkpoint size",
			clause:   "the old size MUST be equal to or lower than the checkpoint size: else 400",
			before:   []step{{0, 8}},
			body:     func(t *testing.T, l *testLog) []byte { return formatRequest(8, nil, l.checkpoint(t, 5)) },
			wantCode: 400,
			wantBody: "old size is larger",
		},
		{
			name:     "malformed body",
			clause:   "the request body MUST be a sequence of an old size line, proof lines, an empty line, a checkpoint",
			body:     func(t *testing.T, l *testLog) []byte { return append([]byte("old 0\n"), l.checkpoint(t, 5)...) },
			wantCode: 400,
			wantBody: "malformed add-checkpoint request",
		},
		{
			name:   "too many proof lines",
			clause: "the client MUST NOT send more than 63 consistency proof lines",
			before: []step{{0, 5}},
			body: func(t *testing.T, l *testLog) []byte {
				return formatRequest(5, make([][32]byte, 64), l.checkpoint(t, 13))
			},
			wantCode: 400,
			wantBody: "malformed add-checkpoint request",
		},
		{
			name:   "checkpoint with extension lines",
			clause: "tlog-checkpoint: extension lines are not cosigned",
			body: func(t *testing.T, l *testLog) []byte {
				signed, err := note.Sign(&note.Note{Text: l.text(t, 5) + "extension\n"}, l.signer)
				if err != nil {
					t.Fatal(err)
				}
				return formatRequest(0, nil, signed)
			},
			wantCode: 400,
			wantBody: "malformed checkpoint",
		},
		{
			name:     "old size is not the last cosigned size",
			clause:   "the old size MUST match the latest cosigned size: else 409 with that size",
			before:   []step{{0, 5}},
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 3, 13) },
			wantCode: 409,
			wantBody: "5\n",
		},
		{
			name:     "old size but never cosigned",
			clause:   "or zero if it never cosigned a checkpoint for that origin",
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 5, 13) },
			wantCode: 409,
			wantBody: "0\n",
		},
		{
			name:     "old size zero to learn the cosigned size",
			clause:   "a client MAY initially make a request with an old size of zero to obtain it",
			before:   []step{{0, 5}, {5, 13}},
			body:     func(t *testing.T, l *testLog) []byte { return l.body(t, 0, 20) },
			wantCode: 409,
			wantBody: "13\n",
		},
		{
			name:         "same size other root",
			clause:       "if the old size matches the checkpoint size and the roots differ: 409",
			before:       []step{{0, 5}},
			body:         func(t *testing.T, l *testLog) []byte { return l.fork(t, 3, 2).body(t, 5, 5) },
			wantCode:     409,
			wantBody:     "5\n",
			wantEvidence: EvidenceFork,
		},
		{
			name:         "cosigned size other root with old size zero",
			clause:       "a signed checkpoint contradicting the cosigned one is evidence whatever its old size",
			before:       []step{{0, 5}},
			body:         func(t *testing.T, l *testLog) []byte { return l.fork(t, 3, 2).body(t, 0, 5) },
			wantCode:     409,
			wantBody:     "5\n",
			wantEvidence: EvidenceFork,
		},
		{
			name:   "proof does not verify",
			clause: "if the Merkle Consistency Proof doesn't verify: 422",
			before: []step{{0, 5}},
			body: func(t *testing.T, l *testLog) []byte {
				p := l.proof(t, 5, 13)
				p[0][0] ^= 1
				return formatRequest(5, p, l.checkpoint(t, 13))
			},
			wantCode:     422,
			wantBody:     "consistency proof does not verify",
			wantEvidence: EvidenceInconsistent,
		},
		{
			name:   "forked log extends the cosigned size",
			clause: "the witness MAY log the request as proof of log misbehaviour",
			before: []step{{0, 5}},
			body: func(t *testing.T, l *testLog) []byte {
				return l.fork(t, 3, 10).body(t, 5, 13)
			},
			wantCode:     422,
			wantBody:     "consistency proof does not verify",
			wantEvidence: EvidenceInconsistent,
		},
		{
			name:   "proof with old size zero",
			clause: "the proof MUST be empty if the old size is zero",
			body: func(t *testing.T, l *testLog) []byte {
				return formatRequest(0, l.proof(t, 5, 13), l.checkpoint(t, 13))
			},
			wantCode: 422,
			wantBody: "consistency proof does not verify",
		},
		{
			name:   "proof with equal sizes",
			clause: "a consistency proof between equal sizes is empty",
			before: []step{{0, 5}},
			body: func(t *testing.T, l *testLog) []byte {
				return formatRequest(5, l.proof(t, 3, 5), l.checkpoint(t, 5))
			},
			wantCode: 422,
			wantBody: "consistency proof does not verify",
		},
		{
			name:   "empty tree with a wrong root",
			clause: "equal sizes need equal roots, also for the empty tree",
			body: func(t *testing.T, l *testLog) []byte {
				text := "" + l.origin + "\n0\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
				signed, err := note.Sign(&note.Note{Text: text}, l.signer)
				if err != nil {
					t.Fatal(err)
				}
				return formatRequest(0, nil, signed)
			},
			wantCode:     409,
			wantBody:     "0\n",
			wantEvidence: EvidenceFork,
		},
		{
			name:   "body too large",
			clause: "per-endpoint byte limit",
			body: func(t *testing.T, l *testLog) []byte {
				return append(l.body(t, 0, 5), make([]byte, DefaultMaxBodyBytes)...)
			},
			wantCode: 413,
			wantBody: "too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLog(t, "vitalproof.example/log", 20)
			w := newTestWitness(t, "", "", l)
			for _, s := range tt.before {
				w.mustCosign(t, l, s.old, s.size)
			}
			before := w.latest(t, l.origin)

			body := tt.body(t, l)
			r := post(t, w.url, body)
			if r.code != tt.wantCode {
				t.Fatalf("%s: got %d %q, want %d", tt.clause, r.code, r.body, tt.wantCode)
			}
			switch {
			case r.code == http.StatusConflict:
				if r.body != tt.wantBody || r.ctype != SizeContentType {
					t.Errorf("409: got body %q, Content-Type %q; want %q, %q", r.body, r.ctype, tt.wantBody, SizeContentType)
				}
			case !strings.Contains(r.body, tt.wantBody):
				t.Errorf("body %q does not contain %q", r.body, tt.wantBody)
			}

			after := w.latest(t, l.origin)
			if r.code == http.StatusOK {
				verifyCosigned(t, after, l.vkey, w.vkey)
				if !bytes.HasSuffix(after, []byte(r.body)) {
					t.Errorf("monitoring checkpoint does not end with the cosignature returned")
				}
			} else if !bytes.Equal(before, after) {
				t.Errorf("a refused request changed the cosigned checkpoint:\n%s\nto\n%s", before, after)
			}

			ev, err := w.Evidence(context.Background(), l.origin)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantEvidence == "" && len(ev) != 0:
				t.Errorf("kept evidence %q, want none", ev[0].Kind)
			case tt.wantEvidence != "":
				if len(ev) != 1 || ev[0].Kind != tt.wantEvidence {
					t.Fatalf("got %d pieces of evidence, want one %q", len(ev), tt.wantEvidence)
				}
				e := ev[0]
				if !bytes.Equal(e.Request, body) {
					t.Errorf("evidence does not hold the request")
				}
				cosignedSize := 0
				if len(tt.before) > 0 {
					cosignedSize = tt.before[len(tt.before)-1].size
				}
				if !bytes.Equal(e.Cosigned, before) || e.CosignedSize != uint64(cosignedSize) {
					t.Errorf("evidence does not hold the contradicted cosigned checkpoint")
				}
				if e.CosignedRoot != l.root(t, int(e.CosignedSize)) || e.Received.IsZero() {
					t.Errorf("evidence has root %x and time %v", e.CosignedRoot, e.Received)
				}
			}
		})
	}
}

// corruptSignature flips a bit of the first signature of a signed note,
// keeping its key hash, so it claims the key and does not verify.
func corruptSignature(t *testing.T, signed []byte) []byte {
	t.Helper()
	i := bytes.Index(signed, []byte("\n\n— "))
	lineEnd := i + 2 + bytes.IndexByte(signed[i+2:], '\n')
	line := string(signed[i+2 : lineEnd])
	sp := strings.LastIndexByte(line, ' ')
	sig, err := base64.StdEncoding.DecodeString(line[sp+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 1
	out := append([]byte(nil), signed[:i+2]...)
	out = append(out, line[:sp+1]+base64.StdEncoding.EncodeToString(sig)...)
	return append(out, signed[lineEnd:]...)
}

// TestEvidenceKeptOnce replays a fork: the evidence table keeps one row per
// kind and signed checkpoint.
func TestEvidenceKeptOnce(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 8)
	w := newTestWitness(t, "", "", l)
	w.mustCosign(t, l, 0, 5)
	f := l.fork(t, 2, 3)
	for range 3 {
		if r := post(t, w.url, f.body(t, 5, 5)); r.code != http.StatusConflict {
			t.Fatalf("fork: got %d %q, want 409", r.code, r.body)
		}
	}
	g := l.fork(t, 4, 1)
	if r := post(t, w.url, g.body(t, 5, 5)); r.code != http.StatusConflict {
		t.Fatalf("second fork: got %d %q, want 409", r.code, r.body)
	}
	if n := rows(t, w.dsn, "witness_evidence"); n != 2 {
		t.Errorf("witness_evidence has %d rows, want 2 (one per forked checkpoint)", n)
	}
}

// TestCosignatureFormat checks the cosignature against c2sp.org/tlog-cosignature
// with crypto/ed25519 alone: key ID, timestamp and signed message.
func TestCosignatureFormat(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 5)
	w := newTestWitness(t, "", "", l)
	line := w.mustCosign(t, l, 0, 5)

	name, key := parseVKey(t, w.vkey, 0x04)
	rest, ok := bytes.CutPrefix(line, []byte("— "+name+" "))
	if !ok || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one cosignature line by %s: %q", name, line)
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSuffix(rest, []byte("\n"))))
	if err != nil || len(sig) != 4+8+64 {
		t.Fatalf("cosignature is %d bytes (%v), want 76", len(sig), err)
	}
	if want := keyID(name, 0x04, key); !bytes.Equal(sig[:4], want) {
		t.Errorf("key ID %x, want %x", sig[:4], want)
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	msg := "cosignature/v1\ntime " + uitoa(ts) + "\n" + l.text(t, 5)
	if !ed25519Verify(key, []byte(msg), sig[12:]) {
		t.Errorf("Ed25519 signature does not verify over %q", msg)
	}
}

// TestMonitoringCheckpoint checks GET /<origin hash>/checkpoint.
func TestMonitoringCheckpoint(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 13)
	w := newTestWitness(t, "", "", l)
	if got := w.latest(t, l.origin); got != nil {
		t.Fatalf("checkpoint before any cosignature: %q, want 404", got)
	}
	w.mustCosign(t, l, 0, 5)
	w.mustCosign(t, l, 5, 13)
	c := verifyCosigned(t, w.latest(t, l.origin), l.vkey, w.vkey)
	if c.Origin != l.origin || c.N != 13 || c.Hash != l.root(t, 13) {
		t.Errorf("monitoring checkpoint is %+v, want size 13 of %s", c, l.origin)
	}
	for _, path := range []string{
		"/" + OriginHash("unknown.example/log") + "/checkpoint",
		"/" + strings.ToUpper(OriginHash(l.origin)) + "/checkpoint",
		"/abcd/checkpoint",
	} {
		resp, err := http.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestRestart checks that a new witness on the same database keeps the state.
func TestRestart(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 13)
	skey, _, err := GenerateKey(testWitnessName)
	if err != nil {
		t.Fatal(err)
	}
	first := newTestWitness(t, "", skey, l)
	first.mustCosign(t, l, 0, 5)

	second := newTestWitness(t, first.dsn, skey, l)
	if r := post(t, second.url, l.body(t, 0, 8)); r.code != http.StatusConflict || r.body != "5\n" {
		t.Fatalf("after restart, old 0: got %d %q, want 409 \"5\\n\"", r.code, r.body)
	}
	second.mustCosign(t, l, 5, 13)
	c := verifyCosigned(t, second.latest(t, l.origin), l.vkey, second.vkey)
	if c.N != 13 {
		t.Errorf("after restart, cosigned size %d, want 13", c.N)
	}
	// The first process, still running on the same database, sees it too.
	if r := post(t, first.url, l.body(t, 5, 8)); r.code != http.StatusConflict || r.body != "13\n" {
		t.Errorf("first process after the second advanced: got %d %q, want 409 \"13\\n\"", r.code, r.body)
	}
}

// TestRace stalls a request after its checks and before its state is
// stored, lets a second request for the same log win, and checks that the
// first is refused rather than rolling the log back (c2sp.org/tlog-witness,
// "checking the old size ... and persisting the new checkpoint must be
// performed atomically").
func TestRace(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 13)
	w := newTestWitness(t, "", "", l)
	w.mustCosign(t, l, 0, 5)

	var calls atomic.Int32
	stalled, release := make(chan struct{}), make(chan struct{})
	w.testingOnlyBeforeSwap = func() {
		if calls.Add(1) == 1 {
			close(stalled)
			<-release
		}
	}
	done := make(chan response)
	go func() { done <- post(t, w.url, l.body(t, 5, 8)) }()
	<-stalled
	if r := post(t, w.url, l.body(t, 5, 13)); r.code != http.StatusOK {
		t.Fatalf("racing request: got %d %q, want 200", r.code, r.body)
	}
	close(release)
	if r := <-done; r.code != http.StatusConflict || r.body != "13\n" {
		t.Errorf("stalled request: got %d %q, want 409 \"13\\n\"", r.code, r.body)
	}
	if c := verifyCosigned(t, w.latest(t, l.origin), l.vkey, w.vkey); c.N != 13 {
		t.Errorf("log rolled back to size %d", c.N)
	}
}

// TestConcurrentRequests sends many requests from the same old size at once,
// through HTTP and to two witness processes on the same database: exactly
// one is cosigned, the others get 409.
func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 20)
	skey, _, err := GenerateKey(testWitnessName)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestWitness(t, "", skey, l)
	b := newTestWitness(t, a.dsn, skey, l)
	a.mustCosign(t, l, 0, 4)

	const n = 12
	start := make(chan struct{})
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		body := l.body(t, 4, 5+i)
		url := []string{a.url, b.url}[i%2]
		wg.Go(func() {
			<-start
			results[i] = post(t, url, body)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, r := range results {
		switch r.code {
		case http.StatusOK:
			if winner != -1 {
				t.Errorf("requests for sizes %d and %d were both cosigned", 5+winner, 5+i)
			}
			winner = i
		case http.StatusConflict:
		default:
			t.Errorf("request %d: got %d %q", i, r.code, r.body)
		}
	}
	if winner == -1 {
		t.Fatal("no request was cosigned")
	}
	want := uitoa(uint64(5+winner)) + "\n"
	for i, r := range results {
		if r.code == http.StatusConflict && r.body != want {
			t.Errorf("request %d: 409 body %q, want the winner's size %q", i, r.body, want)
		}
	}
	if c := verifyCosigned(t, a.latest(t, l.origin), l.vkey, a.vkey); c.N != int64(5+winner) {
		t.Errorf("stored size %d, want the winner's %d", c.N, 5+winner)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	skey, _, err := GenerateKey(testWitnessName)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t, "vitalproof.example/log", 0)
	other := newTestLog(t, "other.example/log", 0)
	misnamed := Log{Origin: l.origin, Keys: other.logConfig(t).Keys}
	for name, c := range map[string]Config{
		"no signer": {Logs: []Log{l.logConfig(t)}, DB: db},
		"no db":     {Signer: signer, Logs: []Log{l.logConfig(t)}},
		"no log":    {Signer: signer, DB: db},
		"twice":     {Signer: signer, DB: db, Logs: []Log{l.logConfig(t), l.logConfig(t)}},
		"misnamed":  {Signer: signer, DB: db, Logs: []Log{misnamed}},
		"no key":    {Signer: signer, DB: db, Logs: []Log{{Origin: l.origin}}},
	} {
		if _, err := New(ctx, c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// docExample is the request of the package documentation.
const docExample = `old 5
gxFfiUeVX6/cKifn9MCFS72Nonuxs+NAXbVxya+Nvho=
la3xW37122c4aouvvv7k0UVmKvpFB0DhhoVT6DSO06A=
brzFS2cQ7gYQp/yCzeUXE9soDj3IRRW96WMqGbZaC5M=
T2MQhKFXxU9U/Psj/164ZQxLoWDClbsTqYMrEJ1SZ34=

vitalproof.example/log
8
xcLIIO00L92ozolra5z1uMAKIcxLIHFMxuXTwFw1JAs=

— vitalproof.example/log XzsS18ey4YFFcxIyTO2wSnO0ggaO1eGRL8H1j46Siz90UDlInm4GyU+y4HVsgkt1fxQ5MgTbhYRPhs+EsVgILs1fZA4=
`

// TestDocExample checks that the package documentation's request is
// cosigned by a witness that cosigned the same log at size 5.
func TestDocExample(t *testing.T) {
	t.Parallel()
	const skey = "PRIVATE+KEY+vitalproof.example/log+5f3b12d7+AQVbNEk9MeJqL/okYtWkoQzdW9BrgrZigoqNZuSqyt5m"
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{origin: signer.Name(), signer: signer, leaf: func(i int) []byte { return fmt.Appendf(nil, "leaf %d", i) },
		vkey: "vitalproof.example/log+5f3b12d7+AZ5FM+DhFkTHo+Y32JsgJY4uUo/0Q6bDPtRaxAfdosFI"}
	l.append(t, 8)
	w := newTestWitness(t, "", "", l)
	w.mustCosign(t, l, 0, 5)
	if !bytes.Equal(l.body(t, 5, 8), []byte(docExample)) {
		t.Errorf("the documented request is not the log's:\n%s", l.body(t, 5, 8))
	}
	if r := post(t, w.url, []byte(docExample)); r.code != http.StatusOK {
		t.Errorf("documented request: got %d %q", r.code, r.body)
	}
}
