package provenance

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are registered once, in the default Prometheus registry that
// vitalproofd serves at /metrics. No label ever carries a device, patient
// or reading.
var (
	metricEntries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_ledger_entries_total",
		Help: "Entries submitted to the ledger, by result (accepted, duplicate, refused).",
	}, []string{"result"})
	metricRefusals = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_ledger_refusals_total",
		Help: "Entries the ledger refused, by the field at fault.",
	}, []string{"reason"})
	metricAppendErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "vitalproof_ledger_append_errors_total",
		Help: "Failed attempts to queue accepted entries in the log (retried by the reconciler).",
	})
	metricQueueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "vitalproof_ledger_unintegrated_entries",
		Help: "Accepted entries older than the reconcile interval that are not yet integrated, as last seen by the reconciler.",
	})
	metricIntegration = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "vitalproof_ledger_integration_seconds",
		Help:    "Time from a SubmitEntries call to its entries' receipts.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	metricBatches = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_gateway_batches_total",
		Help: "Batches submitted to the gateway, by result (logged, pending, duplicate, refused).",
	}, []string{"result"})
	metricGatewayRefusals = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_gateway_refusals_total",
		Help: "Batches the gateway refused, by the field at fault.",
	}, []string{"reason"})
	metricReadings = promauto.NewCounter(prometheus.CounterOpts{
		Name: "vitalproof_gateway_readings_total",
		Help: "Readings stored in the private store with their entry logged or pending.",
	})
	metricOutbox = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "vitalproof_gateway_pending_batches",
		Help: "Batches stored but not yet acknowledged by the ledger, as last seen by the outbox.",
	})
)
