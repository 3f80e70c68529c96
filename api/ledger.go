package api

import (
	"context"
	"crypto/ed25519"
	"strconv"
	"time"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/log/publish"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
)

// LedgerBackend is what the ledger service needs of the ledger personality
// (implemented by *provenance.Ledger). Errors should be *provenance.Error;
// any other error is reported to the client as an internal error.
type LedgerBackend interface {
	Authenticate(ctx context.Context, apiKey string) (provenance.Principal, error)
	RegisterHospital(ctx context.Context, h provenance.Hospital) (apiKey string, err error)
	RegisterDevice(ctx context.Context, d provenance.Device) error
	Device(ctx context.Context, id string) (provenance.Device, error)
	ProposeManufacturer(ctx context.Context, m provenance.Manufacturer) (apiKey string, err error)
	ApproveManufacturer(ctx context.Context, hospitalID, manufacturerID string, approval []byte) (provenance.Manufacturer, error)
	Manufacturer(ctx context.Context, id string) (provenance.Manufacturer, error)
	RegisterManufactured(ctx context.Context, manufacturerID string, record []byte) (provenance.Device, error)
	DeviceHistory(ctx context.Context, p provenance.Principal, deviceID string, oldestFirst bool, pageSize int, after uint64) (*provenance.History, error)
	CheckIndex(ctx context.Context, repair bool) (*provenance.IndexReport, error)
	Lifecycle(ctx context.Context, deviceID string) (wearables.DeviceState, error)
	RecordEvent(ctx context.Context, p provenance.Principal, event []byte) (wearables.DeviceState, error)
	SubmitEntries(ctx context.Context, hospitalID string, entries [][]byte) ([]provenance.SubmitResult, error)
	Entry(ctx context.Context, index uint64) ([]byte, error)
	Entries(ctx context.Context, start uint64, count int) ([][]byte, error)
	InclusionProof(ctx context.Context, index, treeSize uint64) (provenance.InclusionProof, error)
	Receipt(ctx context.Context, index uint64) ([]byte, error)
	Checkpoint(ctx context.Context) ([]byte, error)
	ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error)
	CheckpointHistory(ctx context.Context, beforeSize uint64, limit int) ([]publish.Checkpoint, error)
	CheckpointAt(ctx context.Context, size uint64) (publish.Checkpoint, error)
	VerifyingKeys(ctx context.Context) ([]provenance.VerifyingKey, error)
	VerifyingKey(ctx context.Context, fingerprint string) (provenance.VerifyingKey, error)
}

type ledgerServer struct {
	vitalproofv1.UnimplementedLedgerServiceServer
	b LedgerBackend
}

// NewLedgerServer returns the ledger service over b. It only translates
// between the wire and b; serve it on a server from [NewGRPCServer], whose
// interceptors authenticate callers and map b's errors to statuses.
func NewLedgerServer(b LedgerBackend) vitalproofv1.LedgerServiceServer {
	return &ledgerServer{b: b}
}

func (s *ledgerServer) authenticate(ctx context.Context, apiKey string) (provenance.Principal, error) {
	return s.b.Authenticate(ctx, apiKey)
}

func (s *ledgerServer) RegisterHospital(ctx context.Context, req *vitalproofv1.RegisterHospitalRequest) (*vitalproofv1.RegisterHospitalResponse, error) {
	key, err := s.b.RegisterHospital(ctx, provenance.Hospital{
		ID:        req.GetHospitalId(),
		Name:      req.GetName(),
		PublicKey: ed25519.PublicKey(req.GetPublicKey()),
	})
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.RegisterHospitalResponse{HospitalId: req.GetHospitalId(), ApiKey: key}, nil
}

func (s *ledgerServer) RegisterDevice(ctx context.Context, req *vitalproofv1.RegisterDeviceRequest) (*vitalproofv1.Device, error) {
	err := s.b.RegisterDevice(ctx, provenance.Device{
		ID:           req.GetDeviceId(),
		Manufacturer: req.GetManufacturer(),
		UDI:          req.GetUdi(),
		Model:        req.GetModel(),
		Firmware:     req.GetFirmware(),
		PublicKey:    ed25519.PublicKey(req.GetPublicKey()),
		Hospital:     req.GetHospitalId(),
	})
	if err != nil {
		return nil, err
	}
	// Answer with the device as stored: canonical UDI, status.
	d, err := s.b.Device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return deviceProto(d), nil
}

func (s *ledgerServer) GetDevice(ctx context.Context, req *vitalproofv1.GetDeviceRequest) (*vitalproofv1.Device, error) {
	d, err := s.b.Device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	if p, _ := PrincipalFrom(ctx); !provenance.CanSee(p, d) {
		return nil, &provenance.Error{Kind: provenance.KindNotFound, Field: "device_id", Reason: "device is not registered"}
	}
	pd := deviceProto(d)
	st, err := s.b.Lifecycle(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	pd.Lifecycle = lifecycleProto(st)
	return pd, nil
}

func (s *ledgerServer) RecordEvent(ctx context.Context, req *vitalproofv1.RecordEventRequest) (*vitalproofv1.Lifecycle, error) {
	p, _ := PrincipalFrom(ctx)
	st, err := s.b.RecordEvent(ctx, p, []byte(req.GetEvent()))
	if err != nil {
		return nil, err
	}
	return lifecycleProto(st), nil
}

func lifecycleProto(st wearables.DeviceState) *vitalproofv1.Lifecycle {
	l := &vitalproofv1.Lifecycle{
		Status: string(st.Status), Seq: st.Seq, Head: st.Head[:], Hospital: st.Hospital, Firmware: st.Firmware,
		CommissionedAt: st.CommissionedAt, RecalledAt: st.RecalledAt, DecommissionedAt: st.DecommissionedAt, RecallReason: st.RecallReason,
	}
	if st.FirmwareDigest != ([32]byte{}) {
		l.FirmwareDigest = st.FirmwareDigest[:]
	}
	return l
}

func (s *ledgerServer) GetDeviceHistory(ctx context.Context, req *vitalproofv1.GetDeviceHistoryRequest) (*vitalproofv1.DeviceHistory, error) {
	p, _ := PrincipalFrom(ctx)
	var oldest bool
	switch req.GetOrder() {
	case "", "newest":
	case "oldest":
		oldest = true
	default:
		return nil, &provenance.Error{Kind: provenance.KindInvalid, Field: "order", Reason: "must be newest or oldest"}
	}
	var after uint64
	if t := req.GetPageToken(); t != "" {
		var err error
		if after, err = strconv.ParseUint(t, 10, 64); err != nil || after == 0 {
			return nil, &provenance.Error{Kind: provenance.KindInvalid, Field: "page_token", Reason: "not a page token of this history"}
		}
	}
	h, err := s.b.DeviceHistory(ctx, p, req.GetDeviceId(), oldest, int(req.GetPageSize()), after)
	if err != nil {
		return nil, err
	}
	resp := &vitalproofv1.DeviceHistory{DeviceId: h.DeviceID, Checkpoint: string(h.Checkpoint), TreeSize: h.TreeSize}
	for _, it := range h.Items {
		resp.Items = append(resp.Items, &vitalproofv1.HistoryItem{Index: it.Index, Kind: it.Kind, Leaf: it.Leaf, Inclusion: hashesProto(it.Proof)})
	}
	if h.More {
		resp.NextPageToken = strconv.FormatUint(h.Next, 10)
	}
	return resp, nil
}

func (s *ledgerServer) CheckIndex(ctx context.Context, req *vitalproofv1.CheckIndexRequest) (*vitalproofv1.IndexReport, error) {
	r, err := s.b.CheckIndex(ctx, req.GetRepair())
	if err != nil {
		return nil, err
	}
	leaf := func(l provenance.IndexedLeaf) *vitalproofv1.IndexedLeaf {
		return &vitalproofv1.IndexedLeaf{Index: l.Index, Kind: l.Kind, DeviceId: l.Device, Manufacturer: l.Manufacturer}
	}
	resp := &vitalproofv1.IndexReport{Leaves: r.Leaves, Extra: r.Extra, Repaired: r.Repaired}
	for _, l := range r.Missing {
		resp.Missing = append(resp.Missing, leaf(l))
	}
	for _, l := range r.Wrong {
		resp.Wrong = append(resp.Wrong, leaf(l))
	}
	return resp, nil
}

func deviceProto(d provenance.Device) *vitalproofv1.Device {
	pd := &vitalproofv1.Device{
		DeviceId:     d.ID,
		Manufacturer: d.Manufacturer,
		Udi:          d.UDI,
		Model:        d.Model,
		Firmware:     d.Firmware,
		PublicKey:    d.PublicKey,
		HospitalId:   d.Hospital,
		Status:       string(d.Status),
		Registration: d.Registration,
	}
	if d.RegistrationLogged {
		pd.RegistrationIndex = &d.RegistrationIndex
	}
	return pd
}

func (s *ledgerServer) ProposeManufacturer(ctx context.Context, req *vitalproofv1.ProposeManufacturerRequest) (*vitalproofv1.ProposeManufacturerResponse, error) {
	key, err := s.b.ProposeManufacturer(ctx, provenance.Manufacturer{
		ID:        req.GetManufacturerId(),
		Name:      req.GetName(),
		PublicKey: ed25519.PublicKey(req.GetPublicKey()),
	})
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.ProposeManufacturerResponse{ManufacturerId: req.GetManufacturerId(), ApiKey: key}, nil
}

func (s *ledgerServer) ApproveManufacturer(ctx context.Context, req *vitalproofv1.ApproveManufacturerRequest) (*vitalproofv1.Manufacturer, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't approve: no authenticated hospital"}
	}
	m, err := s.b.ApproveManufacturer(ctx, p.ID, req.GetManufacturerId(), []byte(req.GetApproval()))
	if err != nil {
		return nil, err
	}
	return manufacturerProto(m), nil
}

func (s *ledgerServer) GetManufacturer(ctx context.Context, req *vitalproofv1.GetManufacturerRequest) (*vitalproofv1.Manufacturer, error) {
	// A manufacturer sees itself only; another's is not found, like an
	// unknown one.
	if p, _ := PrincipalFrom(ctx); p.Role == provenance.RoleManufacturer && p.ID != req.GetManufacturerId() {
		return nil, &provenance.Error{Kind: provenance.KindNotFound, Field: "manufacturer_id", Reason: "no such manufacturer"}
	}
	m, err := s.b.Manufacturer(ctx, req.GetManufacturerId())
	if err != nil {
		return nil, err
	}
	return manufacturerProto(m), nil
}

func (s *ledgerServer) SubmitRegistration(ctx context.Context, req *vitalproofv1.SubmitRegistrationRequest) (*vitalproofv1.Device, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't register: no authenticated manufacturer"}
	}
	d, err := s.b.RegisterManufactured(ctx, p.ID, []byte(req.GetRegistration()))
	if err != nil {
		return nil, err
	}
	return deviceProto(d), nil
}

func manufacturerProto(m provenance.Manufacturer) *vitalproofv1.Manufacturer {
	return &vitalproofv1.Manufacturer{
		ManufacturerId: m.ID,
		Name:           m.Name,
		PublicKey:      m.PublicKey,
		Status:         string(m.Status),
		AdmittedBy:     m.Approvals[provenance.ActionAdmit],
		SuspendedBy:    m.Approvals[provenance.ActionSuspend],
		Quorum:         uint32(m.Quorum),
	}
}

func (s *ledgerServer) SubmitEntries(ctx context.Context, req *vitalproofv1.SubmitEntriesRequest) (*vitalproofv1.SubmitEntriesResponse, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't submit entries: no authenticated hospital"}
	}
	results, err := s.b.SubmitEntries(ctx, p.ID, req.GetEntries())
	if err != nil {
		return nil, err
	}
	resp := &vitalproofv1.SubmitEntriesResponse{Results: make([]*vitalproofv1.EntryResult, len(results))}
	for i, r := range results {
		er := &vitalproofv1.EntryResult{
			Index:      r.Index,
			LeafHash:   r.LeafHash[:],
			Pending:    r.Pending,
			Integrated: r.Integrated,
			Duplicate:  r.Duplicate,
			Receipt:    string(r.Receipt),
		}
		if r.Err != nil {
			var internal bool
			er.Error, internal = entryError(r.Err)
			if internal {
				logFrom(ctx).WarnContext(ctx, "internal error refusing an entry", "entry", i, "err", r.Err)
			}
		}
		resp.Results[i] = er
	}
	return resp, nil
}

func (s *ledgerServer) GetEntry(ctx context.Context, req *vitalproofv1.GetEntryRequest) (*vitalproofv1.GetEntryResponse, error) {
	e, err := s.b.Entry(ctx, req.GetIndex())
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.GetEntryResponse{Index: req.GetIndex(), Entry: e}, nil
}

func (s *ledgerServer) ListEntries(ctx context.Context, req *vitalproofv1.ListEntriesRequest) (*vitalproofv1.ListEntriesResponse, error) {
	es, err := s.b.Entries(ctx, req.GetStart(), int(req.GetCount()))
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.ListEntriesResponse{Start: req.GetStart(), Entries: es}, nil
}

func (s *ledgerServer) GetInclusionProof(ctx context.Context, req *vitalproofv1.GetInclusionProofRequest) (*vitalproofv1.GetInclusionProofResponse, error) {
	p, err := s.b.InclusionProof(ctx, req.GetIndex(), req.GetTreeSize())
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.GetInclusionProofResponse{
		Index:      p.Index,
		TreeSize:   p.TreeSize,
		Hashes:     hashesProto(p.Hashes),
		Checkpoint: string(p.Checkpoint),
	}, nil
}

func (s *ledgerServer) GetReceipt(ctx context.Context, req *vitalproofv1.GetReceiptRequest) (*vitalproofv1.GetReceiptResponse, error) {
	r, err := s.b.Receipt(ctx, req.GetIndex())
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.GetReceiptResponse{Index: req.GetIndex(), Receipt: string(r)}, nil
}

func (s *ledgerServer) GetCheckpoint(ctx context.Context, _ *vitalproofv1.GetCheckpointRequest) (*vitalproofv1.GetCheckpointResponse, error) {
	cp, err := s.b.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.GetCheckpointResponse{Checkpoint: string(cp)}, nil
}

func (s *ledgerServer) GetConsistencyProof(ctx context.Context, req *vitalproofv1.GetConsistencyProofRequest) (*vitalproofv1.GetConsistencyProofResponse, error) {
	p, err := s.b.ConsistencyProof(ctx, req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	return &vitalproofv1.GetConsistencyProofResponse{From: req.GetFrom(), To: req.GetTo(), Hashes: hashesProto(p)}, nil
}

func (s *ledgerServer) ListCheckpoints(ctx context.Context, req *vitalproofv1.ListCheckpointsRequest) (*vitalproofv1.ListCheckpointsResponse, error) {
	limit := int(min(req.GetPageSize(), publish.MaxHistoryLimit))
	if limit == 0 {
		limit = publish.DefaultHistoryLimit
	}
	cs, err := s.b.CheckpointHistory(ctx, req.GetBeforeSize(), limit)
	if err != nil {
		return nil, err
	}
	resp := &vitalproofv1.ListCheckpointsResponse{Checkpoints: make([]*vitalproofv1.PublishedCheckpoint, len(cs))}
	for i, c := range cs {
		resp.Checkpoints[i] = publishedProto(c)
	}
	// A full page may have a next one; the smallest tree published has one leaf.
	if n := len(cs); n == limit && cs[n-1].Size > 1 {
		resp.NextBeforeSize = cs[n-1].Size
	}
	return resp, nil
}

func (s *ledgerServer) GetPublishedCheckpoint(ctx context.Context, req *vitalproofv1.GetPublishedCheckpointRequest) (*vitalproofv1.PublishedCheckpoint, error) {
	c, err := s.b.CheckpointAt(ctx, req.GetSize())
	if err != nil {
		return nil, err
	}
	return publishedProto(c), nil
}

func publishedProto(c publish.Checkpoint) *vitalproofv1.PublishedCheckpoint {
	return &vitalproofv1.PublishedCheckpoint{
		Size:        c.Size,
		RootHash:    c.Root[:],
		Checkpoint:  string(c.Note),
		Witnessed:   c.Witnessed,
		PublishedAt: c.PublishedAt.UTC().Format(time.RFC3339Nano),
	}
}

func (s *ledgerServer) ListVerifyingKeys(ctx context.Context, _ *vitalproofv1.ListVerifyingKeysRequest) (*vitalproofv1.ListVerifyingKeysResponse, error) {
	vks, err := s.b.VerifyingKeys(ctx)
	if err != nil {
		return nil, err
	}
	resp := &vitalproofv1.ListVerifyingKeysResponse{Keys: make([]*vitalproofv1.VerifyingKey, len(vks))}
	for i, vk := range vks {
		resp.Keys[i] = verifyingKeyProto(vk)
	}
	return resp, nil
}

func (s *ledgerServer) GetVerifyingKey(ctx context.Context, req *vitalproofv1.GetVerifyingKeyRequest) (*vitalproofv1.VerifyingKey, error) {
	vk, err := s.b.VerifyingKey(ctx, req.GetFingerprint())
	if err != nil {
		return nil, err
	}
	return verifyingKeyProto(vk), nil
}

func verifyingKeyProto(vk provenance.VerifyingKey) *vitalproofv1.VerifyingKey {
	return &vitalproofv1.VerifyingKey{
		Fingerprint:         vk.Fingerprint,
		Circuit:             vk.Meta.Circuit,
		Setup:               vk.Meta.Setup,
		UnsafeForProduction: vk.Meta.UnsafeForProduction,
		Metadata:            vk.Metadata,
		VerifyingKey:        vk.Key,
	}
}

func hashesProto(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
