package wearables

import (
	"strings"
	"testing"
	"time"
)

func TestBatchValidate(t *testing.T) {
	for _, m := range Metrics() {
		t.Run(m.Code, func(t *testing.T) {
			b := testBatch(t, m.Code)
			if err := b.Validate(testNow); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := b.Opening(); got.Metric != m.ID || got.DeviceID != testDevice || got.WindowStart != testStart.Unix() {
				t.Errorf("Opening = %+v", got)
			}
		})
	}
}

// resign rebuilds b's entry around new readings, so that only the property
// under test is wrong.
func resign(t *testing.T, b *Batch, edit func(h *EntryHeader)) {
	t.Helper()
	h := b.Entry.Header
	edit(&h)
	dev, _ := testKey(t, h.DeviceID, 1)
	raw, err := SignEntry(&h, dev)
	if err != nil {
		t.Fatal(err)
	}
	if b.Entry, err = ParseEntry(raw); err != nil {
		t.Fatal(err)
	}
}

func TestBatchValidateRefusals(t *testing.T) {
	window := uint32(time.Hour / time.Second)
	tests := []struct {
		name    string
		edit    func(t *testing.T, b *Batch)
		now     time.Time
		wantErr string
	}{
		{"unknown metric", func(t *testing.T, b *Batch) { b.Entry.Header.Metric = "pulse" }, testNow, "metric: unknown"},
		{"empty", func(t *testing.T, b *Batch) { b.Readings = nil }, testNow, "readings: batch is empty"},
		{"too many", func(t *testing.T, b *Batch) {
			b.Readings = make([]Reading, MaxBatchReadings+1)
		}, testNow, "more than 4096"},
		{"count mismatch", func(t *testing.T, b *Batch) { b.Readings = b.Readings[1:] }, testNow, "59 readings but the entry counts 60"},
		{"offset at window end", func(t *testing.T, b *Batch) { b.Readings[59].Offset = window }, testNow, "readings[59]: time is outside"},
		{"offset beyond window", func(t *testing.T, b *Batch) { b.Readings[59].Offset = 1 << 30 }, testNow, "readings[59]: time is outside"},
		{"equal times", func(t *testing.T, b *Batch) { b.Readings[5].Offset = b.Readings[4].Offset }, testNow, "readings[5]: times must be strictly increasing"},
		{"decreasing times", func(t *testing.T, b *Batch) {
			b.Readings[4], b.Readings[5] = b.Readings[5], b.Readings[4]
		}, testNow, "readings[5]: times must be strictly increasing"},
		{"future", func(t *testing.T, b *Batch) {}, testStart.Add(10*time.Minute + 30*time.Second), "readings[11]: time is in the future"},
		{"value below range", func(t *testing.T, b *Batch) { b.Readings[2].Value = 19 }, testNow, "readings[2]: heart-rate value is outside the possible range"},
		{"value above range", func(t *testing.T, b *Batch) { b.Readings[3].Value = 301 }, testNow, "readings[3]: heart-rate value is outside"},
		{"changed value", func(t *testing.T, b *Batch) { b.Readings[0].Value++ }, testNow, "do not open the entry's commitment"},
		{"changed time", func(t *testing.T, b *Batch) { b.Readings[59].Offset++ }, testNow, "do not open"},
		{"dropped reading, recounted", func(t *testing.T, b *Batch) {
			b.Readings = b.Readings[:59]
			resign(t, b, func(h *EntryHeader) { h.Count = 59 })
		}, testNow, "do not open"},
		{"other salt", func(t *testing.T, b *Batch) { b.Salt[31] ^= 1 }, testNow, "do not open"},
		{"non-canonical salt", func(t *testing.T, b *Batch) {
			for i := range b.Salt {
				b.Salt[i] = 0xff
			}
		}, testNow, "commitment: couldn't commit: salt is not a canonical field element"},
		{"other device", func(t *testing.T, b *Batch) {
			resign(t, b, func(h *EntryHeader) { h.DeviceID = "band-2" })
		}, testNow, "do not open"},
		{"other window", func(t *testing.T, b *Batch) {
			resign(t, b, func(h *EntryHeader) { h.WindowStart++; h.WindowEnd++ })
		}, testNow, "do not open"},
		{"other metric of same range", func(t *testing.T, b *Batch) {
			resign(t, b, func(h *EntryHeader) { h.Metric = "systolic-bp" })
		}, testNow, "do not open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch(t, "heart-rate")
			tt.edit(t, b)
			err := b.Validate(tt.now)
			if err == nil {
				t.Fatal("Validate accepted the batch")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestBatchValidateEdges(t *testing.T) {
	b := testBatch(t, "heart-rate")
	last := testStart.Add(59 * time.Minute)
	if err := b.Validate(last); err != nil {
		t.Errorf("a reading taken exactly now was refused: %v", err)
	}
	if err := b.Validate(last.Add(-time.Second)); err == nil {
		t.Error("a reading a second in the future was accepted")
	}
}
