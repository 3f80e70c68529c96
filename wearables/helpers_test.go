package wearables

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

const (
	testDevice   = "band-1"
	testHospital = "general-hospital"
)

// testKey returns a deterministic signer named name and its verifier.
func testKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	s, err := Ed25519Signer(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DeviceVerifier(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// testHeader returns a valid first-of-chain device header.
func testHeader() *EntryHeader {
	return &EntryHeader{
		DeviceID:    testDevice,
		Metric:      "heart-rate",
		WindowStart: 1700000000,
		WindowEnd:   1700003600,
		Count:       3,
		Commitment:  [32]byte{1, 2, 3},
		Seq:         1,
		Hospital:    testHospital,
		Attestation: AttestDevice,
	}
}

// testSim returns a deterministic simulator for testDevice.
func testSim(t testing.TB, seed uint64) *Simulator {
	t.Helper()
	s, _ := testKey(t, testDevice, 1)
	var key [32]byte
	key[0] = byte(seed)
	sim, err := NewSimulator(testDevice, testHospital, s, rand.NewChaCha8(key))
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// testBatch returns a valid simulated device batch of metric: an hour with
// a reading a minute, starting at a fixed time.
func testBatch(t testing.TB, metric string) *Batch {
	t.Helper()
	b, err := testSim(t, 1).Batch(metric, testStart, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	testStart = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	testNow   = testStart.Add(48 * time.Hour)
)

// signText signs arbitrary note text, canonical or not.
func signText(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// commitTo returns the commitment of b's opening.
func commitTo(t testing.TB, b *Batch) [commitment.Size]byte {
	t.Helper()
	c, err := commitment.Commit(b.Opening())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
