package wearables

import (
	"fmt"
	"math"
	"sort"
)

// A Metric is a kind of reading a wearable reports.
//
// Values travel and are committed as fixed-point integers: a reading of v
// in Unit is encoded as round(v * 10^Scale). Min and Max bound what is
// physically possible, in Unit; the gateway refuses readings outside them.
type Metric struct {
	// ID is the metric's stable numeric identifier, bound by the commitment.
	ID uint16
	// Code is the metric's name in entries and APIs, e.g. "heart-rate".
	Code string
	// Display is a human-readable name.
	Display string
	// LOINC is the LOINC code FHIR Observations carry for this metric.
	LOINC string
	// Unit is the UCUM unit that values are expressed in.
	Unit string
	// Scale is the number of decimal digits kept by the fixed-point encoding.
	Scale int
	// Min and Max are the physically possible range, in Unit.
	Min, Max float64
}

// The metric catalogue. IDs and codes are part of the entry format and never change.
var catalogue = []Metric{
	{ID: 1, Code: "heart-rate", Display: "Heart rate", LOINC: "8867-4", Unit: "/min", Scale: 0, Min: 20, Max: 300},
	{ID: 2, Code: "spo2", Display: "Oxygen saturation (pulse oximetry)", LOINC: "59408-5", Unit: "%", Scale: 1, Min: 50, Max: 100},
	{ID: 3, Code: "body-temperature", Display: "Body temperature", LOINC: "8310-5", Unit: "Cel", Scale: 2, Min: 25, Max: 45},
	{ID: 4, Code: "systolic-bp", Display: "Systolic blood pressure", LOINC: "8480-6", Unit: "mm[Hg]", Scale: 0, Min: 40, Max: 300},
	{ID: 5, Code: "diastolic-bp", Display: "Diastolic blood pressure", LOINC: "8462-4", Unit: "mm[Hg]", Scale: 0, Min: 20, Max: 200},
	{ID: 6, Code: "glucose", Display: "Glucose in blood", LOINC: "2339-0", Unit: "mg/dL", Scale: 0, Min: 10, Max: 1000},
	{ID: 7, Code: "steps", Display: "Steps", LOINC: "55423-8", Unit: "{steps}", Scale: 0, Min: 0, Max: 100000},
}

// Metrics returns the catalogue, ordered by ID.
func Metrics() []Metric {
	out := append([]Metric(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MetricByCode returns the metric named code.
func MetricByCode(code string) (Metric, bool) {
	for _, m := range catalogue {
		if m.Code == code {
			return m, true
		}
	}
	return Metric{}, false
}

// MetricByID returns the metric with numeric identifier id.
func MetricByID(id uint16) (Metric, bool) {
	for _, m := range catalogue {
		if m.ID == id {
			return m, true
		}
	}
	return Metric{}, false
}

// MetricByLOINC returns the metric that LOINC code identifies.
func MetricByLOINC(code string) (Metric, bool) {
	for _, m := range catalogue {
		if m.LOINC == code {
			return m, true
		}
	}
	return Metric{}, false
}

// Encode returns the fixed-point encoding of v (in m.Unit), after checking
// that v lies in the metric's physically possible range.
func (m Metric) Encode(v float64) (uint32, error) {
	if math.IsNaN(v) || v < m.Min || v > m.Max {
		return 0, fmt.Errorf("%s value is outside the possible range [%g, %g] %s", m.Code, m.Min, m.Max, m.Unit)
	}
	return uint32(math.Round(v * math.Pow10(m.Scale))), nil
}

// Decode returns the value, in m.Unit, of the fixed-point encoding x.
func (m Metric) Decode(x uint32) float64 {
	return float64(x) / math.Pow10(m.Scale)
}

// CheckFixed reports whether the fixed-point value x lies in the metric's
// physically possible range.
func (m Metric) CheckFixed(x uint32) error {
	v := m.Decode(x)
	if v < m.Min || v > m.Max {
		return fmt.Errorf("%s value is outside the possible range [%g, %g] %s", m.Code, m.Min, m.Max, m.Unit)
	}
	return nil
}
