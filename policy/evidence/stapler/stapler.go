// Package stapler keeps an enclave's evidence stapled with fresh proofs
// from the log (a server-side part of the demo enclave and of real
// enclaves' evidence endpoints; the client decision does not need it).
package stapler

import (
	"context"
	"github.com/attestlog/attestlog/policy/evidence"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Staple is what an enclave staples to its evidence: the release's
// c2sp.org/tlog-proof, the log's index proof for its identity, and the
// proofs of the revocations that index proof lists (a client counts a
// revocation whose entry it lacks against the release: only its entry
// shows that its signer, another operator, may not revoke this one).
type Staple struct {
	Proof, IndexProof string
	Related           []string
}

// Stapler keeps a fresh Staple on every bundle of a Source: it refreshes
// it from the log every Interval (backing off on failure, up to 8
// intervals), and until the first refresh succeeds bundles carry none —
// a client whose policy requires them then says NOT TRUSTED, and why.
type Stapler struct {
	Source evidence.Source
	// Fetch returns the current staple (from the log).
	Fetch    func(ctx context.Context) (Staple, error)
	Interval time.Duration
	Logger   *slog.Logger

	mu      sync.Mutex
	staple  Staple
	fetched time.Time

	refreshes *prometheus.CounterVec
	age       prometheus.GaugeFunc
}

// DefaultStapleInterval is a Stapler's default refresh interval.
const DefaultStapleInterval = 5 * time.Second

// Collectors returns the stapler's metrics: refreshes by result, and the
// age of the staple served.
func (s *Stapler) Collectors() []prometheus.Collector {
	s.init()
	return []prometheus.Collector{s.refreshes, s.age}
}

func (s *Stapler) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refreshes != nil {
		return
	}
	s.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attestlog_enclave_staple_refreshes_total", Help: "Refreshes of the stapled proofs from the log, by result.",
	}, []string{"result"})
	s.age = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "attestlog_enclave_staple_age_seconds", Help: "Age of the stapled proofs served (NaN before the first).",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fetched.IsZero() {
			return -1
		}
		return time.Since(s.fetched).Seconds()
	})
}

// Refresh fetches the staple once.
func (s *Stapler) Refresh(ctx context.Context) error {
	s.init()
	st, err := s.Fetch(ctx)
	if err != nil {
		s.refreshes.WithLabelValues("error").Inc()
		return err
	}
	s.mu.Lock()
	s.staple, s.fetched = st, time.Now()
	s.mu.Unlock()
	s.refreshes.WithLabelValues("ok").Inc()
	return nil
}

// Run refreshes until ctx ends.
func (s *Stapler) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultStapleInterval
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := s.Refresh(ctx)
		wait = nextWait(wait, interval, err != nil)
		if err != nil {
			logger.Warn("refreshing the staple; serving the previous one", "err", err, "retry_in", wait)
		}
	}
}

// nextWait is the backoff: doubling after each failure up to 8 intervals,
// back to one interval after a success.
func nextWait(wait, interval time.Duration, failed bool) time.Duration {
	if !failed {
		return interval
	}
	return min(2*wait, 8*interval)
}

// Current returns the staple served now and when it was fetched.
func (s *Stapler) Current() (Staple, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staple, s.fetched
}

// Evidence is the source's bundle with the current staple.
func (s *Stapler) Evidence(ctx context.Context, nonce []byte) (*evidence.Bundle, error) {
	b, err := s.Source.Evidence(ctx, nonce)
	if err != nil {
		return nil, err
	}
	st, _ := s.Current()
	b.Proof, b.IndexProof, b.Related = st.Proof, st.IndexProof, st.Related
	return b, nil
}
