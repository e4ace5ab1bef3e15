// Package rebuild replays a release's build recipe and recomputes its
// launch measurement: it fetches the source at the logged commit with git
// (outside the build, with no hooks, filters or configuration the
// repository could bring), runs the recipe's argv in the checked-out tree
// inside bubblewrap (see bwrapArgs) as an unprivileged user with the
// recipe's environment applied inside the sandbox only, bounded while it
// runs by Limits (cgroups where the auditor may make one, else rlimits and
// polling), a time limit and an output limit, hashes the outputs and feeds
// them to policy/measure.
//
// Without a working sandbox there is no sandboxed result: SandboxAuto
// refuses to build (Outcome Unsandboxed), and only SandboxOff, said
// explicitly, builds on the host and marks the result unsandboxed.
//
// In every mode the auditor's key and state are out of a build's reach,
// and no build runs until a build has shown it (CheckSandbox): in the
// sandbox they are not mounted; on the host the build runs as another
// user (the auditor must be root), to whom the auditor's files must be
// closed.
package rebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
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
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/measure/ovmf"
	"github.com/attestlog/attestlog/policy/measure/snp"
	"github.com/attestlog/attestlog/policy/measure/tdx"
)

// Sandbox modes.
const (
	SandboxRequired = "required" // refuse to start without a working bubblewrap
	SandboxAuto     = "auto"     // bubblewrap when it works, else refuse each rebuild
	SandboxOff      = "off"      // build on the host, results marked unsandboxed
)

// Outcomes.
const (
	Reproduced = "reproduced"
	Mismatch   = "mismatch"
	Failed     = "failed"
	// Unsandboxed: no rebuild ran, because no sandbox works here and the
	// auditor's operator did not say sandbox: off.
	Unsandboxed = "unsandboxed"
)

// Errors of CheckSandbox that no mode builds past.
var (
	// ErrNoBuildUser: builds would run on the host as the auditor's own
	// user (or root), which can read its key and rewrite its state.
	ErrNoBuildUser = errors.New("no separate user to build as")
	// ErrExposed: a build could read, write or replace one of
	// Builder.Private or write or replace one of Builder.Guarded.
	ErrExposed = errors.New("a build could reach the auditor's key or state")
)

// MaxOutputTail bounds the build output a failed result carries.
const MaxOutputTail = 4096

// Builder runs rebuilds. Its fields are set by the caller before use.
type Builder struct {
	Sandbox     string        // SandboxRequired, SandboxAuto or SandboxOff
	Bwrap       string        // bubblewrap binary
	Git         string        // git binary
	Timeout     time.Duration // for the clone and for the build, each
	MaxLog      int64         // build log bytes; the build is stopped beyond
	MaxOutput   int64         // bytes in the build tree after the build
	Limits      Limits        // bounds while the build runs
	WorkDir     string        // parent of the per-build directories
	RepoSchemes []string      // URL schemes git may fetch from
	Path        string        // PATH of the build
	Keep        bool          // keep build directories
	// User is who builds run as, sandboxed or not, when the auditor runs
	// as root (default DefaultUser); an auditor that is not root builds
	// in bubblewrap as itself, and not at all with SandboxOff.
	User *Credential
	// Private are the auditor's files and directories that no build may
	// read, write, enter or replace: its key, its database and the
	// directory that holds it. Guarded are those that decide what the
	// auditor trusts when it next starts (configuration, policies,
	// evidence): no build may write or replace them. CheckSandbox runs a
	// build that tries, and refuses every build if one can.
	Private, Guarded []string

	once        sync.Once
	mu          sync.Mutex
	fatal       error // no build runs, in any mode
	useBwrap    bool
	bwrapErr    error
	bwrapPath   string
	prlimitPath string
	enforcement string
	noCgroup    bool // tests: enforce with rlimits and polling only
}

// CheckSandbox decides, once, whether builds run in bubblewrap, by running
// one as a build would, and whether a build can reach what Private and
// Guarded name, by running another. In SandboxRequired mode an unusable
// sandbox is an error; in SandboxAuto mode it makes every Rebuild refuse.
// In every mode, a build that could reach the auditor's files, or one
// that would run on the host as the auditor's user, is an error (wrapping
// ErrExposed or ErrNoBuildUser) and no Rebuild builds.
func (b *Builder) CheckSandbox(ctx context.Context) (sandboxed bool, err error) {
	b.once.Do(func() {
		if b.fatal = b.check(ctx); b.fatal != nil {
			b.enforcement = "no build can run: " + b.fatal.Error()
		}
	})
	if b.fatal != nil {
		return false, b.fatal
	}
	if b.Sandbox == SandboxRequired && !b.useBwrap {
		return false, fmt.Errorf("rebuild sandbox is required but bubblewrap is unusable: %v (install Debian's bubblewrap; or set rebuild.sandbox to off to build on the host as another user, marking reproductions unsandboxed)", b.bwrapErr)
	}
	return b.useBwrap, nil
}

// check is CheckSandbox's one run; its error stops every build.
func (b *Builder) check(ctx context.Context) error {
	if b.User == nil && os.Geteuid() == 0 {
		u := DefaultUser
		b.User = &u
	}
	p, err := exec.LookPath("prlimit")
	if err != nil { // nothing runs without its limits, in any mode
		return fmt.Errorf("rebuilds cannot run: prlimit (Debian's util-linux) sets the builds' rlimits: %w", err)
	}
	b.prlimitPath = p
	how := "rlimits and /proc polling"
	if cg, err := b.newCgroup(); err == nil {
		how = cg.String()
		cg.remove()
	} else {
		how += " (no cgroup: " + err.Error() + ")"
	}
	if b.Sandbox == SandboxOff {
		switch {
		case b.User == nil:
			return fmt.Errorf("%w: rebuild.sandbox is off and the auditor runs as uid %d, not root, so recipes would run as the auditor itself, able to read its key and rewrite its state; run the auditor as root (it then builds as rebuild.user, default 65534:65534; best a uid no other service uses) or set rebuild.sandbox to required (bubblewrap)", ErrNoBuildUser, os.Geteuid())
		case b.User.UID == 0 || b.User.UID == uint32(os.Geteuid()):
			return fmt.Errorf("%w: rebuild.sandbox is off and rebuild.user is uid %d, the auditor's own or root; set rebuild.user to a uid of its own (default 65534:65534)", ErrNoBuildUser, b.User.UID)
		}
		if err := b.probe(ctx, false); err != nil {
			return fmt.Errorf("rebuild.sandbox is off and no build runs as uid %d here: %v", b.User.UID, err)
		}
		b.enforcement = fmt.Sprintf("no sandbox (rebuild.sandbox: off): on the host as uid %d, limits by %s", b.User.UID, how)
		return b.checkReach(ctx, false)
	}
	p, err = exec.LookPath(b.Bwrap)
	if err == nil {
		b.bwrapPath = p
		if perr := b.probe(ctx, true); perr != nil {
			err = fmt.Errorf("%s does not work here: %v", p, perr)
		}
	}
	if err != nil {
		b.bwrapErr = err
		b.enforcement = "no working sandbox: " + err.Error()
		return nil // SandboxAuto: no build runs; SandboxRequired: CheckSandbox fails
	}
	b.useBwrap = true
	user := "the auditor's user"
	if b.User != nil {
		user = fmt.Sprintf("uid %d", b.User.UID)
	}
	b.enforcement = fmt.Sprintf("bubblewrap as %s, limits by %s", user, how)
	return b.checkReach(ctx, true)
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
	// Limit names the limit (a key of rebuild.limits) that stopped a
	// failed build.
	Limit string `json:"limit,omitempty"`
	// BuildOutput is the last MaxOutputTail bytes of a failed build's
	// output, with control characters escaped: text the release's
	// operator controls, never the auditor's.
	BuildOutput string        `json:"untrusted_build_output_tail,omitempty"`
	Duration    time.Duration `json:"duration"`
}

// MarshalJSON writes the duration for a person ("42ms"), not in
// nanoseconds: results are alert evidence people read.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
	}{plain(r), r.Duration.Round(time.Millisecond).String()})
}

// UnmarshalJSON reads what MarshalJSON writes (and a duration in
// nanoseconds, as evidence written before it).
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var v struct {
		plain
		Duration json.RawMessage `json:"duration"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.plain)
	r.Duration = 0
	if len(v.Duration) == 0 || string(v.Duration) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(v.Duration, &s); err == nil {
		d, err := time.ParseDuration(s)
		r.Duration = d
		return err
	}
	var ns int64
	err := json.Unmarshal(v.Duration, &ns)
	r.Duration = time.Duration(ns)
	return err
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
	if !sandboxed && b.Sandbox != SandboxOff {
		r.Outcome = Unsandboxed
		r.Reason = fmt.Sprintf("not rebuilt: no working sandbox (%v); install bubblewrap and restart the auditor, or set rebuild.sandbox: off to build on the host with reproductions marked unsandboxed", b.bwrapErr)
		return r
	}
	r.Sandboxed = sandboxed
	// Admission refuses these; a statement that did not pass admission
	// must not change how anything is loaded either.
	if err := statement.CheckRecipeEnv("recipe.env", rel.Recipe.Env); err != nil {
		return failed(r, "%v", err)
	}
	if rel.Recipe.Measure == nil || rel.Recipe.Measure.Firmware == "" {
		return failed(r, "the recipe has no measure section naming the firmware output, so no measurement can be recomputed")
	}
	work, err := b.workDir(safeName(name))
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

	log, err := b.exec(ctx, sandboxed, rel.Recipe.Argv, rel.Recipe.Env, work, src)
	if err != nil {
		r.BuildOutput = OutputTail(log, MaxOutputTail)
		var le *LimitError
		if errors.As(err, &le) {
			r.Limit = le.Limit
		}
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
		art.Match = true
		for alg, logged := range a.Digest.Set() {
			if rebuilt := art.Rebuilt.Get(alg); logged != rebuilt {
				art.Match = false
				r.Differences = append(r.Differences, Difference{What: "artifact " + a.Name + " " + alg, Logged: logged, Rebuilt: rebuilt})
			}
		}
		if !art.Match {
			mismatch = true
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
	case Unsandboxed:
		b.WriteString(r.Reason)
	}
	if !r.Sandboxed && r.Outcome != Unsandboxed {
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

// fetch clones the source at s.Commit into dst, outside any build and
// before it. Nothing of the repository configures git: no system or
// global configuration, no templates (so no hooks), hooks and fsmonitor
// off, no filter drivers defined (so .gitattributes can name none), no
// submodules, object checks on, and only the schemes of rebuild.repo_schemes
// for every transport git might use (protocol.allow).
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
	env := []string{"PATH=" + b.Path, "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ATTR_NOSYSTEM=1", "GIT_NO_REPLACE_OBJECTS=1", "LC_ALL=C",
		"GIT_ALLOW_PROTOCOL=" + strings.Join(b.RepoSchemes, ":")}
	safe := []string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.allow=never",
		"-c", "submodule.recurse=false", "-c", "transfer.fsckObjects=true", "-c", "core.symlinks=true",
		"-c", "init.templateDir=", "-c", "advice.detachedHead=false"}
	for _, sc := range b.RepoSchemes {
		safe = append(safe, "-c", "protocol."+sc+".allow=always")
	}
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, b.Git, append(slices.Clone(safe), args...)...)
		cmd.Env = env
		cmd.Dir = home
		stderr := &limitWriter{max: 4096, cancel: func() {}}
		cmd.Stderr = stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", args[0], err, OutputTail(strings.TrimSpace(stderr.String()), 1024))
		}
		return out, nil
	}
	if _, err := git("clone", "--quiet", "--no-checkout", "--template=", "--", repo, dst); err != nil {
		return err
	}
	if _, err := git("-C", dst, "checkout", "--quiet", "--detach", s.Commit+"^{commit}"); err != nil {
		return err
	}
	out, err := git("-C", dst, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(out)); got != s.Commit {
		return fmt.Errorf("checked out %s, want %s", got, s.Commit)
	}
	return nil
}

// OutputTail is the last max bytes of text (at a UTF-8 boundary), with
// every control character but newline and tab escaped as \xNN and
// invalid UTF-8 as \ufffd, so that build output shown in a terminal or
// page cannot pose as anything else.
func OutputTail(text string, max int) string {
	cut := false
	if len(text) > max {
		text, cut = text[len(text)-max:], true
		for i := 0; i < 4 && len(text) > 0 && !utf8.RuneStart(text[0]); i++ {
			text = text[1:]
		}
	}
	var b strings.Builder
	if cut {
		b.WriteString("[…]")
	}
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString("\\ufffd")
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
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
	h256, h384, h512 := sha256.New(), sha512.New384(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(h256, h384, h512), f); err != nil {
		return statement.Digest{}, err
	}
	return statement.Digest{SHA256: hex.EncodeToString(h256.Sum(nil)), SHA384: hex.EncodeToString(h384.Sum(nil)), SHA512: hex.EncodeToString(h512.Sum(nil))}, nil
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
			if cfg.VCPUSig, err = snp.ParseVCPUType(m.VCPUType); err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("recipe.measure.vcpu_type: %v", err)
			}
		}
		if m.GuestFeatures != "" {
			if cfg.GuestFeatures, err = snp.ParseGuestFeatures(m.GuestFeatures); err != nil {
				return statement.Measurements{}, nil, fmt.Errorf("recipe.measure.guest_features: %v", err)
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
