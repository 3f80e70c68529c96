package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// MaxProofLines is the most consistency-proof lines an add-checkpoint request
// may carry (c2sp.org/tlog-witness: "The client MUST NOT send more than 63").
const MaxProofLines = 63

// Errors of the add-checkpoint checks. The handler maps each to one status
// code in [Witness.serveAddCheckpoint]; their messages are the response
// bodies, so they never echo the request.
var (
	errMalformed     = errors.New("malformed add-checkpoint request")
	errUnknownLog    = errors.New("unknown log")
	errForbidden     = errors.New("checkpoint is not signed by a trusted log key")
	errBadCheckpoint = errors.New("malformed checkpoint")
	errOldTooLarge   = errors.New("old size is larger than the checkpoint size")
	errProof         = errors.New("consistency proof does not verify")
)

// conflictError is a 409: the request contradicts the last checkpoint the
// witness cosigned for the log, whose size is size. fork is set when the
// checkpoint has that very size but another root hash.
type conflictError struct {
	size uint64
	fork bool
}

func (e *conflictError) Error() string {
	if e.fork {
		return "checkpoint has the size of the last cosigned checkpoint but another root hash"
	}
	return "old size is not the size of the last cosigned checkpoint"
}

// request is a parsed add-checkpoint body.
type request struct {
	oldSize uint64
	proof   [][]byte // SHA-256 hashes, 32 bytes each
	note    []byte   // the signed checkpoint, not yet verified
}

// parseRequest parses an add-checkpoint body (c2sp.org/tlog-witness):
//
//	old <size>\n
//	<base64 hash>\n      (zero to MaxProofLines times)
//	\n
//	<signed checkpoint>
//
// It is strict: the size must be canonical decimal below 2^63 and each hash
// canonical base64 of 32 bytes. It checks nothing about the note beyond its
// presence; [note.Open] does that. Every error is errMalformed.
func parseRequest(body []byte) (*request, error) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok || len(signed) == 0 {
		return nil, errMalformed
	}
	lines := strings.Split(string(head), "\n")
	size, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return nil, errMalformed
	}
	old, ok := parseSize(size)
	if !ok {
		return nil, errMalformed
	}
	lines = lines[1:]
	if len(lines) > MaxProofLines {
		return nil, errMalformed
	}
	r := &request{oldSize: old, note: signed, proof: make([][]byte, 0, len(lines))}
	for _, l := range lines {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return nil, errMalformed
		}
		r.proof = append(r.proof, h)
	}
	return r, nil
}

// parseSize parses a tree size: canonical decimal (no sign, no leading
// zero) at most math.MaxInt64, the bound of tlog and torchwood sizes.
func parseSize(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt64 || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

// formatRequest is the inverse of parseRequest.
func formatRequest(oldSize uint64, proof [][32]byte, signedCheckpoint []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(signedCheckpoint)
	return b.Bytes()
}

// state is what the witness keeps per log: the last checkpoint it cosigned.
// Before the first cosignature it is the empty tree, with no note.
type state struct {
	size uint64
	root [32]byte
	// note is the signed checkpoint as served to monitors: the checkpoint,
	// the log signatures that verified and the witness's cosignature.
	note []byte
}

// emptyRoot is the RFC 6962 hash of the empty tree, the state of a log the
// witness never cosigned.
var emptyRoot = [32]byte(rfc6962.DefaultHasher.EmptyRoot())

// Kinds of evidence of misbehaviour, as stored in the evidence table.
const (
	// EvidenceFork is a checkpoint signed by the log with the size of the
	// checkpoint the witness last cosigned but another root hash: with the
	// stored cosigned checkpoint, proof of a split view.
	EvidenceFork = "fork"
	// EvidenceInconsistent is a checkpoint signed by the log, larger than
	// the last cosigned one, sent with a consistency proof that does not
	// verify. The log must then produce a valid proof between the two
	// checkpoints, or it has forked.
	EvidenceInconsistent = "inconsistent"
)

// check decides whether a request for a checkpoint of (size, root), signed by
// the log and with old size old, extends known, the witness's state. It
// returns nil when the witness may cosign; errOldTooLarge, *conflictError or
// errProof otherwise. evidence is the kind of evidence of misbehaviour the
// refusal shows, if any.
//
// The order follows c2sp.org/tlog-witness, except that a checkpoint with the
// known size and another root is a fork (409 and evidence) whatever its old
// size says, since the two signed checkpoints prove it on their own.
func check(known state, old, size uint64, root [32]byte, proofHashes [][]byte) (evidence string, err error) {
	if old > size {
		return "", errOldTooLarge
	}
	if size == known.size && root != known.root {
		return EvidenceFork, &conflictError{size: known.size, fork: true}
	}
	if old != known.size {
		return "", &conflictError{size: known.size}
	}
	// VerifyConsistency also requires an empty proof when old is 0 or when
	// the sizes are equal.
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, proofHashes, known.root[:], root[:]); err != nil {
		if old > 0 && old < size {
			return EvidenceInconsistent, errProof
		}
		return "", errProof
	}
	return "", nil
}
