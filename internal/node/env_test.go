package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/commitment"
)

const (
	testHospital = "test-hospital"
	testDevice   = "test-band-1"
	testUDI      = "(01)09506000134352(21)SN0001"
)

// env is a running node (ledger with embedded Trillian, and gateway) on
// throwaway databases, with a registered hospital and device.
type env struct {
	t       *testing.T
	cfg     *Config
	node    *Node
	logs    *syncBuffer
	ledger  v1.LedgerServiceClient
	gateway v1.GatewayServiceClient
	conns   []*grpc.ClientConn

	adminKey, hospitalKey, submitterKey string
	ledgerDB, gatewayDB                 *sql.DB
	device                              note.Signer
	devicePub                           []byte
	// chains holds the simulated device's chain heads by metric.
	chains map[string]chainHead
}

type chainHead struct {
	seq  uint64
	hash [32]byte
}

// syncBuffer collects the node's log lines for the canary checks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newConfig(t *testing.T) *Config {
	cfg := &Config{
		DataDir: t.TempDir(),
		Ledger: LedgerConfig{
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0",
			DB:                 testdb.New(t),
			IntegrationTimeout: 10 * time.Second,
			Trillian:           TrillianConf{DB: testdb.New(t), SequencerInterval: 20 * time.Millisecond},
		},
		Gateway: GatewayConf{
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0",
			DB:         testdb.New(t),
			HospitalID: testHospital,
		},
	}
	if err := cfg.SetDefaults(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newEnv starts a node and registers the test hospital and device.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, cfg: newConfig(t), chains: map[string]chainHead{}}
	e.setup()
	return e
}

// setup starts the node on e's configuration and registers the test
// hospital and device.
func (e *env) setup() {
	t := e.t
	t.Helper()
	e.start()
	ctx := context.Background()
	e.adminKey = readFile(t, e.cfg.Ledger.AdminKeyFile)
	hospitalVkey := readFile(t, e.cfg.Gateway.HospitalKeyFile+".vkey")
	_, hpub, err := wearables.ParseVerifierKey(hospitalVkey)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.ledger.RegisterHospital(e.as(ctx, e.adminKey), &v1.RegisterHospitalRequest{HospitalId: testHospital, Name: "Test Hospital", PublicKey: hpub})
	if err != nil {
		t.Fatalf("RegisterHospital: %v", err)
	}
	e.hospitalKey = resp.ApiKey
	if err := os.WriteFile(e.cfg.Gateway.LedgerAPIKeyFile, []byte(resp.ApiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.device, e.devicePub = e.registerDevice(testDevice, testHospital)
	e.submitterKey, err = provenance.CreateGatewayAPIKey(ctx, e.gatewayDB, "test-hub", provenance.RoleSubmitter)
	if err != nil {
		t.Fatal(err)
	}
}

// start starts (or restarts) the node on e's configuration.
func (e *env) start() {
	t := e.t
	t.Helper()
	if e.logs == nil {
		e.logs = &syncBuffer{}
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := Start(context.Background(), e.cfg, logger)
	if err != nil {
		t.Fatalf("couldn't start node: %v\nlogs:\n%s", err, e.logs.String())
	}
	e.node = n
	lc := e.dial(n.LedgerGRPC)
	gc := e.dial(n.GatewayGRPC)
	e.ledger = v1.NewLedgerServiceClient(lc)
	e.gateway = v1.NewGatewayServiceClient(gc)
	if e.ledgerDB == nil {
		e.ledgerDB = openTestDB(t, e.cfg.Ledger.DB)
		e.gatewayDB = openTestDB(t, e.cfg.Gateway.DB)
	}
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.node == nil {
		return
	}
	for _, c := range e.conns {
		c.Close()
	}
	e.conns = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.node.Close(ctx); err != nil {
		e.t.Errorf("node did not close cleanly: %v", err)
	}
	e.node = nil
}

func (e *env) restart() {
	e.stop()
	e.start()
}

func (e *env) dial(addr string) *grpc.ClientConn {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.conns = append(e.conns, c)
	return c
}

func openTestDB(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// as returns ctx carrying an API key.
func (e *env) as(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func (e *env) registerDevice(id, hospital string) (note.Signer, []byte) {
	e.t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, id)
	if err != nil {
		e.t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		e.t.Fatal(err)
	}
	_, pub, err := wearables.ParseVerifierKey(vkey)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.ledger.RegisterDevice(e.as(context.Background(), e.adminKey), &v1.RegisterDeviceRequest{
		DeviceId: id, Manufacturer: "test-maker", Udi: testUDI, Model: "Band", Firmware: "1.0.0", PublicKey: pub, HospitalId: hospital,
	})
	if err != nil {
		e.t.Fatalf("RegisterDevice(%s): %v", id, err)
	}
	return signer, pub
}

// batchSpec describes a batch the test device builds: a window starting at
// start, n readings a minute apart with the given values (or a default).
type batchSpec struct {
	metric string
	start  time.Time
	values []uint32
	// mutate may change the header before signing, or the readings after.
	header   func(*wearables.EntryHeader)
	readings func([]wearables.Reading) []wearables.Reading
	signer   note.Signer
	// noAdvance leaves the simulated chain head where it was.
	noAdvance bool
}

// batch builds a device-signed batch as a wearable would: readings, fresh
// salt, commitment, header, signature.
func (e *env) batch(s batchSpec) *v1.SubmitBatchRequest {
	e.t.Helper()
	m, ok := wearables.MetricByCode(s.metric)
	if !ok {
		m = wearables.Metrics()[0]
	}
	readings := make([]wearables.Reading, len(s.values))
	for i, v := range s.values {
		readings[i] = wearables.Reading{Offset: uint32(60 * i), Value: v}
	}
	salt, err := commitment.NewSalt()
	if err != nil {
		e.t.Fatal(err)
	}
	start := s.start.Unix()
	head := e.chains[s.metric]
	h := wearables.EntryHeader{
		DeviceID: testDevice, Metric: s.metric, WindowStart: start, WindowEnd: start + 3600, Count: len(readings),
		Seq: head.seq + 1, Prev: head.hash, Hospital: testHospital, Attestation: wearables.AttestDevice,
	}
	if s.header != nil {
		s.header(&h)
	}
	// The device commits to what its header says.
	if c, err := commitment.Commit(&commitment.Opening{Salt: salt, DeviceID: h.DeviceID, Metric: m.ID, WindowStart: h.WindowStart, WindowEnd: h.WindowEnd, Readings: readings}); err == nil {
		h.Commitment = c
	}
	signer := e.device
	if s.signer != nil {
		signer = s.signer
	}
	var raw []byte
	if body, err := h.Body(); err == nil {
		msg, err := note.Sign(&note.Note{Text: string(body)}, signer)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = msg
	} else {
		// An invalid header: sign its text as it would be encoded anyway.
		text := fmt.Sprintf("vitalproof/entry/v1\ndevice %s\nmetric %s\nwindow %d %d\ncount %d\ncommitment AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nseq %d\nprev AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhospital %s\nattestation device\n",
			h.DeviceID, h.Metric, h.WindowStart, h.WindowEnd, h.Count, h.Seq, h.Hospital)
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = msg
	}
	if s.readings != nil {
		readings = s.readings(readings)
	}
	if !s.noAdvance {
		e.chains[s.metric] = chainHead{seq: h.Seq, hash: wearables.LeafHash(raw)}
	}
	req := &v1.SubmitBatchRequest{Entry: string(raw), Salt: salt[:]}
	for _, r := range readings {
		req.Readings = append(req.Readings, &v1.Reading{Offset: r.Offset, Value: r.Value})
	}
	return req
}

// hour returns the start of the hour h hours before the current hour.
func hour(h int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(h) * time.Hour)
}

func values(n int, v uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = v + uint32(i%5)
	}
	return out
}

func (e *env) count(db *sql.DB, table string) int {
	e.t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) treeSize() uint64 {
	e.t.Helper()
	_, root, err := e.nodeCheckpoint()
	if err != nil {
		e.t.Fatal(err)
	}
	return root
}

func (e *env) nodeCheckpoint() (string, uint64, error) {
	resp, err := e.ledger.GetCheckpoint(context.Background(), &v1.GetCheckpointRequest{})
	if err != nil {
		return "", 0, err
	}
	var size uint64
	lines := strings.Split(resp.Checkpoint, "\n")
	if len(lines) < 2 {
		return "", 0, fmt.Errorf("malformed checkpoint")
	}
	_, err = fmt.Sscanf(lines[1], "%d", &size)
	return resp.Checkpoint, size, err
}

// policy returns the policy the node's checkpoints satisfy, as the node
// wrote it to its data directory.
func (e *env) policy() []byte {
	b, err := os.ReadFile(filepath.Join(e.cfg.DataDir, "policy.txt"))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}
