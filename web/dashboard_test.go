package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/httpfuzz"
)

// memAudit is an AuditSource filled in by the test.
type memAudit struct {
	alerts      []AuditAlert
	releases    []AuditRelease
	deployments []AuditDeployment
	logs        []AuditLog
	err         error
}

func (m *memAudit) Alerts(_ context.Context, open bool, n int) ([]AuditAlert, int, error) {
	var out []AuditAlert
	total := 0
	for _, a := range m.alerts {
		if a.Open == open {
			total++
			if len(out) < n {
				out = append(out, a)
			}
		}
	}
	return out, total, m.err
}
func (m *memAudit) Alert(_ context.Context, id int64) (*AuditAlert, error) {
	for _, a := range m.alerts {
		if a.ID == id {
			return &a, m.err
		}
	}
	return nil, m.err
}
func (m *memAudit) Releases(_ context.Context, n int) ([]AuditRelease, map[string]int, error) {
	counts := map[string]int{}
	for _, r := range m.releases {
		counts[r.Status]++
	}
	return m.releases[:min(n, len(m.releases))], counts, m.err
}
func (m *memAudit) Deployments(context.Context) ([]AuditDeployment, error) {
	return m.deployments, m.err
}
func (m *memAudit) Logs(context.Context) ([]AuditLog, error) { return m.logs, m.err }

func u64(n uint64) *uint64 { return &n }

// auditState is an auditor's state: one deployment serving a logged,
// reproduced release, one serving an unlogged measurement (with its open
// alert), a past alert, a hostile deployment name.
func auditState(explorer string, logged, unlogged string) *memAudit {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ev, _ := json.Marshal(map[string]any{"deployment": "chat-eu", "url": "https://chat-eu.example", "measurement": unlogged, "nonce": "00ff"})
	return &memAudit{
		alerts: []AuditAlert{
			{ID: 7, Kind: "unlogged-measurement", Subject: "deployment/chat-eu", Time: t0.Add(time.Hour), Open: true,
				Summary: "chat-eu serves a measurement no logged release has", Measurement: unlogged, Origin: testOrigin, Evidence: ev},
			{ID: 3, Kind: "rebuild-failed", Subject: "log/" + testOrigin + "/entry/2", Time: t0, Open: false,
				Closed: "2026-11-26T12:00:00Z", CloseNote: "builder disk full <retried>",
				Summary: "rebuild of entry 2 failed: " + hostile, Origin: testOrigin, Evidence: json.RawMessage(`{"exit":2,"stderr":"<b>boom</b>"}`)},
		},
		releases: []AuditRelease{
			{Origin: testOrigin, Index: 0, Version: "2.0.0", Platform: "sev-snp", Measurement: logged, Signer: "acme-ops", Status: ReproReproduced, Rebuilt: logged, Reproduction: u64(1)},
			{Origin: testOrigin, Index: 2, Version: "1.9.0", Platform: "sev-snp", Measurement: measurementN(2), Signer: "acme-ops", Status: ReproFailed, Detail: "make: exit 2"},
			{Origin: testOrigin, Index: 4, Version: "1.0.0", Platform: "sev-snp", Measurement: measurementN(4), Signer: "acme-ops", Status: ReproQueued, Revocation: u64(5)},
		},
		deployments: []AuditDeployment{
			{Name: "chat-us", URL: "https://chat-us.example", Origin: testOrigin, Polled: t0, Measurement: logged, Verdict: "ok", Releases: []uint64{0}},
			{Name: "chat-eu", URL: "https://chat-eu.example", Origin: testOrigin, Polled: t0, Measurement: unlogged, Verdict: "unlogged-measurement"},
			{Name: hostile, URL: "https://x.example", Origin: testOrigin, Verdict: "unreachable", Error: "dial tcp: connection refused"},
		},
		logs: []AuditLog{{
			Origin: testOrigin, URL: "http://log.example", ExplorerURL: explorer, TreeSize: 6, Verified: 5, Updated: t0, Quorum: "local-witness",
			Witnesses: []AuditWitness{
				{Name: "local-witness", URL: "http://w.example", CosignedSize: 6, CosignedAt: t0},
				{Name: "slow-witness", CosignedSize: 2, CosignedAt: t0.Add(-time.Hour), Error: "timeout"},
			},
		}},
	}
}

func dashboardServer(t *testing.T, src AuditSource, opts ...Option) *httptest.Server {
	t.Helper()
	d, err := NewDashboard(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(d.Prefix(), d.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestDashboardPages(t *testing.T) {
	logged, unlogged := measurementN(1), measurementN(99)
	src := auditState("/ui/", logged, unlogged)
	srv := dashboardServer(t, src, WithExplorerURL("/ui/"))
	for _, tc := range []struct {
		path    string
		code    int
		want    []string
		notWant []string
	}{
		{"/audit/", 200, []string{"Open alerts (1)", "unlogged-measurement", `href="/audit/alert/7"`, "1 past",
			"chat-eu", "NOT LOGGED", `href="/ui/m/` + unlogged + `"`, "chat-us", `href="/ui/entry/0"`,
			"reproduced", "reproduction #1", "failed", "make: exit 2", "revoked", "queued",
			"&lt;script&gt;alert(1)&lt;/script&gt;", "connection refused",
			"<strong>6</strong> entries", "1 to verify", "slow-witness", "4 entries behind", "up to date", "timeout"}, []string{"rebuild-failed"}},
		{"/audit/alerts", 200, []string{"Open (1)", "Past (1)", "unlogged-measurement", "rebuild-failed", `href="/audit/alert/3"`, `href="/ui/m/` + unlogged + `"`}, nil},
		{"/audit/alert/7", 200, []string{"Alert 7: unlogged-measurement", "Open.", unlogged, `href="/ui/m/` + unlogged + `"`, "&#34;nonce&#34;: &#34;00ff&#34;"}, nil},
		{"/audit/alert/3", 200, []string{"Past", "&lt;b&gt;boom&lt;/b&gt;", "&lt;script&gt;", "Closed", "2026-11-26T12:00:00Z: builder disk full &lt;retried&gt;"}, nil},
		{"/audit/alert/8", 404, []string{"no alert 8"}, nil},
		{"/audit/alert/x", 400, []string{"not an alert id"}, nil},
		{"/audit/nope", 404, []string{"no page /audit/nope"}, nil},
	} {
		r := get(t, srv.URL+tc.path)
		if r.code != tc.code {
			t.Errorf("GET %s = %d, want %d\n%s", tc.path, r.code, tc.code, r.body)
			continue
		}
		if r.ct != "text/html; charset=utf-8" || !strings.Contains(r.csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Type %q, CSP %q", tc.path, r.ct, r.csp)
		}
		for _, bad := range []string{hostile, "<b>boom"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("GET %s: unescaped %q", tc.path, bad)
			}
		}
		if !strings.Contains(r.body, `<main id="main"`) {
			t.Errorf("GET %s: no main landmark", tc.path)
		}
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
		var v map[string]any
		if code := getJSON(t, srv.URL+tc.path+"?format=json", &v); code != tc.code {
			t.Errorf("GET %s JSON twin = %d, want %d", tc.path, code, tc.code)
		}
	}

	var dv DashboardView
	getJSON(t, srv.URL+"/audit/?format=json", &dv)
	if len(dv.OpenAlerts) != 1 || dv.OpenAlerts[0].ID != 7 || dv.PastAlerts != 1 || len(dv.Deployments) != 3 || len(dv.Releases) != 3 ||
		dv.ReleaseCounts[ReproReproduced] != 1 || len(dv.Logs) != 1 || len(dv.Logs[0].Witnesses) != 2 {
		t.Errorf("dashboard JSON = %+v", dv)
	}
	var av AlertView
	getJSON(t, srv.URL+"/audit/alert/7?format=json", &av)
	var ev map[string]string
	if err := json.Unmarshal(av.Alert.Evidence, &ev); err != nil || ev["measurement"] != unlogged {
		t.Errorf("alert evidence = %s (%v), want the measurement %s", av.Alert.Evidence, err, unlogged)
	}
	var al AlertsView
	getJSON(t, srv.URL+"/audit/alerts?format=json", &al)
	if len(al.Open) != 1 || len(al.Past) != 1 || al.Past[0].ID != 3 {
		t.Errorf("alerts JSON = %+v", al)
	}
}

func TestDashboardEmptyAndErrors(t *testing.T) {
	srv := dashboardServer(t, &memAudit{})
	r := get(t, srv.URL+"/audit/")
	for _, w := range []string{"No open alerts", "No deployments are watched", "No releases verified yet", "No logs are followed"} {
		if !strings.Contains(r.body, w) {
			t.Errorf("empty dashboard lacks %q", w)
		}
	}
	var dv map[string]any
	getJSON(t, srv.URL+"/audit/?format=json", &dv)
	for _, k := range []string{"open_alerts", "deployments", "releases", "logs"} {
		if l, ok := dv[k].([]any); !ok || len(l) != 0 {
			t.Errorf("empty dashboard JSON %s = %v, want []", k, dv[k])
		}
	}

	// A failing source is a 500 that does not leak the error.
	srv = dashboardServer(t, &memAudit{err: errors.New("database is locked at /secret/path")})
	for _, p := range []string{"/audit/", "/audit/alerts", "/audit/alert/1"} {
		r := get(t, srv.URL+p)
		if r.code != 500 || strings.Contains(r.body, "/secret/path") || !strings.Contains(r.body, "internal error") {
			t.Errorf("GET %s with a failing source = %d %q", p, r.code, r.body)
		}
	}
	// Links to an explorer appear only when the log names one.
	srv = dashboardServer(t, auditState("", measurementN(1), measurementN(99)))
	if r := get(t, srv.URL+"/audit/"); strings.Contains(r.body, "/m/") || strings.Contains(r.body, "entry/") {
		t.Errorf("dashboard without explorer URL links to an explorer")
	}
	if _, err := NewDashboard(&memAudit{}, WithPrefix("audit")); err == nil {
		t.Error("NewDashboard with a bad prefix succeeded")
	}
}

// FuzzDashboard: the dashboard under any method, path and query answers
// without a server error.
func FuzzDashboard(f *testing.F) {
	d, err := NewDashboard(auditState("/ui/", measurementN(1), measurementN(99)), WithExplorerURL("/ui/"))
	if err != nil {
		f.Fatal(err)
	}
	h := d.Handler()
	for _, p := range []string{"/audit/", "/audit/alerts?format=json", "/audit/alert/7", "/audit/alert/x", "/audit/static/style.css", "/audit/nope"} {
		f.Add(byte(0), p)
	}
	f.Fuzz(func(t *testing.T, m byte, target string) {
		httpfuzz.Serve(t, h, m, target, nil)
	})
}

// TestDashboardBounded: the pages do not grow with the auditor's state —
// thousands of alerts and releases show as the newest few and counts.
func TestDashboardBounded(t *testing.T) {
	src := auditState("/ui/", measurementN(1), measurementN(99))
	for i := range 5000 {
		src.alerts = append(src.alerts, AuditAlert{ID: int64(1000 + i), Kind: "rebuild-failed", Subject: fmt.Sprintf("log/x/entry/%d", i), Open: true, Summary: strings.Repeat("s", 200)})
		src.releases = append(src.releases, AuditRelease{Origin: testOrigin, Index: uint64(100 + i), Version: "v", Status: ReproFailed})
	}
	srv := dashboardServer(t, src)
	var dv DashboardView
	getJSON(t, srv.URL+"/audit/?format=json", &dv)
	if len(dv.OpenAlerts) > MaxAlertsListed || dv.OpenTotal != 5001 || len(dv.Releases) > MaxDashboardReleases || dv.ReleaseTotal != 5003 {
		t.Errorf("dashboard lists %d of %d open alerts and %d of %d releases", len(dv.OpenAlerts), dv.OpenTotal, len(dv.Releases), dv.ReleaseTotal)
	}
	for _, p := range []string{"/audit/", "/audit/alerts"} {
		if r := get(t, srv.URL+p); r.code != 200 || len(r.body) > 512<<10 || !strings.Contains(r.body, "5001") {
			t.Errorf("GET %s = %d, %d bytes (want a bounded page that says 5001)", p, r.code, len(r.body))
		}
	}
}
