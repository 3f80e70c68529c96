package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey returns a new witness key named name: skey, the private key
// to keep in the witness's key file, and vkey, the cosignature/v1 verifier
// key (type 0x04) to publish in the consortium's policy as
// "witness <name> <vkey> <url>".
//
// skey is a signed-note Ed25519 private key, the format of [note.GenerateKey]
// (PRIVATE+KEY+<name>+<key hash>+<key>), which other witnesses
// (transparency-dev/witness) also read; [NewSigner] turns it into a
// cosigner. Its key signs only cosignatures, which c2sp.org/tlog-cosignature
// domain-separates from ordinary note signatures.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, _, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate witness key: %w", err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		return "", "", err
	}
	return skey, s.Verifier().String(), nil
}

// NewSigner returns the cosignature/v1 signer for a witness private key in
// the format of [GenerateKey]. Surrounding white space is ignored. Errors
// never include the key.
func NewSigner(skey string) (*torchwood.CosignatureSigner, error) {
	skey = strings.TrimSpace(skey)
	// note.NewSigner checks the format, the algorithm and the key hash.
	ns, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse witness key: %w", err)
	}
	// The key is the fifth field (base64 may contain '+'): the algorithm
	// byte (1, Ed25519) and the 32-byte seed.
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return nil, errors.New("couldn't parse witness key: not a signed-note private key")
	}
	key, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return nil, errors.New("couldn't parse witness key: not an Ed25519 signed-note private key")
	}
	s, err := torchwood.NewCosignatureSigner(ns.Name(), ed25519.NewKeyFromSeed(key[1:]))
	if err != nil {
		return nil, fmt.Errorf("couldn't make cosigner: %w", err)
	}
	return s, nil
}
