// Command vitalbench measures VitalProof's ingest end to end: it starts a
// node in-process (ledger with embedded Trillian on MariaDB, and a
// gateway), registers simulated devices, pre-builds their device-signed
// hourly batches, then submits them through the gateway's gRPC API, each
// device's batches in order, and prints a table: entries/s, readings/s and
// the submit→integrated latency (a submission returns with its receipt, so
// its latency is from submit to integrated and receipted).
//
// With --witnesses N it also starts N tlog-witnesses in-process (package
// log/witness, each on its own database, served over loopback HTTP) and
// makes the ledger publish checkpoints only once --quorum K of them (default
// a majority) cosigned them, as the consortium's tlog-policy says. A
// submission then returns once a cosigned checkpoint covers its entry, so
// its latency is submit → cosigned receipt; the table adds the pending
// submissions, the checkpoints published and cosignatures received during
// the run, and the publisher's own latency (tree growth seen → cosigned
// checkpoint published).
//
// Usage:
//
//	go run ./cmd/vitalbench [--duration 60s] [--devices 512] [--readings 60] [--db-prefix vitalbench]
//	go run ./cmd/vitalbench --witnesses 5 --quorum 3 [--publish-interval 1s] ...
//
// It drops and recreates the databases <db-prefix>_{ledger,trillian,gateway}
// and <db-prefix>_witness<i> for i in 1..N.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vitalproof/vitalproof/api"
	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/internal/node"
	"github.com/vitalproof/vitalproof/log/publish"
	"github.com/vitalproof/vitalproof/log/witness"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/commitment"
)

func main() {
	duration := flag.Duration("duration", 60*time.Second, "how long to submit")
	devices := flag.Int("devices", 512, "simulated devices submitting concurrently (each in order)")
	perBatch := flag.Int("readings", 60, "readings per batch (one a minute in an hourly window)")
	rate := flag.Int("max-rate", 4000, "batches per second to pre-build for (the run stops early if they run out)")
	prefix := flag.String("db-prefix", "vitalbench", "database name prefix")
	server := flag.String("mysql", "root@tcp(127.0.0.1:3306)/", "MariaDB/MySQL server DSN, without database")
	seqInterval := flag.Duration("sequencer-interval", 50*time.Millisecond, "embedded sequencer interval")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the submission phase to this file")
	witnesses := flag.Int("witnesses", 0, "in-process witnesses that must cosign checkpoints (0: none, \"quorum none\")")
	quorum := flag.Int("quorum", 0, "how many of the witnesses must cosign a checkpoint (default: a majority, witnesses/2+1)")
	publishInterval := flag.Duration("publish-interval", publish.DefaultInterval, "how often the publisher reads the log's root when no submission wakes it")
	flag.Parse()
	profileTo = *cpuProfile
	o := options{duration: *duration, devices: *devices, perBatch: *perBatch, rate: *rate, prefix: *prefix, server: *server,
		seqInterval: *seqInterval, witnesses: *witnesses, quorum: *quorum, publishInterval: *publishInterval}
	if o.witnesses > 0 && o.quorum == 0 {
		o.quorum = o.witnesses/2 + 1
	}
	if o.witnesses < 0 || o.quorum < 0 || o.quorum > o.witnesses || (o.witnesses > 0) != (o.quorum > 0) {
		fmt.Fprintf(os.Stderr, "vitalbench: --quorum %d of --witnesses %d: want 1 ≤ quorum ≤ witnesses, or no witnesses and no quorum\n", *quorum, *witnesses)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "vitalbench: %v\n", err)
		os.Exit(1)
	}
}

const hospital = "bench-hospital"

var profileTo string

// options are the command line's settings.
type options struct {
	duration                time.Duration
	devices, perBatch, rate int
	prefix, server          string
	seqInterval             time.Duration
	witnesses, quorum       int
	publishInterval         time.Duration
}

func run(o options) error {
	ctx := context.Background()
	root, err := sql.Open("mysql", o.server+"?multiStatements=true")
	if err != nil {
		return err
	}
	dbs := []string{"ledger", "trillian", "gateway"}
	for i := range o.witnesses {
		dbs = append(dbs, fmt.Sprintf("witness%d", i+1))
	}
	for _, s := range dbs {
		if _, err := root.Exec("DROP DATABASE IF EXISTS " + o.prefix + "_" + s); err != nil {
			return fmt.Errorf("couldn't reset database: %w", err)
		}
	}
	root.Close()
	dir, err := os.MkdirTemp("", "vitalbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := &node.Config{
		DataDir: dir,
		Ledger: node.LedgerConfig{
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", DB: o.server + o.prefix + "_ledger",
			Trillian: node.TrillianConf{DB: o.server + o.prefix + "_trillian", SequencerInterval: o.seqInterval},
			Publish:  node.PublishConf{Interval: o.publishInterval},
		},
		Gateway:  node.GatewayConf{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", DB: o.server + o.prefix + "_gateway", HospitalID: hospital},
		LogLevel: "warn",
	}
	if err := cfg.SetDefaults(); err != nil {
		return err
	}
	level := slog.LevelWarn
	if os.Getenv("VITALBENCH_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if o.witnesses > 0 {
		ws, err := startWitnesses(ctx, cfg, o, logger)
		defer func() {
			for _, w := range ws {
				w.close()
			}
		}()
		if err != nil {
			return err
		}
	}
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer n.Close(context.Background())

	conn := func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, append(api.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	}
	lc, err := conn(n.LedgerGRPC)
	if err != nil {
		return err
	}
	gc, err := conn(n.GatewayGRPC)
	if err != nil {
		return err
	}
	ledger := v1.NewLedgerServiceClient(lc)
	gateway := v1.NewGatewayServiceClient(gc)
	as := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return strings.TrimSpace(string(b)) }
	admin := read(cfg.Ledger.AdminKeyFile)
	_, hpub, err := wearables.ParseVerifierKey(read(cfg.Gateway.HospitalKeyFile + ".vkey"))
	if err != nil {
		return err
	}
	hr, err := ledger.RegisterHospital(as(admin), &v1.RegisterHospitalRequest{HospitalId: hospital, Name: "Bench", PublicKey: hpub})
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.Gateway.LedgerAPIKeyFile, []byte(hr.ApiKey), 0o600); err != nil {
		return err
	}
	gdb, err := node.OpenDB(ctx, cfg.Gateway.DB, "")
	if err != nil {
		return err
	}
	submitter, err := provenance.CreateGatewayAPIKey(ctx, gdb, "bench", provenance.RoleSubmitter)
	gdb.Close()
	if err != nil {
		return err
	}

	perDevice := (o.rate*int(o.duration/time.Second) + o.devices - 1) / o.devices
	fmt.Fprintf(os.Stderr, "registering %d devices and pre-building %d batches of %d readings...\n", o.devices, perDevice*o.devices, o.perBatch)
	queues := make([][]*v1.SubmitBatchRequest, o.devices)
	var wg sync.WaitGroup
	errs := make(chan error, o.devices)
	sem := make(chan struct{}, runtime.NumCPU())
	for d := range o.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("bench-dev-%04d", d)
			skey, vkey, err := note.GenerateKey(rand.Reader, id)
			if err != nil {
				errs <- err
				return
			}
			signer, _ := note.NewSigner(skey)
			_, pub, _ := wearables.ParseVerifierKey(vkey)
			if _, err := ledger.RegisterDevice(as(admin), &v1.RegisterDeviceRequest{DeviceId: id, Manufacturer: "bench", Udi: "(01)09506000134352(21)B" + fmt.Sprint(d),
				Model: "Bench", Firmware: "1", PublicKey: pub, HospitalId: hospital}); err != nil {
				errs <- err
				return
			}
			q, err := buildBatches(id, signer, perDevice, o.perBatch)
			if err != nil {
				errs <- err
				return
			}
			queues[d] = q
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "submitting for %s...\n", o.duration)
	if profileTo != "" {
		f, err := os.Create(profileTo)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var done atomic.Int64
	var failed, pending atomic.Int64
	var failMu sync.Mutex
	var failures []string
	lat := make([][]time.Duration, o.devices)
	before, err := gatherPublisher()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	sctx := as(submitter)
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	stopProgress := make(chan struct{})
	go func() {
		for {
			select {
			case <-progress.C:
				fmt.Fprintf(os.Stderr, "  %s: %d entries (%.0f/s)\n", time.Since(start).Round(time.Second), done.Load(), float64(done.Load())/time.Since(start).Seconds())
			case <-stopProgress:
				return
			}
		}
	}()
	for d := range o.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, req := range queues[d] {
				if time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				res, err := gateway.SubmitBatch(sctx, req)
				if err != nil || res.Pending {
					msg := "pending"
					if err != nil {
						msg = err.Error()
						failed.Add(1)
					} else {
						pending.Add(1)
					}
					failMu.Lock()
					if len(failures) < 20 {
						failures = append(failures, fmt.Sprintf("bench-dev-%04d seq %d: %s", d, k+1, msg))
					}
					failMu.Unlock()
					continue
				}
				lat[d] = append(lat[d], time.Since(t0))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	elapsed := time.Since(start)
	after, err := gatherPublisher()
	if err != nil {
		return err
	}
	for _, f := range failures {
		fmt.Fprintf(os.Stderr, "  failed: %s\n", f)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)]
	}
	entries := done.Load()
	fmt.Printf("| setting | value |\n|---|---|\n")
	fmt.Printf("| devices (concurrent, in-order each) | %d |\n| readings per batch | %d |\n| sequencer interval | %s |\n| duration | %s |\n",
		o.devices, o.perBatch, o.seqInterval, elapsed.Round(time.Millisecond))
	if o.witnesses == 0 {
		fmt.Printf("\n| metric | value |\n|---|---|\n")
		fmt.Printf("| entries | %d |\n| failed or pending | %d |\n| entries/s | %.0f |\n| readings/s | %.0f |\n| submit→integrated P50 | %s |\n| submit→integrated P99 | %s |\n| max | %s |\n",
			entries, failed.Load()+pending.Load(), float64(entries)/elapsed.Seconds(), float64(entries*int64(o.perBatch))/elapsed.Seconds(),
			pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
		return nil
	}
	interval := cfg.Ledger.Publish.Interval
	if interval == 0 {
		interval = publish.DefaultInterval
	}
	fmt.Printf("| witnesses | %d-of-%d (in-process log/witness, each on its own database, loopback HTTP) |\n| publish interval | %s |\n",
		o.quorum, o.witnesses, interval)
	d := after.minus(before)
	perCheckpoint := "—"
	if d.publications > 0 {
		perCheckpoint = fmt.Sprintf("%.1f", float64(entries)/d.publications)
	}
	fmt.Printf("\n| metric | value |\n|---|---|\n")
	fmt.Printf("| entries | %d |\n| failed | %d |\n| pending (answered without a receipt) | %d |\n| entries/s | %.0f |\n| readings/s | %.0f |\n",
		entries, failed.Load(), pending.Load(), float64(entries)/elapsed.Seconds(), float64(entries*int64(o.perBatch))/elapsed.Seconds())
	fmt.Printf("| submit→cosigned receipt P50 | %s |\n| submit→cosigned receipt P99 | %s |\n| max | %s |\n",
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	fmt.Printf("| checkpoints published (cosigned by %d-of-%d) | %.0f |\n| entries per checkpoint | %s |\n| cosignatures received | %.0f |\n| witness errors | %.0f |\n",
		o.quorum, o.witnesses, d.publications, perCheckpoint, d.cosignatures, d.witnessErrors)
	fmt.Printf("| publisher: tree growth seen → cosigned checkpoint, mean | %s |\n| publisher: same, P99 (histogram bucket bound) | %s |\n",
		d.latencyMean(), d.latencyQuantile(0.99))
	return nil
}

// benchWitness is an in-process tlog-witness: package log/witness on its
// own database, served over loopback HTTP.
type benchWitness struct {
	vkey, url string
	db        *sql.DB
	srv       *http.Server
}

func (w *benchWitness) close() {
	if w.srv != nil {
		w.srv.Close()
	}
	w.db.Close()
}

// startWitnesses creates the log's key, starts o.witnesses witnesses that
// trust it, writes the consortium's policy (o.quorum of them) and sets it
// as the ledger's publication policy. It returns the witnesses started,
// even on error, for the caller to close.
func startWitnesses(ctx context.Context, cfg *node.Config, o options, logger *slog.Logger) ([]*benchWitness, error) {
	_, logVkey, err := node.LogKey(cfg)
	if err != nil {
		return nil, err
	}
	logs, err := witness.ParseLogs([]byte("log " + logVkey + "\n"))
	if err != nil {
		return nil, err
	}
	var ws []*benchWitness
	policy := "log " + logVkey + "\n"
	var names []string
	for i := range o.witnesses {
		name := fmt.Sprintf("w%d", i+1)
		db, err := witness.Open(ctx, fmt.Sprintf("%s%s_witness%d", o.server, o.prefix, i+1))
		if err != nil {
			return ws, fmt.Errorf("couldn't open witness %s's database: %w", name, err)
		}
		w := &benchWitness{db: db}
		ws = append(ws, w)
		skey, vkey, err := witness.GenerateKey(name + ".vitalbench.example/witness")
		if err != nil {
			return ws, err
		}
		signer, err := witness.NewSigner(skey)
		if err != nil {
			return ws, err
		}
		wit, err := witness.New(ctx, witness.Config{Signer: signer, Logs: logs, DB: db, Logger: logger.With("witness", name)})
		if err != nil {
			return ws, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ws, fmt.Errorf("couldn't listen for witness %s: %w", name, err)
		}
		w.vkey, w.url = vkey, "http://"+ln.Addr().String()+"/"
		w.srv = &http.Server{Handler: wit.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go w.srv.Serve(ln)
		policy += "witness " + name + " " + w.vkey + " " + w.url + "\n"
		names = append(names, name)
	}
	policy += fmt.Sprintf("group consortium %d %s\nquorum consortium\n", o.quorum, strings.Join(names, " "))
	cfg.Ledger.Publish.PolicyFile = filepath.Join(cfg.DataDir, "consortium-policy.txt")
	if err := os.WriteFile(cfg.Ledger.Publish.PolicyFile, []byte(policy), 0o644); err != nil {
		return ws, fmt.Errorf("couldn't write the policy: %w", err)
	}
	return ws, nil
}

// publisherView is what the checkpoint publisher's metrics (package
// log/publish, default Prometheus registry) say at one moment.
type publisherView struct {
	publications, cosignatures, witnessErrors float64
	latencySum, latencyCount                  float64
	// buckets are the latency histogram's cumulative counts by upper bound.
	bounds  []float64
	buckets []float64
}

// gatherPublisher reads the publisher's metrics.
func gatherPublisher() (publisherView, error) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return publisherView{}, fmt.Errorf("couldn't gather the publisher's metrics: %w", err)
	}
	var v publisherView
	sum := func(mf *dto.MetricFamily) (s float64) {
		for _, m := range mf.GetMetric() {
			s += m.GetCounter().GetValue()
		}
		return s
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "vitalproof_publish_publications_total":
			v.publications = sum(mf)
		case "vitalproof_publish_cosignatures_total":
			v.cosignatures = sum(mf)
		case "vitalproof_publish_witness_errors_total":
			v.witnessErrors = sum(mf)
		case "vitalproof_publish_latency_seconds":
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				v.latencySum, v.latencyCount = h.GetSampleSum(), float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					v.bounds = append(v.bounds, b.GetUpperBound())
					v.buckets = append(v.buckets, float64(b.GetCumulativeCount()))
				}
			}
		}
	}
	return v, nil
}

// minus returns what happened between earlier and v.
func (v publisherView) minus(earlier publisherView) publisherView {
	d := publisherView{
		publications:  v.publications - earlier.publications,
		cosignatures:  v.cosignatures - earlier.cosignatures,
		witnessErrors: v.witnessErrors - earlier.witnessErrors,
		latencySum:    v.latencySum - earlier.latencySum,
		latencyCount:  v.latencyCount - earlier.latencyCount,
		bounds:        v.bounds,
	}
	for i, c := range v.buckets {
		if i < len(earlier.buckets) {
			c -= earlier.buckets[i]
		}
		d.buckets = append(d.buckets, c)
	}
	return d
}

func (v publisherView) latencyMean() string {
	if v.latencyCount == 0 {
		return "—"
	}
	return (time.Duration(v.latencySum / v.latencyCount * float64(time.Second))).Round(time.Millisecond).String()
}

// latencyQuantile returns the upper bound of the histogram bucket holding
// quantile q of the publisher's latency.
func (v publisherView) latencyQuantile(q float64) string {
	if v.latencyCount == 0 {
		return "—"
	}
	need := math.Ceil(q * v.latencyCount)
	for i, c := range v.buckets {
		if c >= need {
			return "≤ " + time.Duration(v.bounds[i]*float64(time.Second)).Round(time.Millisecond).String()
		}
	}
	return fmt.Sprintf("> %s", time.Duration(v.bounds[len(v.bounds)-1]*float64(time.Second)).Round(time.Millisecond))
}

// buildBatches builds a device's consecutive hourly batches, as the device would.
func buildBatches(id string, signer note.Signer, n, perBatch int) ([]*v1.SubmitBatchRequest, error) {
	m, _ := wearables.MetricByCode("heart-rate")
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(n+1) * time.Hour)
	var prev [32]byte
	out := make([]*v1.SubmitBatchRequest, 0, n)
	step := uint32(3600 / perBatch)
	for k := range n {
		start := t0.Add(time.Duration(k) * time.Hour).Unix()
		readings := make([]wearables.Reading, perBatch)
		pr := make([]*v1.Reading, perBatch)
		for i := range readings {
			readings[i] = wearables.Reading{Offset: uint32(i) * step, Value: uint32(60 + (i*7+k)%50)}
			pr[i] = &v1.Reading{Offset: readings[i].Offset, Value: readings[i].Value}
		}
		salt, err := commitment.NewSalt()
		if err != nil {
			return nil, err
		}
		c, err := commitment.Commit(&commitment.Opening{Salt: salt, DeviceID: id, Metric: m.ID, WindowStart: start, WindowEnd: start + 3600, Readings: readings})
		if err != nil {
			return nil, err
		}
		h := wearables.EntryHeader{DeviceID: id, Metric: m.Code, WindowStart: start, WindowEnd: start + 3600, Count: perBatch,
			Commitment: c, Seq: uint64(k + 1), Prev: prev, Hospital: hospital, Attestation: wearables.AttestDevice}
		raw, err := wearables.SignEntry(&h, signer)
		if err != nil {
			return nil, err
		}
		prev = wearables.LeafHash(raw)
		out = append(out, &v1.SubmitBatchRequest{Entry: string(raw), Salt: salt[:], Readings: pr})
	}
	return out, nil
}
