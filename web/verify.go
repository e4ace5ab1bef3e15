package web

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
)

// verifyPage is what the "Verify an enclave" page serves.
type verifyPage struct {
	module fs.FS // attestlog.wasm and wasm_exec.js (internal/wasmbuild)
	config func() (VerifyConfig, error)
}

// VerifyConfig is what the verify page starts with: an enclave URL and a
// trust policy with the files it names (trust roots, which are public).
type VerifyConfig struct {
	Enclave string            `json:"enclave"`
	Policy  string            `json:"policy"`
	Files   map[string]string `json:"files,omitempty"`
}

// WithVerifyPage adds the page "Verify an enclave" to the explorer: the
// client decision (policy/verify) compiled to WebAssembly, loaded from the
// log's own origin (module holds attestlog.wasm and wasm_exec.js, as
// internal/wasmbuild writes them), fetching an enclave's evidence with a
// fresh nonce and showing the checklist. config fills the form (asked at
// each visit: trust roots may change while the log runs). Explorer only.
func WithVerifyPage(module fs.FS, config func() (VerifyConfig, error)) Option {
	return func(o *options) { o.verify = &verifyPage{module: module, config: config} }
}

// verifyCSP is the verify page's policy: the layout's, plus what running
// the WebAssembly module needs ('wasm-unsafe-eval', on this page only)
// and fetching evidence from an enclave elsewhere (https, or this origin).
const verifyCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' https:; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// VerifyPageData is the verify page's data (its JSON twin).
type VerifyPageData struct {
	Available bool   `json:"available"`
	Hint      string `json:"hint,omitempty"`
}

func (e *Explorer) handleVerify(w http.ResponseWriter, r *http.Request) {
	if e.o.verify == nil {
		e.rd.render(w, r, http.StatusNotFound, "verify", "Verify an enclave", VerifyPageData{Hint: "This log serves no WebAssembly client. Build it with 'go run ./internal/wasmbuild/build' (it writes npm/dist) and start the log again; or use 'attestlog verify --enclave URL'."}, e.nav("verify"), "")
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Security-Policy", verifyCSP)
	p := e.o.prefix
	e.rd.renderScripts(w, r, http.StatusOK, "verify", "Verify an enclave", VerifyPageData{Available: true}, e.nav("verify"), "",
		[]string{p + "verify/wasm/wasm_exec.js", p + "static/verify.js"})
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

func (e *Explorer) handleVerifyModule(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	name := r.PathValue("file")
	if e.o.verify == nil || (name != "attestlog.wasm" && name != "wasm_exec.js") {
		http.NotFound(w, r)
		return
	}
	if _, err := fs.Stat(e.o.verify.module, name); err != nil {
		e.rd.o.logger.Error("web: the WebAssembly client", "file", name, "err", err)
		http.Error(w, fmt.Sprintf("the WebAssembly client's %s is missing on this server", name), http.StatusNotFound)
		return
	}
	// Streamed, with Last-Modified: a visit after the first gets a 304,
	// not the 20 MB again (application/wasm by its extension, which
	// WebAssembly.instantiateStreaming requires).
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, e.o.verify.module, name)
}
