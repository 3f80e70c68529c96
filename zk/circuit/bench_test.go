package circuit

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/vitalproof/vitalproof/zk/statement"
)

// BenchmarkConstraints compiles the Day shape's circuit for each part and
// reports its constraints and constraints per reading (the 43,200-reading
// Month shape takes about 12 s and 4 GiB per compile: use the zkbench
// program with -compile-only for it).
func BenchmarkConstraints(b *testing.B) {
	for _, k := range []statement.Kind{statement.Range, statement.TimeInRange, statement.Adherence,
		statement.MeanBelow, statement.MaxBelow, statement.Range | statement.TimeInRange, all} {
		b.Run(k.String(), func(b *testing.B) {
			var n int
			for b.Loop() {
				c, err := New(Day, k)
				if err != nil {
					b.Fatal(err)
				}
				cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
				if err != nil {
					b.Fatal(err)
				}
				n = cs.GetNbConstraints()
			}
			b.ReportMetric(float64(n), "constraints")
			b.ReportMetric(float64(n)/float64(Day.Capacity()), "constraints/reading")
		})
	}
}

func TestShapes(t *testing.T) {
	for _, s := range []Shape{Day, Month, small, {1, 6}, {maxEntries, maxPerEntry}} {
		if err := s.Check(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
		if got, err := ParseShape(s.String()); err != nil || got != s {
			t.Errorf("ParseShape(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, s := range []Shape{{0, 6}, {1, 0}, {1, 5}, {1, 7}, {maxEntries + 1, 6}, {1, maxPerEntry + 6}} {
		if s.Check() == nil {
			t.Errorf("%v: valid", s)
		}
	}
	for _, str := range []string{"", "24x", "x60", "24x60x", "024x60", "24X60", " 24x60", "24x60 ", "-1x6", "1x6\n"} {
		if _, err := ParseShape(str); err == nil {
			t.Errorf("ParseShape(%q): no error", str)
		}
	}
	for _, k := range []statement.Kind{statement.Range, all} {
		sh, kk, err := ParseID(ID(Month, k))
		if err != nil || sh != Month || kk != k {
			t.Errorf("ParseID(%q) = %v, %v, %v", ID(Month, k), sh, kk, err)
		}
	}
	for _, id := range []string{"", Version, Version + "/range", Version + "/range/24x60/x", "vitalproof/audit/v0/range/24x60", Version + "/tir+range/24x60"} {
		if _, _, err := ParseID(id); err == nil {
			t.Errorf("ParseID(%q): no error", id)
		}
	}
	if Month.Capacity() != 43200 || Day.Capacity() != 1440 {
		t.Error("standard shapes changed capacity")
	}
}

func FuzzParseShape(f *testing.F) {
	for _, s := range []string{"24x60", "720x60", "1x6", "0x0", "24x60x1", "+1x6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, str string) {
		s, err := ParseShape(str)
		if err != nil {
			return
		}
		if s.Check() != nil || s.String() != str {
			t.Fatalf("ParseShape(%q) = %v", str, s)
		}
	})
}
