package store

import (
	"context"
	"time"
)

// deploymentSchema holds each watched deployment's current run of failed
// polls (none while it answers).
const deploymentSchema = `
CREATE TABLE IF NOT EXISTS deployment_failures (
	name  TEXT PRIMARY KEY,
	since TEXT NOT NULL,    -- the run's first failed poll (RFC 3339)
	polls INTEGER NOT NULL  -- failed polls in a row
);
`

// FailureRun is a deployment's run of failed polls in a row.
type FailureRun struct {
	// Since is the time of the run's first failed poll: it names the run
	// (an alert about it is keyed on it), across restarts.
	Since time.Time
	// Polls is how many polls in a row failed.
	Polls int
}

// DeploymentFailed counts a failed poll of deployment name at t,
// atomically: it extends the deployment's run of failures, or starts one
// at t, and returns it.
func (s *Store) DeploymentFailed(ctx context.Context, name string, t time.Time) (FailureRun, error) {
	var since string
	var r FailureRun
	err := s.db.QueryRowContext(ctx, `INSERT INTO deployment_failures (name, since, polls) VALUES (?, ?, 1)
		ON CONFLICT (name) DO UPDATE SET polls = polls + 1 RETURNING since, polls`,
		name, t.UTC().Format(time.RFC3339Nano)).Scan(&since, &r.Polls)
	if err != nil {
		return FailureRun{}, err
	}
	r.Since, err = time.Parse(time.RFC3339Nano, since)
	return r, err
}

// DeploymentAnswered ends deployment name's run of failed polls, if any:
// the next failure starts a new one.
func (s *Store) DeploymentAnswered(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM deployment_failures WHERE name = ?`, name)
	return err
}
