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
	"github.com/vitalproof/vitalproof/wearables"
)

// TestLifecycle runs a device through its life at the ledger: made,
// shipped, commissioned by the hospital, updated, recalled; every event
// signed by the party entitled to it and checked against the device's
// state, and readings refused once the device is recalled, with nothing
// stored.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hsigner, err := loadOrCreateSigner(e.cfg.Gateway.HospitalKeyFile, testHospital)
	if err != nil {
		t.Fatal(err)
	}
	hA := hospitalAccount{hsigner, e.hospitalKey}
	sB, kB := e.registerHospital("hospital-b")
	maker, makerKey := e.admitManufacturerWithKey("test-maker", hA, hospitalAccount{sB, kB})

	now := time.Now()
	// event makes the device's next event from its state at the ledger and
	// records it as apiKey.
	event := func(signer note.Signer, apiKey string, kind wearables.EventKind, at time.Time, d wearables.EventDetails, seqDelta int) (*v1.Lifecycle, error) {
		t.Helper()
		dev, err := e.ledger.GetDevice(e.as(ctx, e.adminKey), &v1.GetDeviceRequest{DeviceId: testDevice})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := wearables.NewEvent(testDevice, kind, uint64(int(dev.Lifecycle.Seq)+1+seqDelta), [32]byte(dev.Lifecycle.Head), at, signer.Name(), d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ev.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return e.ledger.RecordEvent(e.as(ctx, apiKey), &v1.RecordEventRequest{Event: string(b)})
	}
	mustEvent := func(signer note.Signer, apiKey string, kind wearables.EventKind, at time.Time, d wearables.EventDetails, want string) {
		t.Helper()
		l, err := event(signer, apiKey, kind, at, d, 0)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if l.Status != want {
			t.Fatalf("after %s the device is %s; want %s", kind, l.Status, want)
		}
	}
	mustEvent(maker, makerKey, wearables.EventManufactured, now.Add(-10*time.Hour), wearables.EventDetails{}, "manufactured")
	mustEvent(maker, makerKey, wearables.EventShipped, now.Add(-9*time.Hour), wearables.EventDetails{Hospital: testHospital}, "shipped")
	mustEvent(hsigner, e.hospitalKey, wearables.EventCommissioned, now.Add(-8*time.Hour), wearables.EventDetails{Hospital: testHospital}, "in_service")
	mustEvent(maker, makerKey, wearables.EventFirmware, now.Add(-7*time.Hour), wearables.EventDetails{Firmware: "1.1.0", FirmwareDigest: [32]byte{1}}, "in_service")

	submit := func(h int) error {
		_, err := e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(h), values: values(4, 70), noAdvance: true}))
		return err
	}
	advance := func(h int) {
		t.Helper()
		if _, err := e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(h), values: values(4, 70)})); err != nil {
			t.Fatalf("batch of hour -%d while in service: %v", h, err)
		}
	}
	advance(6)
	// Entries of format v2 name the firmware: the old version is refused,
	// and nothing is stored.
	entries, batches := e.count(e.ledgerDB, "entries"), e.count(e.gatewayDB, "batches")
	_, err = e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(5), values: values(4, 70), noAdvance: true,
		header: func(h *wearables.EntryHeader) { h.Firmware = "1.0.0" }}))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "firmware") {
		t.Errorf("a batch from stale firmware = %v; want PermissionDenied naming the firmware", err)
	}
	if e.count(e.ledgerDB, "entries") != entries || e.count(e.gatewayDB, "batches") != batches {
		t.Error("a batch from stale firmware left rows behind")
	}
	if _, err := e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(5), values: values(4, 70),
		header: func(h *wearables.EntryHeader) { h.Firmware = "1.1.0" }})); err != nil {
		t.Errorf("a batch from the current firmware: %v", err)
	}

	// Recalled three hours ago: later readings are refused, earlier ones not.
	mustEvent(maker, makerKey, wearables.EventRecalled, now.Add(-3*time.Hour), wearables.EventDetails{Reason: "battery may overheat"}, "recalled")
	entries, batches = e.count(e.ledgerDB, "entries"), e.count(e.gatewayDB, "batches")
	err = submit(2)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "recalled") {
		t.Errorf("a batch after the recall = %v; want PermissionDenied naming the recall", err)
	}
	if e.count(e.ledgerDB, "entries") != entries || e.count(e.gatewayDB, "batches") != batches {
		t.Error("a refused batch left rows behind")
	}
	advance(4) // its window ends before the recall

	// Refused events, each with its reason.
	for _, c := range []struct {
		name   string
		signer note.Signer
		key    string
		kind   wearables.EventKind
		d      wearables.EventDetails
		delta  int
		code   codes.Code
		msg    string
	}{
		{"commissioning a recalled device", hsigner, e.hospitalKey, wearables.EventCommissioned, wearables.EventDetails{Hospital: testHospital}, 0, codes.AlreadyExists, "cannot commission a recalled device"},
		{"a firmware update by a hospital", hsigner, e.hospitalKey, wearables.EventFirmware, wearables.EventDetails{Firmware: "9", FirmwareDigest: [32]byte{2}}, 0, codes.AlreadyExists, "recalled"},
		{"a second recall", maker, makerKey, wearables.EventRecalled, wearables.EventDetails{Reason: "again"}, 0, codes.AlreadyExists, "recall"},
		{"a skipped link", maker, makerKey, wearables.EventDecommissioned, wearables.EventDetails{}, 1, codes.AlreadyExists, "seq"},
		{"an event signed as another party", maker, e.hospitalKey, wearables.EventDecommissioned, wearables.EventDetails{}, 0, codes.PermissionDenied, "actor"},
	} {
		_, err := event(c.signer, c.key, c.kind, now.Add(-time.Hour), c.d, c.delta)
		if status.Code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %v mentioning %q", c.name, err, c.code, c.msg)
		}
	}
	// Another hospital, another manufacturer: told the device does not exist.
	rival, rivalKey := e.admitManufacturerWithKey("rival-maker", hA, hospitalAccount{sB, kB})
	for _, o := range []struct {
		signer note.Signer
		key    string
	}{{sB, kB}, {rival, rivalKey}} {
		_, err := event(o.signer, o.key, wearables.EventDecommissioned, now.Add(-time.Hour), wearables.EventDetails{}, 0)
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "not registered") {
			t.Errorf("%s recording an event on another's device = %v; want the answer for an unknown device", o.signer.Name(), err)
		}
	}
	skey, _, _ := note.GenerateKey(rand.Reader, "test-maker")
	impostor, _ := note.NewSigner(skey)
	if _, err := event(impostor, makerKey, wearables.EventDecommissioned, now.Add(-time.Hour), wearables.EventDetails{}, 0); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an event signed by another key = %v; want InvalidArgument", err)
	}
	// The hospital that commissioned the device decommissions it.
	mustEvent(hsigner, e.hospitalKey, wearables.EventDecommissioned, now.Add(-time.Hour), wearables.EventDetails{}, "decommissioned")

	dev, err := e.ledger.GetDevice(e.as(ctx, makerKey), &v1.GetDeviceRequest{DeviceId: testDevice})
	if err != nil {
		t.Fatal(err)
	}
	if l := dev.Lifecycle; l.Status != "decommissioned" || l.Seq != 6 || l.RecallReason != "battery may overheat" || l.Firmware != "1.1.0" || dev.Firmware != "1.1.0" {
		t.Errorf("device after its life: %v", dev)
	}
	// The events are in the device's history, in order.
	if _, err := e.node.Ledger.IndexLog(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := e.ledger.GetDeviceHistory(e.as(ctx, makerKey), &v1.GetDeviceHistoryRequest{DeviceId: testDevice, Order: "oldest"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range h.Items {
		if it.Kind == "event" {
			er, err := wearables.ParseEvent(it.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, string(er.Event.Kind))
		}
	}
	if got := strings.Join(kinds, ","); got != "manufactured,shipped,commissioned,firmware,recalled,decommissioned" {
		t.Errorf("events in the history: %s", got)
	}
}
