// Package receipt formats and verifies the ledger's receipts: offline proofs
// that an entry is in the log, in the C2SP tlog-proof format
// (c2sp.org/tlog-proof@v1), with the entry itself as the extra data.
//
// A receipt for the entry at index 5 of a tree of 8 leaves looks like this:
//
//	c2sp.org/tlog-proof@v1
//	extra <base64 of the entry's canonical bytes>
//	index 5
//	<base64 RFC 6962 inclusion proof hash, leaf to root, one per line>
//	...
//
//	<signed (and possibly cosigned) checkpoint, see package log/checkpoint>
//
// The leaf whose inclusion is proved is the RFC 6962 leaf hash of the extra
// data, so a receipt verifies alone: [Verify] needs only the receipt and a
// tlog-policy (c2sp.org/tlog-policy) naming the log's key and, once the log
// is witnessed, its witnesses and quorum. [Policy] writes the policy of a log
// without witnesses.
//
// Formatting and verification use filippo.io/torchwood, so the receipts
// interoperate with other tlog-proof tools. Verify is strict: it accepts only
// what [Format] produces (canonical numbers and base64, at most 63 proof
// hashes, the extra line present) and it reports which check failed; when
// the checkpoint fails the policy, it says what is missing (see package
// log/quorum).
package receipt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/quorum"
)

const (
	header = "c2sp.org/tlog-proof@v1"

	// MaxSize bounds a receipt Verify accepts: an entry, 63 proof hashes
	// and a checkpoint with a few dozen cosignatures fit well within it.
	MaxSize = 64 << 10
	// maxProofHashes is the longest inclusion proof in a tree of at most
	// 2^63 leaves.
	maxProofHashes = 63
)

// Errors of [Verify], one per step; the returned errors wrap exactly one of
// them and add detail that never includes the entry.
var (
	// ErrMalformedPolicy: the policy text does not parse. It is
	// [quorum.ErrMalformedPolicy].
	ErrMalformedPolicy = quorum.ErrMalformedPolicy
	// ErrMalformedReceipt: the receipt is not a well-formed tlog-proof with
	// extra data.
	ErrMalformedReceipt = errors.New("malformed receipt")
	// ErrCheckpoint: the checkpoint does not parse or its signatures do not
	// satisfy the policy (wrong or unknown log key, origin, missing or bad
	// cosignatures); the error says which, as [quorum.Report.Reason] does.
	ErrCheckpoint = errors.New("checkpoint does not satisfy the policy")
	// ErrInclusion: the checkpoint is good but the proof does not show the
	// entry at that index in its tree.
	ErrInclusion = errors.New("entry inclusion does not verify")
)

// Policy returns the tlog-policy text for a log with verifier key logVkey
// and no witnesses: the log's signature alone is enough.
func Policy(logVkey string) []byte {
	return []byte("log " + logVkey + "\nquorum none\n")
}

// Format returns the receipt for entry at index in the tree of the signed
// checkpoint signedCheckpoint, with proof its RFC 6962 inclusion proof in
// that tree.
func Format(index uint64, entry []byte, proof []log.Hash, signedCheckpoint []byte) []byte {
	p := make(tlog.RecordProof, len(proof))
	for i, h := range proof {
		p[i] = tlog.Hash(h)
	}
	return torchwood.FormatProofWithExtraData(int64(index), entry, p, signedCheckpoint)
}

// Verified is what a receipt proves, once [Verify] has checked it.
type Verified struct {
	// Index is the entry's index in the log.
	Index uint64
	// Entry is the entry's bytes, the receipt's extra data.
	Entry []byte
	// Proof is the inclusion proof of Entry at Index in the checkpoint's tree.
	Proof []log.Hash
	// TreeSize and RootHash are the tree the checkpoint commits to.
	TreeSize uint64
	RootHash log.Hash
	// Origin is the checkpoint's origin, the log's name.
	Origin string
	// Checkpoint is the signed checkpoint, as in the receipt.
	Checkpoint []byte
}

// Root returns the checkpoint's tree.
func (v *Verified) Root() log.Root { return log.Root{Size: v.TreeSize, Hash: v.RootHash} }

// Verify checks receipt against policy, a tlog-policy text, and returns what
// it proves. It checks, in order: that the policy parses, that the receipt
// is well formed, that the checkpoint's signatures satisfy the policy, and
// that the proof shows the RFC 6962 leaf hash of the entry at the index in
// the checkpoint's tree. The policy is parsed by [quorum.ParsePolicy] and
// the checkpoint verified by torchwood. The error wraps exactly one of
// [ErrMalformedPolicy], [ErrMalformedReceipt], [ErrCheckpoint] or
// [ErrInclusion].
func Verify(policy, receipt []byte) (*Verified, error) {
	qp, err := quorum.ParsePolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify receipt: %w", err) // wraps ErrMalformedPolicy
	}
	pol := qp.Torchwood()
	v, err := parse(receipt)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify receipt: %w: %v", ErrMalformedReceipt, err)
	}
	c, _, err := torchwood.VerifyCheckpoint(v.Checkpoint, pol)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify receipt: %w: %s", ErrCheckpoint, checkpointReason(qp, v.Checkpoint, err))
	}
	v.TreeSize, v.RootHash, v.Origin = uint64(c.N), log.Hash(c.Hash), c.Origin
	leaf := log.LeafHash(v.Entry)
	if v.Index >= v.TreeSize {
		return nil, fmt.Errorf("couldn't verify receipt: %w: index %d is beyond the checkpoint's tree of size %d", ErrInclusion, v.Index, v.TreeSize)
	}
	if err := log.VerifyInclusion(leaf, v.Index, v.Proof, v.Root()); err != nil {
		return nil, fmt.Errorf("couldn't verify receipt: %w: %v", ErrInclusion, err)
	}
	// The same check by torchwood's own parser, so that what passes here
	// passes other tlog-proof verifiers too.
	if err := torchwood.VerifyProof(pol, tlog.Hash(leaf), receipt); err != nil {
		var rerr *torchwood.VerifyRecordError
		if errors.As(err, &rerr) {
			return nil, fmt.Errorf("couldn't verify receipt: %w: %v", ErrInclusion, err)
		}
		return nil, fmt.Errorf("couldn't verify receipt: %w: %v", ErrMalformedReceipt, err)
	}
	return v, nil
}

// checkpointReason says why signedCheckpoint fails pol, whose verification
// by torchwood returned verr: the quorum report's reason (which keys did not
// sign, which group lacks which witnesses), or why the checkpoint does not
// parse. It wraps no error, so that Verify's errors wrap only ErrCheckpoint.
func checkpointReason(pol *quorum.Policy, signedCheckpoint []byte, verr error) string {
	r, err := pol.Check(signedCheckpoint)
	switch {
	case r != nil && !r.Satisfied:
		return r.Reason()
	case err != nil:
		return err.Error()
	}
	// Unreachable: the report's verdict is torchwood's.
	return verr.Error()
}

// parse splits a receipt into its parts without verifying anything. It
// accepts only the canonical encoding Format produces.
func parse(receipt []byte) (*Verified, error) {
	if len(receipt) > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	rest := receipt
	line := func() ([]byte, bool) {
		l, r, ok := bytes.Cut(rest, []byte("\n"))
		rest = r
		return l, ok
	}
	if l, ok := line(); !ok || string(l) != header {
		return nil, errors.New("missing c2sp.org/tlog-proof@v1 header")
	}
	l, ok := line()
	b64, isExtra := bytes.CutPrefix(l, []byte("extra "))
	if !ok || !isExtra {
		return nil, errors.New("missing extra line")
	}
	entry, err := decodeBase64(b64)
	if err != nil {
		return nil, errors.New("extra is not canonical base64")
	}
	l, ok = line()
	num, isIndex := bytes.CutPrefix(l, []byte("index "))
	if !ok || !isIndex {
		return nil, errors.New("missing index line")
	}
	index, err := strconv.ParseUint(string(num), 10, 63)
	if err != nil || strconv.FormatUint(index, 10) != string(num) {
		return nil, errors.New("index is not a canonical decimal number")
	}
	var proof []log.Hash
	for {
		l, ok := line()
		if !ok {
			return nil, errors.New("missing blank line before the checkpoint")
		}
		if len(l) == 0 {
			break
		}
		if len(proof) == maxProofHashes {
			return nil, fmt.Errorf("more than %d proof hashes", maxProofHashes)
		}
		h, err := decodeBase64(l)
		if err != nil || len(h) != len(log.Hash{}) {
			return nil, fmt.Errorf("proof hash %d is not canonical base64 of 32 bytes", len(proof))
		}
		proof = append(proof, log.Hash(h))
	}
	if len(rest) == 0 {
		return nil, errors.New("missing checkpoint")
	}
	return &Verified{Index: index, Entry: entry, Proof: proof, Checkpoint: bytes.Clone(rest)}, nil
}

// decodeBase64 decodes standard padded base64 and refuses any other
// encoding of the same bytes (stray bits, ignored newlines).
func decodeBase64(s []byte) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(string(s))
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != string(s) {
		return nil, errors.New("non-canonical base64")
	}
	return b, nil
}
