package auditor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestlog/attestlog/auditor/internal/store"
)

// --- Webhooks

// outbox is the webhook delivery worker: it posts each alert to every
// webhook from the outbox rows RaiseAlert records with the alert, and
// retries failures with backoff. It reaches the state database only
// through outboxStore.
type outbox struct {
	st       outboxStore
	hc       *http.Client
	webhooks map[string]WebhookConfig // by URL
	// metrics counts delivery attempts.
	metrics *metrics
	logger  *slog.Logger
}

// outboxStore is what the webhook delivery worker asks of the state
// database (the auditor's *store.Store implements it). Its rows are
// written with their alert, in RaiseAlert's transaction: an alert is never
// recorded without its deliveries. No method takes a lock of the
// auditor's; each write is one statement, durable when it returns, and
// none is retried beyond SQLite's busy timeout: a row whose attempt was
// not recorded stays due as it was, so delivery is at least once
// (receivers deduplicate on the alert's key) and never lost.
type outboxStore interface {
	// DueDeliveries returns up to limit undelivered rows due at t, the
	// longest due first, each with its alert.
	DueDeliveries(ctx context.Context, t time.Time, limit int) ([]store.Outgoing, error)
	// Delivered marks a row delivered. It is idempotent. On an error the
	// row stays due and the alert is posted again.
	Delivered(ctx context.Context, alertID int64, url string) error
	// DeliveryFailed counts a failed attempt and makes the row due again
	// at next. On an error the row stays as it was: due at once, so the
	// next pass attempts it again without backoff.
	DeliveryFailed(ctx context.Context, alertID int64, url string, next time.Time, msg string) error
}

// deliver attempts each due outbox row once. A 2xx answer marks it
// delivered; anything else schedules a retry with exponential backoff
// (1s, 2s, 4s, … up to the webhook's max_backoff). Rows survive restarts.
func (o *outbox) deliver(ctx context.Context) {
	due, err := o.st.DueDeliveries(ctx, time.Now(), 100)
	if err != nil {
		if ctx.Err() == nil {
			o.logger.Warn("reading webhook outbox", "err", err)
		}
		return
	}
	for _, d := range due {
		if ctx.Err() != nil {
			return
		}
		wc, ok := o.webhooks[d.URL]
		if !ok {
			wc = WebhookConfig{URL: d.URL, Timeout: DefaultWebhookTimeout, MaxBackoff: DefaultWebhookMaxBackoff}
		}
		err := o.post(ctx, wc, &d.Alert)
		if err == nil {
			o.metrics.deliveries.WithLabelValues("delivered").Inc()
			if err := o.st.Delivered(ctx, d.Alert.ID, d.URL); err != nil {
				o.logger.Warn("recording webhook delivery", "err", err)
			}
			continue
		}
		o.metrics.deliveries.WithLabelValues("failed").Inc()
		backoff := min(time.Second<<min(d.Attempts, 30), wc.MaxBackoff)
		o.logger.Warn("webhook delivery failed", "url", d.URL, "alert_id", d.Alert.ID, "attempts", d.Attempts+1, "retry_in", backoff, "err", err)
		if err := o.st.DeliveryFailed(ctx, d.Alert.ID, d.URL, time.Now().Add(backoff), err.Error()); err != nil {
			o.logger.Warn("recording webhook failure", "err", err)
		}
	}
}

func (o *outbox) post(ctx context.Context, wc WebhookConfig, al *Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, wc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wc.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "attestlog-auditor")
	for k, v := range wc.Headers {
		req.Header.Set(k, v)
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// --- Metrics

type metrics struct {
	a           *Auditor
	reg         *prometheus.Registry
	treeSize    *prometheus.GaugeVec
	verified    *prometheus.GaugeVec
	entries     *prometheus.CounterVec
	checkpoints *prometheus.CounterVec
	rebuildQ    *prometheus.GaugeVec
	rebuilds    *prometheus.CounterVec
	alerts      *prometheus.CounterVec
	alertsOpen  *prometheus.GaugeVec
	polls       *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	pending     prometheus.Gauge
}

func newMetrics(a *Auditor) *metrics {
	m := &metrics{a: a, reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	const ns = "attestlog_auditor"
	m.treeSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "log_tree_size", Help: "Size of the latest verified, consistent tree of each log."}, []string{"origin"})
	m.verified = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "log_entries_verified", Help: "Entries of each log verified so far (the index of the next entry to verify)."}, []string{"origin"})
	m.entries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "entries_total", Help: "Entries verified by this process, by kind and result."}, []string{"origin", "kind", "result"})
	m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "checkpoints_total", Help: "Checkpoints checked, by source and result."}, []string{"origin", "source", "result"})
	m.rebuildQ = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "releases", Help: "Releases by rebuild state (queued, running, reproduced, mismatch, failed, off)."}, []string{"state"})
	m.rebuilds = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rebuilds_total", Help: "Rebuilds finished by this process, by outcome."}, []string{"outcome"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "alerts_total", Help: "Alerts raised by this process, by kind."}, []string{"kind"})
	m.alertsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "alerts_open", Help: "Open alerts, by kind."}, []string{"kind"})
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "deployment_polls_total", Help: "Deployment polls, by verdict."}, []string{"deployment", "verdict"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "webhook_deliveries_total", Help: "Webhook delivery attempts, by result."}, []string{"result"})
	m.pending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "webhook_pending", Help: "Alert deliveries waiting in the webhook outbox."})
	for _, c := range []prometheus.Collector{m.treeSize, m.verified, m.entries, m.checkpoints, m.rebuildQ, m.rebuilds, m.alerts, m.alertsOpen, m.polls, m.deliveries, m.pending} {
		f(c)
	}
	for _, k := range AlertKinds {
		m.alertsOpen.WithLabelValues(k)
		m.alerts.WithLabelValues(k)
	}
	return m
}

// refresh sets the gauges from the database.
func (m *metrics) refresh(ctx context.Context) {
	for _, l := range m.a.logs {
		if s, err := m.a.st.Log(ctx, l.cfg.Origin); err == nil {
			m.treeSize.WithLabelValues(l.cfg.Origin).Set(float64(s.Size))
			m.verified.WithLabelValues(l.cfg.Origin).Set(float64(s.NextEntry))
		}
	}
	if c, err := m.a.st.RebuildCounts(ctx); err == nil {
		m.setRebuildCounts(c)
	}
	if c, err := m.a.st.OpenAlertCounts(ctx); err == nil {
		for _, k := range AlertKinds {
			m.alertsOpen.WithLabelValues(k).Set(float64(c[k]))
		}
	}
	if n, err := m.a.st.PendingDeliveries(ctx); err == nil {
		m.pending.Set(float64(n))
	}
}

// setRebuildCounts sets the releases-by-state gauges.
func (m *metrics) setRebuildCounts(c map[string]int64) {
	for _, s := range []string{store.RebuildQueued, store.RebuildRunning, store.RebuildReproduced, store.RebuildMismatch, store.RebuildFailed, store.RebuildOff} {
		m.rebuildQ.WithLabelValues(s).Set(float64(c[s]))
	}
}

// --- HTTP

// Status is the JSON of GET /status.
type Status struct {
	Logs        []LogStatus        `json:"logs"`
	Rebuilds    map[string]int64   `json:"rebuilds"` // releases by rebuild state
	Deployments []DeploymentStatus `json:"deployments"`
	OpenAlerts  map[string]int64   `json:"open_alerts"` // by kind
	Webhooks    int64              `json:"webhook_pending"`
}

// LogStatus is how far a log is followed.
type LogStatus struct {
	Origin string `json:"origin"`
	URL    string `json:"url"`
	// TreeSize is the size of the latest verified, consistent checkpoint.
	TreeSize int64 `json:"tree_size"`
	// Verified is the number of entries verified (all entries below it).
	Verified int64     `json:"verified"`
	Updated  time.Time `json:"updated,omitzero"`
}

// Status reports progress: logs, rebuilds, deployments, alerts.
func (a *Auditor) Status(ctx context.Context) (*Status, error) {
	s := &Status{}
	for _, l := range a.logs {
		ls := LogStatus{Origin: l.cfg.Origin, URL: l.cfg.URL}
		st, err := a.st.Log(ctx, l.cfg.Origin)
		if err == nil {
			ls.TreeSize, ls.Verified, ls.Updated = st.Size, st.NextEntry, st.Updated
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		s.Logs = append(s.Logs, ls)
	}
	var err error
	if s.Rebuilds, err = a.st.RebuildCounts(ctx); err != nil {
		return nil, err
	}
	if s.OpenAlerts, err = a.st.OpenAlertCounts(ctx); err != nil {
		return nil, err
	}
	if s.Webhooks, err = a.st.PendingDeliveries(ctx); err != nil {
		return nil, err
	}
	for _, d := range a.deps {
		d.mu.Lock()
		ds := d.last
		d.mu.Unlock()
		if ds.Name == "" {
			ds = DeploymentStatus{Name: d.cfg.Name, URL: d.cfg.URL}
		}
		s.Deployments = append(s.Deployments, ds)
	}
	sort.Slice(s.Deployments, func(i, j int) bool { return s.Deployments[i].Name < s.Deployments[j].Name })
	return s, nil
}

var originHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Handler serves:
//
//	GET /status                         progress, as JSON (Status)
//	GET /alerts                         the newest 1000 alerts, as JSON
//	                                    (?open=1: open ones only)
//	GET /logs/<hex SHA-256 of origin>/checkpoint
//	                                    the latest verified checkpoint of a
//	                                    log, for peer auditors
//	GET /metrics                        Prometheus metrics
func (a *Auditor) Handler() http.Handler {
	const maxAlertsServed = 1000
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			a.logger.Warn("http", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s, err := a.Status(r.Context())
		writeJSON(w, s, err)
	})
	mux.HandleFunc("GET /alerts", func(w http.ResponseWriter, r *http.Request) {
		// Bounded: 'attestlog alerts --db' lists every alert.
		var al []Alert
		var err error
		if r.URL.Query().Get("open") == "1" {
			al, _, err = a.st.AlertsPage(r.Context(), true, maxAlertsServed)
		} else {
			al, err = a.st.RecentAlerts(r.Context(), maxAlertsServed)
		}
		if al == nil {
			al = []Alert{}
		}
		writeJSON(w, al, err)
	})
	mux.HandleFunc("GET /logs/{originhash}/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		h := r.PathValue("originhash")
		if !originHashRE.MatchString(h) {
			http.Error(w, "not found: the path is /logs/<lowercase hex SHA-256 of the origin>/checkpoint", http.StatusNotFound)
			return
		}
		for _, l := range a.logs {
			if l.originHash != h {
				continue
			}
			st, err := a.st.Log(r.Context(), l.cfg.Origin)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(st.Checkpoint)
			return
		}
		http.Error(w, "this auditor has no verified checkpoint of that log", http.StatusNotFound)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	return http.MaxBytesHandler(mux, 8<<10)
}
