// Package keys manages Groth16 (BN254) proving and verifying keys for the
// circuits of package zk/circuit: setup, save, load, fingerprint, a cache
// keyed by the compiled circuit, and the multi-party ceremony that makes
// production keys.
//
// # Key directory
//
// Keys live in a directory of three files:
//
//	metadata.json   the [Metadata], as JSON
//	verifying.key   the verifying key, gnark's compressed encoding
//	proving.key     the proving key, gnark's raw (uncompressed) encoding
//
// The verifying key's fingerprint is the SHA-256 of verifying.key; the
// circuit hash is the SHA-256 of the constraint system's serialization
// (gnark's WriteTo). [Load] checks both hashes of the files against the
// metadata, and the circuit hash against the constraint system it is given.
//
// # Development keys
//
// [DevSetup] runs gnark's single-party groth16.Setup: whoever ran it knows the
// toxic waste and can forge proofs. Such keys are UNSAFE FOR PRODUCTION; their
// metadata says so (Setup "development", UnsafeForProduction true, and a
// Warning), and [Keys.Unsafe] lets callers print it. Production keys come from
// a ceremony (ceremony.go): phase 1 and phase 2 contributions, each verified,
// sealed with a public random beacon.
package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
)

const (
	// Format is the key directory's format version.
	Format = "vitalproof/zk-keys/v1"
	// SetupDevelopment labels keys from a single-party setup.
	SetupDevelopment = "development"
	// SetupCeremony labels keys from a verified multi-party ceremony.
	SetupCeremony = "ceremony"
	// UnsafeWarning is the warning development keys carry.
	UnsafeWarning = "UNSAFE FOR PRODUCTION: these keys come from a single-party development setup; whoever ran it can forge proofs"

	metadataFile  = "metadata.json"
	verifyingFile = "verifying.key"
	provingFile   = "proving.key"
	maxMetadata   = 1 << 16
)

// Metadata describes a key pair.
type Metadata struct {
	Format string `json:"format"`
	// Circuit is the circuit's ID (package zk/circuit).
	Circuit string `json:"circuit"`
	// CircuitSHA256 is the hex SHA-256 of the constraint system's
	// serialization.
	CircuitSHA256 string `json:"circuit_sha256"`
	// VerifyingKeySHA256 is the verifying key's fingerprint, in hex.
	VerifyingKeySHA256 string `json:"verifying_key_sha256"`
	// ProvingKeySHA256 is the hex SHA-256 of proving.key.
	ProvingKeySHA256 string `json:"proving_key_sha256"`
	// Setup is SetupDevelopment or SetupCeremony.
	Setup string `json:"setup"`
	// UnsafeForProduction is true for development keys.
	UnsafeForProduction bool   `json:"unsafe_for_production"`
	Warning             string `json:"warning,omitempty"`
	// Contributions counts the ceremony's phase 1 and phase 2
	// contributions (zero for development keys).
	Phase1Contributions int `json:"phase1_contributions,omitempty"`
	Phase2Contributions int `json:"phase2_contributions,omitempty"`
	// Beacon is the hex public random beacon that sealed the ceremony.
	Beacon  string    `json:"beacon,omitempty"`
	Created time.Time `json:"created"`
}

// Keys is a proving and verifying key pair with its metadata. PK is nil for
// keys loaded with [LoadVerifyingKey].
type Keys struct {
	Meta Metadata
	PK   groth16.ProvingKey
	VK   groth16.VerifyingKey
}

// Unsafe reports whether the keys are unsafe for production (development
// keys). Callers print [UnsafeWarning] when it is true.
func (k *Keys) Unsafe() bool {
	return k.Meta.UnsafeForProduction || k.Meta.Setup != SetupCeremony
}

var (
	errCorrupt  = errors.New("key files do not match their metadata")
	errCircuit  = errors.New("keys were made for another circuit")
	errMetadata = errors.New("malformed key metadata")
)

// CircuitHash returns the SHA-256 of cs's serialization: the circuit's
// identity for keys and the cache.
func CircuitHash(cs constraint.ConstraintSystem) ([32]byte, error) {
	h := sha256.New()
	if _, err := cs.WriteTo(h); err != nil {
		return [32]byte{}, fmt.Errorf("couldn't hash constraint system: %w", err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// Fingerprint returns the SHA-256 of vk's compressed serialization.
func Fingerprint(vk groth16.VerifyingKey) ([32]byte, error) {
	h := sha256.New()
	if _, err := vk.WriteTo(h); err != nil {
		return [32]byte{}, fmt.Errorf("couldn't fingerprint verifying key: %w", err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// DevSetup runs a single-party Groth16 setup for cs, the compiled circuit
// named id. The keys are UNSAFE FOR PRODUCTION and labelled so. It checks ctx
// only before it starts: gnark's setup cannot be interrupted.
func DevSetup(ctx context.Context, cs constraint.ConstraintSystem, id string) (*Keys, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't run setup: %w", err)
	}
	slog.WarnContext(ctx, "running development setup: keys are UNSAFE FOR PRODUCTION", "circuit", id, "constraints", cs.GetNbConstraints())
	start := time.Now()
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		return nil, fmt.Errorf("couldn't run setup: %w", err)
	}
	slog.InfoContext(ctx, "development setup done", "circuit", id, "duration", time.Since(start))
	return newKeys(cs, id, pk, vk, Metadata{Setup: SetupDevelopment, UnsafeForProduction: true, Warning: UnsafeWarning})
}

func newKeys(cs constraint.ConstraintSystem, id string, pk groth16.ProvingKey, vk groth16.VerifyingKey, m Metadata) (*Keys, error) {
	ch, err := CircuitHash(cs)
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint(vk)
	if err != nil {
		return nil, err
	}
	m.Format, m.Circuit = Format, id
	m.CircuitSHA256, m.VerifyingKeySHA256 = hex.EncodeToString(ch[:]), hex.EncodeToString(fp[:])
	m.Created = time.Now().UTC().Truncate(time.Second)
	return &Keys{Meta: m, PK: pk, VK: vk}, nil
}

// Save writes k to dir, which must not exist yet: the files are written to a
// temporary directory beside it, which is then renamed, so dir appears
// complete or not at all.
func Save(ctx context.Context, dir string, k *Keys) error {
	if k.PK == nil || k.VK == nil {
		return errors.New("couldn't save keys: proving or verifying key missing")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("couldn't save keys: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("couldn't save keys: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".keys-*")
	if err != nil {
		return fmt.Errorf("couldn't save keys: %w", err)
	}
	defer os.RemoveAll(tmp)
	vkHash, err := writeFile(filepath.Join(tmp, verifyingFile), k.VK.WriteTo)
	if err != nil {
		return fmt.Errorf("couldn't save verifying key: %w", err)
	}
	if hex.EncodeToString(vkHash[:]) != k.Meta.VerifyingKeySHA256 {
		return fmt.Errorf("couldn't save keys: %w", errCorrupt)
	}
	pkHash, err := writeFile(filepath.Join(tmp, provingFile), k.PK.WriteRawTo)
	if err != nil {
		return fmt.Errorf("couldn't save proving key: %w", err)
	}
	m := k.Meta
	m.ProvingKeySHA256 = hex.EncodeToString(pkHash[:])
	meta, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fmt.Errorf("couldn't save key metadata: %w", err)
	}
	if _, err := writeFile(filepath.Join(tmp, metadataFile), func(w io.Writer) (int64, error) {
		n, err := w.Write(append(meta, '\n'))
		return int64(n), err
	}); err != nil {
		return fmt.Errorf("couldn't save key metadata: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("couldn't save keys: %w", err)
	}
	k.Meta = m
	return nil
}

// writeFile writes a file with write, syncs it and returns its SHA-256.
func writeFile(name string, write func(io.Writer) (int64, error)) ([32]byte, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	if _, err := write(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return [32]byte{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), f.Close()
}

// ReadMetadata reads and checks the metadata of the keys in dir.
func ReadMetadata(dir string) (*Metadata, error) {
	f, err := os.Open(filepath.Join(dir, metadataFile))
	if err != nil {
		return nil, fmt.Errorf("couldn't read key metadata: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read key metadata: %w", err)
	}
	m, err := ParseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("couldn't read key metadata: %w", err)
	}
	return m, nil
}

// ParseMetadata parses metadata.json strictly: known fields only, the
// current format, hex hashes and a coherent setup label (development keys
// unsafe and without contributions, ceremony keys with contributions to both
// phases and a beacon). The metadata is not signed: what makes ceremony keys
// trustworthy is a verifying key fingerprint published with the ceremony's
// transcript, which callers compare with VerifyingKeySHA256.
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) > maxMetadata {
		return nil, errMetadata
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Metadata
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil, errMetadata
	}
	for _, h := range []string{m.CircuitSHA256, m.VerifyingKeySHA256, m.ProvingKeySHA256} {
		if d, err := hex.DecodeString(h); err != nil || len(d) != sha256.Size {
			return nil, errMetadata
		}
	}
	switch {
	case m.Format != Format, m.Circuit == "":
		return nil, errMetadata
	case m.Setup == SetupDevelopment && (!m.UnsafeForProduction || m.Phase1Contributions != 0 || m.Phase2Contributions != 0):
		return nil, errMetadata
	case m.Setup == SetupCeremony && (m.UnsafeForProduction || m.Phase1Contributions < 1 || m.Phase2Contributions < 1 || m.Beacon == ""):
		return nil, errMetadata
	case m.Setup != SetupDevelopment && m.Setup != SetupCeremony:
		return nil, errMetadata
	}
	return &m, nil
}

// Load reads the keys in dir and checks them against their metadata and
// against cs, the compiled circuit they are for.
func Load(ctx context.Context, dir string, cs constraint.ConstraintSystem) (*Keys, error) {
	k, err := LoadVerifyingKey(ctx, dir)
	if err != nil {
		return nil, err
	}
	ch, err := CircuitHash(cs)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(ch[:]) != k.Meta.CircuitSHA256 {
		return nil, fmt.Errorf("couldn't load keys: %w", errCircuit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't load keys: %w", err)
	}
	f, err := os.Open(filepath.Join(dir, provingFile))
	if err != nil {
		return nil, fmt.Errorf("couldn't load proving key: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	pk := groth16.NewProvingKey(ecc.BN254)
	if _, err := pk.UnsafeReadFrom(io.TeeReader(f, h)); err != nil {
		return nil, fmt.Errorf("couldn't load proving key: %w", err)
	}
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("couldn't load proving key: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != k.Meta.ProvingKeySHA256 {
		return nil, fmt.Errorf("couldn't load proving key: %w", errCorrupt)
	}
	k.PK = pk
	return k, nil
}

// LoadVerifyingKey reads the metadata and verifying key in dir, as a
// verifier does, and checks the key's fingerprint.
func LoadVerifyingKey(ctx context.Context, dir string) (*Keys, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't load verifying key: %w", err)
	}
	m, err := ReadMetadata(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, verifyingFile))
	if err != nil {
		return nil, fmt.Errorf("couldn't load verifying key: %w", err)
	}
	if fp := sha256.Sum256(b); hex.EncodeToString(fp[:]) != m.VerifyingKeySHA256 {
		return nil, fmt.Errorf("couldn't load verifying key: %w", errCorrupt)
	}
	vk := groth16.NewVerifyingKey(ecc.BN254)
	n, err := vk.ReadFrom(bytes.NewReader(b))
	if err != nil || n != int64(len(b)) {
		return nil, fmt.Errorf("couldn't load verifying key: %w", errCorrupt)
	}
	return &Keys{Meta: *m, VK: vk}, nil
}
