// Command vitalbench measures VitalProof's ingest end to end: it starts a
// node in-process (ledger with embedded Trillian on MariaDB, and a
// gateway), registers simulated devices, pre-builds their device-signed
// hourly batches, then submits them through the gateway's gRPC API, each
// device's batches in order, and prints a table: entries/s, readings/s and
// the submit→integrated latency (a submission returns with its receipt, so
// its latency is from submit to integrated and receipted).
//
// Usage:
//
//	go run ./cmd/vitalbench [--duration 60s] [--devices 512] [--readings 60] [--db-prefix vitalbench]
//
// It drops and recreates the databases <db-prefix>_{ledger,trillian,gateway}.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vitalproof/vitalproof/api"
	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/internal/node"
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
	flag.Parse()
	profileTo = *cpuProfile
	if err := run(*duration, *devices, *perBatch, *rate, *prefix, *server, *seqInterval); err != nil {
		fmt.Fprintf(os.Stderr, "vitalbench: %v\n", err)
		os.Exit(1)
	}
}

const hospital = "bench-hospital"

var profileTo string

func run(duration time.Duration, devices, perBatch, rate int, prefix, server string, seqInterval time.Duration) error {
	ctx := context.Background()
	root, err := sql.Open("mysql", server+"?multiStatements=true")
	if err != nil {
		return err
	}
	for _, s := range []string{"ledger", "trillian", "gateway"} {
		if _, err := root.Exec("DROP DATABASE IF EXISTS " + prefix + "_" + s); err != nil {
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
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", DB: server + prefix + "_ledger",
			Trillian: node.TrillianConf{DB: server + prefix + "_trillian", SequencerInterval: seqInterval},
		},
		Gateway:  node.GatewayConf{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", DB: server + prefix + "_gateway", HospitalID: hospital},
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

	perDevice := (rate*int(duration/time.Second) + devices - 1) / devices
	fmt.Fprintf(os.Stderr, "registering %d devices and pre-building %d batches of %d readings...\n", devices, perDevice*devices, perBatch)
	queues := make([][]*v1.SubmitBatchRequest, devices)
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	sem := make(chan struct{}, runtime.NumCPU())
	for d := range devices {
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
			q, err := buildBatches(id, signer, perDevice, perBatch)
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

	fmt.Fprintf(os.Stderr, "submitting for %s...\n", duration)
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
	var failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	lat := make([][]time.Duration, devices)
	deadline := time.Now().Add(duration)
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
	for d := range devices {
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
					failed.Add(1)
					msg := "pending"
					if err != nil {
						msg = err.Error()
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
		devices, perBatch, seqInterval, elapsed.Round(time.Millisecond))
	fmt.Printf("\n| metric | value |\n|---|---|\n")
	fmt.Printf("| entries | %d |\n| failed or pending | %d |\n| entries/s | %.0f |\n| readings/s | %.0f |\n| submit→integrated P50 | %s |\n| submit→integrated P99 | %s |\n| max | %s |\n",
		entries, failed.Load(), float64(entries)/elapsed.Seconds(), float64(entries*int64(perBatch))/elapsed.Seconds(),
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	return nil
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
