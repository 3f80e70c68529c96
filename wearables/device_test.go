package wearables

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestGenerateDeviceKey(t *testing.T) {
	signer, skey, vkey, pub, err := GenerateDeviceKey("band-7")
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != "band-7" || !strings.HasPrefix(skey, "PRIVATE+KEY+band-7+") || !strings.HasPrefix(vkey, "band-7+") {
		t.Fatalf("names: signer %q, skey %q..., vkey %q", signer.Name(), skey[:20], vkey)
	}
	if len(pub) != ed25519.PublicKeySize {
		t.Fatalf("public key is %d bytes", len(pub))
	}
	// The skey works with note itself and the vkey matches the public key.
	s2, err := note.NewSigner(skey)
	if err != nil {
		t.Fatalf("note.NewSigner(skey): %v", err)
	}
	if s2.KeyHash() != signer.KeyHash() {
		t.Errorf("key hashes differ: %08x, %08x", s2.KeyHash(), signer.KeyHash())
	}
	want, _ := note.NewEd25519VerifierKey("band-7", pub)
	if vkey != want {
		t.Errorf("vkey = %q, want %q", vkey, want)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DeviceVerifier("band-7", pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("DeviceVerifier does not verify the signer's note: %v", err)
	}
	v2, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v2)); err != nil {
		t.Errorf("vkey does not verify the signer's note: %v", err)
	}
	// Two keys are different keys.
	_, _, _, pub2, err := GenerateDeviceKey("band-7")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(pub, pub2) {
		t.Error("two generated keys are equal")
	}
	other, _ := DeviceVerifier("band-7", pub2)
	if _, err := note.Open(msg, note.VerifierList(other)); err == nil {
		t.Error("another key's verifier accepted the note")
	}
}

func TestEd25519Signer(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	s, err := Ed25519Signer("hospital-a", priv)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := note.NewEd25519VerifierKey("hospital-a", pub)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != v.Name() || s.KeyHash() != v.KeyHash() {
		t.Fatalf("signer %s/%08x, verifier %s/%08x", s.Name(), s.KeyHash(), v.Name(), v.KeyHash())
	}
	msg, err := note.Sign(&note.Note{Text: "checkpoint\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("note from Ed25519Signer does not verify: %v", err)
	}
	// The same seed gives the same skey as note.GenerateKey would.
	skey, vkey2, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, ed25519.SeedSize)), "hospital-a")
	if err != nil {
		t.Fatal(err)
	}
	if got := ed25519SignerKey("hospital-a", priv); got != skey {
		t.Errorf("skey = %q, want note.GenerateKey's %q", got, skey)
	}
	if vkey2 != vkey {
		t.Errorf("vkey = %q, want %q", vkey, vkey2)
	}
}

func TestKeyRefusals(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	if _, _, _, _, err := GenerateDeviceKey("Band 7"); err == nil {
		t.Error("GenerateDeviceKey accepted an invalid ID")
	}
	if _, err := Ed25519Signer("", priv); err == nil {
		t.Error("Ed25519Signer accepted an empty name")
	}
	if _, err := Ed25519Signer("band", priv[:32]); err == nil {
		t.Error("Ed25519Signer accepted a short key")
	}
	if _, err := DeviceVerifier("band+1", pub); err == nil {
		t.Error("DeviceVerifier accepted an invalid ID")
	}
	if _, err := DeviceVerifier("band", pub[:31]); err == nil {
		t.Error("DeviceVerifier accepted a short key")
	}
}

func TestParseVerifierKey(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	vkey, _ := note.NewEd25519VerifierKey("band-1", pub)
	name, got, err := ParseVerifierKey(vkey)
	if err != nil || name != "band-1" || !bytes.Equal(got, pub) {
		t.Fatalf("ParseVerifierKey = %q, %x, %v; want band-1, %x", name, got, err, pub)
	}
	name, key, _ := strings.Cut(vkey, "+")
	_, key, _ = strings.Cut(key, "+")
	raw, _ := base64.StdEncoding.DecodeString(key)
	other := append([]byte{2}, raw[1:]...)
	for _, bad := range []string{
		"",
		name,
		strings.Replace(vkey, "band-1", "band-2", 1),                   // hash does not match the name
		vkey[:len(vkey)-4] + "AAA=",                                    // hash does not match the key
		name + "+00000000+" + base64.StdEncoding.EncodeToString(other), // unknown algorithm
		"PRIVATE+KEY+" + vkey,
	} {
		if n, k, err := ParseVerifierKey(bad); err == nil {
			t.Errorf("ParseVerifierKey(%q) = %q, %x; want error", bad, n, k)
		}
	}
}
