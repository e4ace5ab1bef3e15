// Package wasmbuild builds the WebAssembly client (cmd/attestlog-wasm) and
// the files the npm package ships with it: attestlog.wasm and Go's
// wasm_exec.js, from this repository's Go source, with the two build-time
// file replacements npm/overlay/README.md explains.
package wasmbuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Result says what was built.
type Result struct {
	Wasm, WasmExec string // paths
	Raw, Gzipped   int    // module size in bytes
}

// overlay is one replacement: the file path inside module (relative), the
// file of npm/overlay that takes its place, and whether the file must
// already exist there (replaced) or must not (added).
type overlay struct {
	module, file, ours string
	replaces           bool
}

var overlays = []overlay{
	{"github.com/google/logger", "logger_js.go", "logger_js.go", false},
	{"github.com/in-toto/in-toto-golang", "in_toto/util_unix.go", "in_toto_util_unix.go", true},
}

// runGo runs go with GOOS=js GOARCH=wasm in repo and returns its output.
func runGo(ctx context.Context, repo string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// prepare writes, in a temporary directory, the go.mod of the WebAssembly
// build (-modfile) and the copies of the two modules it points at; the
// caller removes the directory.
func prepare(ctx context.Context, repo string) (modfile, tmp string, err error) {
	goenv := func(args ...string) (string, error) { return runGo(ctx, repo, args...) }
	// go build -overlay refuses files in the module cache, so the two
	// modules are copied (at build time, never into the repository), the
	// file added or replaced in the copy, and the build pointed at the
	// copies by a go.mod of its own (-modfile): the native build and the
	// repository's go.mod are untouched.
	tmp, err = os.MkdirTemp("", "attestlog-wasm-")
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		return "", "", err
	}
	gomod = append(gomod, "\n// The WebAssembly build's copies (internal/wasmbuild).\n"...)
	for i, o := range overlays {
		dir, err := goenv("list", "-m", "-f", "{{.Dir}}", o.module)
		if err != nil {
			return "", "", err
		}
		if dir == "" {
			if _, err := goenv("mod", "download", o.module); err != nil {
				return "", "", err
			}
			if dir, err = goenv("list", "-m", "-f", "{{.Dir}}", o.module); err != nil {
				return "", "", err
			}
		}
		_, statErr := os.Stat(filepath.Join(dir, filepath.FromSlash(o.file)))
		switch {
		case o.replaces && statErr != nil:
			return "", "", fmt.Errorf("%s no longer has %s, which the WebAssembly build replaces: see npm/overlay/README.md", o.module, o.file)
		case !o.replaces && statErr == nil:
			return "", "", fmt.Errorf("%s now has %s, which the WebAssembly build adds: see npm/overlay/README.md", o.module, o.file)
		}
		cp := filepath.Join(tmp, fmt.Sprintf("m%d", i))
		if err := copyTree(dir, cp); err != nil {
			return "", "", err
		}
		ours, err := os.ReadFile(filepath.Join(repo, "npm", "overlay", o.ours))
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(cp, filepath.FromSlash(o.file)), ours, 0o644); err != nil {
			return "", "", err
		}
		gomod = fmt.Appendf(gomod, "replace %s => %s\n", o.module, cp)
	}
	modfile = filepath.Join(tmp, "wasm.go.mod")
	if err := os.WriteFile(modfile, gomod, 0o644); err != nil {
		return "", "", err
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "wasm.go.sum"), sum, 0o644); err != nil {
		return "", "", err
	}
	return modfile, tmp, nil
}

// Build builds the module from the repository at repo into out, without
// sigstore-go (see BuildWith).
func Build(ctx context.Context, repo, out string) (*Result, error) {
	return BuildWith(ctx, repo, out, false)
}

// BuildWith is Build; with sigstore, the module also verifies Sigstore
// provenance (policies with a sigstore-root line) and is 1.8 times as
// large (8.6 MB gzipped: over the npm package's budget, so not its
// default).
func BuildWith(ctx context.Context, repo, out string, sigstore bool) (*Result, error) {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	modfile, tmp, err := prepare(ctx, repo)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	goenv := func(args ...string) (string, error) { return runGo(ctx, repo, args...) }
	res := &Result{Wasm: filepath.Join(out, "attestlog.wasm"), WasmExec: filepath.Join(out, "wasm_exec.js")}
	version := "devel"
	if b, err := exec.CommandContext(ctx, "git", "-C", repo, "describe", "--always", "--dirty").Output(); err == nil {
		version = strings.TrimSpace(string(b))
	}
	ldflags := "-s -w -X main.version=" + version
	// attestlog_nosigstore leaves sigstore-go out (policy/provenance's
	// nosigstore.go): it and the Rekor, protobuf and gRPC code under it
	// would make the module 1.8 times as large (8.6 MB gzipped, not 4.8).
	tags := "attestlog_nosigstore"
	if sigstore {
		tags = ""
	}
	if _, err := goenv("build", "-modfile", modfile, "-tags", tags, "-trimpath", "-ldflags", ldflags, "-o", res.Wasm, "./cmd/attestlog-wasm"); err != nil {
		return nil, err
	}
	root, err := goenv("env", "GOROOT")
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
	wasm, err := os.ReadFile(res.Wasm)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	zw.Close()
	res.Raw, res.Gzipped = len(wasm), gz.Len()
	return res, nil
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
// go_js_wasm_exec), with the same two replacements as Build and with
// sigstore-go (as the tests' own fixtures need): the client decision's
// code, unchanged, passing its own tests in the runtime the npm package
// ships it for.
func Test(ctx context.Context, repo string, pkgs []string, stdout, stderr io.Writer) error {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	modfile, tmp, err := prepare(ctx, repo)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root, err := runGo(ctx, repo, "env", "GOROOT")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-modfile", modfile, "-exec", filepath.Join(root, "lib", "wasm", "go_js_wasm_exec")}, pkgs...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}
