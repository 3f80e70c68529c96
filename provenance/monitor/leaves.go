package monitor

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
)

// LeafKind says what a leaf of the log is.
type LeafKind string

// Kinds of leaves.
const (
	// LeafEntry is a device's (or gateway's) signed entry: a batch of
	// readings, committed to (wearables.Entry).
	LeafEntry LeafKind = "entry"
	// LeafRegistration is a device registration record
	// (wearables.RegistrationRecord).
	LeafRegistration LeafKind = "registration"
	// LeafEvent is a device lifecycle event (shipped, commissioned,
	// firmware updated, recalled, decommissioned).
	LeafEvent LeafKind = "event"
	// LeafOther is any other leaf: another record the ledger logs (such
	// as a manufacturer approval), a format this monitor does not know, or
	// a leaf of a known format that does not parse (Problem says why).
	LeafOther LeafKind = "other"
)

// Lifecycle events after which a device must not produce readings (the
// names of wearables.EventRecalled and wearables.EventDecommissioned).
const (
	EventRecalled       = string(wearables.EventRecalled)
	EventDecommissioned = string(wearables.EventDecommissioned)
)

// eventPhrase says what happened to a device in an event of kind event.
func eventPhrase(event string) string {
	if event == string(wearables.EventFirmware) {
		return "had its firmware updated"
	}
	return event
}

// Leaf is what the monitor needs to know of one leaf of the log.
type Leaf struct {
	Kind LeafKind
	// Format is the leaf's first line when it names a format (such as
	// "vitalproof/entry/v1"), "" otherwise.
	Format string
	// Device is the device an entry, registration or event is about.
	Device string
	// Manufacturer is a registration's manufacturer (entries and events
	// are attributed through the registration of their device).
	Manufacturer string
	// Hospital is an entry's hospital, the hospital a registration assigns
	// the device to, or the hospital an event concerns.
	Hospital string
	// Start and End are an entry's window of readings (End exclusive).
	// Start is also when a device was registered and when an event takes
	// effect.
	Start, End time.Time
	// Event is an event's kind, such as [EventRecalled].
	Event string
	// Summary describes the leaf in a few words, for reports (the metric
	// and reading count of an entry, the model and UDI of a registration,
	// an event's details). It never holds a reading.
	Summary string
	// Problem says why a leaf of a known format does not parse; its Kind
	// is then LeafOther.
	Problem string
}

// A Classifier tells what a leaf is. It must be safe for concurrent use,
// must not keep leaf, and must not fail: a leaf it cannot read is
// LeafOther, with a Problem when it should have been able to.
type Classifier func(leaf []byte) Leaf

// maxFormatLen bounds the first line Classify takes as a format name.
const maxFormatLen = 64

// Classify is the [Classifier] of VitalProof's leaves: entries
// ("vitalproof/entry/..."), device registration records
// ("vitalproof/device/..."), lifecycle events ("vitalproof/event/..."),
// and LeafOther for any other format (such as manufacturer approvals). It
// parses leaves with package wearables, whatever versions of these formats
// it reads, but does not verify their signatures: the ledger checked them
// before appending, and the monitor checks that the log's tree is made of
// these bytes.
func Classify(leaf []byte) Leaf {
	format := leafFormat(leaf)
	switch {
	case strings.HasPrefix(format, "vitalproof/entry/"):
		e, err := wearables.ParseEntry(leaf)
		if err != nil {
			return Leaf{Kind: LeafOther, Format: format, Problem: problem(format, err)}
		}
		h := e.Header
		return Leaf{
			Kind:     LeafEntry,
			Format:   format,
			Device:   h.DeviceID,
			Hospital: h.Hospital,
			Start:    time.Unix(h.WindowStart, 0).UTC(),
			End:      time.Unix(h.WindowEnd, 0).UTC(),
			Summary:  fmt.Sprintf("%s, %d readings, seq %d, attestation %s", h.Metric, h.Count, h.Seq, h.Attestation),
		}
	case strings.HasPrefix(format, "vitalproof/device/"):
		rr, err := wearables.ParseRegistration(leaf)
		if err != nil {
			return Leaf{Kind: LeafOther, Format: format, Problem: problem(format, err)}
		}
		r := rr.Registration
		return Leaf{
			Kind:         LeafRegistration,
			Format:       format,
			Device:       r.DeviceID,
			Manufacturer: r.Manufacturer,
			Hospital:     r.Hospital,
			Start:        time.Unix(r.Registered, 0).UTC(),
			Summary:      fmt.Sprintf("model %s, firmware %s, UDI %s", r.Model, r.Firmware, r.UDI),
		}
	case strings.HasPrefix(format, "vitalproof/event/"):
		er, err := wearables.ParseEvent(leaf)
		if err != nil {
			return Leaf{Kind: LeafOther, Format: format, Problem: problem(format, err)}
		}
		e := er.Event
		summary := "by " + e.Actor
		switch e.Kind {
		case wearables.EventShipped:
			summary += ", to hospital " + e.Hospital
		case wearables.EventFirmware:
			summary += fmt.Sprintf(", firmware %s, image SHA-256 %x", e.Firmware, e.FirmwareDigest)
		case wearables.EventRecalled:
			summary += ", reason: " + e.Reason
		}
		return Leaf{
			Kind:     LeafEvent,
			Format:   format,
			Device:   e.DeviceID,
			Hospital: e.Hospital,
			Start:    time.Unix(e.Time, 0).UTC(),
			Event:    string(e.Kind),
			Summary:  summary,
		}
	}
	return Leaf{Kind: LeafOther, Format: format}
}

// problem says on one line that a leaf of format does not parse.
func problem(format string, err error) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, fmt.Sprintf("%s does not parse: %v", format, err))
}

// leafFormat returns the leaf's first line if it looks like a format name
// (1 to 64 bytes of [a-z0-9./_@-]), "" otherwise.
func leafFormat(leaf []byte) string {
	line, _, ok := bytes.Cut(leaf[:min(len(leaf), maxFormatLen+1)], []byte("\n"))
	if !ok || len(line) == 0 {
		return ""
	}
	for _, c := range line {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '/', c == '_', c == '-', c == '@':
		default:
			return ""
		}
	}
	return string(line)
}
