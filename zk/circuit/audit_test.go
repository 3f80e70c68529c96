package circuit

import (
	"errors"
	"testing"

	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// small is the test shape: 3 entries of up to 12 readings.
var small = Shape{Entries: 3, PerEntry: 12}

const all = statement.Range | statement.TimeInRange | statement.Adherence | statement.MeanBelow | statement.MaxBelow

// allStatement gives setValue the kinds and parameters of the all-parts
// tests.
var allStatement = &statement.Statement{Kinds: all, Params: allParams}

// allParams: glucose in 40–400, ≥ 60% in 70–180, readings on ≥ 2 days,
// mean below 150, every reading below 250.
var allParams = statement.Params{RangeLo: 40, RangeHi: 400, TIRLo: 70, TIRHi: 180, TIRPercent: 60, MinDays: 2, MeanBound: 150, MaxBound: 250}

// baseBatches: 8 readings over two days, 5 of them (62.5%) in 70–180, mean
// 1019/8 = 127.4, maximum 200; the second entry (hour 30 = day 2) is
// partly padded, and the shape's third entry is padding.
func baseBatches() []batch {
	return []batch{hourly(0, 100, 120, 190, 110, 150, 60), hourly(30, 200, 89)}
}

// mustAssign builds the assignment of s without checking that the
// statement holds.
func mustAssign(t *testing.T, s *statement.Statement, ops []statement.Opening) *Circuit {
	t.Helper()
	a, err := assign(small, s, ops, publicInputs(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestStatements checks the circuit with every part against valid and
// invalid witnesses: false statements, openings that do not open,
// readings out of order or outside their windows, and padding abuse.
func TestStatements(t *testing.T) {
	base := func() (*statement.Statement, []statement.Opening) {
		return fixture(t, all, allParams, baseBatches()...)
	}
	withParams := func(f func(p *statement.Params)) func() (*statement.Statement, []statement.Opening) {
		return func() (*statement.Statement, []statement.Opening) {
			p := allParams
			f(&p)
			return fixture(t, all, p, baseBatches()...)
		}
	}
	withBatches := func(f func(b []batch)) func() (*statement.Statement, []statement.Opening) {
		return func() (*statement.Statement, []statement.Opening) {
			b := baseBatches()
			f(b)
			return fixture(t, all, allParams, b...)
		}
	}
	tests := []struct {
		name  string
		build func() (*statement.Statement, []statement.Opening)
		// mutate tampers with the honest assignment.
		mutate func(c *Circuit)
		valid  bool
	}{
		{name: "holds", build: base, valid: true},
		{name: "edges hold", build: withParams(func(p *statement.Params) {
			// RangeLo and RangeHi at the smallest and largest readings, TIR
			// just below 62.5%, 2 days, mean just above 127.4.
			p.RangeLo, p.RangeHi, p.TIRPercent, p.MeanBound, p.MaxBound = 60, 200, 62, 128, 201
		}), valid: true},
		{name: "single entry of full elements", build: func() (*statement.Statement, []statement.Opening) {
			p := allParams
			p.MinDays = 1
			return fixture(t, all, p, hourly(5, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111))
		}, valid: true},
		{name: "readings on consecutive minutes across midnight", build: func() (*statement.Statement, []statement.Opening) {
			b := batch{start: day0 + 23*3600, end: day0 + 25*3600}
			for _, off := range []uint32{3598, 3599, 3600, 3601} {
				b.readings = append(b.readings, commitment.Reading{Offset: off, Value: 100})
			}
			return fixture(t, all, allParams, b)
		}, valid: true},

		// False statements.
		{name: "value below range", build: withParams(func(p *statement.Params) { p.RangeLo = 61 })},
		{name: "value above range", build: withParams(func(p *statement.Params) { p.RangeHi = 199 })},
		{name: "time in range one percent short", build: withParams(func(p *statement.Params) { p.TIRPercent = 63 })},
		{name: "one day too few", build: withParams(func(p *statement.Params) { p.MinDays = 3 })},
		{name: "mean equal to bound", build: withParams(func(p *statement.Params) { p.MeanBound = 127 })},
		{name: "maximum equal to bound", build: withParams(func(p *statement.Params) { p.MaxBound = 200 })},
		{name: "two days in one", build: func() (*statement.Statement, []statement.Opening) {
			// Readings on day 1 only, in two entries: one day, not two.
			return fixture(t, all, allParams, hourly(1, 100, 110), hourly(20, 120))
		}},

		// Openings and order.
		{name: "prefix does not open", build: base, mutate: func(c *Circuit) { c.Entries[1].Prefix = 12345 }},
		{name: "reading does not open", build: base, mutate: func(c *Circuit) { setValue(&c.Entries[0], 1, allStatement, 121) }},
		{name: "offset does not open", build: base, mutate: func(c *Circuit) { c.Entries[0].Offset[1] = 361 }},
		{name: "readings out of order", build: withBatches(func(b []batch) {
			b[0].readings[2].Offset, b[0].readings[3].Offset = b[0].readings[3].Offset, b[0].readings[2].Offset
		})},
		{name: "two readings at one time", build: withBatches(func(b []batch) { b[0].readings[3].Offset = b[0].readings[2].Offset })},
		{name: "reading outside its window", build: withBatches(func(b []batch) { b[1].readings[1].Offset = 3600 })},
		{name: "entries out of order", build: withBatches(func(b []batch) { b[0], b[1] = b[1], b[0] })},
		{name: "overlapping windows", build: withBatches(func(b []batch) { b[1].start = b[0].end - 1; b[1].end = b[1].start + 3600 })},
		{name: "window before the period", build: withBatches(func(b []batch) { b[0].start -= 3600 })},
		{name: "window after the period", build: withBatches(func(b []batch) { b[1].start, b[1].end = day0+10*86400-60, day0+10*86400+3000 })},
		{name: "wrong digest", build: base, mutate: func(c *Circuit) { c.Digest = 1 }},
		{name: "window moved", build: base, mutate: func(c *Circuit) {
			// The commitment's prefix does not bind the window: the digest does.
			e := &c.Entries[0]
			e.WindowStart, e.WindowEnd = day0+86400, day0+86400+3600
		}},

		// Padding abuse.
		{name: "hide a reading by lowering the count", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[0]
			e.Count, e.End[5], e.End[4] = 5, 0, 1
		}},
		{name: "count and one-hot disagree", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[1]
			e.End[1], e.End[2] = 0, 1
		}},
		{name: "drop the last entry", build: base, mutate: func(c *Circuit) { c.Last[1], c.Last[0] = 0, 1 }},
		{name: "padding entry made real", build: base, mutate: func(c *Circuit) { c.Last[1], c.Last[2] = 0, 1 }},
		{name: "padding slot counted in range", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[1]
			e.InRange[5] = 1
			setValue(e, 5, allStatement, 100)
		}},
		{name: "padding slot counted as a day", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[1]
			e.Offset[11], e.NewDay[11], e.Day[11], e.DayPhase[11] = 86400, 1, 3, 0
		}},
		{name: "padding slot out of range", build: base, mutate: func(c *Circuit) { setValue(&c.Entries[2], 0, allStatement, 401) }},
		{name: "padding slot in the last element not zero", build: base, mutate: func(c *Circuit) {
			// Reading 2 of entry 1 is padding in a hashed element: giving it
			// the count's slot needs the count too.
			e := &c.Entries[1]
			e.End[1], e.End[2] = 0, 1
			e.Count = 3
		}},
		{name: "day claimed without a day boundary", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[0]
			e.NewDay[1], e.Day[1], e.DayPhase[1] = 1, 0, 360
		}},
		{name: "in range claimed for a reading below TIRLo", build: base, mutate: func(c *Circuit) {
			c.Entries[0].InRange[5] = 1
		}},
		{name: "in range claimed for a reading above TIRHi", build: base, mutate: func(c *Circuit) {
			c.Entries[0].InRange[2] = 1
		}},
		{name: "day start at the wrong time", build: base, mutate: func(c *Circuit) {
			e := &c.Entries[0]
			e.NewDay[1], e.Day[1], e.DayPhase[1] = 1, 5, 0
		}},
		{name: "day start before the previous entry's last reading", build: func() (*statement.Statement, []statement.Opening) {
			p := allParams
			p.MinDays = 1
			return fixture(t, all, p, hourly(1, 100), hourly(2, 100))
		}, mutate: func(c *Circuit) {
			// A boundary at the period's start, claimed between 01:01 and 02:01.
			e := &c.Entries[1]
			e.NewDay[0], e.Day[0], e.DayPhase[0] = 1, 0, 2*3600+60
		}},
	}
	valid := map[string]frontend.Circuit{}
	invalid := map[string]frontend.Circuit{}
	for _, tt := range tests {
		s, ops := tt.build()
		a := mustAssign(t, s, ops)
		if tt.mutate != nil {
			tt.mutate(a)
		}
		// The native twin must agree with the circuit on unmutated witnesses.
		if tt.mutate == nil {
			err := s.Holds(ops)
			if tt.valid && err != nil {
				t.Fatalf("%s: native: %v", tt.name, err)
			}
			if !tt.valid && err == nil {
				t.Fatalf("%s: native: statement holds", tt.name)
			}
		}
		if tt.valid {
			valid[tt.name] = a
		} else {
			invalid[tt.name] = a
		}
	}
	c, err := New(small, all)
	if err != nil {
		t.Fatal(err)
	}
	checkCircuit(t, c, valid, invalid)
}

// TestParts checks each part on its own circuit, where the values' own
// bound replaces the range part's.
func TestParts(t *testing.T) {
	for _, tt := range []struct {
		kind       statement.Kind
		good, bad  statement.Params
		badReading uint32 // a value that breaks the packing bound
	}{
		{kind: statement.Range, good: statement.Params{RangeLo: 60, RangeHi: 200}, bad: statement.Params{RangeLo: 61, RangeHi: 200}},
		{kind: statement.TimeInRange, good: statement.Params{TIRLo: 70, TIRHi: 180, TIRPercent: 62}, bad: statement.Params{TIRLo: 70, TIRHi: 180, TIRPercent: 63}},
		{kind: statement.Adherence, good: statement.Params{MinDays: 2}, bad: statement.Params{MinDays: 3}},
		{kind: statement.MeanBelow, good: statement.Params{MeanBound: 128}, bad: statement.Params{MeanBound: 127}},
		{kind: statement.MaxBelow, good: statement.Params{MaxBound: 201}, bad: statement.Params{MaxBound: 200}},
	} {
		t.Run(tt.kind.String(), func(t *testing.T) {
			s, ops := fixture(t, tt.kind, tt.good, baseBatches()...)
			good := mustAssign(t, s, ops)
			s, ops = fixture(t, tt.kind, tt.bad, baseBatches()...)
			bad := mustAssign(t, s, ops)
			invalid := map[string]frontend.Circuit{"false": bad}
			if tt.kind != statement.Range {
				// A value of 2^20 would pass as offset+1 with value 0 if the
				// packing bound were missing.
				s, ops = fixture(t, tt.kind, tt.good, baseBatches()...)
				a := mustAssign(t, s, ops)
				// Reading 1 is (360 s, 120): claim (359 s, 2^20 + 120), the
				// same packed word.
				if a.Entries[0].InRange != nil {
					a.Entries[0].InRange[1] = 0
				}
				setValue(&a.Entries[0], 1, s, 1<<20+120)
				a.Entries[0].Offset[1] = 360 - 1
				invalid["value past 20 bits"] = a
			}
			// Reading 1 is (360 s, 120): claim (361 s, 120 - 2^20), the same
			// packed word, with a negative low or high value limb.
			base := int64(0)
			switch tt.kind {
			case statement.Range:
				base = int64(tt.good.RangeLo)
			case statement.TimeInRange:
				base = int64(tt.good.TIRLo) // reading 1 stays counted in range
			}
			if tt.kind == statement.TimeInRange {
				// Reading 2 (190) claimed in 70–180.
				s, ops = fixture(t, tt.kind, tt.good, baseBatches()...)
				a := mustAssign(t, s, ops)
				a.Entries[0].InRange[2] = 1
				setValue(&a.Entries[0], 2, s, 190)
				invalid["in range claimed above TIRHi"] = a
			}
			for name, limbs := range map[string][2]int64{
				"negative low limb":  {120 - base - 1<<20, 0},
				"negative high limb": {120 - base, -1 << 9},
			} {
				s, ops = fixture(t, tt.kind, tt.good, baseBatches()...)
				a := mustAssign(t, s, ops)
				e := &a.Entries[0]
				e.Offset[1], e.Value0[1], e.Value1[1] = 361, limbs[0], limbs[1]
				invalid[name] = a
			}
			c, err := New(small, tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			checkCircuit(t, c, map[string]frontend.Circuit{"holds": good}, invalid)
		})
	}
}

func TestAssign(t *testing.T) {
	s, ops := fixture(t, all, allParams, baseBatches()...)
	if _, err := Assign(small, s, ops); err != nil {
		t.Fatal(err)
	}
	p := allParams
	p.MinDays = 3
	s, ops = fixture(t, all, p, baseBatches()...)
	if _, err := Assign(small, s, ops); !errors.Is(err, statement.ErrFalse) {
		t.Errorf("false statement: got %v, want ErrFalse", err)
	}
	s, ops = fixture(t, all, allParams, hourly(0, 100), hourly(1, 100), hourly(2, 100), hourly(3, 100))
	if _, err := Assign(small, s, ops); err == nil {
		t.Error("four entries in a shape of three: no error")
	}
	many := make([]uint32, 13)
	for i := range many {
		many[i] = 100
	}
	s, ops = fixture(t, all, allParams, hourly(0, many...))
	if _, err := Assign(small, s, ops); err == nil {
		t.Error("thirteen readings in an entry of twelve: no error")
	}
}
