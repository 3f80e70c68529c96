package wearables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// FHIR R4 import and export. See the package documentation for the
// accepted resources and the device attestation convention.

const (
	// MaxFHIRSize bounds the input of [ImportFHIR].
	MaxFHIRSize = 8 << 20
	// FHIREntrySigFormat is the sigFormat of a Provenance signature whose
	// data is a VitalProof entry.
	FHIREntrySigFormat = "application/vnd.vitalproof.entry"
	// FHIRSaltExtension is the URL of the Provenance extension that carries
	// the commitment's salt (valueBase64Binary).
	FHIRSaltExtension = "https://vitalproof.dev/fhir/StructureDefinition/commitment-salt"

	loincSystem    = "http://loinc.org"
	ucumSystem     = "http://unitsofmeasure.org"
	categorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"
	// The ASTM E1762 "Source Signature" type, for a device's own signature.
	sigTypeSystem = "urn:iso-astm:E1762-95:2013"
	sigTypeCode   = "1.2.840.10065.1.12.1.14"
	bpPanelLOINC  = "85354-9"

	maxJSONDepth  = 64
	maxPatientRef = 256
)

// FHIRImport is what [ImportFHIR] found in a resource.
type FHIRImport struct {
	// Attested batches: a Bundle whose Provenance carries the device's signature.
	Attested []AttestedBatch
	// Unattested groups: Observations without a device signature, grouped
	// by device and metric (in order of first appearance), in time order.
	Unattested []ObservationGroup
}

// AttestedBatch is a device-signed batch that arrived as FHIR, with the
// patient its Observations name (for the hospital's private store only).
// Its readings are in time order; whether they open the entry's commitment
// is for [Batch.Validate] to say.
type AttestedBatch struct {
	Batch      Batch
	PatientRef string
}

// ObservationGroup is the Observations of one device and metric that no
// device signed, in time order: Times[i] (whole seconds, UTC) and the
// fixed-point Values[i] (see [Metric.Encode]).
type ObservationGroup struct {
	DeviceID, Metric, PatientRef string
	Times                        []time.Time
	Values                       []uint32
}

// unitConversions lists, per metric, the UCUM codes accepted and how to
// convert them to the metric's unit.
var unitConversions = map[string]map[string]func(float64) float64{
	"heart-rate":       {"/min": identity, "{beats}/min": identity},
	"spo2":             {"%": identity},
	"body-temperature": {"Cel": identity, "[degF]": func(f float64) float64 { return (f - 32) * 5 / 9 }},
	"systolic-bp":      {"mm[Hg]": identity},
	"diastolic-bp":     {"mm[Hg]": identity},
	"glucose":          {"mg/dL": identity, "mmol/L": func(v float64) float64 { return v * 18.016 }},
	"steps":            {"{steps}": identity, "1": identity},
}

func identity(v float64) float64 { return v }

var (
	errFHIR = errors.New("couldn't import FHIR resource")
	// fhirDateTime is a FHIR dateTime with a time: seconds and an offset
	// are required, fractions allowed.
	fhirDateTime = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)
	fhirPartial  = regexp.MustCompile(`^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$`)
)

// ImportFHIR parses a FHIR R4 JSON Observation, or a Bundle (collection,
// transaction or batch) of Observations and at most one Provenance, and
// converts the Observations to readings. It checks formats, codes, units
// and references; it does not check that an attested batch opens its
// commitment ([Batch.Validate]) nor anything the registry knows.
//
// Errors name the resource and field, e.g. "entry[3] Observation:
// valueQuantity.code: unsupported unit for heart-rate", and never
// a value or a patient reference.
func ImportFHIR(data []byte) (*FHIRImport, error) {
	if len(data) > MaxFHIRSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errFHIR, MaxFHIRSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", errFHIR)
	}
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("%w: %v", errFHIR, err)
	}
	var imp *FHIRImport
	var err error
	switch resourceType(data) {
	case "Observation":
		var o *observation
		if o, err = parseObservation(data, "Observation"); err == nil {
			imp, err = group([]*observation{o})
		}
	case "Bundle":
		imp, err = importBundle(data)
	default:
		err = errors.New("resourceType: want Observation or Bundle")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFHIR, err)
	}
	return imp, nil
}

func resourceType(data []byte) string {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(data, &head) != nil {
		return ""
	}
	return head.ResourceType
}

// observation is one parsed, converted Observation.
type observation struct {
	name       string // for errors: "entry[3] Observation"
	fullURL    string
	id         string
	deviceID   string
	metric     Metric
	patientRef string
	time       time.Time
	value      uint32
}

// fhirObservation reads status and valueQuantity.comparator as plain
// strings: the generated enums' decoders neither unescape JSON strings nor
// return errors that can be shown without echoing the input.
type fhirObservation struct {
	fhir.Observation
	Status        string        `json:"status"`
	ValueQuantity *fhirQuantity `json:"valueQuantity"`
}

type fhirQuantity struct {
	// Value is raw, so that a quoted number (which json.Number would take)
	// is refused: FHIR decimals are JSON numbers.
	Value      json.RawMessage `json:"value"`
	Comparator *string         `json:"comparator"`
	System     *string         `json:"system"`
	Code       *string         `json:"code"`
}

func parseObservation(raw []byte, name string) (*observation, error) {
	var fo fhirObservation
	if err := json.Unmarshal(raw, &fo); err != nil {
		return nil, fmt.Errorf("%s: %s", name, jsonError(err))
	}
	o, err := convertObservation(&fo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	o.name = name
	if fo.Id != nil {
		o.id = *fo.Id
	}
	return o, nil
}

func convertObservation(fo *fhirObservation) (*observation, error) {
	switch fo.Status {
	case "final", "amended", "corrected":
	default:
		return nil, errors.New("status: must be final, amended or corrected")
	}
	var o observation
	found := false
	for _, c := range fo.Code.Coding {
		if c.System == nil || *c.System != loincSystem || c.Code == nil {
			continue
		}
		m, ok := MetricByLOINC(*c.Code)
		if !ok {
			continue
		}
		if found && m.ID != o.metric.ID {
			return nil, errors.New("code: LOINC codes of more than one metric")
		}
		o.metric, found = m, true
	}
	if !found {
		for _, c := range fo.Code.Coding {
			if c.Code != nil && *c.Code == bpPanelLOINC {
				return nil, errors.New("code: blood pressure panels are not supported: send systolic (8480-6) and diastolic (8462-4) Observations")
			}
		}
		return nil, errors.New("code: no http://loinc.org coding of a supported metric")
	}

	q := fo.ValueQuantity
	switch {
	case q == nil:
		return nil, errors.New("valueQuantity: missing")
	case q.Comparator != nil:
		return nil, errors.New("valueQuantity.comparator: not allowed")
	case len(q.Value) == 0 || string(q.Value) == "null":
		return nil, errors.New("valueQuantity.value: missing")
	case q.System == nil || *q.System != ucumSystem:
		return nil, errors.New("valueQuantity.system: must be " + ucumSystem)
	case q.Code == nil:
		return nil, errors.New("valueQuantity.code: missing")
	}
	convert, ok := unitConversions[o.metric.Code][*q.Code]
	if !ok {
		return nil, fmt.Errorf("valueQuantity.code: unsupported unit for %s", o.metric.Code)
	}
	v, err := strconv.ParseFloat(string(q.Value), 64)
	if err != nil || math.IsInf(v, 0) {
		return nil, errors.New("valueQuantity.value: not a finite JSON number")
	}
	if o.value, err = o.metric.Encode(convert(v)); err != nil {
		return nil, fmt.Errorf("valueQuantity.value: %w", err)
	}

	if fo.EffectiveDateTime == nil {
		return nil, errors.New("effectiveDateTime: missing (effectivePeriod, effectiveTiming and effectiveInstant are not supported)")
	}
	if o.time, err = parseDateTime(*fo.EffectiveDateTime); err != nil {
		return nil, fmt.Errorf("effectiveDateTime: %w", err)
	}

	if fo.Device == nil || fo.Device.Reference == nil {
		return nil, errors.New("device: missing: want a Device/<registry ID> reference")
	}
	if o.deviceID, ok = deviceRef(*fo.Device.Reference); !ok {
		return nil, errors.New("device.reference: want Device/<registry ID>")
	}
	if fo.Subject != nil && fo.Subject.Reference != nil {
		if err := checkPatientRef(*fo.Subject.Reference); err != nil {
			return nil, fmt.Errorf("subject.reference: %w", err)
		}
		o.patientRef = *fo.Subject.Reference
	}
	return &o, nil
}

// parseDateTime parses a FHIR dateTime that has a time and an offset, to
// whole seconds (fractions are truncated), in UTC.
func parseDateTime(s string) (time.Time, error) {
	if fhirPartial.MatchString(s) {
		return time.Time{}, errors.New("partial dates are not supported: want a date-time with seconds and offset")
	}
	if !fhirDateTime.MatchString(s) {
		return time.Time{}, errors.New("want an RFC 3339 date-time with seconds and offset")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not a valid date-time")
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, errors.New("before 1970")
	}
	return time.Unix(t.Unix(), 0).UTC(), nil
}

func deviceRef(ref string) (string, bool) {
	id, ok := strings.CutPrefix(ref, "Device/")
	return id, ok && ValidID(id)
}

func checkPatientRef(ref string) error {
	if ref == "" || len(ref) > maxPatientRef {
		return fmt.Errorf("must be 1 to %d bytes", maxPatientRef)
	}
	for _, r := range ref {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errors.New("must not contain spaces or control characters")
		}
	}
	return nil
}

// fhirBundle reads type as a plain string, as fhirObservation does status.
type fhirBundle struct {
	fhir.Bundle
	Type string `json:"type"`
}

func importBundle(data []byte) (*FHIRImport, error) {
	var b fhirBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("Bundle: %s", jsonError(err))
	}
	switch b.Type {
	case "collection", "transaction", "batch":
	default:
		return nil, errors.New("Bundle: type: must be collection, transaction or batch")
	}
	var (
		obs     []*observation
		prov    *fhir.Provenance
		provIdx int
	)
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			return nil, fmt.Errorf("entry[%d]: resource: missing", i)
		}
		switch resourceType(e.Resource) {
		case "Observation":
			name := fmt.Sprintf("entry[%d] Observation", i)
			o, err := parseObservation(e.Resource, name)
			if err != nil {
				return nil, err
			}
			if e.FullUrl != nil {
				o.fullURL = *e.FullUrl
			}
			obs = append(obs, o)
		case "Provenance":
			if prov != nil {
				return nil, fmt.Errorf("entry[%d] Provenance: at most one Provenance per Bundle", i)
			}
			prov, provIdx = new(fhir.Provenance), i
			if err := json.Unmarshal(e.Resource, prov); err != nil {
				return nil, fmt.Errorf("entry[%d] Provenance: %s", i, jsonError(err))
			}
		default:
			return nil, fmt.Errorf("entry[%d]: resourceType: want Observation or Provenance", i)
		}
	}
	var attested *AttestedBatch
	if prov != nil {
		var err error
		if attested, obs, err = attestedBatch(prov, obs); err != nil {
			return nil, fmt.Errorf("entry[%d] Provenance: %w", provIdx, err)
		}
	}
	imp, err := group(obs)
	if err != nil {
		return nil, err
	}
	if attested != nil {
		imp.Attested = []AttestedBatch{*attested}
	}
	return imp, nil
}

// attestedBatch builds the batch that prov attests and returns it with the
// Observations that prov does not target.
func attestedBatch(prov *fhir.Provenance, obs []*observation) (*AttestedBatch, []*observation, error) {
	if len(prov.Signature) == 0 {
		return nil, nil, errors.New("signature: missing")
	}
	sig := prov.Signature[0]
	if sig.SigFormat == nil || *sig.SigFormat != FHIREntrySigFormat {
		return nil, nil, errors.New("signature[0].sigFormat: must be " + FHIREntrySigFormat)
	}
	if sig.Data == nil {
		return nil, nil, errors.New("signature[0].data: missing")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*sig.Data)
	if err != nil {
		return nil, nil, errors.New("signature[0].data: not base64")
	}
	e, err := ParseEntry(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("signature[0].data: not a VitalProof entry: %w", err)
	}
	h := &e.Header
	if h.Attestation != AttestDevice {
		return nil, nil, errors.New("signature[0].data: the entry's attestation must be device")
	}
	if id, ok := refDevice(&sig.Who); !ok || id != h.DeviceID {
		return nil, nil, errors.New("signature[0].who: must reference the entry's device")
	}
	if len(prov.Agent) == 0 {
		return nil, nil, errors.New("agent: missing")
	}
	if id, ok := refDevice(&prov.Agent[0].Who); !ok || id != h.DeviceID {
		return nil, nil, errors.New("agent[0].who: must reference the entry's device")
	}
	var salt *[commitment.Size]byte
	for _, x := range prov.Extension {
		if x.Url != FHIRSaltExtension {
			continue
		}
		if salt != nil {
			return nil, nil, errors.New("extension commitment-salt: more than one")
		}
		if x.ValueBase64Binary == nil {
			return nil, nil, errors.New("extension commitment-salt: valueBase64Binary missing")
		}
		b, err := base64.StdEncoding.Strict().DecodeString(*x.ValueBase64Binary)
		if err != nil {
			return nil, nil, errors.New("extension commitment-salt: not base64")
		}
		s, err := commitment.ParseSalt(b)
		if err != nil {
			return nil, nil, errors.New("extension commitment-salt: not a canonical salt")
		}
		salt = &s
	}
	if salt == nil {
		return nil, nil, errors.New("extension commitment-salt: missing")
	}

	if len(prov.Target) == 0 {
		return nil, nil, errors.New("target: missing")
	}
	if len(prov.Target) > MaxBatchReadings {
		return nil, nil, fmt.Errorf("target: more than %d Observations", MaxBatchReadings)
	}
	byRef := map[string]int{}
	for i, o := range obs {
		if o.fullURL != "" {
			byRef[o.fullURL] = i
		}
		if o.id != "" {
			byRef["Observation/"+o.id] = i
		}
	}
	targeted := make([]bool, len(obs))
	window := h.WindowEnd - h.WindowStart
	readings := make([]Reading, 0, len(prov.Target))
	var patientRef string
	for j, t := range prov.Target {
		i, ok := -1, false
		if t.Reference != nil {
			i, ok = byRef[*t.Reference]
		}
		if !ok {
			return nil, nil, fmt.Errorf("target[%d]: does not reference an Observation of the Bundle", j)
		}
		if targeted[i] {
			return nil, nil, fmt.Errorf("target[%d]: references an Observation twice", j)
		}
		targeted[i] = true
		o := obs[i]
		switch off := o.time.Unix() - h.WindowStart; {
		case o.metric.Code != h.Metric:
			return nil, nil, fmt.Errorf("%s: code: not the metric of the device's entry", o.name)
		case o.deviceID != h.DeviceID:
			return nil, nil, fmt.Errorf("%s: device: not the device of the entry", o.name)
		case off < 0 || off >= window:
			return nil, nil, fmt.Errorf("%s: effectiveDateTime: outside the entry's window", o.name)
		case j > 0 && o.patientRef != patientRef:
			return nil, nil, fmt.Errorf("%s: subject: differs from the batch's other Observations", o.name)
		default:
			readings = append(readings, Reading{Offset: uint32(off), Value: o.value})
			patientRef = o.patientRef
		}
	}
	sort.SliceStable(readings, func(a, b int) bool { return readings[a].Offset < readings[b].Offset })
	var rest []*observation
	for i, o := range obs {
		if !targeted[i] {
			rest = append(rest, o)
		}
	}
	return &AttestedBatch{Batch: Batch{Entry: e, Salt: *salt, Readings: readings}, PatientRef: patientRef}, rest, nil
}

func refDevice(r *fhir.Reference) (string, bool) {
	if r.Reference == nil {
		return "", false
	}
	return deviceRef(*r.Reference)
}

// group groups unattested Observations by device and metric.
func group(obs []*observation) (*FHIRImport, error) {
	imp := &FHIRImport{}
	index := map[[2]string]int{}
	var members [][]*observation
	for _, o := range obs {
		k := [2]string{o.deviceID, o.metric.Code}
		i, ok := index[k]
		if !ok {
			i = len(members)
			index[k] = i
			members = append(members, nil)
		}
		if len(members[i]) > 0 && members[i][0].patientRef != o.patientRef {
			return nil, fmt.Errorf("%s: subject: differs from that of other Observations of the device and metric", o.name)
		}
		if len(members[i]) == MaxBatchReadings {
			return nil, fmt.Errorf("%s: more than %d Observations of one device and metric", o.name, MaxBatchReadings)
		}
		members[i] = append(members[i], o)
	}
	for _, m := range members {
		sort.SliceStable(m, func(a, b int) bool { return m[a].time.Before(m[b].time) })
		g := ObservationGroup{DeviceID: m[0].deviceID, Metric: m[0].metric.Code, PatientRef: m[0].patientRef}
		for _, o := range m {
			g.Times = append(g.Times, o.time)
			g.Values = append(g.Values, o.value)
		}
		imp.Unattested = append(imp.Unattested, g)
	}
	return imp, nil
}

// checkJSON checks that data is one JSON object, nested at most
// maxJSONDepth deep, whose objects have no duplicate keys. encoding/json
// would keep the last of two keys and match keys case-insensitively;
// refusing duplicates (up to case) removes the ambiguity.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	if err := checkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the resource")
	}
	return nil
}

func checkObject(dec *json.Decoder, depth int) error {
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformedJSON(dec)
		}
		k, _ := tok.(string)
		fold := strings.ToLower(strings.ToUpper(k))
		if keys[fold] {
			return fmt.Errorf("malformed JSON: duplicate key near byte %d", dec.InputOffset())
		}
		keys[fold] = true
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return malformedJSON(dec)
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return malformedJSON(dec)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxJSONDepth {
		return fmt.Errorf("malformed JSON: nested more than %d deep", maxJSONDepth)
	}
	if d == '{' {
		return checkObject(dec, depth+1)
	}
	for dec.More() {
		if err := checkValue(dec, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return malformedJSON(dec)
	}
	return nil
}

func malformedJSON(dec *json.Decoder) error {
	return fmt.Errorf("malformed JSON near byte %d", dec.InputOffset())
}

// jsonError describes an encoding/json error without the input's values.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// Drop the Go type names that encoding/json puts in the path.
		var path []string
		for _, p := range strings.Split(te.Field, ".") {
			if p != "" && !unicode.IsUpper(rune(p[0])) {
				path = append(path, p)
			}
		}
		return fmt.Sprintf("%s: wrong JSON type", strings.Join(path, "."))
	}
	return "malformed resource: a field has the wrong JSON type or an unknown code"
}

// ExportFHIR returns a device-attested batch as a FHIR R4 collection
// Bundle: one Observation per reading and the Provenance that carries the
// entry and the salt. patientRef, if not empty, is the Observations'
// subject reference. [ImportFHIR] reverses it.
func ExportFHIR(b *Batch, patientRef string) ([]byte, error) {
	h := &b.Entry.Header
	if h.Attestation != AttestDevice {
		return nil, errors.New("couldn't export batch: only device-attested batches carry a device signature")
	}
	m, ok := MetricByCode(h.Metric)
	if !ok {
		return nil, errors.New("couldn't export batch: unknown metric code")
	}
	if patientRef != "" {
		if err := checkPatientRef(patientRef); err != nil {
			return nil, fmt.Errorf("couldn't export batch: patient reference: %w", err)
		}
	}
	leaf := b.Entry.LeafHash()
	device := "Device/" + h.DeviceID
	var entries []fhir.BundleEntry
	var targets []fhir.Reference
	for i, r := range b.Readings {
		if int64(r.Offset) >= h.WindowEnd-h.WindowStart {
			return nil, fmt.Errorf("couldn't export batch: readings[%d]: time is outside the entry's window", i)
		}
		url := urnUUID(leaf[:], uint64(i))
		raw, err := marshalObservation(exportObservation(m, h.DeviceID, patientRef, time.Unix(h.WindowStart+int64(r.Offset), 0), r.Value))
		if err != nil {
			return nil, fmt.Errorf("couldn't export batch: %w", err)
		}
		entries = append(entries, fhir.BundleEntry{FullUrl: &url, Resource: raw})
		targets = append(targets, fhir.Reference{Reference: &url})
	}
	recorded := time.Unix(h.WindowEnd, 0).UTC().Format(time.RFC3339)
	salt := base64.StdEncoding.EncodeToString(b.Salt[:])
	data := base64.StdEncoding.EncodeToString(b.Entry.Bytes)
	prov := fhir.Provenance{
		Extension: []fhir.Extension{{Url: FHIRSaltExtension, ValueBase64Binary: &salt}},
		Target:    targets,
		Recorded:  recorded,
		Agent:     []fhir.ProvenanceAgent{{Who: fhir.Reference{Reference: &device}}},
		Signature: []fhir.Signature{{
			Type:      []fhir.Coding{{System: ptr(sigTypeSystem), Code: ptr(sigTypeCode), Display: ptr("Source Signature")}},
			When:      recorded,
			Who:       fhir.Reference{Reference: &device},
			SigFormat: ptr(FHIREntrySigFormat),
			Data:      &data,
		}},
	}
	raw, err := json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		fhir.OtherProvenance
	}{"Provenance", fhir.OtherProvenance(prov)})
	if err != nil {
		return nil, fmt.Errorf("couldn't export batch: %w", err)
	}
	url := urnUUID(leaf[:], math.MaxUint64)
	entries = append(entries, fhir.BundleEntry{FullUrl: &url, Resource: raw})
	return marshalBundle(entries)
}

// ExportObservations returns groups of readings that no device signed as
// a FHIR R4 collection Bundle of Observations. [ImportFHIR] reverses it.
func ExportObservations(groups ...ObservationGroup) ([]byte, error) {
	var entries []fhir.BundleEntry
	for gi, g := range groups {
		m, ok := MetricByCode(g.Metric)
		if !ok {
			return nil, fmt.Errorf("couldn't export observations: group %d: unknown metric code", gi)
		}
		if !ValidID(g.DeviceID) {
			return nil, fmt.Errorf("couldn't export observations: group %d: device: %w", gi, errBadID)
		}
		if g.PatientRef != "" {
			if err := checkPatientRef(g.PatientRef); err != nil {
				return nil, fmt.Errorf("couldn't export observations: group %d: patient reference: %w", gi, err)
			}
		}
		if len(g.Times) != len(g.Values) {
			return nil, fmt.Errorf("couldn't export observations: group %d: as many times as values needed", gi)
		}
		seed := sha256.Sum256([]byte("vitalproof/fhir/group\x00" + g.DeviceID + "\x00" + g.Metric + "\x00" + strconv.Itoa(gi)))
		for i := range g.Times {
			if err := m.CheckFixed(g.Values[i]); err != nil {
				return nil, fmt.Errorf("couldn't export observations: group %d: values[%d]: %w", gi, i, err)
			}
			url := urnUUID(seed[:], uint64(i))
			raw, err := marshalObservation(exportObservation(m, g.DeviceID, g.PatientRef, g.Times[i], g.Values[i]))
			if err != nil {
				return nil, fmt.Errorf("couldn't export observations: %w", err)
			}
			entries = append(entries, fhir.BundleEntry{FullUrl: &url, Resource: raw})
		}
	}
	return marshalBundle(entries)
}

func exportObservation(m Metric, deviceID, patientRef string, t time.Time, v uint32) fhir.Observation {
	category := "vital-signs"
	if m.Code == "steps" {
		category = "activity"
	}
	value := json.Number(strconv.FormatFloat(m.Decode(v), 'f', m.Scale, 64))
	effective := t.UTC().Format(time.RFC3339)
	o := fhir.Observation{
		Status:   fhir.ObservationStatusFinal,
		Category: []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: ptr(categorySystem), Code: ptr(category)}}}},
		Code: fhir.CodeableConcept{
			Coding: []fhir.Coding{{System: ptr(loincSystem), Code: ptr(m.LOINC), Display: ptr(m.Display)}},
			Text:   ptr(m.Display),
		},
		EffectiveDateTime: &effective,
		ValueQuantity:     &fhir.Quantity{Value: &value, Unit: ptr(m.Unit), System: ptr(ucumSystem), Code: ptr(m.Unit)},
		Device:            &fhir.Reference{Reference: ptr("Device/" + deviceID)},
	}
	if patientRef != "" {
		o.Subject = &fhir.Reference{Reference: ptr(patientRef)}
	}
	return o
}

// marshalObservation writes resourceType first, as FHIR's own JSON does.
func marshalObservation(o fhir.Observation) ([]byte, error) {
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		fhir.OtherObservation
	}{"Observation", fhir.OtherObservation(o)})
}

func marshalBundle(entries []fhir.BundleEntry) ([]byte, error) {
	out, err := json.MarshalIndent(struct {
		ResourceType string `json:"resourceType"`
		fhir.OtherBundle
	}{"Bundle", fhir.OtherBundle{Type: fhir.BundleTypeCollection, Entry: entries}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("couldn't export bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// urnUUID derives a stable urn:uuid (version 8, RFC 9562) from seed and n.
func urnUUID(seed []byte, n uint64) string {
	h := sha256.New()
	h.Write(seed)
	binary.Write(h, binary.BigEndian, n)
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func ptr[T any](v T) *T { return &v }
