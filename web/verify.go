package web

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/attestlog/attestlog/npm"
)

// verifyPage is what the "Verify an enclave" page serves.
type verifyPage struct {
	module VerifyModule
	config func() (VerifyConfig, error)
}

// VerifyModule is where the verify page's WebAssembly client comes from:
// files built beforehand, or a build that may still be running.
type VerifyModule interface {
	// Module returns the client's files (attestlog.wasm and wasm_exec.js,
	// as internal/wasmbuild writes them) once they are ready, else nil
	// and what is happening. It is called at every request: a module
	// built on demand starts building at the first call, and never
	// blocks it.
	Module() (fs.FS, ModuleStatus)
}

// ModuleStatus says where a VerifyModule is.
type ModuleStatus struct {
	// Ready is true once the files are there.
	Ready bool `json:"ready"`
	// Building is true while they are being built; Step says what the
	// build is doing, Since when it began.
	Building bool      `json:"building"`
	Step     string    `json:"step,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Error says why there is no module and what would fix it (when not
	// ready and not building).
	Error string `json:"error,omitempty"`
	// Version is the module's (the npm package's) version, when ready.
	Version string `json:"version,omitempty"`
}

// ModuleDir is a VerifyModule of files built beforehand in a directory.
type ModuleDir string

// Module implements VerifyModule.
func (d ModuleDir) Module() (fs.FS, ModuleStatus) {
	f := os.DirFS(string(d))
	for _, name := range []string{"attestlog.wasm", "wasm_exec.js"} {
		if _, err := fs.Stat(f, name); err != nil {
			return nil, ModuleStatus{Error: fmt.Sprintf("%s holds no %s: build it with 'go run ./internal/wasmbuild/build -out %s'", string(d), name, string(d))}
		}
	}
	return f, ModuleStatus{Ready: true}
}

// WithVerifyPage adds the page "Verify an enclave" to the explorer: the
// client decision (policy/verify) compiled to WebAssembly, loaded from the
// log's own origin, fetching an enclave's evidence with a fresh nonce and
// showing the checklist. While module is being built, the page says so and
// reloads itself once it is ready. config fills the form (asked at each
// visit: trust roots may change while the log runs). Explorer only.
func WithVerifyPage(module VerifyModule, config func() (VerifyConfig, error)) Option {
	return func(o *options) { o.verify = &verifyPage{module: module, config: config} }
}

// VerifyConfig is what the verify page starts with: an enclave URL and a
// trust policy with the files it names (trust roots, which are public).
type VerifyConfig struct {
	Enclave string            `json:"enclave"`
	Policy  string            `json:"policy"`
	Files   map[string]string `json:"files,omitempty"`
	// Relay is an Oblivious HTTP relay's URL for the enclave's gateway
	// (absolute, or a path on this origin): the page then offers to send
	// the enclave a message with attestedFetch.
	Relay string `json:"relay,omitempty"`
}

// verifyCSP is the verify page's policy: the layout's, plus what running
// the WebAssembly module needs ('wasm-unsafe-eval', on this page only)
// and fetching evidence from an enclave elsewhere (https, or this origin).
const verifyCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' https:; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// VerifyPageData is the verify page's data (its JSON twin).
type VerifyPageData struct {
	Available bool          `json:"available"`
	Module    *ModuleStatus `json:"module,omitempty"`
	Hint      string        `json:"hint,omitempty"`
}

func (e *Explorer) handleVerify(w http.ResponseWriter, r *http.Request) {
	if e.o.verify == nil {
		e.rd.render(w, r, http.StatusNotFound, "verify", "Verify an enclave", VerifyPageData{Hint: "This log serves no WebAssembly client; 'attestlog verify --enclave URL --policy FILE' makes the same decision."}, e.nav("verify"), "")
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Security-Policy", verifyCSP)
	p := e.o.prefix
	_, st := e.o.verify.module.Module()
	code, scripts := http.StatusOK, []string{p + "static/verify.js"}
	switch {
	case st.Ready:
		scripts = []string{p + "verify/wasm/wasm_exec.js", p + "static/verify.js"}
	case !st.Building:
		code = http.StatusServiceUnavailable
	}
	e.rd.renderScripts(w, r, code, "verify", "Verify an enclave", VerifyPageData{Available: st.Ready, Module: &st}, e.nav("verify"), "", scripts)
}

// handleVerifyStatus serves the module's status (the page polls it while
// the module is being built).
func (e *Explorer) handleVerifyStatus(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if e.o.verify == nil {
		http.NotFound(w, r)
		return
	}
	_, st := e.o.verify.module.Module()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}

func (e *Explorer) handleVerifyConfig(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if e.o.verify == nil {
		http.NotFound(w, r)
		return
	}
	c, err := e.o.verify.config()
	if err != nil {
		e.rd.o.logger.Error("web: the verify page's configuration", "err", err)
		http.Error(w, "the verify page's configuration is unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(c)
}

// handleVerifyPackage serves the npm package's index.js, which the page
// runs (the same code a developer installs).
func (e *Explorer) handleVerifyPackage(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if e.o.verify == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(npm.IndexJS)
}

func (e *Explorer) handleVerifyModule(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	name := r.PathValue("file")
	if e.o.verify == nil || (name != "attestlog.wasm" && name != "wasm_exec.js") {
		http.NotFound(w, r)
		return
	}
	files, st := e.o.verify.module.Module()
	if !st.Ready {
		w.Header().Set("Retry-After", "5")
		msg := "the WebAssembly client is being built: " + st.Step
		if !st.Building {
			msg = "this server has no WebAssembly client: " + st.Error
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	if _, err := fs.Stat(files, name); err != nil {
		e.rd.o.logger.Error("web: the WebAssembly client", "file", name, "err", err)
		http.Error(w, fmt.Sprintf("the WebAssembly client's %s is missing on this server", name), http.StatusNotFound)
		return
	}
	// Streamed, with Last-Modified: a visit after the first gets a 304,
	// not the whole module again (application/wasm by its extension,
	// which WebAssembly.instantiateStreaming requires).
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, files, name)
}
