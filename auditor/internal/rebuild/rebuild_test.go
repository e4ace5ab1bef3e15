package rebuild

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/measure/snp"
)

// workDir is a directory for builds that the build user can reach (as
// rebuild.work_dir must be when the auditor runs as root).
func workDir(t *testing.T) string {
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o711)
	}
	return d
}

// newBuilder is a builder of the tests' limits, not yet checked.
func newBuilder(t *testing.T, sandbox string) *Builder {
	t.Helper()
	if sandbox == SandboxRequired {
		testenv.LookPath(t, "bwrap")
	}
	return &Builder{Sandbox: sandbox, Bwrap: "bwrap", Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30,
		Limits:  Limits{Memory: 1 << 30, Processes: 1024, Disk: 1 << 30, CPUTime: time.Minute},
		WorkDir: workDir(t), RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin"}
}

func builder(t *testing.T, sandbox string) *Builder {
	t.Helper()
	b := newBuilder(t, sandbox)
	if _, err := b.CheckSandbox(t.Context()); err != nil {
		testenv.Missing(t, "a working bubblewrap", err)
	}
	t.Logf("sandbox: %s", b.Enforcement())
	return b
}

// runIn runs argv as a build of b in a fresh directory, with env as the
// recipe's environment, and returns its log.
func runIn(t *testing.T, b *Builder, env map[string]string, argv ...string) (string, error) {
	t.Helper()
	work := workDir(t) // a build on the host must reach it
	src := filepath.Join(work, "src")
	os.Mkdir(src, 0o755)
	return b.exec(t.Context(), b.useBwrap, argv, env, work, src)
}

func TestSandbox(t *testing.T) {
	for _, mode := range []string{SandboxRequired, SandboxOff} {
		t.Run(mode, func(t *testing.T) {
			b := builder(t, mode)
			t.Setenv("AUDITOR_SECRET", "leak")
			out, err := runIn(t, b, map[string]string{"RECIPE_VAR": "1"}, "sh", "-c", "env")
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
			if !strings.Contains(out, "RECIPE_VAR=1") {
				t.Errorf("the recipe's variable did not reach the build: %v", names)
			}
			if _, err := runIn(t, b, nil, "sh", "-c", "yes | head -c 100000"); err != nil {
				t.Errorf("100000 bytes of output with max_log %d: %v", b.MaxLog, err)
			}
			b.MaxLog = 1000
			if _, err := runIn(t, b, nil, "sh", "-c", "yes | head -c 100000"); err == nil || !strings.Contains(err.Error(), "more than 1000 bytes") {
				t.Errorf("output beyond max_log: err = %v, want the limit", err)
			}
			b.Timeout = time.Second
			if _, err := runIn(t, b, nil, "sleep", "60"); err == nil || !strings.Contains(err.Error(), "did not finish") {
				t.Errorf("sleep 60 with a 1s timeout: err = %v", err)
			}
		})
	}
	t.Run("isolation", func(t *testing.T) {
		b := builder(t, SandboxRequired)
		out, err := runIn(t, b, nil, "sh", "-c", "cat /proc/net/dev; echo; id -u; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; ls /etc | sort | tr '\\n' ' '")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out, "\n")
		for _, l := range lines[2:] {
			if l = strings.TrimSpace(l); strings.Contains(l, ":") && !strings.HasPrefix(l, "lo:") && !strings.HasPrefix(l, "Cap") {
				t.Errorf("network interface in the sandbox: %s", l)
			}
		}
		if !strings.Contains(out, "\n"+sandboxUID+"\n") {
			t.Errorf("the build does not run as uid %s:\n%s", sandboxUID, out)
		}
		for _, c := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if !strings.Contains(out, c+":\t0000000000000000") {
				t.Errorf("the build has capabilities (%s):\n%s", c, out)
			}
		}
		for _, f := range []string{"shadow", "hostname", "ssh", "hosts "} {
			if strings.Contains(out, " "+f) {
				t.Errorf("/etc/%s is visible in the sandbox:\n%s", f, out)
			}
		}
		if _, err := runIn(t, b, nil, "sh", "-c", "ls /root /etc/shadow"); err == nil {
			t.Errorf("the sandbox can read /root and /etc/shadow")
		}
		// A nested user namespace would give the build capabilities over
		// its own mounts.
		if out, err := runIn(t, b, nil, "sh", "-c", "unshare -U -r true && echo NESTED"); err == nil || strings.Contains(out, "NESTED") {
			t.Errorf("the build can make a user namespace: %v\n%s", err, out)
		}
	})
}

// TestRecipeEnvRefused: a recipe may not set what changes loading or the
// sandbox, at admission (statement validation) and in the builder.
func TestRecipeEnvRefused(t *testing.T) {
	for _, k := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_CHECK_", "PATH", "HOME", "TMPDIR", "1BAD", "A-B"} {
		err := statement.CheckRecipeEnv("recipe.env", map[string]string{"SOURCE_DATE_EPOCH": "1", k: "x"})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("CheckRecipeEnv(%s) = %v, want an error naming it", k, err)
		}
	}
	if err := statement.CheckRecipeEnv("recipe.env", map[string]string{"SOURCE_DATE_EPOCH": "1", "CFLAGS": "-O2"}); err != nil {
		t.Errorf("CheckRecipeEnv(SOURCE_DATE_EPOCH, CFLAGS) = %v, want nil", err)
	}
}

// firmwareFile is the firmware the test releases build (a copy when the
// test runs itself as another user).
var firmwareFile = cmp.Or(os.Getenv("ATTESTLOG_TEST_FIRMWARE"), "../../../policy/measure/snp/testdata/ovmf_AmdSev_suffix.bin")

// hostileRepo is a git repository of a release whose build.sh is script,
// with a benign build (build-ok.sh) beside it that reproduces rel.
type hostileRepo struct {
	dir, commit string
	rel         *statement.Release
	subjects    []statement.Subject
}

func newRepo(t testing.TB, files map[string]string) *hostileRepo {
	t.Helper()
	testenv.LookPath(t, "git")
	fw, err := os.ReadFile(firmwareFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "repo")
	files["fw.bin"] = string(fw)
	files["build-ok.sh"] = "set -eu\nmkdir -p out\ncp fw.bin out/fw.fd\n"
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	run("add", ".")
	run("commit", "-q", "-m", "release")
	parsed, err := snp.ParseFirmware(fw)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := snp.LaunchDigest(parsed, snp.Config{VCPUs: 1, GuestFeatures: snp.DefaultGuestFeatures})
	if err != nil {
		t.Fatal(err)
	}
	r := &hostileRepo{dir: dir, commit: run("rev-parse", "HEAD")}
	r.rel = &statement.Release{
		Platform:     statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: hex.EncodeToString(ld[:])}},
		Source:       statement.Source{Repo: "file://" + dir, Commit: r.commit},
		Recipe:       statement.Recipe{Argv: []string{"sh", "build-ok.sh"}, Outputs: []string{"out/fw.fd"}, Measure: &statement.MeasureInputs{Firmware: "out/fw.fd"}},
	}
	return r
}

// with is rel building with argv instead.
func (r *hostileRepo) with(argv ...string) *statement.Release {
	rel := *r.rel
	rel.Recipe.Argv = argv
	return &rel
}

// auditorState is a directory like an auditor's: its key and database.
func auditorState(t *testing.T) (dir string, key []byte) {
	dir = t.TempDir()
	key = []byte("AUDITOR-PRIVATE-KEY-" + hex.EncodeToString([]byte(t.Name())))
	if err := os.WriteFile(filepath.Join(dir, "auditor.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "auditor.db"), []byte("db"), 0o600)
	return dir, key
}

// TestHostileRecipes rebuilds releases whose recipes attack the auditor,
// each from a real git repository in real bubblewrap, and checks that
// nothing reaches the host and every limit stops its build and is named.
// As root it also runs itself as an unprivileged user with a delegated
// cgroup (TestHostileRecipesUnprivileged).
func TestHostileRecipes(t *testing.T) {
	b := builder(t, SandboxRequired)
	if os.Getenv("ATTESTLOG_TEST_UNPRIVILEGED") == "1" {
		if os.Geteuid() == 0 || !strings.Contains(b.Enforcement(), "cgroup") {
			t.Fatalf("the unprivileged run is root (%d) or has no delegated cgroup: %s", os.Geteuid(), b.Enforcement())
		}
	}
	hostileRecipes(t, b, true)
}

// TestHostileRecipesRlimits: where no cgroup can be made, rlimits and the
// watcher's polling of /proc stop the same builds.
func TestHostileRecipesRlimits(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	b := &Builder{Sandbox: SandboxRequired, Bwrap: "bwrap", Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30,
		Limits:  Limits{Memory: 1 << 30, Processes: 1024, Disk: 1 << 30, CPUTime: time.Minute},
		WorkDir: workDir(t), RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin", noCgroup: true}
	if _, err := b.CheckSandbox(t.Context()); err != nil {
		testenv.Missing(t, "a working bubblewrap", err)
	}
	if !strings.Contains(b.Enforcement(), "rlimits") {
		t.Fatalf("enforcement %q, want rlimits", b.Enforcement())
	}
	hostileRecipes(t, b, false)
}

// TestHostileRecipesUnprivileged runs TestHostileRecipes again as an
// unprivileged user (the auditor not root), in a cgroup delegated to it
// as systemd's Delegate=yes would: the builder makes its builds' groups
// below its own.
func TestHostileRecipesUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: TestHostileRecipes is this run")
	}
	testenv.LookPath(t, "bwrap")
	u := DefaultUser
	// Delegate a group of each v1 controller (or the v2 group) to u.
	mounts, own := cgroupMounts(), ownCgroups()
	name := fmt.Sprintf("attestlog-delegated-%d", os.Getpid())
	var groups []string
	for _, c := range []string{"memory", "pids", "cpuacct"} {
		d, ok := groupDir(mounts, own, c)
		if !ok {
			continue
		}
		g := filepath.Join(d, name)
		if err := os.Mkdir(g, 0o755); err != nil {
			testenv.Missing(t, "a cgroup to delegate", err)
		}
		groups = append(groups, g)
		defer os.Remove(g)
		if err := chownTree(g, u); err != nil {
			t.Fatal(err)
		}
	}
	if len(groups) < 2 {
		testenv.Missing(t, "cgroup v1 memory and pids hierarchies", fmt.Errorf("found %v", groups))
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := selfAs(t, u, []string{"/bin/sh", "-c", gateScript, "gate"}, "^TestHostileRecipes$")
	cmd.ExtraFiles = []*os.File{gateR}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if err := os.WriteFile(filepath.Join(g, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
	}
	gateR.Close()
	gateW.Write([]byte("go\n"))
	gateW.Close()
	err = cmd.Wait()
	t.Logf("as uid %d:\n%s", u.UID, out.String())
	if err != nil || !strings.Contains(out.String(), "--- PASS: TestHostileRecipes ") {
		t.Errorf("TestHostileRecipes as uid %d: %v", u.UID, err)
	}
}

// selfAs is a command that runs the tests matching run of a copy of this
// test binary (beside a copy of the test firmware, where u can reach
// both) as u, under wrap (an argv the binary's path and arguments are
// appended to), with ATTESTLOG_STRICT=1 and ATTESTLOG_TEST_UNPRIVILEGED=1.
func selfAs(t *testing.T, u Credential, wrap []string, run string) *exec.Cmd {
	t.Helper()
	dir := workDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, fw := filepath.Join(dir, "rebuild.test"), filepath.Join(dir, "fw.bin")
	for _, c := range [][2]string{{exe, bin}, {firmwareFile, fw}} {
		b, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c[1], b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	argv := append(append(slices.Clone(wrap), bin), "-test.run", run, "-test.v", "-test.count=1")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "ATTESTLOG_STRICT=1",
		"ATTESTLOG_TEST_UNPRIVILEGED=1", "ATTESTLOG_TEST_FIRMWARE=" + fw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}}
	return cmd
}

// hostileRecipes runs the attacks against b; cgroup says whether b names
// the memory and process limits (with a cgroup) or only stops the build
// (RLIMIT_NPROC and a per-process address-space rlimit fail the fork or
// the allocation, which the error then says may be a limit).
func hostileRecipes(t *testing.T, b *Builder, cgroup bool) {
	state, key := auditorState(t)
	hostMarker := filepath.Join(t.TempDir(), "ran-on-host")
	files := map[string]string{
		"escape.sh": fmt.Sprintf(`
mount -o remount,bind,rw /usr 2>&1 && echo REMOUNTED
touch /usr/attestlog-pwned 2>&1 && echo WROTE-USR
touch /etc/attestlog-pwned 2>&1 && echo WROTE-ETC
touch %[1]s/pwned 2>&1 && echo WROTE-STATE
cat %[1]s/auditor.key 2>&1
cat ../../../auditor.key ../../../../auditor.key ../auditor.key 2>&1
for d in /proc/1/root /proc/self/root/..; do cat $d%[1]s/auditor.key 2>&1; done
ls -la / /proc/self/fd 2>&1
exit 1
`, state),
		"net.sh":    "bash -c 'echo hello > /dev/tcp/127.0.0.1/$1' 2>&1 && echo CONNECTED\nexit 1\n",
		"fork.sh":   "i=0; while [ $i -lt 5000 ]; do sleep 60 & i=$((i+1)); done; wait\n",
		"memory.sh": "head -c $1 /dev/zero | tail\n",
		"disk.sh":   "head -c $1 /dev/zero > big\n",
		"tmp.sh":    "head -c $1 /dev/zero > /tmp/a; head -c $1 /dev/zero > b\n",
		"spin.sh":   "while :; do :; done\n",
		"preload.c": fmt.Sprintf(`#include <stdio.h>
__attribute__((constructor)) static void pwn(void) {
	FILE *f = fopen(%q, "w"); if (f) { fputs("host", f); fclose(f); }
	f = fopen("/build/ran-inside", "w"); if (f) { fputs("inside", f); fclose(f); }
}
`, hostMarker),
	}
	// The release commits a preload library built from preload.c.
	cc := testenv.LookPath(t, "cc")
	so := filepath.Join(t.TempDir(), "x.so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-o", so, "-x", "c", "-")
	cmd.Stdin = strings.NewReader(files["preload.c"])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	soBytes, _ := os.ReadFile(so)
	files["x.so"] = string(soBytes)
	repo := newRepo(t, files)

	check := func(t *testing.T, res *Result) {
		t.Helper()
		j, _ := json.Marshal(res)
		if bytes.Contains(j, key) {
			t.Errorf("the auditor's key is in the result: %s", j)
		}
	}

	t.Run("benign", func(t *testing.T) {
		res := b.Rebuild(t.Context(), "benign", repo.rel, nil)
		if res.Outcome != Reproduced || !res.Sandboxed {
			t.Fatalf("benign rebuild = %s (sandboxed %v): %s\n%s", res.Outcome, res.Sandboxed, res.Summary(), res.BuildOutput)
		}
	})

	t.Run("LD_PRELOAD", func(t *testing.T) {
		rel := repo.with("sh", "-c", "cat ran-inside")
		rel.Recipe.Env = map[string]string{"LD_PRELOAD": "/build/x.so"}
		res := b.Rebuild(t.Context(), "preload", rel, nil)
		if res.Outcome != Failed || !strings.Contains(res.Reason, "LD_PRELOAD") {
			t.Errorf("Rebuild with LD_PRELOAD = %s: %s, want a failure naming LD_PRELOAD", res.Outcome, res.Reason)
		}
		// Forced past admission and the builder's own check: the library
		// loads inside the sandbox only.
		for _, env := range []map[string]string{{"LD_PRELOAD": "/build/x.so"}, {"LD_PRELOAD": "x.so", "LD_LIBRARY_PATH": "/build"}} {
			work, err := b.workDir("forced")
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(work, "src")
			if err := b.fetch(t.Context(), rel.Source, src, t.TempDir()); err != nil {
				t.Fatal(err)
			}
			out, err := b.exec(t.Context(), true, []string{"sh", "-c", "cat /build/ran-inside"}, env, work, src)
			if _, serr := os.Stat(hostMarker); serr == nil {
				t.Fatalf("%v: the release's library ran on the host (marker %s exists)", env, hostMarker)
			}
			if err != nil || !strings.Contains(out, "inside") {
				t.Errorf("%v: the library did not even run inside the sandbox (%v): %s", env, err, out)
			}
		}
	})

	t.Run("escape", func(t *testing.T) {
		res := b.Rebuild(t.Context(), "escape", repo.with("sh", "escape.sh"), nil)
		check(t, res)
		if res.Outcome != Failed {
			t.Fatalf("escape.sh: %s", res.Outcome)
		}
		for _, s := range []string{"REMOUNTED", "WROTE-USR", "WROTE-ETC", "WROTE-STATE"} {
			if strings.Contains(res.BuildOutput, s) {
				t.Errorf("the build could %s:\n%s", s, res.BuildOutput)
			}
		}
		for _, p := range []string{"/usr/attestlog-pwned", "/etc/attestlog-pwned", filepath.Join(state, "pwned")} {
			if _, err := os.Stat(p); err == nil {
				os.Remove(p)
				t.Errorf("the build wrote %s on the host", p)
			}
		}
		if !strings.Contains(res.BuildOutput, "No such file") {
			t.Errorf("build output has no sign the reads were tried:\n%s", res.BuildOutput)
		}
	})

	t.Run("network", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		conns := make(chan net.Conn, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				conns <- c
			}
		}()
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		res := b.Rebuild(t.Context(), "net", repo.with("sh", "net.sh", port), nil)
		if strings.Contains(res.BuildOutput, "CONNECTED") {
			t.Errorf("the build connected to 127.0.0.1:%s:\n%s", port, res.BuildOutput)
		}
		select {
		case c := <-conns:
			c.Close()
			t.Errorf("a connection from the build arrived at the test's listener")
		case <-time.After(200 * time.Millisecond):
		}
		// The same command does connect from the host, so the test can fail.
		out, err := exec.Command("bash", "-c", "echo hello > /dev/tcp/127.0.0.1/"+port).CombinedOutput()
		if err != nil {
			t.Fatalf("from the host: %v %s", err, out)
		}
		select {
		case c := <-conns:
			c.Close()
		case <-time.After(5 * time.Second):
			t.Errorf("the listener accepts nothing even from the host")
		}
	})

	limits := []struct {
		name, limit string
		set         func(l *Limits)
		argv        []string
	}{
		{"5000 processes", LimitProcesses, func(l *Limits) { l.Processes = 1024 }, []string{"sh", "fork.sh"}},
		{"2x memory", LimitMemory, func(l *Limits) { l.Memory = 64 << 20 }, []string{"sh", "memory.sh", "128m"}},
		{"disk in the tree", LimitDisk, func(l *Limits) { l.Disk = 16 << 20 }, []string{"sh", "disk.sh", "32m"}},
		{"disk in the tree and /tmp", LimitDisk, func(l *Limits) { l.Disk = 16 << 20 }, []string{"sh", "tmp.sh", "10m"}},
		{"cpu spin", LimitCPUTime, func(l *Limits) { l.CPUTime = time.Second }, []string{"sh", "spin.sh"}},
	}
	for _, c := range limits {
		t.Run(c.name, func(t *testing.T) {
			saved := b.Limits
			defer func() { b.Limits = saved }()
			c.set(&b.Limits)
			start := time.Now()
			res := b.Rebuild(t.Context(), "limit", repo.with(c.argv...), nil)
			if (c.limit == LimitMemory || c.limit == LimitProcesses) && !cgroup && res.Limit != c.limit {
				want := fmt.Sprintf("RLIMIT_NPROC of %d and memory per process by an address-space rlimit of %s", b.Limits.Processes, FormatBytes(b.Limits.Memory))
				if res.Outcome != Failed || !strings.Contains(res.Reason, want) {
					t.Errorf("%v under %+v = %s: %s, want a failure under the address-space rlimit", c.argv, b.Limits, res.Outcome, res.Summary())
				}
			} else if res.Outcome != Failed || res.Limit != c.limit || !strings.Contains(res.Summary(), "rebuild.limits."+c.limit) {
				t.Errorf("%v under %+v = %s, limit %q: %s\n%s", c.argv, b.Limits, res.Outcome, res.Limit, res.Summary(), res.BuildOutput)
			}
			if d := time.Since(start); d > 45*time.Second {
				t.Errorf("%v took %v: stopped only by the timeout", c.argv, d)
			}
			// The builder keeps working.
			if res := b.Rebuild(t.Context(), "after", repo.rel, nil); res.Outcome != Reproduced {
				t.Errorf("a benign rebuild after %s = %s: %s", c.name, res.Outcome, res.Summary())
			}
		})
	}
}

// TestUnsandboxed: sandbox auto without bubblewrap refuses to rebuild;
// only sandbox off builds, and says so.
func TestUnsandboxed(t *testing.T) {
	repo := newRepo(t, map[string]string{})
	b := &Builder{Sandbox: SandboxAuto, Bwrap: "bwrap-not-installed", Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30,
		Limits:  Limits{Memory: 1 << 30, Processes: 1024, Disk: 1 << 30, CPUTime: time.Minute},
		WorkDir: workDir(t), RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin"}
	res := b.Rebuild(t.Context(), "auto", repo.rel, nil)
	if res.Outcome != Unsandboxed || res.Sandboxed || res.Measurements.Primary() != "" {
		t.Errorf("sandbox auto without bwrap: %s (sandboxed %v, measured %q), want %s with nothing built", res.Outcome, res.Sandboxed, res.Measurements.Primary(), Unsandboxed)
	}
	req := &Builder{Sandbox: SandboxRequired, Bwrap: b.Bwrap, Limits: b.Limits, Timeout: time.Minute}
	if _, err := req.CheckSandbox(t.Context()); err == nil {
		t.Errorf("sandbox required without bwrap: CheckSandbox = nil")
	}
	off := &Builder{Sandbox: SandboxOff, Git: "git", Timeout: time.Minute, MaxLog: 1 << 20, MaxOutput: 1 << 30, Limits: b.Limits,
		WorkDir: workDir(t), RepoSchemes: []string{"file"}, Path: b.Path}
	res = off.Rebuild(t.Context(), "off", repo.rel, nil)
	if res.Outcome != Reproduced || res.Sandboxed || !strings.Contains(res.Summary(), "without sandbox") {
		t.Errorf("sandbox off: %s (sandboxed %v): %s", res.Outcome, res.Sandboxed, res.Summary())
	}
}

// TestHostileRecipeUnsandboxed: with rebuild.sandbox off a recipe runs on
// the host, but as the build user, never as the auditor: it cannot read
// the auditor's key (by its path, through /proc/PPID/root), the auditor's
// environment (/proc/PPID/environ), nor write, move or replace anything
// of its state directory. A benign release still reproduces.
func TestHostileRecipeUnsandboxed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("as root only: an auditor that is not root has no other user to build as (TestUnsandboxedNeedsBuildUser)")
	}
	state, key := auditorState(t)
	const secret = "AUDITOR-ENVIRONMENT-SECRET-5c1d"
	t.Setenv("ATTESTLOG_TEST_SECRET", secret)
	repo := newRepo(t, map[string]string{"steal.sh": fmt.Sprintf(`
echo "uid $(id -u)"
cat %[1]s/auditor.key 2>&1
cat /proc/$PPID/root%[1]s/auditor.key 2>&1
tr '\000' '\n' < /proc/$PPID/environ 2>&1
touch %[1]s/pwned 2>&1 && echo WROTE-STATE
echo x >> %[1]s/auditor.db 2>&1 && echo WROTE-DB
mv %[1]s/auditor.key %[1]s/moved 2>&1 && echo MOVED-KEY
exit 1
`, state)})
	b := builder(t, SandboxOff)
	res := b.Rebuild(t.Context(), "steal", repo.with("sh", "steal.sh"), nil)
	if res.Outcome != Failed || res.Sandboxed {
		t.Fatalf("steal.sh = %s (sandboxed %v): %s", res.Outcome, res.Sandboxed, res.Summary())
	}
	t.Logf("the hostile build's output:\n%s", res.BuildOutput)
	for _, s := range [][]byte{key, []byte(secret)} {
		if strings.Contains(res.BuildOutput, string(s)) {
			t.Errorf("the unsandboxed build read %q", s)
		}
	}
	for _, s := range []string{"WROTE-STATE", "WROTE-DB", "MOVED-KEY", "uid 0\n"} {
		if strings.Contains(res.BuildOutput, s) {
			t.Errorf("the unsandboxed build could %s", s)
		}
	}
	if !strings.Contains(res.BuildOutput, fmt.Sprintf("uid %d\n", DefaultUser.UID)) || !strings.Contains(res.BuildOutput, "Permission denied") {
		t.Errorf("the build did not run as uid %d, or tried nothing:\n%s", DefaultUser.UID, res.BuildOutput)
	}
	if got, err := os.ReadFile(filepath.Join(state, "auditor.key")); err != nil || !bytes.Equal(got, key) {
		t.Errorf("the auditor's key after the build: %q, %v", got, err)
	}
	if got, _ := os.ReadFile(filepath.Join(state, "auditor.db")); string(got) != "db" {
		t.Errorf("the auditor's database after the build: %q", got)
	}
	if _, err := os.Stat(filepath.Join(state, "pwned")); err == nil {
		t.Errorf("the build wrote into the auditor's state directory")
	}
	if res := b.Rebuild(t.Context(), "benign", repo.rel, nil); res.Outcome != Reproduced || res.Sandboxed {
		t.Errorf("a benign release with sandbox off = %s (sandboxed %v): %s\n%s", res.Outcome, res.Sandboxed, res.Summary(), res.BuildOutput)
	}
}

// TestUnsandboxedNeedsBuildUser: with rebuild.sandbox off, an auditor
// that is not root (it has no other user to build as) or whose build user
// is root or itself refuses every build, saying what to configure, and
// runs nothing of the recipe.
func TestUnsandboxedNeedsBuildUser(t *testing.T) {
	repo := newRepo(t, map[string]string{})
	marker := filepath.Join(workDir(t), "ran")
	rel := repo.with("sh", "-c", "echo ran > "+marker)
	refused := func(t *testing.T, b *Builder, want string) {
		t.Helper()
		if _, err := b.CheckSandbox(t.Context()); !errors.Is(err, ErrNoBuildUser) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSandbox as uid %d (user %+v) = %v, want ErrNoBuildUser saying %q", os.Geteuid(), b.User, err, want)
		}
		if res := b.Rebuild(t.Context(), "refused", rel, nil); res.Outcome != Failed || !strings.Contains(res.Reason, want) {
			t.Errorf("Rebuild = %s: %s, want a failure saying %q", res.Outcome, res.Reason, want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("the recipe ran")
		}
	}
	as := func(u Credential) *Builder {
		b := newBuilder(t, SandboxOff)
		b.User = &u
		return b
	}
	if os.Geteuid() != 0 {
		refused(t, newBuilder(t, SandboxOff), "run the auditor as root")
		refused(t, as(Credential{uint32(os.Geteuid()), uint32(os.Getegid())}), "set rebuild.user to a uid of its own")
		return
	}
	refused(t, as(Credential{0, 0}), "set rebuild.user to a uid of its own")
	// The auditor not root: this test again, as uid 65534.
	cmd := selfAs(t, DefaultUser, nil, "^TestUnsandboxedNeedsBuildUser$")
	out, err := cmd.CombinedOutput()
	t.Logf("as uid %d:\n%s", DefaultUser.UID, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnsandboxedNeedsBuildUser ") {
		t.Errorf("TestUnsandboxedNeedsBuildUser as uid %d: %v", DefaultUser.UID, err)
	}
}

// TestBuildReach: the auditor's files that a build could reach — its key
// or database readable, the directory of its database enterable, its
// configuration writable or replaceable — stop every build, in every
// mode, naming each; what the build cannot reach (a private directory, a
// sticky one, the sandbox's own /tmp) does not.
func TestBuildReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("as root only: the layouts are files of another user than the build's")
	}
	testenv.LookPath(t, "bwrap")
	u := DefaultUser
	// base is a directory the build user can enter, as /var/lib is.
	base := workDir(t)
	mk := func(path string, mode os.FileMode, dir bool) string {
		p := filepath.Join(base, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if dir {
			os.Mkdir(p, mode)
		} else {
			os.WriteFile(p, []byte("AUDITOR-SECRET"), mode)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	closed := mk("closed", 0o700, true)    // a state directory as it must be
	mk("closed/auditor.key", 0o600, false) // inside: out of reach whatever its mode
	open := mk("open", 0o755, true)        // a state directory others can enter
	keyOK := mk("open/auditor.key", 0o600, false)
	keyBad := mk("open/world.key", 0o644, false)
	cfgBad := mk("open/auditor.yaml", 0o666, false)
	cfgOK := mk("open/ok.yaml", 0o644, false)
	theirs := mk("theirs", 0o755, true)
	os.Chown(theirs, int(u.UID), int(u.GID))
	replaceable := mk("theirs/policy.txt", 0o644, false)
	deep := mk("theirs/etc/attestlog/policy.txt", 0o644, false) // two root directories under theirs
	mk("sticky", 0o777|os.ModeSticky, true)
	inSticky := mk("sticky/policy.txt", 0o644, false)

	for _, c := range []struct {
		mode             string
		private, guarded []string
		want             []string // "" : no error
	}{
		{SandboxOff, []string{closed, filepath.Join(closed, "auditor.key"), keyOK}, []string{cfgOK, inSticky}, nil},
		{SandboxOff, []string{open}, nil, []string{"can enter " + open}},
		{SandboxOff, []string{keyBad, keyOK}, nil, []string{"can read " + keyBad}},
		{SandboxOff, nil, []string{cfgBad}, []string{"can write " + cfgBad}},
		{SandboxOff, nil, []string{replaceable}, []string{"can replace " + replaceable + " (can write " + theirs + ")"}},
		{SandboxOff, nil, []string{deep}, []string{"can replace " + deep + " (can write " + theirs + ")"}},
		{SandboxOff, []string{"/tmp"}, nil, []string{"can enter /tmp"}},
		// In the sandbox none of base is visible, /tmp is its own, but
		// /etc/passwd is the host's.
		{SandboxRequired, []string{open, keyBad}, []string{cfgBad, replaceable, "/tmp/x"}, nil},
		{SandboxRequired, []string{"/tmp", "/etc/passwd"}, nil, []string{"a sandboxed build can read /etc/passwd"}},
	} {
		b := newBuilder(t, c.mode)
		b.Private, b.Guarded = c.private, c.guarded
		_, err := b.CheckSandbox(t.Context())
		if c.want == nil {
			if err != nil {
				t.Errorf("%s, private %v, guarded %v: %v, want nil", c.mode, c.private, c.guarded, err)
			}
			continue
		}
		if !errors.Is(err, ErrExposed) {
			t.Errorf("%s, private %v, guarded %v: %v, want ErrExposed", c.mode, c.private, c.guarded, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to say %q", c.mode, err, w)
			}
		}
		if strings.Contains(err.Error(), "AUDITOR-SECRET") || strings.Contains(err.Error(), keyOK) {
			t.Errorf("%s: %v names what the build cannot reach, or the key's bytes", c.mode, err)
		}
		if res := b.Rebuild(t.Context(), "exposed", &statement.Release{}, nil); res.Outcome != Failed || !strings.Contains(res.Reason, c.want[0]) {
			t.Errorf("%s: Rebuild with the auditor's files in reach = %s: %s, want a failure naming them", c.mode, res.Outcome, res.Reason)
		}
	}
}

func TestOutputTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"ok\n\tline", 100, "ok\n\tline"},
		{"\x1b[31mred\x07", 100, `\x1b[31mred\x07`},
		{"a\xffb", 100, `a\ufffdb`},
		{"\u202eevil", 100, `\x202eevil`},
		{"xxxxxxxxxxtail", 6, "[…]xxtail"},
		{"xxxxxxxxé", 2, "[…]é"},
	} {
		if got := OutputTail(c.in, c.max); got != c.want {
			t.Errorf("OutputTail(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

// TestFetchIgnoresConfiguration: a repository whose .gitattributes names a
// filter, fetched where a git configuration (the fetch's own HOME, the
// auditor's environment) defines that filter and hooks, runs none of them.
func TestFetchIgnoresConfiguration(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	repo := newRepo(t, map[string]string{".gitattributes": "* filter=evil\n", "a.txt": "hello\n"})
	home := t.TempDir()
	hooks := filepath.Join(home, "hooks")
	os.Mkdir(hooks, 0o755)
	for _, h := range []string{"post-checkout", "post-merge", "reference-transaction"} {
		os.WriteFile(filepath.Join(hooks, h), []byte("#!/bin/sh\necho hook > "+marker+"\n"), 0o755)
	}
	cfg := fmt.Sprintf("[filter \"evil\"]\n\tsmudge = sh -c 'echo filter > %s; cat'\n\trequired = true\n[core]\n\thooksPath = %s\n\tfsmonitor = sh -c 'echo fsmonitor > %s'\n", marker, hooks, marker)
	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o644)
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, ".gitconfig"))
	t.Setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='"+hooks+"'")
	b := &Builder{Git: "git", Timeout: time.Minute, RepoSchemes: []string{"file"}, Path: "/usr/local/bin:/usr/bin:/bin"}
	dst := filepath.Join(t.TempDir(), "src")
	if err := b.fetch(t.Context(), repo.rel.Source, dst, home); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(got) != "hello\n" {
		t.Errorf("checked out a.txt = %q", got)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the fetch ran configured code: %s", b)
	}
	// The same configuration does run with plain git, so the test can fail.
	cmd := exec.Command("git", "clone", "-q", repo.dir, filepath.Join(t.TempDir(), "plain"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Run()
	if _, err := os.ReadFile(marker); err != nil {
		t.Errorf("plain git with that configuration ran nothing either: the test proves nothing")
	}
	// A scheme outside repo_schemes is refused before git runs.
	b.RepoSchemes = []string{"https"}
	if err := b.fetch(t.Context(), repo.rel.Source, filepath.Join(t.TempDir(), "x"), home); err == nil || !strings.Contains(err.Error(), `scheme "file" is not allowed`) {
		t.Errorf("fetch of file:// with repo_schemes [https] = %v", err)
	}
}
