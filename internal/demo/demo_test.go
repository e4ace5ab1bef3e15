package demo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/statement"
)

// TestBuildReproducesOutputs runs the demo repository's build as the
// auditor would (a clone, only the recipe's environment) and checks it
// writes exactly the outputs the release names, and that the release
// file is one the log accepts.
func TestBuildReproducesOutputs(t *testing.T) {
	git := testenv.LookPath(t, "git")
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Create is idempotent: the same commit again.
	r2, err := Create(dir)
	if err != nil || r2.Commit != r.Commit || r2.Measurement != r.Measurement {
		t.Fatalf("second Create = %+v, %v; want the same release", r2, err)
	}
	work := filepath.Join(dir, "work")
	if out, err := exec.Command(git, "clone", "-q", strings.TrimPrefix(r.Repo, "file://"), work).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	cmd := exec.Command("sh", "build.sh")
	cmd.Dir, cmd.Env = work, []string{"PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=" + epoch, "CMDLINE=" + cmdline}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for name, want := range r.Outputs {
		got, err := os.ReadFile(filepath.Join(work, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("build output %s differs from the release's (%v)", name, err)
		}
	}
	y := r.YAML("0.1.0", "2026-11-26T12:00:00Z")
	subj, rel, err := statement.ParseReleaseSpec([]byte(y), "", time.Now())
	if err != nil {
		t.Fatalf("release YAML: %v\n%s", err, y)
	}
	if rel.Measurements.SNP.LaunchDigest != r.Measurement || len(subj) != 4 || rel.Source.Commit != r.Commit {
		t.Errorf("release YAML parsed to %+v, %+v", rel, subj)
	}
}
