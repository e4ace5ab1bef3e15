package up

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attestlog/attestlog/internal/wasmbuild"
	"github.com/attestlog/attestlog/web"
)

// NewWasm returns the WebAssembly client of the explorer's verify page:
// the files in dir when dir is set (built beforehand with `go run
// ./internal/wasmbuild/build -out DIR`); else one built from the
// attestlog source tree around source (found upwards from it) at the
// page's first visit, in the background, kept in cache (by a hash of the
// build's inputs: a later start with the same source serves it at once);
// else a module that says why there is none and what to do. Building
// stops with ctx.
func NewWasm(ctx context.Context, dir, source, cache string, logger *slog.Logger) web.VerifyModule {
	if dir != "" {
		return web.ModuleDir(dir)
	}
	repo, err := wasmbuild.FindSource(source)
	if err != nil {
		return noWasm(fmt.Sprintf("this attestlog was started outside its source tree (%v), and builds its verifier from it: start 'attestlog up' in the attestlog repository, or set ATTESTLOG_WASM_DIR to a directory holding attestlog.wasm and wasm_exec.js ('go run ./internal/wasmbuild/build -out DIR' writes them)", err))
	}
	return &wasmBuilder{ctx: ctx, repo: repo, cache: cache, logger: logger}
}

// noWasm is a verify page module that cannot be: its text says why.
type noWasm string

func (n noWasm) Module() (fs.FS, web.ModuleStatus) { return nil, web.ModuleStatus{Error: string(n)} }

// wasmBuilder builds the module on demand (wasmbuild.Cache), once; a
// failed build is tried again at a visit a minute later.
type wasmBuilder struct {
	ctx         context.Context
	repo, cache string
	logger      *slog.Logger

	mu     sync.Mutex
	files  fs.FS
	st     web.ModuleStatus
	failed time.Time
}

// retryAfter is how long a failed build waits before a visit starts
// another.
const retryAfter = time.Minute

func (b *wasmBuilder) Module() (fs.FS, web.ModuleStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.st.Ready && !b.st.Building && (b.failed.IsZero() || time.Since(b.failed) > retryAfter) {
		b.st = web.ModuleStatus{Building: true, Since: time.Now(), Step: "starting"}
		go b.build()
	}
	return b.files, b.st
}

func (b *wasmBuilder) build() {
	t0 := time.Now()
	b.logger.Info("building the WebAssembly client for the verify page", "source", b.repo, "cache", b.cache)
	res, err := wasmbuild.Cache(b.ctx, b.repo, b.cache, wasmbuild.WithProgress(func(step string) {
		b.mu.Lock()
		b.st.Step = step
		b.mu.Unlock()
	}))
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failed = time.Now()
		why := err.Error()
		if errors.Is(err, wasmbuild.ErrNoGo) {
			why += ": install Go, or set ATTESTLOG_WASM_DIR to a directory holding attestlog.wasm and wasm_exec.js built elsewhere ('go run ./internal/wasmbuild/build -out DIR')"
		} else if i := strings.IndexByte(why, '\n'); i > 0 {
			why = why[:i] + " (the whole error is in attestlog up's log)"
		}
		b.st = web.ModuleStatus{Error: "building the verifier failed: " + why}
		b.logger.Error("building the WebAssembly client failed", "err", err)
		return
	}
	b.files = os.DirFS(filepath.Dir(res.Wasm))
	b.st = web.ModuleStatus{Ready: true, Version: res.Version}
	b.logger.Info("the WebAssembly client is ready", "took", time.Since(t0).Round(time.Millisecond), "version", res.Version, "bytes", res.Raw, "gzipped", res.Gzipped, "dir", filepath.Dir(res.Wasm))
}
