// Package monitortest serves a log from memory the way a VitalProof ledger
// serves it to monitors, for tests of package provenance/monitor and of the
// commands built on it. A [Ledger] holds a log (log/logtest.MemLog), the
// log's checkpoint key and witnesses' cosigning keys; the test appends
// leaves, publishes cosigned checkpoints, and makes the ledger misbehave:
// serve a fork, a wrong leaf, a wrong consistency proof, or a checkpoint
// below quorum.
//
// A Ledger implements the monitor's Ledger interface directly and, through
// [Ledger.Handler], the ledger's REST routes that monitors use:
//
//	GET /api/v1/log/checkpoint.txt                 the checkpoint served (503 before one)
//	GET /api/v1/log/policy.txt                     the policy
//	GET /api/v1/log/consistency?from=F&to=T        {"from": "F", "to": "T", "hashes": [...]}
//	GET /api/v1/log/entries?start=S&count=N        {"start": "S", "entries": [...]} (at most 1000)
//
// with the ledger's protojson conventions: proto field names, 64-bit
// integers as strings, bytes as base64, errors as {"code", "message",
// "details"}.
package monitortest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
)

// MaxLeavesPerRequest is the most leaves one Leaves call returns, as the
// ledger's ListEntries.
const MaxLeavesPerRequest = 1000

// Ledger is an in-memory log served as a ledger serves it. It is safe for
// concurrent use.
type Ledger struct {
	signer    *checkpoint.Signer
	names     []string
	witnesses map[string]*torchwood.CosignatureSigner
	policy    []byte
	served    atomic.Uint64 // leaves served by Leaves

	mu          sync.Mutex
	log         *logtest.MemLog
	checkpoint  []byte // served; nil before Publish or Serve
	size        uint64 // the served checkpoint's tree size
	replaced    map[uint64][]byte
	tamperProof func(from, to uint64, p []log.Hash) []log.Hash
}

// New returns an empty log named origin whose policy wants quorum of the
// witnesses named (a group of all of them), or "quorum none" when there
// are none.
func New(t testing.TB, origin string, quorum int, witnesses ...string) *Ledger {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &Ledger{signer: signer, names: witnesses, witnesses: map[string]*torchwood.CosignatureSigner{}, log: logtest.NewMemLog()}
	var b strings.Builder
	b.WriteString("log " + vkey + "\n")
	for _, name := range witnesses {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		host := strings.ToLower(name) + ".witness.example"
		w, err := torchwood.NewCosignatureSigner(host, key)
		if err != nil {
			t.Fatal(err)
		}
		l.witnesses[name] = w
		fmt.Fprintf(&b, "witness %s %s https://%s\n", name, w.Verifier(), host)
	}
	if len(witnesses) == 0 {
		b.WriteString("quorum none\n")
	} else {
		fmt.Fprintf(&b, "group witnesses %d %s\nquorum witnesses\n", quorum, strings.Join(witnesses, " "))
	}
	l.policy = []byte(b.String())
	return l
}

// Policy returns the log's tlog-policy.
func (l *Ledger) Policy() []byte { return l.policy }

// Witnesses returns the witnesses' names, in policy order.
func (l *Ledger) Witnesses() []string { return l.names }

// Append appends leaves (MemLog drops a leaf already in the log),
// integrates them and returns the new tree.
func (l *Ledger) Append(t testing.TB, leaves ...[]byte) log.Root {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.log.Append(context.Background(), leaves); err != nil {
		t.Fatal(err)
	}
	return l.log.Integrate()
}

// Root returns the log's tree.
func (l *Ledger) Root() log.Root {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, _ := l.log.Root(context.Background())
	return r
}

// Sign returns the checkpoint of root signed by the log and cosigned by
// the named witnesses.
func (l *Ledger) Sign(t testing.TB, root log.Root, cosigners ...string) []byte {
	t.Helper()
	signed, err := l.signer.Sign(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cosigners) == 0 {
		return signed
	}
	n, err := note.Open(signed, note.VerifierList(l.signer.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	var signers []note.Signer
	for _, name := range cosigners {
		w, ok := l.witnesses[name]
		if !ok {
			t.Fatalf("no witness %q", name)
		}
		signers = append(signers, w)
	}
	out, err := note.Sign(n, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Publish signs the log's tree, has the named witnesses cosign it, serves
// it and returns it.
func (l *Ledger) Publish(t testing.TB, cosigners ...string) []byte {
	t.Helper()
	signed := l.Sign(t, l.Root(), cosigners...)
	l.Serve(t, signed)
	return signed
}

// Serve serves signed as the latest checkpoint.
func (l *Ledger) Serve(t testing.TB, signed []byte) {
	t.Helper()
	_, err := note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		t.Fatalf("not a signed note: %v", err)
	}
	c, err := torchwood.ParseCheckpoint(unverified.Note.Text)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpoint, l.size = signed, uint64(c.N)
}

// Fork replaces the log with one holding only its first keep leaves, to
// which the test appends others.
func (l *Ledger) Fork(t testing.TB, keep uint64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	fork := logtest.NewMemLog()
	if keep > 0 {
		leaves, err := l.log.Leaves(context.Background(), 0, keep)
		if err != nil || uint64(len(leaves)) != keep {
			t.Fatalf("couldn't fork after %d leaves: %v", keep, err)
		}
		if err := fork.Append(context.Background(), leaves); err != nil {
			t.Fatal(err)
		}
		fork.Integrate()
	}
	l.log = fork
}

// ReplaceLeaf serves leaf instead of the log's leaf at index.
func (l *Ledger) ReplaceLeaf(index uint64, leaf []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.replaced == nil {
		l.replaced = map[uint64][]byte{}
	}
	l.replaced[index] = leaf
}

// TamperProofs passes every consistency proof through f before serving
// it; nil stops.
func (l *Ledger) TamperProofs(f func(from, to uint64, p []log.Hash) []log.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tamperProof = f
}

// Restore serves the log's own leaves and proofs again, undoing
// ReplaceLeaf and TamperProofs.
func (l *Ledger) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replaced, l.tamperProof = nil, nil
}

// LeavesServed returns how many leaves Leaves has returned.
func (l *Ledger) LeavesServed() uint64 { return l.served.Load() }

// errNoCheckpoint is the answer before a checkpoint is served.
var errNoCheckpoint = errors.New("no checkpoint is published yet")

// Checkpoint returns the checkpoint served.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checkpoint == nil {
		return nil, errNoCheckpoint
	}
	return l.checkpoint, nil
}

// ConsistencyProof returns the log's consistency proof, for sizes up to
// the served checkpoint's.
func (l *Ledger) ConsistencyProof(ctx context.Context, from, to uint64) ([]log.Hash, error) {
	l.mu.Lock()
	ml, size, tamper := l.log, l.size, l.tamperProof
	l.mu.Unlock()
	if from == 0 || from > to {
		return nil, errors.New("from must be between 1 and to")
	}
	if to > size {
		return nil, fmt.Errorf("to is larger than the latest published checkpoint's size (%d)", size)
	}
	p, err := ml.ConsistencyProof(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if tamper != nil {
		p = tamper(from, to, p)
	}
	return p, nil
}

// Leaves returns up to count (at most MaxLeavesPerRequest; 0 means that
// many) leaves from start.
func (l *Ledger) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	if count == 0 || count > MaxLeavesPerRequest {
		count = MaxLeavesPerRequest
	}
	l.mu.Lock()
	ml := l.log
	l.mu.Unlock()
	leaves, err := ml.Leaves(ctx, start, count)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for i := range leaves {
		if v, ok := l.replaced[start+uint64(i)]; ok {
			leaves[i] = v
		}
	}
	l.mu.Unlock()
	l.served.Add(uint64(len(leaves)))
	return leaves, nil
}

// Handler returns the ledger's REST routes for monitors.
func (l *Ledger) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/log/checkpoint.txt", func(w http.ResponseWriter, r *http.Request) {
		cp, err := l.Checkpoint(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, 14, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(cp)
	})
	mux.HandleFunc("GET /api/v1/log/policy.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(l.policy)
	})
	mux.HandleFunc("GET /api/v1/log/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, err1 := queryUint(r, "from")
		to, err2 := queryUint(r, "to")
		if err := errors.Join(err1, err2); err != nil {
			writeError(w, http.StatusBadRequest, 3, err.Error())
			return
		}
		p, err := l.ConsistencyProof(r.Context(), from, to)
		if err != nil {
			writeError(w, http.StatusBadRequest, 3, err.Error())
			return
		}
		hashes := make([]string, len(p))
		for i := range p {
			hashes[i] = base64.StdEncoding.EncodeToString(p[i][:])
		}
		writeJSON(w, map[string]any{"from": strconv.FormatUint(from, 10), "to": strconv.FormatUint(to, 10), "hashes": hashes})
	})
	mux.HandleFunc("GET /api/v1/log/entries", func(w http.ResponseWriter, r *http.Request) {
		start, err := queryUint(r, "start")
		if err != nil {
			writeError(w, http.StatusBadRequest, 3, err.Error())
			return
		}
		count := uint64(0)
		if r.URL.Query().Has("count") {
			if count, err = queryUint(r, "count"); err != nil {
				writeError(w, http.StatusBadRequest, 3, err.Error())
				return
			}
		}
		leaves, err := l.Leaves(r.Context(), start, count)
		if err != nil || len(leaves) == 0 {
			writeError(w, http.StatusNotFound, 5, "start: no entry at this index")
			return
		}
		entries := make([]string, len(leaves))
		for i, v := range leaves {
			entries[i] = base64.StdEncoding.EncodeToString(v)
		}
		writeJSON(w, map[string]any{"start": strconv.FormatUint(start, 10), "entries": entries})
	})
	return mux
}

func queryUint(r *http.Request, name string) (uint64, error) {
	v, err := strconv.ParseUint(r.URL.Query().Get(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: must be a decimal number", name)
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeError answers as grpc-gateway does: the google.rpc.Status as JSON.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "details": []any{}})
}
