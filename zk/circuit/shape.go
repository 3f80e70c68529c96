package circuit

import (
	"errors"
	"fmt"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// Shape is a circuit's fixed capacity: up to Entries entries of up to
// PerEntry readings each. A statement over fewer entries, or entries with
// fewer readings, is padded (see the package documentation).
type Shape struct {
	Entries  int
	PerEntry int
}

// Standard shapes. Batches hold a reading a minute for an hour (the
// simulator's and the quickstart's shape).
var (
	// Day is a day of hourly batches: 24 entries of 60, 1,440 readings.
	Day = Shape{Entries: 24, PerEntry: 60}
	// Month is 30 days of hourly batches: 720 entries of 60, 43,200 readings.
	Month = Shape{Entries: 720, PerEntry: 60}
)

const (
	// maxEntries and maxPerEntry keep every count and sum the circuit forms
	// far below the field's modulus (see checks in Define).
	maxEntries  = 1 << 16
	maxPerEntry = 1<<14 - 4 // a multiple of 6 below 2^14: counts are 14-bit in the digest
)

var errShape = errors.New("shape needs 1 to 65536 entries of 6 to 16380 readings, a multiple of 6")

// Check reports whether s is a valid shape.
func (s Shape) Check() error {
	if s.Entries < 1 || s.Entries > maxEntries || s.PerEntry < commitment.PerElement ||
		s.PerEntry > maxPerEntry || s.PerEntry%commitment.PerElement != 0 {
		return errShape
	}
	return nil
}

// Capacity returns the number of readings the shape holds.
func (s Shape) Capacity() int { return s.Entries * s.PerEntry }

// String returns "<entries>x<per entry>", e.g. "24x60".
func (s Shape) String() string { return fmt.Sprintf("%dx%d", s.Entries, s.PerEntry) }

// ParseShape parses the form [Shape.String] returns.
func ParseShape(str string) (Shape, error) {
	var s Shape
	var rest string
	n, _ := fmt.Sscanf(str, "%dx%d%s", &s.Entries, &s.PerEntry, &rest)
	if n != 2 || s.String() != str {
		return Shape{}, errShape
	}
	if err := s.Check(); err != nil {
		return Shape{}, err
	}
	return s, nil
}
