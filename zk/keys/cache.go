package keys

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
)

// SetupFunc makes keys for a compiled circuit named id: [DevSetup], or a
// function that finishes a ceremony.
type SetupFunc func(ctx context.Context, cs constraint.ConstraintSystem, id string) (*Keys, error)

// Cache keeps keys in Dir, one subdirectory per circuit named by the hex
// SHA-256 of its constraint system ([CircuitHash]), so that keys for large
// circuits are made once. Processes may share a cache: a directory appears
// whole or not at all, and when two processes make the same keys the first
// one saved wins.
type Cache struct {
	Dir string
}

// dirFor returns the directory that holds, or would hold, cs's keys.
func (c *Cache) dirFor(cs constraint.ConstraintSystem) (string, error) {
	h, err := CircuitHash(cs)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.Dir, hex.EncodeToString(h[:])), nil
}

// Get returns the cached keys of cs, the compiled circuit named id, after
// checking them against cs; if there are none it makes them with setup and
// saves them first.
func (c *Cache) Get(ctx context.Context, cs constraint.ConstraintSystem, id string, setup SetupFunc) (*Keys, error) {
	dir, err := c.dirFor(cs)
	if err != nil {
		return nil, err
	}
	k, err := Load(ctx, dir, cs)
	if err == nil {
		slog.DebugContext(ctx, "loaded cached keys", "circuit", id, "dir", dir, "unsafe", k.Unsafe())
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("couldn't load cached keys for %s: %w", id, err)
	}
	k, err = setup(ctx, cs, id)
	if err != nil {
		return nil, err
	}
	if err := Save(ctx, dir, k); err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("couldn't cache keys for %s: %w", id, err)
		}
		// Another process saved keys for the same circuit first: use them,
		// so that every prover of the cache shares one verifying key.
		return Load(ctx, dir, cs)
	}
	slog.InfoContext(ctx, "cached new keys", "circuit", id, "dir", dir, "unsafe", k.Unsafe())
	return k, nil
}

// CompileFunc compiles a circuit.
type CompileFunc func() (constraint.ConstraintSystem, error)

// Compiled returns the constraint system of the circuit named id from the
// cache, or compiles it with compile and caches it. Compiling the largest
// circuits takes longer, and much more memory, than reading them back; a
// prover that loads its constraint system from the cache never holds the
// compiler's peak. The cached file is trusted like the keys beside it: keep
// the cache directory writable by the prover only. Circuit IDs name the
// constraint design's version (package zk/circuit), so a new design is a
// new file.
func (c *Cache) Compiled(ctx context.Context, id string, compile CompileFunc) (constraint.ConstraintSystem, error) {
	name := filepath.Join(c.Dir, "cs", strings.NewReplacer("/", "_", "+", "-").Replace(id)+".r1cs")
	if f, err := os.Open(name); err == nil {
		defer f.Close()
		cs := groth16.NewCS(ecc.BN254)
		if _, err := cs.ReadFrom(bufio.NewReaderSize(f, 1<<20)); err != nil {
			return nil, fmt.Errorf("couldn't read cached constraint system of %s: %w", id, err)
		}
		return cs, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("couldn't read cached constraint system of %s: %w", id, err)
	}
	cs, err := compile()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".cs-*")
	if err != nil {
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := cs.WriteTo(w); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	if err := errors.Join(w.Flush(), tmp.Sync(), tmp.Close()); err != nil {
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return nil, fmt.Errorf("couldn't cache constraint system of %s: %w", id, err)
	}
	return cs, nil
}
