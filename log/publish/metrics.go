package publish

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics, registered with the default Prometheus registry. No label holds
// data: "witness" is a witness's name in the policy, the other labels take
// the fixed values their help text lists.
var (
	publicationsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_publish_publications_total",
		Help: "Checkpoints published, by quorum: met (the policy's quorum cosigned), none (the policy needs no witness), fail_open (published without quorum).",
	}, []string{"quorum"})
	cosignaturesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_publish_cosignatures_total",
		Help: "Verified cosignatures received, by witness.",
	}, []string{"witness"})
	witnessErrorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_publish_witness_errors_total",
		Help: "Failed or refused add-checkpoint exchanges, by witness and kind: conflict (409, retried), ahead (the witness cosigned a larger tree), unknown_log (404), forbidden (403), bad_request (400), inconsistent (422), fork (the witness cosigned another root for the size), bad_cosignature, proof (couldn't prove consistency), unavailable (network, timeout, other status).",
	}, []string{"witness", "kind"})
	publishedSize = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "vitalproof_publish_published_size",
		Help: "Tree size of the newest published checkpoint.",
	})
	publishLatency = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "vitalproof_publish_latency_seconds",
		Help:    "Time from the publisher first seeing the tree grow beyond the published checkpoint to the publication of a checkpoint covering that growth.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
)
