package monitor_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/provenance/monitor"
)

// BenchmarkCatchUp measures how fast a monitor catches up from nothing on
// a log of 100,000 leaves (100 device registrations, then 999 hourly
// entries of each device, interleaved), watching the manufacturer of a
// tenth of the devices: served from memory, and over HTTP (the ledger's
// REST routes on loopback).
func BenchmarkCatchUp(b *testing.B) {
	const devices, perDevice = 100, 999
	l, mk := newLedger(b), newLeafMaker(b)
	var leaves [][]byte
	for d := range devices {
		maker := "globex"
		if d%10 == 0 {
			maker = "acme"
		}
		leaves = append(leaves, mk.register(fmt.Sprintf("band-%d", d), maker))
	}
	for range perDevice {
		for d := range devices {
			leaves = append(leaves, mk.entries(fmt.Sprintf("band-%d", d), 1)[0])
		}
	}
	root := l.Append(b, leaves...)
	if root.Size != uint64(len(leaves)) {
		b.Fatalf("the log holds %d leaves, want %d", root.Size, len(leaves))
	}
	l.Publish(b, "H1", "H2")
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	hl, err := monitor.NewHTTPLedger(srv.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		ledger monitor.Ledger
	}{{"memory", l}, {"http", hl}} {
		b.Run(bc.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				m, err := monitor.New(monitor.Config{
					Ledger: bc.ledger, Policy: l.Policy(), StateDir: b.TempDir(), Watch: []string{"acme"},
					OnReport: func(monitor.Report) {},
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := m.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				if st := m.Status(); st.Leaves != root.Size {
					b.Fatalf("caught up %d of %d leaves", st.Leaves, root.Size)
				}
			}
			b.ReportMetric(float64(root.Size)*float64(b.N)/elapsed.Seconds(), "entries/s")
		})
	}
}
