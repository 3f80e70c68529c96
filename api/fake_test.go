package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vitalproof/vitalproof/log/publish"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/keys"
)

// The fakes below stand in for package provenance at this layer only: they
// check just enough to produce each kind of error. The integration tests
// run the API over the real provenance, Trillian and MariaDB.

const (
	adminKey     = "admin-key"
	hospitalKey  = "hospital-key"
	submitterKey = "submitter-key"
	readerKey    = "reader-key"
	// secretPatient stands for PHI that an internal error may carry; it must
	// never reach a client.
	secretPatient = "patient-4711"
)

var testPolicy = "log vitalproof.example/log+01234567+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nquorum none\n"

var testCheckpoint = "vitalproof.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— vitalproof.example/log AAAAAA==\n"

func fakeAuth(keys map[string]provenance.Principal, apiKey string) (provenance.Principal, error) {
	if p, ok := keys[apiKey]; ok {
		return p, nil
	}
	return provenance.Principal{}, &provenance.Error{Kind: provenance.KindUnauthenticated, Reason: "unknown API key"}
}

type fakeLedger struct {
	mu        sync.Mutex
	hospitals map[string]provenance.Hospital
	devices   map[string]provenance.Device
	entries   [][]byte
	// submitter is the hospitalID of the last SubmitEntries call.
	submitter string
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{
		hospitals: map[string]provenance.Hospital{"h1": {ID: "h1", Name: "One"}},
		devices: map[string]provenance.Device{"d1": {
			ID: "d1", Manufacturer: "acme", UDI: "(01)00812345678901(21)SN1", Model: "W1",
			Firmware: "1.0", PublicKey: make(ed25519.PublicKey, 32), Hospital: "h1", Status: provenance.DeviceActive,
		}},
		entries: [][]byte{[]byte("vitalproof/entry/v1\nzero\n")},
	}
}

var ledgerKeys = map[string]provenance.Principal{
	adminKey:    {ID: "operator", Role: provenance.RoleAdmin},
	hospitalKey: {ID: "h1", Role: provenance.RoleHospital},
}

func (l *fakeLedger) Authenticate(_ context.Context, apiKey string) (provenance.Principal, error) {
	return fakeAuth(ledgerKeys, apiKey)
}

func (l *fakeLedger) RegisterHospital(_ context.Context, h provenance.Hospital) (string, error) {
	if len(h.PublicKey) != ed25519.PublicKeySize {
		return "", &provenance.Error{Kind: provenance.KindInvalid, Field: "public_key", Reason: "must be a 32-byte Ed25519 public key"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.hospitals[h.ID]; ok {
		return "", &provenance.Error{Kind: provenance.KindConflict, Field: "hospital_id", Reason: "hospital is already registered"}
	}
	l.hospitals[h.ID] = h
	return "key-of-" + h.ID, nil
}

func (l *fakeLedger) RegisterDevice(_ context.Context, d provenance.Device) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.hospitals[d.Hospital]; !ok {
		return &provenance.Error{Kind: provenance.KindNotFound, Field: "hospital_id", Reason: "hospital is not registered"}
	}
	d.UDI = strings.ToUpper(d.UDI) // stands for canonicalization
	d.Status = provenance.DeviceActive
	l.devices[d.ID] = d
	return nil
}

func (l *fakeLedger) Device(_ context.Context, id string) (provenance.Device, error) {
	if id == "panic" {
		panic("device lookup exploded for " + secretPatient)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.devices[id]
	if !ok {
		return provenance.Device{}, &provenance.Error{Kind: provenance.KindNotFound, Field: "device_id", Reason: "device is not registered"}
	}
	return d, nil
}

// SubmitEntries refuses entries by their text: "bad" is invalid,
// "conflict" a chain conflict, "broken" an internal failure; "pending" is
// accepted but not integrated. "outage" fails the whole call.
func (l *fakeLedger) SubmitEntries(_ context.Context, hospitalID string, entries [][]byte) ([]provenance.SubmitResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.submitter = hospitalID
	out := make([]provenance.SubmitResult, len(entries))
	for i, e := range entries {
		out[i].LeafHash = wearables.LeafHash(e)
		field := fmt.Sprintf("entries[%d]", i)
		switch string(e) {
		case "outage":
			return nil, &provenance.Error{Kind: provenance.KindUnavailable, Reason: "log is unavailable"}
		case "bad":
			out[i].Err = &provenance.Error{Kind: provenance.KindInvalid, Field: field, Reason: "malformed entry"}
		case "conflict":
			out[i].Err = &provenance.Error{Kind: provenance.KindConflict, Field: field + ".seq", Reason: "not the next link of the device's chain: expected sequence number 2"}
		case "broken":
			out[i].Err = &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't store entry", Err: errors.New("disk full near " + secretPatient)}
		case "pending":
			out[i].Pending = true
		default:
			out[i].Index = uint64(len(l.entries))
			out[i].Receipt = []byte("c2sp.org/tlog-proof@v1\nindex " + fmt.Sprint(out[i].Index) + "\n")
			l.entries = append(l.entries, e)
		}
	}
	return out, nil
}

// Entry fails with a non-provenance error (carrying PHI) at index 13.
func (l *fakeLedger) Entry(_ context.Context, index uint64) ([]byte, error) {
	if index == 13 {
		return nil, fmt.Errorf("couldn't read entry for %s: %w", secretPatient, errors.New("connection reset"))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if index >= uint64(len(l.entries)) {
		return nil, &provenance.Error{Kind: provenance.KindNotFound, Field: "index", Reason: "no entry at this index"}
	}
	return l.entries[index], nil
}

func (l *fakeLedger) Entries(_ context.Context, start uint64, count int) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start >= uint64(len(l.entries)) {
		return nil, &provenance.Error{Kind: provenance.KindNotFound, Field: "start", Reason: "no entry at this index"}
	}
	end := min(uint64(len(l.entries)), start+uint64(count))
	return l.entries[start:end], nil
}

func (l *fakeLedger) InclusionProof(_ context.Context, index, treeSize uint64) (provenance.InclusionProof, error) {
	if treeSize > 3 {
		return provenance.InclusionProof{}, &provenance.Error{Kind: provenance.KindInvalid, Field: "tree_size", Reason: "larger than the latest checkpoint's (3)"}
	}
	p := provenance.InclusionProof{Index: index, TreeSize: 3, Hashes: [][32]byte{{1}, {2}}}
	if treeSize == 0 || treeSize == 3 {
		p.Checkpoint = []byte(testCheckpoint)
	} else {
		p.TreeSize = treeSize
	}
	return p, nil
}

// Receipt answers index 99 as pending.
func (l *fakeLedger) Receipt(ctx context.Context, index uint64) ([]byte, error) {
	if index == 99 {
		return nil, &provenance.Error{Kind: provenance.KindPending, Field: "index", Reason: "entry is not yet integrated"}
	}
	if _, err := l.Entry(ctx, index); err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("c2sp.org/tlog-proof@v1\nindex %d\n", index)), nil
}

func (l *fakeLedger) Checkpoint(context.Context) ([]byte, error) { return []byte(testCheckpoint), nil }

func (l *fakeLedger) ConsistencyProof(_ context.Context, from, to uint64) ([][32]byte, error) {
	if from == 0 || from > to {
		return nil, &provenance.Error{Kind: provenance.KindInvalid, Field: "from", Reason: "must be between 1 and to"}
	}
	return [][32]byte{{3}}, nil
}

// fakeHistory holds published checkpoints of tree sizes 1 to 3.
var fakeHistory = func() []publish.Checkpoint {
	var cs []publish.Checkpoint
	for size := uint64(3); size >= 1; size-- {
		cs = append(cs, publish.Checkpoint{Size: size, Root: [32]byte{byte(size)}, Note: []byte(testCheckpoint), Witnessed: true,
			PublishedAt: time.Date(2026, 11, 29, 8, 0, int(size), 0, time.UTC)})
	}
	return cs
}()

func (l *fakeLedger) CheckpointHistory(_ context.Context, beforeSize uint64, limit int) ([]publish.Checkpoint, error) {
	var out []publish.Checkpoint
	for _, c := range fakeHistory {
		if (beforeSize == 0 || c.Size < beforeSize) && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (l *fakeLedger) CheckpointAt(_ context.Context, size uint64) (publish.Checkpoint, error) {
	for _, c := range fakeHistory {
		if c.Size == size {
			return c, nil
		}
	}
	return publish.Checkpoint{}, &provenance.Error{Kind: provenance.KindNotFound, Field: "size", Reason: "no checkpoint of this tree size was published"}
}

var fakeVerifyingKey = provenance.VerifyingKey{
	Fingerprint: strings.Repeat("ab", 32),
	Meta:        keys.Metadata{Circuit: "range-1440", Setup: keys.SetupDevelopment, UnsafeForProduction: true},
	Metadata:    []byte(`{"circuit":"range-1440"}`),
	Key:         []byte("vk-bytes"),
}

func (l *fakeLedger) VerifyingKeys(context.Context) ([]provenance.VerifyingKey, error) {
	vk := fakeVerifyingKey
	vk.Key = nil
	return []provenance.VerifyingKey{vk}, nil
}

func (l *fakeLedger) VerifyingKey(_ context.Context, fingerprint string) (provenance.VerifyingKey, error) {
	if fingerprint != fakeVerifyingKey.Fingerprint {
		return provenance.VerifyingKey{}, &provenance.Error{Kind: provenance.KindNotFound, Field: "fingerprint", Reason: "no verifying key with this fingerprint"}
	}
	return fakeVerifyingKey, nil
}

func (l *fakeLedger) ProposeManufacturer(_ context.Context, m provenance.Manufacturer) (string, error) {
	return "", &provenance.Error{Kind: provenance.KindConflict, Field: "manufacturer_id", Reason: "manufacturer is already known"}
}

func (l *fakeLedger) ApproveManufacturer(_ context.Context, hospitalID, manufacturerID string, approval []byte) (provenance.Manufacturer, error) {
	return provenance.Manufacturer{ID: manufacturerID, Status: provenance.ManufacturerProposed, Approvals: map[provenance.ApprovalAction][]string{provenance.ActionAdmit: {hospitalID}}, Quorum: 2}, nil
}

func (l *fakeLedger) Manufacturer(_ context.Context, id string) (provenance.Manufacturer, error) {
	return provenance.Manufacturer{ID: id, Status: provenance.ManufacturerAdmitted, Quorum: 2}, nil
}

func (l *fakeLedger) RegisterManufactured(_ context.Context, manufacturerID string, record []byte) (provenance.Device, error) {
	return provenance.Device{}, &provenance.Error{Kind: provenance.KindPermission, Field: "manufacturer", Reason: "the manufacturer is proposed, not admitted by the consortium"}
}

func (l *fakeLedger) DeviceHistory(_ context.Context, p provenance.Principal, deviceID string, oldestFirst bool, pageSize int, after uint64) (*provenance.History, error) {
	d, err := l.Device(context.Background(), deviceID)
	if err != nil || !provenance.CanSee(p, d) {
		return nil, &provenance.Error{Kind: provenance.KindNotFound, Field: "device_id", Reason: "device is not registered"}
	}
	return &provenance.History{DeviceID: deviceID, Checkpoint: []byte(testCheckpoint), TreeSize: 3,
		Items: []provenance.HistoryItem{{Index: 2, Kind: "entry", Leaf: []byte("leaf"), Proof: [][32]byte{{4}}}}, Next: 2, More: true}, nil
}

func (l *fakeLedger) CheckIndex(context.Context, bool) (*provenance.IndexReport, error) {
	return &provenance.IndexReport{Leaves: 3, Extra: []uint64{7}}, nil
}

func (l *fakeLedger) Lifecycle(_ context.Context, deviceID string) (wearables.DeviceState, error) {
	return wearables.DeviceState{Device: deviceID, Status: wearables.StatusRegistered, Firmware: "1.0"}, nil
}

func (l *fakeLedger) RecordEvent(context.Context, provenance.Principal, []byte) (wearables.DeviceState, error) {
	return wearables.DeviceState{}, &provenance.Error{Kind: provenance.KindConflict, Field: "event", Reason: "lifecycle transition refused"}
}

type fakeGateway struct {
	mu       sync.Mutex
	batch    provenance.BatchSubmission
	resource []byte
}

var gatewayKeys = map[string]provenance.Principal{
	submitterKey: {ID: "hub-1", Role: provenance.RoleSubmitter},
	readerKey:    {ID: "auditor", Role: provenance.RoleReader},
	adminKey:     {ID: "it", Role: provenance.RoleAdmin},
}

func (g *fakeGateway) Authenticate(_ context.Context, apiKey string) (provenance.Principal, error) {
	return fakeAuth(gatewayKeys, apiKey)
}

func (g *fakeGateway) SubmitBatch(_ context.Context, b provenance.BatchSubmission) (provenance.BatchResult, error) {
	if !strings.HasPrefix(string(b.Entry), "vitalproof/entry/v1\n") {
		return provenance.BatchResult{}, &provenance.Error{Kind: provenance.KindInvalid, Field: "entry", Reason: "malformed entry"}
	}
	if len(b.Salt) != 32 {
		return provenance.BatchResult{}, &provenance.Error{Kind: provenance.KindInvalid, Field: "salt", Reason: "must be the 32-byte canonical encoding of a BN254 field element"}
	}
	g.mu.Lock()
	g.batch = b
	g.mu.Unlock()
	return provenance.BatchResult{
		SubmitResult: provenance.SubmitResult{LeafHash: wearables.LeafHash(b.Entry), Index: 5, Receipt: []byte("c2sp.org/tlog-proof@v1\nindex 5\n")},
		DeviceID:     "d1",
		Metric:       "8867-4",
		Attestation:  wearables.AttestDevice,
		Readings:     len(b.Readings),
	}, nil
}

func (g *fakeGateway) SubmitFHIR(_ context.Context, resource []byte) ([]provenance.BatchResult, error) {
	if !json.Valid(resource) {
		return nil, &provenance.Error{Kind: provenance.KindInvalid, Field: "resource", Reason: "not JSON"}
	}
	g.mu.Lock()
	g.resource = append([]byte(nil), resource...)
	g.mu.Unlock()
	return []provenance.BatchResult{
		{DeviceID: "d1", Metric: "8867-4", Attestation: wearables.AttestGateway, Readings: 2, SubmitResult: provenance.SubmitResult{Pending: true}},
		{DeviceID: "d2", Metric: "8867-4", Attestation: wearables.AttestGateway, Readings: 1, SubmitResult: provenance.SubmitResult{Index: 8}},
	}, nil
}

func (g *fakeGateway) Receipt(_ context.Context, index uint64) (provenance.BatchResult, error) {
	if index != 5 {
		return provenance.BatchResult{}, &provenance.Error{Kind: provenance.KindNotFound, Field: "index", Reason: "no batch of this gateway's has a logged entry at this index"}
	}
	return provenance.BatchResult{SubmitResult: provenance.SubmitResult{Index: 5, Receipt: []byte("r")}, DeviceID: "d1", Metric: "8867-4", Attestation: wearables.AttestDevice, Readings: 3}, nil
}
