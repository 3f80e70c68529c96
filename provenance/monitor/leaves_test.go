package monitor_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/provenance/monitor"
	"github.com/vitalproof/vitalproof/wearables"
)

func TestClassify(t *testing.T) {
	mk := newLeafMaker(t)
	reg := mk.register("band-1", "acme")
	entry := mk.entry("band-1", day0.Add(time.Hour))
	shipped := mk.event("band-1", wearables.EventShipped, day0.Add(2*time.Hour), wearables.EventDetails{Hospital: "st-mary"})
	firmware := mk.event("band-1", wearables.EventFirmware, day0.Add(3*time.Hour), wearables.EventDetails{Firmware: "1.5.0", FirmwareDigest: [32]byte{0xab}})
	recalled := mk.event("band-1", wearables.EventRecalled, day0.Add(4*time.Hour), wearables.EventDetails{Reason: "battery swelling"})
	for _, tc := range []struct {
		name string
		leaf []byte
		want monitor.Leaf
		// problem is a prefix of the leaf's Problem.
		problem string
	}{
		{"registration", reg, monitor.Leaf{
			Kind: monitor.LeafRegistration, Format: "vitalproof/device/v1", Device: "band-1", Manufacturer: "acme",
			Hospital: "st-mary", Start: day0, Summary: "model Band 2, firmware 1.4.2, UDI (01)09506000134352(21)BAND-1",
		}, ""},
		{"entry", entry, monitor.Leaf{
			Kind: monitor.LeafEntry, Format: "vitalproof/entry/v1", Device: "band-1", Hospital: "st-mary",
			Start: day0.Add(time.Hour), End: day0.Add(2 * time.Hour), Summary: "heart-rate, 60 readings, seq 1, attestation device",
		}, ""},
		{"shipped", shipped, monitor.Leaf{
			Kind: monitor.LeafEvent, Format: "vitalproof/event/v1", Device: "band-1", Hospital: "st-mary",
			Start: day0.Add(2 * time.Hour), Event: "shipped", Summary: "by acme, to hospital st-mary",
		}, ""},
		{"firmware", firmware, monitor.Leaf{
			Kind: monitor.LeafEvent, Format: "vitalproof/event/v1", Device: "band-1",
			Start: day0.Add(3 * time.Hour), Event: "firmware", Summary: "by acme, firmware 1.5.0, image SHA-256 ab" + strings.Repeat("00", 31),
		}, ""},
		{"recalled", recalled, monitor.Leaf{
			Kind: monitor.LeafEvent, Format: "vitalproof/event/v1", Device: "band-1",
			Start: day0.Add(4 * time.Hour), Event: monitor.EventRecalled, Summary: "by acme, reason: battery swelling",
		}, ""},
		{"an event signed twice", append(bytes.Clone(recalled), recalled[bytes.LastIndex(recalled, []byte("\n— "))+1:]...),
			monitor.Leaf{Kind: monitor.LeafOther, Format: "vitalproof/event/v1"}, "vitalproof/event/v1 does not parse: "},
		{"another record", []byte("vitalproof/approval/v1\nmanufacturer acme\n"), monitor.Leaf{Kind: monitor.LeafOther, Format: "vitalproof/approval/v1"}, ""},
		{"a future entry format", []byte("vitalproof/entry/v9\ndevice band-1\n"), monitor.Leaf{Kind: monitor.LeafOther, Format: "vitalproof/entry/v9"},
			"vitalproof/entry/v9 does not parse: "},
		{"an entry with its signature cut", entry[:bytes.LastIndex(entry, []byte("\n— "))+1], monitor.Leaf{Kind: monitor.LeafOther, Format: "vitalproof/entry/v1"},
			"vitalproof/entry/v1 does not parse: "},
		{"a registration with an extra line", bytes.Replace(reg, []byte("\nregistered "), []byte("\nextra x\nregistered "), 1),
			monitor.Leaf{Kind: monitor.LeafOther, Format: "vitalproof/device/v1"}, "vitalproof/device/v1 does not parse: "},
		{"binary", []byte{0, 1, 2, '\n', 3}, monitor.Leaf{Kind: monitor.LeafOther}, ""},
		{"no newline", []byte("vitalproof/entry/v1"), monitor.Leaf{Kind: monitor.LeafOther}, ""},
		{"empty", nil, monitor.Leaf{Kind: monitor.LeafOther}, ""},
		{"a first line too long for a format", []byte(strings.Repeat("a", 65) + "\n"), monitor.Leaf{Kind: monitor.LeafOther}, ""},
		{"upper case", []byte("VitalProof/entry/v1\n"), monitor.Leaf{Kind: monitor.LeafOther}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := monitor.Classify(tc.leaf)
			problem := got.Problem
			got.Problem = ""
			if got != tc.want {
				t.Errorf("Classify =\n%+v\nwant\n%+v", got, tc.want)
			}
			if tc.problem == "" && problem != "" || !strings.HasPrefix(problem, tc.problem) {
				t.Errorf("Problem = %q, want a prefix %q", problem, tc.problem)
			}
		})
	}
}

// FuzzClassify checks that Classify never fails on a leaf, and that what
// it reads as a registration or an entry parses as one.
func FuzzClassify(f *testing.F) {
	mk := newLeafMaker(f)
	f.Add(mk.register("band-1", "acme"))
	f.Add(mk.entry("band-1", day0))
	f.Add(mk.event("band-1", wearables.EventRecalled, day0.Add(time.Hour), wearables.EventDetails{Reason: "battery"}))
	f.Add([]byte("vitalproof/approval/v1\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, leaf []byte) {
		l := monitor.Classify(leaf)
		switch l.Kind {
		case monitor.LeafEntry:
			if _, err := wearables.ParseEntry(leaf); err != nil || !wearables.ValidID(l.Device) {
				t.Errorf("classified as an entry of %q: %v", l.Device, err)
			}
		case monitor.LeafRegistration:
			if _, err := wearables.ParseRegistration(leaf); err != nil || !wearables.ValidID(l.Manufacturer) {
				t.Errorf("classified as a registration of %q: %v", l.Manufacturer, err)
			}
		case monitor.LeafEvent:
			if _, err := wearables.ParseEvent(leaf); err != nil || !wearables.ValidID(l.Device) || l.Event == "" {
				t.Errorf("classified as a %q event of %q: %v", l.Event, l.Device, err)
			}
		case monitor.LeafOther:
		default:
			t.Errorf("kind %q", l.Kind)
		}
		if len(l.Format) > 64 || strings.ContainsAny(l.Format, " \n\r\t") || !bytes.HasPrefix(leaf, []byte(l.Format)) {
			t.Errorf("format %q", l.Format)
		}
		if strings.ContainsAny(l.Problem, "\n\r") {
			t.Errorf("problem on several lines: %q", l.Problem)
		}
	})
}
