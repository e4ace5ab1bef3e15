package rebuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSandbox measures what the sandbox costs a benign build: the
// same recipe in the same checked-out tree, run bare (sh on the host, no
// limits) and as the auditor runs it (bubblewrap as the build user, its
// cgroup, rlimits, the watcher), for a build that only copies the firmware
// and for one that hashes 256 MiB. Compare each pair's ns/op:
//
//	go test -run '^$' -bench BenchmarkSandbox -benchtime 20x ./auditor/internal/rebuild
func BenchmarkSandbox(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("no bubblewrap")
	}
	repo := newRepo(b, map[string]string{"hash.sh": "head -c 268435456 /dev/zero | sha256sum > out.txt\n"})
	bl := &Builder{Sandbox: SandboxRequired, Bwrap: "bwrap", Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30,
		Limits:  Limits{Memory: 1 << 30, Processes: 1024, Disk: 1 << 30, CPUTime: time.Minute},
		WorkDir: filepath.Join(os.TempDir(), "attestlog-bench-sandbox"), RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin"}
	defer os.RemoveAll(bl.WorkDir)
	if _, err := bl.CheckSandbox(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("sandbox: %s", bl.Enforcement())
	for _, recipe := range []struct{ name, script string }{{"copy", "build-ok.sh"}, {"hash256MiB", "hash.sh"}} {
		for _, mode := range []string{"bare", "sandbox"} {
			b.Run(recipe.name+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					work, err := bl.workDir("bench")
					if err != nil {
						b.Fatal(err)
					}
					src := filepath.Join(work, "src")
					if err := bl.fetch(b.Context(), repo.rel.Source, src, os.TempDir()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if mode == "bare" {
						cmd := exec.Command("sh", recipe.script)
						cmd.Dir, cmd.Env = src, []string{"PATH=" + bl.Path, "HOME=" + work, "LC_ALL=C"}
						if out, err := cmd.CombinedOutput(); err != nil {
							b.Fatalf("%v: %s", err, out)
						}
					} else if out, err := bl.exec(b.Context(), true, []string{"sh", recipe.script}, nil, work, src); err != nil {
						b.Fatalf("%v: %s", err, out)
					}
					b.StopTimer()
					os.RemoveAll(work)
					b.StartTimer()
				}
			})
		}
	}
}
