package node

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
)

// registerHospital admits a hospital with a fresh key and returns its
// signer and API key.
func (e *env) registerHospital(id string) (note.Signer, string) {
	e.t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, id)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		e.t.Fatal(err)
	}
	_, pub, err := wearables.ParseVerifierKey(vkey)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.ledger.RegisterHospital(e.as(context.Background(), e.adminKey), &v1.RegisterHospitalRequest{HospitalId: id, Name: id, PublicKey: pub})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, resp.ApiKey
}

// TestManufacturerAdmission checks that a manufacturer the operator
// proposes is admitted only by a quorum of member hospitals' signed
// approvals, each appended to the log, and suspended the same way.
func TestManufacturerAdmission(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	h1, k1 := e.registerHospital("hospital-one")
	h2, k2 := e.registerHospital("hospital-two")
	h3, k3 := e.registerHospital("hospital-three")

	mskey, mvkey, _ := note.GenerateKey(rand.Reader, "acme-devices")
	msigner, _ := note.NewSigner(mskey)
	_, mpub, _ := wearables.ParseVerifierKey(mvkey)
	prop, err := e.ledger.ProposeManufacturer(e.as(ctx, e.adminKey), &v1.ProposeManufacturerRequest{ManufacturerId: "acme-devices", Name: "ACME Devices", PublicKey: mpub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ledger.ProposeManufacturer(e.as(ctx, k1), &v1.ProposeManufacturerRequest{ManufacturerId: "other", Name: "Other", PublicKey: mpub}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a hospital proposing a manufacturer = %v; want PermissionDenied", err)
	}
	if _, err := e.ledger.ProposeManufacturer(e.as(ctx, e.adminKey), &v1.ProposeManufacturerRequest{ManufacturerId: "acme-devices", Name: "Again", PublicKey: mpub}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("proposing twice = %v; want a conflict", err)
	}

	vote := func(s note.Signer, action provenance.ApprovalAction, key []byte, at time.Time) string {
		t.Helper()
		b, err := (&provenance.Approval{Manufacturer: "acme-devices", Action: action, PublicKey: key, Hospital: s.Name(), Time: at.Unix()}).Sign(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	approve := func(apiKey, approval string) (*v1.Manufacturer, error) {
		return e.ledger.ApproveManufacturer(e.as(ctx, apiKey), &v1.ApproveManufacturerRequest{ManufacturerId: "acme-devices", Approval: approval})
	}
	size := e.treeSize()

	// One approval is not a quorum: the manufacturer's key does not work yet.
	m, err := approve(k1, vote(h1, provenance.ActionAdmit, mpub, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "proposed" || len(m.AdmittedBy) != 1 || m.Quorum != 2 {
		t.Fatalf("after one approval: %v; want proposed, one approval of two", m)
	}
	if _, err := e.ledger.GetManufacturer(e.as(ctx, prop.ApiKey), &v1.GetManufacturerRequest{ManufacturerId: "acme-devices"}); err != nil {
		t.Errorf("the manufacturer reading itself: %v", err)
	}

	_, otherPub, _ := wearables.ParseVerifierKey(mustVkey(t, "acme-devices"))
	refusals := []struct {
		name     string
		apiKey   string
		approval string
		code     codes.Code
		msg      string
	}{
		{"approving twice", k1, vote(h1, provenance.ActionAdmit, mpub, time.Now()), codes.AlreadyExists, "already approved"},
		{"signed by another hospital's key", k2, vote(h3, provenance.ActionAdmit, mpub, time.Now()), codes.InvalidArgument, "does not verify"},
		{"for another key than proposed", k2, vote(h2, provenance.ActionAdmit, otherPub, time.Now()), codes.InvalidArgument, "another key"},
		{"stale", k2, vote(h2, provenance.ActionAdmit, mpub, time.Now().Add(-48*time.Hour)), codes.InvalidArgument, "within the last day"},
		{"suspending a manufacturer not admitted", k2, vote(h2, provenance.ActionSuspend, mpub, time.Now()), codes.AlreadyExists, "only an admitted manufacturer"},
		{"not a note", k2, "approve acme", codes.InvalidArgument, "approval"},
		{"the operator voting", e.adminKey, vote(h2, provenance.ActionAdmit, mpub, time.Now()), codes.PermissionDenied, ""},
	}
	for _, r := range refusals {
		_, err := approve(r.apiKey, r.approval)
		if status.Code(err) != r.code || !strings.Contains(status.Convert(err).Message(), r.msg) {
			t.Errorf("%s: %v; want %v mentioning %q", r.name, err, r.code, r.msg)
		}
	}

	// The second hospital makes the quorum.
	m, err = approve(k2, vote(h2, provenance.ActionAdmit, mpub, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "admitted" || strings.Join(m.AdmittedBy, ",") != "hospital-one,hospital-two" {
		t.Fatalf("after two approvals: %v; want admitted by hospital-one and hospital-two", m)
	}
	// Both approvals are leaves of the log, as signed.
	if got := e.treeSize(); got != size+2 {
		t.Errorf("tree grew from %d to %d; want the two approvals", size, got)
	}
	found := 0
	for i := size; i < size+2; i++ {
		leaf, err := e.ledger.GetEntry(ctx, &v1.GetEntryRequest{Index: i})
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(leaf.Entry), "vitalproof/approval/v1\nmanufacturer acme-devices\naction admit\n") {
			found++
		}
	}
	if found != 2 {
		t.Errorf("%d approvals found in the log; want 2", found)
	}
	// A manufacturer sees itself, not another.
	if _, err := e.ledger.GetManufacturer(e.as(ctx, prop.ApiKey), &v1.GetManufacturerRequest{ManufacturerId: "other-maker"}); status.Code(err) != codes.NotFound {
		t.Errorf("a manufacturer reading another = %v; want NotFound", err)
	}

	// The admitted manufacturer registers a device with a record it signs.
	register := func(signer note.Signer, maker, device string) (*v1.Device, error) {
		_, dvkey, _ := note.GenerateKey(rand.Reader, device)
		_, dpub, _ := wearables.ParseVerifierKey(dvkey)
		reg, err := wearables.NewRegistration(device, maker, testUDI, "Patch", "3.1.0", dpub, testHospital, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := reg.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return e.ledger.SubmitRegistration(e.as(ctx, prop.ApiKey), &v1.SubmitRegistrationRequest{Registration: string(rec)})
	}
	d, err := register(msigner, "acme-devices", "acme-patch-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wearables.VerifyRegistration(d.Registration, mustVerifier(t, mvkey)); err != nil || d.RegistrationIndex == nil {
		t.Errorf("registration record %q (index %v) does not verify with the manufacturer's key: %v", d.Registration, d.RegistrationIndex, err)
	}
	impostorKey, _, _ := note.GenerateKey(rand.Reader, "acme-devices")
	impostor, _ := note.NewSigner(impostorKey)
	if _, err := register(impostor, "acme-devices", "acme-patch-2"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a record signed by another key = %v; want InvalidArgument", err)
	}
	otherKey, _, _ := note.GenerateKey(rand.Reader, "other-maker")
	other, _ := note.NewSigner(otherKey)
	if _, err := register(other, "other-maker", "acme-patch-3"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a record of another manufacturer = %v; want refused", err)
	}
	if _, err := register(msigner, "acme-devices", "acme-patch-1"); status.Code(err) != codes.AlreadyExists {
		t.Errorf("registering twice = %v; want a conflict", err)
	}

	// Suspension takes a quorum too.
	if m, err = approve(k3, vote(h3, provenance.ActionSuspend, mpub, time.Now())); err != nil || m.Status != "admitted" {
		t.Fatalf("one suspension vote: %v, %v; want still admitted", m, err)
	}
	if m, err = approve(k1, vote(h1, provenance.ActionSuspend, mpub, time.Now())); err != nil || m.Status != "suspended" {
		t.Fatalf("two suspension votes: %v, %v; want suspended", m, err)
	}
	if _, err := register(msigner, "acme-devices", "acme-patch-4"); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "suspended") {
		t.Errorf("a suspended manufacturer registering = %v; want PermissionDenied naming the suspension", err)
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustVkey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}
