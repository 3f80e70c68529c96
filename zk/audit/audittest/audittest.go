// Package audittest builds real audit bundles for tests: a simulated
// wearable's signed entries and its registration record in an in-memory
// log, a checkpoint signed with a test log key (and optionally cosigned by a
// test witness at a chosen time), development keys for a small circuit from
// a key cache shared by test runs, and Groth16 proofs.
//
// The keys are cached under the user's cache directory
// (vitalproof-test/zk-keys), keyed by the compiled circuit (package
// zk/keys), so only the first run on a machine pays for the setup.
package audittest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
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

// The scenario's constants.
const (
	// Device is the audited device; Other is another device of the same
	// hospital.
	Device   = "audit-band"
	Other    = "other-band"
	Hospital = "audit-hospital"
	// Origin is the test log's name.
	Origin = "audit.vitalproof.test/log"
	// Registrar is the key name of the registry's signing key.
	Registrar = "registry.vitalproof.test"
	// Metric is the audited metric.
	Metric = "glucose"
	// Batches is the length of the audited device's chain: hourly batches
	// from Start, seq 1 to Batches.
	Batches = 8
	// PerBatch is the number of readings in each batch (one every 10
	// minutes).
	PerBatch = 6
)

var (
	// Start is the start of the first batch's window.
	Start = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	// Shape is the circuit's capacity: 4 entries of 6 readings.
	Shape = circuit.Shape{Entries: 4, PerEntry: PerBatch}
	// Kinds are the statement's parts.
	Kinds = statement.Range | statement.TimeInRange
	// Params are the statement's parameters (glucose in mg/dL): every
	// reading in [40, 400], at least 70% in [70, 180]. The simulated night
	// readings satisfy them.
	Params = statement.Params{RangeLo: 40, RangeHi: 400, TIRLo: 70, TIRHi: 180, TIRPercent: 70}
)

// Fixture is the scenario: a log holding two registration records (Other's
// and Device's), Device's chain of glucose entries interleaved with
// entries of Other and one gateway-attested entry of Device, and a signed
// checkpoint of that tree. It is not safe for concurrent use.
type Fixture struct {
	// Keys are the circuit's development keys; KeyDir holds their
	// published verifying key (metadata.json and verifying.key).
	Keys   *keys.Keys
	KeyDir string
	Prover *prove.Prover

	Log       *logtest.MemLog
	Root      log.Root
	LogSigner *checkpoint.Signer
	// Checkpoint is the signed checkpoint of Root; Policy the tlog-policy
	// of the log without witnesses.
	Checkpoint []byte
	Policy     []byte
	// Witness cosigns checkpoints ([Fixture.Cosign]); WitnessPolicy
	// requires its cosignature.
	WitnessPolicy []byte

	// RegistrarKey verifies the registration records; RegistrarVkey is its
	// verifier key string.
	RegistrarKey  note.Verifier
	RegistrarVkey string
	// Registration and OtherRegistration are the registration records of
	// Device and Other.
	Registration, OtherRegistration []byte
	// Chain is Device's chain, seq 1 to Batches.
	Chain []*wearables.Batch
	// OtherEntry is an entry of Other, GatewayEntry a gateway-attested
	// entry of Device for the same metric.
	OtherEntry, GatewayEntry []byte

	witness *testCosigner
}

var shared struct {
	once sync.Once
	f    *Fixture
	err  error
}

// Shared returns the scenario, built once per test binary.
func Shared(t testing.TB) *Fixture {
	t.Helper()
	shared.once.Do(func() { shared.f, shared.err = build() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.f
}

// CacheDir returns the key cache shared by test runs.
func CacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "vitalproof-test", "zk-keys")
}

func build() (*Fixture, error) {
	ctx := context.Background()
	f := &Fixture{}
	id := circuit.ID(Shape, Kinds)
	cache := &keys.Cache{Dir: CacheDir()}
	cs, err := cache.Compiled(ctx, id, func() (constraint.ConstraintSystem, error) { return circuit.Compile(Shape, Kinds) })
	if err != nil {
		return nil, err
	}
	if f.Keys, err = cache.Get(ctx, cs, id, keys.DevSetup); err != nil {
		return nil, err
	}
	if f.Prover, err = prove.NewProver(Shape, Kinds, cs, f.Keys); err != nil {
		return nil, err
	}
	if f.KeyDir, err = publish(f.Keys); err != nil {
		return nil, err
	}

	devKey, err := wearables.Ed25519Signer(Device, seededKey(1))
	if err != nil {
		return nil, err
	}
	otherKey, err := wearables.Ed25519Signer(Other, seededKey(2))
	if err != nil {
		return nil, err
	}
	hospKey, err := wearables.Ed25519Signer(Hospital, seededKey(3))
	if err != nil {
		return nil, err
	}
	regKey, err := wearables.Ed25519Signer(Registrar, seededKey(4))
	if err != nil {
		return nil, err
	}
	if f.RegistrarVkey, err = note.NewEd25519VerifierKey(Registrar, seededKey(4).Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}
	if f.RegistrarKey, err = note.NewVerifier(f.RegistrarVkey); err != nil {
		return nil, err
	}
	register := func(id string, seed byte) ([]byte, error) {
		r, err := wearables.NewRegistration(id, "acme-medical", "(01)09506000134352(21)SN"+id, "Acme CGM 3", "2.1.0",
			seededKey(seed).Public().(ed25519.PublicKey), Hospital, Start.Add(-24*time.Hour))
		if err != nil {
			return nil, err
		}
		return r.Sign(regKey)
	}
	if f.OtherRegistration, err = register(Other, 2); err != nil {
		return nil, err
	}
	if f.Registration, err = register(Device, 1); err != nil {
		return nil, err
	}

	sim, err := wearables.NewSimulator(Device, Hospital, devKey, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		return nil, err
	}
	if f.Chain, err = sim.Span(Start, Batches*time.Hour, []string{Metric}, time.Hour, 10*time.Minute); err != nil {
		return nil, err
	}
	otherSim, err := wearables.NewSimulator(Other, Hospital, otherKey, rand.NewChaCha8([32]byte{2}))
	if err != nil {
		return nil, err
	}
	other, err := otherSim.Span(Start, Batches*time.Hour, []string{"heart-rate"}, time.Hour, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	f.OtherEntry = other[0].Entry.Bytes
	gw := f.Chain[2].Entry.Header
	gw.Attestation, gw.Seq, gw.Prev = wearables.AttestGateway, 1, [32]byte{}
	if f.GatewayEntry, err = wearables.SignEntry(&gw, hospKey); err != nil {
		return nil, err
	}

	f.Log = logtest.NewMemLog()
	leaves := [][]byte{f.OtherRegistration, f.Registration}
	for i, b := range f.Chain {
		leaves = append(leaves, b.Entry.Bytes, other[i].Entry.Bytes)
	}
	leaves = append(leaves, f.GatewayEntry)
	if err := f.Log.Append(ctx, leaves); err != nil {
		return nil, err
	}
	f.Root = f.Log.Integrate()

	skey, vkey, err := note.GenerateKey(deterministic(5), Origin)
	if err != nil {
		return nil, err
	}
	if f.LogSigner, err = checkpoint.NewSigner(skey); err != nil {
		return nil, err
	}
	if f.Checkpoint, err = f.LogSigner.Sign(f.Root); err != nil {
		return nil, err
	}
	if f.witness, err = newTestCosigner("witness.vitalproof.test", seededKey(6)); err != nil {
		return nil, err
	}
	f.Policy = []byte("log " + vkey + "\nquorum none\n")
	f.WitnessPolicy = []byte("log " + vkey + "\nwitness w1 " + f.witness.vkey + " https://witness.vitalproof.test\nquorum w1\n")
	return f, nil
}

// Leaf returns leaf raw with its index and inclusion proof in the tree of
// size treeSize.
func (f *Fixture) Leaf(t testing.TB, raw []byte, treeSize uint64) audit.Leaf {
	t.Helper()
	ctx := context.Background()
	index, proof, err := f.Log.InclusionByHash(ctx, log.LeafHash(raw), treeSize)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Leaf{Index: index, Bytes: bytes.Clone(raw), Proof: proof}
}

// Parts proves the statement of [Kinds] and params over the chain's
// entries from (0-based) to to (exclusive), over the period from the first
// entry's start to periodEnd (the last entry's end if zero), and returns the
// parts of its bundle against f.Checkpoint. The after-bracket is the entry
// at to, or none (a head claim) if to is the chain's length.
func (f *Fixture) Parts(t testing.TB, from, to int, params statement.Params, periodEnd int64) *audit.Parts {
	t.Helper()
	m, _ := wearables.MetricByCode(Metric)
	batches := f.Chain[from:to]
	if periodEnd == 0 {
		periodEnd = batches[len(batches)-1].Entry.Header.WindowEnd
	}
	s := &statement.Statement{
		Kinds: Kinds, Params: params, DeviceID: Device, Metric: m.ID,
		PeriodStart: batches[0].Entry.Header.WindowStart, PeriodEnd: periodEnd,
	}
	var ops []statement.Opening
	for _, b := range batches {
		h := &b.Entry.Header
		s.Entries = append(s.Entries, statement.Entry{Commitment: h.Commitment, WindowStart: h.WindowStart, WindowEnd: h.WindowEnd, Count: h.Count})
		ops = append(ops, statement.Opening{Salt: b.Salt, Readings: b.Readings})
	}
	proof, err := f.Prover.Prove(context.Background(), s, ops)
	if err != nil {
		t.Fatal(err)
	}
	size := f.Root.Size
	p := &audit.Parts{
		Statement: s, Proof: proof, Development: f.Prover.Unsafe(),
		Registration: f.Leaf(t, f.Registration, size), Checkpoint: f.Checkpoint,
	}
	if from > 0 {
		l := f.Leaf(t, f.Chain[from-1].Entry.Bytes, size)
		p.Before = &l
	}
	for _, b := range batches {
		p.Entries = append(p.Entries, f.Leaf(t, b.Entry.Bytes, size))
	}
	if to < len(f.Chain) {
		l := f.Leaf(t, f.Chain[to].Entry.Bytes, size)
		p.After = &l
	}
	return p
}

// Bundle builds the bundle of parts.
func Bundle(t testing.TB, p *audit.Parts) []byte {
	t.Helper()
	b, err := audit.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Cosign returns signed with the witness's cosignature at time at added.
func (f *Fixture) Cosign(t testing.TB, signed []byte, at time.Time) []byte {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(f.LogSigner.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	f.witness.at = uint64(at.Unix())
	out, err := note.Sign(n, f.witness)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WriteVerifyingKey writes k's metadata and verifying key to dir, as
// package zk/keys lays them out, without the proving key: what a verifier
// is given.
func WriteVerifyingKey(dir string, k *keys.Keys) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var vk bytes.Buffer
	if _, err := k.VK.WriteTo(&vk); err != nil {
		return err
	}
	meta, err := json.MarshalIndent(&k.Meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "verifying.key"), vk.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "metadata.json"), append(meta, '\n'), 0o644)
}

// publish returns a directory that holds k's published verifying key, and
// only it, in a subdirectory: in the cache, named by the key's
// fingerprint, written whole (by rename) by the first test run that needs
// it.
func publish(k *keys.Keys) (string, error) {
	fp, err := keys.Fingerprint(k.VK)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(CacheDir(), "published", hex.EncodeToString(fp[:]))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".publish-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := WriteVerifyingKey(filepath.Join(tmp, "glucose-small"), k); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

// seededKey returns a deterministic Ed25519 key.
func seededKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// deterministic returns a deterministic reader of randomness.
func deterministic(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

// testCosigner is a c2sp.org/tlog-cosignature signer whose timestamp the
// test sets, where torchwood's signer uses the current time.
type testCosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	vkey string
	at   uint64
}

func newTestCosigner(name string, key ed25519.PrivateKey) (*testCosigner, error) {
	tw, err := torchwood.NewCosignatureSigner(name, key)
	if err != nil {
		return nil, err
	}
	return &testCosigner{name: name, hash: tw.KeyHash(), key: key, vkey: tw.Verifier().String()}, nil
}

func (c *testCosigner) Name() string    { return c.name }
func (c *testCosigner) KeyHash() uint32 { return c.hash }

func (c *testCosigner) Sign(msg []byte) ([]byte, error) {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", c.at, msg)
	sig := binary.BigEndian.AppendUint64(nil, c.at)
	return append(sig, ed25519.Sign(c.key, m)...), nil
}

// Salts returns every salt of the chain in the encodings a leak could take:
// raw, base64 and hex.
func (f *Fixture) Salts() [][]byte {
	var out [][]byte
	for _, b := range f.Chain {
		out = append(out, bytes.Clone(b.Salt[:]), []byte(base64.StdEncoding.EncodeToString(b.Salt[:])), fmt.Appendf(nil, "%x", b.Salt[:]))
	}
	return out
}
