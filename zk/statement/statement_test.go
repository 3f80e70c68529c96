package statement

import (
	"errors"
	"testing"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

const day0 = 1735689600 // 2025-01-01T00:00:00Z

// example returns a true statement over two hourly entries and its openings.
func example(t *testing.T, kinds Kind, p Params) (*Statement, []Opening) {
	t.Helper()
	s := &Statement{Kinds: kinds, Params: p, DeviceID: "dev-1", Metric: 6, PeriodStart: day0, PeriodEnd: day0 + 7*DayLength}
	var ops []Opening
	for i, b := range []struct {
		start  int64
		values []uint32
	}{{0, []uint32{100, 120, 190}}, {30 * 3600, []uint32{150, 60}}} {
		var salt [commitment.Size]byte
		salt[31] = byte(i + 1)
		o := &commitment.Opening{Salt: salt, DeviceID: s.DeviceID, Metric: s.Metric, WindowStart: day0 + b.start, WindowEnd: day0 + b.start + 3600}
		for k, v := range b.values {
			o.Readings = append(o.Readings, commitment.Reading{Offset: uint32(60 + 300*k), Value: v})
		}
		c, err := commitment.Commit(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Entries = append(s.Entries, Entry{Commitment: c, WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, Count: len(o.Readings)})
		ops = append(ops, Opening{Salt: salt, Readings: o.Readings})
	}
	return s, ops
}

const all = Range | TimeInRange | Adherence | MeanBelow | MaxBelow

// allParams holds for example: values 100 120 190 150 60 (3 of 5 in
// 70–180), two days, mean 124, max 190.
var allParams = Params{RangeLo: 60, RangeHi: 190, TIRLo: 70, TIRHi: 180, TIRPercent: 60, MinDays: 2, MeanBound: 125, MaxBound: 191}

func TestHolds(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params func(p *Params)
		open   func(ops []Opening)
		want   error // nil, ErrFalse, or any error (errOpen stands for "not ErrFalse")
	}{
		{name: "holds"},
		{name: "value below range", params: func(p *Params) { p.RangeLo = 61 }, want: ErrFalse},
		{name: "value above range", params: func(p *Params) { p.RangeHi = 189 }, want: ErrFalse},
		{name: "time in range short", params: func(p *Params) { p.TIRPercent = 61 }, want: ErrFalse},
		{name: "one day too few", params: func(p *Params) { p.MinDays = 3 }, want: ErrFalse},
		{name: "mean equal to bound", params: func(p *Params) { p.MeanBound = 124 }, want: ErrFalse},
		{name: "max equal to bound", params: func(p *Params) { p.MaxBound = 190 }, want: ErrFalse},
		{name: "salt does not open", open: func(ops []Opening) { ops[1].Salt[31] = 9 }, want: errOpen},
		{name: "reading does not open", open: func(ops []Opening) { ops[0].Readings[1].Value = 121 }, want: errOpen},
		{name: "readings out of order", open: func(ops []Opening) {
			ops[0].Readings[0], ops[0].Readings[1] = ops[0].Readings[1], ops[0].Readings[0]
		}, want: errOpen},
		{name: "reading outside window", open: func(ops []Opening) { ops[0].Readings[2].Offset = 3600 }, want: errOpen},
		{name: "count mismatch", open: func(ops []Opening) { ops[0].Readings = ops[0].Readings[:2] }, want: errOpen},
		{name: "missing opening", open: func(ops []Opening) {}, want: errOpen},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := allParams
			if tt.params != nil {
				tt.params(&p)
			}
			s, ops := example(t, all, p)
			if tt.open != nil {
				tt.open(ops)
			}
			if tt.name == "missing opening" {
				ops = ops[:1]
			}
			err := s.Holds(ops)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.want == ErrFalse && !errors.Is(err, ErrFalse):
				t.Fatalf("got %v, want ErrFalse", err)
			case tt.want == errOpen && (err == nil || errors.Is(err, ErrFalse)):
				t.Fatalf("got %v, want an opening error", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name  string
		kinds Kind
		edit  func(s *Statement)
	}{
		{name: "no part", kinds: 0},
		{name: "unknown part", kinds: 1 << 6},
		{name: "unused parameter", kinds: Range, edit: func(s *Statement) { s.Params.MinDays = 1 }},
		{name: "range inverted", kinds: all, edit: func(s *Statement) { s.Params.RangeLo = 191 }},
		{name: "range past 20 bits", kinds: all, edit: func(s *Statement) { s.Params.RangeHi = 1 << 20 }},
		{name: "percent past 100", kinds: all, edit: func(s *Statement) { s.Params.TIRPercent = 101 }},
		{name: "zero mean bound", kinds: all, edit: func(s *Statement) { s.Params.MeanBound = 0 }},
		{name: "max bound past 2^20", kinds: all, edit: func(s *Statement) { s.Params.MaxBound = 1<<20 + 1 }},
		{name: "min days past 2047", kinds: all, edit: func(s *Statement) { s.Params.MinDays = 2048 }},
		{name: "adherence period too long", kinds: all, edit: func(s *Statement) { s.PeriodEnd = s.PeriodStart + 2048*DayLength }},
		{name: "empty period", kinds: all, edit: func(s *Statement) { s.PeriodEnd = s.PeriodStart }},
		{name: "negative period", kinds: all, edit: func(s *Statement) { s.PeriodStart = -1 }},
		{name: "period past 2^33 s", kinds: Range, edit: func(s *Statement) { s.PeriodEnd = s.PeriodStart + MaxPeriod + 1 }},
		{name: "no entry", kinds: all, edit: func(s *Statement) { s.Entries = nil }},
		{name: "empty entry", kinds: all, edit: func(s *Statement) { s.Entries[0].Count = 0 }},
		{name: "count past 14 bits", kinds: all, edit: func(s *Statement) { s.Entries[0].Count = MaxCount + 1 }},
		{name: "window too long", kinds: all, edit: func(s *Statement) { s.Entries[0].WindowEnd = s.Entries[0].WindowStart + 1<<22 + 1 }},
		{name: "entries out of order", kinds: all, edit: func(s *Statement) { s.Entries[0], s.Entries[1] = s.Entries[1], s.Entries[0] }},
		{name: "entry before period", kinds: all, edit: func(s *Statement) { s.PeriodStart += 1 }},
		{name: "entry after period", kinds: all, edit: func(s *Statement) { s.PeriodEnd = s.Entries[1].WindowEnd - 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := allParams
			if tt.kinds != all {
				p = Params{RangeLo: 60, RangeHi: 190}
			}
			s, _ := example(t, all, p)
			s.Kinds = tt.kinds
			if tt.edit != nil {
				tt.edit(s)
			}
			if err := s.Check(); err == nil {
				t.Fatal("no error")
			}
			if _, err := s.PublicInputs(); err == nil {
				t.Fatal("PublicInputs: no error")
			}
		})
	}
	s, _ := example(t, all, allParams)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// Windows may touch: an entry may start where the previous one ends.
	s.Entries[1].WindowStart = s.Entries[0].WindowEnd
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestDigestVector pins the digest of a fixed statement: a change to the
// digest's definition must be a deliberate format change.
func TestDigestVector(t *testing.T) {
	s := &Statement{Kinds: Range, Params: Params{RangeLo: 1, RangeHi: 2}, DeviceID: "dev-1", Metric: 6,
		PeriodStart: day0, PeriodEnd: day0 + DayLength,
		Entries: []Entry{
			{Commitment: [32]byte{31: 1}, WindowStart: day0, WindowEnd: day0 + 3600, Count: 60},
			{Commitment: [32]byte{0: 0x30, 31: 2}, WindowStart: day0 + 3600, WindowEnd: day0 + 7200, Count: 1},
		}}
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	const want = "298b656b83b9b078d5620d0f93a160d24eb4c604fe0a887a324eefbe73c82c32"
	if got := d.Text(16); got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}
	// Every entry field and the order of entries are bound.
	for name, edit := range map[string]func(s *Statement){
		"commitment": func(s *Statement) { s.Entries[1].Commitment[0] = 0x20 },
		"start":      func(s *Statement) { s.Entries[1].WindowStart++ },
		"end":        func(s *Statement) { s.Entries[1].WindowEnd++ },
		"count":      func(s *Statement) { s.Entries[0].Count++ },
		"device":     func(s *Statement) { s.DeviceID = "dev-2" },
		"metric":     func(s *Statement) { s.Metric = 7 },
		"entries":    func(s *Statement) { s.Entries = s.Entries[:1] },
	} {
		c := *s
		c.Entries = append([]Entry(nil), s.Entries...)
		edit(&c)
		d2, err := c.Digest()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d2 == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	// An odd number of entries completes the last pair with zeros.
	s.Entries = append(s.Entries, Entry{Commitment: [32]byte{31: 3}, WindowStart: day0 + 7200, WindowEnd: day0 + 7201, Count: MaxCount})
	d, err = s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	const wantOdd = "1fdc8f2888098d3a85119f9ff93ebdc6473d1dcf528518dfe40abc488d36be7b"
	if got := d.Text(16); got != wantOdd {
		t.Errorf("digest of three entries = %s, want %s", got, wantOdd)
	}
	// Commitments must be canonical field elements.
	s.Entries[0].Commitment = [32]byte{0: 0xff}
	if _, err := s.Digest(); err == nil {
		t.Error("non-canonical commitment: no error")
	}
}

func TestKindString(t *testing.T) {
	for _, k := range []Kind{Range, TimeInRange, Adherence, MeanBelow, MaxBelow, Range | TimeInRange, all} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, s := range []string{"", "none", "range+", "+range", "range+range", "tir+range", "RANGE", "range tir"} {
		if k, err := ParseKind(s); err == nil && k.String() != s {
			t.Errorf("ParseKind(%q) = %v, accepted a non-canonical form", s, k)
		}
	}
}

func FuzzParseKind(f *testing.F) {
	for _, s := range []string{"range", "range+tir", "tir+adherence+mean+max", "range+range", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKind(s)
		if err != nil {
			return
		}
		if k == 0 || k&^allKinds != 0 {
			t.Fatalf("ParseKind(%q) = %d", s, k)
		}
		if k2, err := ParseKind(k.String()); err != nil || k2 != k {
			t.Fatalf("round trip of %q: %v, %v", s, k2, err)
		}
	})
}
