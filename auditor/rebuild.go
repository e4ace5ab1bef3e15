package auditor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attestlog/attestlog/auditor/internal/rebuild"
	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/log/statement"
)

// rebuildQueued rebuilds queued releases, one at a time, until none is
// queued or ctx ends.
func (a *Auditor) rebuildQueued(ctx context.Context) error {
	if !*a.cfg.Rebuild.Enabled {
		return nil
	}
	for ctx.Err() == nil {
		r, err := a.st.NextRebuild(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		a.metrics.refreshRebuilds(ctx)
		if err := a.rebuildOne(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		a.metrics.refreshRebuilds(ctx)
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

func (a *Auditor) rebuildOne(ctx context.Context, r *store.Release) error {
	logger := a.logger.With("origin", r.Origin, "index", r.Index)
	p, err := statement.Parse(r.Entry)
	if err != nil || p.Kind != statement.KindRelease {
		return a.st.FinishRebuild(ctx, r.Origin, r.Index, store.RebuildFailed, fmt.Sprintf("stored entry unreadable: %v", err), "", nil)
	}
	logger.Info("rebuilding release", "version", p.Release.Version, "repo", p.Release.Source.Repo, "commit", p.Release.Source.Commit)
	res := a.builder.Rebuild(ctx, fmt.Sprintf("%d-%s", r.Index, p.Release.Version), p.Release, p.Statement.Subject)
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: it stays running and is requeued on restart
	}
	a.metrics.rebuilds.WithLabelValues(res.Outcome).Inc()
	logger.Info("rebuild finished", "outcome", res.Outcome, "duration", res.Duration, "summary", res.Summary())
	ev := RebuildAlert{Log: r.Origin, Index: r.Index, Version: p.Release.Version, Logged: r.Measurement, Result: res}
	subject := fmt.Sprintf("log/%s/entry/%d", r.Origin, r.Index)
	var state string
	switch res.Outcome {
	case rebuild.Unsandboxed:
		// Nothing ran and nothing is signed; the release stays queued for
		// the next start (with a working sandbox).
		if err := a.raise(ctx, AlertRebuildUnsandboxed, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) was not rebuilt: %s", p.Release.Version, r.Index, res.Reason), ev); err != nil {
			return err
		}
		return a.st.HoldRebuild(ctx, r.Origin, r.Index, store.RebuildUnsandboxed, res.Summary())
	case rebuild.Reproduced:
		state = store.RebuildReproduced
	case rebuild.Mismatch:
		state = store.RebuildMismatch
		if err := a.raise(ctx, AlertRebuildMismatch, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) does not rebuild to its logged values: %s", p.Release.Version, r.Index, res.Summary()), ev); err != nil {
			return err
		}
	default:
		state = store.RebuildFailed
		if err := a.raise(ctx, AlertRebuildFailed, fmt.Sprintf("%s|%d", r.Origin, r.Index), subject,
			fmt.Sprintf("release %s (entry %d) could not be rebuilt: %s", p.Release.Version, r.Index, res.Reason), ev); err != nil {
			return err
		}
	}
	var repro []byte
	if a.signer != nil && state != store.RebuildFailed {
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
		if repro, err = statement.Sign(payload, a.signer); err != nil {
			return err
		}
	}
	return a.st.FinishRebuild(ctx, r.Origin, r.Index, state, res.Summary(), res.Measurements.Primary(), repro)
}

// submitReproductions submits the signed reproductions not yet logged.
func (a *Auditor) submitReproductions(ctx context.Context) error {
	if a.signer == nil {
		return nil
	}
	pending, err := a.st.PendingReproductions(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range pending {
		var l *followedLog
		for _, fl := range a.logs {
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
		if err := a.st.SetReproIndex(ctx, r.Origin, r.Index, int64(res.Index)); err != nil {
			return err
		}
		a.logger.Info("reproduction logged", "origin", r.Origin, "release", r.Index, "index", res.Index, "duplicate", res.Duplicate)
	}
	return errors.Join(errs...)
}
