package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/keys"
)

// TestRegistrationLogged checks that registering a device appends a
// registration record, signed by the registry's key, to the log, and that
// the ledger serves it with its index so that an audit can prove the
// device's key offline.
func TestRegistrationLogged(t *testing.T) {
	e := newEnv(t)
	ctx := e.as(context.Background(), e.hospitalKey)
	d, err := e.ledger.GetDevice(ctx, &v1.GetDeviceRequest{DeviceId: testDevice})
	if err != nil {
		t.Fatal(err)
	}
	vkey := readFile(t, e.cfg.Ledger.RegistryKeyFile+".vkey")
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != e.cfg.Ledger.Origin+"/registry" {
		t.Errorf("registry key is named %q", v.Name())
	}
	rec, err := wearables.VerifyRegistration(d.Registration, v)
	if err != nil {
		t.Fatalf("registration record does not verify with the registry's key: %v", err)
	}
	if r := rec.Registration; r.DeviceID != testDevice || !bytes.Equal(r.PublicKey, e.devicePub) || r.Hospital != testHospital {
		t.Errorf("registration record = %+v; want the device as registered", rec.Registration)
	}
	if d.RegistrationIndex == nil {
		t.Fatal("registration record has no index")
	}
	got, err := e.ledger.GetEntry(context.Background(), &v1.GetEntryRequest{Index: d.GetRegistrationIndex()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Entry, d.Registration) {
		t.Errorf("log leaf %d is not the registration record", d.GetRegistrationIndex())
	}
	r, err := e.ledger.GetReceipt(context.Background(), &v1.GetReceiptRequest{Index: d.GetRegistrationIndex()})
	if err != nil {
		t.Fatal(err)
	}
	vr, err := receipt.Verify(e.policy(), []byte(r.Receipt))
	if err != nil {
		t.Fatalf("registration's receipt does not verify: %v", err)
	}
	if !bytes.Equal(vr.Entry, d.Registration) {
		t.Error("registration's receipt proves another leaf")
	}
	// Entries of the device still chain from their own genesis: the
	// registration is not a link of any entry chain.
	res, err := e.gateway.SubmitBatch(e.as(context.Background(), e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(1), values: values(5, 70)}))
	if err != nil || res.Pending {
		t.Fatalf("first entry after registration: %v, %+v", err, res)
	}
	if res.Index <= d.GetRegistrationIndex() {
		t.Errorf("entry index %d is not after the registration's %d", res.Index, d.GetRegistrationIndex())
	}
}

// writeKeyDir writes a key directory as zk/keys saves one, with the given
// verifying key bytes and the fingerprint its metadata claims.
func writeKeyDir(t *testing.T, dir, circuit string, vk []byte, claimed string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := strings.Repeat("00", 32)
	m := keys.Metadata{Format: keys.Format, Circuit: circuit, CircuitSHA256: h, VerifyingKeySHA256: claimed, ProvingKeySHA256: h,
		Setup: keys.SetupDevelopment, UnsafeForProduction: true, Warning: keys.UnsafeWarning, Created: time.Unix(0, 0).UTC()}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"metadata.json": b, "verifying.key": vk, "proving.key": []byte("secret proving key")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyingKeysServed checks that the ledger serves the verifying keys
// of its key directory by fingerprint, never a proving key, and skips a
// directory whose verifying key does not match its metadata.
func TestVerifyingKeysServed(t *testing.T) {
	e := newEnv(t)
	good := []byte("verifying key of range-1440")
	sum := sha256.Sum256(good)
	fp := hex.EncodeToString(sum[:])
	writeKeyDir(t, filepath.Join(e.cfg.Ledger.ZKKeysDir, "good"), "range-1440", good, fp)
	writeKeyDir(t, filepath.Join(e.cfg.Ledger.ZKKeysDir, "tampered"), "range-43200", []byte("swapped key"), strings.Repeat("11", 32))

	list, err := e.ledger.ListVerifyingKeys(context.Background(), &v1.ListVerifyingKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Keys) != 1 || list.Keys[0].Fingerprint != fp || list.Keys[0].Circuit != "range-1440" || !list.Keys[0].UnsafeForProduction || len(list.Keys[0].VerifyingKey) != 0 {
		t.Fatalf("ListVerifyingKeys = %v; want only the good key, labelled unsafe, without its bytes", list.Keys)
	}
	got, err := e.ledger.GetVerifyingKey(context.Background(), &v1.GetVerifyingKeyRequest{Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.VerifyingKey, good) || bytes.Contains(got.Metadata, []byte("secret")) {
		t.Errorf("GetVerifyingKey = %v; want the verifying key only", got)
	}
	for fp, want := range map[string]codes.Code{
		strings.Repeat("11", 32): codes.NotFound,
		"not-hex":                codes.InvalidArgument,
		strings.ToUpper(fp):      codes.InvalidArgument,
	} {
		if _, err := e.ledger.GetVerifyingKey(context.Background(), &v1.GetVerifyingKeyRequest{Fingerprint: fp}); status.Code(err) != want {
			t.Errorf("GetVerifyingKey(%q) = %v; want %v", fp, err, want)
		}
	}
}
