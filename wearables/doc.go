// Package wearables holds what a wearable reports and how: the metric
// catalogue ([Metric]), batches of fixed-point readings ([Batch]), the
// signed entry that commits to them ([EntryHeader], [SignEntry],
// [ParseEntry]; the format is documented on [EntryHeader]), device and
// hospital keys ([GenerateDeviceKey], [DeviceVerifier]), GS1 UDIs
// ([ParseUDI]), FHIR R4 import and export ([ImportFHIR], [ExportFHIR]) and
// a device simulator ([Simulator]). It does no I/O beyond parsing.
//
// # FHIR R4
//
// [ImportFHIR] accepts one JSON resource of at most [MaxFHIRSize] bytes:
// an Observation, or a Bundle of type collection, transaction or batch
// whose entries are Observations and at most one Provenance. Each
// Observation must have
//
//   - status final, amended or corrected;
//   - a code.coding with system http://loinc.org and the LOINC code of a
//     catalogue metric (blood pressure as separate systolic 8480-6 and
//     diastolic 8462-4 Observations, not as an 85354-9 panel);
//   - a valueQuantity with system http://unitsofmeasure.org, no comparator
//     and a UCUM code that the metric accepts: /min or {beats}/min for
//     heart rate, % for SpO2, Cel or [degF] for body temperature, mm[Hg]
//     for blood pressure, mg/dL or mmol/L (times 18.016) for glucose,
//     {steps} or 1 for steps; the value is converted to the metric's unit
//     and rounded to its fixed-point scale;
//   - an effectiveDateTime with date, time to the second and a UTC offset
//     (fractions of a second are truncated; partial dates are refused);
//   - a device reference Device/<registry ID>.
//
// The subject (patient) reference is optional; it is returned for the
// hospital's private store only. The JSON must be UTF-8 and hold no
// duplicate keys.
//
// A device attests a batch by sending it as a Bundle that holds one
// Provenance with:
//
//   - target: a reference to each of the batch's Observations (its
//     Bundle entry's fullUrl, or Observation/<id>);
//   - agent[0].who: Device/<device ID>;
//   - signature[0]: sigFormat [FHIREntrySigFormat]
//     ("application/vnd.vitalproof.entry"), who Device/<device ID>, and
//     data the base64 of the signed entry;
//   - an extension with url [FHIRSaltExtension]
//     ("https://vitalproof.dev/fhir/StructureDefinition/commitment-salt")
//     whose valueBase64Binary is the commitment's 32-byte salt.
//
// The targeted Observations become the batch's readings (offsets from the
// entry's window start, in time order) and must share the entry's device,
// metric and one subject. Observations of the Bundle that the Provenance
// does not target, and every Observation without one, are unattested: they
// are grouped by device and metric ([ObservationGroup]) for the gateway to
// commit and sign. [ExportFHIR] and [ExportObservations] write both forms.
//
// The FHIR model is github.com/samply/golang-fhir-models (see FHIR.md for
// why): its generated R4 structs are decoded with encoding/json, after a
// token pass that refuses duplicate keys and deep nesting; status,
// valueQuantity.comparator and Bundle.type are read as plain strings, as
// the generated enum decoders neither unescape JSON nor fail without
// echoing the input. Errors
// name the resource and field (e.g. "entry[3] Observation:
// valueQuantity.code: unsupported unit for heart-rate") and never a value,
// a salt or a patient reference.
package wearables
