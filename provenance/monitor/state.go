package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vitalproof/vitalproof/log"
)

// The state directory's layout.
const (
	// stateName is the monitor's state: the last checkpoint kept, the
	// compact range of the leaves verified so far and the device facts.
	stateName = "state.json"
	// historyDir holds every checkpoint kept, one file per tree size.
	historyDir = "checkpoints"
	// evidenceDir holds one directory per misbehaviour found.
	evidenceDir = "evidence"

	stateVersion = 1
	// maxStateSize bounds the state file: the device facts of a few
	// million devices fit.
	maxStateSize = 1 << 30
)

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// state is what the monitor keeps between runs, in state.json. Leaves
// counts the leaves downloaded, hashed into Range and applied to Devices;
// they are all verified against Checkpoint (by a consistency proof from
// their tree to it, or by its root when Leaves equals its size), so
// Leaves <= Checkpoint.Size.
type state struct {
	Version int    `json:"version"`
	Origin  string `json:"origin"`
	// Checkpoint is the last checkpoint kept, nil before the first. Its
	// note is in checkpoints/<size>.
	Checkpoint *treeRef `json:"checkpoint,omitempty"`
	Leaves     uint64   `json:"leaves"`
	// Range is the compact range of leaves [0, Leaves): the roots of its
	// perfect subtrees, left to right.
	Range   [][]byte           `json:"range"`
	Devices map[string]*device `json:"devices"`
}

// treeRef is a tree size and root hash.
type treeRef struct {
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
}

func (t *treeRef) root() log.Root { return log.Root{Size: t.Size, Hash: log.Hash(t.Root)} }

// device is what the log said so far about a device.
type device struct {
	// Registered reports whether a registration record named the device,
	// at leaf RegisteredAt, with Manufacturer and Hospital.
	Registered   bool   `json:"registered,omitempty"`
	RegisteredAt uint64 `json:"registered_at,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Hospital     string `json:"hospital,omitempty"`
	// Ended is the first event after which the device must not produce
	// readings ([EventRecalled], [EventDecommissioned]), effective at
	// EndTime (Unix seconds), logged at leaf EndIndex.
	Ended    string `json:"ended,omitempty"`
	EndTime  int64  `json:"end_time,omitempty"`
	EndIndex uint64 `json:"end_index,omitempty"`
	// ToldUnregistered reports whether the monitor reported that a leaf
	// named the device before any registration.
	ToldUnregistered bool `json:"told_unregistered,omitempty"`
}

// errCorruptState marks a state directory the monitor will not resume
// from.
var errCorruptState = errors.New("corrupt monitor state")

// loadState reads the state of dir, an empty state if there is none, and
// checks it is coherent.
func loadState(dir string) (*state, error) {
	b, err := readFileLimit(filepath.Join(dir, stateName), maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{Version: stateVersion, Devices: map[string]*device{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read monitor state: %w", err)
	}
	st, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateName), err)
	}
	if st.Checkpoint != nil {
		signed, err := readFileLimit(historyPath(dir, st.Checkpoint.Size), MaxCheckpointSize)
		if err != nil {
			return nil, fmt.Errorf("%w: couldn't read the last checkpoint kept: %v", errCorruptState, err)
		}
		r, _, err := noteRoot(signed)
		if err != nil || r != st.Checkpoint.root() {
			return nil, fmt.Errorf("%w: %s is not the checkpoint the state names", errCorruptState, historyPath(dir, st.Checkpoint.Size))
		}
	}
	return st, nil
}

// parseState parses state.json and checks that it is coherent: the
// compact range has the shape of Leaves leaves and, when they are the
// whole tree of the checkpoint, its root.
func parseState(b []byte) (*state, error) {
	var st state
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptState, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCorruptState, st.Version, stateVersion)
	}
	if st.Devices == nil {
		st.Devices = map[string]*device{}
	}
	for id, d := range st.Devices {
		if d == nil {
			return nil, fmt.Errorf("%w: device %q without facts", errCorruptState, id)
		}
	}
	if st.Checkpoint == nil {
		if st.Leaves != 0 || len(st.Range) != 0 || st.Origin != "" {
			return nil, fmt.Errorf("%w: leaves without a checkpoint", errCorruptState)
		}
		return &st, nil
	}
	if len(st.Checkpoint.Root) != len(log.Hash{}) || st.Origin == "" {
		return nil, fmt.Errorf("%w: malformed checkpoint", errCorruptState)
	}
	if st.Leaves > st.Checkpoint.Size {
		return nil, fmt.Errorf("%w: %d leaves for a checkpoint of %d", errCorruptState, st.Leaves, st.Checkpoint.Size)
	}
	rng, err := st.compactRange()
	if err != nil {
		return nil, err
	}
	if st.Leaves == st.Checkpoint.Size && rootOf(rng) != st.Checkpoint.root() {
		return nil, fmt.Errorf("%w: the leaves' root is not the checkpoint's", errCorruptState)
	}
	return &st, nil
}

// compactRange returns st's compact range.
func (st *state) compactRange() (*compact.Range, error) {
	for _, h := range st.Range {
		if len(h) != len(log.Hash{}) {
			return nil, fmt.Errorf("%w: malformed compact range", errCorruptState)
		}
	}
	rng, err := rangeFactory.NewRange(0, st.Leaves, st.Range)
	if err != nil {
		return nil, fmt.Errorf("%w: compact range: %v", errCorruptState, err)
	}
	return rng, nil
}

// rootOf returns the tree of the leaves of rng, which begins at 0.
func rootOf(rng *compact.Range) log.Root {
	h, err := rng.GetRootHash(nil)
	if err != nil || h == nil {
		return log.Root{Size: rng.End(), Hash: log.EmptyRoot}
	}
	return log.Root{Size: rng.End(), Hash: log.Hash(h)}
}

// save writes st to dir atomically.
func (st *state) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("couldn't save monitor state: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, stateName), b); err != nil {
		return fmt.Errorf("couldn't save monitor state: %w", err)
	}
	return nil
}

// historyPath is where the checkpoint of tree size size is kept.
func historyPath(dir string, size uint64) string {
	return filepath.Join(dir, historyDir, strconv.FormatUint(size, 10))
}

// readHistory returns the checkpoint kept for tree size size, nil if none.
func readHistory(dir string, size uint64) ([]byte, error) {
	b, err := readFileLimit(historyPath(dir, size), MaxCheckpointSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the checkpoint kept for tree size %d: %w", size, err)
	}
	return b, nil
}

// readFileLimit reads a file of at most limit bytes.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, synced and then renamed over path, so that a crash leaves
// either the old file or the new one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	_, err = tmp.Write(b)
	if err = errors.Join(err, tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
