package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vitalproof/vitalproof/zk/keys"
)

// KeyStore finds verifying keys by fingerprint, the SHA-256 of the key's
// encoding that bundles name ([keys.Fingerprint]).
type KeyStore interface {
	// VerifyingKey returns the verifying key whose fingerprint is fp, with
	// its metadata, or an error wrapping [ErrUnknownKey] if there is none.
	VerifyingKey(ctx context.Context, fp [32]byte) (*keys.Keys, error)
}

// KeyDir is a [KeyStore] over a directory of key directories as package
// zk/keys saves them (metadata.json and verifying.key; proving.key is not
// needed): the directory itself, if it holds keys, and each of its
// immediate subdirectories that does. A [keys.Cache] directory is one, and
// so is a directory to which a regulator copied published verifying keys.
type KeyDir struct {
	dir  string
	dirs map[[32]byte]string
}

// OpenKeyDir indexes the keys in dir by fingerprint. Subdirectories without
// metadata are skipped, and so, with a warning logged, are those whose
// metadata does not parse; where two hold the same fingerprint, the first
// in name order wins. Each key is read, and checked against its metadata's
// fingerprint, when [KeyDir.VerifyingKey] is asked for it.
func OpenKeyDir(ctx context.Context, dir string) (*KeyDir, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't open key directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("couldn't open key directory: %w", err)
	}
	kd := &KeyDir{dir: dir, dirs: map[[32]byte]string{}}
	candidates := []string{dir}
	for _, e := range ents {
		if e.IsDir() {
			candidates = append(candidates, filepath.Join(dir, e.Name()))
		}
	}
	for _, d := range candidates {
		m, err := keys.ReadMetadata(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			slog.WarnContext(ctx, "skipping key directory with unreadable metadata", "dir", d, "err", err)
			continue
		}
		raw, err := hex.DecodeString(m.VerifyingKeySHA256)
		if err != nil || len(raw) != 32 {
			continue // ReadMetadata checks this
		}
		fp := [32]byte(raw)
		if _, ok := kd.dirs[fp]; !ok {
			kd.dirs[fp] = d
		}
	}
	return kd, nil
}

// Len returns the number of distinct verifying keys in the directory.
func (kd *KeyDir) Len() int { return len(kd.dirs) }

// VerifyingKey implements [KeyStore].
func (kd *KeyDir) VerifyingKey(ctx context.Context, fp [32]byte) (*keys.Keys, error) {
	d, ok := kd.dirs[fp]
	if !ok {
		return nil, fmt.Errorf("%w: %x is not in %s", ErrUnknownKey, fp, kd.dir)
	}
	k, err := keys.LoadVerifyingKey(ctx, d)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// KeysFor returns a [KeyStore] of exactly ks, held in memory: for a gateway
// that verifies the bundles it builds with its own keys, and for tests.
func KeysFor(ks ...*keys.Keys) KeyStore { return memKeys(ks) }

type memKeys []*keys.Keys

func (m memKeys) VerifyingKey(ctx context.Context, fp [32]byte) (*keys.Keys, error) {
	for _, k := range m {
		if got, err := keys.Fingerprint(k.VK); err == nil && got == fp {
			return &keys.Keys{Meta: k.Meta, VK: k.VK}, nil
		}
	}
	return nil, fmt.Errorf("%w: %x", ErrUnknownKey, fp)
}
