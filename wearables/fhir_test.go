package wearables

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/fhir")

// patient is a patient reference that no error message may contain.
const patient = "Patient/p-secret-17"

func TestFHIRAttestedRoundTrip(t *testing.T) {
	for _, m := range Metrics() {
		t.Run(m.Code, func(t *testing.T) {
			b := testBatch(t, m.Code)
			out, err := ExportFHIR(b, patient)
			if err != nil {
				t.Fatal(err)
			}
			imp, err := ImportFHIR(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(imp.Attested) != 1 || len(imp.Unattested) != 0 {
				t.Fatalf("imported %d attested, %d unattested", len(imp.Attested), len(imp.Unattested))
			}
			a := imp.Attested[0]
			if err := a.Batch.Validate(testNow); err != nil {
				t.Fatalf("imported batch does not validate: %v", err)
			}
			if a.PatientRef != patient {
				t.Errorf("PatientRef = %q", a.PatientRef)
			}
			if !bytes.Equal(a.Batch.Entry.Bytes, b.Entry.Bytes) || a.Batch.Salt != b.Salt || !reflect.DeepEqual(a.Batch.Readings, b.Readings) {
				t.Error("imported batch differs from the exported one")
			}
		})
	}
	// Without a patient, and with gaps.
	sim := testSim(t, 3)
	sim.Skip = func(_ string, at time.Time) bool { return at.Minute()%7 == 3 }
	b, err := sim.Batch("glucose", testStart, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ExportFHIR(b, "")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("subject")) {
		t.Error("export without a patient has a subject")
	}
	imp, err := ImportFHIR(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Attested[0].Batch.Validate(testNow); err != nil || imp.Attested[0].PatientRef != "" {
		t.Errorf("gappy batch: %v, patient %q", err, imp.Attested[0].PatientRef)
	}
}

func TestFHIRUnattestedRoundTrip(t *testing.T) {
	sim := testSim(t, 1)
	var groups []ObservationGroup
	for _, metric := range []string{"body-temperature", "spo2", "steps"} {
		g, err := sim.Observations(metric, testStart, time.Hour, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		g.PatientRef = patient
		groups = append(groups, g)
	}
	out, err := ExportObservations(groups...)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ImportFHIR(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Attested) != 0 || !reflect.DeepEqual(imp.Unattested, groups) {
		t.Fatalf("imported %+v, want %+v", imp.Unattested, groups)
	}
}

// TestFHIRGolden pins the export format and checks hand-written resources.
// Run with -update to rewrite the generated files.
func TestFHIRGolden(t *testing.T) {
	sim := testSim(t, 5)
	b, err := sim.Batch("heart-rate", testStart, time.Hour, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	attested, err := ExportFHIR(b, "Patient/example")
	if err != nil {
		t.Fatal(err)
	}
	g, err := sim.Observations("glucose", testStart, 30*time.Minute, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	g.PatientRef = "Patient/example"
	observations, err := ExportObservations(g)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"attested-heart-rate.json": attested, "observations-glucose.json": observations} {
		path := filepath.Join("testdata", "fhir", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: export differs from the golden file (run with -update if the change is intended)", name)
		}
	}

	// Hand-written resources, as other systems send them.
	tests := []struct {
		file string
		want FHIRImport
	}{
		{"observation-degF.json", FHIRImport{Unattested: []ObservationGroup{{
			DeviceID: "thermo-3", Metric: "body-temperature", PatientRef: "Patient/example",
			Times:  []time.Time{time.Date(2025, 3, 14, 7, 30, 5, 0, time.UTC)},
			Values: []uint32{3700}, // 98.6 [degF]
		}}}},
		{"transaction-mixed.json", FHIRImport{Unattested: []ObservationGroup{
			{DeviceID: "cgm-9", Metric: "glucose", PatientRef: "Patient/example",
				Times:  []time.Time{time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC), time.Date(2025, 3, 14, 8, 5, 0, 0, time.UTC)},
				Values: []uint32{99, 126}}, // 5.5 and 7.0 mmol/L
			{DeviceID: "band-1", Metric: "heart-rate",
				Times:  []time.Time{time.Date(2025, 3, 14, 8, 1, 0, 0, time.UTC)},
				Values: []uint32{64}},
			{DeviceID: "band-1", Metric: "steps",
				Times:  []time.Time{time.Date(2025, 3, 14, 8, 2, 0, 0, time.UTC)},
				Values: []uint32{112}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "fhir", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			imp, err := ImportFHIR(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*imp, tt.want) {
				t.Errorf("ImportFHIR = %+v\nwant %+v", *imp, tt.want)
			}
		})
	}
}

// observationJSON returns a valid heart-rate Observation, changed by edit.
func observationJSON(t *testing.T, edit func(o map[string]any)) []byte {
	t.Helper()
	o := map[string]any{
		"resourceType":      "Observation",
		"status":            "final",
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject":           map[string]any{"reference": patient},
		"effectiveDateTime": "2025-03-14T09:05:00+01:00",
		"valueQuantity":     map[string]any{"value": json.Number("72"), "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
		"device":            map[string]any{"reference": "Device/band-1"},
	}
	if edit != nil {
		edit(o)
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportObservation(t *testing.T) {
	imp, err := ImportFHIR(observationJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []ObservationGroup{{DeviceID: "band-1", Metric: "heart-rate", PatientRef: patient,
		Times: []time.Time{time.Date(2025, 3, 14, 8, 5, 0, 0, time.UTC)}, Values: []uint32{72}}}
	if !reflect.DeepEqual(imp.Unattested, want) || len(imp.Attested) != 0 {
		t.Fatalf("ImportFHIR = %+v, want %+v", imp, want)
	}
	conversions := []struct {
		name        string
		loinc, unit string
		value       string
		want        uint32
	}{
		{"heart rate beats", "8867-4", "{beats}/min", "64.4", 64},
		{"spo2", "59408-5", "%", "97.25", 973},
		{"temperature Cel", "8310-5", "Cel", "36.87", 3687},
		{"temperature degF", "8310-5", "[degF]", "100.4", 3800},
		{"systolic", "8480-6", "mm[Hg]", "121", 121},
		{"diastolic", "8462-4", "mm[Hg]", "79", 79},
		{"glucose mg/dL", "2339-0", "mg/dL", "140", 140},
		{"glucose mmol/L", "2339-0", "mmol/L", "10", 180},
		{"steps", "55423-8", "{steps}", "0", 0},
		{"steps 1", "55423-8", "1", "1500", 1500},
		{"exponent", "8867-4", "/min", "7.2e1", 72},
	}
	for _, tt := range conversions {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := ImportFHIR(observationJSON(t, func(o map[string]any) {
				o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": tt.loinc}}}
				o["valueQuantity"] = map[string]any{"value": json.Number(tt.value), "system": "http://unitsofmeasure.org", "code": tt.unit}
			}))
			if err != nil {
				t.Fatal(err)
			}
			if got := imp.Unattested[0].Values[0]; got != tt.want {
				t.Errorf("value = %d, want %d", got, tt.want)
			}
		})
	}
	// Fractions of a second are truncated; any offset is accepted.
	imp, err = ImportFHIR(observationJSON(t, func(o map[string]any) { o["effectiveDateTime"] = "2025-03-14T23:59:59.999-05:30" }))
	if err != nil {
		t.Fatal(err)
	}
	if got := imp.Unattested[0].Times[0]; !got.Equal(time.Date(2025, 3, 15, 5, 29, 59, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("time = %v", got)
	}
}

func TestImportObservationRefusals(t *testing.T) {
	coding := func(system, code string) any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
	}
	quantity := func(value, system, code string) any {
		return map[string]any{"value": json.Number(value), "system": system, "code": code}
	}
	set := func(k string, v any) func(map[string]any) { return func(o map[string]any) { o[k] = v } }
	del := func(k string) func(map[string]any) { return func(o map[string]any) { delete(o, k) } }
	tests := []struct {
		name    string
		edit    func(map[string]any)
		wantErr string
	}{
		{"unknown LOINC", set("code", coding("http://loinc.org", "1234-5")), "code: no http://loinc.org coding"},
		{"not LOINC", set("code", coding("http://snomed.info/sct", "8867-4")), "code: no http://loinc.org coding"},
		{"no code", del("code"), "code: no http://loinc.org coding"},
		{"BP panel", set("code", coding("http://loinc.org", "85354-9")), "code: blood pressure panels are not supported"},
		{"two metrics", set("code", map[string]any{"coding": []any{
			map[string]any{"system": "http://loinc.org", "code": "8867-4"},
			map[string]any{"system": "http://loinc.org", "code": "8310-5"},
		}}), "code: LOINC codes of more than one metric"},
		{"wrong unit", set("valueQuantity", quantity("72", "http://unitsofmeasure.org", "Cel")), "valueQuantity.code: unsupported unit for heart-rate"},
		{"unit by display only", set("valueQuantity", map[string]any{"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"}), "valueQuantity.code: missing"},
		{"unit not UCUM", set("valueQuantity", quantity("72", "http://example.org/units", "/min")), "valueQuantity.system: must be http://unitsofmeasure.org"},
		{"no unit system", set("valueQuantity", map[string]any{"value": 72, "code": "/min"}), "valueQuantity.system"},
		{"comparator", set("valueQuantity", map[string]any{"value": 72, "comparator": "<", "system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.comparator: not allowed"},
		{"no value", set("valueQuantity", map[string]any{"system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.value: missing"},
		{"valueString", func(o map[string]any) { delete(o, "valueQuantity"); o["valueString"] = "72" }, "valueQuantity: missing"},
		{"value out of range", set("valueQuantity", quantity("123456", "http://unitsofmeasure.org", "/min")), "valueQuantity.value: heart-rate value is outside the possible range [20, 300] /min"},
		{"negative value", set("valueQuantity", quantity("-1", "http://unitsofmeasure.org", "/min")), "valueQuantity.value: heart-rate value is outside the possible range"},
		{"infinite value", set("valueQuantity", quantity("1e400", "http://unitsofmeasure.org", "/min")), "valueQuantity.value: not a finite JSON number"},
		{"quoted value", set("valueQuantity", map[string]any{"value": "72", "system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.value: not a finite JSON number"},
		{"null value", set("valueQuantity", map[string]any{"value": nil, "system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.value: missing"},
		{"object value", set("valueQuantity", map[string]any{"value": map[string]any{}, "system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.value: not a finite JSON number"},
		{"no effectiveDateTime", del("effectiveDateTime"), "effectiveDateTime: missing"},
		{"effectivePeriod", func(o map[string]any) {
			delete(o, "effectiveDateTime")
			o["effectivePeriod"] = map[string]any{"start": "2025-03-14T09:05:00Z"}
		}, "effectiveDateTime: missing"},
		{"partial date", set("effectiveDateTime", "2025-03-14"), "effectiveDateTime: partial dates are not supported"},
		{"partial month", set("effectiveDateTime", "2025-03"), "effectiveDateTime: partial dates"},
		{"partial year", set("effectiveDateTime", "2025"), "effectiveDateTime: partial dates"},
		{"no offset", set("effectiveDateTime", "2025-03-14T09:05:00"), "effectiveDateTime: want an RFC 3339 date-time"},
		{"no seconds", set("effectiveDateTime", "2025-03-14T09:05Z"), "effectiveDateTime: want an RFC 3339 date-time"},
		{"lower-case t", set("effectiveDateTime", "2025-03-14t09:05:00Z"), "effectiveDateTime: want an RFC 3339 date-time"},
		{"no such day", set("effectiveDateTime", "2025-02-30T09:05:00Z"), "effectiveDateTime: not a valid date-time"},
		{"hour 24", set("effectiveDateTime", "2025-02-03T24:00:00Z"), "effectiveDateTime: not a valid date-time"},
		{"before 1970", set("effectiveDateTime", "1969-12-31T23:59:59Z"), "effectiveDateTime: before 1970"},
		{"preliminary", set("status", "preliminary"), "status: must be final, amended or corrected"},
		{"unknown status", set("status", "bogus"), "status: must be final"},
		{"no status", del("status"), "status: must be final"},
		{"no device", del("device"), "device: missing"},
		{"device by display", set("device", map[string]any{"display": "band"}), "device: missing"},
		{"device not a Device", set("device", map[string]any{"reference": "Patient/band-1"}), "device.reference: want Device/<registry ID>"},
		{"device bad ID", set("device", map[string]any{"reference": "Device/Band 1"}), "device.reference"},
		{"device absolute URL", set("device", map[string]any{"reference": "https://h.example/fhir/Device/band-1"}), "device.reference"},
		{"subject with space", set("subject", map[string]any{"reference": "Patient/a b"}), "subject.reference: must not contain spaces"},
		{"subject too long", set("subject", map[string]any{"reference": "Patient/" + strings.Repeat("x", 300)}), "subject.reference: must be 1 to 256 bytes"},
		{"empty subject", set("subject", map[string]any{"reference": ""}), "subject.reference: must be 1 to 256"},
		{"status not a string", set("status", 5), "status: wrong JSON type"},
		{"valueQuantity not an object", set("valueQuantity", "72 /min"), "valueQuantity: wrong JSON type"},
		{"unknown enum code", set("text", map[string]any{"status": "bogus", "div": "<div/>"}), "malformed resource: a field has the wrong JSON type or an unknown code"},
		{"unknown comparator", set("valueQuantity", map[string]any{"value": 72, "comparator": "~", "system": "http://unitsofmeasure.org", "code": "/min"}), "valueQuantity.comparator: not allowed"},
		{"nested wrong type", set("code", map[string]any{"coding": "8867-4"}), "code.coding: wrong JSON type"},
		{"other resource type", set("resourceType", "Patient"), "resourceType: want Observation or Bundle"},
		{"no resource type", del("resourceType"), "resourceType: want Observation or Bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.wantErr
			if !strings.HasPrefix(want, "resourceType") {
				want = "Observation: " + want
			}
			checkRefusal(t, observationJSON(t, tt.edit), want)
		})
	}
}

func checkRefusal(t *testing.T, data []byte, wantErr string) {
	t.Helper()
	imp, err := ImportFHIR(data)
	if err == nil {
		t.Fatalf("ImportFHIR accepted it: %+v", imp)
	}
	if imp != nil {
		t.Error("ImportFHIR returned a result with its error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "couldn't import FHIR resource: ") {
		t.Errorf("error %q lacks the package prefix", msg)
	}
	if !strings.Contains(msg, wantErr) {
		t.Errorf("ImportFHIR error = %q, want it to contain %q", msg, wantErr)
	}
	for _, secret := range []string{"p-secret-17", "123456", "Band 1", "bogus", "72 /min", "xxxxxxxx"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q echoes %q", msg, secret)
		}
	}
}

func TestImportJSONRefusals(t *testing.T) {
	valid := observationJSON(t, nil)
	deep := strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "not a JSON object"},
		{"array", []byte(`[` + string(valid) + `]`), "not a JSON object"},
		{"string", []byte(`"Observation"`), "not a JSON object"},
		{"truncated", valid[:len(valid)-1], "malformed JSON near byte"},
		{"trailing data", append(append([]byte(nil), valid...), `{}`...), "data after the resource"},
		{"two resources", append(append([]byte(nil), valid...), valid...), "data after the resource"},
		{"duplicate key", bytes.Replace(valid, []byte(`"status":"final"`), []byte(`"status":"final","status":"final"`), 1), "duplicate key"},
		{"duplicate key up to case", bytes.Replace(valid, []byte(`"status":"final"`), []byte(`"Status":"cancelled","status":"final"`), 1), "duplicate key"},
		{"duplicate nested key", bytes.Replace(valid, []byte(`"code":"/min"`), []byte(`"code":"/min","code":"Cel"`), 1), "duplicate key"},
		{"deep nesting", []byte(`{"resourceType":"Observation","x":` + deep + `}`), "nested more than 64 deep"},
		{"invalid UTF-8", bytes.Replace(valid, []byte("final"), []byte("fin\xffl"), 1), "not UTF-8"},
		{"oversize", append(bytes.Repeat([]byte{' '}, MaxFHIRSize), valid...), "larger than 8388608 bytes"},
		{"bare number", []byte(`72`), "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, tt.data, tt.wantErr)
		})
	}
}

// bundleMap decodes an exported Bundle for editing.
func bundleMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func entries(m map[string]any) []any { return m["entry"].([]any) }

func resource(m map[string]any, i int) map[string]any {
	e := entries(m)
	if i < 0 {
		i += len(e)
	}
	return e[i].(map[string]any)["resource"].(map[string]any)
}

// provenance returns the Provenance of an exported Bundle (its last entry).
func provenance(m map[string]any) map[string]any { return resource(m, -1) }

func signature(m map[string]any) map[string]any {
	return provenance(m)["signature"].([]any)[0].(map[string]any)
}

func TestImportBundleRefusals(t *testing.T) {
	b := testBatch(t, "heart-rate")
	exported, err := ExportFHIR(b, patient)
	if err != nil {
		t.Fatal(err)
	}
	hosp, _ := testKey(t, testHospital, 2)
	gw := b.Entry.Header
	gw.Attestation = AttestGateway
	gwEntry, err := SignEntry(&gw, hosp)
	if err != nil {
		t.Fatal(err)
	}
	other := b.Entry.Header
	other.DeviceID = "band-2"
	otherDev, _ := testKey(t, "band-2", 1)
	otherEntry, err := SignEntry(&other, otherDev)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	ref := func(s string) map[string]any { return map[string]any{"reference": s} }
	setObs := func(i int, k string, v any) func(map[string]any) {
		return func(m map[string]any) { resource(m, i)[k] = v }
	}
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string
	}{
		{"searchset", func(m map[string]any) { m["type"] = "searchset" }, "Bundle: type: must be collection, transaction or batch"},
		{"no type", func(m map[string]any) { delete(m, "type") }, "Bundle: type: must be"},
		{"entry without resource", func(m map[string]any) {
			delete(entries(m)[2].(map[string]any), "resource")
		}, "entry[2]: resource: missing"},
		{"Patient entry", func(m map[string]any) {
			entries(m)[1].(map[string]any)["resource"] = map[string]any{"resourceType": "Patient", "id": "p-secret-17"}
		}, "entry[1]: resourceType: want Observation or Provenance"},
		{"bad Observation", setObs(3, "status", "preliminary"), "entry[3] Observation: status: must be final"},
		{"two Provenances", func(m map[string]any) {
			m["entry"] = append(entries(m), entries(m)[len(entries(m))-1])
		}, "entry[61] Provenance: at most one Provenance per Bundle"},
		{"no signature", func(m map[string]any) { delete(provenance(m), "signature") }, "entry[60] Provenance: signature: missing"},
		{"wrong sigFormat", func(m map[string]any) { signature(m)["sigFormat"] = "application/jose" }, "signature[0].sigFormat: must be application/vnd.vitalproof.entry"},
		{"no data", func(m map[string]any) { delete(signature(m), "data") }, "signature[0].data: missing"},
		{"data not base64", func(m map[string]any) { signature(m)["data"] = "not base64!" }, "signature[0].data: not base64"},
		{"data not an entry", func(m map[string]any) { signature(m)["data"] = b64([]byte("hello\n\n— band-1 AAAA\n")) }, "signature[0].data: not a VitalProof entry"},
		{"data a non-canonical entry", func(m map[string]any) {
			signature(m)["data"] = b64(append(append([]byte(nil), b.Entry.Bytes...), '\n'))
		}, "signature[0].data: not a VitalProof entry"},
		{"gateway entry", func(m map[string]any) { signature(m)["data"] = b64(gwEntry) }, "signature[0].data: the entry's attestation must be device"},
		{"signature by another device", func(m map[string]any) { signature(m)["who"] = ref("Device/band-2") }, "signature[0].who: must reference the entry's device"},
		{"signature by a Patient", func(m map[string]any) { signature(m)["who"] = ref(patient) }, "signature[0].who"},
		{"no agent", func(m map[string]any) { delete(provenance(m), "agent") }, "agent: missing"},
		{"agent another device", func(m map[string]any) {
			provenance(m)["agent"] = []any{map[string]any{"who": ref("Device/band-2")}}
		}, "agent[0].who: must reference the entry's device"},
		{"salt missing", func(m map[string]any) { delete(provenance(m), "extension") }, "extension commitment-salt: missing"},
		{"salt under another URL", func(m map[string]any) {
			provenance(m)["extension"].([]any)[0].(map[string]any)["url"] = "https://example.org/salt"
		}, "extension commitment-salt: missing"},
		{"salt not base64Binary", func(m map[string]any) {
			x := provenance(m)["extension"].([]any)[0].(map[string]any)
			x["valueString"] = x["valueBase64Binary"]
			delete(x, "valueBase64Binary")
		}, "extension commitment-salt: valueBase64Binary missing"},
		{"salt not base64", func(m map[string]any) {
			provenance(m)["extension"].([]any)[0].(map[string]any)["valueBase64Binary"] = "%%%"
		}, "extension commitment-salt: not base64"},
		{"salt too short", func(m map[string]any) {
			provenance(m)["extension"].([]any)[0].(map[string]any)["valueBase64Binary"] = b64(b.Salt[:31])
		}, "extension commitment-salt: not a canonical salt"},
		{"salt not canonical", func(m map[string]any) {
			provenance(m)["extension"].([]any)[0].(map[string]any)["valueBase64Binary"] = b64(bytes.Repeat([]byte{0xff}, 32))
		}, "extension commitment-salt: not a canonical salt"},
		{"two salts", func(m map[string]any) {
			x := provenance(m)["extension"].([]any)
			provenance(m)["extension"] = append(x, x[0])
		}, "extension commitment-salt: more than one"},
		{"no target", func(m map[string]any) { delete(provenance(m), "target") }, "target: missing"},
		{"unknown target", func(m map[string]any) {
			provenance(m)["target"].([]any)[4] = ref("urn:uuid:00000000-0000-8000-8000-000000000000")
		}, "target[4]: does not reference an Observation of the Bundle"},
		{"target the Provenance", func(m map[string]any) {
			provenance(m)["target"].([]any)[4] = ref(entries(m)[60].(map[string]any)["fullUrl"].(string))
		}, "target[4]: does not reference an Observation"},
		{"target twice", func(m map[string]any) {
			t := provenance(m)["target"].([]any)
			t[5] = t[4]
		}, "target[5]: references an Observation twice"},
		{"target of another metric", func(m map[string]any) {
			resource(m, 7)["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8480-6"}}}
			resource(m, 7)["valueQuantity"].(map[string]any)["code"] = "mm[Hg]"
		},
			"entry[7] Observation: code: not the metric of the device's entry"},
		{"target of another device", setObs(8, "device", ref("Device/band-2")), "entry[8] Observation: device: not the device of the entry"},
		{"target before the window", setObs(0, "effectiveDateTime", "2025-03-14T08:59:59Z"), "entry[0] Observation: effectiveDateTime: outside the entry's window"},
		{"target at the window's end", setObs(59, "effectiveDateTime", "2025-03-14T10:00:00Z"), "entry[59] Observation: effectiveDateTime: outside"},
		{"target of another patient", setObs(9, "subject", ref("Patient/other")), "entry[9] Observation: subject: differs from the batch's other Observations"},
		{"target without patient", func(m map[string]any) { delete(resource(m, 9), "subject") }, "entry[9] Observation: subject: differs"},
		{"entry of another device", func(m map[string]any) { signature(m)["data"] = b64(otherEntry) }, "signature[0].who: must reference the entry's device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := bundleMap(t, exported)
			tt.edit(m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			checkRefusal(t, data, tt.wantErr)
		})
	}
}

func TestImportBundleMixed(t *testing.T) {
	b := testBatch(t, "spo2")
	exported, err := ExportFHIR(b, patient)
	if err != nil {
		t.Fatal(err)
	}
	m := bundleMap(t, exported)
	m["type"] = "transaction"
	// Observations the Provenance does not target are unattested; targets
	// may also be Observation/<id> references, in any order.
	extra := bundleMap(t, observationJSON(t, nil))
	extra["id"] = "hr-1"
	e := entries(m)
	e = append([]any{map[string]any{"resource": extra, "request": map[string]any{"method": "POST", "url": "Observation"}}}, e...)
	m["entry"] = e
	resource(m, 1)["id"] = "first"
	targets := provenance(m)["target"].([]any)
	targets[0] = map[string]any{"reference": "Observation/first"}
	targets[0], targets[1] = targets[1], targets[0]
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ImportFHIR(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Attested) != 1 || len(imp.Unattested) != 1 {
		t.Fatalf("%d attested, %d unattested", len(imp.Attested), len(imp.Unattested))
	}
	if err := imp.Attested[0].Batch.Validate(testNow); err != nil {
		t.Errorf("attested batch: %v", err)
	}
	if g := imp.Unattested[0]; g.Metric != "heart-rate" || len(g.Values) != 1 || g.PatientRef != patient {
		t.Errorf("unattested %+v", g)
	}
}

func TestImportGroupLimits(t *testing.T) {
	g := ObservationGroup{DeviceID: "band-1", Metric: "heart-rate", PatientRef: patient}
	for i := range MaxBatchReadings + 1 {
		g.Times = append(g.Times, testStart.Add(time.Duration(i)*time.Second))
		g.Values = append(g.Values, 60)
	}
	data, err := ExportObservations(g)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, data, fmt.Sprintf("entry[%d] Observation: more than %d Observations of one device and metric", MaxBatchReadings, MaxBatchReadings))

	// Unattested Observations arrive in any order and leave in time order.
	g.Times, g.Values = g.Times[:3], g.Values[:3]
	g.Values[0], g.Values[2] = 61, 63
	data, err = ExportObservations(g)
	if err != nil {
		t.Fatal(err)
	}
	m := bundleMap(t, data)
	e := entries(m)
	e[0], e[2] = e[2], e[0]
	data, _ = json.Marshal(m)
	imp, err := ImportFHIR(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(imp.Unattested, []ObservationGroup{g}) {
		t.Errorf("ImportFHIR = %+v, want %+v", imp.Unattested, g)
	}
	// One device and metric, two patients.
	resource(m, 1)["subject"] = map[string]any{"reference": "Patient/other"}
	data, _ = json.Marshal(m)
	checkRefusal(t, data, "entry[1] Observation: subject: differs from that of other Observations of the device and metric")
}

func TestExportRefusals(t *testing.T) {
	b := testBatch(t, "heart-rate")
	if _, err := ExportFHIR(b, "Patient/a b"); err == nil {
		t.Error("ExportFHIR accepted a patient reference with a space")
	}
	gw := *b
	hosp, _ := testKey(t, testHospital, 2)
	h := b.Entry.Header
	h.Attestation = AttestGateway
	raw, err := SignEntry(&h, hosp)
	if err != nil {
		t.Fatal(err)
	}
	gw.Entry, _ = ParseEntry(raw)
	if _, err := ExportFHIR(&gw, ""); err == nil {
		t.Error("ExportFHIR exported a gateway-attested batch")
	}
	late := *b
	late.Readings = append([]Reading(nil), b.Readings...)
	late.Readings[59].Offset = 3600
	if _, err := ExportFHIR(&late, ""); err == nil {
		t.Error("ExportFHIR exported a reading outside the window")
	}
	for name, g := range map[string]ObservationGroup{
		"unknown metric": {DeviceID: "band-1", Metric: "pulse", Times: []time.Time{testStart}, Values: []uint32{60}},
		"bad device":     {DeviceID: "Band", Metric: "heart-rate", Times: []time.Time{testStart}, Values: []uint32{60}},
		"lengths differ": {DeviceID: "band-1", Metric: "heart-rate", Times: []time.Time{testStart}},
		"out of range":   {DeviceID: "band-1", Metric: "heart-rate", Times: []time.Time{testStart}, Values: []uint32{5}},
		"bad patient":    {DeviceID: "band-1", Metric: "heart-rate", PatientRef: "a\nb", Times: []time.Time{testStart}, Values: []uint32{60}},
	} {
		if _, err := ExportObservations(g); err == nil {
			t.Errorf("%s: ExportObservations accepted it", name)
		}
	}
}

func FuzzImportFHIR(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "fhir", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus in testdata/fhir: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Provenance"}}]}`))
	f.Add([]byte(`{"resourceType":"Observation","status":"final","Status":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := ImportFHIR(data)
		if err != nil {
			return
		}
		for _, a := range imp.Attested {
			h := &a.Batch.Entry.Header
			if h.Attestation != AttestDevice || len(a.Batch.Readings) == 0 || len(a.Batch.Readings) > MaxBatchReadings {
				t.Fatalf("attested batch %+v", h)
			}
			if _, err := ParseEntry(a.Batch.Entry.Bytes); err != nil {
				t.Fatalf("attested entry does not parse: %v", err)
			}
			m, _ := MetricByCode(h.Metric)
			for i, r := range a.Batch.Readings {
				if int64(r.Offset) >= h.WindowEnd-h.WindowStart || (i > 0 && r.Offset < a.Batch.Readings[i-1].Offset) {
					t.Fatal("readings outside the window or out of order")
				}
				if m.CheckFixed(r.Value) != nil {
					t.Fatal("reading out of range")
				}
			}
			// Export and import again: the same batch.
			out, err := ExportFHIR(&a.Batch, a.PatientRef)
			if err != nil {
				t.Fatalf("ExportFHIR of an imported batch: %v", err)
			}
			again, err := ImportFHIR(out)
			if err != nil || len(again.Attested) != 1 || !reflect.DeepEqual(again.Attested[0].Batch.Readings, a.Batch.Readings) ||
				again.Attested[0].PatientRef != a.PatientRef || again.Attested[0].Batch.Salt != a.Batch.Salt {
				t.Fatalf("attested round trip: %v", err)
			}
		}
		for _, g := range imp.Unattested {
			if len(g.Times) == 0 || len(g.Times) != len(g.Values) || len(g.Times) > MaxBatchReadings {
				t.Fatalf("group %+v", g)
			}
			for i := range g.Times {
				if i > 0 && g.Times[i].Before(g.Times[i-1]) {
					t.Fatal("group out of time order")
				}
			}
		}
		if len(imp.Unattested) > 0 {
			out, err := ExportObservations(imp.Unattested...)
			if err != nil {
				t.Fatalf("ExportObservations of imported groups: %v", err)
			}
			again, err := ImportFHIR(out)
			if err != nil || !reflect.DeepEqual(again.Unattested, imp.Unattested) {
				t.Fatalf("unattested round trip: %v", err)
			}
		}
	})
}
