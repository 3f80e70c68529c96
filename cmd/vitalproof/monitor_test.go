package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	vlog "github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/provenance/monitor"
	"github.com/vitalproof/vitalproof/provenance/monitor/monitortest"
	"github.com/vitalproof/vitalproof/wearables"
)

// monitorLog is a ledger's log for `vitalproof monitor` tests: acme's
// band-a and globex's band-b, their entries, served over HTTP with the
// ledger's protojson.
type monitorLog struct {
	l         *monitortest.Ledger
	srv       *httptest.Server
	dir       string
	policy    string
	registrar note.Signer
	devices   map[string]note.Signer
	seq       map[string]uint64
	prev      map[string][32]byte
}

func newMonitorLog(t *testing.T) *monitorLog {
	t.Helper()
	ml := &monitorLog{
		l:       monitortest.New(t, "cli.test/ledger", 2, "H1", "H2", "H3"),
		dir:     t.TempDir(),
		devices: map[string]note.Signer{}, seq: map[string]uint64{}, prev: map[string][32]byte{},
	}
	skey, _, err := note.GenerateKey(rand.Reader, "registrar.cli.test")
	if err != nil {
		t.Fatal(err)
	}
	if ml.registrar, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	ml.policy = filepath.Join(ml.dir, "policy.txt")
	if err := os.WriteFile(ml.policy, ml.l.Policy(), 0o644); err != nil {
		t.Fatal(err)
	}
	ml.srv = httptest.NewServer(ledgerJSON(ml.l))
	t.Cleanup(ml.srv.Close)
	for _, d := range []struct{ device, maker string }{{"band-a", "acme"}, {"band-b", "globex"}} {
		s, _, _, pub, err := wearables.GenerateDeviceKey(d.device)
		if err != nil {
			t.Fatal(err)
		}
		ml.devices[d.device] = s
		r, err := wearables.NewRegistration(d.device, d.maker, "(01)09506000134352(21)"+strings.ToUpper(d.device), "Band", "2.0", pub, "st-mary", time.Unix(1772409600, 0))
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Sign(ml.registrar)
		if err != nil {
			t.Fatal(err)
		}
		ml.l.Append(t, b)
	}
	return ml
}

// grow appends n entries of each band.
func (ml *monitorLog) grow(t *testing.T, n int) {
	t.Helper()
	var leaves [][]byte
	for range n {
		for _, device := range []string{"band-a", "band-b"} {
			ml.seq[device]++
			start := int64(1772409600) + int64(ml.seq[device])*3600
			h := &wearables.EntryHeader{DeviceID: device, Metric: "heart-rate", WindowStart: start, WindowEnd: start + 3600, Count: 60,
				Seq: ml.seq[device], Prev: ml.prev[device], Hospital: "st-mary", Attestation: wearables.AttestDevice}
			if _, err := rand.Read(h.Commitment[:]); err != nil {
				t.Fatal(err)
			}
			b, err := wearables.SignEntry(h, ml.devices[device])
			if err != nil {
				t.Fatal(err)
			}
			ml.prev[device] = wearables.LeafHash(b)
			leaves = append(leaves, b)
		}
	}
	ml.l.Append(t, leaves...)
}

// monitor runs `vitalproof monitor` on the log with args added, and returns
// its standard output and error.
func (ml *monitorLog) monitor(ctx context.Context, state string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	args = append([]string{"--ledger", ml.srv.URL, "--policy", ml.policy, "--state", state}, args...)
	err := runMonitor(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// ledgerJSON serves l as the ledger's REST API does: the generated
// messages in protojson, with proto field names and default values.
func ledgerJSON(l *monitortest.Ledger) http.Handler {
	write := func(w http.ResponseWriter, m proto.Message) {
		b, err := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}.Marshal(m)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
	number := func(r *http.Request, name string) uint64 {
		n, _ := strconv.ParseUint(r.URL.Query().Get(name), 10, 64)
		return n
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/log/checkpoint.txt", func(w http.ResponseWriter, r *http.Request) {
		cp, err := l.Checkpoint(r.Context())
		if err != nil {
			http.Error(w, `{"code":14,"message":"no checkpoint is published yet","details":[]}`, http.StatusServiceUnavailable)
			return
		}
		w.Write(cp)
	})
	mux.HandleFunc("GET /api/v1/log/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, to := number(r, "from"), number(r, "to")
		p, err := l.ConsistencyProof(r.Context(), from, to)
		if err != nil {
			http.Error(w, `{"code":3,"message":"from: must be between 1 and to","details":[]}`, http.StatusBadRequest)
			return
		}
		resp := &v1.GetConsistencyProofResponse{From: from, To: to}
		for _, h := range p {
			resp.Hashes = append(resp.Hashes, bytes.Clone(h[:]))
		}
		write(w, resp)
	})
	mux.HandleFunc("GET /api/v1/log/entries", func(w http.ResponseWriter, r *http.Request) {
		start := number(r, "start")
		leaves, err := l.Leaves(r.Context(), start, number(r, "count"))
		if err != nil {
			http.Error(w, `{"code":5,"message":"start: no entry at this index","details":[]}`, http.StatusNotFound)
			return
		}
		write(w, &v1.ListEntriesResponse{Start: start, Entries: leaves})
	})
	return mux
}

func TestMonitorOnce(t *testing.T) {
	ctx := context.Background()
	ml := newMonitorLog(t)
	ml.grow(t, 5)
	ml.l.Publish(t, "H1", "H3")
	state, report := filepath.Join(ml.dir, "state"), filepath.Join(ml.dir, "report.txt")

	stdout, stderr, err := ml.monitor(ctx, state, "--watch-manufacturer", "acme, initech", "--once", "--report", report)
	if err != nil {
		t.Fatalf("monitor --once: %v\n%s%s", err, stdout, stderr)
	}
	for _, want := range []string{
		"new checkpoint: cli.test/ledger, tree size 12, root ",
		"cosigned by H1, H3 (quorum 2 of 3 met)",
		"registration 0: device band-a of manufacturer acme, assigned to hospital st-mary",
		"entry 2: device band-a of manufacturer acme, hospital st-mary, 2026-03-02T01:00:00Z to 2026-03-02T02:00:00Z: heart-rate, 60 readings, seq 1",
		"caught up 12 of 12 entries (",
		": 12 new leaves (10 entries, 2 registrations, 0 lifecycle events, 0 other) verified against the checkpoint's tree",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, ": device band-a of manufacturer acme, hospital"); n != 5 {
		t.Errorf("%d entry lines, want band-a's 5:\n%s", n, stdout)
	}
	if strings.Contains(stdout, "band-b") || strings.Contains(stdout, "ALERT") {
		t.Errorf("output reports globex's device or an alert:\n%s", stdout)
	}
	if b, err := os.ReadFile(report); err != nil || string(b) != stdout {
		t.Errorf("report file = %q, %v; want the output", b, err)
	}

	// A second run resumes and downloads only the new leaves.
	ml.grow(t, 5)
	ml.l.Publish(t, "H2", "H3")
	stdout, stderr, err = ml.monitor(ctx, state, "--watch-manufacturer", "acme", "--once", "--report", report)
	if err != nil {
		t.Fatalf("second monitor --once: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "resuming cli.test/ledger at tree size 12, 12 leaves verified") ||
		!strings.Contains(stdout, "tree size 22 (10 new leaves)") || strings.Contains(stdout, "registration 0") {
		t.Errorf("second run:\n%s%s", stdout, stderr)
	}
	if got := ml.l.LeavesServed(); got != 22 {
		t.Errorf("the ledger served %d leaves, want 22", got)
	}
	if b, _ := os.ReadFile(report); strings.Count(string(b), "new checkpoint") != 2 {
		t.Errorf("the report file does not hold both runs:\n%s", b)
	}
}

func TestMonitorEvidence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bad   func(t *testing.T, ml *monitorLog)
		want  error
		files []string
	}{
		{"a fork of the same size", func(t *testing.T, ml *monitorLog) {
			ml.l.Fork(t, 8)
			ml.grow(t, 2) // 12 leaves again, the last 4 others
			ml.l.Publish(t, "H1", "H2")
		}, monitor.ErrFork, []string{"kept.checkpoint", "served.checkpoint", "policy.txt", "README.txt"}},
		{"a consistency proof that fails", func(t *testing.T, ml *monitorLog) {
			ml.grow(t, 3)
			ml.l.TamperProofs(func(from, to uint64, p []vlog.Hash) []vlog.Hash {
				p[0][5] ^= 0x40
				return p
			})
			ml.l.Publish(t, "H1", "H2")
		}, monitor.ErrInconsistent, []string{"kept.checkpoint", "served.checkpoint", "consistency.proof", "policy.txt", "README.txt"}},
		{"a leaf that is not the log's", func(t *testing.T, ml *monitorLog) {
			ml.grow(t, 3)
			ml.l.ReplaceLeaf(13, []byte("vitalproof/approval/v1\nnot this\n"))
			ml.l.Publish(t, "H1", "H2")
		}, monitor.ErrInconsistent, []string{"served.checkpoint", "leaves.txt", "compact-range.txt", "policy.txt", "README.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ml := newMonitorLog(t)
			ml.grow(t, 5)
			kept := ml.l.Publish(t, "H1", "H3")
			state := filepath.Join(ml.dir, "state")
			if stdout, _, err := ml.monitor(ctx, state, "--once"); err != nil {
				t.Fatalf("monitor --once: %v\n%s", err, stdout)
			}
			tc.bad(t, ml)
			served, _ := ml.l.Checkpoint(ctx)

			stdout, _, err := ml.monitor(ctx, state, "--once")
			var ue usageError
			if !errors.Is(err, tc.want) || errors.As(err, &ue) {
				t.Fatalf("monitor --once = %v, want an error (status 1) wrapping %v\n%s", err, tc.want, stdout)
			}
			_, list, ok := strings.Cut(err.Error(), "\nevidence:\n")
			if !ok {
				t.Fatalf("the error lists no evidence: %v", err)
			}
			var paths []string
			for _, line := range strings.Split(list, "\n") {
				paths = append(paths, strings.TrimPrefix(line, "  "))
			}
			if len(paths) != len(tc.files) {
				t.Fatalf("evidence files %q, want %q", paths, tc.files)
			}
			for i, p := range paths {
				if filepath.Base(p) != tc.files[i] || !strings.HasPrefix(p, filepath.Join(state, "evidence")) {
					t.Errorf("evidence file %q, want %s in %s", p, tc.files[i], filepath.Join(state, "evidence"))
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Error(err)
					continue
				}
				switch filepath.Base(p) {
				case "kept.checkpoint":
					if !bytes.Equal(b, kept) {
						t.Errorf("kept.checkpoint is not the checkpoint kept")
					}
				case "served.checkpoint":
					if !bytes.Equal(b, served) {
						t.Errorf("served.checkpoint is not the checkpoint served")
					}
				}
			}
			if !strings.Contains(stdout, " ALERT ") || !strings.Contains(stdout, "evidence in "+filepath.Dir(paths[0])) {
				t.Errorf("output:\n%s", stdout)
			}
			// The checkpoints verify with `vitalproof verify checkpoint`,
			// as README.txt says.
			for _, p := range paths {
				if strings.HasSuffix(p, ".checkpoint") {
					if out, err := run(t, nil, "checkpoint", "--policy", filepath.Join(filepath.Dir(p), "policy.txt"), p); err != nil {
						t.Errorf("verify checkpoint %s: %v\n%s", p, err, out)
					}
				}
			}
		})
	}
}

func TestMonitorBelowQuorum(t *testing.T) {
	ml := newMonitorLog(t)
	ml.grow(t, 1)
	ml.l.Publish(t, "H3")
	stdout, _, err := ml.monitor(context.Background(), filepath.Join(ml.dir, "state"), "--once")
	if !errors.Is(err, monitor.ErrBelowQuorum) {
		t.Errorf("monitor --once = %v, want ErrBelowQuorum", err)
	}
	want := `ALERT checkpoint below quorum: tree size 4: quorum not met: group "witnesses" needs 2 of H1, H2, H3; cosigned by H3; missing H1 (no cosignature), H2 (no cosignature)`
	if !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestMonitorFollows(t *testing.T) {
	ml := newMonitorLog(t)
	ml.grow(t, 2)
	ml.l.Publish(t, "H1", "H2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout lockedBuffer
	done := make(chan error, 1)
	go func() {
		args := []string{"--ledger", ml.srv.URL, "--policy", ml.policy, "--state", filepath.Join(ml.dir, "state"), "--interval", "10ms"}
		done <- runMonitor(ctx, args, &stdout, io.Discard)
	}()
	waitFor := func(s string) {
		t.Helper()
		for !strings.Contains(stdout.String(), s) {
			select {
			case err := <-done:
				t.Fatalf("monitor stopped: %v\n%s", err, stdout.String())
			case <-ctx.Done():
				t.Fatalf("no %q before the deadline:\n%s", s, stdout.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitFor("caught up 6 of 6 entries")
	ml.grow(t, 2)
	ml.l.Publish(t, "H2", "H3")
	waitFor("caught up 10 of 10 entries")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("monitor, interrupted: %v", err)
	}
}

func TestMonitorUsage(t *testing.T) {
	ml := newMonitorLog(t)
	state := filepath.Join(ml.dir, "state")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no state", []string{"--ledger", ml.srv.URL, "--policy", ml.policy}},
		{"no ledger", []string{"--policy", ml.policy, "--state", state}},
		{"a ledger URL without a scheme", []string{"--ledger", "ledger.example", "--policy", ml.policy, "--state", state}},
		{"a bad manufacturer ID", []string{"--ledger", ml.srv.URL, "--policy", ml.policy, "--state", state, "--watch-manufacturer", "acme,Globex Inc"}},
		{"a zero interval", []string{"--ledger", ml.srv.URL, "--policy", ml.policy, "--state", state, "--interval", "0s"}},
		{"an argument", []string{"--ledger", ml.srv.URL, "--policy", ml.policy, "--state", state, "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runMonitor(context.Background(), tc.args, io.Discard, io.Discard)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("runMonitor = %v, want a usage error", err)
			}
		})
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("bad usage created the state directory")
	}
}

// TestMonitortestServesLedgerJSON checks that monitortest's routes answer
// what the ledger's protojson does, so that tests against it hold for the
// ledger.
func TestMonitortestServesLedgerJSON(t *testing.T) {
	ml := newMonitorLog(t)
	ml.grow(t, 3)
	ml.l.Publish(t, "H1", "H2")
	fake := httptest.NewServer(ml.l.Handler())
	defer fake.Close()
	for _, tc := range []struct {
		path string
		msg  func() proto.Message
	}{
		{"/api/v1/log/consistency?from=3&to=8", func() proto.Message { return &v1.GetConsistencyProofResponse{} }},
		{"/api/v1/log/entries?start=2&count=3", func() proto.Message { return &v1.ListEntriesResponse{} }},
		{"/api/v1/log/entries?start=5", func() proto.Message { return &v1.ListEntriesResponse{} }},
	} {
		var got [2]proto.Message
		for i, base := range []string{fake.URL, ml.srv.URL} {
			resp, err := http.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s, %v", tc.path, resp.StatusCode, b, err)
			}
			got[i] = tc.msg()
			if err := protojson.Unmarshal(b, got[i]); err != nil {
				t.Fatalf("GET %s: not the ledger's JSON: %v\n%s", tc.path, err, b)
			}
		}
		if !proto.Equal(got[0], got[1]) {
			t.Errorf("GET %s: monitortest answers\n%v\nthe ledger's encoding\n%v", tc.path, got[0], got[1])
		}
	}
}
