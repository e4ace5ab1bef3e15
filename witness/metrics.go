package witness

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/attestlog/attestlog/witness/internal/store"
)

// metrics are the Prometheus metrics of one Witness, in its own registry.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec   // endpoint, code
	duration     *prometheus.HistogramVec // endpoint
	cosignatures prometheus.Counter
	inconsistent *prometheus.CounterVec // kind
	batch        prometheus.Histogram
	commit       prometheus.Histogram
}

func newMetrics(st *store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "requests_total",
			Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "request_duration_seconds",
			Help:    "HTTP request latency by endpoint.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}, []string{"endpoint"}),
		cosignatures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "cosignatures_total",
			Help: "Cosignatures returned (each after its tree head was persisted).",
		}),
		inconsistent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "inconsistent_checkpoints_total",
			Help: "Validly signed checkpoints refused as inconsistent (kind: split-view, bad-proof); kept as evidence.",
		}, []string{"kind"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "commit_batch_size",
			Help:    "Tree head updates per SQLite transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "attestlog", Subsystem: "witness", Name: "commit_duration_seconds",
			Help:    "Duration of one fsynced SQLite transaction of tree head updates.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .5},
		}),
	}
	logs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "attestlog", Subsystem: "witness", Name: "logs",
		Help: "Logs with at least one key (witnessed).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := st.Count(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	m.reg.MustRegister(m.requests, m.duration, m.cosignatures, m.inconsistent, m.batch, m.commit, logs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeCommit(n int, d time.Duration) {
	m.batch.Observe(float64(n))
	m.commit.Observe(d.Seconds())
}
