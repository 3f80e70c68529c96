package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage"
	tmysql "github.com/google/trillian/storage/mysql"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/internal/testdb"
	vlog "github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/wearables"
)

// benchLeavesVar names the environment variable that sets the size of the
// log BenchmarkDeviceHistory builds (default defaultBenchLeaves).
const (
	benchLeavesVar     = "VITALPROOF_BENCH_LEAVES"
	defaultBenchLeaves = 20_000
	// benchAppendBatch is how many leaves one storage transaction queues,
	// and benchQueueWorkers how many such transactions run at once.
	benchAppendBatch  = 1000
	benchQueueWorkers = 2
	// benchFillerDevices is how many other devices the rest of the log's
	// entries come from.
	benchFillerDevices = 99
	benchDevice        = "bench-band-0"
	benchHospital      = "bench-hospital"
	benchPageSize      = 50
)

// historyBench is a running ledger whose log holds N leaves, N/100 of
// them (its registration record and its entries) about benchDevice.
type historyBench struct {
	ledger    v1.LedgerServiceClient
	adminKey  string
	logKey    note.Verifier
	deviceKey note.Verifier
	// leaves is the log's size; deviceLeaves how many concern the device.
	leaves, deviceLeaves int
	// tokens are the page tokens of every page of the device's history,
	// newest first ("" for the first page).
	tokens []string
}

// BenchmarkDeviceHistory measures a page (50 leaves, newest first, each
// with its inclusion proof) of the history of a device with N/100 leaves in
// a log of N, over the ledger's gRPC API as the operator, at random pages.
// N is VITALPROOF_BENCH_LEAVES (default 20,000). Setup, not timed, builds
// the log and its index and reports how long each phase took; every page
// is verified against the published checkpoint outside the timed part.
func BenchmarkDeviceHistory(b *testing.B) {
	n := defaultBenchLeaves
	if s := os.Getenv(benchLeavesVar); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 {
			b.Fatalf("%s=%q: want a number of leaves of at least 1000", benchLeavesVar, s)
		}
		n = v
	}
	h := newHistoryBench(b, n)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+h.adminKey)
	rng := mrand.New(mrand.NewPCG(1, uint64(n)))
	var lat []time.Duration
	for b.Loop() {
		token := h.tokens[rng.IntN(len(h.tokens))]
		start := time.Now()
		page, err := h.ledger.GetDeviceHistory(ctx, &v1.GetDeviceHistoryRequest{DeviceId: benchDevice, PageSize: benchPageSize, PageToken: token})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatalf("GetDeviceHistory(token %q): %v", token, err)
		}
		b.StopTimer()
		if err := h.verifyPage(page, token); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(lat, 50)), "ms/page-p50")
	b.ReportMetric(ms(percentile(lat, 99)), "ms/page-p99")
	b.ReportMetric(ms(lat[len(lat)-1]), "ms/page-max")
	b.Logf("%d pages of %d leaves of a device with %d leaves in a log of %d: p50 %v, p99 %v, max %v",
		len(lat), benchPageSize, h.deviceLeaves, h.leaves, percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1])
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// newHistoryBench builds the benchmark's node and log:
//
//  1. start a ledger (embedded Trillian on MariaDB) on throwaway databases
//     and register a hospital and the device through the API, which
//     appends the device's registration record, leaf 0;
//  2. queue the rest of the log, device-signed entry chains of the device
//     (every hundredth leaf) and of 99 others, straight into the ledger's
//     Trillian tree in transactions of 1,000 leaves, and wait until the
//     ledger's sequencer has integrated them and its publisher published a
//     checkpoint covering them (quorum none);
//  3. index the log with Ledger.IndexLog until the index covers it (the
//     ledger's own background indexer runs meanwhile, from step 2 on);
//  4. walk the device's history once, verifying every page, to collect
//     the page tokens the benchmark picks from.
func newHistoryBench(b *testing.B, n int) *historyBench {
	b.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := &Config{
		Serve:   []string{"ledger"},
		DataDir: b.TempDir(),
		Ledger: LedgerConfig{
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0",
			DB:                 testdb.New(b),
			IntegrationTimeout: 30 * time.Second,
			Trillian:           TrillianConf{DB: testdb.New(b), SequencerInterval: 20 * time.Millisecond},
		},
	}
	if err := cfg.SetDefaults(); err != nil {
		b.Fatal(err)
	}
	phase := func(name string, start time.Time, extra string) {
		b.Logf("setup: %-36s %10v %s", name, time.Since(start).Round(time.Millisecond), extra)
	}

	// 1. A hospital and the device, registered through the API.
	t0 := time.Now()
	node := startBenchNode(b, cfg, logger)
	key, err := os.ReadFile(cfg.Ledger.AdminKeyFile)
	if err != nil {
		b.Fatal(err)
	}
	h := &historyBench{adminKey: strings.TrimSpace(string(key)), leaves: n, deviceLeaves: n / 100}
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+h.adminKey)
	ledger := dialBench(b, node.LedgerGRPC)
	_, hpub := benchKey(b, benchHospital)
	if _, err := ledger.RegisterHospital(admin, &v1.RegisterHospitalRequest{HospitalId: benchHospital, Name: "Bench Hospital", PublicKey: hpub.pub}); err != nil {
		b.Fatalf("RegisterHospital: %v", err)
	}
	deviceSigner, dkey := benchKey(b, benchDevice)
	h.deviceKey = dkey.verifier
	if _, err := ledger.RegisterDevice(admin, &v1.RegisterDeviceRequest{
		DeviceId: benchDevice, Manufacturer: "bench-maker", Udi: testUDI, Model: "Band", Firmware: "1.0.0", PublicKey: dkey.pub, HospitalId: benchHospital,
	}); err != nil {
		b.Fatalf("RegisterDevice: %v", err)
	}
	b.Cleanup(func() { closeBenchNode(b, node) })
	h.ledger = ledger
	if h.logKey, err = note.NewVerifier(node.LogVerifierKey); err != nil {
		b.Fatal(err)
	}
	phase("start ledger, register device", t0, "")

	// 2. The rest of the log, queued straight into the ledger's Trillian
	// tree, and a published checkpoint covering it.
	t0 = time.Now()
	queue, err := openBenchQueue(ctx, b, cfg.Ledger.Trillian.DB, cfg.Ledger.Trillian.TreeName)
	if err != nil {
		b.Fatal(err)
	}
	if err := appendBenchLeaves(ctx, queue, n-1, deviceSigner); err != nil {
		b.Fatal(err)
	}
	phase("queue leaves", t0, fmt.Sprintf("(%d leaves, %.0f/s)", n-1, float64(n-1)/time.Since(t0).Seconds()))
	actx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if _, _, err := node.Publisher.Await(actx, uint64(n)); err != nil {
		b.Fatalf("no checkpoint covering %d leaves published: %v", n, err)
	}
	phase("queue, integrate, publish checkpoint", t0, fmt.Sprintf("(%.0f leaves/s)", float64(n-1)/time.Since(t0).Seconds()))

	// 3. The leaf index.
	t0 = time.Now()
	db := openBenchDB(b, cfg.Ledger.DB)
	for {
		if _, err := node.Ledger.IndexLog(ctx); err != nil {
			b.Fatal(err)
		}
		var indexed int
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM leaf_index").Scan(&indexed); err != nil {
			b.Fatal(err)
		}
		if indexed >= n {
			break
		}
	}
	phase("index the log", t0, fmt.Sprintf("(%.0f leaves/s)", float64(n)/time.Since(t0).Seconds()))

	// 4. Every page once, verified, for its token.
	t0 = time.Now()
	seen := 0
	for token := ""; ; {
		page, err := h.ledger.GetDeviceHistory(admin, &v1.GetDeviceHistoryRequest{DeviceId: benchDevice, PageSize: benchPageSize, PageToken: token})
		if err != nil {
			b.Fatalf("GetDeviceHistory(token %q): %v", token, err)
		}
		if err := h.verifyPage(page, token); err != nil {
			b.Fatal(err)
		}
		h.tokens = append(h.tokens, token)
		seen += len(page.Items)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if seen != h.deviceLeaves {
		b.Fatalf("the device's history holds %d leaves; want %d", seen, h.deviceLeaves)
	}
	phase("walk and verify the history", t0, fmt.Sprintf("(%d pages)", len(h.tokens)))
	return h
}

// verifyPage checks a page of the device's history: the checkpoint is the
// log's and covers the whole log, each item is the device's leaf at its
// index (an entry carrying the device's signature, or its registration
// record) and its inclusion proof verifies against the checkpoint's root,
// and the page is newest first and below its token.
func (h *historyBench) verifyPage(page *v1.DeviceHistory, token string) error {
	root, _, err := checkpoint.Open([]byte(page.Checkpoint), h.logKey)
	if err != nil {
		return err
	}
	if root.Size != page.TreeSize || root.Size < uint64(h.leaves) {
		return fmt.Errorf("page's checkpoint has size %d (tree size %d); want %d", root.Size, page.TreeSize, h.leaves)
	}
	if len(page.Items) == 0 || len(page.Items) > benchPageSize || (len(page.Items) < benchPageSize && page.NextPageToken != "") {
		return fmt.Errorf("page after %q has %d items, next page %q", token, len(page.Items), page.NextPageToken)
	}
	below := root.Size
	if token != "" {
		if below, err = strconv.ParseUint(token, 10, 64); err != nil {
			return fmt.Errorf("page token %q: %v", token, err)
		}
	}
	for _, it := range page.Items {
		if it.Index >= below {
			return fmt.Errorf("page after %q: leaf %d is not newest first below %d", token, it.Index, below)
		}
		below = it.Index
		switch it.Kind {
		case "entry":
			e, err := wearables.VerifyEntry(it.Leaf, h.deviceKey)
			if err != nil {
				return fmt.Errorf("leaf %d: %v", it.Index, err)
			}
			if e.Header.DeviceID != benchDevice {
				return fmt.Errorf("leaf %d is device %s's", it.Index, e.Header.DeviceID)
			}
		case "registration":
			if !strings.HasPrefix(string(it.Leaf), "vitalproof/device/v1\ndevice "+benchDevice+"\n") {
				return fmt.Errorf("leaf %d is not the device's registration record", it.Index)
			}
		default:
			return fmt.Errorf("leaf %d is of kind %q", it.Index, it.Kind)
		}
		proof := make([]vlog.Hash, len(it.Inclusion))
		for i, p := range it.Inclusion {
			if len(p) != len(vlog.Hash{}) {
				return fmt.Errorf("leaf %d: proof hash of %d bytes", it.Index, len(p))
			}
			proof[i] = vlog.Hash(p)
		}
		if err := vlog.VerifyInclusion(vlog.LeafHash(it.Leaf), it.Index, proof, root); err != nil {
			return fmt.Errorf("leaf %d: %v", it.Index, err)
		}
	}
	return nil
}

// appendBenchLeaves appends count device-signed entries to lg, every
// hundredth the device's (signed by device), the others spread over the
// filler devices, in batches of benchAppendBatch; leaves are made and
// signed on one goroutine while another appends. It returns how long
// queueing took.
func appendBenchLeaves(ctx context.Context, queue func(context.Context, [][]byte) error, count int, device note.Signer) error {
	type chain struct {
		signer note.Signer
		seq    uint64
		prev   [32]byte
	}
	chains := make([]*chain, benchFillerDevices+1)
	chains[0] = &chain{signer: device}
	for i := 1; i < len(chains); i++ {
		s, _, err := newBenchKey(fmt.Sprintf("bench-band-%d", i))
		if err != nil {
			return err
		}
		chains[i] = &chain{signer: s}
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(count/len(chains)+2) * time.Hour).Unix()
	batches := make(chan [][]byte, 4)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		var batch [][]byte
		for i := range count {
			// Leaf 0 of the log is the device's registration; the device's
			// entries are every hundredth leaf after it.
			c := chains[(i+1)%len(chains)]
			c.seq++
			hd := wearables.EntryHeader{
				DeviceID: c.signer.Name(), Metric: "heart-rate", WindowStart: hour + int64(c.seq)*3600, WindowEnd: hour + int64(c.seq+1)*3600,
				Count: 60, Commitment: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))), Seq: c.seq, Prev: c.prev,
				Hospital: benchHospital, Attestation: wearables.AttestDevice,
			}
			leaf, err := wearables.SignEntry(&hd, c.signer)
			if err != nil {
				return err
			}
			c.prev = wearables.LeafHash(leaf)
			if batch = append(batch, leaf); len(batch) == benchAppendBatch || i == count-1 {
				select {
				case batches <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
				batch = nil
			}
		}
		return nil
	})
	for range benchQueueWorkers {
		g.Go(func() error {
			for batch := range batches {
				if err := queue(gctx, batch); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// openBenchQueue returns a function that queues leaves in the Trillian tree
// named tree in the database of dsn, in one storage transaction per call,
// as the embedded log's Append does, for the running ledger's sequencer to
// integrate. (The node does not expose its log, and a second embedded
// Trillian would run a second sequencer on the tree.)
func openBenchQueue(ctx context.Context, b *testing.B, dsn, tree string) (func(context.Context, [][]byte) error, error) {
	db := openBenchDB(b, dsn)
	trees, err := storage.ListTrees(ctx, tmysql.NewAdminStorage(db), false)
	if err != nil {
		return nil, fmt.Errorf("couldn't list Trillian trees: %w", err)
	}
	var t *trillian.Tree
	for _, c := range trees {
		if c.GetDisplayName() == tree {
			t = c
		}
	}
	if t == nil {
		return nil, fmt.Errorf("couldn't find Trillian tree %q", tree)
	}
	ls := tmysql.NewLogStorage(db, nil)
	return func(ctx context.Context, leaves [][]byte) error {
		tl := make([]*trillian.LogLeaf, len(leaves))
		for i, v := range leaves {
			h := vlog.LeafHash(v)
			tl[i] = &trillian.LogLeaf{LeafValue: v, MerkleLeafHash: h[:], LeafIdentityHash: h[:]}
		}
		var err error
		for range 5 { // a queueing transaction may deadlock with the sequencer's
			var queued []*trillian.QueuedLogLeaf
			if queued, err = ls.QueueLeaves(ctx, t, tl, time.Now()); err == nil {
				for _, q := range queued {
					if q.GetStatus().GetCode() != 0 {
						return fmt.Errorf("couldn't queue a leaf: %v", q.GetStatus())
					}
				}
				return nil
			}
		}
		return fmt.Errorf("couldn't queue %d leaves: %w", len(leaves), err)
	}, nil
}

type benchPub struct {
	pub      []byte
	verifier note.Verifier
}

// benchKey returns a new note key named name, failing b on error.
func benchKey(b *testing.B, name string) (note.Signer, benchPub) {
	b.Helper()
	s, p, err := newBenchKey(name)
	if err != nil {
		b.Fatal(err)
	}
	return s, p
}

func newBenchKey(name string) (note.Signer, benchPub, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, benchPub{}, fmt.Errorf("couldn't generate a key: %w", err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, benchPub{}, fmt.Errorf("couldn't load a key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, benchPub{}, fmt.Errorf("couldn't load a key: %w", err)
	}
	_, pub, err := wearables.ParseVerifierKey(vkey)
	if err != nil {
		return nil, benchPub{}, fmt.Errorf("couldn't parse a key: %w", err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, benchPub{}, fmt.Errorf("public key of %d bytes", len(pub))
	}
	return s, benchPub{pub: pub, verifier: v}, nil
}

func startBenchNode(b *testing.B, cfg *Config, logger *slog.Logger) *Node {
	b.Helper()
	n, err := Start(context.Background(), cfg, logger)
	if err != nil {
		b.Fatalf("couldn't start node: %v", err)
	}
	return n
}

func closeBenchNode(b *testing.B, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		b.Errorf("node did not close cleanly: %v", err)
	}
}

func dialBench(b *testing.B, addr string) v1.LedgerServiceClient {
	b.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return v1.NewLedgerServiceClient(c)
}

func openBenchDB(b *testing.B, dsn string) *sql.DB {
	b.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
