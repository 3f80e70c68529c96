package wearables

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// EntryHeader is the non-identifying description of one batch of readings
// that goes into the public log. It holds no reading, salt or patient.
//
// # Encoding (entry formats v1 and v2)
//
// An entry is a signed note (golang.org/x/mod/sumdb/note, C2SP signed-note)
// whose text is exactly these lines, in this order, each ending in a
// newline: ten in format v1,
//
//	vitalproof/entry/v1
//	device <device ID>
//	metric <metric code>
//	window <start> <end>
//	count <n>
//	commitment <base64 of 32 bytes>
//	seq <n>
//	prev <base64 of 32 bytes>
//	hospital <hospital ID>
//	attestation <device|gateway>
//
// and eleven in format v2, which adds the version of the firmware the
// device ran when it took the readings: its first line names v2, the next
// nine are v1's, and the firmware line comes last:
//
//	vitalproof/entry/v2
//	device <device ID>
//	metric <metric code>
//	window <start> <end>
//	count <n>
//	commitment <base64 of 32 bytes>
//	seq <n>
//	prev <base64 of 32 bytes>
//	hospital <hospital ID>
//	attestation <device|gateway>
//	firmware <firmware version>
//
// followed by a blank line and exactly one Ed25519 signature line. IDs match
// [a-z0-9][a-z0-9._-]{0,63}; numbers are decimal without leading zeros;
// window bounds are Unix seconds, end exclusive; base64 is standard with
// padding; the firmware version follows the rule of a registration's
// firmware: 1 to [MaxFirmwareLen] bytes of printable ASCII (0x20 to 0x7e)
// that neither start nor end with a space. A v1 entry has no firmware line
// and a v2 entry must have one: [EntryHeader.Body] writes v1 when Firmware
// is empty and v2 otherwise, so each header has one encoding. With
// attestation "device" the signature is the device's and its key name is
// the device ID; with "gateway" the readings were committed by the
// hospital's gateway, the signature is the hospital's and its key name is
// the hospital ID. Either way the signer vouches for the firmware version.
//
// The entry's bytes are the log leaf; its leaf hash is the RFC 6962 hash
// SHA-256(0x00 || entry) ([tlog.RecordHash]). Entries of one device and
// metric under one attestation form a hash chain, whatever their format
// versions: seq counts from 1 and prev is the leaf hash of the chain's
// previous entry (32 zero bytes for seq 1). The firmware version is header
// metadata only: it is in neither the chain key nor the commitment.
type EntryHeader struct {
	DeviceID    string
	Metric      string
	WindowStart int64
	WindowEnd   int64
	Count       int
	Commitment  [commitment.Size]byte
	Seq         uint64
	Prev        [32]byte
	Hospital    string
	Attestation Attestation
	// Firmware is the firmware version the device ran when it took the
	// readings; "" (unknown) makes a format v1 entry, any other value a
	// format v2 entry.
	Firmware string
}

// Attestation says who committed to and signed an entry's readings.
type Attestation string

const (
	// AttestDevice: the wearable itself committed and signed.
	AttestDevice Attestation = "device"
	// AttestGateway: the hospital's gateway committed and signed readings
	// that arrived without a device signature.
	AttestGateway Attestation = "gateway"
)

const (
	entryMagic   = "vitalproof/entry/v1"
	entryMagicV2 = "vitalproof/entry/v2"
	// MaxEntrySize bounds an entry's encoding.
	MaxEntrySize = 2048
	// MaxBatchReadings bounds the readings of one batch.
	MaxBatchReadings = 4096
)

var (
	errMalformedEntry = errors.New("malformed entry")
	errBadID          = errors.New("malformed ID: want [a-z0-9][a-z0-9._-]{0,63}")
)

// Signer returns the key name that must sign the entry.
func (h *EntryHeader) Signer() string {
	if h.Attestation == AttestGateway {
		return h.Hospital
	}
	return h.DeviceID
}

// ChainKey identifies the hash chain the entry belongs to.
func (h *EntryHeader) ChainKey() string {
	return h.DeviceID + "/" + h.Metric + "/" + string(h.Attestation)
}

// ValidID reports whether id is a valid device, hospital or manufacturer ID.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Check validates the header's fields on their own.
func (h *EntryHeader) Check() error {
	if !ValidID(h.DeviceID) {
		return fmt.Errorf("device: %w", errBadID)
	}
	if !ValidID(h.Hospital) {
		return fmt.Errorf("hospital: %w", errBadID)
	}
	if _, ok := MetricByCode(h.Metric); !ok {
		return errors.New("metric: unknown metric code")
	}
	if h.WindowStart < 0 || h.WindowEnd <= h.WindowStart || h.WindowEnd-h.WindowStart > commitment.MaxOffset+1 {
		return errors.New("window: end must follow start by at most 2^22 seconds")
	}
	if h.Count < 1 || h.Count > MaxBatchReadings {
		return fmt.Errorf("count: must be between 1 and %d", MaxBatchReadings)
	}
	if h.Seq < 1 {
		return errors.New("seq: must be at least 1")
	}
	if h.Seq == 1 && h.Prev != ([32]byte{}) {
		return errors.New("prev: must be zero for the first entry of a chain")
	}
	if h.Attestation != AttestDevice && h.Attestation != AttestGateway {
		return errors.New("attestation: must be device or gateway")
	}
	if h.Firmware != "" && !validText(h.Firmware, MaxFirmwareLen) {
		return fmt.Errorf("firmware: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxFirmwareLen)
	}
	return nil
}

// Body returns the canonical note text of the header: format v1 if
// Firmware is empty, v2 otherwise.
func (h *EntryHeader) Body() ([]byte, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	magic := entryMagic
	if h.Firmware != "" {
		magic = entryMagicV2
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ndevice %s\nmetric %s\nwindow %d %d\ncount %d\ncommitment %s\nseq %d\nprev %s\nhospital %s\nattestation %s\n",
		magic, h.DeviceID, h.Metric, h.WindowStart, h.WindowEnd, h.Count,
		base64.StdEncoding.EncodeToString(h.Commitment[:]), h.Seq,
		base64.StdEncoding.EncodeToString(h.Prev[:]), h.Hospital, h.Attestation)
	if h.Firmware != "" {
		fmt.Fprintf(&b, "firmware %s\n", h.Firmware)
	}
	return b.Bytes(), nil
}

// SignEntry signs h with s, whose key name must be h.Signer(), and returns
// the entry's canonical bytes.
func SignEntry(h *EntryHeader, s note.Signer) ([]byte, error) {
	if s.Name() != h.Signer() {
		return nil, fmt.Errorf("couldn't sign entry: key %q cannot sign for %q", s.Name(), h.Signer())
	}
	body, err := h.Body()
	if err != nil {
		return nil, fmt.Errorf("couldn't sign entry: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign entry: %w", err)
	}
	return msg, nil
}

// Entry is a parsed entry: its header and its bytes.
type Entry struct {
	Header EntryHeader
	// Bytes is the entry's canonical encoding, the log leaf.
	Bytes []byte
}

// LeafHash returns the entry's RFC 6962 leaf hash.
func (e *Entry) LeafHash() [32]byte { return LeafHash(e.Bytes) }

// LeafHash returns the RFC 6962 leaf hash of an entry's bytes.
func LeafHash(entry []byte) [32]byte { return tlog.RecordHash(entry) }

// ParseEntry parses an entry of format v1 or v2 without verifying its
// signature. It checks that the encoding is canonical and that it carries
// exactly one signature whose key name is the header's signer. Use
// [VerifyEntry] to check the signature too.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformedEntry, MaxEntrySize)
	}
	_, err := note.Open(b, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("%w: not a signed note", errMalformedEntry)
	}
	n := unverified.Note
	return parseOpened(b, n.Text, n.UnverifiedSigs)
}

// VerifyEntry parses an entry and verifies its signature with v, the
// verifier of the header's signer (a device's or a hospital's key).
func VerifyEntry(b []byte, v note.Verifier) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformedEntry, MaxEntrySize)
	}
	n, err := note.Open(b, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("entry is not signed by key %q", v.Name())
		}
		return nil, fmt.Errorf("entry signature: %w", err)
	}
	return parseOpened(b, n.Text, append(n.Sigs, n.UnverifiedSigs...))
}

func parseOpened(b []byte, text string, sigs []note.Signature) (*Entry, error) {
	h, err := parseBody(text)
	if err != nil {
		return nil, err
	}
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", errMalformedEntry)
	}
	if sigs[0].Name != h.Signer() {
		return nil, fmt.Errorf("%w: signature key %q, want %q for %s attestation", errMalformedEntry, sigs[0].Name, h.Signer(), h.Attestation)
	}
	want := text + "\n— " + sigs[0].Name + " " + sigs[0].Base64 + "\n"
	if string(b) != want {
		return nil, fmt.Errorf("%w: not canonical", errMalformedEntry)
	}
	return &Entry{Header: *h, Bytes: append([]byte(nil), b...)}, nil
}

// ParseEntryBody parses the canonical text of an entry header, format v1
// or v2.
func ParseEntryBody(text string) (*EntryHeader, error) { return parseBody(text) }

func parseBody(text string) (*EntryHeader, error) {
	first, _, _ := strings.Cut(text, "\n")
	want := 10 // header lines
	switch first {
	case entryMagic:
	case entryMagicV2:
		want = 11
	case registrationMagic:
		return nil, fmt.Errorf("%w: this is a device registration record (%s), not an entry", errMalformedEntry, registrationMagic)
	case eventMagic:
		return nil, fmt.Errorf("%w: this is a lifecycle event (%s), not an entry", errMalformedEntry, eventMagic)
	default:
		return nil, fmt.Errorf("%w: unknown entry format version", errMalformedEntry)
	}
	lines := strings.SplitAfter(text, "\n")
	switch {
	case want == 10 && len(lines) == 12 && strings.HasPrefix(lines[10], "firmware "):
		return nil, fmt.Errorf("%w: a %s entry has no firmware line (that is format %s)", errMalformedEntry, entryMagic, entryMagicV2)
	case want == 11 && len(lines) == 11 && lines[10] == "":
		return nil, fmt.Errorf("%w: a %s entry ends with a firmware line", errMalformedEntry, entryMagicV2)
	case len(lines) != want+1 || lines[want] != "":
		return nil, fmt.Errorf("%w: want %d header lines", errMalformedEntry, want)
	}
	fields := func(i int, key string, n int) ([]string, error) {
		l := strings.TrimSuffix(lines[i], "\n")
		f := strings.Split(l, " ")
		if len(f) != n+1 || f[0] != key {
			return nil, fmt.Errorf("%w: line %d: want %q with %d value(s)", errMalformedEntry, i+1, key, n)
		}
		return f[1:], nil
	}
	var h EntryHeader
	var err error
	var f []string
	if f, err = fields(1, "device", 1); err != nil {
		return nil, err
	}
	h.DeviceID = f[0]
	if f, err = fields(2, "metric", 1); err != nil {
		return nil, err
	}
	h.Metric = f[0]
	if f, err = fields(3, "window", 2); err != nil {
		return nil, err
	}
	if h.WindowStart, err = parseInt(f[0]); err != nil {
		return nil, fmt.Errorf("%w: window start", errMalformedEntry)
	}
	if h.WindowEnd, err = parseInt(f[1]); err != nil {
		return nil, fmt.Errorf("%w: window end", errMalformedEntry)
	}
	if f, err = fields(4, "count", 1); err != nil {
		return nil, err
	}
	count, err := parseInt(f[0])
	if err != nil || count > MaxBatchReadings {
		return nil, fmt.Errorf("%w: count", errMalformedEntry)
	}
	h.Count = int(count)
	if f, err = fields(5, "commitment", 1); err != nil {
		return nil, err
	}
	if err := parseHash(f[0], h.Commitment[:]); err != nil {
		return nil, fmt.Errorf("%w: commitment", errMalformedEntry)
	}
	if f, err = fields(6, "seq", 1); err != nil {
		return nil, err
	}
	seq, err := parseInt(f[0])
	if err != nil {
		return nil, fmt.Errorf("%w: seq", errMalformedEntry)
	}
	h.Seq = uint64(seq)
	if f, err = fields(7, "prev", 1); err != nil {
		return nil, err
	}
	if err := parseHash(f[0], h.Prev[:]); err != nil {
		return nil, fmt.Errorf("%w: prev", errMalformedEntry)
	}
	if f, err = fields(8, "hospital", 1); err != nil {
		return nil, err
	}
	h.Hospital = f[0]
	if f, err = fields(9, "attestation", 1); err != nil {
		return nil, err
	}
	h.Attestation = Attestation(f[0])
	if want == 11 {
		// The version may hold spaces: it is the rest of the line.
		v, ok := strings.CutPrefix(strings.TrimSuffix(lines[10], "\n"), "firmware ")
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: line 11: want \"firmware\" with a version", errMalformedEntry)
		}
		h.Firmware = v
	}
	if err := h.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedEntry, err)
	}
	if body, _ := h.Body(); string(body) != text {
		return nil, fmt.Errorf("%w: not canonical", errMalformedEntry)
	}
	return &h, nil
}

// parseInt parses a non-negative decimal without sign or leading zeros.
func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, errMalformedEntry
	}
	return n, nil
}

func parseHash(s string, dst []byte) error {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != len(dst) || base64.StdEncoding.EncodeToString(b) != s {
		return errMalformedEntry
	}
	copy(dst, b)
	return nil
}
