package auditor

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// alerter raises alerts for the parts of the auditor, each in the store
// it reaches through its own interface (which includes alertStore): it
// records the alert with its webhook deliveries, then logs and counts it
// if it is new. Delivery to webhooks goes through the outbox (http.go).
type alerter struct {
	webhooks []string // the URLs of every configured webhook
	logger   *slog.Logger
	raised   *prometheus.CounterVec // alerts_total, by kind
}

// alertStore is what raising an alert asks of the state database (the
// auditor's *store.Store implements it).
type alertStore interface {
	// RaiseAlert records al, with one undelivered outbox row per webhook
	// URL, in one transaction, unless an alert with al.Key exists (open
	// or closed): it is idempotent by key, reporting true (and setting
	// al.ID) only for the call that recorded it. On an error nothing is
	// recorded; it is not retried beyond SQLite's busy timeout, and the
	// caller returns the error: every alert's key is derived from the
	// condition it reports, which the next pass finds again and raises
	// then. It takes no lock of the auditor's.
	RaiseAlert(ctx context.Context, al *Alert, webhooks []string) (bool, error)
}

// raise records an alert in st unless one with the same key exists, and
// then logs it and counts it.
func (al *alerter) raise(ctx context.Context, st alertStore, kind, key, subject, summary string, evidence any) error {
	a := &Alert{Key: kind + "|" + key, Kind: kind, Subject: subject, Time: time.Now().UTC(), Summary: summary}
	if evidence != nil {
		b, err := json.Marshal(evidence)
		if err != nil {
			return err
		}
		a.Evidence = b
	}
	isNew, err := st.RaiseAlert(ctx, a, al.webhooks)
	if err != nil {
		return notRecorded("recording alert", err)
	}
	if !isNew {
		return nil
	}
	al.logger.Error("ALERT", "kind", kind, "subject", subject, "summary", summary, "alert_id", a.ID)
	al.raised.WithLabelValues(kind).Inc()
	return nil
}

// recordError is the store's failure to record something (an alert, an
// outcome): nothing of it was recorded, and trying again may succeed.
type recordError struct {
	what string
	err  error
}

func (e *recordError) Error() string { return e.what + ": " + e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// notRecorded returns err (nil if nil) as a recordError saying what was
// not recorded.
func notRecorded(what string, err error) error {
	if err == nil {
		return nil
	}
	return &recordError{what, err}
}
