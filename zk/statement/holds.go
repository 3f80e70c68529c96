package statement

import (
	"errors"
	"fmt"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// Opening is the private part of an entry: its salt and readings.
type Opening struct {
	Salt     [commitment.Size]byte
	Readings []commitment.Reading
}

// ErrFalse is returned by [Statement.Holds] when the openings are valid but
// the statement is false for them.
var ErrFalse = errors.New("statement does not hold")

var (
	errOpenings = errors.New("openings do not match the entries")
	errOpen     = errors.New("salt and readings do not open the entry's commitment")
	errReadings = errors.New("readings are not in strictly increasing time order inside the window")
)

// Holds checks natively what a proof of s would prove from openings, one per
// entry: that each opening opens its entry's commitment with readings in
// strictly increasing time order inside the entry's window, and that the
// statement holds. It returns an error wrapping [ErrFalse] (and naming the
// failing part) when only the statement is false. Errors never carry a
// reading or a salt.
func (s *Statement) Holds(openings []Opening) error {
	if err := s.Check(); err != nil {
		return err
	}
	if len(openings) != len(s.Entries) {
		return errOpenings
	}
	var total, inRange, sum uint64
	days := map[int64]bool{}
	allInRange, allBelow := true, true
	p := &s.Params
	for i := range s.Entries {
		e, o := &s.Entries[i], &openings[i]
		if len(o.Readings) != e.Count {
			return fmt.Errorf("entry %d: %w", i, errOpenings)
		}
		for j, r := range o.Readings {
			if int64(r.Offset) >= e.WindowEnd-e.WindowStart || (j > 0 && r.Offset <= o.Readings[j-1].Offset) {
				return fmt.Errorf("entry %d: %w", i, errReadings)
			}
		}
		c, err := commitment.Commit(&commitment.Opening{
			Salt:        o.Salt,
			DeviceID:    s.DeviceID,
			Metric:      s.Metric,
			WindowStart: e.WindowStart,
			WindowEnd:   e.WindowEnd,
			Readings:    o.Readings,
		})
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if c != e.Commitment {
			return fmt.Errorf("entry %d: %w", i, errOpen)
		}
		for _, r := range o.Readings {
			total++
			sum += uint64(r.Value)
			if r.Value < p.RangeLo || r.Value > p.RangeHi {
				allInRange = false
			}
			if r.Value >= p.TIRLo && r.Value <= p.TIRHi {
				inRange++
			}
			if r.Value >= p.MaxBound {
				allBelow = false
			}
			days[(e.WindowStart+int64(r.Offset)-s.PeriodStart)/DayLength] = true
		}
	}
	on := func(k Kind) bool { return s.Kinds&k != 0 }
	switch {
	case on(Range) && !allInRange:
		return fmt.Errorf("range: %w", ErrFalse)
	case on(TimeInRange) && 100*inRange < uint64(p.TIRPercent)*total:
		return fmt.Errorf("time in range: %w", ErrFalse)
	case on(Adherence) && uint64(len(days)) < uint64(p.MinDays):
		return fmt.Errorf("adherence: %w", ErrFalse)
	case on(MeanBelow) && sum >= uint64(p.MeanBound)*total:
		return fmt.Errorf("mean: %w", ErrFalse)
	case on(MaxBelow) && !allBelow:
		return fmt.Errorf("maximum: %w", ErrFalse)
	}
	return nil
}
