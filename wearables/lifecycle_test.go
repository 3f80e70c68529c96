package wearables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const (
	testManufacturer  = "acme-medical" // testRegistration's manufacturer
	testOtherHospital = "other-hospital"
	testOtherMaker    = "other-maker"
	// testT0 is testRegistration's registration time.
	testT0 = 1700000000
)

var (
	testPrev   = [32]byte{1, 2, 3}
	testDigest = [32]byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
		0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}
)

// testActor returns the deterministic signer and verifier of an actor of
// the lifecycle tests.
func testActor(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	seeds := map[string]byte{testManufacturer: 3, testHospital: 2, testOtherHospital: 5, testOtherMaker: 6, testDevice: 1}
	seed, ok := seeds[name]
	if !ok {
		t.Fatalf("test bug: no key for %q", name)
	}
	return testKey(t, name, seed)
}

// testRegRecord returns testRegistration signed by the registrar and parsed.
func testRegRecord(t testing.TB) *RegistrationRecord {
	t.Helper()
	reg, _ := testKey(t, testRegistrar, 7)
	raw, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := ParseRegistration(raw)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// details returns the usual details of an event of kind made by actor.
func details(kind EventKind, actor string) EventDetails {
	switch kind {
	case EventShipped:
		return EventDetails{Hospital: testHospital}
	case EventCommissioned:
		return EventDetails{Hospital: actor}
	case EventFirmware:
		return EventDetails{Firmware: "1.5.0", FirmwareDigest: testDigest}
	case EventRecalled:
		return EventDetails{Reason: "battery may overheat"}
	}
	return EventDetails{}
}

// testEvent returns a valid event of kind made by actor, with the usual
// details, at seq 3.
func testEvent(t testing.TB, kind EventKind, actor string) *Event {
	t.Helper()
	e, err := NewEvent(testDevice, kind, 3, testPrev, time.Unix(testT0+3600, 0), actor, details(kind, actor))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// signEvent signs e with its actor's key and parses it.
func signEvent(t testing.TB, e *Event) *EventRecord {
	t.Helper()
	s, _ := testActor(t, e.Actor)
	raw, err := e.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	er, err := ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	return er
}

// step is one event of a device's history.
type step struct {
	kind  EventKind
	actor string
	at    int64 // 0: an hour after the previous step
}

// nextRecord returns the signed event of st continuing s's chain, with the
// usual details, without checking it against s.
func nextRecord(t testing.TB, s DeviceState, st step) *EventRecord {
	t.Helper()
	at := st.at
	if at == 0 {
		at = max(s.Updated, testT0) + 3600
	}
	e, err := NewEvent(s.Device, st.kind, s.Seq+1, s.Head, time.Unix(at, 0), st.actor, details(st.kind, st.actor))
	if err != nil {
		t.Fatal(err)
	}
	return signEvent(t, e)
}

// replay applies steps to the state of the test registration.
func replay(t testing.TB, steps ...step) DeviceState {
	t.Helper()
	s := NewDeviceState(testRegRecord(t))
	for _, st := range steps {
		var err error
		if s, err = s.Apply(nextRecord(t, s, st)); err != nil {
			t.Fatalf("%s by %s: %v", st.kind, st.actor, err)
		}
	}
	return s
}

var (
	toManufactured = []step{{EventManufactured, testManufacturer, 0}}
	toShipped      = append(toManufactured[:1:1], step{EventShipped, testManufacturer, 0})
	toInService    = append(toShipped[:2:2], step{EventCommissioned, testHospital, 0})
	toRecalled     = append(toInService[:3:3], step{EventRecalled, testManufacturer, 0})
	toDecommission = append(toInService[:3:3], step{EventDecommissioned, testHospital, 0})
	pathTo         = map[LifecycleStatus][]step{
		StatusRegistered:     nil,
		StatusManufactured:   toManufactured,
		StatusShipped:        toShipped,
		StatusInService:      toInService,
		StatusRecalled:       toRecalled,
		StatusDecommissioned: toDecommission,
	}
)

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		kind  EventKind
		actor string
	}{
		{EventManufactured, testManufacturer},
		{EventShipped, testManufacturer},
		{EventCommissioned, testHospital},
		{EventFirmware, testManufacturer},
		{EventRecalled, testManufacturer},
		{EventDecommissioned, testHospital},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			e := testEvent(t, tt.kind, tt.actor)
			s, v := testActor(t, tt.actor)
			raw, err := e.Sign(s)
			if err != nil {
				t.Fatal(err)
			}
			for name, parse := range map[string]func([]byte) (*EventRecord, error){
				"ParseEvent":  ParseEvent,
				"VerifyEvent": func(b []byte) (*EventRecord, error) { return VerifyEvent(b, v) },
			} {
				er, err := parse(raw)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if er.Event != *e {
					t.Errorf("%s: event = %+v, want %+v", name, er.Event, *e)
				}
				if !bytes.Equal(er.Bytes, raw) {
					t.Errorf("%s: bytes differ from the input", name)
				}
				if er.LeafHash() != sha256.Sum256(append([]byte{0}, raw...)) || er.LeafHash() != LeafHash(raw) {
					t.Errorf("%s: LeafHash is not SHA-256(0x00 || event)", name)
				}
			}
			body, err := e.Body()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ParseEventBody(string(body)); err != nil || *got != *e {
				t.Errorf("ParseEventBody = %+v, %v", got, err)
			}
			if again, _ := e.Sign(s); !bytes.Equal(raw, again) {
				t.Error("signing twice gave different bytes")
			}
		})
	}
}

func TestEventGolden(t *testing.T) {
	// The v1 format, pinned: any change of the encoding breaks this test.
	const head = "vitalproof/event/v1\n" +
		"device band-1\n" +
		"event %s\n" +
		"seq 3\n" +
		"prev AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"time 1700003600\n" +
		"actor %s\n"
	tests := []struct {
		kind  EventKind
		actor string
		extra string
	}{
		{EventManufactured, testManufacturer, ""},
		{EventShipped, testManufacturer, "hospital general-hospital\n"},
		{EventCommissioned, testHospital, "hospital general-hospital\n"},
		{EventFirmware, testManufacturer, "firmware 1.5.0 ERERERERERERERERERERERERERERERERERERERERERE=\n"},
		{EventRecalled, testManufacturer, "reason battery may overheat\n"},
		{EventDecommissioned, testHospital, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			s, _ := testActor(t, tt.actor)
			raw, err := testEvent(t, tt.kind, tt.actor).Sign(s)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("%s\nseq", string(tt.kind)+"\nseq", "actor %s", "actor "+tt.actor).Replace(head) +
				tt.extra + "\n— " + tt.actor + " "
			if !strings.HasPrefix(string(raw), want) {
				t.Fatalf("event =\n%s\nwant prefix\n%s", raw, want)
			}
			if strings.Count(string(raw[len(want):]), "\n") != 1 {
				t.Errorf("want exactly one signature line after the body:\n%s", raw)
			}
		})
	}
}

func TestNewEventRefusals(t *testing.T) {
	type args struct {
		device string
		kind   EventKind
		seq    uint64
		prev   [32]byte
		at     time.Time
		actor  string
		d      EventDetails
	}
	ok := func(kind EventKind, actor string) args {
		return args{testDevice, kind, 1, testPrev, time.Unix(testT0, 0), actor, details(kind, actor)}
	}
	tests := []struct {
		name string
		a    args
		edit func(a *args)
	}{
		{"bad device ID", ok(EventManufactured, testManufacturer), func(a *args) { a.device = "Band-1" }},
		{"unknown kind", ok(EventManufactured, testManufacturer), func(a *args) { a.kind = "updated" }},
		{"kind in capitals", ok(EventManufactured, testManufacturer), func(a *args) { a.kind = "Manufactured" }},
		{"seq 0", ok(EventManufactured, testManufacturer), func(a *args) { a.seq = 0 }},
		{"zero prev", ok(EventManufactured, testManufacturer), func(a *args) { a.prev = [32]byte{} }},
		{"time 1970", ok(EventManufactured, testManufacturer), func(a *args) { a.at = time.Unix(0, 0) }},
		{"time before 1970", ok(EventManufactured, testManufacturer), func(a *args) { a.at = time.Unix(-5, 0) }},
		{"bad actor ID", ok(EventManufactured, testManufacturer), func(a *args) { a.actor = "acme medical" }},
		{"empty actor", ok(EventManufactured, testManufacturer), func(a *args) { a.actor = "" }},
		{"shipped without hospital", ok(EventShipped, testManufacturer), func(a *args) { a.d.Hospital = "" }},
		{"shipped to a bad hospital ID", ok(EventShipped, testManufacturer), func(a *args) { a.d.Hospital = "General" }},
		{"commissioned by a hospital other than the actor", ok(EventCommissioned, testHospital), func(a *args) { a.d.Hospital = testOtherHospital }},
		{"commissioned without hospital", ok(EventCommissioned, testHospital), func(a *args) { a.d.Hospital = "" }},
		{"manufactured naming a hospital", ok(EventManufactured, testManufacturer), func(a *args) { a.d.Hospital = testHospital }},
		{"firmware without version", ok(EventFirmware, testManufacturer), func(a *args) { a.d.Firmware = "" }},
		{"firmware version too long", ok(EventFirmware, testManufacturer), func(a *args) { a.d.Firmware = strings.Repeat("1", MaxFirmwareLen+1) }},
		{"firmware version with newline", ok(EventFirmware, testManufacturer), func(a *args) { a.d.Firmware = "1.5\nreason x" }},
		{"firmware version with leading space", ok(EventFirmware, testManufacturer), func(a *args) { a.d.Firmware = " 1.5" }},
		{"firmware without digest", ok(EventFirmware, testManufacturer), func(a *args) { a.d.FirmwareDigest = [32]byte{} }},
		{"recalled without reason", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Reason = "" }},
		{"reason too long", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Reason = strings.Repeat("r", MaxReasonLen+1) }},
		{"reason with newline", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Reason = "hot\n\n— x" }},
		{"reason not ASCII", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Reason = "surchauffe de la batterie é" }},
		{"reason with trailing space", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Reason = "hot " }},
		{"manufactured with a reason", ok(EventManufactured, testManufacturer), func(a *args) { a.d.Reason = "why" }},
		{"recalled with a firmware", ok(EventRecalled, testManufacturer), func(a *args) { a.d.Firmware = "1.5.0" }},
		{"decommissioned with a digest", ok(EventDecommissioned, testHospital), func(a *args) { a.d.FirmwareDigest = testDigest }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			if _, err := NewEvent(a.device, a.kind, a.seq, a.prev, a.at, a.actor, a.d); err != nil {
				t.Fatalf("test bug: the unedited event is refused: %v", err)
			}
			tt.edit(&a)
			e, err := NewEvent(a.device, a.kind, a.seq, a.prev, a.at, a.actor, a.d)
			if err == nil {
				t.Fatalf("accepted: %+v", e)
			}
			bad := Event{DeviceID: a.device, Kind: a.kind, Seq: a.seq, Prev: a.prev, Time: a.at.Unix(), Actor: a.actor,
				Hospital: a.d.Hospital, Firmware: a.d.Firmware, FirmwareDigest: a.d.FirmwareDigest, Reason: a.d.Reason}
			if _, err := bad.Body(); err == nil {
				t.Error("Body encoded an invalid event")
			}
		})
	}
}

func TestSignEventRefusals(t *testing.T) {
	mfr, _ := testActor(t, testManufacturer)
	hosp, _ := testActor(t, testHospital)
	e := testEvent(t, EventShipped, testManufacturer)
	if _, err := e.Sign(hosp); err == nil || !strings.Contains(err.Error(), "cannot sign for actor") {
		t.Errorf("Sign with the hospital's key for the manufacturer's event: %v", err)
	}
	bad := *e
	bad.Hospital = ""
	if _, err := bad.Sign(mfr); err == nil {
		t.Error("Sign signed an invalid event")
	}
}

// TestParseEventRefusals checks that every non-canonical or invalid variant
// of a valid event is refused, even when signed by the actor.
func TestParseEventRefusals(t *testing.T) {
	mfr, mfrV := testActor(t, testManufacturer)
	hosp, _ := testActor(t, testHospital)
	other, _ := testActor(t, testOtherMaker)
	body, err := testEvent(t, EventFirmware, testManufacturer).Body()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	valid := signText(t, text, mfr)
	if _, err := VerifyEvent(valid, mfrV); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	lines := strings.SplitAfter(text, "\n")
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("test bug: %q not in event", old)
		}
		return strings.Replace(text, old, new, 1)
	}
	withSig := func(s string) []byte { return signText(t, s, mfr) }
	prev := "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	digest := "ERERERERERERERERERERERERERERERERERERERERERE="
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	shippedBody, _ := testEvent(t, EventShipped, testManufacturer).Body()
	commissionedBody, _ := testEvent(t, EventCommissioned, testHospital).Body()
	tests := []struct {
		name  string
		event []byte
	}{
		{"reordered lines", withSig(lines[0] + lines[1] + lines[2] + lines[4] + lines[3] + strings.Join(lines[5:], ""))},
		{"seq 0", withSig(replace("seq 3", "seq 0"))},
		{"leading zero seq", withSig(replace("seq 3", "seq 03"))},
		{"negative seq", withSig(replace("seq 3", "seq -3"))},
		{"time 0", withSig(replace("time 1700003600", "time 0"))},
		{"negative time", withSig(replace("time 1700003600", "time -1700003600"))},
		{"plus sign", withSig(replace("time 1700003600", "time +1700003600"))},
		{"leading zero time", withSig(replace("time 1700003600", "time 01700003600"))},
		{"unpadded prev", withSig(replace(prev, strings.TrimRight(prev, "=")))},
		{"non-zero padding bits", withSig(replace(prev, prev[:42]+"B="))},
		{"short prev", withSig(replace(prev, "AQID"))},
		{"zero prev", withSig(replace(prev, zero))},
		{"unknown kind", withSig(replace("event firmware", "event updated"))},
		{"kind in capitals", withSig(replace("event firmware", "event Firmware"))},
		{"double space", withSig(replace("device band-1", "device  band-1"))},
		{"trailing space", withSig(replace("actor acme-medical", "actor acme-medical "))},
		{"bad device ID", withSig(replace("device band-1", "device Band-1"))},
		{"wrong key word", withSig(replace("actor acme", "signer acme"))},
		{"missing firmware line", withSig(strings.Join(lines[:7], ""))},
		{"extra line for the kind", withSig(string(shippedBody) + "reason hot\n")},
		{"manufactured naming a hospital", withSig(strings.Replace(string(shippedBody), "event shipped", "event manufactured", 1))},
		{"reason line on a firmware event", withSig(replace("firmware 1.5.0 "+digest, "reason 1.5.0"))},
		{"firmware without digest", withSig(replace("firmware 1.5.0 "+digest, "firmware 1.5.0"))},
		{"firmware digest unpadded", withSig(replace(digest, strings.TrimRight(digest, "=")))},
		{"firmware zero digest", withSig(replace(digest, zero))},
		{"firmware version with leading space", withSig(replace("firmware 1.5.0", "firmware  1.5.0"))},
		{"commissioned by a hospital other than the actor", signText(t, strings.Replace(string(commissionedBody), "hospital general-hospital", "hospital other-hospital", 1), hosp)},
		{"signed by a key other than the actor's", signText(t, text, other)},
		{"two signatures", signText(t, text, mfr, other)},
		{"trailing bytes", append(bytes.Clone(valid), 'x')},
		{"trailing newline", append(bytes.Clone(valid), '\n')},
		{"oversize", append(bytes.Clone(valid), bytes.Repeat([]byte{'x'}, MaxEventSize)...)},
		{"unknown version", withSig(replace("event/v1", "event/v2"))},
		{"missing line", withSig(strings.Join(append(append([]string(nil), lines[:4]...), lines[5:]...), ""))},
		{"CRLF", withSig(strings.ReplaceAll(text, "\n", "\r\n"))},
		{"not a note", []byte(text)},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if er, err := ParseEvent(tt.event); err == nil {
				t.Errorf("ParseEvent accepted it: %+v", er.Event)
			}
			if er, err := VerifyEvent(tt.event, mfrV); err == nil {
				t.Errorf("VerifyEvent accepted it: %+v", er.Event)
			}
		})
	}
}

func TestVerifyEventRefusals(t *testing.T) {
	mfr, mfrV := testActor(t, testManufacturer)
	_, sameName := testKey(t, testManufacturer, 9) // same name, another key
	_, hospV := testActor(t, testHospital)
	raw, err := testEvent(t, EventShipped, testManufacturer).Sign(mfr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEvent(raw, sameName); err == nil {
		t.Error("VerifyEvent accepted another key of the same name")
	}
	if _, err := VerifyEvent(raw, hospV); err == nil || !strings.Contains(err.Error(), "not signed by key") {
		t.Errorf("VerifyEvent with the hospital's key: %v, want not signed by key", err)
	}
	tampered := bytes.Replace(raw, []byte("hospital general-hospital"), []byte("hospital other-hospital"), 1)
	if _, err := ParseEvent(tampered); err != nil {
		t.Fatalf("ParseEvent does not verify signatures, yet refused: %v", err)
	}
	if _, err := VerifyEvent(tampered, mfrV); err == nil {
		t.Error("VerifyEvent accepted a tampered event")
	}
}

// TestLeafKindsDisjoint checks that no parser of a leaf kind accepts
// another kind's leaf, so one can never be taken for another in the log.
func TestLeafKindsDisjoint(t *testing.T) {
	dev, devV := testActor(t, testDevice)
	mfr, mfrV := testActor(t, testManufacturer)
	reg, regV := testKey(t, testRegistrar, 7)
	entry, err := SignEntry(testHeader(), dev)
	if err != nil {
		t.Fatal(err)
	}
	record, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	// An event whose actor has the device's name and key, so that only the
	// content tells it from an entry.
	asDevice := testEvent(t, EventManufactured, testManufacturer)
	asDevice.Actor = testDevice
	eventByDevice, err := asDevice.Sign(dev)
	if err != nil {
		t.Fatal(err)
	}
	event, err := testEvent(t, EventRecalled, testManufacturer).Sign(mfr)
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		leaf []byte
		v    note.Verifier
		want string
	}{
		"entry":        {entry, devV, "is an entry"},
		"registration": {record, regV, "is a device registration record"},
	} {
		if _, err := ParseEvent(tt.leaf); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseEvent of the %s leaf: %v, want an error saying it %s", name, err, tt.want)
		}
		if _, err := VerifyEvent(tt.leaf, tt.v); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("VerifyEvent of the %s leaf: %v, want an error saying it %s", name, err, tt.want)
		}
	}
	for name, b := range map[string][]byte{"manufacturer-signed": event, "device-signed": eventByDevice} {
		if _, err := ParseEntry(b); err == nil {
			t.Errorf("ParseEntry accepted a %s event", name)
		}
		if _, err := VerifyEntry(b, devV); err == nil {
			t.Errorf("VerifyEntry accepted a %s event", name)
		}
		if _, err := ParseRegistration(b); err == nil {
			t.Errorf("ParseRegistration accepted a %s event", name)
		}
		if _, err := VerifyRegistration(b, regV); err == nil {
			t.Errorf("VerifyRegistration accepted a %s event", name)
		}
	}
	if _, err := VerifyEvent(event, mfrV); err != nil {
		t.Errorf("VerifyEvent refused the event: %v", err)
	}
}

func TestNewDeviceState(t *testing.T) {
	rr := testRegRecord(t)
	s := NewDeviceState(rr)
	want := DeviceState{
		Device:       testDevice,
		Manufacturer: testManufacturer,
		Status:       StatusRegistered,
		Firmware:     "1.4.2",
		Head:         LeafHash(rr.Bytes),
	}
	if s != want {
		t.Errorf("NewDeviceState = %+v, want %+v", s, want)
	}
}

// TestTransitions tries every kind of event on a device in every status,
// made by the party that would be entitled to it.
func TestTransitions(t *testing.T) {
	const refused = LifecycleStatus("")
	tests := []struct {
		from LifecycleStatus
		kind EventKind
		want LifecycleStatus // refused: ErrTransition with msg
		msg  string
	}{
		{StatusRegistered, EventManufactured, StatusManufactured, ""},
		{StatusRegistered, EventShipped, refused, "cannot ship a registered device: only when it is manufactured"},
		{StatusRegistered, EventCommissioned, refused, "cannot commission a registered device: only when it is shipped"},
		{StatusRegistered, EventFirmware, refused, "cannot update the firmware of a registered device: only when it is manufactured, shipped, in service"},
		{StatusRegistered, EventRecalled, StatusRecalled, ""},
		{StatusRegistered, EventDecommissioned, StatusDecommissioned, ""},

		{StatusManufactured, EventManufactured, refused, "cannot record the manufacture of a manufactured device: only when it is registered"},
		{StatusManufactured, EventShipped, StatusShipped, ""},
		{StatusManufactured, EventCommissioned, refused, "cannot commission a manufactured device: only when it is shipped"},
		{StatusManufactured, EventFirmware, StatusManufactured, ""},
		{StatusManufactured, EventRecalled, StatusRecalled, ""},
		{StatusManufactured, EventDecommissioned, StatusDecommissioned, ""},

		{StatusShipped, EventManufactured, refused, "cannot record the manufacture of a shipped device"},
		{StatusShipped, EventShipped, refused, "cannot ship a shipped device: only when it is manufactured"},
		{StatusShipped, EventCommissioned, StatusInService, ""},
		{StatusShipped, EventFirmware, StatusShipped, ""},
		{StatusShipped, EventRecalled, StatusRecalled, ""},
		{StatusShipped, EventDecommissioned, StatusDecommissioned, ""},

		{StatusInService, EventManufactured, refused, "cannot record the manufacture of an in-service device"},
		{StatusInService, EventShipped, refused, "cannot ship an in-service device"},
		{StatusInService, EventCommissioned, refused, "cannot commission an in-service device: only when it is shipped"},
		{StatusInService, EventFirmware, StatusInService, ""},
		{StatusInService, EventRecalled, StatusRecalled, ""},
		{StatusInService, EventDecommissioned, StatusDecommissioned, ""},

		{StatusRecalled, EventManufactured, refused, "cannot record the manufacture of a recalled device: a recalled device can only be decommissioned"},
		{StatusRecalled, EventShipped, refused, "cannot ship a recalled device: a recalled device can only be decommissioned"},
		{StatusRecalled, EventCommissioned, refused, "cannot commission a recalled device"},
		{StatusRecalled, EventFirmware, refused, "cannot update the firmware of a recalled device"},
		{StatusRecalled, EventRecalled, refused, "cannot recall a recalled device: it was recalled at 2023-11-15T02:13:20Z"},
		{StatusRecalled, EventDecommissioned, StatusDecommissioned, ""},

		{StatusDecommissioned, EventManufactured, refused, "cannot record the manufacture of a decommissioned device: nothing follows decommissioning"},
		{StatusDecommissioned, EventShipped, refused, "cannot ship a decommissioned device: nothing follows decommissioning"},
		{StatusDecommissioned, EventCommissioned, refused, "cannot commission a decommissioned device: nothing follows decommissioning"},
		{StatusDecommissioned, EventFirmware, refused, "cannot update the firmware of a decommissioned device: nothing follows decommissioning"},
		{StatusDecommissioned, EventRecalled, refused, "cannot recall a decommissioned device: nothing follows decommissioning"},
		{StatusDecommissioned, EventDecommissioned, refused, "cannot decommission a decommissioned device: nothing follows decommissioning"},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"/"+string(tt.kind), func(t *testing.T) {
			s := replay(t, pathTo[tt.from]...)
			if s.Status != tt.from {
				t.Fatalf("test bug: replayed to %s, want %s", s.Status, tt.from)
			}
			actor := testManufacturer
			if tt.kind == EventCommissioned || tt.kind == EventDecommissioned && s.CommissionedAt != 0 {
				actor = testHospital
			}
			at := time.Unix(s.Updated+60, 0)
			er := nextRecord(t, s, step{tt.kind, actor, at.Unix()})
			got, err := s.Apply(er)
			_, nextErr := s.NextEvent(tt.kind, at, actor, details(tt.kind, actor))
			if tt.want == refused {
				if !errors.Is(err, ErrTransition) {
					t.Fatalf("Apply: %v, want ErrTransition", err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("Apply: %q, want it to say %q", err, tt.msg)
				}
				if got != s {
					t.Error("Apply changed the state on error")
				}
				if !errors.Is(nextErr, ErrTransition) {
					t.Errorf("NextEvent: %v, want ErrTransition", nextErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if nextErr != nil {
				t.Errorf("NextEvent: %v", nextErr)
			}
			if got.Status != tt.want {
				t.Errorf("status %s, want %s", got.Status, tt.want)
			}
			if got.Seq != s.Seq+1 || got.Head != er.LeafHash() || got.Updated != at.Unix() {
				t.Errorf("seq %d head %x updated %d, want %d %x %d", got.Seq, got.Head, got.Updated, s.Seq+1, er.LeafHash(), at.Unix())
			}
			// What each kind changes, and only that.
			want := s
			want.Status, want.Seq, want.Head, want.Updated = tt.want, s.Seq+1, er.LeafHash(), at.Unix()
			switch tt.kind {
			case EventShipped:
				want.Hospital = testHospital
			case EventCommissioned:
				want.CommissionedAt = at.Unix()
			case EventFirmware:
				want.Firmware, want.FirmwareDigest = "1.5.0", testDigest
			case EventRecalled:
				want.RecalledAt, want.RecallReason = at.Unix(), "battery may overheat"
			case EventDecommissioned:
				want.DecommissionedAt = at.Unix()
			}
			if got != want {
				t.Errorf("state after %s =\n%+v, want\n%+v", tt.kind, got, want)
			}
		})
	}
}

// TestApplyRefusals checks each refusal that is not a transition, with
// its sentinel and message.
func TestApplyRefusals(t *testing.T) {
	registered := replay(t)
	shipped := replay(t, toShipped...)
	inService := replay(t, toInService...)
	recalledShipped := replay(t, append(toShipped[:2:2], step{EventRecalled, testManufacturer, 0})...)
	other := testRegistration(t)
	other.DeviceID = "band-2"
	reg, _ := testKey(t, testRegistrar, 7)
	otherRaw, err := other.Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	otherHead := LeafHash(otherRaw)

	// event builds a signed event on s, edited by edit.
	event := func(s DeviceState, kind EventKind, actor string, edit func(e *Event)) *EventRecord {
		t.Helper()
		e := &Event{DeviceID: s.Device, Kind: kind, Seq: s.Seq + 1, Prev: s.Head, Time: s.Updated + 60, Actor: actor}
		if e.Time == 60 {
			e.Time = testT0
		}
		d := details(kind, actor)
		e.Hospital, e.Firmware, e.FirmwareDigest, e.Reason = d.Hospital, d.Firmware, d.FirmwareDigest, d.Reason
		if edit != nil {
			edit(e)
		}
		return signEvent(t, e)
	}
	firstOfOther := event(registered, EventManufactured, testManufacturer, nil)
	tests := []struct {
		name string
		s    DeviceState
		e    *EventRecord
		want error
		msg  string
	}{
		{"unknown device", DeviceState{}, firstOfOther, ErrUnknownDevice, `no registration record for device "band-1"`},
		{"another device's event", registered, event(registered, EventManufactured, testManufacturer, func(e *Event) { e.DeviceID = "band-2" }),
			ErrWrongLink, `the event is for device "band-2", not "band-1"`},
		{"another device's registration as prev", registered, event(registered, EventManufactured, testManufacturer, func(e *Event) { e.Prev = otherHead }),
			ErrWrongLink, "prev is not the leaf hash of the device's registration record"},
		{"prev not the last event", shipped, event(shipped, EventCommissioned, testHospital, func(e *Event) { e.Prev = registered.Head }),
			ErrWrongLink, "prev is not the leaf hash of the device's event 2"},
		{"seq skipped", shipped, event(shipped, EventCommissioned, testHospital, func(e *Event) { e.Seq = 4 }),
			ErrWrongLink, "seq 4, want 3"},
		{"seq replayed", shipped, event(shipped, EventCommissioned, testHospital, func(e *Event) { e.Seq = 2 }),
			ErrWrongLink, "seq 2, want 3"},
		{"time before the previous event", shipped, event(shipped, EventCommissioned, testHospital, func(e *Event) { e.Time = shipped.Updated - 1 }),
			ErrTimeOrder, "before the device's previous event"},
		{"hospital records the manufacture", registered, event(registered, EventManufactured, testHospital, nil),
			ErrNotEntitled, `"general-hospital" cannot record the manufacture of this device: only its manufacturer "acme-medical" can`},
		{"another maker records the manufacture", registered, event(registered, EventManufactured, testOtherMaker, nil),
			ErrNotEntitled, `"other-maker" cannot record the manufacture of this device`},
		{"hospital ships", replay(t, toManufactured...), event(replay(t, toManufactured...), EventShipped, testHospital, nil),
			ErrNotEntitled, `"general-hospital" cannot ship this device`},
		{"hospital updates firmware", inService, event(inService, EventFirmware, testHospital, nil),
			ErrNotEntitled, `"general-hospital" cannot update the firmware of this device`},
		{"hospital recalls", inService, event(inService, EventRecalled, testHospital, nil),
			ErrNotEntitled, `"general-hospital" cannot recall this device`},
		{"another hospital commissions", shipped, event(shipped, EventCommissioned, testOtherHospital, nil),
			ErrNotEntitled, `"other-hospital" cannot commission this device: only the hospital it was shipped to, "general-hospital", can`},
		{"manufacturer commissions", shipped, event(shipped, EventCommissioned, testManufacturer, nil),
			ErrNotEntitled, `"acme-medical" cannot commission this device`},
		{"manufacturer decommissions a device in service", inService, event(inService, EventDecommissioned, testManufacturer, nil),
			ErrNotEntitled, `"acme-medical" cannot decommission this device: only the hospital it was commissioned to, "general-hospital", can`},
		{"another hospital decommissions", inService, event(inService, EventDecommissioned, testOtherHospital, nil),
			ErrNotEntitled, `"other-hospital" cannot decommission this device`},
		{"hospital decommissions a device not commissioned", shipped, event(shipped, EventDecommissioned, testHospital, nil),
			ErrNotEntitled, `only its manufacturer "acme-medical" can, as it was never commissioned`},
		{"hospital decommissions a device recalled before commissioning", recalledShipped, event(recalledShipped, EventDecommissioned, testHospital, nil),
			ErrNotEntitled, "as it was never commissioned"},
		{"firmware update to the version it runs", inService, event(inService, EventFirmware, testManufacturer, func(e *Event) { e.Firmware = "1.4.2" }),
			ErrTransition, `cannot update the firmware to "1.4.2", the version the device already runs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Apply(tt.e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Apply: %q, want it to say %q", err, tt.msg)
			}
			if got != tt.s {
				t.Error("Apply changed the state on error")
			}
		})
	}
}

// TestApplyChain checks the chain as a whole: a full history, a fork, a
// left-out event, and times.
func TestApplyChain(t *testing.T) {
	s := replay(t,
		step{EventManufactured, testManufacturer, testT0 - 86400}, // made before it was registered
		step{EventFirmware, testManufacturer, testT0 + 100},
		step{EventShipped, testManufacturer, testT0 + 200},
		step{EventCommissioned, testHospital, testT0 + 200}, // same second as the previous event
		step{EventRecalled, testManufacturer, testT0 + 300},
		step{EventDecommissioned, testHospital, testT0 + 400},
	)
	want := DeviceState{
		Device: testDevice, Manufacturer: testManufacturer, Status: StatusDecommissioned, Hospital: testHospital,
		Firmware: "1.5.0", FirmwareDigest: testDigest, CommissionedAt: testT0 + 200, RecalledAt: testT0 + 300,
		RecallReason: "battery may overheat", DecommissionedAt: testT0 + 400, Seq: 6, Head: s.Head, Updated: testT0 + 400,
	}
	if s != want {
		t.Errorf("state =\n%+v, want\n%+v", s, want)
	}

	// A fork: two events at the same link; once one is applied, the other
	// no longer links.
	shipped := replay(t, toShipped...)
	a := nextRecord(t, shipped, step{EventCommissioned, testHospital, 0})
	b := nextRecord(t, shipped, step{EventRecalled, testManufacturer, 0})
	after, err := shipped.Apply(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.Apply(b); !errors.Is(err, ErrWrongLink) {
		t.Errorf("the fork's other branch: %v, want ErrWrongLink", err)
	}
	// Applying the same event twice is refused.
	if _, err := after.Apply(a); !errors.Is(err, ErrWrongLink) {
		t.Errorf("a replayed event: %v, want ErrWrongLink", err)
	}
	// A left-out event shows: event 3 applied to the state after event 1.
	manufactured := replay(t, toManufactured...)
	if _, err := manufactured.Apply(a); !errors.Is(err, ErrWrongLink) {
		t.Errorf("an event after a left-out one: %v, want ErrWrongLink", err)
	}
}

func TestNextEvent(t *testing.T) {
	s := replay(t, toShipped...)
	e, err := s.NextEvent(EventCommissioned, time.Unix(s.Updated+10, 0), testHospital, EventDetails{Hospital: testHospital})
	if err != nil {
		t.Fatal(err)
	}
	if e.DeviceID != testDevice || e.Seq != s.Seq+1 || e.Prev != s.Head || e.Time != s.Updated+10 {
		t.Errorf("NextEvent = %+v, does not continue the chain at seq %d", e, s.Seq+1)
	}
	if _, err := s.Apply(signEvent(t, e)); err != nil {
		t.Errorf("Apply of NextEvent's event: %v", err)
	}
	tests := []struct {
		name  string
		kind  EventKind
		actor string
		at    int64
		d     EventDetails
		want  error
	}{
		{"not entitled", EventCommissioned, testOtherHospital, s.Updated, EventDetails{Hospital: testOtherHospital}, ErrNotEntitled},
		{"transition", EventShipped, testManufacturer, s.Updated, EventDetails{Hospital: testHospital}, ErrTransition},
		{"time order", EventRecalled, testManufacturer, s.Updated - 1, EventDetails{Reason: "hot"}, ErrTimeOrder},
		{"malformed", EventRecalled, testManufacturer, s.Updated, EventDetails{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := s.NextEvent(tt.kind, time.Unix(tt.at, 0), tt.actor, tt.d)
			if err == nil {
				t.Fatalf("accepted: %+v", e)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("NextEvent: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := (DeviceState{}).NextEvent(EventManufactured, time.Unix(testT0, 0), testManufacturer, EventDetails{}); err == nil {
		t.Error("NextEvent on an unknown device accepted")
	}
}

func TestAcceptsReadings(t *testing.T) {
	const (
		made         = testT0 + 100
		shippedAt    = testT0 + 200
		commissioned = testT0 + 1000
		updated      = testT0 + 5000
		recalled     = testT0 + 10000
		decommission = testT0 + 20000
	)
	legacy := replay(t)
	shipped := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt})
	inService := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt},
		step{EventCommissioned, testHospital, commissioned})
	withUpdate := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt},
		step{EventCommissioned, testHospital, commissioned}, step{EventFirmware, testManufacturer, updated})
	recall := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt},
		step{EventCommissioned, testHospital, commissioned}, step{EventRecalled, testManufacturer, recalled})
	recallDecom := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt},
		step{EventCommissioned, testHospital, commissioned}, step{EventRecalled, testManufacturer, recalled},
		step{EventDecommissioned, testHospital, decommission})
	decom := replay(t, step{EventManufactured, testManufacturer, made}, step{EventShipped, testManufacturer, shippedAt},
		step{EventCommissioned, testHospital, commissioned}, step{EventDecommissioned, testHospital, decommission})
	recalledUnshipped := replay(t, step{EventManufactured, testManufacturer, made}, step{EventRecalled, testManufacturer, recalled})

	tests := []struct {
		name       string
		s          DeviceState
		start, end int64
		firmware   string
		want       error // nil: accepted
		msg        string
	}{
		{"no lifecycle events", legacy, testT0 - 3600, testT0, "", nil, ""},
		{"no lifecycle events, registration's firmware", legacy, testT0, testT0 + 3600, "1.4.2", nil, ""},
		{"no lifecycle events, other firmware", legacy, testT0, testT0 + 3600, "1.3.0", ErrStaleFirmware,
			`the readings come from firmware "1.3.0", the device runs "1.4.2"`},
		{"shipped, not commissioned", shipped, commissioned, commissioned + 60, "", ErrDeviceUnusable,
			"the device is shipped and was never commissioned"},
		{"in service", inService, commissioned, commissioned + 3600, "1.4.2", nil, ""},
		{"in service, firmware not given", inService, commissioned + 60, commissioned + 120, "", nil, ""},
		{"window before commissioning", inService, commissioned - 1, commissioned + 3600, "", ErrDeviceUnusable,
			"before the device was commissioned"},
		{"in service, stale firmware", inService, commissioned, commissioned + 60, "1.3.0", ErrStaleFirmware, `firmware "1.3.0"`},
		{"after an update, the old firmware", withUpdate, updated, updated + 60, "1.4.2", ErrStaleFirmware,
			`the readings come from firmware "1.4.2", the device runs "1.5.0"`},
		{"after an update, the new firmware", withUpdate, updated, updated + 60, "1.5.0", nil, ""},
		{"window ending at the recall", recall, recalled - 3600, recalled, "", nil, ""},
		{"window ending a second after the recall", recall, recalled - 3600, recalled + 1, "", ErrDeviceUnusable,
			`recalled with effect from 2023-11-15T01:00:00Z ("battery may overheat")`},
		{"window after the recall", recall, recalled + 60, recalled + 120, "", ErrDeviceUnusable, "recalled"},
		{"window before the recall, device since decommissioned", recallDecom, commissioned, commissioned + 60, "", nil, ""},
		{"window across the recall, device since decommissioned", recallDecom, recalled - 1, recalled + 1, "", ErrDeviceUnusable, "recalled"},
		{"window after decommissioning", decom, decommission, decommission + 60, "", ErrDeviceUnusable,
			"decommissioned with effect from 2023-11-15T03:46:40Z"},
		{"window ending at decommissioning", decom, decommission - 60, decommission, "", nil, ""},
		{"recalled before commissioning, window before the recall", recalledUnshipped, made, made + 60, "", ErrDeviceUnusable,
			"the device is recalled and was never commissioned"},
		{"unknown device", DeviceState{}, testT0, testT0 + 60, "", ErrUnknownDevice, "not registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.AcceptsReadings(tt.start, tt.end, tt.firmware)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("AcceptsReadings: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("AcceptsReadings: %q, want it to say %q", err, tt.msg)
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, k := range []struct {
		kind  EventKind
		actor string
	}{
		{EventManufactured, testManufacturer}, {EventShipped, testManufacturer}, {EventCommissioned, testHospital},
		{EventFirmware, testManufacturer}, {EventRecalled, testManufacturer}, {EventDecommissioned, testHospital},
	} {
		s, _ := testActor(f, k.actor)
		raw, err := testEvent(f, k.kind, k.actor).Sign(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(bytes.Replace(raw, []byte("seq 3"), []byte("seq 03"), 1))
	}
	dev, _ := testActor(f, testDevice)
	entry, _ := SignEntry(testHeader(), dev)
	f.Add(entry)
	reg, _ := testKey(f, testRegistrar, 7)
	record, _ := testRegistration(f).Sign(reg)
	f.Add(record)
	f.Add([]byte("vitalproof/event/v1\n\n— x AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		er, err := ParseEvent(b)
		if err != nil {
			return
		}
		if !bytes.Equal(er.Bytes, b) {
			t.Fatal("Bytes differ from the input")
		}
		if err := er.Event.Check(); err != nil {
			t.Fatalf("parsed event fails Check: %v", err)
		}
		// The encoding is canonical: the event re-encodes to the same body,
		// followed by the actor's one signature line.
		body, err := er.Event.Body()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, append(body, '\n')) {
			t.Fatal("input does not start with the event's canonical body")
		}
		sig := string(b[len(body)+1:])
		if !strings.HasPrefix(sig, "— "+er.Event.Actor+" ") || strings.Count(sig, "\n") != 1 {
			t.Fatalf("signature line %q", sig)
		}
		if _, err := ParseEntry(b); err == nil {
			t.Fatal("an event parses as an entry too")
		}
		if _, err := ParseRegistration(b); err == nil {
			t.Fatal("an event parses as a registration record too")
		}
		again, err := ParseEvent(er.Bytes)
		if err != nil || again.Event != er.Event {
			t.Fatalf("reparse: %v", err)
		}
	})
}
