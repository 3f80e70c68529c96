package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// awaitAudit polls an audit job until it leaves the queue and the prover.
func (e *env) awaitAudit(key, id string) *v1.AuditJob {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j, err := e.gateway.GetAudit(e.as(context.Background(), key), &v1.GetAuditRequest{Id: id})
		if err != nil {
			e.t.Fatalf("GetAudit(%s): %v", id, err)
		}
		switch j.State {
		case "done", "failed", "refused":
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("audit %s still %s (%s, %d%%)", id, j.State, j.Stage, j.Progress)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAudit runs a regulator's audit end to end on a real node: the
// hospital approves it, the gateway proves a true statement over its
// private readings and returns a bundle that verifies offline against the
// policy, the published verifying keys and the registry's key; a false
// statement is refused without a proof; regulators see only their own
// audits; nothing private leaves the gateway.
func TestAudit(t *testing.T) {
	e := &env{t: t, cfg: newConfig(t), chains: map[string]chainHead{}}
	e.cfg.Gateway.Audit.DevKeys = true
	e.cfg.Gateway.Audit.Shapes = []string{"4x6"}
	e.setup()
	ctx := context.Background()
	regulator, err := provenance.CreateGatewayAPIKey(ctx, e.gatewayDB, "regulator-a", provenance.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	other, err := provenance.CreateGatewayAPIKey(ctx, e.gatewayDB, "regulator-b", provenance.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	gwAdmin := readFile(t, e.cfg.Gateway.AdminKeyFile)

	// Four hourly glucose batches; the audit covers the first three, the
	// fourth brackets them.
	const patient = "Patient/canary-7731"
	var salts [][]byte
	for h := 5; h >= 2; h-- {
		req := e.batch(batchSpec{metric: "glucose", start: hour(h), values: []uint32{101, 117, 130, 96, 88}})
		req.PatientRef = patient
		salts = append(salts, req.Salt)
		res, err := e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), req)
		if err != nil || res.Pending {
			t.Fatalf("SubmitBatch: %v, %+v", err, res)
		}
	}
	period := func(r *v1.CreateAuditRequest) *v1.CreateAuditRequest {
		r.DeviceId, r.Metric = testDevice, "glucose"
		r.PeriodStart, r.PeriodEnd = hour(5).Unix(), hour(2).Unix()
		return r
	}

	// Asked, then awaiting the hospital; a regulator cannot approve.
	j, err := e.gateway.CreateAudit(e.as(ctx, regulator), period(&v1.CreateAuditRequest{Statement: "range+mean", RangeLo: 70, RangeHi: 180, MeanBound: 140}))
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "awaiting_approval" {
		t.Fatalf("new audit is %s; want awaiting_approval", j.State)
	}
	if _, err := e.gateway.DecideAudit(e.as(ctx, regulator), &v1.DecideAuditRequest{Id: j.Id, Approve: true}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("regulator approving its own audit = %v; want PermissionDenied", err)
	}
	if _, err := e.gateway.GetAudit(e.as(ctx, other), &v1.GetAuditRequest{Id: j.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("another regulator reading the audit = %v; want NotFound", err)
	}
	if _, err := e.gateway.DecideAudit(e.as(ctx, gwAdmin), &v1.DecideAuditRequest{Id: j.Id, Approve: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gateway.DecideAudit(e.as(ctx, gwAdmin), &v1.DecideAuditRequest{Id: j.Id, Approve: false}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("deciding twice = %v; want a conflict", err)
	}
	done := e.awaitAudit(regulator, j.Id)
	if done.State != "done" || len(done.Bundle) == 0 {
		t.Fatalf("audit = %s (%s); want done with a bundle", done.State, done.Message)
	}
	if done.Entries != 3 || done.Readings != 15 || !done.UnsafeKeys || done.Circuit == "" {
		t.Errorf("audit = %d entries, %d readings, circuit %q, unsafe %v; want 3, 15, a circuit, development keys", done.Entries, done.Readings, done.Circuit, done.UnsafeKeys)
	}

	// The bundle verifies offline with the published verifying keys.
	ks, err := audit.OpenKeyDir(ctx, e.cfg.Ledger.ZKKeysDir)
	if err != nil {
		t.Fatal(err)
	}
	registrar, err := note.NewVerifier(readFile(t, e.cfg.Ledger.RegistryKeyFile+".vkey"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(ctx, done.Bundle, e.policy(), ks, audit.WithRegistrar(registrar))
	if err != nil {
		t.Fatalf("bundle does not verify: %v", err)
	}
	if res.Kinds != statement.Range|statement.MeanBelow || res.DeviceID != testDevice || res.Entries != 3 || !res.Unsafe || !res.RegistrarVerified {
		t.Errorf("verified %+v; want range+mean over 3 entries of %s, development keys, registrar checked", res, testDevice)
	}
	keysList, err := e.ledger.ListVerifyingKeys(ctx, &v1.ListVerifyingKeysRequest{})
	if err != nil || len(keysList.Keys) != 1 || keysList.Keys[0].Fingerprint != fingerprintHex(res.VerifyingKey) {
		t.Errorf("ledger serves %v, %v; want the bundle's key", keysList, err)
	}
	// A changed parameter no longer verifies.
	tampered := bytes.Replace(done.Bundle, []byte("\nmean 140\n"), []byte("\nmean 139\n"), 1)
	if bytes.Equal(tampered, done.Bundle) {
		t.Fatal("bundle has no mean line to tamper with")
	}
	if _, err := audit.Verify(ctx, tampered, e.policy(), ks); err == nil {
		t.Error("a bundle with a changed bound verifies")
	}

	// A false statement: no proof, a clear reason.
	j2, err := e.gateway.CreateAudit(e.as(ctx, regulator), period(&v1.CreateAuditRequest{Statement: "max", MaxBound: 120}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gateway.DecideAudit(e.as(ctx, gwAdmin), &v1.DecideAuditRequest{Id: j2.Id, Approve: true}); err != nil {
		t.Fatal(err)
	}
	failed := e.awaitAudit(regulator, j2.Id)
	if failed.State != "failed" || !strings.Contains(failed.Message, "statement is false") || len(failed.Bundle) != 0 {
		t.Errorf("false statement: %s %q, %d-byte bundle; want failed, saying it is false, no bundle", failed.State, failed.Message, len(failed.Bundle))
	}

	// Refused by the hospital.
	j3, err := e.gateway.CreateAudit(e.as(ctx, other), period(&v1.CreateAuditRequest{Statement: "adherence", MinDays: 1}))
	if err != nil {
		t.Fatal(err)
	}
	refused, err := e.gateway.DecideAudit(e.as(ctx, gwAdmin), &v1.DecideAuditRequest{Id: j3.Id, Reason: "no data-sharing agreement"})
	if err != nil || refused.State != "refused" || !strings.Contains(refused.Message, "no data-sharing agreement") {
		t.Errorf("refusal = %v, %v", refused, err)
	}

	// Bad requests are refused at once.
	for _, bad := range []*v1.CreateAuditRequest{
		period(&v1.CreateAuditRequest{Statement: "median"}),
		period(&v1.CreateAuditRequest{Statement: "range", RangeLo: 1, RangeHi: 2, MeanBound: 9}),
		{Statement: "range", DeviceId: testDevice, Metric: "glucose", PeriodStart: 10, PeriodEnd: 5},
		{Statement: "range", DeviceId: testDevice, Metric: "cholesterol", PeriodStart: 1, PeriodEnd: 5},
	} {
		if _, err := e.gateway.CreateAudit(e.as(ctx, regulator), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateAudit(%v) = %v; want InvalidArgument", bad, err)
		}
	}
	if _, err := e.gateway.CreateAudit(e.as(ctx, e.submitterKey), period(&v1.CreateAuditRequest{Statement: "range", RangeLo: 1, RangeHi: 2})); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a submitter asking for an audit = %v; want PermissionDenied", err)
	}

	// Canary: no salt, reading or patient reference in the bundle, the
	// jobs' messages or the logs.
	all := string(done.Bundle) + failed.Message + refused.Message + e.logs.String()
	if strings.Contains(all, patient) {
		t.Error("the patient reference leaked")
	}
	for _, salt := range salts {
		if strings.Contains(all, base64.StdEncoding.EncodeToString(salt)) || bytes.Contains(done.Bundle, salt) {
			t.Error("a salt leaked")
		}
	}
}

func fingerprintHex(fp [32]byte) string {
	const hexdigits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range fp {
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}
