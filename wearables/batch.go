package wearables

import (
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// Reading is one committed reading: its offset in seconds from the start of
// its entry's window and its fixed-point value (see [Metric.Encode]).
type Reading = commitment.Reading

// Batch is what a wearable sends its hospital's gateway: the signed entry
// and the opening of its commitment. The salt and readings never leave the
// hospital.
type Batch struct {
	Entry    *Entry
	Salt     [commitment.Size]byte
	Readings []Reading
}

// Opening returns the commitment opening that the batch claims.
func (b *Batch) Opening() *commitment.Opening {
	h := &b.Entry.Header
	m, _ := MetricByCode(h.Metric)
	return &commitment.Opening{
		Salt:        b.Salt,
		DeviceID:    h.DeviceID,
		Metric:      m.ID,
		WindowStart: h.WindowStart,
		WindowEnd:   h.WindowEnd,
		Readings:    b.Readings,
	}
}

// Validate checks the batch against its entry header: the readings are as
// many as the header counts, ordered by strictly increasing time inside the
// window and not later than now, each value is in the metric's possible
// range, and salt and readings open the header's commitment.
//
// Errors name the field and the reason but never a reading's value.
func (b *Batch) Validate(now time.Time) error {
	h := &b.Entry.Header
	m, ok := MetricByCode(h.Metric)
	if !ok {
		return errors.New("metric: unknown metric code")
	}
	if len(b.Readings) == 0 {
		return errors.New("readings: batch is empty")
	}
	if len(b.Readings) > MaxBatchReadings {
		return fmt.Errorf("readings: more than %d in one batch", MaxBatchReadings)
	}
	if len(b.Readings) != h.Count {
		return fmt.Errorf("readings: %d readings but the entry counts %d", len(b.Readings), h.Count)
	}
	window := h.WindowEnd - h.WindowStart
	for i, r := range b.Readings {
		if int64(r.Offset) >= window {
			return fmt.Errorf("readings[%d]: time is outside the entry's window", i)
		}
		if i > 0 && r.Offset <= b.Readings[i-1].Offset {
			return fmt.Errorf("readings[%d]: times must be strictly increasing", i)
		}
		if h.WindowStart+int64(r.Offset) > now.Unix() {
			return fmt.Errorf("readings[%d]: time is in the future", i)
		}
		if err := m.CheckFixed(r.Value); err != nil {
			return fmt.Errorf("readings[%d]: %w", i, err)
		}
	}
	c, err := commitment.Commit(b.Opening())
	if err != nil {
		return fmt.Errorf("commitment: %w", err)
	}
	if c != h.Commitment {
		return errors.New("commitment: salt and readings do not open the entry's commitment")
	}
	return nil
}
