package api

import (
	"context"
	"time"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/provenance/audits"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// AuditBackend is what the gateway service needs to run regulators' audits
// (implemented by *audits.Service). Errors should be *provenance.Error.
type AuditBackend interface {
	Create(ctx context.Context, regulator string, r audits.Request) (audits.Job, error)
	Job(ctx context.Context, id, regulator string) (audits.Job, error)
	Decide(ctx context.Context, id string, approve bool, reason string) (audits.Job, error)
}

func (s *gatewayServer) auditBackend() (AuditBackend, error) {
	if s.audits == nil {
		return nil, &provenance.Error{Kind: provenance.KindUnavailable, Reason: "this gateway does not run audits"}
	}
	return s.audits, nil
}

func (s *gatewayServer) CreateAudit(ctx context.Context, req *vitalproofv1.CreateAuditRequest) (*vitalproofv1.AuditJob, error) {
	a, err := s.auditBackend()
	if err != nil {
		return nil, err
	}
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't create audit: no authenticated regulator"}
	}
	j, err := a.Create(ctx, p.ID, audits.Request{
		Parts:    req.GetStatement(),
		DeviceID: req.GetDeviceId(),
		Metric:   req.GetMetric(),
		Params: statement.Params{
			RangeLo: req.GetRangeLo(), RangeHi: req.GetRangeHi(),
			TIRLo: req.GetTirLo(), TIRHi: req.GetTirHi(), TIRPercent: req.GetTirPercent(),
			MinDays: req.GetMinDays(), MeanBound: req.GetMeanBound(), MaxBound: req.GetMaxBound(),
		},
		PeriodStart: req.GetPeriodStart(),
		PeriodEnd:   req.GetPeriodEnd(),
	})
	if err != nil {
		return nil, err
	}
	return auditJobProto(j), nil
}

func (s *gatewayServer) GetAudit(ctx context.Context, req *vitalproofv1.GetAuditRequest) (*vitalproofv1.AuditJob, error) {
	a, err := s.auditBackend()
	if err != nil {
		return nil, err
	}
	p, _ := PrincipalFrom(ctx)
	regulator := p.ID // a regulator sees its own jobs only
	if p.Role == provenance.RoleAdmin {
		regulator = ""
	}
	j, err := a.Job(ctx, req.GetId(), regulator)
	if err != nil {
		return nil, err
	}
	return auditJobProto(j), nil
}

func (s *gatewayServer) DecideAudit(ctx context.Context, req *vitalproofv1.DecideAuditRequest) (*vitalproofv1.AuditJob, error) {
	a, err := s.auditBackend()
	if err != nil {
		return nil, err
	}
	j, err := a.Decide(ctx, req.GetId(), req.GetApprove(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return auditJobProto(j), nil
}

func auditJobProto(j audits.Job) *vitalproofv1.AuditJob {
	r := j.Request
	return &vitalproofv1.AuditJob{
		Id:       j.ID,
		State:    string(j.State),
		Stage:    j.Stage,
		Progress: uint32(j.Progress),
		Message:  j.Message,
		Request: &vitalproofv1.CreateAuditRequest{
			Statement: r.Parts, DeviceId: r.DeviceID, Metric: r.Metric, PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd,
			RangeLo: r.Params.RangeLo, RangeHi: r.Params.RangeHi, TirLo: r.Params.TIRLo, TirHi: r.Params.TIRHi, TirPercent: r.Params.TIRPercent,
			MinDays: r.Params.MinDays, MeanBound: r.Params.MeanBound, MaxBound: r.Params.MaxBound,
		},
		Entries:    uint32(j.Entries),
		Readings:   uint32(j.Readings),
		Circuit:    j.Circuit,
		UnsafeKeys: j.UnsafeKeys,
		Bundle:     j.Bundle,
		CreatedAt:  j.Created.UTC().Format(time.RFC3339Nano),
		UpdatedAt:  j.Updated.UTC().Format(time.RFC3339Nano),
	}
}
