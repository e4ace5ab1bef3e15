package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/attestlog/attestlog/internal/testenv"
)

// artifactsDir is where browser tests save screenshots: $ATTESTLOG_ARTIFACTS
// or testartifacts/web at the repository root (gitignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ATTESTLOG_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "testartifacts")
	}
	dir = filepath.Join(dir, "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium tab with a fresh profile; it records the
// JavaScript dialogs pages open.
type browser struct {
	ctx       context.Context
	artifacts string
	mu        sync.Mutex
	dialogs   []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := testenv.LookPath(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// Bound the whole session so that a page stuck behind a dialog fails
	// the test instead of hanging it.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		testenv.Missing(t, "chromium", err)
	}
	b := &browser{ctx: ctx, artifacts: artifactsDir(t)}
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			b.mu.Lock()
			b.dialogs = append(b.dialogs, fmt.Sprintf("%s: %q", d.Type, d.Message))
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

func (b *browser) location(t *testing.T) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// screenshot saves a full-page PNG as name in the artifacts directory.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	b.save(t, name, chromedp.FullScreenshot(100))
}

// save saves the PNG that shot takes as name in the artifacts directory.
func (b *browser) save(t *testing.T, name string, shot chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func (b *browser) noDialogs(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		t.Errorf("pages opened JavaScript dialogs: %v", b.dialogs)
	}
}

func contains(t *testing.T, where, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q lacks %q", where, got, w)
		}
	}
}

// TestBrowser walks a researcher's path in real headless Chromium: the
// explorer of a populated, witnessed log (search for a measurement, open
// the release, see its provenance and reproduction), a hostile statement,
// the dashboard with an unlogged-measurement alert, and a phone screen.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	tl := newTestLog(t)
	ex, err := NewExplorer(tl.Log, WithWitnessPolicy(tl.witnessPolicy), WithDashboardURL(DefaultDashboardPrefix))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := NewDashboard(auditState(DefaultExplorerPrefix, tl.provMeasurement, tl.unloggedMeasurement), WithExplorerURL(DefaultExplorerPrefix))
	if err != nil {
		t.Fatal(err)
	}
	// One mux as 'attestlog up' has it: the log's API at the root.
	mux := http.NewServeMux()
	mux.Handle(ex.Prefix(), ex.Handler())
	mux.Handle(dash.Prefix(), dash.Handler())
	mux.Handle("/", tl.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// Home: the latest checkpoint and who cosigned it.
	b.do(t, "home", chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#cp-h")))
	contains(t, "home checkpoint", b.text(t, "section.card"), "local-witness", "cosigned at", "met")
	if got := b.eval(t, `String(!document.querySelector("button.copy").hidden)`); got != "true" {
		t.Errorf("copy buttons are hidden with JavaScript on (the CSP blocked copy.js?)")
	}
	b.screenshot(t, "01-explorer-home.png")

	// Keyboard: the first Tab shows the skip link, Enter moves to the
	// content, the next Tab focuses a control with a visible outline.
	b.do(t, "tab", chromedp.KeyEvent("\t"))
	if got := b.eval(t, `document.activeElement.className + " " + (document.activeElement.getBoundingClientRect().left >= 0)`); got != "skip true" {
		t.Errorf("first Tab focuses %q, want the visible skip link", got)
	}
	b.do(t, "enter", chromedp.KeyEvent("\r"))
	if got := b.eval(t, `document.activeElement.id`); got != "main" {
		t.Errorf("the skip link moves focus to %q, want main", got)
	}
	b.do(t, "tab", chromedp.KeyEvent("\t"))
	if got := b.eval(t, `document.activeElement.tagName + " " + getComputedStyle(document.activeElement).outlineStyle`); !strings.HasSuffix(got, " solid") || strings.HasPrefix(got, "BODY") {
		t.Errorf("Tab after the skip link focuses %q, want a control with a solid focus outline", got)
	}

	// Search for the measurement from the search box.
	b.do(t, "search",
		chromedp.SendKeys(chromedp.CSS("#q"), tl.provMeasurement),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("article.card")),
	)
	if loc := b.location(t); !strings.HasSuffix(loc, "/ui/m/"+tl.provMeasurement) {
		t.Errorf("search went to %s, want the measurement's permalink", loc)
	}
	contains(t, "lookup", b.text(t, "main"), "1 release in this log has it", "Sigstore bundle", "1 match")
	b.screenshot(t, "02-lookup.png")

	// Open the release: provenance and the reproduction.
	b.do(t, "open entry",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`article.card h2 a[href="/ui/entry/%d"]`, tl.provRelease))),
		chromedp.WaitVisible(chromedp.CSS("#provenance-status")),
	)
	contains(t, "provenance status", b.text(t, "#provenance-status"), "Sigstore bundle", "release.yml@refs/tags/v2.0.0")
	contains(t, "reproduction status", b.text(t, "#repro-status"), "1 match")
	contains(t, "reproductions", b.text(t, "#reproductions"), "independent-auditor", "match", fmt.Sprintf("#%d", tl.reproduction))
	contains(t, "provenance", b.text(t, "#provenance"), "token.actions.githubusercontent.com", "github-hosted")
	contains(t, "proof", b.text(t, "#proof"), "local-witness")
	b.screenshot(t, "03-entry-with-provenance.png")

	// A release without provenance says so.
	b.do(t, "plain release", chromedp.Navigate(fmt.Sprintf("%s/ui/entry/%d", srv.URL, tl.plainRelease)), chromedp.WaitVisible(chromedp.CSS("#provenance-status")))
	contains(t, "no provenance", b.text(t, "#provenance-status"), "No provenance")
	b.screenshot(t, "04-entry-without-provenance.png")

	// A hostile statement renders as text: no dialog, no script element
	// but ours, the literal markup visible.
	b.do(t, "hostile release", chromedp.Navigate(fmt.Sprintf("%s/ui/entry/%d", srv.URL, tl.hostileRelease)), chromedp.WaitVisible(chromedp.CSS("td.name")))
	if got := b.text(t, "td.name"); got != hostile {
		t.Errorf("hostile artifact name shows as %q, want the literal %q", got, hostile)
	}
	if n := b.eval(t, `String(document.scripts.length) + " " + document.querySelectorAll("img").length`); n != "1 0" {
		t.Errorf("hostile page has %s script and img elements, want 1 0 (only copy.js)", n)
	}
	contains(t, "bidi override", b.text(t, "main"), "innocentU+202Egpj.exe")
	b.screenshot(t, "05-hostile-statement.png")
	b.noDialogs(t)

	// The dashboard: the unlogged measurement's alert, then its evidence.
	b.do(t, "dashboard", chromedp.Navigate(srv.URL+"/audit/"), chromedp.WaitVisible(chromedp.CSS("#alerts-h")))
	contains(t, "open alerts", b.text(t, "section.card"), "Open alerts (1)", "unlogged-measurement", "deployment/chat-eu")
	contains(t, "deployments", b.text(t, "main"), "chat-eu", "NOT LOGGED", "4 entries behind")
	b.screenshot(t, "06-dashboard.png")
	b.do(t, "alert", chromedp.Click(chromedp.CSS(`a[href="/audit/alert/7"]`)), chromedp.WaitVisible(chromedp.CSS("pre.evidence")))
	contains(t, "alert evidence", b.text(t, "pre.evidence"), tl.unloggedMeasurement, `"deployment": "chat-eu"`)
	b.screenshot(t, "07-alert.png")
	// From the alert to the log: the measurement is not there.
	b.do(t, "alert to log", chromedp.Click(chromedp.CSS(`a[href="/ui/m/`+tl.unloggedMeasurement+`"]`)), chromedp.WaitVisible(chromedp.CSS(".banner")))
	contains(t, "unlogged lookup", b.text(t, ".banner"), "Not in this log")

	// A phone: nothing wider than the screen.
	for _, p := range []struct{ name, path string }{
		{"08-phone-entry.png", fmt.Sprintf("/ui/entry/%d", tl.provRelease)},
		{"09-phone-dashboard.png", "/audit/"},
		{"10-phone-home.png", "/ui/"},
	} {
		b.do(t, "phone "+p.path,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main")))
		if w := b.eval(t, `document.documentElement.scrollWidth + " " + window.innerWidth`); func() bool {
			var sw, iw int
			fmt.Sscan(w, &sw, &iw)
			return sw > iw
		}() {
			t.Errorf("phone %s: page is wider than the screen (scrollWidth, innerWidth = %s)", p.path, w)
		}
		b.layoutOK(t, "phone "+p.path)
		b.save(t, p.name, chromedp.CaptureScreenshot()) // what the phone shows first
	}
	// And a desktop, the same pages.
	for _, p := range []struct{ name, path string }{
		{"11-desktop-entry.png", fmt.Sprintf("/ui/entry/%d", tl.provRelease)},
		{"12-desktop-dashboard.png", "/audit/"},
		{"13-desktop-home.png", "/ui/"},
	} {
		b.do(t, "desktop "+p.path,
			chromedp.EmulateViewport(1280, 900),
			chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main")))
		b.layoutOK(t, "desktop "+p.path)
		b.save(t, p.name, chromedp.CaptureScreenshot())
	}
	b.noDialogs(t)
}

// layoutOK checks the page as laid out: no table wider than the content
// column (it would scroll sideways), and no word of prose broken across
// lines ("reproductio n") except at a hyphen or slash; hex, code and pre
// may break anywhere, and a word longer than 30 characters may break.
func (b *browser) layoutOK(t *testing.T, what string) {
	t.Helper()
	got := b.eval(t, `(() => {
		const bad = [];
		const main = document.querySelector("main");
		const mw = main.clientWidth;
		for (const tb of main.querySelectorAll("table")) {
			const w = tb.getBoundingClientRect().width;
			if (w > mw + 1) bad.push("table " + Math.round(w) + "px in a " + mw + "px column: " + tb.textContent.trim().slice(0, 40));
		}
		const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const el = n.parentElement;
			if (!el || el.closest("code, pre, .hex, .ctl, script, style, details:not([open])") || el.offsetParent === null) continue;
			// Parts between spaces, hyphens and slashes of words up to 30
			// characters: a line may end at a hyphen or a slash, not inside
			// a part; a longer word (a URL) may break anywhere.
			for (const w of n.data.matchAll(/\S+/g)) {
			  if (w[0].length > 30) continue;
			  for (const m of w[0].matchAll(/[^\/-]+/g)) {
				if (m[0].length < 2) continue;
				const at = w.index + m.index;
				const r = document.createRange();
				r.setStart(n, at); r.setEnd(n, at + m[0].length);
				const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
				if (lines.size > 1) bad.push("word broken across lines: " + m[0]);
			  }
			}
		}
		return bad.slice(0, 10).join("\n");
	})()`)
	if got != "" {
		t.Errorf("%s:\n%s", what, got)
	}
}
