package rebuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/statement"
)

func builder(t *testing.T, sandbox string) *Builder {
	t.Helper()
	if sandbox == SandboxRequired {
		testenv.LookPath(t, "bwrap")
	}
	b := &Builder{Sandbox: sandbox, Bwrap: "bwrap", Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30,
		WorkDir: t.TempDir(), RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin"}
	if _, err := b.CheckSandbox(t.Context()); err != nil {
		testenv.Missing(t, "a working bubblewrap", err)
	}
	return b
}

func runIn(t *testing.T, b *Builder, argv ...string) (string, error) {
	t.Helper()
	work := t.TempDir()
	src := filepath.Join(work, "src")
	os.MkdirAll(filepath.Join(work, "home"), 0o700)
	os.Mkdir(src, 0o755)
	return b.run(t.Context(), statement.Recipe{Argv: argv, Env: map[string]string{"RECIPE_VAR": "1"}}, work, src)
}

func TestSandbox(t *testing.T) {
	for _, mode := range []string{SandboxRequired, SandboxOff} {
		t.Run(mode, func(t *testing.T) {
			b := builder(t, mode)
			t.Setenv("AUDITOR_SECRET", "leak")
			out, err := runIn(t, b, "sh", "-c", "env")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				n, _, _ := strings.Cut(l, "=")
				names = append(names, n)
			}
			for _, n := range names {
				switch n {
				case "PATH", "HOME", "TMPDIR", "LC_ALL", "RECIPE_VAR", "PWD", "SHLVL", "_":
				default:
					t.Errorf("build environment has %s (all: %v)", n, names)
				}
			}
			if _, err := runIn(t, b, "sh", "-c", "yes | head -c 100000"); err != nil {
				t.Errorf("100000 bytes of output with max_log %d: %v", b.MaxLog, err)
			}
			b.MaxLog = 1000
			if _, err := runIn(t, b, "sh", "-c", "yes | head -c 100000"); err == nil || !strings.Contains(err.Error(), "more than 1000 bytes") {
				t.Errorf("output beyond max_log: err = %v, want the limit", err)
			}
			b.Timeout = time.Second
			if _, err := runIn(t, b, "sleep", "60"); err == nil || !strings.Contains(err.Error(), "did not finish") {
				t.Errorf("sleep 60 with a 1s timeout: err = %v", err)
			}
		})
	}
	t.Run("no network", func(t *testing.T) {
		b := builder(t, SandboxRequired)
		out, err := runIn(t, b, "cat", "/proc/net/dev")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n")[2:] {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "lo:") {
				t.Errorf("network interface in the sandbox: %s", l)
			}
		}
		if _, err := runIn(t, b, "sh", "-c", "ls /root /etc/shadow"); err == nil {
			t.Errorf("the sandbox can read /root and /etc/shadow")
		}
	})
}
