package wearables

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func allMetricCodes() []string {
	var codes []string
	for _, m := range Metrics() {
		codes = append(codes, m.Code)
	}
	return codes
}

func TestSimulatorDay(t *testing.T) {
	metrics := allMetricCodes()
	batches, err := testSim(t, 1).Day(testStart, metrics, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 24*len(metrics) {
		t.Fatalf("%d batches, want %d", len(batches), 24*len(metrics))
	}
	_, v := testKey(t, testDevice, 1)
	ranges := map[string][2]float64{
		"heart-rate": {55, 110}, "spo2": {94, 99.9}, "body-temperature": {36.1, 37.8},
		"systolic-bp": {105, 140}, "diastolic-bp": {65, 90}, "glucose": {70, 200}, "steps": {0, 150},
	}
	heads := map[string]*Entry{}
	for i, b := range batches {
		h := &b.Entry.Header
		// Submission order: by window, then metrics in the order given.
		if want := metrics[i%len(metrics)]; h.Metric != want {
			t.Fatalf("batch %d is %s, want %s", i, h.Metric, want)
		}
		if want := testStart.Add(time.Duration(i/len(metrics)) * time.Hour).Unix(); h.WindowStart != want || h.WindowEnd != want+3600 {
			t.Fatalf("batch %d window [%d, %d), want [%d, %d)", i, h.WindowStart, h.WindowEnd, want, want+3600)
		}
		if h.DeviceID != testDevice || h.Hospital != testHospital || h.Attestation != AttestDevice || h.Count != 60 {
			t.Fatalf("batch %d header %+v", i, h)
		}
		if _, err := VerifyEntry(b.Entry.Bytes, v); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if err := b.Validate(testNow); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		// Each metric's chain: seq from 1, prev the previous leaf hash.
		prev, ok := heads[h.Metric]
		switch {
		case !ok && (h.Seq != 1 || h.Prev != [32]byte{}):
			t.Fatalf("batch %d: first of chain has seq %d", i, h.Seq)
		case ok && (h.Seq != prev.Header.Seq+1 || h.Prev != prev.LeafHash()):
			t.Fatalf("batch %d: seq %d does not follow %d, or prev is wrong", i, h.Seq, prev.Header.Seq)
		}
		heads[h.Metric] = b.Entry
		m, _ := MetricByCode(h.Metric)
		r := ranges[h.Metric]
		for j, rd := range b.Readings {
			if rd.Offset != uint32(60*j) {
				t.Fatalf("batch %d reading %d at offset %d", i, j, rd.Offset)
			}
			if v := m.Decode(rd.Value); v < r[0] || v > r[1] {
				t.Fatalf("batch %d: %s reading %d is %g, outside [%g, %g]", i, h.Metric, j, v, r[0], r[1])
			}
		}
	}
	// Plausible shapes: glucose rises after lunch, nobody walks at 3am, and
	// salts are fresh.
	mean := func(metric string, hour int) float64 {
		b := batches[hour*len(metrics)+indexOf(metrics, metric)]
		m, _ := MetricByCode(metric)
		var sum float64
		for _, r := range b.Readings {
			sum += m.Decode(r.Value)
		}
		return sum / float64(len(b.Readings))
	}
	// testStart is 09:00 UTC: hour 5 of the day is 14:00, hour 18 is 03:00.
	if lunch, night := mean("glucose", 5), mean("glucose", 18); lunch < night+30 {
		t.Errorf("glucose at 14:00 averages %g, at 03:00 %g: no meal curve", lunch, night)
	}
	if steps := mean("steps", 18); steps != 0 {
		t.Errorf("%g steps a minute at 03:00", steps)
	}
	if steps := mean("steps", 2); steps == 0 {
		t.Error("no steps at 11:00")
	}
	salts := map[[32]byte]bool{}
	for _, b := range batches {
		if salts[b.Salt] {
			t.Fatal("a salt was reused")
		}
		salts[b.Salt] = true
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestSimulatorDeterministic(t *testing.T) {
	run := func(seed uint64) [][]byte {
		bs, err := testSim(t, seed).Span(testStart, 3*time.Hour, []string{"heart-rate", "glucose"}, time.Hour, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, b := range bs {
			out = append(out, b.Entry.Bytes, b.Salt[:])
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("same seed, different output at %d", i)
		}
	}
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same != 0 {
		t.Errorf("different seeds gave %d identical entries or salts", same)
	}
	// Without a reader the simulator uses crypto/rand.
	dev, _ := testKey(t, testDevice, 1)
	sim, err := NewSimulator(testDevice, testHospital, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Batch("spo2", testStart, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestSimulatorSkip(t *testing.T) {
	full, err := testSim(t, 1).Span(testStart, 3*time.Hour, []string{"heart-rate"}, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sim := testSim(t, 1)
	// Off the wrist from 09:30 to 10:15, and the whole of 11:00 to 12:00.
	sim.Skip = func(metric string, at time.Time) bool {
		off := at.Sub(testStart)
		return off >= 30*time.Minute && off < 75*time.Minute || off >= 2*time.Hour
	}
	gappy, err := sim.Span(testStart, 3*time.Hour, []string{"heart-rate"}, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(gappy) != 2 {
		t.Fatalf("%d batches, want 2 (the third window was all skipped)", len(gappy))
	}
	if gappy[0].Entry.Header.Count != 30 || gappy[1].Entry.Header.Count != 45 {
		t.Fatalf("counts %d and %d, want 30 and 45", gappy[0].Entry.Header.Count, gappy[1].Entry.Header.Count)
	}
	// Kept readings have the values of the full run; skipped ones are gone.
	for i, b := range gappy {
		if err := b.Validate(testNow); err != nil {
			t.Fatal(err)
		}
		byOffset := map[uint32]uint32{}
		for _, r := range full[i].Readings {
			byOffset[r.Offset] = r.Value
		}
		for _, r := range b.Readings {
			at := testStart.Add(time.Duration(i)*time.Hour + time.Duration(r.Offset)*time.Second)
			if sim.Skip("heart-rate", at) {
				t.Fatalf("batch %d holds a skipped reading", i)
			}
			if v, ok := byOffset[r.Offset]; !ok || v != r.Value {
				t.Fatalf("batch %d offset %d: value differs from the run without gaps", i, r.Offset)
			}
		}
	}
	// The chain has no hole: a skipped window sends no entry at all.
	if seq, prev := sim.Head("heart-rate"); seq != 2 || prev != gappy[1].Entry.LeafHash() {
		t.Errorf("Head = %d, want 2 and the second entry's leaf hash", seq)
	}
	_, err = sim.Batch("heart-rate", testStart.Add(2*time.Hour), time.Hour, time.Minute)
	if !errors.Is(err, ErrEmptyBatch) {
		t.Errorf("Batch of a skipped window: %v, want ErrEmptyBatch", err)
	}
	if seq, _ := sim.Head("heart-rate"); seq != 2 {
		t.Errorf("an empty batch advanced the chain to %d", seq)
	}
}

func TestSimulatorSetHead(t *testing.T) {
	sim := testSim(t, 1)
	sim.SetHead("spo2", 41, [32]byte{4, 1})
	b, err := sim.Batch("spo2", testStart, time.Hour, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h := b.Entry.Header; h.Seq != 42 || h.Prev != [32]byte{4, 1} || h.Count != 6 {
		t.Errorf("header seq %d prev %x count %d", h.Seq, h.Prev[:2], h.Count)
	}
	if seq, prev := sim.Head("spo2"); seq != 42 || prev != b.Entry.LeafHash() {
		t.Errorf("Head = %d, %x", seq, prev[:4])
	}
	if seq, _ := sim.Head("glucose"); seq != 0 {
		t.Errorf("untouched chain at %d", seq)
	}
}

func TestSimulatorFirmware(t *testing.T) {
	metrics := []string{"heart-rate", "glucose"}
	v1, err := testSim(t, 1).Span(testStart, 3*time.Hour, metrics, time.Hour, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sim := testSim(t, 1)
	if err := sim.SetFirmware("1.4.2"); err != nil {
		t.Fatal(err)
	}
	v2, err := sim.Span(testStart, 3*time.Hour, metrics, time.Hour, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(v1) != 6 || len(v2) != len(v1) {
		t.Fatalf("%d v1 and %d v2 batches, want 6 of each", len(v1), len(v2))
	}
	_, v := testKey(t, testDevice, 1)
	heads := map[string][32]byte{}
	for i := range v1 {
		e1, e2 := v1[i].Entry, v2[i].Entry
		if !bytes.HasPrefix(e1.Bytes, []byte("vitalproof/entry/v1\n")) || e1.Header.Firmware != "" {
			t.Fatalf("default batch %d is not a v1 entry: %q", i, e1.Header.Firmware)
		}
		if !bytes.HasPrefix(e2.Bytes, []byte("vitalproof/entry/v2\n")) || e2.Header.Firmware != "1.4.2" {
			t.Fatalf("batch %d with firmware set: firmware %q in %.20q", i, e2.Header.Firmware, e2.Bytes)
		}
		if _, err := VerifyEntry(e2.Bytes, v); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if err := v2[i].Validate(testNow); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		// The firmware changes neither the readings nor the commitment;
		// prev differs from seq 2 on, as it hashes the previous v2 entry.
		if v1[i].Salt != v2[i].Salt || !slices.Equal(v1[i].Readings, v2[i].Readings) {
			t.Fatalf("batch %d: the firmware changed the salt or the readings", i)
		}
		h := e2.Header
		h.Firmware, h.Prev = "", e1.Header.Prev
		if h != e1.Header {
			t.Fatalf("batch %d: v2 header %+v, want the v1 header %+v with firmware", i, e2.Header, e1.Header)
		}
		if e2.Header.Prev != heads[h.Metric] {
			t.Fatalf("batch %d: prev is not the chain's previous v2 leaf hash", i)
		}
		heads[h.Metric] = e2.LeafHash()
	}
}

func TestSimulatorFirmwareChange(t *testing.T) {
	sim := testSim(t, 1)
	var batches []*Batch
	for i, fw := range []string{"", "1.4.2", "1.5.0 rc1", ""} {
		if err := sim.SetFirmware(fw); err != nil {
			t.Fatal(err)
		}
		b, err := sim.Batch("spo2", testStart.Add(time.Duration(i)*time.Hour), time.Hour, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Entry.Header.Firmware; got != fw {
			t.Errorf("batch %d: firmware %q, want %q", i, got, fw)
		}
		batches = append(batches, b)
	}
	// One chain across the changes of format.
	for i, b := range batches {
		h := b.Entry.Header
		if h.Seq != uint64(i+1) || i > 0 && h.Prev != batches[i-1].Entry.LeafHash() {
			t.Errorf("batch %d: seq %d, or prev is not the previous leaf hash", i, h.Seq)
		}
	}
	for _, bad := range []string{" 1.4.2", "1.4.2 ", "1.4\t2", "1.4.2-é", strings.Repeat("1", MaxFirmwareLen+1)} {
		if err := sim.SetFirmware("2.0"); err != nil {
			t.Fatal(err)
		}
		if err := sim.SetFirmware(bad); err == nil {
			t.Errorf("SetFirmware(%q) accepted it", bad)
		}
		b, err := sim.Batch("steps", testStart, time.Hour, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if b.Entry.Header.Firmware != "2.0" {
			t.Errorf("after SetFirmware(%q) failed, the firmware is %q, want the previous 2.0", bad, b.Entry.Header.Firmware)
		}
	}
}

func TestSimulatorObservations(t *testing.T) {
	g, err := testSim(t, 1).Observations("body-temperature", testStart, time.Hour, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if g.DeviceID != testDevice || g.Metric != "body-temperature" || len(g.Times) != 4 || len(g.Values) != 4 {
		t.Fatalf("group %+v", g)
	}
	for i, at := range g.Times {
		if !at.Equal(testStart.Add(time.Duration(i) * 15 * time.Minute)) {
			t.Errorf("time %d = %v", i, at)
		}
	}
}

func TestSimulatorRefusals(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	hosp, _ := testKey(t, testHospital, 2)
	if _, err := NewSimulator(testDevice, testHospital, hosp, nil); err == nil {
		t.Error("NewSimulator accepted a signer named after another ID")
	}
	if _, err := NewSimulator("Band", testHospital, dev, nil); err == nil {
		t.Error("NewSimulator accepted an invalid device ID")
	}
	if _, err := NewSimulator(testDevice, "", dev, nil); err == nil {
		t.Error("NewSimulator accepted an empty hospital ID")
	}
	sim := testSim(t, 1)
	for _, tt := range []struct {
		name             string
		metric           string
		start            time.Time
		window, interval time.Duration
	}{
		{"unknown metric", "pulse", testStart, time.Hour, time.Minute},
		{"zero interval", "spo2", testStart, time.Hour, 0},
		{"sub-second interval", "spo2", testStart, time.Hour, 1500 * time.Millisecond},
		{"zero window", "spo2", testStart, 0, time.Minute},
		{"window too long", "spo2", testStart, (1<<22 + 1) * time.Second, time.Hour},
		{"too many readings", "spo2", testStart, 2 * time.Hour, time.Second},
		{"before 1970", "spo2", time.Unix(-3600, 0), time.Hour, time.Minute},
	} {
		if _, err := sim.Batch(tt.metric, tt.start, tt.window, tt.interval); err == nil {
			t.Errorf("%s: Batch accepted it", tt.name)
		}
	}
	if seq, _ := sim.Head("spo2"); seq != 0 {
		t.Errorf("refused batches advanced the chain to %d", seq)
	}
	if _, err := sim.Span(testStart, 90*time.Minute, []string{"spo2"}, time.Hour, time.Minute); err == nil {
		t.Error("Span accepted a span that is not a whole number of windows")
	}
}

func BenchmarkSimulatorBatch(b *testing.B) {
	sim := testSim(b, 1)
	start := testStart
	for b.Loop() {
		if _, err := sim.Batch("heart-rate", start, time.Hour, time.Minute); err != nil {
			b.Fatal(err)
		}
		start = start.Add(time.Hour)
	}
}
