package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/web"
)

// TestPagesEveryEntryKind serves the explorer of a log holding every kind
// of entry — key-signed and keyless releases, a reproduction, a
// revocation, and an entry that is not a statement — and the dashboard of
// a real auditor that followed it, and requires every page to answer
// without a server error.
func TestPagesEveryEntryKind(t *testing.T) {
	tl := web.NewTestLogForPages(t)
	logSrv := httptest.NewServer(tl.Handler())
	t.Cleanup(logSrv.Close)

	dir := t.TempDir()
	wp := filepath.Join(dir, "witnesses.txt")
	if err := os.WriteFile(wp, []byte(tl.WitnessPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := auditor.ParseConfig([]byte(fmt.Sprintf(`db: %s
poll_interval: 1s
logs:
  - vkey: %s
    url: %s
    policy: %s
    witness_policy: %s
rebuild:
  enabled: false
`, filepath.Join(dir, "auditor.db"), tl.VKey(), logSrv.URL, filepath.Join(tl.Dir, "policy.txt"), wp)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auditor.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.RunOnce(t.Context()); err != nil {
		t.Fatalf("auditor: %v", err)
	}
	ex, err := web.NewExplorer(tl.Log, web.WithWitnessPolicy([]byte(tl.WitnessPolicy)), web.WithDashboardURL(web.DefaultDashboardPrefix))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := web.NewDashboard(a.DashboardSource(), web.WithExplorerURL(web.DefaultExplorerPrefix))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ex.Prefix(), ex.Handler())
	mux.Handle(dash.Prefix(), dash.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v (the connection dropped: a handler panicked?)", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The log's own index checkpoints are entries too: wait for one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := tl.Log.IndexProof(t.Context(), vindex.KeyArtifactSHA256, make([]byte, 32)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no index checkpoint was committed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	size, err := tl.Log.Reader().IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sawIndexCheckpoint := false
	for i := range size {
		code, body := get(fmt.Sprintf("%sentry/%d", ex.Prefix(), i))
		for d := time.Now().Add(10 * time.Second); code == 404 && time.Now().Before(d); {
			time.Sleep(50 * time.Millisecond) // integrated, not yet indexed
			code, body = get(fmt.Sprintf("%sentry/%d", ex.Prefix(), i))
		}
		if code != 200 {
			t.Errorf("GET entry/%d = %d\n%.400s", i, code, body)
		}
		sawIndexCheckpoint = sawIndexCheckpoint || strings.Contains(body, "<h2 id=\"ic-h\">Index checkpoint</h2>")
	}
	if !sawIndexCheckpoint {
		t.Error("no entry page shows an index checkpoint")
	}
	var paths []string
	for _, i := range tl.Entries {
		paths = append(paths, fmt.Sprintf("%sentry/%d", ex.Prefix(), i), fmt.Sprintf("%sentry/%d?format=json", ex.Prefix(), i))
	}
	paths = append(paths, ex.Prefix(), ex.Prefix()+"?format=json", ex.Prefix()+"checkpoints", ex.Prefix()+"unreadable")
	paths = append(paths, dash.Prefix(), dash.Prefix()+"?format=json", dash.Prefix()+"alerts", dash.Prefix()+"alerts?format=json")
	alerts, err := a.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range alerts {
		paths = append(paths, fmt.Sprintf("%salert/%d", dash.Prefix(), al.ID))
	}
	for _, p := range paths {
		if code, body := get(p); code != 200 {
			t.Errorf("GET %s = %d\n%.400s", p, code, body)
		}
	}
	// The dashboard lists every release, the keyless one by its kind of
	// signer, and flags the unreadable entry (an alert the auditor
	// raised on it).
	_, home := get(dash.Prefix())
	for _, v := range tl.Versions {
		if !strings.Contains(home, v) {
			t.Errorf("dashboard lacks release %s", v)
		}
	}
	if !strings.Contains(home, "keyless operator") {
		t.Error("dashboard does not name the keyless release's signer")
	}
	found := false
	for _, al := range alerts {
		found = found || strings.Contains(al.Subject, fmt.Sprintf("entry/%d", tl.Entries["unreadable"]))
	}
	if !found {
		t.Errorf("the auditor raised no alert on the unreadable entry %d: %v", tl.Entries["unreadable"], alerts)
	}
	for kind, i := range tl.Entries {
		if kind == "unreadable" {
			continue
		}
		for _, al := range alerts {
			if strings.HasSuffix(al.Subject, fmt.Sprintf("/entry/%d", i)) {
				t.Errorf("the auditor raised %s on the %s at %d: %s", al.Kind, kind, i, al.Summary)
			}
		}
	}
}
