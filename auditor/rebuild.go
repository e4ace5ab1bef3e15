package auditor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/attestlog/attestlog/auditor/internal/rebuild"
	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/log/statement"
)

// rebuilder is the rebuild worker: it rebuilds queued releases one at a
// time, raises rebuild alerts, signs reproduction statements (stored
// before they are submitted) and submits them to their logs. It reaches
// the state database only through rebuildStore.
type rebuilder struct {
	st     rebuildStore
	alerts *alerter
	// metrics counts rebuilds and sets the releases-by-state gauges.
	metrics *metrics
	logger  *slog.Logger
	// enabled is rebuild.enabled; builder rebuilds; signer, when not
	// nil, signs reproductions, which are submitted through logs.
	enabled bool
	builder *rebuild.Builder
	signer  *statement.Signer
	logs    []*followedLog
	// requeued counts, per release (origin and index), how often a
	// rebuild was queued again because the store failed to record it.
	requeueMu sync.Mutex
	requeued  map[string]int
}

// maxRequeues bounds how often one release is queued again after the
// store failed to record its rebuild: past it, the release stays running
// until a restart (as any other failed rebuild does), so that a lasting
// store fault does not rebuild the same release on every pass ahead of
// every other.
const maxRequeues = 3

// rebuildStore is what the rebuild worker asks of the state database
// (the auditor's *store.Store implements it). No method takes a lock of
// the auditor's. Each write is one SQLite statement or transaction,
// durable when it returns, and none is retried beyond SQLite's busy
// timeout: the worker returns the error, and what the store holds decides
// what happens next (a claimed release is rebuilt again after a restart,
// a stored reproduction is submitted again).
type rebuildStore interface {
	alertStore
	// NextRebuild claims the oldest queued release, atomically marking it
	// running, and returns it; store.ErrNotFound when none is queued. It
	// is not idempotent: each call claims another. A release claimed and
	// never finished (a crash, an interrupted build) stays running until
	// the store's next opening queues it again (RequeueRunning, in Open);
	// the worker queues one whose outcome failed to record again itself
	// (HoldRebuild).
	NextRebuild(ctx context.Context) (*store.Release, error)
	// HoldRebuild records that a release was not rebuilt (state, with
	// why), keeping its entry: held unsandboxed until the next opening
	// queues it again, or queued again at once. It is idempotent.
	HoldRebuild(ctx context.Context, origin string, idx int64, state, detail string) error
	// FinishRebuild records a rebuild's outcome together with the signed
	// reproduction to submit (when not nil), in one statement, and drops
	// the logged entry. It is idempotent. On an error nothing is recorded:
	// the reproduction signed for it has not left the process and is
	// never submitted, and the worker queues the release again.
	FinishRebuild(ctx context.Context, origin string, idx int64, state, detail, rebuilt string, repro []byte) error
	// PendingReproductions returns the releases whose stored reproduction
	// is not yet recorded as logged.
	PendingReproductions(ctx context.Context) ([]store.Release, error)
	// SetReproIndex records where a release's reproduction was logged. It
	// is idempotent. Until it succeeds the reproduction stays pending and
	// is submitted again: the same bytes, which the log recognises as a
	// duplicate and answers with the same index.
	SetReproIndex(ctx context.Context, origin string, idx, reproIdx int64) error
	// RebuildCounts returns the number of releases in each rebuild state.
	RebuildCounts(ctx context.Context) (map[string]int64, error)
}

// countRequeue counts one more requeue of the release key, and says
// whether it is within maxRequeues.
func (rb *rebuilder) countRequeue(key string) bool {
	rb.requeueMu.Lock()
	defer rb.requeueMu.Unlock()
	if rb.requeued == nil {
		rb.requeued = map[string]int{}
	}
	if rb.requeued[key] >= maxRequeues {
		return false
	}
	rb.requeued[key]++
	return true
}

// refreshGauges sets the releases-by-state gauges from the store.
func (rb *rebuilder) refreshGauges(ctx context.Context) {
	if c, err := rb.st.RebuildCounts(ctx); err == nil {
		rb.metrics.setRebuildCounts(c)
	}
}

// rebuildQueued rebuilds queued releases, one at a time, until none is
// queued or ctx ends.
func (rb *rebuilder) rebuildQueued(ctx context.Context) error {
	if !rb.enabled {
		return nil
	}
	for ctx.Err() == nil {
		r, err := rb.st.NextRebuild(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rb.refreshGauges(ctx)
		if err := rb.rebuildOne(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // interrupted: it stays running and is requeued on restart
			}
			// The store failed to record its outcome (or its alert):
			// queued again for the next pass, not left running until a
			// restart, up to maxRequeues times. The reproduction signed
			// for it never left the process. (Any other failure, which
			// the release itself may cause every time, leaves it running
			// until a restart.)
			var re *recordError
			key := fmt.Sprintf("%s/%d", r.Origin, r.Index)
			if errors.As(err, &re) && rb.countRequeue(key) {
				if qerr := rb.st.HoldRebuild(ctx, r.Origin, r.Index, store.RebuildQueued, r.Detail); qerr != nil {
					return errors.Join(err, fmt.Errorf("requeueing the rebuild of entry %d: %w", r.Index, qerr))
				}
			}
			return err
		}
		rb.refreshGauges(ctx)
	}
	return ctx.Err()
}

// RebuildAlert is the evidence of rebuild-mismatch and rebuild-failed
// alerts.
type RebuildAlert struct {
	Log     string          `json:"log"`
	Index   int64           `json:"index"`
	Version string          `json:"version"`
	Logged  string          `json:"logged_measurement"`
	Result  *rebuild.Result `json:"result"`
}

func (rb *rebuilder) rebuildOne(ctx context.Context, r *store.Release) error {
	logger := rb.logger.With("origin", r.Origin, "index", r.Index)
	p, err := statement.Parse(r.Entry)
	if err != nil || p.Kind != statement.KindRelease {
		return notRecorded("recording the rebuild of entry "+strconv.FormatInt(r.Index, 10),
			rb.st.FinishRebuild(ctx, r.Origin, r.Index, store.RebuildFailed, fmt.Sprintf("stored entry unreadable: %v", err), "", nil))
	}
	logger.Info("rebuilding release", "version", p.Release.Version, "repo", p.Release.Source.Repo, "commit", p.Release.Source.Commit)
	res := rb.builder.Rebuild(ctx, fmt.Sprintf("%d-%s", r.Index, p.Release.Version), p.Release, p.Statement.Subject)
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: it stays running and is requeued on restart
	}
	rb.metrics.rebuilds.WithLabelValues(res.Outcome).Inc()
	logger.Info("rebuild finished", "outcome", res.Outcome, "duration", res.Duration, "summary", res.Summary())
	ev := RebuildAlert{Log: r.Origin, Index: r.Index, Version: p.Release.Version, Logged: r.Measurement, Result: res}
	subject := fmt.Sprintf("log/%s/entry/%d", r.Origin, r.Index)
	var state string
	switch res.Outcome {
	case rebuild.Unsandboxed:
		// Nothing ran and nothing is signed; the release stays queued for
		// the next start (with a working sandbox).
		if err := rb.alerts.raise(ctx, rb.st, AlertRebuildUnsandboxed, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) was not rebuilt: %s", p.Release.Version, r.Index, res.Reason), ev); err != nil {
			return err
		}
		return notRecorded("recording the rebuild of entry "+strconv.FormatInt(r.Index, 10),
			rb.st.HoldRebuild(ctx, r.Origin, r.Index, store.RebuildUnsandboxed, res.Summary()))
	case rebuild.Reproduced:
		state = store.RebuildReproduced
	case rebuild.Mismatch:
		state = store.RebuildMismatch
		if err := rb.alerts.raise(ctx, rb.st, AlertRebuildMismatch, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) does not rebuild to its logged values: %s", p.Release.Version, r.Index, res.Summary()), ev); err != nil {
			return err
		}
	default:
		state = store.RebuildFailed
		if err := rb.alerts.raise(ctx, rb.st, AlertRebuildFailed, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) could not be rebuilt: %s", p.Release.Version, r.Index, res.Reason), ev); err != nil {
			return err
		}
	}
	var repro []byte
	if rb.signer != nil && state != store.RebuildFailed {
		outcome := statement.OutcomeMatch
		if state == store.RebuildMismatch {
			outcome = statement.OutcomeMismatch
		}
		payload, err := statement.EncodeReproduction(statement.RefOf(uint64(r.Index), r.Entry), &statement.Reproduction{
			Outcome: outcome, Time: time.Now().UTC().Truncate(time.Second), Measurements: res.Measurements, Detail: res.Summary(),
			Unsandboxed: !res.Sandboxed,
		})
		if err != nil {
			return fmt.Errorf("encoding reproduction of entry %d: %w", r.Index, err)
		}
		// The signed statement is stored before it is submitted, so that a
		// retry after a crash submits the same bytes (which the log
		// recognises as a duplicate) instead of signing again.
		if repro, err = statement.Sign(payload, rb.signer); err != nil {
			return err
		}
	}
	return notRecorded("recording the rebuild of entry "+strconv.FormatInt(r.Index, 10),
		rb.st.FinishRebuild(ctx, r.Origin, r.Index, state, res.Summary(), res.Measurements.Primary(), repro))
}

// submitReproductions submits the signed reproductions not yet logged.
func (rb *rebuilder) submitReproductions(ctx context.Context) error {
	if rb.signer == nil {
		return nil
	}
	pending, err := rb.st.PendingReproductions(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range pending {
		var l *followedLog
		for _, fl := range rb.logs {
			if fl.cfg.Origin == r.Origin {
				l = fl
			}
		}
		if l == nil {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := l.client.Add(actx, r.ReproEntry)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("submitting reproduction of entry %d to %s: %w", r.Index, r.Origin, err))
			continue
		}
		if err := rb.st.SetReproIndex(ctx, r.Origin, r.Index, int64(res.Index)); err != nil {
			return err
		}
		rb.logger.Info("reproduction logged", "origin", r.Origin, "release", r.Index, "index", res.Index, "duplicate", res.Duplicate)
	}
	return errors.Join(errs...)
}
