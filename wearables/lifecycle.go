package wearables

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Event is a device lifecycle event: a step of a registered device's life
// (manufactured, shipped, commissioned, firmware updated, recalled,
// decommissioned), signed by the party entitled to take it. The ledger
// appends each event to the log, so a device's history is public, ordered
// and cannot be rewritten; [DeviceState] replays it and says which events
// may follow and whether the device may report readings.
//
// # Encoding (event format v1)
//
// An event is a signed note (golang.org/x/mod/sumdb/note, C2SP
// signed-note) whose text is these seven lines, in this order, each ending
// in a newline:
//
//	vitalproof/event/v1
//	device <device ID>
//	event manufactured|shipped|commissioned|firmware|recalled|decommissioned
//	seq <n>
//	prev <base64 of 32 bytes>
//	time <Unix seconds>
//	actor <manufacturer or hospital ID>
//
// then, for the kinds that have one, exactly one of these lines:
//
//	hospital <hospital ID>                       (shipped: to; commissioned: by, equal to actor)
//	firmware <version> <base64 of 32 bytes>      (firmware: the new version and the SHA-256 of its image)
//	reason <text>                                (recalled)
//
// followed by a blank line and exactly one Ed25519 signature line, the
// actor's: its key name is the actor ID. IDs match [a-z0-9][a-z0-9._-]{0,63};
// numbers are decimal without leading zeros; base64 is standard with
// padding; the firmware version (1 to [MaxFirmwareLen] bytes, as in a
// registration) and the reason (1 to [MaxReasonLen] bytes) are printable
// ASCII (0x20 to 0x7e) that neither starts nor ends with a space. The
// version may hold spaces: the digest is the line's last field.
//
// seq numbers a device's events from 1, and prev is the RFC 6962 leaf hash
// of the device's previous event, or of its registration record
// ([RegistrationRecord.LeafHash]) for seq 1: a device's history is a hash
// chain anchored at its registration, and a left-out event breaks it. time
// is when the event takes effect (for a recall, its effective time), a
// positive Unix time.
//
// The event's bytes are the log leaf and its leaf hash is the RFC 6962
// hash SHA-256(0x00 || event), as for entries and registration records.
// The first line tells the kinds of leaf apart: [ParseEvent] refuses
// entries and registration records.
type Event struct {
	DeviceID string
	Kind     EventKind
	Seq      uint64
	Prev     [32]byte
	// Time is when the event takes effect, in Unix seconds.
	Time int64
	// Actor is the manufacturer or hospital that signs the event.
	Actor string
	// Hospital is, for shipped, the hospital the device is shipped to and,
	// for commissioned, the hospital that commissions it (the actor); ""
	// for the other kinds.
	Hospital string
	// Firmware and FirmwareDigest are, for firmware, the new version and
	// the SHA-256 of its image; "" and zero for the other kinds.
	Firmware       string
	FirmwareDigest [32]byte
	// Reason is, for recalled, why the device is recalled; "" for the
	// other kinds.
	Reason string
}

// EventDetails are the fields of an event that only some kinds have.
type EventDetails struct {
	// Hospital: shipped (to) and commissioned (by).
	Hospital string
	// Firmware and FirmwareDigest: firmware.
	Firmware       string
	FirmwareDigest [32]byte
	// Reason: recalled.
	Reason string
}

// EventKind is the kind of a lifecycle event.
type EventKind string

// Lifecycle event kinds.
const (
	EventManufactured   EventKind = "manufactured"
	EventShipped        EventKind = "shipped"
	EventCommissioned   EventKind = "commissioned"
	EventFirmware       EventKind = "firmware"
	EventRecalled       EventKind = "recalled"
	EventDecommissioned EventKind = "decommissioned"
)

// eventKinds lists the kinds with the verb that error messages use.
var eventKinds = map[EventKind]string{
	EventManufactured:   "record the manufacture of",
	EventShipped:        "ship",
	EventCommissioned:   "commission",
	EventFirmware:       "update the firmware of",
	EventRecalled:       "recall",
	EventDecommissioned: "decommission",
}

// detailKey returns the key of the kind's extra line, or "".
func (k EventKind) detailKey() string {
	switch k {
	case EventShipped, EventCommissioned:
		return "hospital"
	case EventFirmware:
		return "firmware"
	case EventRecalled:
		return "reason"
	}
	return ""
}

const (
	eventMagic = "vitalproof/event/v1"
	// MaxEventSize bounds an event's encoding.
	MaxEventSize = 2048
	// MaxReasonLen bounds a recall's reason, in bytes.
	MaxReasonLen = 200
)

var errMalformedEvent = errors.New("malformed lifecycle event")

// NewEvent returns event seq of a device's chain, of kind, taking effect
// at at, made by actor, with the details its kind has. prev is the leaf
// hash of the device's previous event, or of its registration record for
// seq 1. It checks every field, not the device's state: [DeviceState.NextEvent]
// does both.
func NewEvent(deviceID string, kind EventKind, seq uint64, prev [32]byte, at time.Time, actor string, d EventDetails) (*Event, error) {
	e := &Event{
		DeviceID:       deviceID,
		Kind:           kind,
		Seq:            seq,
		Prev:           prev,
		Time:           at.Unix(),
		Actor:          actor,
		Hospital:       d.Hospital,
		Firmware:       d.Firmware,
		FirmwareDigest: d.FirmwareDigest,
		Reason:         d.Reason,
	}
	if err := e.Check(); err != nil {
		return nil, fmt.Errorf("couldn't make lifecycle event: %w", err)
	}
	return e, nil
}

// Check validates the event's fields on their own.
func (e *Event) Check() error {
	if !ValidID(e.DeviceID) {
		return fmt.Errorf("device: %w", errBadID)
	}
	if _, ok := eventKinds[e.Kind]; !ok {
		return errors.New("event: unknown event kind")
	}
	if e.Seq < 1 {
		return errors.New("seq: must be at least 1")
	}
	if e.Prev == ([32]byte{}) {
		return errors.New("prev: must be the leaf hash of the previous event or of the registration record")
	}
	if e.Time < 1 {
		return errors.New("time: must be after 1970")
	}
	if !ValidID(e.Actor) {
		return fmt.Errorf("actor: %w", errBadID)
	}
	key := e.Kind.detailKey()
	if key == "hospital" {
		if !ValidID(e.Hospital) {
			return fmt.Errorf("hospital: %w", errBadID)
		}
		if e.Kind == EventCommissioned && e.Hospital != e.Actor {
			return errors.New("hospital: a commissioned event is signed by the commissioning hospital")
		}
	} else if e.Hospital != "" {
		return fmt.Errorf("hospital: a %s event names no hospital", e.Kind)
	}
	if key == "firmware" {
		if !validText(e.Firmware, MaxFirmwareLen) {
			return fmt.Errorf("firmware: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxFirmwareLen)
		}
		if e.FirmwareDigest == ([32]byte{}) {
			return errors.New("firmware: missing image digest")
		}
	} else if e.Firmware != "" || e.FirmwareDigest != ([32]byte{}) {
		return fmt.Errorf("firmware: a %s event names no firmware", e.Kind)
	}
	if key == "reason" {
		if !validText(e.Reason, MaxReasonLen) {
			return fmt.Errorf("reason: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxReasonLen)
		}
	} else if e.Reason != "" {
		return fmt.Errorf("reason: a %s event gives no reason", e.Kind)
	}
	return nil
}

// Body returns the canonical note text of the event.
func (e *Event) Body() ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ndevice %s\nevent %s\nseq %d\nprev %s\ntime %d\nactor %s\n",
		eventMagic, e.DeviceID, e.Kind, e.Seq, base64.StdEncoding.EncodeToString(e.Prev[:]), e.Time, e.Actor)
	switch e.Kind.detailKey() {
	case "hospital":
		fmt.Fprintf(&b, "hospital %s\n", e.Hospital)
	case "firmware":
		fmt.Fprintf(&b, "firmware %s %s\n", e.Firmware, base64.StdEncoding.EncodeToString(e.FirmwareDigest[:]))
	case "reason":
		fmt.Fprintf(&b, "reason %s\n", e.Reason)
	}
	return b.Bytes(), nil
}

// Sign signs the event with the actor's key s, whose key name must be the
// actor ID, and returns the event's canonical bytes.
func (e *Event) Sign(s note.Signer) ([]byte, error) {
	if s.Name() != e.Actor {
		return nil, fmt.Errorf("couldn't sign lifecycle event: key %q cannot sign for actor %q", s.Name(), e.Actor)
	}
	body, err := e.Body()
	if err != nil {
		return nil, fmt.Errorf("couldn't sign lifecycle event: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign lifecycle event: %w", err)
	}
	return msg, nil
}

// EventRecord is a parsed lifecycle event: the event and its bytes. Its
// one signature's key name is the event's actor.
type EventRecord struct {
	Event Event
	// Bytes is the event's canonical encoding, the log leaf.
	Bytes []byte
}

// LeafHash returns the event's RFC 6962 leaf hash.
func (er *EventRecord) LeafHash() [32]byte { return tlog.RecordHash(er.Bytes) }

// ParseEvent parses a lifecycle event without verifying its signature. It
// checks that the encoding is canonical and that it carries exactly one
// signature, whose key name is the actor. Use [VerifyEvent] to check the
// signature too.
func ParseEvent(b []byte) (*EventRecord, error) {
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformedEvent, MaxEventSize)
	}
	_, err := note.Open(b, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("%w: not a signed note", errMalformedEvent)
	}
	n := unverified.Note
	return parseEventOpened(b, n.Text, n.UnverifiedSigs)
}

// VerifyEvent parses a lifecycle event and verifies its signature with v,
// the verifier of the actor's key (a manufacturer's or a hospital's).
func VerifyEvent(b []byte, v note.Verifier) (*EventRecord, error) {
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformedEvent, MaxEventSize)
	}
	n, err := note.Open(b, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("lifecycle event is not signed by key %q", v.Name())
		}
		return nil, fmt.Errorf("lifecycle event signature: %w", err)
	}
	return parseEventOpened(b, n.Text, append(n.Sigs, n.UnverifiedSigs...))
}

func parseEventOpened(b []byte, text string, sigs []note.Signature) (*EventRecord, error) {
	e, err := ParseEventBody(text)
	if err != nil {
		return nil, err
	}
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", errMalformedEvent)
	}
	if sigs[0].Name != e.Actor {
		return nil, fmt.Errorf("%w: signature key %q, want the actor %q", errMalformedEvent, sigs[0].Name, e.Actor)
	}
	want := text + "\n— " + sigs[0].Name + " " + sigs[0].Base64 + "\n"
	if string(b) != want {
		return nil, fmt.Errorf("%w: not canonical", errMalformedEvent)
	}
	return &EventRecord{Event: *e, Bytes: bytes.Clone(b)}, nil
}

// ParseEventBody parses the canonical text of a lifecycle event.
func ParseEventBody(text string) (*Event, error) {
	first, _, _ := strings.Cut(text, "\n")
	switch first {
	case eventMagic:
	case entryMagic, entryMagicV2:
		return nil, fmt.Errorf("%w: this is an entry (%s), not a lifecycle event", errMalformedEvent, first)
	case registrationMagic:
		return nil, fmt.Errorf("%w: this is a device registration record (%s), not a lifecycle event", errMalformedEvent, registrationMagic)
	default:
		return nil, fmt.Errorf("%w: unknown event format version", errMalformedEvent)
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 8 || lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("%w: want at least 7 lines", errMalformedEvent)
	}
	value := func(i int, key string) (string, error) {
		l := strings.TrimSuffix(lines[i], "\n")
		v, ok := strings.CutPrefix(l, key+" ")
		if !ok {
			return "", fmt.Errorf("%w: line %d: want %q", errMalformedEvent, i+1, key)
		}
		return v, nil
	}
	var e Event
	var err error
	if e.DeviceID, err = value(1, "device"); err != nil {
		return nil, err
	}
	kind, err := value(2, "event")
	if err != nil {
		return nil, err
	}
	e.Kind = EventKind(kind)
	if _, ok := eventKinds[e.Kind]; !ok {
		return nil, fmt.Errorf("%w: unknown event kind", errMalformedEvent)
	}
	seq, err := value(3, "seq")
	if err != nil {
		return nil, err
	}
	n, err := parseInt(seq)
	if err != nil {
		return nil, fmt.Errorf("%w: seq", errMalformedEvent)
	}
	e.Seq = uint64(n)
	prev, err := value(4, "prev")
	if err != nil {
		return nil, err
	}
	if parseHash(prev, e.Prev[:]) != nil {
		return nil, fmt.Errorf("%w: prev", errMalformedEvent)
	}
	at, err := value(5, "time")
	if err != nil {
		return nil, err
	}
	if e.Time, err = parseInt(at); err != nil {
		return nil, fmt.Errorf("%w: time", errMalformedEvent)
	}
	if e.Actor, err = value(6, "actor"); err != nil {
		return nil, err
	}
	key := e.Kind.detailKey()
	want := 7
	if key != "" {
		want++
	}
	if len(lines) != want+1 {
		return nil, fmt.Errorf("%w: want %d lines for a %s event", errMalformedEvent, want, e.Kind)
	}
	if key != "" {
		v, err := value(7, key)
		if err != nil {
			return nil, err
		}
		switch key {
		case "hospital":
			e.Hospital = v
		case "firmware":
			i := strings.LastIndexByte(v, ' ')
			if i < 0 || parseHash(v[i+1:], e.FirmwareDigest[:]) != nil {
				return nil, fmt.Errorf("%w: firmware: want version and image digest", errMalformedEvent)
			}
			e.Firmware = v[:i]
		case "reason":
			e.Reason = v
		}
	}
	if err := e.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedEvent, err)
	}
	if body, _ := e.Body(); string(body) != text {
		return nil, fmt.Errorf("%w: not canonical", errMalformedEvent)
	}
	return &e, nil
}

// LifecycleStatus is where a device is in its life.
type LifecycleStatus string

// Lifecycle statuses.
const (
	StatusRegistered     LifecycleStatus = "registered"
	StatusManufactured   LifecycleStatus = "manufactured"
	StatusShipped        LifecycleStatus = "shipped"
	StatusInService      LifecycleStatus = "in_service"
	StatusRecalled       LifecycleStatus = "recalled"
	StatusDecommissioned LifecycleStatus = "decommissioned"
)

// words returns the status as an adjective with its article, e.g.
// "an in-service".
func (st LifecycleStatus) words() string {
	w := strings.ReplaceAll(string(st), "_", "-")
	if strings.IndexByte("aeiou", w[0]) >= 0 {
		return "an " + w
	}
	return "a " + w
}

// Refusals of [DeviceState.Apply], [DeviceState.NextEvent] and
// [DeviceState.AcceptsReadings]. Errors wrap exactly one of them.
var (
	// ErrUnknownDevice: the state is not that of a registered device.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrWrongLink: the event is not the next link of the device's chain
	// (another device, a seq other than the next, or a prev other than the
	// chain's head).
	ErrWrongLink = errors.New("not the next event of the device's chain")
	// ErrTransition: the device's status does not allow the event.
	ErrTransition = errors.New("lifecycle transition refused")
	// ErrNotEntitled: the actor may not make this event on this device.
	ErrNotEntitled = errors.New("actor not entitled to the event")
	// ErrTimeOrder: the event takes effect before the device's previous one.
	ErrTimeOrder = errors.New("lifecycle event out of time order")
	// ErrDeviceUnusable: the device was not in service when it took the
	// readings (recalled, decommissioned, or not commissioned yet).
	ErrDeviceUnusable = errors.New("device not in service for these readings")
	// ErrStaleFirmware: the readings come from a firmware version other
	// than the device's current one.
	ErrStaleFirmware = errors.New("stale firmware")
)

// DeviceState is a device's lifecycle state: its registration replayed
// with its events, in chain order, by [DeviceState.Apply].
//
// Each event is checked, in this order: it is the next link of the
// device's chain (same device, seq one more than [DeviceState.Seq], prev
// equal to [DeviceState.Head]: [ErrWrongLink]); the device's status allows
// it ([ErrTransition]); its actor is entitled to it ([ErrNotEntitled]); it
// takes effect no earlier than the previous event ([ErrTimeOrder]; the
// first event is not compared with the registration time, as a device may
// be made before it is registered). The transitions:
//
//	event           allowed when the device is                     status after    signed by
//	manufactured    registered                                     manufactured    its manufacturer
//	shipped         manufactured                                   shipped         its manufacturer
//	commissioned    shipped                                        in_service      the hospital it was shipped to
//	firmware        manufactured, shipped or in_service            unchanged       its manufacturer
//	recalled        registered, manufactured, shipped, in_service  recalled        its manufacturer
//	decommissioned  anything but decommissioned                    decommissioned  the hospital it was commissioned
//	                                                                               to; if never commissioned, its
//	                                                                               manufacturer
//
// So a recalled device can only be decommissioned (it cannot be
// commissioned, updated or recalled again), and nothing follows
// decommissioning. A firmware event must change the version: an image
// under the version the device already runs is refused, or readings could
// not tell the two apart. The manufacturer is the registration's.
type DeviceState struct {
	Device       string
	Manufacturer string
	Status       LifecycleStatus
	// Hospital is the hospital the device was shipped to, which is also
	// the one that commissioned it; "" before shipping.
	Hospital string
	// Firmware and FirmwareDigest are the device's current firmware: the
	// registration's version (with a zero digest, which the registration
	// does not record) until a firmware event.
	Firmware       string
	FirmwareDigest [32]byte
	// CommissionedAt, RecalledAt and DecommissionedAt are when the device
	// was commissioned, recalled and decommissioned, in Unix seconds; 0 if
	// it was not. Event times are positive, so 0 is never an event's.
	CommissionedAt   int64
	RecalledAt       int64
	DecommissionedAt int64
	// RecallReason is the recall's reason, or "".
	RecallReason string
	// Seq is the seq of the device's last event, 0 if it had none.
	Seq uint64
	// Head is the leaf hash of the device's last event, or of its
	// registration record if it had none: the next event's prev.
	Head [32]byte
	// Updated is when the last event took effect, 0 if it had none.
	Updated int64
}

// NewDeviceState returns the state of a device just registered by reg:
// status registered, the registration's firmware, no events.
func NewDeviceState(reg *RegistrationRecord) DeviceState {
	return DeviceState{
		Device:       reg.Registration.DeviceID,
		Manufacturer: reg.Registration.Manufacturer,
		Status:       StatusRegistered,
		Firmware:     reg.Registration.Firmware,
		Head:         reg.LeafHash(),
	}
}

// allowedFrom lists, for each kind of event, the statuses it may follow.
var allowedFrom = map[EventKind][]LifecycleStatus{
	EventManufactured:   {StatusRegistered},
	EventShipped:        {StatusManufactured},
	EventCommissioned:   {StatusShipped},
	EventFirmware:       {StatusManufactured, StatusShipped, StatusInService},
	EventRecalled:       {StatusRegistered, StatusManufactured, StatusShipped, StatusInService},
	EventDecommissioned: {StatusRegistered, StatusManufactured, StatusShipped, StatusInService, StatusRecalled},
}

// Apply returns the device's state after e, or an error wrapping one of
// [ErrUnknownDevice], [ErrWrongLink], [ErrTransition], [ErrNotEntitled] and
// [ErrTimeOrder] that names the event and the device's status, for example
// "lifecycle transition refused: cannot commission a recalled device". On
// error it returns s unchanged. It does not verify e's signature: the
// caller verifies it with the actor's key ([VerifyEvent]).
func (s DeviceState) Apply(e *EventRecord) (DeviceState, error) {
	n, err := s.next(&e.Event)
	if err != nil {
		return s, err
	}
	n.Head = e.LeafHash()
	return n, nil
}

// NextEvent returns the device's next event, of kind, taking effect at at,
// made by actor, with the details its kind has: its seq and prev continue
// s's chain. It refuses, as [DeviceState.Apply] would, an event that s does
// not allow.
func (s DeviceState) NextEvent(kind EventKind, at time.Time, actor string, d EventDetails) (*Event, error) {
	e, err := NewEvent(s.Device, kind, s.Seq+1, s.Head, at, actor, d)
	if err != nil {
		return nil, err
	}
	if _, err := s.next(e); err != nil {
		return nil, err
	}
	return e, nil
}

// next checks e against s and returns the state after it, but for Head.
func (s DeviceState) next(e *Event) (DeviceState, error) {
	if s.Device == "" {
		return s, fmt.Errorf("%w: no registration record for device %q", ErrUnknownDevice, e.DeviceID)
	}
	if err := e.Check(); err != nil {
		return s, fmt.Errorf("%w: %v", errMalformedEvent, err)
	}
	if e.DeviceID != s.Device {
		return s, fmt.Errorf("%w: the event is for device %q, not %q", ErrWrongLink, e.DeviceID, s.Device)
	}
	if e.Seq != s.Seq+1 {
		return s, fmt.Errorf("%w: seq %d, want %d", ErrWrongLink, e.Seq, s.Seq+1)
	}
	if e.Prev != s.Head {
		if s.Seq == 0 {
			return s, fmt.Errorf("%w: prev is not the leaf hash of the device's registration record", ErrWrongLink)
		}
		return s, fmt.Errorf("%w: prev is not the leaf hash of the device's event %d", ErrWrongLink, s.Seq)
	}
	verb := eventKinds[e.Kind]
	if !slices.Contains(allowedFrom[e.Kind], s.Status) {
		return s, fmt.Errorf("%w: %s", ErrTransition, s.refusal(e.Kind))
	}
	if e.Kind == EventFirmware && e.Firmware == s.Firmware {
		return s, fmt.Errorf("%w: cannot update the firmware to %q, the version the device already runs", ErrTransition, e.Firmware)
	}
	if want, who := s.entitled(e.Kind); e.Actor != want {
		return s, fmt.Errorf("%w: %q cannot %s this device: %s", ErrNotEntitled, e.Actor, verb, who)
	}
	if s.Seq > 0 && e.Time < s.Updated {
		return s, fmt.Errorf("%w: the event takes effect at %s, before the device's previous event (%s)",
			ErrTimeOrder, formatUnix(e.Time), formatUnix(s.Updated))
	}
	n := s
	n.Seq, n.Updated = e.Seq, e.Time
	switch e.Kind {
	case EventManufactured:
		n.Status = StatusManufactured
	case EventShipped:
		n.Status, n.Hospital = StatusShipped, e.Hospital
	case EventCommissioned:
		n.Status, n.CommissionedAt = StatusInService, e.Time
	case EventFirmware:
		n.Firmware, n.FirmwareDigest = e.Firmware, e.FirmwareDigest
	case EventRecalled:
		n.Status, n.RecalledAt, n.RecallReason = StatusRecalled, e.Time, e.Reason
	case EventDecommissioned:
		n.Status, n.DecommissionedAt = StatusDecommissioned, e.Time
	}
	return n, nil
}

// refusal explains why s does not allow an event of kind k.
func (s DeviceState) refusal(k EventKind) string {
	msg := fmt.Sprintf("cannot %s %s device", eventKinds[k], s.Status.words())
	switch {
	case s.Status == StatusDecommissioned:
		return msg + ": nothing follows decommissioning"
	case s.Status == StatusRecalled && k == EventRecalled:
		return fmt.Sprintf("%s: it was recalled at %s", msg, formatUnix(s.RecalledAt))
	case s.Status == StatusRecalled:
		return msg + ": a recalled device can only be decommissioned"
	}
	var from []string
	for _, st := range allowedFrom[k] {
		from = append(from, strings.ReplaceAll(string(st), "_", " "))
	}
	return fmt.Sprintf("%s: only when it is %s", msg, strings.Join(from, ", "))
}

// entitled returns who may make an event of kind k on the device: the
// actor ID, and a sentence saying who it is.
func (s DeviceState) entitled(k EventKind) (actor, who string) {
	switch k {
	case EventCommissioned:
		return s.Hospital, fmt.Sprintf("only the hospital it was shipped to, %q, can", s.Hospital)
	case EventDecommissioned:
		if s.CommissionedAt != 0 {
			return s.Hospital, fmt.Sprintf("only the hospital it was commissioned to, %q, can", s.Hospital)
		}
		return s.Manufacturer, fmt.Sprintf("only its manufacturer %q can, as it was never commissioned", s.Manufacturer)
	}
	return s.Manufacturer, fmt.Sprintf("only its manufacturer %q can", s.Manufacturer)
}

// AcceptsReadings reports whether the device may report a batch of
// readings taken in the window [windowStart, windowEnd) (Unix seconds, end
// exclusive, as in [EntryHeader]) under firmware version firmware. It
// returns an error wrapping [ErrDeviceUnusable] if the device
//
//   - was recalled or decommissioned with effect before the window's end,
//     that is at or before its last second (a batch whose window ends
//     before the recall is accepted: its readings predate it);
//   - has lifecycle events but was never commissioned (registered,
//     manufactured or shipped, or recalled or decommissioned before
//     commissioning);
//   - was commissioned after the window's start (readings from before
//     commissioning);
//
// and, when firmware is not "", an error wrapping [ErrStaleFirmware] if
// firmware is not the device's current version (the check is against the
// current version, whatever the window: batches taken before an update
// must be submitted before the update is logged).
//
// A device without any lifecycle event (Seq 0) is accepted whatever its
// status: deployments that register devices directly for a hospital, with
// no events, keep working. Its firmware is still checked against the
// registration's. Whether the device belongs to the submitting hospital is
// for the caller to check.
func (s DeviceState) AcceptsReadings(windowStart, windowEnd int64, firmware string) error {
	if s.Device == "" {
		return fmt.Errorf("%w: device not registered", ErrUnknownDevice)
	}
	if s.Seq > 0 {
		switch {
		case s.RecalledAt != 0 && s.RecalledAt < windowEnd:
			return fmt.Errorf("%w: the device was recalled with effect from %s (%q), before the end of the readings' window (%s)",
				ErrDeviceUnusable, formatUnix(s.RecalledAt), s.RecallReason, formatUnix(windowEnd))
		case s.DecommissionedAt != 0 && s.DecommissionedAt < windowEnd:
			return fmt.Errorf("%w: the device was decommissioned with effect from %s, before the end of the readings' window (%s)",
				ErrDeviceUnusable, formatUnix(s.DecommissionedAt), formatUnix(windowEnd))
		case s.CommissionedAt == 0:
			return fmt.Errorf("%w: the device is %s and was never commissioned by a hospital", ErrDeviceUnusable, strings.ReplaceAll(string(s.Status), "_", " "))
		case windowStart < s.CommissionedAt:
			return fmt.Errorf("%w: the readings' window starts at %s, before the device was commissioned (%s)",
				ErrDeviceUnusable, formatUnix(windowStart), formatUnix(s.CommissionedAt))
		}
	}
	if firmware != "" && firmware != s.Firmware {
		return fmt.Errorf("%w: the readings come from firmware %q, the device runs %q", ErrStaleFirmware, firmware, s.Firmware)
	}
	return nil
}

// formatUnix formats Unix seconds as an RFC 3339 UTC time.
func formatUnix(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }
