package wearables

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Registration is a device registration record: what the registry knew of a
// device when it was registered. The ledger appends the signed record to the
// log, so that anyone holding an entry's inclusion proof can also prove
// which key the device was registered with and check the entry's signature
// against it offline (package zk/audit does).
//
// # Encoding (registration format v1)
//
// A registration record is a signed note (golang.org/x/mod/sumdb/note,
// C2SP signed-note) whose text is exactly these nine lines, in this order,
// each ending in a newline:
//
//	vitalproof/device/v1
//	device <device ID>
//	manufacturer <manufacturer ID>
//	udi <GS1 UDI, canonical human-readable form>
//	model <model name>
//	firmware <firmware version>
//	key <base64 of the 32-byte Ed25519 public key>
//	hospital <hospital ID>
//	registered <Unix seconds>
//
// followed by a blank line and exactly one signature line, the registrar's
// (the registry operator's note key; any key name). IDs match
// [a-z0-9][a-z0-9._-]{0,63}; the UDI is the form [UDI.String] returns; model
// (1 to 200 bytes) and firmware (1 to 64 bytes) are printable ASCII (0x20 to
// 0x7e) that neither starts nor ends with a space; numbers are decimal
// without leading zeros; base64 is standard with padding. The key verifies
// the entries the device signs ([EntryHeader], attestation "device"), under
// the key name device ID.
//
// The record's bytes are the log leaf and its leaf hash is the RFC 6962
// hash SHA-256(0x00 || record), as for entries. The first line tells the
// two kinds of leaf apart: [ParseEntry] refuses registration records and
// [ParseRegistration] refuses entries.
type Registration struct {
	DeviceID     string
	Manufacturer string
	// UDI is the device's GS1 UDI in canonical human-readable form.
	UDI      string
	Model    string
	Firmware string
	// PublicKey is the device's Ed25519 entry-signing key.
	PublicKey ed25519.PublicKey
	// Hospital is the hospital the device is assigned to.
	Hospital string
	// Registered is when the device was registered, in Unix seconds.
	Registered int64
}

const (
	registrationMagic = "vitalproof/device/v1"
	// MaxRegistrationSize bounds a registration record's encoding.
	MaxRegistrationSize = 2048
	// MaxModelLen and MaxFirmwareLen bound a registration's model name and
	// firmware version, in bytes.
	MaxModelLen    = 200
	MaxFirmwareLen = 64
)

var errMalformedRegistration = errors.New("malformed device registration record")

// NewRegistration returns the registration of a device registered at
// registered. udi may be in any form [ParseUDI] accepts; the record holds
// its canonical form. It checks every field.
func NewRegistration(deviceID, manufacturer, udi, model, firmware string, pub ed25519.PublicKey, hospital string, registered time.Time) (*Registration, error) {
	u, err := ParseUDI(udi)
	if err != nil {
		return nil, fmt.Errorf("couldn't make registration: udi: %w", err)
	}
	r := &Registration{
		DeviceID:     deviceID,
		Manufacturer: manufacturer,
		UDI:          u.String(),
		Model:        model,
		Firmware:     firmware,
		PublicKey:    append(ed25519.PublicKey(nil), pub...),
		Hospital:     hospital,
		Registered:   registered.Unix(),
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("couldn't make registration: %w", err)
	}
	return r, nil
}

// Check validates the registration's fields on their own.
func (r *Registration) Check() error {
	if !ValidID(r.DeviceID) {
		return fmt.Errorf("device: %w", errBadID)
	}
	if !ValidID(r.Manufacturer) {
		return fmt.Errorf("manufacturer: %w", errBadID)
	}
	if !ValidID(r.Hospital) {
		return fmt.Errorf("hospital: %w", errBadID)
	}
	u, err := ParseUDI(r.UDI)
	if err != nil {
		return fmt.Errorf("udi: %w", err)
	}
	if u.String() != r.UDI {
		return errors.New("udi: not in canonical human-readable form")
	}
	if !validText(r.Model, MaxModelLen) {
		return fmt.Errorf("model: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxModelLen)
	}
	if !validText(r.Firmware, MaxFirmwareLen) {
		return fmt.Errorf("firmware: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxFirmwareLen)
	}
	if len(r.PublicKey) != ed25519.PublicKeySize {
		return errors.New("key: must be a 32-byte Ed25519 public key")
	}
	if r.Registered < 0 {
		return errors.New("registered: must not be before 1970")
	}
	return nil
}

// validText reports whether s is 1 to max bytes of printable ASCII that
// neither starts nor ends with a space.
func validText(s string, max int) bool {
	if len(s) == 0 || len(s) > max || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Body returns the canonical note text of the registration.
func (r *Registration) Body() ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ndevice %s\nmanufacturer %s\nudi %s\nmodel %s\nfirmware %s\nkey %s\nhospital %s\nregistered %d\n",
		registrationMagic, r.DeviceID, r.Manufacturer, r.UDI, r.Model, r.Firmware,
		base64.StdEncoding.EncodeToString(r.PublicKey), r.Hospital, r.Registered)
	return b.Bytes(), nil
}

// Sign signs the registration with the registrar's key s and returns the
// record's canonical bytes.
func (r *Registration) Sign(s note.Signer) ([]byte, error) {
	body, err := r.Body()
	if err != nil {
		return nil, fmt.Errorf("couldn't sign registration: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign registration: %w", err)
	}
	return msg, nil
}

// Verifier returns the note verifier of the device's key, which verifies
// the entries the device signs ([VerifyEntry]).
func (r *Registration) Verifier() (note.Verifier, error) {
	return DeviceVerifier(r.DeviceID, r.PublicKey)
}

// RegistrationRecord is a parsed registration record.
type RegistrationRecord struct {
	Registration Registration
	// Registrar is the key name of the record's signature.
	Registrar string
	// Bytes is the record's canonical encoding, the log leaf.
	Bytes []byte
}

// LeafHash returns the record's RFC 6962 leaf hash.
func (rr *RegistrationRecord) LeafHash() [32]byte { return tlog.RecordHash(rr.Bytes) }

// ParseRegistration parses a registration record without verifying its
// signature. It checks that the encoding is canonical and that it carries
// exactly one signature. Use [VerifyRegistration] to check the registrar's
// signature too.
func ParseRegistration(b []byte) (*RegistrationRecord, error) {
	if err := checkRegistrationSize(b); err != nil {
		return nil, err
	}
	_, err := note.Open(b, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("%w: not a signed note", errMalformedRegistration)
	}
	n := unverified.Note
	return parseRegistrationOpened(b, n.Text, n.UnverifiedSigs)
}

// VerifyRegistration parses a registration record and verifies its
// signature with v, the registrar's verifier.
func VerifyRegistration(b []byte, v note.Verifier) (*RegistrationRecord, error) {
	if err := checkRegistrationSize(b); err != nil {
		return nil, err
	}
	n, err := note.Open(b, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("device registration record is not signed by registrar key %q", v.Name())
		}
		return nil, fmt.Errorf("device registration record signature: %w", err)
	}
	return parseRegistrationOpened(b, n.Text, append(n.Sigs, n.UnverifiedSigs...))
}

func checkRegistrationSize(b []byte) error {
	if len(b) > MaxRegistrationSize {
		return fmt.Errorf("%w: larger than %d bytes", errMalformedRegistration, MaxRegistrationSize)
	}
	return nil
}

func parseRegistrationOpened(b []byte, text string, sigs []note.Signature) (*RegistrationRecord, error) {
	r, err := ParseRegistrationBody(text)
	if err != nil {
		return nil, err
	}
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", errMalformedRegistration)
	}
	want := text + "\n— " + sigs[0].Name + " " + sigs[0].Base64 + "\n"
	if string(b) != want {
		return nil, fmt.Errorf("%w: not canonical", errMalformedRegistration)
	}
	return &RegistrationRecord{Registration: *r, Registrar: sigs[0].Name, Bytes: bytes.Clone(b)}, nil
}

// ParseRegistrationBody parses the canonical text of a registration.
func ParseRegistrationBody(text string) (*Registration, error) {
	first, _, _ := strings.Cut(text, "\n")
	switch first {
	case registrationMagic:
	case entryMagic, entryMagicV2:
		return nil, fmt.Errorf("%w: this is an entry (%s), not a device registration record", errMalformedRegistration, first)
	default:
		return nil, fmt.Errorf("%w: unknown registration format version", errMalformedRegistration)
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 10 || lines[9] != "" {
		return nil, fmt.Errorf("%w: want 9 lines", errMalformedRegistration)
	}
	value := func(i int, key string) (string, error) {
		l := strings.TrimSuffix(lines[i], "\n")
		v, ok := strings.CutPrefix(l, key+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d: want %q", errMalformedRegistration, i+1, key)
		}
		return v, nil
	}
	var r Registration
	fields := []struct {
		key string
		dst *string
	}{
		{"device", &r.DeviceID}, {"manufacturer", &r.Manufacturer}, {"udi", &r.UDI},
		{"model", &r.Model}, {"firmware", &r.Firmware},
	}
	for i, f := range fields {
		v, err := value(1+i, f.key)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	key, err := value(6, "key")
	if err != nil {
		return nil, err
	}
	var pub [ed25519.PublicKeySize]byte
	if parseHash(key, pub[:]) != nil {
		return nil, fmt.Errorf("%w: key", errMalformedRegistration)
	}
	r.PublicKey = pub[:]
	if r.Hospital, err = value(7, "hospital"); err != nil {
		return nil, err
	}
	reg, err := value(8, "registered")
	if err != nil {
		return nil, err
	}
	if r.Registered, err = parseInt(reg); err != nil {
		return nil, fmt.Errorf("%w: registered", errMalformedRegistration)
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedRegistration, err)
	}
	if body, _ := r.Body(); string(body) != text {
		return nil, fmt.Errorf("%w: not canonical", errMalformedRegistration)
	}
	return &r, nil
}
