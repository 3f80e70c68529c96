package monitor

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/log"
)

// EvidenceError is the error of a [Monitor.Step] that caught the ledger
// misbehaving. It wraps [ErrFork] (which [ErrRollback] wraps too) or
// [ErrInconsistent], says what happened in plain words, and names the
// directory where the monitor saved what proves it: the signed checkpoints
// involved, the policy, the proof or leaves the ledger served, and a
// README.txt that explains them.
type EvidenceError struct {
	// Err is ErrFork, ErrRollback or ErrInconsistent.
	Err error
	// Reason says what the ledger did.
	Reason string
	// Dir is the evidence directory, "" if it could not be saved (SaveErr
	// says why).
	Dir string
	// Files are the paths of the evidence files.
	Files []string
	// SaveErr is why the evidence could not be saved, when Dir is "".
	SaveErr error
}

func (e *EvidenceError) Error() string {
	if e.Dir == "" {
		return fmt.Sprintf("%v: %s (couldn't save the evidence: %v)", e.Err, e.Reason, e.SaveErr)
	}
	return fmt.Sprintf("%v: %s (evidence in %s)", e.Err, e.Reason, e.Dir)
}

func (e *EvidenceError) Unwrap() error { return e.Err }

// evidenceFile is one file of an evidence directory.
type evidenceFile struct {
	name string
	data []byte
}

// Names of evidence files.
const (
	keptFile    = "kept.checkpoint"
	servedFile  = "served.checkpoint"
	policyFile  = "policy.txt"
	proofFile   = "consistency.proof"
	leavesFile  = "leaves.txt"
	rangeFile   = "compact-range.txt"
	readmeFile  = "README.txt"
	maxRenaming = 100
)

// writeEvidence saves files in a new directory of stateDir/evidence named
// after the time, kind and tree size, atomically: the directory appears
// whole or not at all. It returns the directory and the files' paths.
func writeEvidence(stateDir string, now time.Time, kind Kind, size uint64, files []evidenceFile) (string, []string, error) {
	root := filepath.Join(stateDir, evidenceDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp(root, ".tmp-")
	if err != nil {
		return "", nil, err
	}
	defer os.RemoveAll(tmp) // after a successful rename, a no-op
	for _, f := range files {
		if err := writeSynced(filepath.Join(tmp, f.name), f.data); err != nil {
			return "", nil, err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", nil, err
	}
	base := filepath.Join(root, fmt.Sprintf("%s-%s-%d", now.UTC().Format("20060102T150405Z"), kind, size))
	dir := base
	for i := 2; ; i++ {
		err := os.Rename(tmp, dir)
		if err == nil {
			break
		}
		if _, statErr := os.Stat(dir); statErr != nil || i > maxRenaming {
			return "", nil, err
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	if err := syncDir(root); err != nil {
		return "", nil, err
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f.name)
	}
	return dir, paths, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Sync(), f.Close())
}

// formatProof writes a consistency proof as text: "from N", "to M", then
// one base64 hash per line.
func formatProof(from, to uint64, p []log.Hash) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "from %d\nto %d\n", from, to)
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	return []byte(b.String())
}

// formatLeaves writes leaves as text: "start N", then one base64 leaf per
// line.
func formatLeaves(start uint64, leaves [][]byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "start %d\n", start)
	for _, v := range leaves {
		b.WriteString(base64.StdEncoding.EncodeToString(v) + "\n")
	}
	return []byte(b.String())
}

// formatRange writes a compact range of leaves [0, end) as text: "end N",
// then one base64 subtree hash per line, left to right.
func formatRange(end uint64, hashes [][]byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "end %d\n", end)
	for _, h := range hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	return []byte(b.String())
}

// verifyHint tells how to check the checkpoints among files.
func verifyHint(files []evidenceFile) string {
	var b strings.Builder
	b.WriteString("Each checkpoint carries the log's signature and the witnesses' cosignatures;\n" +
		"check them against the policy with:\n\n")
	for _, f := range files {
		if strings.HasSuffix(f.name, ".checkpoint") {
			fmt.Fprintf(&b, "\tvitalproof verify checkpoint --policy %s %s\n", policyFile, f.name)
		}
	}
	return b.String()
}
