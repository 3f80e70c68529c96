// Package audit is VitalProof's offline audit bundle (a .vpaudit file): one
// file with which a regulator checks, with no network, that a statement
// about the hidden readings of one device and metric over a period holds,
// that the readings were committed to by a registered device and logged,
// and that no logged batch of the period was left out. A bundle holds no
// reading, salt or patient identifier: only the public entries, proofs of
// their inclusion in the log, the device's registration record, a signed
// checkpoint and a Groth16 proof.
//
// [Build] assembles a bundle from its parts (a gateway's audit job has the
// statement, its proof and the entries, and gets the registration record,
// the brackets and the inclusion proofs from the ledger); [Parse] reads one
// strictly; [Verify] checks one against a tlog-policy and a [KeyStore] of
// verifying keys. The format is specified below and, with an example, in
// FORMAT.md beside this file.
//
// # Format (vitalproof/audit-bundle/v1)
//
// A bundle is text: header lines, each ending in a newline, then a blank
// line, then the signed checkpoint (c2sp.org/tlog-checkpoint, with its
// cosignatures) verbatim to the end of the file:
//
//	vitalproof/audit-bundle/v1
//	statement <parts>
//	device <device ID>
//	metric <metric code>
//	period <start> <end>
//	<one parameter line per part, in this order, only for the parts present:>
//	range <lo> <hi>
//	tir <lo> <hi> <percent>
//	adherence <min days>
//	mean <bound>
//	max <bound>
//	circuit <circuit ID>
//	vk <base64 verifying key fingerprint>
//	keys <development|ceremony>
//	proof <base64 of the proof's encoding>
//	registration <index> <base64 record> [<base64 hash>...]
//	before none | before <index> <base64 entry> [<base64 hash>...]
//	entry <index> <base64 entry> [<base64 hash>...]     (one or more)
//	after head | after <index> <base64 entry> [<base64 hash>...]
//
//	<signed checkpoint>
//
// Fields are separated by single spaces. <parts> is a [statement.Kind] in
// its canonical form ("range+tir"); the parameters are the statement's, in
// the metric's fixed-point encoding, as decimal numbers without leading
// zeros, like the period's bounds (Unix seconds, end exclusive). The circuit
// ID names the circuit and its capacity (package zk/circuit, e.g.
// "vitalproof/audit/v1/range+tir/24x60"); vk is the SHA-256 fingerprint of
// the verifying key (package zk/keys); keys says whether those keys come
// from a development setup (UNSAFE FOR PRODUCTION) or a ceremony; proof is
// the base64 of the proof's encoding (package zk/prove), which names the
// same circuit and fingerprint. Base64 is standard with padding.
//
// Each leaf line carries a log leaf: its index in the checkpoint's tree,
// the base64 of its bytes and its RFC 6962 inclusion proof in that tree
// (at most 63 hashes, leaf to root). The registration line holds the
// device's registration record ([wearables.Registration]); the entry lines
// hold the statement's entries ([wearables.EntryHeader]) in chain order; the
// before line holds the entry just before the first ("none" when the first
// entry is its chain's first, seq 1); the after line holds the entry just
// after the last, or says "head": the last entry is claimed to be its
// chain's head at the checkpoint (see Completeness). Every leaf is proved
// against the one checkpoint at the end of the file.
//
// [Parse] accepts exactly what [Bundle.Marshal] produces: nothing else
// parses, every number and base64 string is canonical, every leaf parses as
// the record its line names, and the file is at most [MaxBundleSize] bytes
// with at most [MaxEntries] entries.
//
// # Verification
//
// [Verify] checks, in this order, each failure an error wrapping one of the
// sentinels below:
//
//  1. the bundle parses ([ErrMalformed]);
//  2. the checkpoint's signatures satisfy the tlog-policy: the log's key
//     and the witness quorum, checked with filippo.io/torchwood
//     ([ErrPolicy] if the policy does not parse, [ErrCheckpoint]);
//  3. every leaf is included in the checkpoint's tree ([ErrInclusion]);
//  4. the registration record is for the bundle's device, and signed by
//     the registrar if the caller gave the registrar's key
//     ([WithRegistrar]) ([ErrRegistration]);
//  5. every entry, brackets included, is attested by the device
//     ([ErrAttestation]) and signed by the registered key ([ErrSignature]);
//  6. completeness: the entries, brackets included, are consecutive links
//     of the device's chain for the metric, the brackets lie outside the
//     period, and a missing after-bracket is allowed only as described
//     below ([ErrIncomplete]);
//  7. the statement is well formed over the entries (windows in the period,
//     in time order, parameters in range; [ErrStatement]) and fits the
//     circuit;
//  8. a verifying key with the bundle's fingerprint is in the key store
//     ([ErrUnknownKey]), made for the bundle's circuit and labelled as the
//     bundle says ([ErrKeyMismatch]);
//  9. the Groth16 proof verifies against the public inputs recomputed from
//     the entries and the statement ([ErrProof]).
//
// The [Result] says what was proved, over which device, metric and period,
// how many entries and readings, and whether the keys are development keys,
// UNSAFE FOR PRODUCTION.
//
// # Completeness
//
// Each device signs its entries of a metric as a hash chain: seq counts from
// 1 and prev is the leaf hash of the previous entry. The bundle's entries are
// consecutive links; the before-bracket is the link just before the first
// (its window ends at or before the period's start) unless the first entry
// has seq 1, and the after-bracket is the link just after the last (its
// window starts at or after the period's end). Since a hospital cannot forge
// the device's signed links, it cannot leave out a batch of the period
// without breaking the chain, provided that the device's chain is in time
// order (each entry's window starts at or after the previous one's end),
// which the device's signature vouches for.
//
// A plain log cannot prove that no later link exists, so an after-bracket
// is required unless the period had not yet ended when the checkpoint was
// made: the earliest timestamp of the checkpoint's cosignatures (verified by
// the policy's witnesses) is before the period's end. Then the bundle may
// say "after head", and [Result.HeadClaimed] reports that completeness after
// the last entry rests on the hospital's word that it was the chain's head
// at the checkpoint, and covers entries logged up to [Result.CosignedAt]
// only. A checkpoint without cosignatures carries no time, so with it every
// bundle needs its after-bracket.
//
// Only device-attested entries can be audited: entries the hospital's
// gateway attests are signed by the hospital, the audited party, so no
// registered key vouches for their readings. They form their own chain, which
// a bundle does not cover.
package audit

import (
	"errors"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

const (
	// Magic is the first line of a bundle, its format version.
	Magic = "vitalproof/audit-bundle/v1"
	// FileExtension is the conventional name extension of bundle files.
	FileExtension = ".vpaudit"
	// MaxBundleSize bounds a bundle's encoding: 4096 entries of typical
	// size with their proofs take about 7 MiB.
	MaxBundleSize = 32 << 20
	// MaxEntries bounds the entries of a bundle.
	MaxEntries = 4096
	// MaxCheckpointSize bounds the signed checkpoint, cosignatures included.
	MaxCheckpointSize = 32 << 10
	// MaxProofHashes is the longest inclusion proof, in a tree of up to
	// 2^63 leaves.
	MaxProofHashes = 63
)

// Errors of [Verify] and [Build], one per check; returned errors wrap exactly
// one of them and add which leaf or part failed, never a reading or a salt.
var (
	// ErrMalformed: the bundle does not parse.
	ErrMalformed = errors.New("malformed audit bundle")
	// ErrPolicy: the tlog-policy does not parse.
	ErrPolicy = errors.New("malformed policy")
	// ErrCheckpoint: the checkpoint does not parse or its signatures do not
	// satisfy the policy.
	ErrCheckpoint = errors.New("checkpoint does not satisfy the policy")
	// ErrInclusion: a leaf's inclusion proof does not verify against the
	// checkpoint.
	ErrInclusion = errors.New("inclusion proof does not verify")
	// ErrRegistration: the registration record is for another device, or
	// not signed by the registrar.
	ErrRegistration = errors.New("registration record does not match")
	// ErrAttestation: an entry is not attested by the device itself.
	ErrAttestation = errors.New("entry is not device-attested")
	// ErrSignature: an entry is not signed by the registered device key.
	ErrSignature = errors.New("entry signature does not verify with the registered key")
	// ErrIncomplete: the entries are not consecutive links of the device's
	// chain bracketed around the period.
	ErrIncomplete = errors.New("entries are not complete for the period")
	// ErrStatement: the statement is not well formed over the entries or
	// does not fit the circuit.
	ErrStatement = errors.New("statement is not well formed")
	// ErrUnknownKey: no verifying key with the bundle's fingerprint.
	ErrUnknownKey = errors.New("no verifying key with the bundle's fingerprint")
	// ErrKeyMismatch: the verifying key is for another circuit, or its
	// setup is not what the bundle says.
	ErrKeyMismatch = errors.New("verifying key does not match the bundle")
	// ErrProof: the Groth16 proof does not verify.
	ErrProof = errors.New("proof does not verify")
)

// Leaf is a log leaf with its index and inclusion proof in the tree of the
// bundle's checkpoint.
type Leaf struct {
	Index uint64
	// Bytes is the leaf: an entry's or a registration record's canonical
	// bytes.
	Bytes []byte
	// Proof is the RFC 6962 inclusion proof, leaf to root.
	Proof [][32]byte
}

// Bundle is a parsed audit bundle. See the package documentation for what
// each part is.
type Bundle struct {
	Kinds  statement.Kind
	Params statement.Params
	// DeviceID and Metric (a metric code) name the chain audited.
	DeviceID string
	Metric   string
	// PeriodStart and PeriodEnd are Unix seconds, end exclusive.
	PeriodStart, PeriodEnd int64
	// Development is true when the proof's keys come from a development
	// setup (UNSAFE FOR PRODUCTION).
	Development bool
	// Proof is the Groth16 proof; it names the circuit and the verifying
	// key's fingerprint.
	Proof *prove.Proof
	// Registration is the device's registration record.
	Registration Leaf
	// Before is the entry just before the first, nil when the first entry
	// has seq 1.
	Before *Leaf
	// Entries are the statement's entries, in chain order.
	Entries []Leaf
	// After is the entry just after the last, nil for the claim that the
	// last entry is its chain's head at the checkpoint.
	After *Leaf
	// Checkpoint is the signed, possibly cosigned, checkpoint that every
	// inclusion proof is against.
	Checkpoint []byte
}

// VerifyOption configures [Verify].
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	registrar note.Verifier
}

// WithRegistrar makes [Verify] check the registration record's signature
// with v, the registrar's key. Without it, the record is trusted because the
// log includes it: only the ledger appends registration records.
func WithRegistrar(v note.Verifier) VerifyOption {
	return func(o *verifyOptions) { o.registrar = v }
}
