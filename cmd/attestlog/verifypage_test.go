package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/npm"
)

// TestVerifyPageInChromium opens the explorer's "Verify an enclave" page
// of `up` in headless Chromium: the WebAssembly client, loaded from the
// log's origin under the page's strict CSP, decides on up's demo enclave
// and reads TRUSTED; once the demo release is revoked (and the enclave's
// stapled index proof shows it), the same page reads NOT TRUSTED.
func TestVerifyPageInChromium(t *testing.T) {
	testenv.LookPath(t, "go")
	ctx := testenv.Chromium(t)
	dir := t.TempDir()
	// No ATTESTLOG_WASM_DIR: up builds the module at the page's first
	// visit, from the source tree around its working directory (this
	// repository), into the user's cache.
	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false")

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return s
	}
	// The first visit starts the build and says so; the page reloads
	// itself once the module is ready.
	t0 := time.Now()
	do("opening the verify page", chromedp.Navigate(u.info.URL+"/ui/verify"), chromedp.WaitReady(chromedp.CSS("main")))
	if b := eval(`(document.querySelector("#building") || document.querySelector("#verify-button") || document.body).textContent`); !strings.Contains(b, "Building the verifier") && !strings.Contains(b, "Loading the verifier") && b != "Verify" {
		t.Fatalf("the verify page's first visit says %q, want it building or loading the verifier", b)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		// Evaluated afresh each time: the page reloads itself.
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = document.querySelector("#verify-button"); return b !== null && !b.disabled })()`))
		if err == nil && ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verify page did not become ready: %v\n%s", err, u.stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the verify page was ready %s after the first visit", time.Since(t0).Round(time.Millisecond))
	var st struct {
		Version string `json:"version"`
	}
	if resp, err := http.Get(u.info.URL + "/ui/verify/status.json"); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	if st.Version != npm.Version {
		t.Errorf("the module up serves is version %q, want the npm package's %q", st.Version, npm.Version)
	}
	if got := eval(`document.querySelector("#enclave").value`); got != u.info.Demo.URL {
		t.Errorf("the form names enclave %q, want up's demo %q", got, u.info.Demo.URL)
	}
	decide := func() (string, float64, string) {
		t.Helper()
		eval(`document.querySelector("#verdict").hidden = true; document.querySelector("#verdict").textContent = ""; ""`)
		do("verifying", chromedp.Click(chromedp.CSS("#verify-button")),
			chromedp.Poll[chromedp.Void](`(() => { const v = document.querySelector("#verdict"); return !v.hidden && v.textContent !== "" })()`, chromedp.WithPollingTimeout(time.Minute)))
		verdict := eval(`document.querySelector("#verdict").textContent`)
		f, _ := strconv.ParseFloat(eval(`document.querySelector("#timing").dataset.ms || "0"`), 64)
		return verdict, f, eval(`Array.from(document.querySelectorAll("#checks li")).map(l => l.textContent).join("\n")`)
	}
	verdict, ms, checks := decide()
	if verdict != "TRUSTED" || !strings.Contains(checks, "✓ not revoked") || !strings.Contains(checks, "✓ GPU certificate status") {
		t.Fatalf("the demo enclave in Chromium: %q\n%s", verdict, checks)
	}
	t.Logf("Chromium: a decision with the fetch: %.1f ms", ms)
	// Send a message: attestedFetch through up's OHTTP relay.
	send := func(msg string) (string, string) {
		t.Helper()
		eval(`document.querySelector("#answer").hidden = true; document.querySelector("#answer").textContent = ""; document.querySelector("#message").value = ` + strconv.Quote(msg) + `; ""`)
		do("sending a message", chromedp.Click(chromedp.CSS("#message-button")),
			chromedp.Poll[chromedp.Void](`(() => { const a = document.querySelector("#answer"); return !a.hidden && a.textContent !== "" })()`, chromedp.WithPollingTimeout(time.Minute)))
		return eval(`document.querySelector("#answer").textContent`), eval(`document.querySelector("#answer-note").hidden ? "" : document.querySelector("#answer-note").textContent`)
	}
	if ans, note := send("hello from Chromium"); !strings.Contains(ans, "You said: hello from Chromium") || !strings.Contains(note, "MLKEM768-X25519") || !strings.Contains(note, "/ohttp-relay/g/demo") {
		t.Fatalf("a message through the relay in Chromium: %q (%s)", ans, note)
	}
	warm := ms
	for range 3 {
		if _, m, _ := decide(); m < warm {
			warm = m
		}
	}
	t.Logf("Chromium: fastest of three more decisions: %.1f ms", warm)

	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(u.info.Demo.ReleaseIndex), "--reason", "CVE-2026-0003", "--wait", "--proof-out", filepath.Join(t.TempDir(), "revocation.tlog-proof"))
	deadline := time.Now().Add(90 * time.Second)
	for {
		verdict, _, checks = decide()
		if verdict == "NOT TRUSTED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the revocation the page still reads %q\n%s", verdict, checks)
		}
		time.Sleep(time.Second) // the enclave restaples every few seconds
	}
	if !strings.Contains(checks, "✗ not revoked") || !strings.Contains(checks, "was revoked") {
		t.Errorf("NOT TRUSTED, but not for the revocation:\n%s", checks)
	}
	if ans, _ := send("after the revocation"); !strings.HasPrefix(ans, "NOT SENT") || !strings.Contains(ans, "ATTESTLOG_NOT_TRUSTED") {
		t.Errorf("a message to the revoked enclave in Chromium: %q, want NOT SENT (ATTESTLOG_NOT_TRUSTED)", ans)
	}
}
