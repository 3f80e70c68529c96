package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/consensys/gnark/constraint"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// benchCacheEnv names the key cache that holds the Month circuit's
// development keys, made by zk/internal/zkbench with -cache.
const benchCacheEnv = "VITALPROOF_ZKBENCH_CACHE"

// errNotCached stops the key cache from compiling or setting up.
var errNotCached = errors.New("not in the key cache")

// The Month circuit: 720 hourly entries of 60 readings, for the range
// statement.
var (
	monthShape = circuit.Shape{Entries: 720, PerEntry: 60}
	monthKinds = statement.Range
)

// benchCacheDir returns the key cache of the Month benchmark.
func benchCacheDir(b *testing.B) string {
	if dir := os.Getenv(benchCacheEnv); dir != "" {
		return dir
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "vitalproof", "zkbench")
}

// BenchmarkVerifyMonth verifies a bundle of 720 entries (43,200 readings)
// proved on the Month circuit: parsing, the policy and checkpoint, 722
// inclusion proofs (registration, entries, the after-bracket), the
// registration's and 721 entries' signatures, the chain, the public inputs
// and the pairing. It reports the median and 99th percentile of single
// verifications, with the verifying key read from a key directory for each
// verification (as the audit verify command does) and held in memory. It
// needs the Month circuit's keys in the key cache (see zk/BENCHMARKS.md) and
// skips without them; building the bundle proves once and keeps the bundle
// in the cache for later runs.
func BenchmarkVerifyMonth(b *testing.B) {
	ctx := context.Background()
	cacheDir := benchCacheDir(b)
	bundle, sc := monthBundle(b, cacheDir)
	runtime.GC() // the prover's keys and constraint system are garbage now
	kd, err := audit.OpenKeyDir(ctx, cacheDir)
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := audit.Parse(bundle)
	if err != nil {
		b.Fatal(err)
	}
	k, err := kd.VerifyingKey(ctx, parsed.Proof.VerifyingKey)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		ks   audit.KeyStore
	}{
		{"keydir", kd},
		{"memory", audit.KeysFor(k)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bundle)))
			var times []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := audit.Verify(ctx, bundle, sc.policy, bc.ks, audit.WithRegistrar(sc.registrar)); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(times[(len(times)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// monthBundle returns the Month bundle and its scenario. It reuses the
// bundle kept in the cache if it verifies with the cache's verifying keys,
// and otherwise proves with the cached keys and keeps a new one.
func monthBundle(b *testing.B, cacheDir string) ([]byte, *monthScenario) {
	b.Helper()
	ctx := context.Background()
	sc, err := newMonthScenario()
	if err != nil {
		b.Fatal(err)
	}
	kept := filepath.Join(cacheDir, "bench", "verify-720.vpaudit")
	if bundle, err := os.ReadFile(kept); err == nil {
		kd, err := audit.OpenKeyDir(ctx, cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := audit.Verify(ctx, bundle, sc.policy, kd, audit.WithRegistrar(sc.registrar)); err == nil {
			return bundle, sc
		}
		b.Logf("kept bundle %s does not verify with the cached keys: proving a new one", kept)
	}
	id := circuit.ID(monthShape, monthKinds)
	cache := &keys.Cache{Dir: cacheDir}
	cs, err := cache.Compiled(ctx, id, func() (constraint.ConstraintSystem, error) { return nil, errNotCached })
	if errors.Is(err, errNotCached) {
		b.Skipf("no constraint system of %s in %s: run go run ./zk/internal/zkbench -shape 720x60 -kinds range -cache %s (a development setup of minutes), or set %s", id, cacheDir, cacheDir, benchCacheEnv)
	}
	if err != nil {
		b.Fatal(err)
	}
	k, err := cache.Get(ctx, cs, id, func(context.Context, constraint.ConstraintSystem, string) (*keys.Keys, error) {
		return nil, errNotCached
	})
	if errors.Is(err, errNotCached) {
		b.Skipf("no keys of %s in %s: run go run ./zk/internal/zkbench -shape 720x60 -kinds range -cache %s, or set %s", id, cacheDir, cacheDir, benchCacheEnv)
	}
	if err != nil {
		b.Fatal(err)
	}
	pr, err := prove.NewProver(monthShape, monthKinds, cs, k)
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := sc.build(ctx, pr)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(kept), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(kept, bundle, 0o644); err != nil {
		b.Fatal(err)
	}
	return bundle, sc
}

// monthScenario is a log holding a device's registration and its chain of
// 721 hourly glucose entries, with a signed checkpoint of it; the bundle
// audits the first 720, bracketed by the 721st.
type monthScenario struct {
	deviceID   string
	reg        []byte
	chain      []*wearables.Batch
	log        *logtest.MemLog
	root       log.Root
	checkpoint []byte
	policy     []byte
	registrar  note.Verifier
}

// newMonthScenario simulates the scenario, deterministically.
func newMonthScenario() (*monthScenario, error) {
	ctx := context.Background()
	const device, hospital, registrarName = "bench-band", "bench-hospital", "registry.vitalproof.test"
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seeded := func(seed byte) ed25519.PrivateKey {
		return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	}
	sc := &monthScenario{deviceID: device}
	devKey, err := wearables.Ed25519Signer(device, seeded(1))
	if err != nil {
		return nil, err
	}
	regKey, err := wearables.Ed25519Signer(registrarName, seeded(2))
	if err != nil {
		return nil, err
	}
	vkey, err := note.NewEd25519VerifierKey(registrarName, seeded(2).Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if sc.registrar, err = note.NewVerifier(vkey); err != nil {
		return nil, err
	}
	r, err := wearables.NewRegistration(device, "acme-medical", "(01)09506000134352(21)SNbench", "Acme CGM 3", "2.1.0",
		seeded(1).Public().(ed25519.PublicKey), hospital, start.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	if sc.reg, err = r.Sign(regKey); err != nil {
		return nil, err
	}
	sim, err := wearables.NewSimulator(device, hospital, devKey, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		return nil, err
	}
	if sc.chain, err = sim.Span(start, time.Duration(monthShape.Entries+1)*time.Hour, []string{"glucose"}, time.Hour, time.Minute); err != nil {
		return nil, err
	}
	sc.log = logtest.NewMemLog()
	leaves := [][]byte{sc.reg}
	for _, b := range sc.chain {
		leaves = append(leaves, b.Entry.Bytes)
	}
	if err := sc.log.Append(ctx, leaves); err != nil {
		return nil, err
	}
	sc.root = sc.log.Integrate()
	skey, lvkey, err := note.GenerateKey(rand.NewChaCha8([32]byte{3}), "bench.vitalproof.test/log")
	if err != nil {
		return nil, err
	}
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	if sc.checkpoint, err = signer.Sign(sc.root); err != nil {
		return nil, err
	}
	sc.policy = []byte("log " + lvkey + "\nquorum none\n")
	return sc, nil
}

// leaf returns raw with its inclusion proof in the scenario's tree.
func (sc *monthScenario) leaf(ctx context.Context, raw []byte) (audit.Leaf, error) {
	index, proof, err := sc.log.InclusionByHash(ctx, log.LeafHash(raw), sc.root.Size)
	if err != nil {
		return audit.Leaf{}, err
	}
	return audit.Leaf{Index: index, Bytes: raw, Proof: proof}, nil
}

// build proves that every reading of the first 720 entries is in [40, 400]
// and returns the bundle.
func (sc *monthScenario) build(ctx context.Context, pr *prove.Prover) ([]byte, error) {
	batches := sc.chain[:monthShape.Entries]
	m, _ := wearables.MetricByCode("glucose")
	s := &statement.Statement{
		Kinds: monthKinds, Params: statement.Params{RangeLo: 40, RangeHi: 400}, DeviceID: sc.deviceID, Metric: m.ID,
		PeriodStart: batches[0].Entry.Header.WindowStart, PeriodEnd: batches[len(batches)-1].Entry.Header.WindowEnd,
	}
	var ops []statement.Opening
	for _, b := range batches {
		h := &b.Entry.Header
		s.Entries = append(s.Entries, statement.Entry{Commitment: h.Commitment, WindowStart: h.WindowStart, WindowEnd: h.WindowEnd, Count: h.Count})
		ops = append(ops, statement.Opening{Salt: b.Salt, Readings: b.Readings})
	}
	proof, err := pr.Prove(ctx, s, ops)
	if err != nil {
		return nil, err
	}
	p := &audit.Parts{Statement: s, Proof: proof, Development: pr.Unsafe(), Checkpoint: sc.checkpoint}
	if p.Registration, err = sc.leaf(ctx, sc.reg); err != nil {
		return nil, err
	}
	for _, b := range batches {
		l, err := sc.leaf(ctx, b.Entry.Bytes)
		if err != nil {
			return nil, err
		}
		p.Entries = append(p.Entries, l)
	}
	after, err := sc.leaf(ctx, sc.chain[monthShape.Entries].Entry.Bytes)
	if err != nil {
		return nil, err
	}
	p.After = &after
	return audit.Build(p)
}
