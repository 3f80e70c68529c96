package witness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	skey, vkey, err := GenerateKey(testWitnessName)
	if err != nil {
		t.Fatal(err)
	}
	// The private key is a plain signed-note key that x/mod reads.
	if _, err := note.NewSigner(skey); err != nil {
		t.Errorf("x/mod note does not read the key file: %v", err)
	}
	// The vkey is a cosignature/v1 key (type 0x04) with the spec's key ID.
	name, pub := parseVKey(t, vkey, 0x04)
	if name != testWitnessName {
		t.Errorf("vkey name %q, want %q", name, testWitnessName)
	}
	v, err := torchwood.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatalf("torchwood does not read the vkey: %v", err)
	}
	s, err := NewSigner(skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Verifier().String() != vkey || s.KeyHash() != v.KeyHash() {
		t.Errorf("NewSigner(skey) has vkey %q, want %q", s.Verifier().String(), vkey)
	}
	if got := s.Verifier().String(); !strings.HasPrefix(got, name+"+") || len(pub) != ed25519.PublicKeySize {
		t.Errorf("vkey %q", got)
	}
}

func TestGenerateKeyBadName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "has space", "has+plus"} {
		if _, _, err := GenerateKey(name); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", name)
		}
	}
}

func TestNewSignerErrors(t *testing.T) {
	t.Parallel()
	skey, vkey, err := GenerateKey(testWitnessName)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.SplitN(skey, "+", 5)[4]
	for name, bad := range map[string]string{
		"empty":        "",
		"vkey":         vkey,
		"wrong hash":   strings.Replace(skey, "+"+strings.Split(skey, "+")[3]+"+", "+00000000+", 1),
		"truncated":    skey[:len(skey)-4],
		"not private":  strings.Replace(skey, "PRIVATE+KEY", "PUBLIC+KEY", 1),
		"garbage tail": skey + "garbage",
	} {
		_, err := NewSigner(bad)
		if err == nil {
			t.Errorf("%s: NewSigner accepted it", name)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("%s: error reveals the key: %v", name, err)
		}
	}
}

// parseVKey parses a vkey by c2sp.org/signed-note, independently of the
// libraries: name+hex(key ID)+base64(type || key).
func parseVKey(t testing.TB, vkey string, typ byte) (name string, key []byte) {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		t.Fatalf("vkey %q is not name+id+key", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != typ {
		t.Fatalf("vkey %q: want type 0x%02x and a 32-byte key", vkey, typ)
	}
	id, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	want := keyID(parts[0], typ, raw[1:])
	if got := []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}; string(got) != string(want) {
		t.Fatalf("vkey %q: key ID %x, want %x", vkey, got, want)
	}
	return parts[0], raw[1:]
}

// keyID is SHA-256(name || "\n" || type || key)[:4].
func keyID(name string, typ byte, key []byte) []byte {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{typ})
	h.Write(key)
	return h.Sum(nil)[:4]
}

func ed25519Verify(key, msg, sig []byte) bool {
	return ed25519.Verify(ed25519.PublicKey(key), msg, sig)
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
