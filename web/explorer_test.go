package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"filippo.io/torchwood"

	"github.com/attestlog/attestlog/internal/httpfuzz"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// explorerServer serves the explorer of tl on 127.0.0.1.
func explorerServer(t *testing.T, tl *testLog, opts ...Option) *httptest.Server {
	t.Helper()
	ex, err := NewExplorer(tl.Log, append([]Option{WithWitnessPolicy(tl.witnessPolicy), WithDashboardURL(DefaultDashboardPrefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ex.Prefix(), ex.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type response struct {
	code int
	ct   string
	loc  string
	csp  string
	body string
}

func get(t *testing.T, u string) response {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), resp.Header.Get("Content-Security-Policy"), string(b)}
}

// getJSON fetches the JSON twin of path into v and returns the status.
func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	r := get(t, u)
	if r.ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json; body %s", u, r.ct, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, r.body)
	}
	return r.code
}

// checkHTML checks what every HTML page must be: escaped, with the
// security headers and the landmarks.
func checkHTML(t *testing.T, path string, r response) {
	t.Helper()
	if r.ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q, want text/html", path, r.ct)
	}
	if !strings.Contains(r.csp, "script-src 'self'") || !strings.Contains(r.csp, "default-src 'none'") {
		t.Errorf("GET %s: Content-Security-Policy %q", path, r.csp)
	}
	for _, bad := range []string{hostile, "<img src=x", `href="javascript:`} {
		if strings.Contains(r.body, bad) {
			t.Errorf("GET %s: page contains unescaped %q", path, bad)
		}
	}
	for _, want := range []string{`<main id="main"`, `<nav aria-label="Main">`, `role="search"`, `<label for="q">`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("GET %s: page lacks %s", path, want)
		}
	}
}

func TestExplorerPages(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	ci := provenancetest.GitHubWorkflow(sourceRepo, ".github/workflows/release.yml", "refs/tags/v2.0.0", tl.commit)
	e := func(i uint64) string { return fmt.Sprintf("/ui/entry/%d", i) }
	m := func(h string) string { return "/ui/m/" + h }
	for _, tc := range []struct {
		path    string
		code    int
		want    []string
		notWant []string
	}{
		{"/ui/", 200, []string{testOrigin, "1 unreadable entry", "local-witness", "Newest entries", `href="/ui/entry/0"`, "2.0.0", "no provenance", "revokes", "/audit/", "✓ reproduced ×1", `<span class="badge bad">revoked</span>`}, nil},
		{e(tl.provRelease), 200, []string{"release 2.0.0", ci.Subject, provenancetest.GitHubHostedRunner, "token.actions.githubusercontent.com",
			"independent-auditor", "✓ match", "local-witness", "c2sp.org/tlog-proof@v1", `href="https://github.com/acme/enclave/commit/` + tl.commit + `"`, tl.provMeasurement, "same as the release"}, []string{"No provenance", `href="/ui/m/0000000000030000"`}},
		{e(tl.plainRelease), 200, []string{"release 1.9.0", "No provenance", "none yet"}, []string{"Sigstore bundle"}},
		{e(tl.hostileRelease), 200, []string{"&lt;script&gt;alert(1)&lt;/script&gt;", `<span class="ctl" title="invisible or control character">U&#43;202E</span>`, "&lt;script&gt;alert(2)&lt;/script&gt;", "&lt;img src=x onerror=alert(3)&gt;"}, []string{"<script>alert(2)"}},
		{e(tl.revokedRelease), 200, []string{"Revoked", fmt.Sprintf(`href="/ui/entry/%d"`, tl.revocation), "CVE-2026-0001: debug console left enabled", "advisory https://example.com/advisories/1"}, nil},
		{e(tl.reproduction), 200, []string{"reproduction", fmt.Sprintf("release #%d", tl.provRelease), "rebuilt in bubblewrap"}, nil},
		{e(tl.revocation), 200, []string{"CVE-2026-0001", fmt.Sprintf("release #%d", tl.revokedRelease)}, nil},
		{e(tl.keylessRelease), 200, []string{"release 3.0.0", "signed keylessly by", tl.keylessSubject, "acme-ci", "token.actions.githubusercontent.com", "c2sp.org/tlog-proof@v1"}, []string{"DSSE envelope signed by"}},
		{e(tl.foreign), 200, []string{"Unreadable entry", "by another program", `href="/ui/unreadable"`, "the entry does not parse"}, []string{"DSSE envelope signed by"}},
		{"/ui/unreadable", 200, []string{"Unreadable entries", `href="/ui/entry/0"`, "1 in all"}, nil},
		{e(999), 404, []string{"404", "no entry 999"}, nil},
		{"/ui/entry/abc", 400, []string{"not an entry index"}, nil},
		{"/ui/entry/-1", 400, []string{"not an entry index"}, nil},
		{m(tl.provMeasurement), 200, []string{"1 release in this log has it", e(tl.provRelease), "1 match"}, []string{"Not in this log"}},
		{m(tl.artifactDigest), 200, []string{e(tl.provRelease)}, nil},
		{m(tl.plainMeasurement), 200, []string{e(tl.plainRelease), "No provenance"}, nil},
		{m(tl.unloggedMeasurement), 404, []string{"Not in this log", tl.unloggedMeasurement, `href="/index/proof?type=sev-snp%2flaunch_digest&amp;digest=` + tl.unloggedMeasurement + `"`}, nil},
		{m("zz"), 400, []string{"not a measurement or digest"}, nil},
		{m("abcd"), 400, []string{"not a measurement or digest"}, nil},
		{"/ui/checkpoints", 200, []string{"Checkpoint history", "local-witness", "cosigned at"}, nil},
		{"/ui/search?q=", 400, []string{"search box is empty"}, nil},
		{"/ui/search?q=hello", 400, []string{"neither an entry index nor hex"}, nil},
		{"/ui/search?q=abcd", 400, []string{"prefixes are not searched"}, nil},
		{"/ui/search?q=" + url.QueryEscape(hostile), 400, []string{"&lt;script&gt;"}, nil},
		{"/ui/search?q=" + url.QueryEscape(`"><script>alert(1)</script>`), 400, []string{`value="&#34;&gt;&lt;script&gt;`}, nil},
		{"/ui/nope", 404, []string{"no page /ui/nope"}, nil},
		{"/ui/entry/1/extra", 404, []string{"no page"}, nil},
		{"/ui/?before=0", 400, []string{"not a positive entry index"}, nil},
		{"/ui/?before=x", 400, []string{"not a positive entry index"}, nil},
	} {
		r := get(t, srv.URL+tc.path)
		if r.code != tc.code {
			t.Errorf("GET %s = %d, want %d\n%s", tc.path, r.code, tc.code, r.body)
			continue
		}
		checkHTML(t, tc.path, r)
		for _, w := range tc.want {
			if !strings.Contains(r.body, w) {
				t.Errorf("GET %s: page lacks %q", tc.path, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(r.body, w) {
				t.Errorf("GET %s: page has %q", tc.path, w)
			}
		}
		// Every page's JSON twin answers with the same status.
		var v map[string]any
		sep := "?"
		if strings.Contains(tc.path, "?") {
			sep = "&"
		}
		if code := getJSON(t, srv.URL+tc.path+sep+"format=json", &v); code != tc.code {
			t.Errorf("GET %s JSON twin = %d, want %d", tc.path, code, tc.code)
		}
		if tc.code >= 400 && v["message"] == nil && !strings.HasPrefix(tc.path, "/ui/m/") {
			t.Errorf("GET %s JSON twin has no message: %v", tc.path, v)
		}
	}
}

func TestExplorerJSON(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	ci := provenancetest.GitHubWorkflow(sourceRepo, ".github/workflows/release.yml", "refs/tags/v2.0.0", tl.commit)

	var home HomeView
	getJSON(t, srv.URL+"/ui/?format=json", &home)
	if home.Origin != testOrigin || home.Checkpoint == nil || home.Checkpoint.Error != "" {
		t.Fatalf("home: origin %q checkpoint %+v", home.Origin, home.Checkpoint)
	}
	if cs := home.Checkpoint.Cosignatures; len(cs) != 1 || cs[0].Witness != "local-witness" || cs[0].Time.IsZero() || !home.Checkpoint.QuorumMet {
		t.Errorf("home checkpoint cosignatures = %+v quorum met %v, want local-witness with a time, met", cs, home.Checkpoint.QuorumMet)
	}
	if home.Checkpoint.Size <= tl.last || len(home.Entries) != int(tl.last)+1 {
		t.Errorf("home: checkpoint size %d, %d entries; want > %d and %d", home.Checkpoint.Size, len(home.Entries), tl.last, tl.last+1)
	}
	if home.Unreadable != 1 {
		t.Errorf("home: %d unreadable entries, want 1 (the foreign entry)", home.Unreadable)
	}

	var ev EntryView
	getJSON(t, fmt.Sprintf("%s/ui/entry/%d?format=json", srv.URL, tl.provRelease), &ev)
	p := ev.Release.Provenance
	if p == nil || p.Subject != ci.Subject || p.Issuer != ci.Issuer || p.Repo != sourceRepo || p.Commit != tl.commit ||
		p.BuilderID != provenancetest.GitHubHostedRunner || p.Subjects != 1 || len(p.Problems) != 0 {
		t.Errorf("provenance = %+v, want subject %s issuer %s builder %s", p, ci.Subject, ci.Issuer, provenancetest.GitHubHostedRunner)
	}
	if rs := ev.Info.Reproductions; len(rs) != 1 || rs[0].Outcome != "match" || rs[0].Signer != "independent-auditor" || rs[0].Index != tl.reproduction {
		t.Errorf("reproductions = %+v", rs)
	}
	// The proof on the page verifies against the checkpoint on the page.
	if ev.Proof == nil {
		t.Fatalf("no proof: %s", ev.ProofMessage)
	}
	pr, err := tlogproof.Parse([]byte(ev.Proof.TLogProof))
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(string(pr.Checkpoint), "\n\n")
	cp, err := torchwood.ParseCheckpoint(body + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.VerifyInclusion(ev.Entry, cp.N, cp.Hash); err != nil {
		t.Errorf("the page's proof does not verify: %v", err)
	}
	if len(ev.Proof.Checkpoint.Cosignatures) != 1 {
		t.Errorf("proof checkpoint cosignatures = %+v", ev.Proof.Checkpoint.Cosignatures)
	}

	getJSON(t, fmt.Sprintf("%s/ui/entry/%d?format=json", srv.URL, tl.plainRelease), &ev)
	if ev.Release == nil || ev.Release.Provenance != nil {
		t.Errorf("plain release provenance = %+v, want none", ev.Release)
	}

	var lv LookupView
	getJSON(t, srv.URL+"/ui/m/"+tl.provMeasurement+"?format=json", &lv)
	found := false
	for _, en := range lv.Entries {
		found = found || en.Index == tl.provRelease
	}
	if lv.Query != tl.provMeasurement || lv.Releases != 1 || !found {
		t.Errorf("lookup %s = %+v, want release %d", tl.provMeasurement, lv, tl.provRelease)
	}

	var cv CheckpointsView
	getJSON(t, srv.URL+"/ui/checkpoints?format=json", &cv)
	if len(cv.Checkpoints) == 0 {
		t.Fatal("no checkpoints in the history")
	}
	for i, c := range cv.Checkpoints {
		if c.Size == tl.foreign+1 {
			// Published by the other writer, which has no witnesses:
			// shown, and shown as unwitnessed.
			if c.QuorumMet || len(c.Cosignatures) != 0 {
				t.Errorf("the foreign writer's checkpoint %+v is shown as witnessed", c)
			}
			continue
		}
		if c.Error != "" || !c.QuorumMet || len(c.Cosignatures) != 1 || c.SeenAt.IsZero() {
			t.Errorf("checkpoint %d = %+v", i, c)
		}
		if i > 0 && c.Size >= cv.Checkpoints[i-1].Size {
			t.Errorf("history not newest first: %d after %d", c.Size, cv.Checkpoints[i-1].Size)
		}
	}
}

func TestExplorerSearchAndPaging(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl, WithPageSize(2))
	upper := strings.ToUpper(tl.provMeasurement)
	for _, tc := range []struct{ path, loc string }{
		{"/ui/search?q=" + tl.provMeasurement, "/ui/m/" + tl.provMeasurement},
		{"/ui/search?q=" + url.QueryEscape("  0x"+upper+" "), "/ui/m/" + tl.provMeasurement},
		{"/ui/search?q=" + tl.artifactDigest, "/ui/m/" + tl.artifactDigest},
		{"/ui/search?q=3", "/ui/entry/3"},
		{"/ui/search?q=%233", "/ui/entry/3"},
		{"/ui/search?q=3&format=json", "/ui/entry/3?format=json"},
		{"/ui/m/" + upper, "/ui/m/" + tl.provMeasurement},
	} {
		r := get(t, srv.URL+tc.path)
		if (r.code != http.StatusSeeOther && r.code != http.StatusMovedPermanently) || r.loc != tc.loc {
			t.Errorf("GET %s = %d Location %q, want a redirect to %q", tc.path, r.code, r.loc, tc.loc)
		}
	}

	// Following the pages lists every entry once, newest first.
	var got []uint64
	next := "/ui/?format=json"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var hv HomeView
		getJSON(t, srv.URL+next, &hv)
		if len(hv.Entries) > 2 {
			t.Fatalf("page %s has %d entries, want at most 2", next, len(hv.Entries))
		}
		for _, e := range hv.Entries {
			got = append(got, e.Index)
		}
		next = ""
		if hv.Older != 0 {
			next = fmt.Sprintf("/ui/?before=%d&format=json", hv.Older)
		}
	}
	var want []uint64
	for i := int(tl.last); i >= 0; i-- {
		want = append(want, uint64(i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged entries = %v, want %v", got, want)
	}
	if r := get(t, srv.URL+"/ui/?before=2"); r.code != 200 || !strings.Contains(r.body, "Entries below 2") || !strings.Contains(r.body, "« Newest") {
		t.Errorf("GET /ui/?before=2 = %d, lacks heading or link to the newest", r.code)
	}
}

func TestExplorerMethods(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	for _, p := range []string{"/ui/", "/ui/entry/0", "/ui/search?q=1", "/ui/nope"} {
		resp, err := http.Post(srv.URL+p, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d, want 405", p, resp.StatusCode)
		}
	}
	resp, err := http.Head(srv.URL + "/ui/entry/0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HEAD /ui/entry/0 = %d, want 200", resp.StatusCode)
	}
}

func TestExplorerStatic(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	for _, tc := range []struct {
		path, ct string
		code     int
	}{
		{"/ui/static/style.css", "text/css; charset=utf-8", 200},
		{"/ui/static/copy.js", "text/javascript; charset=utf-8", 200},
		{"/ui/static/nope.js", "", 404},
	} {
		r := get(t, srv.URL+tc.path)
		if r.code != tc.code || (tc.ct != "" && r.ct != tc.ct) {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, r.code, r.ct, tc.code, tc.ct)
		}
	}
}

func TestExplorerOptions(t *testing.T) {
	tl := newTestLog(t)
	for name, opts := range map[string][]Option{
		"prefix without slash": {WithPrefix("/ui")},
		"page size 0":          {WithPageSize(0)},
		"bad witness policy":   {WithWitnessPolicy([]byte("witness only-a-name\n"))},
	} {
		if _, err := NewExplorer(tl.Log, opts...); err == nil {
			t.Errorf("NewExplorer(%s) succeeded, want an error", name)
		}
	}
	// Another prefix, at the root of the links too.
	srv := explorerServer(t, tl, WithPrefix("/explore/"))
	if r := get(t, srv.URL+"/explore/"); r.code != 200 || !strings.Contains(r.body, `href="/explore/entry/0"`) || !strings.Contains(r.body, `action="/explore/search"`) {
		t.Errorf("GET /explore/ = %d, links not under /explore/", r.code)
	}
}

// TestErrorPagesBounded: an error page names the input it refuses without
// echoing an unbounded amount of it.
func TestErrorPagesBounded(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	dash := dashboardServer(t, auditState("/ui/", measurementN(1), measurementN(99)))
	big := strings.Repeat("z", 300<<10)
	hexBig := strings.Repeat("ab", 150<<10)
	for _, u := range []string{
		srv.URL + "/ui/m/" + big, srv.URL + "/ui/m/" + hexBig, srv.URL + "/ui/entry/" + big,
		srv.URL + "/ui/search?q=" + big, srv.URL + "/ui/search?q=" + hexBig, srv.URL + "/ui/?before=" + big,
		srv.URL + "/ui/" + big,
		dash.URL + "/audit/alert/" + big, dash.URL + "/audit/" + big,
	} {
		r := get(t, u)
		if r.code < 400 || r.code >= 500 {
			t.Errorf("GET %.60s… = %d, want a 4xx", u, r.code)
		}
		if len(r.body) > 32<<10 {
			t.Errorf("GET %.60s… (%d bytes): the page is %d bytes", u, len(u), len(r.body))
		}
	}
	// An ignored parameter is not repeated either (the JSON link).
	if r := get(t, srv.URL+"/ui/entry/1?x="+big); r.code != 200 || strings.Contains(r.body, big[:1000]) {
		t.Errorf("GET /ui/entry/1?x=<300 KiB> = %d, echoes the parameter: %v", r.code, strings.Contains(r.body, big[:1000]))
	}
}

// FuzzExplorer: the explorer under any method, path and query answers
// without a server error, with a bounded page.
func FuzzExplorer(f *testing.F) {
	tl := newTestLog(f)
	ex, err := NewExplorer(tl.Log, WithWitnessPolicy(tl.witnessPolicy))
	if err != nil {
		f.Fatal(err)
	}
	h := ex.Handler()
	for _, p := range []string{"/ui/", "/ui/entry/1", "/ui/entry/0?format=json", "/ui/m/" + measurementN(1), "/ui/search?q=3", "/ui/search?q=%E2%80%AE",
		"/ui/checkpoints", "/ui/unreadable", "/ui/?before=2", "/ui/static/style.css", "/ui/nope"} {
		f.Add(byte(0), p)
	}
	f.Fuzz(func(t *testing.T, m byte, target string) {
		w := httpfuzz.Serve(t, h, m, target, nil)
		if w != nil && w.Body.Len() > 1<<20 {
			t.Fatalf("%q: a %d-byte page", target, w.Body.Len())
		}
	})
}

// TestRevocationVisibleInJSON: the revoked release's JSON carries the
// revocation's reason and advisory; a revocation's JSON has no
// has_provenance (a release's field).
func TestRevocationVisibleInJSON(t *testing.T) {
	tl := newTestLog(t)
	srv := explorerServer(t, tl)
	var ev struct {
		Info map[string]any `json:"info"`
	}
	getJSON(t, fmt.Sprintf("%s/ui/entry/%d?format=json", srv.URL, tl.revokedRelease), &ev)
	revs, _ := ev.Info["revocations"].([]any)
	if len(revs) != 1 {
		t.Fatalf("revoked release info = %v", ev.Info)
	}
	r := revs[0].(map[string]any)
	if r["reason"] != "CVE-2026-0001: debug console left enabled" || r["advisory"] != "https://example.com/advisories/1" {
		t.Errorf("revocation in the release's JSON = %v", r)
	}
	if _, ok := r["has_provenance"]; ok {
		t.Errorf("revocation JSON has has_provenance: %v", r)
	}
	if _, ok := ev.Info["has_provenance"]; !ok {
		t.Errorf("release JSON lacks has_provenance: %v", ev.Info)
	}
	desc, err := tl.Describe(t.Context(), tl.revocation)
	if err != nil || desc.Reason == "" {
		t.Errorf("/entry of the revocation: %+v %v", desc, err)
	}
}

// TestExplorerSite: the site of a log serves the explorer at its prefix,
// redirects its root there, and hands every other path to the log's API.
func TestExplorerSite(t *testing.T) {
	tl := newTestLog(t)
	ex, err := NewExplorer(tl.Log, WithWitnessPolicy(tl.witnessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "api %s", r.URL.Path) })
	srv := httptest.NewServer(ex.Site(api))
	t.Cleanup(srv.Close)
	resp, err := noRedirect.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != ex.Prefix() {
		t.Errorf("GET / = %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), ex.Prefix())
	}
	if r := get(t, srv.URL+ex.Prefix()); r.code != 200 || !strings.Contains(r.body, "<html") {
		t.Errorf("GET %s = %d, want the explorer's home page", ex.Prefix(), r.code)
	}
	for _, p := range []string{"/checkpoint", "/lookup", "/tile/0/000"} {
		if r := get(t, srv.URL+p); r.code != 200 || r.body != "api "+p {
			t.Errorf("GET %s = %d %q, want the API's answer", p, r.code, r.body)
		}
	}
}
