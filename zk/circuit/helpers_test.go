package circuit

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// Test period: ten days from 2025-01-01T00:00:00Z.
const (
	day0   = 1735689600
	device = "dev-1"
	metric = 6 // glucose
)

// batch is one entry of a fixture: its window and readings.
type batch struct {
	start, end int64
	readings   []commitment.Reading
}

// fixture builds a statement of kinds with params over batches, and its
// openings, with deterministic salts.
func fixture(t testing.TB, kinds statement.Kind, p statement.Params, batches ...batch) (*statement.Statement, []statement.Opening) {
	t.Helper()
	s := &statement.Statement{Kinds: kinds, Params: p, DeviceID: device, Metric: metric,
		PeriodStart: day0, PeriodEnd: day0 + 10*statement.DayLength}
	var ops []statement.Opening
	for i, b := range batches {
		var salt [commitment.Size]byte
		salt[31], salt[30] = byte(i+1), 0x5a
		o := &commitment.Opening{Salt: salt, DeviceID: device, Metric: metric, WindowStart: b.start, WindowEnd: b.end, Readings: b.readings}
		c, err := commitment.Commit(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Entries = append(s.Entries, statement.Entry{Commitment: c, WindowStart: b.start, WindowEnd: b.end, Count: len(b.readings)})
		ops = append(ops, statement.Opening{Salt: salt, Readings: b.readings})
	}
	return s, ops
}

// hourly returns a one-hour batch starting h hours into the period with the
// given values, a reading every 5 minutes from minute 1.
func hourly(h int64, values ...uint32) batch {
	b := batch{start: day0 + h*3600, end: day0 + (h+1)*3600}
	for k, v := range values {
		b.readings = append(b.readings, commitment.Reading{Offset: uint32(60 + 300*k), Value: v})
	}
	return b
}

var big1 = new(big.Int).SetInt64(1)

// publicInputs computes s's public inputs as the package documentation of
// zk/statement defines them, without Statement.Check, so that tests can
// build witnesses of ill-formed statements (entries out of order) that a
// verifier would refuse before proving.
func publicInputs(t testing.TB, s *statement.Statement) [statement.NumPublic]fr.Element {
	t.Helper()
	var out [statement.NumPublic]fr.Element
	var n, m fr.Element
	n.SetUint64(uint64(len(s.Entries)))
	m.SetUint64(uint64(s.Metric))
	blocks := [][3]fr.Element{{commitment.DeviceElement(s.DeviceID), m, n}}
	elem := func(i int) (c, e fr.Element) {
		if i >= len(s.Entries) {
			return
		}
		se := &s.Entries[i]
		c.SetBytes(se.Commitment[:])
		v := new(big.Int).SetUint64(uint64(se.Count))
		v.Lsh(v, 22).Add(v, big.NewInt(se.WindowEnd-se.WindowStart-1))
		v.Lsh(v, 63).Add(v, big.NewInt(se.WindowStart))
		e.SetBigInt(v)
		return
	}
	for i := 0; i < len(s.Entries); i += 2 {
		c0, e0 := elem(i)
		c1, e1 := elem(i + 1)
		var sh fr.Element
		sh.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 99))
		e1.Mul(&e1, &sh)
		e0.Add(&e0, &e1)
		blocks = append(blocks, [3]fr.Element{c0, c1, e0})
	}
	out[0] = statement.Sponge(blocks)
	out[1].SetInt64(s.PeriodStart)
	out[2].SetInt64(s.PeriodEnd)
	p := &s.Params
	for i, v := range []uint32{p.RangeLo, p.RangeHi, p.TIRLo, p.TIRHi, p.TIRPercent, p.MinDays, p.MeanBound, p.MaxBound} {
		out[3+i].SetUint64(uint64(v))
	}
	if want, err := s.PublicInputs(); err == nil && want != out {
		t.Fatal("test digest differs from statement.PublicInputs")
	}
	return out
}
