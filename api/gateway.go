package api

import (
	"context"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
)

// GatewayBackend is what the gateway service needs of a hospital's gateway
// (implemented by *provenance.Gateway). Errors should be
// *provenance.Error; any other error is reported to the client as an
// internal error.
type GatewayBackend interface {
	Authenticate(ctx context.Context, apiKey string) (provenance.Principal, error)
	SubmitBatch(ctx context.Context, b provenance.BatchSubmission) (provenance.BatchResult, error)
	SubmitFHIR(ctx context.Context, resource []byte) ([]provenance.BatchResult, error)
	Receipt(ctx context.Context, index uint64) (provenance.BatchResult, error)
}

type gatewayServer struct {
	vitalproofv1.UnimplementedGatewayServiceServer
	b      GatewayBackend
	audits AuditBackend
}

// NewGatewayServer returns the gateway service over b, and over a for
// audits (nil: the gateway runs none and says so). It only translates
// between the wire and its backends; serve it on a server from
// [NewGRPCServer], whose interceptors authenticate callers and map the
// backends' errors to statuses.
func NewGatewayServer(b GatewayBackend, a AuditBackend) vitalproofv1.GatewayServiceServer {
	return &gatewayServer{b: b, audits: a}
}

func (s *gatewayServer) authenticate(ctx context.Context, apiKey string) (provenance.Principal, error) {
	return s.b.Authenticate(ctx, apiKey)
}

func (s *gatewayServer) SubmitBatch(ctx context.Context, req *vitalproofv1.SubmitBatchRequest) (*vitalproofv1.BatchResult, error) {
	readings := make([]wearables.Reading, len(req.GetReadings()))
	for i, r := range req.GetReadings() {
		readings[i] = wearables.Reading{Offset: r.GetOffset(), Value: r.GetValue()}
	}
	res, err := s.b.SubmitBatch(ctx, provenance.BatchSubmission{
		Entry:      []byte(req.GetEntry()),
		Salt:       req.GetSalt(),
		Readings:   readings,
		PatientRef: req.GetPatientRef(),
	})
	if err != nil {
		return nil, err
	}
	return batchResultProto(res), nil
}

func (s *gatewayServer) SubmitFHIR(ctx context.Context, req *vitalproofv1.SubmitFHIRRequest) (*vitalproofv1.SubmitFHIRResponse, error) {
	results, err := s.b.SubmitFHIR(ctx, req.GetResource())
	if err != nil {
		return nil, err
	}
	resp := &vitalproofv1.SubmitFHIRResponse{Results: make([]*vitalproofv1.BatchResult, len(results))}
	for i, r := range results {
		resp.Results[i] = batchResultProto(r)
	}
	return resp, nil
}

func (s *gatewayServer) GetReceipt(ctx context.Context, req *vitalproofv1.GetReceiptRequest) (*vitalproofv1.BatchResult, error) {
	res, err := s.b.Receipt(ctx, req.GetIndex())
	if err != nil {
		return nil, err
	}
	return batchResultProto(res), nil
}

func batchResultProto(r provenance.BatchResult) *vitalproofv1.BatchResult {
	return &vitalproofv1.BatchResult{
		Index:       r.Index,
		LeafHash:    r.LeafHash[:],
		Pending:     r.Pending,
		Integrated:  r.Integrated,
		Duplicate:   r.Duplicate,
		Receipt:     string(r.Receipt),
		DeviceId:    r.DeviceID,
		Metric:      r.Metric,
		Attestation: string(r.Attestation),
		Readings:    uint32(r.Readings),
	}
}
