package logtest

import (
	"testing"
)

// TestMemLog runs the oracle test on MemLog, which also tests the oracle.
func TestMemLog(t *testing.T) {
	m := NewMemLog()
	Run(t, m, Options{Integrate: func() { m.Integrate() }, Settle: 1})
}
