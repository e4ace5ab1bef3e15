// Package wasmbuild builds the WebAssembly client (cmd/attestlog-wasm) and
// the files the npm package ships with it — attestlog.wasm, Go's
// wasm_exec.js, build.json (what was built) and LICENSES.txt (the licences
// of everything linked into the module) — from this repository's Go
// source, with the build-time changes npm/overlay/README.md explains.
// Build builds into a directory; Cache keeps builds by a hash of their
// inputs, so that `attestlog up` serves the explorer's verify page without
// a separate step.
package wasmbuild

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ModulePath is this repository's Go module.
const ModulePath = "github.com/attestlog/attestlog"

// ErrNoGo is returned when there is no go command to build with.
var ErrNoGo = errors.New("building the WebAssembly client needs Go (go.mod says which version) on PATH, and there is none")

// Result says what was built (build.json beside the module holds it).
type Result struct {
	Wasm     string `json:"-"` // path of attestlog.wasm
	WasmExec string `json:"-"` // path of wasm_exec.js
	// Version is the npm package's version (npm/package.json), which the
	// module reports; Revision is the source's VCS revision.
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Go       string `json:"go"`
	Sigstore bool   `json:"sigstore"`
	Raw      int    `json:"bytes"`         // module size
	Gzipped  int    `json:"gzipped_bytes"` // gzip -9
	// Key is the hash of the build's inputs (Cache's key).
	Key string `json:"key,omitempty"`
}

// Option changes a build.
type Option func(*config)

type config struct {
	sigstore bool
	progress func(string)
	ldflags  string
}

// WithSigstore builds the module with sigstore-go: it then also verifies
// Sigstore provenance (policies with a sigstore-root line) and is 1.8
// times as large (over the npm package's budget, so not its default).
func WithSigstore() Option { return func(c *config) { c.sigstore = true } }

// WithProgress has f called with each step of the build as it begins
// ("compiling: 37 of 212 packages", …).
func WithProgress(f func(step string)) Option { return func(c *config) { c.progress = f } }

// WithSymbols keeps the module's symbol and name sections (for profiling;
// the default strips them with -s -w).
func WithSymbols() Option { return func(c *config) { c.ldflags = "" } }

func newConfig(opts []Option) *config {
	c := &config{progress: func(string) {}, ldflags: "-s -w"}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *config) tags() string {
	t := overlayTag
	if !c.sigstore {
		// attestlog_nosigstore leaves sigstore-go out (policy/provenance's
		// nosigstore.go): it and the Rekor, protobuf and gRPC code under
		// it would make the module 1.8 times as large.
		t += ",attestlog_nosigstore"
	}
	return t
}

// wasmEnv is the environment of every go command of the build: js/wasm,
// and GOEXPERIMENT=jsonv2, under which encoding/json runs on the standard
// library's JSON v2 and internal/jsonv2 is that same code, so the module
// links one JSON implementation instead of two (go-json-experiment's
// copy was 0.6 MB of code; see internal/jsonv2).
func wasmEnv() []string {
	return append(os.Environ(), "GOOS=js", "GOARCH=wasm", "GOEXPERIMENT=jsonv2")
}

// runGo runs go with GOOS=js GOARCH=wasm in repo and returns its output.
func runGo(ctx context.Context, repo string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = wasmEnv()
	b, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", ErrNoGo
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// prepared is a build's temporary directory: the go.mod of the
// WebAssembly build (-modfile) pointing at the patched copies of the
// modules it changes, and the -overlay file for the standard library.
type prepared struct {
	tmp, modfile, overlay string
}

func (p *prepared) close() { os.RemoveAll(p.tmp) }

// flags are the go command's flags for the build.
func (p *prepared) flags(c *config) []string {
	return []string{"-modfile", p.modfile, "-overlay", p.overlay, "-tags", c.tags()}
}

// prepare copies the modules the build changes (go build -overlay refuses
// files in the module cache) into a temporary directory, changes them
// there, and writes the go.mod that points the build at the copies and
// the overlay of the standard library: the native build and the
// repository's go.mod are untouched.
func prepare(ctx context.Context, repo string) (_ *prepared, err error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, ErrNoGo
	}
	goenv := func(args ...string) (string, error) { return runGo(ctx, repo, args...) }
	tmp, err := os.MkdirTemp("", "attestlog-wasm-")
	if err != nil {
		return nil, err
	}
	p := &prepared{tmp: tmp, modfile: filepath.Join(tmp, "wasm.go.mod"), overlay: filepath.Join(tmp, "overlay.json")}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		return nil, err
	}
	gomod = append(gomod, "\n// The WebAssembly build's copies (internal/wasmbuild).\n"...)
	copies := map[string]string{}
	for _, pt := range patches {
		cp, ok := copies[pt.module]
		if !ok {
			dir, err := goenv("list", "-m", "-f", "{{.Dir}}", pt.module)
			if err != nil {
				return nil, err
			}
			if dir == "" {
				if _, err := goenv("mod", "download", pt.module); err != nil {
					return nil, err
				}
				if dir, err = goenv("list", "-m", "-f", "{{.Dir}}", pt.module); err != nil {
					return nil, err
				}
			}
			cp = filepath.Join(tmp, fmt.Sprintf("m%d", len(copies)))
			if err := copyTree(dir, cp); err != nil {
				return nil, err
			}
			copies[pt.module] = cp
			gomod = fmt.Appendf(gomod, "replace %s => %s\n", pt.module, cp)
		}
		if err := pt.apply(repo, cp); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(p.modfile, gomod, 0o644); err != nil {
		return nil, err
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "wasm.go.sum"), sum, 0o644); err != nil {
		return nil, err
	}
	goroot, err := goenv("env", "GOROOT")
	if err != nil {
		return nil, err
	}
	replace := map[string]string{}
	for i, s := range stdPatches {
		m, err := s.apply(repo, goroot, tmp, i)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			replace[k] = v
		}
	}
	ov, _ := json.Marshal(map[string]any{"Replace": replace})
	if err := os.WriteFile(p.overlay, ov, 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// PackageVersion is the npm package's version (npm/package.json of the
// repository at repo): the version the module reports.
func PackageVersion(repo string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repo, "npm", "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("npm/package.json: %w", err)
	}
	if !semver.MatchString(pkg.Version) {
		return "", fmt.Errorf("npm/package.json: version %q is not MAJOR.MINOR.PATCH", pkg.Version)
	}
	return pkg.Version, nil
}

var semver = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// revision is the source's VCS revision (git describe), or "unknown".
func revision(ctx context.Context, repo string) string {
	b, err := exec.CommandContext(ctx, "git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// Build builds the module from the repository at repo into out
// (attestlog.wasm, wasm_exec.js, build.json, LICENSES.txt).
func Build(ctx context.Context, repo, out string, opts ...Option) (*Result, error) {
	repo, c, p, err := start(ctx, repo, opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	return build(ctx, repo, out, p, c, "")
}

// start prepares a build of the repository at repo (made absolute).
func start(ctx context.Context, repo string, opts []Option) (string, *config, *prepared, error) {
	c := newConfig(opts)
	repo, err := filepath.Abs(repo)
	if err != nil {
		return "", nil, nil, err
	}
	c.progress("preparing: copying the modules the build changes")
	p, err := prepare(ctx, repo)
	if err != nil {
		return "", nil, nil, err
	}
	return repo, c, p, nil
}

func build(ctx context.Context, repo, out string, p *prepared, c *config, key string) (*Result, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	version, err := PackageVersion(repo)
	if err != nil {
		return nil, err
	}
	res := &Result{Wasm: filepath.Join(out, "attestlog.wasm"), WasmExec: filepath.Join(out, "wasm_exec.js"),
		Version: version, Revision: revision(ctx, repo), Sigstore: c.sigstore, Key: key}
	if res.Go, err = runGo(ctx, repo, "env", "GOVERSION"); err != nil {
		return nil, err
	}
	deps, err := listDeps(ctx, repo, p, c)
	if err != nil {
		return nil, err
	}
	ldflags := strings.TrimSpace(c.ldflags + " -X main.version=" + res.Version + " -X main.revision=" + res.Revision)
	args := append([]string{"build", "-v", "-trimpath"}, p.flags(c)...)
	args = append(args, "-ldflags", ldflags, "-o", res.Wasm, "./cmd/attestlog-wasm")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = wasmEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	c.progress("compiling (packages Go has compiled before come from its cache)")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if !strings.ContainsAny(line, " :") {
			n++
			c.progress(fmt.Sprintf("compiling: %d of at most %d packages", n, len(deps)))
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, log.String())
	}
	c.progress("writing wasm_exec.js and the licences")
	root, err := runGo(ctx, repo, "env", "GOROOT")
	if err != nil {
		return nil, err
	}
	we, err := os.ReadFile(filepath.Join(root, "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return nil, fmt.Errorf("Go's wasm_exec.js: %w", err)
	}
	if err := os.WriteFile(res.WasmExec, we, 0o644); err != nil {
		return nil, err
	}
	if err := writeLicenses(filepath.Join(out, "LICENSES.txt"), repo, root, deps); err != nil {
		return nil, err
	}
	wasm, err := os.ReadFile(res.Wasm)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	zw.Close()
	res.Raw, res.Gzipped = len(wasm), gz.Len()
	bj, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "build.json"), append(bj, '\n'), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// dep is one package linked into the module.
type dep struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	EmbedFiles []string
	Module     *struct {
		Path, Version, Dir string
		Main               bool
		Replace            *struct{ Path, Version, Dir string }
	}
}

// listDeps lists the packages the module links, as the build sees them.
func listDeps(ctx context.Context, repo string, p *prepared, c *config) ([]dep, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,EmbedFiles,Module"}, p.flags(c)...)
	out, err := runGo(ctx, repo, append(args, "./cmd/attestlog-wasm")...)
	if err != nil {
		return nil, err
	}
	var deps []dep
	d := json.NewDecoder(strings.NewReader(out))
	for {
		var x dep
		if err := d.Decode(&x); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		deps = append(deps, x)
	}
	return deps, nil
}

// writeLicenses writes the licence of everything linked into the module:
// Go's (its runtime and standard library, and wasm_exec.js) and each
// module's, found beside its go.mod.
func writeLicenses(path, repo, goroot string, deps []dep) error {
	var b bytes.Buffer
	b.WriteString("The WebAssembly module of @attestlog/verify links the following, each under its licence below.\n")
	add := func(what, dir string) error {
		for _, name := range []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENCE"} {
			t, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				fmt.Fprintf(&b, "\n================================================================\n%s\n================================================================\n\n%s\n", what, bytes.TrimSpace(t))
				return nil
			}
		}
		return fmt.Errorf("no licence file found for %s in %s: the npm package must not ship code without its licence", what, dir)
	}
	if err := add("Go (runtime, standard library, wasm_exec.js)", goroot); err != nil {
		return err
	}
	seen := map[string]bool{}
	var mods []string
	dirs := map[string]string{}
	for _, d := range deps {
		if d.Module == nil || d.Module.Main {
			continue
		}
		id := d.Module.Path + " " + d.Module.Version
		if seen[id] {
			continue
		}
		seen[id] = true
		mods = append(mods, id)
		dirs[id] = d.Module.Dir
		if d.Module.Replace != nil && d.Module.Replace.Dir != "" {
			dirs[id] = d.Module.Replace.Dir
		}
	}
	sort.Strings(mods)
	for _, id := range mods {
		if err := add(id, dirs[id]); err != nil {
			return err
		}
	}
	if err := add(ModulePath+" (this package)", filepath.Join(repo, "npm")); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// Key hashes everything the build of repo reads: the go command's
// version, the build's flags, its changes to dependencies and to the
// standard library, the version of every other module it links, and the
// content of every file of this repository it compiles or embeds.
func key(ctx context.Context, repo string, p *prepared, c *config) (string, error) {
	h := sha256.New()
	goversion, err := runGo(ctx, repo, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	version, err := PackageVersion(repo)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "go %s\ntags %s\nldflags %s\nversion %s\nrevision %s\n", goversion, c.tags(), c.ldflags, version, revision(ctx, repo))
	for _, pt := range patches {
		fmt.Fprintf(h, "patch %s %s %d %s %s %q\n", pt.module, pt.file, pt.op, pt.ours, pt.fn, pt.body)
	}
	for _, s := range stdPatches {
		fmt.Fprintf(h, "std %s %s %q %q %s\n", s.pkg, s.file, s.from, s.to, s.ours)
	}
	files := []string{filepath.Join(repo, "go.mod"), filepath.Join(repo, "go.sum")}
	_ = filepath.WalkDir(filepath.Join(repo, "npm", "overlay"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	deps, err := listDeps(ctx, repo, p, c)
	if err != nil {
		return "", err
	}
	for _, d := range deps {
		switch {
		case d.Standard:
		case d.Module != nil && !d.Module.Main:
			fmt.Fprintf(h, "module %s %s\n", d.Module.Path, d.Module.Version)
		default:
			for _, f := range append(append([]string(nil), d.GoFiles...), d.EmbedFiles...) {
				files = append(files, filepath.Join(d.Dir, f))
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(repo, f)
		fmt.Fprintf(h, "file %s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Cache returns a build of the module from repo kept under dir (one
// subdirectory per key, the newest few kept), building it if no build of
// the same inputs is there.
func Cache(ctx context.Context, repo, dir string, opts ...Option) (*Result, error) {
	repo, c, p, err := start(ctx, repo, opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	c.progress("hashing the build's inputs")
	k, err := key(ctx, repo, p, c)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(dir, k[:32])
	if res, err := readResult(final); err == nil && res.Key == k {
		now := time.Now()
		os.Chtimes(final, now, now) // the newest are kept
		return res, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(dir, ".building-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if _, err := build(ctx, repo, work, p, c, k); err != nil {
		return nil, err
	}
	os.RemoveAll(final)
	if err := os.Rename(work, final); err != nil {
		return nil, err
	}
	prune(dir, 3)
	return readResult(final)
}

// readResult reads the build in dir (its build.json, and its files).
func readResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "build.json"))
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	r.Wasm, r.WasmExec = filepath.Join(dir, "attestlog.wasm"), filepath.Join(dir, "wasm_exec.js")
	for _, f := range []string{r.Wasm, r.WasmExec} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// prune removes all but the keep most recently used builds in dir.
func prune(dir string, keep int) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type build struct {
		path string
		at   time.Time
	}
	var bs []build
	for _, e := range es {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			bs = append(bs, build{filepath.Join(dir, e.Name()), fi.ModTime()})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].at.After(bs[j].at) })
	for i := keep; i < len(bs); i++ {
		os.RemoveAll(bs[i].path)
	}
}

// copyTree copies the directory src to dst (files writable: the module
// cache's are read-only).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(t, b, 0o644)
	})
}

// Test runs the tests of pkgs compiled to WebAssembly under Node (Go's
// go_js_wasm_exec), with the same changes as Build and with sigstore-go
// (as the tests' own fixtures need): the client decision's code,
// unchanged, passing its own tests in the runtime the npm package ships
// it for.
func Test(ctx context.Context, repo string, pkgs []string, stdout, stderr io.Writer) error {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	p, err := prepare(ctx, repo)
	if err != nil {
		return err
	}
	defer p.close()
	root, err := runGo(ctx, repo, "env", "GOROOT")
	if err != nil {
		return err
	}
	c := newConfig([]Option{WithSigstore()})
	args := append([]string{"test"}, p.flags(c)...)
	args = append(args, "-exec", filepath.Join(root, "lib", "wasm", "go_js_wasm_exec"))
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = repo
	cmd.Env = wasmEnv()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

// FindSource returns the root of the attestlog source tree holding dir
// (the nearest directory upwards whose go.mod is this module's).
func FindSource(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if m := moduleLine.FindSubmatch(b); m != nil && string(m[1]) == ModulePath {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s in %s or above", ModulePath, dir)
		}
	}
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+(\S+)\s*$`)

// Packages lists the import paths of the packages the module links, as
// its build sees them (with its changes to dependencies and the standard
// library).
func Packages(ctx context.Context, repo string) ([]string, error) {
	repo, c, p, err := start(ctx, repo, nil)
	if err != nil {
		return nil, err
	}
	defer p.close()
	deps, err := listDeps(ctx, repo, p, c)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(deps))
	for i, d := range deps {
		out[i] = d.ImportPath
	}
	return out, nil
}
