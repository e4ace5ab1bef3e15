// Package rebuild replays a release's build recipe and recomputes its
// launch measurement: it fetches the source at the logged commit with git,
// runs the recipe's argv in the checked-out tree with a scrubbed
// environment, no network, a time limit and an output-size limit (inside
// bubblewrap when available or required), hashes the outputs and feeds
// them to policy/measure.
package rebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/measure/ovmf"
	"github.com/attestlog/attestlog/policy/measure/snp"
	"github.com/attestlog/attestlog/policy/measure/tdx"
)

// Sandbox modes.
const (
	SandboxRequired = "required" // refuse to build without bubblewrap
	SandboxAuto     = "auto"     // bubblewrap when it works, else unsandboxed
	SandboxOff      = "off"      // never use bubblewrap
)

// Outcomes.
const (
	Reproduced = "reproduced"
	Mismatch   = "mismatch"
	Failed     = "failed"
)

// Builder runs rebuilds. Its fields are set by the caller before use.
type Builder struct {
	Sandbox     string        // SandboxRequired, SandboxAuto or SandboxOff
	Bwrap       string        // bubblewrap binary
	Git         string        // git binary
	Timeout     time.Duration // for the clone and for the build, each
	MaxLog      int64         // build log bytes; the build is stopped beyond
	MaxOutput   int64         // bytes in the build tree after the build
	WorkDir     string        // parent of the per-build directories
	RepoSchemes []string      // URL schemes git may fetch from
	Path        string        // PATH of the build
	Keep        bool          // keep build directories

	once      sync.Once
	useBwrap  bool
	bwrapErr  error
	bwrapPath string
}

// CheckSandbox decides whether builds run in bubblewrap, trying it once.
// In SandboxRequired mode an unusable bubblewrap is an error.
func (b *Builder) CheckSandbox(ctx context.Context) (sandboxed bool, err error) {
	b.once.Do(func() {
		if b.Sandbox == SandboxOff {
			return
		}
		p, err := exec.LookPath(b.Bwrap)
		if err == nil {
			b.bwrapPath = p
			cmd := exec.CommandContext(ctx, p, append(b.bwrapArgs(os.TempDir()), "--", "true")...)
			cmd.Env = []string{"PATH=" + b.Path}
			if out, rerr := cmd.CombinedOutput(); rerr != nil {
				err = fmt.Errorf("%s does not work here: %v: %s", p, rerr, bytes.TrimSpace(out))
			}
		}
		if err != nil {
			b.bwrapErr = err
			return
		}
		b.useBwrap = true
	})
	if b.Sandbox == SandboxRequired && !b.useBwrap {
		return false, fmt.Errorf("rebuild sandbox is required but bubblewrap is unusable: %v (install Debian's bubblewrap, or set rebuild.sandbox to auto or off)", b.bwrapErr)
	}
	return b.useBwrap, nil
}

// Artifact compares a logged artifact with the rebuilt output.
type Artifact struct {
	Name    string           `json:"name"`
	Output  string           `json:"output,omitempty"`
	Logged  statement.Digest `json:"logged"`
	Rebuilt statement.Digest `json:"rebuilt,omitzero"`
	Match   bool             `json:"match"`
	Note    string           `json:"note,omitempty"`
}

// Difference is one value that differs between the log and the rebuild.
type Difference struct {
	What    string `json:"what"`
	Logged  string `json:"logged"`
	Rebuilt string `json:"rebuilt"`
}

// Result is the outcome of a rebuild.
type Result struct {
	Outcome      string                 `json:"outcome"`
	Reason       string                 `json:"reason,omitempty"` // why it failed
	Measurements statement.Measurements `json:"measurements,omitzero"`
	Differences  []Difference           `json:"differences,omitempty"`
	Artifacts    []Artifact             `json:"artifacts,omitempty"`
	Notes        []string               `json:"notes,omitempty"`
	Sandboxed    bool                   `json:"sandboxed"`
	Log          string                 `json:"log,omitempty"` // the build log (bounded), for failures
	Duration     time.Duration          `json:"duration"`
}

func failed(r *Result, format string, args ...any) *Result {
	r.Outcome = Failed
	r.Reason = fmt.Sprintf(format, args...)
	return r
}

// Rebuild rebuilds the release rel with artifacts (the statement's
// subjects) and compares the result. name labels the build directory.
func (b *Builder) Rebuild(ctx context.Context, name string, rel *statement.Release, artifacts []statement.Subject) *Result {
	start := time.Now()
	r := &Result{}
	defer func() { r.Duration = time.Since(start).Round(time.Millisecond) }()
	sandboxed, err := b.CheckSandbox(ctx)
	if err != nil {
		return failed(r, "%v", err)
	}
	r.Sandboxed = sandboxed
	if rel.Recipe.Measure == nil || rel.Recipe.Measure.Firmware == "" {
		return failed(r, "the recipe has no measure section naming the firmware output, so no measurement can be recomputed")
	}
	if err := os.MkdirAll(b.WorkDir, 0o700); err != nil {
		return failed(r, "%v", err)
	}
	work, err := os.MkdirTemp(b.WorkDir, safeName(name)+"-")
	if err != nil {
		return failed(r, "%v", err)
	}
	if !b.Keep {
		defer os.RemoveAll(work)
	}
	src := filepath.Join(work, "src")
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return failed(r, "%v", err)
	}
	if err := b.fetch(ctx, rel.Source, src, home); err != nil {
		return failed(r, "fetching source: %v", err)
	}

	log, err := b.run(ctx, rel.Recipe, work, src)
	r.Log = log
	if err != nil {
		return failed(r, "build: %v", err)
	}
	if n, err := treeSize(src, b.MaxOutput); err != nil {
		return failed(r, "build outputs: %v", err)
	} else if n > b.MaxOutput {
		return failed(r, "the build left more than %d bytes in its directory", b.MaxOutput)
	}

	root, err := os.OpenRoot(src)
	if err != nil {
		return failed(r, "%v", err)
	}
	defer root.Close()
	digests := map[string]statement.Digest{}
	for _, o := range rel.Recipe.Outputs {
		d, err := hashFile(root, o)
		if err != nil {
			return failed(r, "output %s: %v", o, err)
		}
		digests[o] = d
	}
	r.Log = "" // keep logs of failures only

	mismatch := false
	for _, a := range artifacts {
		art := Artifact{Name: a.Name, Logged: a.Digest}
		out := ""
		for _, o := range rel.Recipe.Outputs {
			if o == a.Name || path.Base(o) == a.Name {
				out = o
				break
			}
		}
		if out == "" {
			art.Note = "not among the recipe's outputs; not compared"
			r.Artifacts = append(r.Artifacts, art)
			continue
		}
		art.Output, art.Rebuilt = out, digests[out]
		art.Match = (a.Digest.SHA256 == "" || a.Digest.SHA256 == art.Rebuilt.SHA256) &&
			(a.Digest.SHA384 == "" || a.Digest.SHA384 == art.Rebuilt.SHA384)
		if !art.Match {
			mismatch = true
			if a.Digest.SHA256 != "" && a.Digest.SHA256 != art.Rebuilt.SHA256 {
				r.Differences = append(r.Differences, Difference{What: "artifact " + a.Name + " sha256", Logged: a.Digest.SHA256, Rebuilt: art.Rebuilt.SHA256})
			}
			if a.Digest.SHA384 != "" && a.Digest.SHA384 != art.Rebuilt.SHA384 {
				r.Differences = append(r.Differences, Difference{What: "artifact " + a.Name + " sha384", Logged: a.Digest.SHA384, Rebuilt: art.Rebuilt.SHA384})
			}
		}
		r.Artifacts = append(r.Artifacts, art)
	}

	m, notes, err := Measure(root, rel.Platform, rel.Recipe.Measure, rel.Measurements)
	if err != nil {
		return failed(r, "computing the measurement: %v", err)
	}
	r.Measurements = m
	r.Notes = append(r.Notes, notes...)
	if logged, rebuilt := rel.Measurements.Primary(), m.Primary(); logged != rebuilt {
		mismatch = true
		what := "snp.launch_digest"
		if rel.Platform == statement.PlatformTDX {
			what = "tdx.mrtd"
		}
		r.Differences = append(r.Differences, Difference{What: what, Logged: logged, Rebuilt: rebuilt})
	}
	if l, b := rel.Measurements.TDX, m.TDX; l != nil && b != nil {
		for _, v := range []struct{ what, logged, rebuilt string }{{"tdx.rtmr1", l.RTMR1, b.RTMR1}, {"tdx.rtmr2", l.RTMR2, b.RTMR2}} {
			if v.logged != "" && v.logged != v.rebuilt {
				mismatch = true
				r.Differences = append(r.Differences, Difference{What: v.what, Logged: v.logged, Rebuilt: v.rebuilt})
			}
		}
	}
	r.Outcome = Reproduced
	if mismatch {
		r.Outcome = Mismatch
	}
	return r
}

// Summary is a one-paragraph description of r for statements and alerts.
func (r *Result) Summary() string {
	var b strings.Builder
	switch r.Outcome {
	case Reproduced:
		fmt.Fprintf(&b, "rebuilt and remeasured: %s", r.Measurements.Primary())
	case Mismatch:
		b.WriteString("rebuild differs:")
		for _, d := range r.Differences {
			fmt.Fprintf(&b, " %s logged %s, rebuilt %s;", d.What, d.Logged, d.Rebuilt)
		}
	case Failed:
		b.WriteString("rebuild failed: " + r.Reason)
	}
	if !r.Sandboxed {
		b.WriteString(" (built without sandbox)")
	}
	s := b.String()
	if len(s) > 4000 {
		s = s[:4000] + "…"
	}
	return s
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func (b *Builder) fetch(ctx context.Context, s statement.Source, dst, home string) error {
	repo := strings.TrimPrefix(s.Repo, "git+")
	u, err := url.Parse(repo)
	if err != nil {
		return err
	}
	if !slices.Contains(b.RepoSchemes, u.Scheme) {
		return fmt.Errorf("repository %q: scheme %q is not allowed (rebuild.repo_schemes is %v)", s.Repo, u.Scheme, b.RepoSchemes)
	}
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, b.Git, args...)
		cmd.Env = []string{"PATH=" + b.Path, "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %s: %v: %s", args[0], err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := git("clone", "--quiet", "--no-checkout", "--", repo, dst); err != nil {
		return err
	}
	if err := git("-C", dst, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", s.Commit+"^{commit}"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, b.Git, "-C", dst, "rev-parse", "HEAD")
	cmd.Env = []string{"PATH=" + b.Path, "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1"}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git rev-parse: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != s.Commit {
		return fmt.Errorf("checked out %s, want %s", got, s.Commit)
	}
	return nil
}

// bwrapArgs isolates a build in dir (bound at /build): a read-only system,
// fresh /proc, /dev and /tmp, and every namespace unshared, the network
// among them.
func (b *Builder) bwrapArgs(dir string) []string {
	args := []string{"--unshare-all", "--die-with-parent", "--new-session",
		"--ro-bind", "/usr", "/usr"}
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
	return append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--bind", dir, "/build", "--chdir", "/build")
}

// run runs the recipe in src and returns the (bounded) build log.
func (b *Builder) run(ctx context.Context, rc statement.Recipe, work, src string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	env := map[string]string{"PATH": b.Path, "HOME": "/tmp", "TMPDIR": "/tmp", "LC_ALL": "C"}
	if !b.useBwrap {
		tmp := filepath.Join(work, "tmp")
		if err := os.Mkdir(tmp, 0o700); err != nil {
			return "", err
		}
		env["HOME"], env["TMPDIR"] = filepath.Join(work, "home"), tmp
	}
	for k, v := range rc.Env {
		env[k] = v
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)

	var cmd *exec.Cmd
	if b.useBwrap {
		cmd = exec.CommandContext(ctx, b.bwrapPath, append(append(b.bwrapArgs(src), "--"), rc.Argv...)...)
	} else {
		argv0 := rc.Argv[0]
		if !strings.Contains(argv0, "/") {
			p, err := lookPath(argv0, b.Path)
			if err != nil {
				return "", err
			}
			argv0 = p
		}
		cmd = exec.CommandContext(ctx, argv0, rc.Argv[1:]...)
		cmd.Args[0] = rc.Argv[0]
	}
	cmd.Dir = src
	cmd.Env = envList
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	lw := &limitWriter{max: b.MaxLog, cancel: cancel}
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.Stdin = nil
	err := cmd.Run()
	log := lw.String()
	switch {
	case lw.exceeded:
		return log, fmt.Errorf("the build wrote more than %d bytes of output and was stopped", b.MaxLog)
	case ctx.Err() == context.DeadlineExceeded:
		return log, fmt.Errorf("the build did not finish within %v and was stopped", b.Timeout)
	case err != nil:
		return log, fmt.Errorf("%s: %v", strings.Join(rc.Argv, " "), err)
	}
	return log, nil
}

func lookPath(name, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the build PATH %s", name, pathList)
}

// limitWriter keeps up to max bytes and cancels the build beyond.
type limitWriter struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int64
	exceeded bool
	cancel   func()
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - int64(w.buf.Len()); int64(len(p)) > room {
		w.buf.Write(p[:max(room, 0)])
		if !w.exceeded {
			w.exceeded = true
			w.cancel()
		}
		return len(p), nil
	}
	w.buf.Write(p)
	return len(p), nil
}

func (w *limitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func treeSize(dir string, limit int64) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
			if n > limit {
				return fs.SkipAll
			}
		}
		return nil
	})
	return n, err
}

func hashFile(root *os.Root, name string) (statement.Digest, error) {
	f, err := root.Open(name)
	if err != nil {
		return statement.Digest{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return statement.Digest{}, err
	}
	if !fi.Mode().IsRegular() {
		return statement.Digest{}, errors.New("not a regular file")
	}
	h256, h384 := sha256.New(), sha512.New384()
	if _, err := io.Copy(io.MultiWriter(h256, h384), f); err != nil {
		return statement.Digest{}, err
	}
	return statement.Digest{SHA256: hex.EncodeToString(h256.Sum(nil)), SHA384: hex.EncodeToString(h384.Sum(nil))}, nil
}

// Measure computes the launch measurement of a build's outputs in root
// from the recipe's measure inputs. logged is the release's measurements,
// for notes on values that are not recomputed.
func Measure(root *os.Root, platform string, m *statement.MeasureInputs, logged statement.Measurements) (statement.Measurements, []string, error) {
	readAll := func(name string) ([]byte, error) {
		f, err := root.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ovmf.ReadAll(f, name)
	}
	// readLimited reads a kernel or initrd output of at most limit bytes.
	readLimited := func(name string, limit int64) ([]byte, error) {
		f, err := root.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err == nil && int64(len(b)) > limit {
			err = fmt.Errorf("%s: larger than %d bytes", name, limit)
		}
		return b, err
	}
	img, err := readAll(m.Firmware)
	if err != nil {
		return statement.Measurements{}, nil, fmt.Errorf("firmware: %w", err)
	}
	var notes []string
	switch platform {
	case statement.PlatformSNP:
		fw, err := snp.ParseFirmware(img)
		if err != nil {
			return statement.Measurements{}, nil, fmt.Errorf("firmware %s: %w", m.Firmware, err)
		}
		cfg := snp.Config{VCPUs: max(m.VCPUs, 1), GuestFeatures: snp.DefaultGuestFeatures}
		if m.VMMType != "" {
			if cfg.VMM, err = snp.ParseVMMType(m.VMMType); err != nil {
				return statement.Measurements{}, nil, err
			}
		}
		if m.VCPUType != "" {
			sig, ok := snp.VCPUTypes[m.VCPUType]
			if !ok {
				return statement.Measurements{}, nil, fmt.Errorf("unknown vcpu_type %q (want one of %s)", m.VCPUType, strings.Join(snp.VCPUTypeNames(), ", "))
			}
			cfg.VCPUSig = sig
		}
		if m.GuestFeatures != "" {
			if cfg.GuestFeatures, err = strconv.ParseUint(strings.TrimPrefix(m.GuestFeatures, "0x"), 16, 64); err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("guest_features: %v", err)
			}
		}
		if m.OVMFHash != "" {
			if cfg.OVMFHash, err = hex.DecodeString(m.OVMFHash); err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("ovmf_hash: %v", err)
			}
		}
		if m.Kernel != "" {
			kf, err := root.Open(m.Kernel)
			if err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("kernel: %w", err)
			}
			defer kf.Close()
			var ir io.Reader
			if m.Initrd != "" {
				f, err := root.Open(m.Initrd)
				if err != nil {
					return statement.Measurements{}, nil, fmt.Errorf("initrd: %w", err)
				}
				defer f.Close()
				ir = f
			}
			if cfg.Kernel, err = snp.HashKernel(kf, ir, m.Cmdline); err != nil {
				return statement.Measurements{}, nil, err
			}
		}
		ld, err := snp.LaunchDigest(fw, cfg)
		if err != nil {
			return statement.Measurements{}, nil, err
		}
		out := &statement.SNPMeasurements{LaunchDigest: hex.EncodeToString(ld[:])}
		if l := logged.SNP; l != nil && (l.GuestPolicy != "" || l.FamilyID != "" || l.ImageID != "") {
			notes = append(notes, "guest_policy, family_id and image_id are launch parameters, not build outputs; not compared")
		}
		return statement.Measurements{SNP: out}, notes, nil
	case statement.PlatformTDX:
		fw, err := tdx.ParseFirmware(img)
		if err != nil {
			return statement.Measurements{}, nil, fmt.Errorf("firmware %s: %w", m.Firmware, err)
		}
		mrtd, err := tdx.MRTD(fw, tdx.DefaultPageOrder)
		if err != nil {
			return statement.Measurements{}, nil, err
		}
		out := &statement.TDXMeasurements{MRTD: hex.EncodeToString(mrtd[:])}
		l := logged.TDX
		if l == nil {
			l = &statement.TDXMeasurements{}
		}
		// RTMR1 and RTMR2 of a direct kernel boot, when the release logs
		// them (its measure inputs then name the kernel).
		if l.RTMR1 != "" || l.RTMR2 != "" {
			if m.Kernel == "" {
				return statement.Measurements{}, nil, errors.New("the release logs rtmr1/rtmr2 but its recipe's measure inputs name no kernel")
			}
			b := tdx.DirectBoot{Cmdline: m.Cmdline}
			if b.Kernel, err = readLimited(m.Kernel, tdx.MaxKernelSize); err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("kernel: %w", err)
			}
			if m.Initrd != "" {
				if b.Initrd, err = readLimited(m.Initrd, tdx.MaxInitrdSize); err != nil {
					return statement.Measurements{}, nil, fmt.Errorf("initrd: %w", err)
				}
				if m.Memory == "" {
					return statement.Measurements{}, nil, errors.New("recipe.measure.memory is required to compute rtmr1 with an initrd (QEMU patches the initrd's load address, derived from -m, into the measured kernel)")
				}
				if b.MemorySize, err = tdx.ParseMemorySize(m.Memory); err != nil {
					return statement.Measurements{}, nil, fmt.Errorf("recipe.measure.memory: %v", err)
				}
			}
			ev, err := b.Events()
			if err != nil {
				return statement.Measurements{}, nil, err
			}
			r := tdx.FoldRTMRs(ev)
			out.RTMR1, out.RTMR2 = hex.EncodeToString(r[1][:]), hex.EncodeToString(r[2][:])
		}
		if l.RTMR0 != "" || l.RTMR3 != "" || l.MRConfigID != "" {
			notes = append(notes, "RTMR0 (host-dependent), RTMR3 (runtime) and MRCONFIGID (a launch parameter) are not recomputed from build outputs; not compared")
		}
		return statement.Measurements{TDX: out}, notes, nil
	}
	return statement.Measurements{}, nil, fmt.Errorf("unknown platform %q", platform)
}
