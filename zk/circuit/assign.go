package circuit

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/statement"
)

var (
	errTooMany  = errors.New("statement has more entries than the shape holds")
	errTooLarge = errors.New("an entry has more readings than the shape holds")
)

// Assign returns the full assignment that proves s from openings (one per
// entry, in order) on the circuit of s.Kinds over shape. It first checks
// with [statement.Statement.Holds] that the proof would succeed; the error
// wraps [statement.ErrFalse] when the statement is false.
func Assign(shape Shape, s *statement.Statement, openings []statement.Opening) (*Circuit, error) {
	if err := shape.Check(); err != nil {
		return nil, fmt.Errorf("couldn't assign circuit: %w", err)
	}
	if len(s.Entries) > shape.Entries {
		return nil, fmt.Errorf("couldn't assign circuit: %w", errTooMany)
	}
	for _, e := range s.Entries {
		if e.Count > shape.PerEntry {
			return nil, fmt.Errorf("couldn't assign circuit: %w", errTooLarge)
		}
	}
	if err := s.Holds(openings); err != nil {
		return nil, fmt.Errorf("couldn't assign circuit: %w", err)
	}
	pub, err := s.PublicInputs()
	if err != nil {
		return nil, fmt.Errorf("couldn't assign circuit: %w", err)
	}
	return assign(shape, s, openings, pub)
}

// assign builds the assignment with public inputs pub without checking that
// it satisfies the circuit: tests use it to build invalid witnesses.
func assign(shape Shape, s *statement.Statement, openings []statement.Opening, pub [statement.NumPublic]fr.Element) (*Circuit, error) {
	c, err := New(shape, s.Kinds)
	if err != nil {
		return nil, fmt.Errorf("couldn't assign circuit: %w", err)
	}
	for i, v := range []*frontend.Variable{&c.Digest, &c.PeriodStart, &c.PeriodEnd, &c.RangeLo, &c.RangeHi,
		&c.TIRLo, &c.TIRHi, &c.TIRPercent, &c.MinDays, &c.MeanBound, &c.MaxBound} {
		*v = pub[i]
	}
	c.Device = commitment.DeviceElement(s.DeviceID)
	c.Metric = s.Metric
	for i := range c.Last {
		c.Last[i] = boolInt(i == len(s.Entries)-1)
	}
	pad := uint32(0)
	if s.Kinds&statement.Range != 0 {
		pad = s.Params.RangeLo
	}
	r := shape.PerEntry
	var prevT int64 // time of the previous reading from PeriodStart
	for i := range c.Entries {
		e := &c.Entries[i]
		if i >= len(s.Entries) {
			// Padding slot: a one-second window, no reading.
			e.Prefix, e.WindowStart, e.WindowEnd, e.Count = 0, 0, 1, 0
			for j := 0; j < r; j++ {
				e.End[j], e.Offset[j] = 0, 0
				setFlags(e, j, 0, 0, 0, 0)
				setValue(e, j, s, pad)
			}
			continue
		}
		se, op := &s.Entries[i], &openings[i]
		if len(op.Readings) != se.Count || se.Count > r {
			return nil, fmt.Errorf("couldn't assign circuit: entry %d: %w", i, errTooLarge)
		}
		// The header elements as package commitment orders them; Assign
		// has checked them (Holds), assign alone hashes whatever it gets.
		var salt fr.Element
		if err := salt.SetBytesCanonical(op.Salt[:]); err != nil {
			return nil, fmt.Errorf("couldn't assign circuit: entry %d: salt is not canonical", i)
		}
		header := make([]fr.Element, headerElements)
		header[0], header[1], header[2] = commitment.Tag(), salt, commitment.DeviceElement(s.DeviceID)
		header[3].SetUint64(uint64(s.Metric))
		header[4].SetInt64(se.WindowStart)
		header[5].SetInt64(se.WindowEnd)
		header[6].SetUint64(uint64(se.Count))
		prefix := prefixOf(header)
		e.Prefix, e.WindowStart, e.WindowEnd, e.Count = prefix, se.WindowStart, se.WindowEnd, se.Count
		last := op.Readings[len(op.Readings)-1]
		for j := 0; j < r; j++ {
			e.End[j] = boolInt(j == se.Count-1)
			if j >= se.Count {
				e.Offset[j] = last.Offset
				setFlags(e, j, 0, 0, 0, 0)
				setValue(e, j, s, pad)
				continue
			}
			rd := op.Readings[j]
			e.Offset[j] = rd.Offset
			p := &s.Params
			in := rd.Value >= p.TIRLo && rd.Value <= p.TIRHi
			t := se.WindowStart + int64(rd.Offset) - s.PeriodStart
			var newDay, phase, day int64
			if (i > 0 || j > 0) && t/statement.DayLength > prevT/statement.DayLength {
				newDay, day = 1, t/statement.DayLength
				phase = t - day*statement.DayLength
			}
			setFlags(e, j, boolInt(in), newDay, phase, day)
			setValue(e, j, s, rd.Value)
			prevT = t
		}
	}
	return c, nil
}

// setValue sets the limbs of slot j's value v (see [Entry]), after its
// InRange flag. Limbs of a value below its base, or past 2^22 above it, do
// not fit in 11 bits: the circuit refuses them.
func setValue(e *Entry, j int, s *statement.Statement, v uint32) {
	base := new(big.Int)
	switch {
	case s.Kinds&statement.Range != 0:
		base.SetUint64(uint64(s.Params.RangeLo))
	case s.Kinds&statement.TimeInRange != 0 && e.InRange[j] == 1:
		base.SetUint64(uint64(s.Params.TIRLo))
	}
	x := new(big.Int).SetUint64(uint64(v))
	x.Sub(x, base).Mod(x, fr.Modulus())
	e.Value0[j] = new(big.Int).And(x, big.NewInt(1<<limbBits-1))
	e.Value1[j] = new(big.Int).Rsh(x, limbBits)
}

func setFlags(e *Entry, j int, inRange int, newDay, phase, day int64) {
	if e.InRange != nil {
		e.InRange[j] = inRange
	}
	if e.NewDay != nil {
		e.NewDay[j], e.DayPhase[j], e.Day[j] = newDay, phase, day
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
