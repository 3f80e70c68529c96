package provenance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// apiKeyPrefix marks VitalProof API keys so that secret scanners can find them.
const apiKeyPrefix = "vpk_"

// NewAPIKey returns a fresh random API key and the hash to store.
func NewAPIKey() (key string, hash [32]byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", hash, fmt.Errorf("couldn't draw API key: %w", err)
	}
	key = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns the stored form of an API key. Keys are 256-bit random
// strings, so a plain SHA-256 is enough: no password hashing is needed.
func HashAPIKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }
