package store

import (
	"context"
	"testing"
	"time"
)

// TestDeploymentFailureRuns: failed polls in a row count up under the
// time of the first; an answer ends the run; deployments count apart.
func TestDeploymentFailureRuns(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 123, time.UTC)
	step := func(name string, at time.Time, wantSince time.Time, wantPolls int) {
		t.Helper()
		r, err := s.DeploymentFailed(ctx, name, at)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Since.Equal(wantSince) || r.Polls != wantPolls {
			t.Errorf("DeploymentFailed(%s, %v) = %+v, want since %v, %d polls", name, at, r, wantSince, wantPolls)
		}
	}
	step("a", t0, t0, 1)
	step("a", t0.Add(time.Minute), t0, 2)
	step("b", t0.Add(time.Minute), t0.Add(time.Minute), 1)
	step("a", t0.Add(2*time.Minute), t0, 3)
	if err := s.DeploymentAnswered(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeploymentAnswered(ctx, "never-failed"); err != nil {
		t.Fatal(err)
	}
	step("a", t0.Add(3*time.Minute), t0.Add(3*time.Minute), 1)
	step("b", t0.Add(3*time.Minute), t0.Add(time.Minute), 2)
}
