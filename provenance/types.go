package provenance

import (
	"context"
	"crypto/ed25519"

	"github.com/vitalproof/vitalproof/wearables"
)

// Role is what an authenticated caller may do.
type Role string

const (
	// RoleAdmin is the ledger operator (registers hospitals and devices) or
	// a gateway's administrator.
	RoleAdmin Role = "admin"
	// RoleHospital is a hospital submitting entries to the ledger.
	RoleHospital Role = "hospital"
	// RoleSubmitter is a device, hub or integration engine submitting
	// readings to a hospital's gateway.
	RoleSubmitter Role = "submitter"
	// RoleReader may read receipts from a hospital's gateway.
	RoleReader Role = "reader"
	// RoleManufacturer is a device maker admitted by the consortium: it
	// registers its devices and records their lifecycle events at the
	// ledger, and reads their history.
	RoleManufacturer Role = "manufacturer"
	// RoleRegulator may ask a hospital's gateway for audits and read the
	// bundles of its own audits.
	RoleRegulator Role = "regulator"
)

// Principal is an authenticated caller.
type Principal struct {
	// ID is the hospital ID for RoleHospital, the manufacturer ID for
	// RoleManufacturer, otherwise the key's label.
	ID   string
	Role Role
}

// Hospital is a consortium member allowed to submit entries.
type Hospital struct {
	ID   string
	Name string
	// PublicKey verifies entries with gateway attestation; its note key
	// name is ID.
	PublicKey ed25519.PublicKey
}

// DeviceStatus is a device's registry status.
type DeviceStatus string

const (
	DeviceActive   DeviceStatus = "active"
	DeviceInactive DeviceStatus = "inactive"
)

// Device is a registered device.
type Device struct {
	ID           string
	Manufacturer string
	// UDI is the device's GS1 UDI element string.
	UDI      string
	Model    string
	Firmware string
	// PublicKey verifies entries the device signs; its note key name is ID.
	PublicKey ed25519.PublicKey
	// Hospital is the hospital the device is assigned to.
	Hospital string
	Status   DeviceStatus
	// Registration is the signed registration record the ledger appended
	// to the log when it registered the device (wearables.Registration);
	// RegistrationIndex is its index in the log once RegistrationLogged.
	// Set by the ledger only.
	Registration       []byte
	RegistrationIndex  uint64
	RegistrationLogged bool
}

// SubmitResult is the ledger's answer for one submitted entry.
type SubmitResult struct {
	LeafHash [32]byte
	// Index is the entry's index in the log; valid unless Pending, and
	// when Pending if Integrated.
	Index uint64
	// Pending is true when the entry is durably queued but its receipt was
	// not ready when the ledger answered: it was not yet integrated, or no
	// published (cosigned) checkpoint covered it yet.
	Pending bool
	// Integrated is true when the entry has its index in the log; a
	// Pending entry that is Integrated awaits only a published checkpoint.
	Integrated bool
	// Receipt is the entry's receipt in C2SP tlog-proof format, with the
	// entry's bytes as its extra data; empty when Pending.
	Receipt []byte
	// Duplicate is true when the entry had been submitted before.
	Duplicate bool
	// Err is set when this entry was refused; nothing was written for it.
	Err *Error
}

// InclusionProof is an entry's inclusion proof in a tree and the signed
// checkpoint of that tree.
type InclusionProof struct {
	Index      uint64
	TreeSize   uint64
	Hashes     [][32]byte
	Checkpoint []byte
}

// BatchSubmission is a native batch as a gateway receives it.
type BatchSubmission struct {
	// Entry is the device-signed entry's canonical bytes.
	Entry    []byte
	Salt     []byte
	Readings []wearables.Reading
	// PatientRef optionally links the batch to a patient in the hospital's
	// own records; it stays in the private store.
	PatientRef string
}

// BatchResult is the gateway's answer for one batch.
type BatchResult struct {
	SubmitResult
	DeviceID    string
	Metric      string
	Attestation wearables.Attestation
	Readings    int
}

// LedgerClient is what a gateway needs of the ledger. The api package
// implements it over the ledger's gRPC API.
type LedgerClient interface {
	// SubmitEntries submits entries in order and returns one result each;
	// a refused entry's result carries its Err. An error for the whole call
	// means nothing is known of any entry.
	SubmitEntries(ctx context.Context, entries [][]byte) ([]SubmitResult, error)
	// Receipt returns the receipt of the entry at index, or a KindPending error.
	Receipt(ctx context.Context, index uint64) ([]byte, error)
	// Checkpoint returns the latest published checkpoint (a signed note).
	Checkpoint(ctx context.Context) ([]byte, error)
	// InclusionProof returns the inclusion proof of the leaf at index in
	// the tree of size treeSize.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][32]byte, error)
	// Device returns a registered device with its registration record.
	Device(ctx context.Context, id string) (Device, error)
}
