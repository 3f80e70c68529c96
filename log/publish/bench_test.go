package publish

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkPublish measures the latency from an entry's integration to the
// publication of a checkpoint covering it, cosigned by a majority of 3 or 5
// witnesses (log/witness on MariaDB, loopback HTTP), and reports its P50 and
// P99. Each iteration integrates one entry and wakes the publisher.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("witnesses=%d", n), func(b *testing.B) {
			s := newSigner(b)
			ws := startWitnesses(b, fmt.Sprintf("bench%d_", n), n, s)
			policy := policyText(s, ws, groupOf("majority", fmt.Sprint(n/2+1), ws), "quorum majority")
			l := newTestLog()
			cfg := NewConfig(l, s, policy, publisherDB(b)).WithInterval(time.Hour).WithLogger(quietLogger())
			p := startPublisher(b, cfg)
			ctx := context.Background()
			latencies := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				size := l.add(b, 1)
				start := time.Now()
				p.Wake()
				if _, _, err := p.Await(ctx, size); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(latencies)
			pct := func(q float64) float64 {
				return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
