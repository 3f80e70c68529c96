package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vitalproof/vitalproof/zk/keys"
)

// VerifyingKey is a Groth16 verifying key of an audit circuit as the ledger
// serves it to regulators: the files of a key directory (package zk/keys)
// without the proving key.
type VerifyingKey struct {
	// Fingerprint is the lowercase hex SHA-256 of Key.
	Fingerprint string
	Meta        keys.Metadata
	// Metadata is metadata.json as saved; Key is verifying.key.
	Metadata []byte
	Key      []byte
}

// VerifyingKeys lists the verifying keys in the ledger's
// VerifyingKeysDir, sorted by fingerprint, without their Key bytes.
func (l *Ledger) VerifyingKeys(ctx context.Context) ([]VerifyingKey, error) {
	vks, err := l.readVerifyingKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range vks {
		vks[i].Key = nil
	}
	return vks, nil
}

// VerifyingKey returns the verifying key with a fingerprint.
func (l *Ledger) VerifyingKey(ctx context.Context, fingerprint string) (VerifyingKey, error) {
	if len(fingerprint) != 2*sha256.Size || strings.ToLower(fingerprint) != fingerprint {
		return VerifyingKey{}, invalid("fingerprint", "must be the lowercase hex SHA-256 of a verifying key")
	}
	if _, err := hex.DecodeString(fingerprint); err != nil {
		return VerifyingKey{}, invalid("fingerprint", "must be the lowercase hex SHA-256 of a verifying key")
	}
	vks, err := l.readVerifyingKeys(ctx)
	if err != nil {
		return VerifyingKey{}, err
	}
	for _, vk := range vks {
		if vk.Fingerprint == fingerprint {
			return vk, nil
		}
	}
	return VerifyingKey{}, errorf(KindNotFound, "fingerprint", "no verifying key with this fingerprint")
}

// readVerifyingKeys reads every key directory under VerifyingKeysDir (a
// directory of key directories, such as a zk/keys cache). A directory
// whose verifying key does not match its metadata's fingerprint is
// skipped and logged: it is never served.
func (l *Ledger) readVerifyingKeys(ctx context.Context) ([]VerifyingKey, error) {
	if l.cfg.VerifyingKeysDir == "" {
		return nil, nil
	}
	dirs, err := os.ReadDir(l.cfg.VerifyingKeysDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, internal("list verifying keys", err)
	}
	var out []VerifyingKey
	for _, d := range dirs {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		vk, err := readVerifyingKey(filepath.Join(l.cfg.VerifyingKeysDir, d.Name()))
		if err != nil {
			l.log.WarnContext(ctx, "not serving a verifying key", "dir", d.Name(), "err", err)
			continue
		}
		out = append(out, vk)
	}
	slices.SortFunc(out, func(a, b VerifyingKey) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out, nil
}

func readVerifyingKey(dir string) (VerifyingKey, error) {
	meta, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return VerifyingKey{}, err
	}
	m, err := keys.ParseMetadata(meta)
	if err != nil {
		return VerifyingKey{}, err
	}
	key, err := os.ReadFile(filepath.Join(dir, "verifying.key"))
	if err != nil {
		return VerifyingKey{}, err
	}
	sum := sha256.Sum256(key)
	fp := hex.EncodeToString(sum[:])
	if fp != m.VerifyingKeySHA256 {
		return VerifyingKey{}, fmt.Errorf("verifying.key has SHA-256 %s, metadata says %s", fp, m.VerifyingKeySHA256)
	}
	return VerifyingKey{Fingerprint: fp, Meta: *m, Metadata: meta, Key: key}, nil
}
