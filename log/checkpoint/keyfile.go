package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxKeyFileSize bounds a key file: a note private key string is about 100
// bytes.
const maxKeyFileSize = 4096

// LoadOrCreateKey returns the Signer for the private key kept in the file at
// path and its verifier key string. If the file does not exist it first
// creates it, with mode 0600, holding a new key for origin.
//
// The file holds the note private key string (see [GenerateKey]) and a
// newline. It is refused if it is readable or writable by group or others,
// or if its key is for another origin than origin. Creation is atomic: two
// processes racing to create the file end up with the same key.
func LoadOrCreateKey(path, origin string) (*Signer, string, error) {
	if !validOrigin(origin) {
		return nil, "", fmt.Errorf("couldn't load checkpoint key: %w", errBadOrigin)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path, origin); err != nil {
			return nil, "", err
		}
	}
	s, err := loadKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	if s.Origin() != origin {
		return nil, "", fmt.Errorf("couldn't load checkpoint key: %s holds the key of origin %q, not %q", path, s.Origin(), origin)
	}
	return s, s.VerifierKey(), nil
}

func loadKeyFile(path string) (*Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("couldn't load checkpoint key: %s is accessible by group or others (mode %#o); chmod 600 it", path, perm)
	}
	if info.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("couldn't load checkpoint key: %s is too large for a key file", path)
	}
	b := make([]byte, info.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint key: %w", err)
	}
	s, err := NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// createKeyFile writes a new key for origin to path unless path exists by
// then: the key goes to a temporary file that is hard-linked into place, so
// readers never see a partial file and a concurrent creator's key wins.
func createKeyFile(path, origin string) error {
	skey, _, err := GenerateKey(origin)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".checkpoint-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	if _, err := tmp.WriteString(skey + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("couldn't create checkpoint key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the new name durable
		d.Close()
	}
	return nil
}
