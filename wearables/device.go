package wearables

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Device and hospital keys are Ed25519 signed-note keys (C2SP signed-note,
// golang.org/x/mod/sumdb/note) whose key name is the registry ID: a device
// signs its entries with attestation "device", a hospital's gateway signs
// entries with attestation "gateway" under the hospital ID. Keys travel as
// note key strings: the private "PRIVATE+KEY+<name>+<hash>+<data>" (skey)
// and the public "<name>+<hash>+<data>" (vkey).

const algEd25519 = 1

// GenerateDeviceKey generates a fresh Ed25519 key named id (a device or a
// hospital ID) and returns its signer, its skey and vkey strings, and its
// public key.
func GenerateDeviceKey(id string) (signer note.Signer, skey, vkey string, pub ed25519.PublicKey, err error) {
	if !ValidID(id) {
		return nil, "", "", nil, fmt.Errorf("couldn't generate key: %w", errBadID)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("couldn't generate key: %w", err)
	}
	skey = ed25519SignerKey(id, priv)
	if signer, err = note.NewSigner(skey); err != nil {
		return nil, "", "", nil, fmt.Errorf("couldn't generate key: %w", err)
	}
	if vkey, err = note.NewEd25519VerifierKey(id, pub); err != nil {
		return nil, "", "", nil, fmt.Errorf("couldn't generate key: %w", err)
	}
	return signer, skey, vkey, pub, nil
}

// Ed25519SignerKey returns the note skey string of an Ed25519 private key
// named name. It is the key that [note.NewSigner] takes.
func ed25519SignerKey(name string, priv ed25519.PrivateKey) string {
	pub := append([]byte{algEd25519}, priv.Public().(ed25519.PublicKey)...)
	seed := append([]byte{algEd25519}, priv.Seed()...)
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, keyHash(name, pub), base64.StdEncoding.EncodeToString(seed))
}

// Ed25519Signer returns a note signer for an Ed25519 private key named
// name (a device or hospital ID).
func Ed25519Signer(name string, priv ed25519.PrivateKey) (note.Signer, error) {
	if !ValidID(name) {
		return nil, fmt.Errorf("couldn't build signer: %w", errBadID)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("couldn't build signer: private key is not an Ed25519 key")
	}
	s, err := note.NewSigner(ed25519SignerKey(name, priv))
	if err != nil {
		return nil, fmt.Errorf("couldn't build signer: %w", err)
	}
	return s, nil
}

// DeviceVerifier returns the note verifier of the Ed25519 public key pub
// named id (a device or hospital ID), as the ledger builds it from its
// registry.
func DeviceVerifier(id string, pub ed25519.PublicKey) (note.Verifier, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("couldn't build verifier: %w", errBadID)
	}
	vkey, err := note.NewEd25519VerifierKey(id, pub)
	if err != nil {
		return nil, fmt.Errorf("couldn't build verifier: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("couldn't build verifier: %w", err)
	}
	return v, nil
}

// ParseVerifierKey parses an Ed25519 note vkey string and returns its key
// name and public key. It checks the key hash, like [note.NewVerifier].
func ParseVerifierKey(vkey string) (name string, pub ed25519.PublicKey, err error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", nil, fmt.Errorf("couldn't parse verifier key: %w", err)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algEd25519 {
		return "", nil, errors.New("couldn't parse verifier key: not an Ed25519 key")
	}
	return name, ed25519.PublicKey(key[1:]), nil
}

// keyHash is the signed-note key ID: the first four bytes of
// SHA-256(name || "\n" || key), big-endian.
func keyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}
