package rebuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Credential is the unprivileged user a sandboxed build runs as when the
// auditor runs as root.
type Credential struct{ UID, GID uint32 }

// DefaultUser is "nobody" on Debian and most distributions.
var DefaultUser = Credential{UID: 65534, GID: 65534}

// sandboxUID is the build's user and group inside its user namespace.
const sandboxUID = "65534"

// gateScript holds the build's first process until the auditor has put it
// into its cgroup (so that nothing it forks escapes it), then closes the
// gate and becomes the build (or bubblewrap) under the rlimits of its
// arguments, set by util-linux's prlimit (a process may always lower its
// own limits; setting another's needs CAP_SYS_RESOURCE).
const gateScript = `read -r _ <&3 || exit 125; exec 3<&- "$@"`

// LimitError says a build was stopped at one of its limits.
type LimitError struct {
	Limit string // LimitMemory, LimitProcesses, LimitDisk or LimitCPUTime
	What  string // the limit and its value, e.g. "memory 8GiB"
	How   string // what saw it ("cgroup v1", "rlimit", …)
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the build exceeded its %s limit (rebuild.limits.%s, enforced by %s) and was stopped", e.What, e.Limit, e.How)
}

// sandboxOwn are the places bubblewrap gives the build fresh or its own:
// nothing of the host's there is visible inside.
var sandboxOwn = []string{"/build", "/tmp", "/proc", "/dev"}

// bwrapArgs isolates a build: an unprivileged user in a user namespace of
// its own that cannot make another, every capability dropped, every other
// namespace unshared (the network among them), a cleared environment, a
// read-only system of /usr and the loader's and passwd files of /etc,
// fresh /proc and /dev, the source tree (the open directory fd srcFD) at
// /build and a fresh /tmp (tmpFD), and nothing else of the host.
func bwrapArgs(env []string, srcFD, tmpFD int) []string {
	args := []string{"--unshare-all", "--unshare-user", "--disable-userns",
		"--uid", sandboxUID, "--gid", sandboxUID, "--cap-drop", "ALL",
		"--die-with-parent", "--new-session", "--hostname", "rebuild", "--clearenv"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		args = append(args, "--setenv", k, v)
	}
	args = append(args, "--ro-bind", "/usr", "/usr")
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&fs.ModeSymlink != 0:
			if t, err := os.Readlink(d); err == nil {
				args = append(args, "--symlink", t, d)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	for _, f := range []string{"/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"} {
		args = append(args, "--ro-bind-try", f, f)
	}
	return append(args, "--proc", "/proc", "--dev", "/dev",
		"--bind-fd", fmt.Sprint(srcFD), "/build", "--bind-fd", fmt.Sprint(tmpFD), "/tmp",
		"--remount-ro", "/", "--chdir", "/build")
}

// Enforcement says how the builder bounds builds, as CheckSandbox found:
// "bubblewrap, cgroup v1, as uid 65534" and the like.
func (b *Builder) Enforcement() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.enforcement
}

// probe runs "true" as a build would run, to see whether this machine can.
func (b *Builder) probe(ctx context.Context, sandboxed bool) error {
	log, err := b.probeRun(ctx, sandboxed, []string{"true"})
	if err != nil {
		hint := ""
		if b.User != nil && (strings.Contains(log, "Can't find source path") || errors.Is(err, fs.ErrPermission)) {
			hint = fmt.Sprintf(" (uid %d must be able to reach %s: every directory above it must be searchable by others)", b.User.UID, b.WorkDir)
		}
		if log = OutputTail(strings.TrimSpace(log), 1000); log != "" {
			hint = ": " + log + hint
		}
		return fmt.Errorf("%w%s", err, hint)
	}
	return nil
}

// probeRun runs argv as a build would, in a fresh build directory.
func (b *Builder) probeRun(ctx context.Context, sandboxed bool, argv []string) (string, error) {
	work, err := b.workDir("sandbox-probe")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o700); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return b.exec(ctx, sandboxed, argv, nil, work, src)
}

// reachScript is run as a build with one argument per path of the
// auditor's (absolute and clean), "private:PATH" or "guarded:PATH". It
// prints a line for each way the build could reach one and then exits 3:
// reading, writing or (a directory) entering a private path, writing a
// guarded one, or replacing either by renaming it or a directory above it
// within a directory it can write (unless that directory is sticky and
// neither it nor the renamed entry is the build's). A path the build
// cannot see is out of its reach.
const reachScript = `n=0
for a do
	k=${a%%:*} p=${a#*:}
	[ -e "$p" ] || [ -L "$p" ] || continue
	if [ "$k" = private ] && [ -r "$p" ]; then echo "can read $p"; n=3; fi
	if [ "$k" = private ] && [ -d "$p" ] && [ -x "$p" ]; then echo "can enter $p"; n=3; fi
	if [ -w "$p" ]; then echo "can write $p"; n=3; fi
	c=$p
	while [ "$c" != / ]; do
		d=${c%/*} d=${d:-/}
		if [ -w "$d" ] && ! { [ -k "$d" ] && ! [ -O "$c" ] && ! [ -O "$d" ]; }; then echo "can replace $p (can write $d)"; n=3; break; fi
		c=$d
	done
done
exit $n`

// checkReach runs reachScript as a build would run over b.Private and
// b.Guarded (and what their symbolic links name), and returns an error
// wrapping ErrExposed that lists what a build could reach.
func (b *Builder) checkReach(ctx context.Context, sandboxed bool) error {
	argv := []string{"sh", "-c", reachScript, "attestlog-reach"}
	add := func(kind string, paths []string) {
		for _, p := range paths {
			if p == "" {
				continue
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			all := []string{abs}
			if r, err := filepath.EvalSymlinks(abs); err == nil && r != abs {
				all = append(all, r)
			}
			for _, p := range all {
				own := false
				for _, d := range sandboxOwn {
					own = own || p == d || strings.HasPrefix(p, d+"/")
				}
				if !(sandboxed && own) { // the sandbox has its own there
					argv = append(argv, kind+":"+p)
				}
			}
		}
	}
	add("private", b.Private)
	add("guarded", b.Guarded)
	log, err := b.probeRun(ctx, sandboxed, argv)
	var ee *exec.ExitError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		if ee != nil {
			err = ee // not the script's text again
		}
		return fmt.Errorf("checking what a build can reach: %w: %s", err, OutputTail(strings.TrimSpace(log), 1000))
	}
	what := strings.ReplaceAll(strings.TrimSpace(OutputTail(log, 2000)), "\n", ", ")
	if sandboxed {
		return fmt.Errorf("%w: a sandboxed build %s; the sandbox shows /usr and a few files of /etc: keep the auditor's key, database, configuration and policies elsewhere", ErrExposed, what)
	}
	who := "the auditor's own user"
	if b.User != nil {
		who = fmt.Sprintf("uid %d", b.User.UID)
	}
	return fmt.Errorf("%w: a build, as %s, %s; it must reach none of them: the auditor's key and database must be files of the auditor's user with mode 0600, the directory of its database mode 0700 (rebuild.work_dir outside it), and its configuration, policies and the directories above them writable by the auditor only; rebuild.user must own none of them", ErrExposed, who, what)
}

func (b *Builder) newCgroup() (*cgroup, error) {
	if b.noCgroup {
		return nil, errors.New("disabled")
	}
	return newCgroup(b.Limits)
}

// workDir makes a directory for one build under b.WorkDir. When builds run
// as b.User, b.WorkDir and the build's directory are searchable by others
// (not listable) and stay the auditor's: the build user gets only what
// exec gives it inside, so it cannot swap what the auditor works in
// (the fetch, the hashing) for a link elsewhere.
func (b *Builder) workDir(name string) (string, error) {
	mode := os.FileMode(0o700)
	if b.User != nil {
		mode = 0o711
	}
	if err := os.MkdirAll(b.WorkDir, mode); err != nil {
		return "", err
	}
	if err := os.Chmod(b.WorkDir, mode); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(b.WorkDir, name+"-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(work, mode); err != nil {
		os.RemoveAll(work)
		return "", err
	}
	return work, nil
}

// buildEnv is the build's whole environment: the auditor's fixed
// variables, then the recipe's.
func (b *Builder) buildEnv(recipe map[string]string, home, tmp string) []string {
	env := map[string]string{"PATH": b.Path, "HOME": home, "TMPDIR": tmp, "LC_ALL": "C"}
	for k, v := range recipe {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// chownTree gives the tree under dir to c (symbolic links themselves, not
// what they name).
func chownTree(dir string, c Credential) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(c.UID), int(c.GID))
	})
}

// exec runs argv as a build in src (with work/tmp as its /tmp), as b.User
// (when set), bounded by b.Limits, b.Timeout and b.MaxLog, and returns the
// bounded build log. sandboxed runs it in bubblewrap; otherwise it runs
// on the host (with work/home as its HOME), with only the limits, the
// cleared environment and its user's file permissions between it and the
// host.
func (b *Builder) exec(ctx context.Context, sandboxed bool, argv []string, recipeEnv map[string]string, work, src string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	if len(argv) == 0 {
		return "", errors.New("the recipe has no argv")
	}
	tmp, home := filepath.Join(work, "tmp"), filepath.Join(work, "home")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	// What the build may write, and the disk limit counts: its tree and
	// /tmp, and on the host its HOME.
	dirs := []string{src, tmp}
	if !sandboxed {
		if err := os.Mkdir(home, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		dirs = append(dirs, home)
	}
	if b.User != nil {
		for _, d := range dirs {
			if err := chownTree(d, *b.User); err != nil {
				return "", fmt.Errorf("giving the build tree to uid %d: %w", b.User.UID, err)
			}
		}
	}
	// Files the auditor inherited without close-on-exec must not reach
	// the build (an open directory outside the sandbox is a way out).
	unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)

	var cg *cgroup
	how := "rlimits and /proc polling"
	if c, err := b.newCgroup(); err == nil {
		cg, how = c, c.String()
		defer cg.remove()
	}
	cgroupOK := cg != nil

	gateR, gateW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer gateR.Close()
	defer gateW.Close()
	var cmd *exec.Cmd
	if sandboxed {
		srcF, err := os.Open(src)
		if err != nil {
			return "", err
		}
		defer srcF.Close()
		tmpF, err := os.Open(tmp)
		if err != nil {
			return "", err
		}
		defer tmpF.Close()
		args := append(append([]string{"-c", gateScript, "attestlog-gate"}, b.rlimits(cgroupOK)...), b.bwrapPath)
		args = append(args, bwrapArgs(b.buildEnv(recipeEnv, "/tmp", "/tmp"), 4, 5)...)
		cmd = exec.CommandContext(ctx, "/bin/sh", append(append(args, "--"), argv...)...)
		cmd.ExtraFiles = []*os.File{gateR, srcF, tmpF}
		// bubblewrap itself gets nothing of the recipe: a fixed
		// environment and a neutral working directory.
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
		cmd.Dir = "/"
	} else {
		argv0 := argv[0]
		if !strings.Contains(argv0, "/") {
			p, err := lookPath(argv0, b.Path)
			if err != nil {
				return "", err
			}
			argv0 = p
		}
		args := append(append([]string{"-c", gateScript, "attestlog-gate"}, b.rlimits(cgroupOK)...), argv0)
		cmd = exec.CommandContext(ctx, "/bin/sh", append(args, argv[1:]...)...)
		cmd.ExtraFiles = []*os.File{gateR}
		cmd.Env = b.buildEnv(recipeEnv, home, tmp)
		cmd.Dir = src
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if b.User != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: b.User.UID, Gid: b.User.GID, Groups: []uint32{}}
	}

	w := &watcher{b: b, cg: cg, how: how, dirs: dirs}
	kill := func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Process.Kill()
		}
		if cg != nil {
			cg.kill()
		}
	}
	cmd.Cancel = func() error { kill(); return nil }
	cmd.WaitDelay = 5 * time.Second
	lw := &limitWriter{max: b.MaxLog, cancel: cancel}
	cmd.Stdout, cmd.Stderr = lw, lw

	// Pdeathsig is sent when the thread that started the child ends.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pid := cmd.Process.Pid
	if err := w.confine(pid); err != nil {
		kill()
		cmd.Wait()
		return "", fmt.Errorf("applying the build's limits: %w", err)
	}
	gateR.Close()
	gateW.Write([]byte("go\n"))
	gateW.Close()

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.watch(pid, done, kill)
	}()
	err = cmd.Wait()
	close(done)
	wg.Wait()
	if cg != nil {
		cg.kill() // nothing of the build outlives it
	}
	if b.User != nil {
		// What the build left is the auditor's again before it is hashed,
		// so no other process of the build user can change it.
		own := Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
		var cerr error
		for _, d := range dirs {
			cerr = errors.Join(cerr, chownTree(d, own))
		}
		if cerr != nil && err == nil {
			err = fmt.Errorf("taking back the build tree: %w", cerr)
		}
	}
	log := lw.String()
	if w.hit == "" {
		w.hit = w.check(pid, true)
	}
	if w.hit == "" && err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ws, _ := ee.Sys().(syscall.WaitStatus)
			switch {
			case ws.Signaled() && ws.Signal() == syscall.SIGXCPU, ee.ExitCode() == 128+int(syscall.SIGXCPU):
				w.hit, w.how = LimitCPUTime, "rlimit"
			case ws.Signaled() && ws.Signal() == syscall.SIGXFSZ, ee.ExitCode() == 128+int(syscall.SIGXFSZ):
				w.hit, w.how = LimitDisk, "rlimit"
			}
		}
	}
	switch {
	case w.hit != "":
		return log, &LimitError{Limit: w.hit, What: b.Limits.describe(w.hit), How: w.how}
	case lw.exceeded:
		return log, fmt.Errorf("the build wrote more than %d bytes of output and was stopped", b.MaxLog)
	case ctx.Err() == context.DeadlineExceeded:
		return log, fmt.Errorf("the build did not finish within %v and was stopped", b.Timeout)
	case err != nil && cg == nil:
		return log, fmt.Errorf("%s: %w (without a cgroup, processes are bounded by an RLIMIT_NPROC of %d and memory per process by an address-space rlimit of %s: a failed fork or allocation may be one of these limits)", strings.Join(argv, " "), err, b.Limits.Processes, FormatBytes(b.Limits.Memory))
	case err != nil:
		return log, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return log, nil
}

// watcher enforces the limits the kernel does not (disk, and without a
// cgroup memory, processes and CPU time of the whole tree) and names the
// limit that stopped a build.
type watcher struct {
	b    *Builder
	cg   *cgroup
	how  string
	dirs []string
	hit  string // the limit that stopped the build
}

// confine puts the held gate process pid into the build's cgroup.
func (w *watcher) confine(pid int) error {
	if w.cg != nil {
		return w.cg.add(pid)
	}
	return nil
}

// rlimits is the prlimit command that sets the build's rlimits, which
// everything it starts inherits: CPU time and file size always (per
// process: the watcher bounds the whole tree), and without a cgroup the
// process count and address space. A build stopped by the last two fails
// at a fork or an allocation, which the watcher cannot always tell from any
// other failure; its error then names both limits.
func (b *Builder) rlimits(cgroup bool) []string {
	l := b.Limits
	cpu := int64(math.Ceil(l.CPUTime.Seconds()))
	args := []string{b.prlimitPath, fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1), fmt.Sprintf("--fsize=%d", l.Disk), "--core=0"}
	if !cgroup {
		args = append(args, fmt.Sprintf("--nproc=%d", l.Processes+64), fmt.Sprintf("--as=%d", l.Memory))
	}
	return append(args, "--")
}

// check returns the limit the build is over, or "".
func (w *watcher) check(pid int, final bool) string {
	l := w.b.Limits
	if w.cg != nil {
		switch {
		case w.cg.oom():
			return LimitMemory
		case w.cg.pidsMax():
			return LimitProcesses
		}
		if t := w.cg.cpuTime(); t > l.CPUTime {
			return LimitCPUTime
		}
	} else if !final {
		procs, cpu, rss := tree(pid)
		switch {
		case procs > l.Processes:
			return LimitProcesses
		case rss > l.Memory:
			return LimitMemory
		case cpu > l.CPUTime:
			return LimitCPUTime
		}
	}
	if diskUsage(l.Disk+1, w.dirs...) > l.Disk {
		return LimitDisk
	}
	return ""
}

// watch checks the build every 100 ms (or twice as long as the last check
// took) until done, and kills it over a limit.
func (w *watcher) watch(pid int, done <-chan struct{}, kill func()) {
	interval := 100 * time.Millisecond
	for {
		select {
		case <-done:
			return
		case <-time.After(interval):
		}
		start := time.Now()
		if hit := w.check(pid, false); hit != "" {
			w.hit = hit
			kill()
			return
		}
		interval = max(100*time.Millisecond, 2*time.Since(start))
	}
}
