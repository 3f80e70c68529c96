package keys

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/std/rangecheck"
)

func TestMain(m *testing.M) {
	logger.Disable()
	os.Exit(m.Run())
}

// square proves knowledge of X < 2^Bits with X·X = Y. It uses the range
// checker, so its keys carry a Pedersen commitment key, as the statement
// circuits' do.
type square struct {
	Y    frontend.Variable `gnark:",public"`
	X    frontend.Variable
	bits int
}

func (c *square) Define(api frontend.API) error {
	rangecheck.New(api).Check(c.X, c.bits)
	api.AssertIsEqual(api.Mul(c.X, c.X), c.Y)
	return nil
}

func compileSquare(t testing.TB, bits int) constraint.ConstraintSystem {
	t.Helper()
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &square{bits: bits})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// proveSquare proves 11·11 = 121 with pk and verifies with vk.
func proveSquare(t *testing.T, cs constraint.ConstraintSystem, pk groth16.ProvingKey, vk groth16.VerifyingKey) {
	t.Helper()
	w, err := frontend.NewWitness(&square{X: 11, Y: 121}, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := groth16.Prove(cs, pk, w)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := w.Public()
	if err != nil {
		t.Fatal(err)
	}
	if err := groth16.Verify(proof, vk, pub); err != nil {
		t.Fatal(err)
	}
}

func TestDevSetupSaveLoad(t *testing.T) {
	ctx := context.Background()
	cs := compileSquare(t, 12)
	k, err := DevSetup(ctx, cs, "test/square")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Unsafe() || k.Meta.Setup != SetupDevelopment || k.Meta.Warning != UnsafeWarning {
		t.Fatalf("development keys not labelled unsafe: %+v", k.Meta)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Save(ctx, dir, k); err != nil {
		t.Fatal(err)
	}
	if err := Save(ctx, dir, k); err == nil {
		t.Error("saved over existing keys")
	}
	got, err := Load(ctx, dir, cs)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta != k.Meta || !got.Unsafe() {
		t.Errorf("metadata: got %+v, want %+v", got.Meta, k.Meta)
	}
	fp, err := Fingerprint(got.VK)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(fp[:]) != k.Meta.VerifyingKeySHA256 {
		t.Error("fingerprint of the loaded key differs")
	}
	proveSquare(t, cs, got.PK, got.VK)

	vkOnly, err := LoadVerifyingKey(ctx, dir)
	if err != nil || vkOnly.PK != nil {
		t.Fatalf("LoadVerifyingKey: %v", err)
	}
	if _, err := Load(ctx, dir, compileSquare(t, 13)); !errors.Is(err, errCircuit) {
		t.Errorf("keys loaded for another circuit: %v", err)
	}
}

func TestLoadDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	cs := compileSquare(t, 12)
	k, err := DevSetup(ctx, cs, "test/square")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "keys")
	if err := Save(ctx, src, k); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file string
		edit func(b []byte) []byte
	}{
		{verifyingFile, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{provingFile, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{provingFile, func(b []byte) []byte { return append(b, 0) }},
		{metadataFile, func(b []byte) []byte { return bytes.Replace(b, []byte(`"development"`), []byte(`"ceremony"`), 1) }},
		{metadataFile, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"unsafe_for_production": true`), []byte(`"unsafe_for_production": false`), 1)
		}},
	} {
		dir := filepath.Join(t.TempDir(), "keys")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{verifyingFile, provingFile, metadataFile} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if f == tt.file {
				b = tt.edit(b)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Load(ctx, dir, cs); err == nil {
			t.Errorf("%s edited: loaded", tt.file)
		}
	}
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	c := &Cache{Dir: t.TempDir()}
	setups := 0
	setup := func(ctx context.Context, cs constraint.ConstraintSystem, id string) (*Keys, error) {
		setups++
		return DevSetup(ctx, cs, id)
	}
	cs := compileSquare(t, 12)
	k1, err := c.Get(ctx, cs, "test/square", setup)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := c.Get(ctx, compileSquare(t, 12), "test/square", setup)
	if err != nil {
		t.Fatal(err)
	}
	if setups != 1 || k1.Meta.VerifyingKeySHA256 != k2.Meta.VerifyingKeySHA256 {
		t.Fatalf("setups = %d, fingerprints %s and %s: want one setup, one key", setups, k1.Meta.VerifyingKeySHA256, k2.Meta.VerifyingKeySHA256)
	}
	proveSquare(t, cs, k2.PK, k2.VK)
	if _, err := c.Get(ctx, compileSquare(t, 13), "test/square13", setup); err != nil || setups != 2 {
		t.Fatalf("another circuit: %v, %d setups", err, setups)
	}
	h, _ := CircuitHash(cs)
	if _, err := os.Stat(filepath.Join(c.Dir, hex.EncodeToString(h[:]), metadataFile)); err != nil {
		t.Errorf("keys not under the circuit hash: %v", err)
	}
	failing := func(context.Context, constraint.ConstraintSystem, string) (*Keys, error) {
		return nil, errors.New("no setup")
	}
	if _, err := c.Get(ctx, compileSquare(t, 14), "test/square14", failing); err == nil {
		t.Error("failed setup: no error")
	}
}

func FuzzParseMetadata(f *testing.F) {
	h := hex.EncodeToString(make([]byte, 32))
	f.Add([]byte(`{"format":"vitalproof/zk-keys/v1","circuit":"c","circuit_sha256":"` + h + `","verifying_key_sha256":"` + h + `","proving_key_sha256":"` + h + `","setup":"development","unsafe_for_production":true,"created":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"format":"vitalproof/zk-keys/v1","circuit":"c","circuit_sha256":"` + h + `","verifying_key_sha256":"` + h + `","proving_key_sha256":"` + h + `","setup":"ceremony","unsafe_for_production":false,"phase1_contributions":3,"phase2_contributions":2,"beacon":"00","created":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"vitalproof/zk-keys/v1"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			return
		}
		if m.Format != Format || (m.Setup == SetupDevelopment && !m.UnsafeForProduction) {
			t.Fatalf("accepted %+v", m)
		}
		k := &Keys{Meta: *m}
		if m.Setup == SetupDevelopment && !k.Unsafe() {
			t.Fatal("development keys not unsafe")
		}
	})
}

func TestCompiled(t *testing.T) {
	ctx := context.Background()
	c := &Cache{Dir: t.TempDir()}
	compiles := 0
	compile := func() (constraint.ConstraintSystem, error) {
		compiles++
		return compileSquare(t, 12), nil
	}
	cs1, err := c.Compiled(ctx, "test/square+12", compile)
	if err != nil {
		t.Fatal(err)
	}
	cs2, err := c.Compiled(ctx, "test/square+12", compile)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := CircuitHash(cs1)
	h2, _ := CircuitHash(cs2)
	if compiles != 1 || h1 != h2 {
		t.Fatalf("compiles = %d, hashes equal %v: want one compile, one circuit", compiles, h1 == h2)
	}
	k, err := c.Get(ctx, cs2, "test/square+12", DevSetup)
	if err != nil {
		t.Fatal(err)
	}
	proveSquare(t, cs2, k.PK, k.VK)
}
