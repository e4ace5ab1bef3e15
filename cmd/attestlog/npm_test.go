package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/npm"
)

// TestNPMPackage uses the npm package as a JavaScript developer does:
// npm pack (which builds the WebAssembly module), npm install of the
// tarball into an empty project, import by name — then, against a real
// `attestlog up`, under Node and in Chromium: saved evidence in every
// input form (text, Uint8Array, Buffer, ArrayBuffer, DataView, a parsed
// object) decides as `attestlog verify --json` does, good and attacked (a
// tampered stapled proof, a wrong nonce, and, once revoked, the revoked
// release); fetchAndVerify and trustEnclave fetch through the platform;
// timeouts, aborts, a refused connection and wrong input fail with their
// codes; the package's own `npm test` passes against the enclave; and a
// package that cannot be built and has no module is refused by npm pack.
func TestNPMPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly module and starts up")
	}
	node := testenv.LookPath(t, "node")
	npmCmd := testenv.LookPath(t, "npm")
	testenv.LookPath(t, "go")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
		}
		return string(out)
	}

	// The package's source, as in the repository (without a module).
	src := filepath.Join(dir, "src")
	copyPackage(t, filepath.Join(repo, "npm"), src)

	// npm pack refuses when it can neither build the module (no go on
	// PATH) nor find one built before.
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	for _, p := range []string{node, npmCmd, testenv.LookPath(t, "sh")} { // npm runs scripts with sh
		if err := os.Symlink(p, filepath.Join(bin, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	noGo := exec.Command(npmCmd, "pack", "--pack-destination", dir)
	noGo.Dir = src
	noGo.Env = append(os.Environ(), "PATH="+bin, "ATTESTLOG_REPO="+repo)
	out, err := noGo.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to pack") || !strings.Contains(string(out), "no go command") {
		t.Fatalf("npm pack without Go and without a module: %v, want it refused saying why\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tgz")); len(m) != 0 {
		t.Fatalf("npm pack without a module still wrote %v", m)
	}

	// npm pack with Go builds the module into the package.
	run(src, []string{"ATTESTLOG_REPO=" + repo}, npmCmd, "pack", "--pack-destination", dir)
	tgz := filepath.Join(dir, fmt.Sprintf("attestlog-verify-%s.tgz", npm.Version))
	list := run(dir, nil, "tar", "tzf", tgz)
	for _, f := range []string{"package/package.json", "package/index.js", "package/index.d.ts", "package/README.md", "package/LICENSE",
		"package/dist/attestlog.wasm", "package/dist/wasm_exec.js", "package/dist/build.json", "package/dist/LICENSES.txt"} {
		if !strings.Contains(list, f+"\n") {
			t.Errorf("the packed package lacks %s:\n%s", f, list)
		}
	}
	for _, f := range []string{"package/test/", "package/scripts/", "package/overlay/", "package/npm.go"} {
		if strings.Contains(list, f) {
			t.Errorf("the packed package ships %s:\n%s", f, list)
		}
	}

	// An empty project installs it from the tarball and imports it by name.
	app := filepath.Join(dir, "app")
	os.Mkdir(app, 0o755)
	os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name": "app", "private": true, "type": "module"}`+"\n"), 0o644)
	run(app, nil, npmCmd, "install", "--offline", "--no-audit", "--no-fund", tgz)
	cases, err := os.ReadFile(filepath.Join(repo, "npm", "test", "cases.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app, "cases.mjs"), cases, 0o644)
	os.WriteFile(filepath.Join(app, "run.mjs"), []byte(`import * as api from "@attestlog/verify";
import { run } from "./cases.mjs";
import { readFileSync, writeFileSync } from "node:fs";
writeFileSync(process.argv[3], JSON.stringify(await run(api, JSON.parse(readFileSync(process.argv[2], "utf8")))));
process.exit(0); // the module's Go program never exits by itself
`), 0o644)

	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false")
	stall := stallServer(t)
	refused := "http://" + freeAddr(t)
	policy, err := os.ReadFile(u.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range []string{u.info.Demo.TrustRoot, u.info.Demo.GPUTrustRoot} {
		if f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Base(f)] = string(b)
		}
	}

	// Samples of evidence, each with the verdict of `attestlog verify
	// --json` on it.
	type sample struct {
		Name     string `json:"name"`
		Evidence string `json:"evidence"`
		Nonce    string `json:"nonce"`
		cli      string
		wantOK   bool
		failed   string // a check that must fail
	}
	save := func(name, evidence, nonce string, wantOK bool, failed string) *sample {
		t.Helper()
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		os.WriteFile(p, []byte(evidence), 0o644)
		stdout, stderr, err := tryCmd(t, "verify", "--json", "--policy", u.info.ClientPolicy, "--evidence", p, "--nonce", nonce)
		if (err == nil) != wantOK || stdout == "" {
			t.Fatalf("attestlog verify --json on %s: %v, want ok %v\n%s%s", name, err, wantOK, stdout, stderr)
		}
		return &sample{Name: name, Evidence: evidence, Nonce: nonce, cli: strings.TrimSpace(stdout), wantOK: wantOK, failed: failed}
	}
	good, nonce := fetchEvidence(t, u.info.Demo.URL)
	samples := []*sample{
		save("good", good, nonce, true, ""),
		save("wrong nonce", good, newNonce(), false, "nonce binding"),
		save("tampered proof", tamperProof(t, good), nonce, false, "inclusion proof"),
	}
	type casesIn struct {
		Policy  string            `json:"policy"`
		Files   map[string]string `json:"files"`
		Enclave string            `json:"enclave"`
		Relay   string            `json:"relay"`
		Stall   string            `json:"stall"`
		Refused string            `json:"refused"`
		Samples []*sample         `json:"samples"`
		Revoked bool              `json:"-"`
	}
	in := casesIn{Policy: string(policy), Files: files, Enclave: u.info.Demo.URL, Relay: u.info.Demo.RelayURL, Stall: stall, Refused: refused, Samples: samples}

	// The package's own tests, against the enclave.
	t.Run("npm test", func(t *testing.T) {
		out := run(src, []string{"ATTESTLOG_TEST_ENCLAVE=" + u.info.Demo.URL, "ATTESTLOG_TEST_POLICY=" + u.info.ClientPolicy, "ATTESTLOG_TEST_RELAY=" + u.info.Demo.RelayURL, "ATTESTLOG_STRICT=1"}, npmCmd, "test")
		if !regexp.MustCompile(`(?m)^# pass [1-9]`).MatchString(out) || !regexp.MustCompile(`(?m)^# (fail|skipped) 0$`).MatchString(out) {
			t.Errorf("npm test:\n%s", out)
		}
	})

	runNode := func(in casesIn) map[string]caseResult {
		t.Helper()
		b, _ := json.Marshal(in)
		p := filepath.Join(dir, "cases.json")
		os.WriteFile(p, b, 0o644)
		res := filepath.Join(dir, "results.json")
		os.Remove(res)
		run(app, nil, node, "run.mjs", p, res)
		b, err := os.ReadFile(res)
		if err != nil {
			t.Fatal(err)
		}
		return parseResults(t, string(b))
	}
	check := func(where string, in casesIn, got map[string]caseResult) {
		t.Helper()
		forms := []string{"string", "Uint8Array", "ArrayBuffer", "DataView", "object"}
		if where == "Node" {
			forms = append(forms, "Buffer")
		}
		for _, s := range in.Samples {
			for _, form := range forms {
				r := got[s.Name+"/"+form]
				if r.Error != nil {
					t.Errorf("%s: %s as %s: %+v", where, s.Name, form, r.Error)
					continue
				}
				if err := sameVerdict(r.Value, s.cli, s.wantOK, s.failed); err != nil {
					t.Errorf("%s: %s as %s: %v", where, s.Name, form, err)
				}
			}
		}
		fetched, trusted := got["fetchAndVerify"], got["trustEnclave"]
		if in.Revoked {
			if err := sameVerdict(fetched.Value, "", false, "not revoked"); err != nil || fetched.Error != nil {
				t.Errorf("%s: fetchAndVerify of the revoked release: %v %+v", where, err, fetched.Error)
			}
			if trusted.Error == nil || trusted.Error.Code != "ATTESTLOG_NOT_TRUSTED" {
				t.Errorf("%s: trustEnclave of the revoked release: %+v, want ATTESTLOG_NOT_TRUSTED", where, trusted)
			}
		} else {
			if err := sameVerdict(fetched.Value, "", true, ""); err != nil || fetched.Error != nil {
				t.Errorf("%s: fetchAndVerify of up's demo enclave: %v %+v", where, err, fetched.Error)
			}
			if trusted.Error != nil || !strings.Contains(trusted.Value, `"ok":true`) || !strings.Contains(trusted.Value, `"frozen":true`) {
				t.Errorf("%s: trustEnclave of up's demo enclave: %+v", where, trusted)
			}
		}
		// attestedFetch through up's OHTTP relay: answered while the
		// enclave is trusted, refused (nothing sent) once revoked.
		for kem, name := range map[string]string{"mlkem768x25519": "MLKEM768-X25519", "x25519": "X25519"} {
			r := got["attestedFetch "+kem]
			switch {
			case in.Revoked && (r.Error == nil || r.Error.Code != "ATTESTLOG_NOT_TRUSTED" || !r.Error.AttestlogError):
				t.Errorf("%s: attestedFetch (%s) to the revoked release: %+v, want ATTESTLOG_NOT_TRUSTED", where, kem, r)
			case !in.Revoked && (r.Error != nil || !strings.Contains(r.Value, "You said: through the package") || !strings.Contains(r.Value, `"kem":"`+name+`"`)):
				t.Errorf("%s: attestedFetch (%s) through up's relay: %+v", where, kem, r)
			}
		}
		// A streamed answer through the relay: the words the demo
		// service writes 25 ms apart come out of the body stream in
		// parts, opened, and whole.
		if !in.Revoked {
			r := got["attestedFetch stream"]
			var st struct {
				Status, Parts int
				Text          string
			}
			if r.Error != nil || json.Unmarshal([]byte(r.Value), &st) != nil {
				t.Errorf("%s: attestedFetch streamed: %+v", where, r)
			} else if st.Status != 200 || st.Parts < 2 || !strings.Contains(st.Text, `"content":" package"`) || !strings.HasSuffix(strings.TrimSpace(st.Text), "data: [DONE]") {
				t.Errorf("%s: attestedFetch streamed: status %d, %d part(s) (want several), text %q", where, st.Status, st.Parts, st.Text)
			}
		}
		for name, code := range map[string]string{"timeout": "ATTESTLOG_TIMEOUT", "abort": "ATTESTLOG_ABORTED", "aborted before": "ATTESTLOG_ABORTED",
			"refused": "ATTESTLOG_FETCH", "short nonce": "ATTESTLOG_BAD_INPUT", "number evidence": "ATTESTLOG_BAD_INPUT"} {
			if r := got[name]; r.Error == nil || r.Error.Code != code || !r.Error.AttestlogError {
				t.Errorf("%s: %s: %+v, want an AttestlogError %s", where, name, r, code)
			}
		}
		if r := got["timeout"]; r.Ms > 20000 {
			t.Errorf("%s: a 300 ms timeout took %.0f ms", where, r.Ms)
		}
		if v := got["version"]; v.Value != npm.Version {
			t.Errorf("%s: the module says version %+v, want the package's %s", where, v, npm.Version)
		}
		var info struct {
			Crypto struct {
				WebCrypto bool `json:"webcrypto"`
			} `json:"crypto"`
		}
		if err := json.Unmarshal([]byte(got["info"].Value), &info); err != nil || !info.Crypto.WebCrypto {
			t.Errorf("%s: info: %s (%v), want WebCrypto verifying signatures", where, got["info"].Value, err)
		}
		first := in.Samples[0].Name + "/string"
		t.Logf("%s: fetchAndVerify in %.0f ms; %s (the first decision of this page or process) in %.0f ms", where, fetched.Ms, first, got[first].Ms)
	}

	browser := testenv.Chromium(t)
	pageURL := serveApp(t, app)
	runChromium := func(in casesIn) map[string]caseResult {
		t.Helper()
		b, _ := json.Marshal(in)
		if err := chromedp.Do(browser, chromedp.Navigate(pageURL), chromedp.Poll[chromedp.Void](`window.__ready === true`, chromedp.WithPollingTimeout(time.Minute))); err != nil {
			t.Fatalf("loading the test page in Chromium: %v", err)
		}
		s, err := chromedp.Run(browser, chromedp.Evaluate[string](fmt.Sprintf("window.__run(%s)", b), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("running the cases in Chromium: %v", err)
		}
		return parseResults(t, s)
	}

	check("Node", in, runNode(in))
	check("Chromium", in, runChromium(in))

	// Revoke the demo release: once the enclave staples the index proof
	// that shows it, its fresh evidence is the "revoked" sample.
	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(u.info.Demo.ReleaseIndex), "--reason", "CVE-2026-0003", "--wait", "--proof-out", filepath.Join(t.TempDir(), "revocation.tlog-proof"))
	var revoked *sample
	for deadline := time.Now().Add(90 * time.Second); revoked == nil; time.Sleep(time.Second) {
		ev, n := fetchEvidence(t, u.info.Demo.URL)
		p := filepath.Join(dir, "maybe-revoked.json")
		os.WriteFile(p, []byte(ev), 0o644)
		if _, _, err := tryCmd(t, "verify", "--json", "--policy", u.info.ClientPolicy, "--evidence", p, "--nonce", n); err != nil {
			revoked = save("revoked", ev, n, false, "not revoked")
		} else if time.Now().After(deadline) {
			t.Fatal("the demo enclave still staples a proof that its release is not revoked")
		}
	}
	in.Samples, in.Revoked = []*sample{revoked}, true
	check("Node", in, runNode(in))
	check("Chromium", in, runChromium(in))
}

// caseResult is one case of npm/test/cases.mjs.
type caseResult struct {
	Value string  `json:"value"`
	Ms    float64 `json:"ms"`
	Error *struct {
		Code           string `json:"code"`
		Message        string `json:"message"`
		AttestlogError bool   `json:"attestlogError"`
	} `json:"error"`
}

func parseResults(t *testing.T, s string) map[string]caseResult {
	t.Helper()
	var m map[string]caseResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &m); err != nil || len(m) == 0 {
		t.Fatalf("the cases gave %.500q: %v", s, err)
	}
	return m
}

// sameVerdict compares a verdict of the package with want, the CLI's
// (unless ""): the same decision, the same checks in the same order, each
// passing or failing alike, the failed ones for the same reason, and the
// same release (passed checks' reasons may say how long ago a checkpoint
// was cosigned, which moves between two runs). failed names a check that
// must fail.
func sameVerdict(got, want string, wantOK bool, failed string) error {
	type verdict struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name   string `json:"name"`
			OK     bool   `json:"ok"`
			Reason string `json:"reason"`
		} `json:"checks"`
		Release json.RawMessage `json:"release"`
	}
	var g verdict
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return fmt.Errorf("not a verdict: %q", got)
	}
	if g.OK != wantOK {
		return fmt.Errorf("ok %v, want %v: %s", g.OK, wantOK, got)
	}
	if failed != "" {
		found := false
		for _, c := range g.Checks {
			found = found || (c.Name == failed && !c.OK)
		}
		if !found {
			return fmt.Errorf("check %q does not fail: %s", failed, got)
		}
	}
	if want == "" {
		return nil
	}
	var w verdict
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return err
	}
	if len(g.Checks) != len(w.Checks) {
		return fmt.Errorf("%d checks, the CLI %d:\n%s\n%s", len(g.Checks), len(w.Checks), got, want)
	}
	for i, c := range g.Checks {
		wc := w.Checks[i]
		if c.Name != wc.Name || c.OK != wc.OK || (!c.OK && c.Reason != wc.Reason) {
			return fmt.Errorf("check %d: %s %v %q, the CLI: %s %v %q", i, c.Name, c.OK, c.Reason, wc.Name, wc.OK, wc.Reason)
		}
	}
	if string(g.Release) != string(w.Release) {
		return fmt.Errorf("release %s, the CLI's %s", g.Release, w.Release)
	}
	return nil
}

func newNonce() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fetchEvidence asks the enclave for evidence bound to a fresh nonce.
func fetchEvidence(t *testing.T, enclave string) (evidence, nonce string) {
	t.Helper()
	nonce = newNonce()
	resp, err := http.Get(strings.TrimSuffix(enclave, "/") + "/.well-known/attestlog/evidence?nonce=" + nonce)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence from %s: %v %s %s", enclave, err, resp.Status, b)
	}
	return string(b), nonce
}

// tamperProof flips one bit of a hash of the inclusion proof stapled to
// evidence (the first line of the proof that is a base64 hash).
func tamperProof(t *testing.T, evidence string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(evidence), &m); err != nil {
		t.Fatal(err)
	}
	proof, _ := m["proof"].(string)
	lines := strings.Split(proof, "\n")
	hash := regexp.MustCompile(`^[A-Za-z0-9+/]{43}=$`)
	for i, l := range lines {
		if hash.MatchString(l) {
			c := []byte(l)
			c[0] ^= 'A' ^ 'B'
			if c[0] == l[0] {
				c[0] = 'C'
			}
			lines[i] = string(c)
			m["proof"] = strings.Join(lines, "\n")
			b, _ := json.Marshal(m)
			return string(b)
		}
	}
	t.Fatalf("no hash in the stapled proof:\n%s", proof)
	return ""
}

// stallServer returns a URL that accepts requests and never answers (until
// the test ends).
func stallServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); s.Close() })
	return s.URL
}

// serveApp serves the project dir (with the package installed in
// node_modules) and a page that imports the package by name (an import
// map) and runs cases.mjs when asked.
func serveApp(t *testing.T, app string) string {
	t.Helper()
	page := `<!doctype html><meta charset="utf-8"><title>@attestlog/verify</title>
<script type="importmap">{"imports": {"@attestlog/verify": "/node_modules/@attestlog/verify/index.js"}}</script>
<script type="module">
import * as api from "@attestlog/verify";
import { run } from "/cases.mjs";
window.__run = async (c) => JSON.stringify(await run(api, c));
window.__ready = true;
</script>`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.Handle("GET /", http.FileServer(http.Dir(app)))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL + "/"
}

// copyPackage copies the npm package's source (not its build output or
// installed modules) from src to dst.
func copyPackage(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == "dist" || rel == "node_modules") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
