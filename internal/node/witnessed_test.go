package node

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/log/witness"
)

// nodeWitness is a hospital's witness (package log/witness on its own
// MariaDB database) served over HTTP on a fixed address, which a test can
// take down and bring back.
type nodeWitness struct {
	name, vkey string
	w          *witness.Witness
	addr       string

	mu  sync.Mutex
	srv *http.Server
}

func startNodeWitness(t *testing.T, name, logVkey string) *nodeWitness {
	t.Helper()
	ctx := context.Background()
	db, err := witness.Open(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs, err := witness.ParseLogs([]byte("log " + logVkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := witness.GenerateKey(name + ".example/witness")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(ctx, witness.Config{Signer: signer, Logs: logs, DB: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	nw := &nodeWitness{name: name, vkey: vkey, w: w, addr: "127.0.0.1:0"}
	nw.up(t)
	t.Cleanup(nw.down)
	return nw
}

func (nw *nodeWitness) up(t *testing.T) {
	t.Helper()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after down
		if ln, err = net.Listen("tcp", nw.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	nw.addr = ln.Addr().String()
	nw.srv = &http.Server{Handler: nw.w.Handler()}
	go nw.srv.Serve(ln)
}

func (nw *nodeWitness) down() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.srv != nil {
		nw.srv.Close()
		nw.srv = nil
	}
}

// newWitnessedEnv starts a node whose checkpoints need cosignatures from
// quorum of the witnesses named: the log key is made first, the witnesses
// trust it, and the policy names them in a group.
func newWitnessedEnv(t *testing.T, quorum string, names ...string) (*env, []*nodeWitness) {
	return newWitnessedEnvThen(t, nil, quorum, names...)
}

// newWitnessedEnvThen is newWitnessedEnv calling before with the witnesses
// before the node starts.
func newWitnessedEnvThen(t *testing.T, before func([]*nodeWitness), quorum string, names ...string) (*env, []*nodeWitness) {
	t.Helper()
	e := &env{t: t, cfg: newConfig(t), chains: map[string]chainHead{}}
	e.cfg.Ledger.Publish.Interval = 100 * time.Millisecond
	e.cfg.Ledger.Publish.WitnessTimeout = time.Second
	e.cfg.Ledger.IntegrationTimeout = 2 * time.Second
	e.cfg.Gateway.OutboxInterval = 500 * time.Millisecond
	_, logVkey, err := checkpoint.LoadOrCreateKey(e.cfg.Ledger.KeyFile, e.cfg.Ledger.Origin)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*nodeWitness
	policy := "log " + logVkey + "\n"
	for _, n := range names {
		w := startNodeWitness(t, n, logVkey)
		ws = append(ws, w)
		policy += "witness " + n + " " + w.vkey + " http://" + w.addr + "/\n"
	}
	policy += "group hospitals " + quorum + " " + strings.Join(names, " ") + "\nquorum hospitals\n"
	e.cfg.Ledger.Publish.PolicyFile = filepath.Join(e.cfg.DataDir, "consortium-policy.txt")
	if err := os.WriteFile(e.cfg.Ledger.Publish.PolicyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(ws)
	}
	e.setup()
	return e, ws
}

// cosigners returns the names of the witnesses whose cosignatures on the
// signed checkpoint verify, with torchwood's verifiers.
func cosigners(t *testing.T, signed string, ws []*nodeWitness) []string {
	t.Helper()
	var names []string
	for _, w := range ws {
		v, err := torchwood.NewCosignatureVerifier(w.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open([]byte(signed), note.VerifierList(v)); err == nil {
			names = append(names, w.name)
		}
	}
	return names
}

// TestWitnessedReceipts runs the consortium's promise end to end: receipts
// carry checkpoints cosigned by a quorum of witnesses; with one witness down
// the quorum still holds; below quorum nothing is published, yet ingest goes
// on acknowledging (pending, with the index) and no entry is lost; when the
// witnesses return, every receipt arrives.
func TestWitnessedReceipts(t *testing.T) {
	e, ws := newWitnessedEnv(t, "2", "h1", "h2", "h3")
	ctx := e.as(context.Background(), e.submitterKey)
	policy := e.node.Policy
	submit := func(h int) *v1.BatchResult {
		t.Helper()
		res, err := e.gateway.SubmitBatch(ctx, e.batch(batchSpec{metric: "heart-rate", start: hour(h), values: values(30, 70)}))
		if err != nil {
			t.Fatalf("SubmitBatch(hour %d): %v", h, err)
		}
		return res
	}
	verify := func(res *v1.BatchResult, wantCosigners int) {
		t.Helper()
		if res.Pending || res.Receipt == "" {
			t.Fatalf("no receipt: %+v", res)
		}
		v, err := receipt.Verify(policy, []byte(res.Receipt))
		if err != nil {
			t.Fatalf("receipt %d does not verify against the policy: %v", res.Index, err)
		}
		checkReceiptIndependently(t, receipt.Policy(e.node.LogVerifierKey), []byte(res.Receipt))
		cp := res.Receipt[strings.Index(res.Receipt, "\n\n")+2:]
		if got := cosigners(t, cp, ws); len(got) < wantCosigners {
			t.Errorf("receipt %d is cosigned by %v; want at least %d witnesses", v.Index, got, wantCosigners)
		}
	}

	// All witnesses up: receipts at once, cosigned by at least two.
	verify(submit(10), 2)
	verify(submit(9), 2)

	// One down: the quorum of two still holds.
	ws[0].down()
	verify(submit(8), 2)

	// Two down: nothing is published; ingest acknowledges pending batches,
	// with their index once integrated, and does not hold the device's chain.
	ws[1].down()
	before, _, err := e.nodeCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	var pending []*v1.BatchResult
	for h := 7; h >= 5; h-- {
		res := submit(h)
		if !res.Pending || res.Receipt != "" {
			t.Fatalf("below quorum, batch answered %+v; want pending without receipt", res)
		}
		if !res.Integrated {
			t.Errorf("pending batch is not integrated: %+v", res)
		}
		pending = append(pending, res)
	}
	if n := e.count(e.ledgerDB, "entries WHERE seq > 0"); n != 6 {
		t.Errorf("ledger holds %d entries below quorum; want all 6 accepted", n)
	}
	if cp, _, err := e.nodeCheckpoint(); err != nil || cp != before {
		t.Errorf("a checkpoint was published below quorum (err %v)", err)
	}
	last := pending[len(pending)-1]
	_, err = e.ledger.GetReceipt(context.Background(), &v1.GetReceiptRequest{Index: last.Index})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "awaits witness cosignatures") {
		t.Errorf("GetReceipt(%d) below quorum = %v; want Unavailable naming the witnesses", last.Index, err)
	}
	_, err = e.gateway.GetReceipt(e.as(context.Background(), e.submitterKey), &v1.GetReceiptRequest{Index: last.Index})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gateway GetReceipt(%d) below quorum = %v; want Unavailable (pending)", last.Index, err)
	}

	// Witnesses return: the next checkpoint covers everything, and the
	// gateway's outbox fetches the receipts it waited for.
	ws[0].up(t)
	ws[1].up(t)
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range pending {
		for {
			res, err := e.gateway.GetReceipt(e.as(context.Background(), e.submitterKey), &v1.GetReceiptRequest{Index: p.Index})
			if err == nil {
				verify(res, 2)
				break
			}
			if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
				t.Fatalf("gateway GetReceipt(%d) after the witnesses returned: %v", p.Index, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := e.count(e.gatewayDB, "batches WHERE state <> 'logged'"); n != 0 {
		t.Errorf("%d batches still without receipt", n)
	}

	// The history holds every published checkpoint; any two are consistent.
	hist, err := e.ledger.ListCheckpoints(context.Background(), &v1.ListCheckpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Checkpoints) < 2 {
		t.Fatalf("history holds %d checkpoints; want at least 2", len(hist.Checkpoints))
	}
	newest, oldest := hist.Checkpoints[0], hist.Checkpoints[len(hist.Checkpoints)-1]
	for _, c := range hist.Checkpoints {
		if _, _, err := torchwood.VerifyCheckpoint([]byte(c.Checkpoint), mustPolicy(t, policy)); err != nil {
			t.Errorf("published checkpoint %d does not satisfy the policy: %v", c.Size, err)
		}
		if !c.Witnessed {
			t.Errorf("checkpoint %d published without a quorum", c.Size)
		}
	}
	cons, err := e.ledger.GetConsistencyProof(context.Background(), &v1.GetConsistencyProofRequest{From: oldest.Size, To: newest.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, oldest.Size, newest.Size, cons.Hashes, oldest.RootHash, newest.RootHash); err != nil {
		t.Errorf("history checkpoints %d and %d are not consistent: %v", oldest.Size, newest.Size, err)
	}
	got, err := e.ledger.GetPublishedCheckpoint(context.Background(), &v1.GetPublishedCheckpointRequest{Size: oldest.Size})
	if err != nil || got.Checkpoint != oldest.Checkpoint {
		t.Errorf("GetPublishedCheckpoint(%d) = %v, %v; want the history's", oldest.Size, got, err)
	}
	_, err = e.ledger.GetPublishedCheckpoint(context.Background(), &v1.GetPublishedCheckpointRequest{Size: newest.Size + 100})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetPublishedCheckpoint of an unpublished size = %v; want NotFound", err)
	}
}

// TestNoCheckpointBeforeQuorum checks a fresh log whose witnesses never
// answer: submissions are accepted and pending, and the ledger says no
// checkpoint is published rather than serving one without a quorum.
func TestNoCheckpointBeforeQuorum(t *testing.T) {
	e, _ := newWitnessedEnvThen(t, func(ws []*nodeWitness) { ws[0].down() }, "2", "h1", "h2")
	ctx := e.as(context.Background(), e.submitterKey)
	res, err := e.gateway.SubmitBatch(ctx, e.batch(batchSpec{metric: "glucose", start: hour(2), values: values(4, 90)}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pending || !res.Integrated || res.Receipt != "" {
		t.Errorf("result = %+v; want pending, integrated, no receipt", res)
	}
	_, err = e.ledger.GetCheckpoint(context.Background(), &v1.GetCheckpointRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no checkpoint is published yet") {
		t.Errorf("GetCheckpoint = %v; want Unavailable: no checkpoint is published yet", err)
	}
	if _, err := e.ledger.GetReceipt(context.Background(), &v1.GetReceiptRequest{Index: 99}); status.Code(err) != codes.NotFound {
		t.Errorf("GetReceipt of an index beyond the log = %v; want NotFound", err)
	}
}

func mustPolicy(t *testing.T, text []byte) torchwood.Policy {
	t.Helper()
	p, err := torchwood.ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
