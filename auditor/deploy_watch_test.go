package auditor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// optIn is the deployment option that lets the auditor reach the
// loopback servers of these tests.
const optIn = ", allow_private: true"

// secret is what a hostile deployment, or a server it points the auditor
// at, answers; nothing the auditor publishes may ever contain it.
const secret = "SECRET-METADATA-TOKEN"

// hostileServer is a deployment (or a server behind it) on 127.0.0.1
// whose answer the test switches, counting the requests it gets.
type hostileServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	h    http.Handler
}

func newHostileServer(t *testing.T, h http.Handler) *hostileServer {
	t.Helper()
	s := &hostileServer{h: h}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hostileServer) serve(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func answer(code int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
}

// published is everything the auditor shows of its deployments and alerts
// to others: /status, the dashboard, and the alerts as listed, served
// and POSTed to webhooks (the same JSON).
func published(t *testing.T, fx *auditorFixture) string {
	t.Helper()
	ctx := context.Background()
	st, err := fx.aud.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dash, err := fx.aud.DashboardSource().Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	al, err := fx.aud.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal([]any{st, dash, al})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deploymentStatus(t *testing.T, fx *auditorFixture) DeploymentStatus {
	t.Helper()
	st, err := fx.aud.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Deployments) != 1 {
		t.Fatalf("status has %d deployments, want 1", len(st.Deployments))
	}
	return st.Deployments[0]
}

// TestDeploymentPrivateAddressRefused: a deployment at a name that
// resolves to loopback (as a rebinding DNS name would, after it passed
// any check of the configuration) is not contacted unless its
// configuration allows private addresses: the address is checked when
// connecting. (A loopback IP in the URL is refused at start:
// TestConfigErrors.)
func TestDeploymentPrivateAddressRefused(t *testing.T) {
	enc, err := fakeenclave.NewSNP(mustHex(t, strings.Repeat("5e", 48)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, opts string
		wantHits         int64
		wantError        string
	}{
		{"name resolving to loopback", "localhost", "", 0, "address-refused"},
		// Allowed: two requests, the attestation document (this
		// enclave has no agent: 404) and then evidence for a nonce.
		{"name resolving to loopback, allowed", "localhost", optIn, 2, ""},
		{"loopback IP, allowed", "127.0.0.1", optIn, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHostileServer(t, evidence.Handler(enc, nil))
			u := strings.Replace(srv.URL, "127.0.0.1", tc.host, 1)
			fx := newAuditorFixtureWatch(t, "w", enc, fmt.Sprintf("{name: d, url: %q%s}", u, tc.opts))
			fx.log.add(fx.releaseOf(t, fx.op, strings.Repeat("5e", 48)))
			fx.runOnce(t)
			if got := srv.hits.Load(); got != tc.wantHits {
				t.Errorf("the deployment at %s got %d requests, want %d", u, got, tc.wantHits)
			}
			if got := deploymentStatus(t, fx); got.Error != tc.wantError {
				t.Errorf("status %+v, want error %q", got, tc.wantError)
			}
		})
	}
}

// TestDeploymentRedirectOffOrigin: a deployment that redirects the
// auditor to another origin (another port, another spelling of the
// host) does not get it there, and nothing that other server would have
// answered is published. A redirect within the origin is followed.
func TestDeploymentRedirectOffOrigin(t *testing.T) {
	m := strings.Repeat("5e", 48)
	enc, err := fakeenclave.NewSNP(mustHex(t, m))
	if err != nil {
		t.Fatal(err)
	}
	// The server the deployment points at: what it answers must never
	// come back out of the auditor.
	other := newHostileServer(t, answer(http.StatusOK, `{"`+secret+`": 1}`))
	for _, tc := range []struct {
		name      string
		to        func(dep *hostileServer, r *http.Request) string
		wantError string
	}{
		{"to another port", func(_ *hostileServer, r *http.Request) string { return other.URL + r.URL.RequestURI() }, "redirect-refused"},
		{"to another spelling of its host", func(dep *hostileServer, r *http.Request) string {
			return strings.Replace(dep.URL, "127.0.0.1", "localhost", 1) + "/elsewhere" + r.URL.RequestURI()
		}, "redirect-refused"},
		{"within its origin", func(dep *hostileServer, r *http.Request) string { return dep.URL + "/v2" + r.URL.RequestURI() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := other.hits.Load()
			var dep *hostileServer
			dep = newHostileServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v2/") {
					r.URL.Path = strings.TrimPrefix(r.URL.Path, "/v2")
					evidence.Handler(enc, nil).ServeHTTP(w, r)
					return
				}
				if strings.HasPrefix(r.URL.Path, "/elsewhere/") {
					answer(http.StatusOK, `{"`+secret+`": 1}`).ServeHTTP(w, r)
					return
				}
				http.Redirect(w, r, tc.to(dep, r), http.StatusFound)
			}))
			fx := newAuditorFixtureWatch(t, "w", enc, fmt.Sprintf("{name: d, url: %q%s}", dep.URL, optIn))
			fx.log.add(fx.releaseOf(t, fx.op, m))
			fx.runOnce(t)
			if got := other.hits.Load() - before; got != 0 {
				t.Errorf("the other server got %d requests, want none", got)
			}
			st := deploymentStatus(t, fx)
			if st.Error != tc.wantError {
				t.Errorf("status %+v, want error %q", st, tc.wantError)
			}
			if tc.wantError == "" && st.Verdict != "ok" {
				t.Errorf("status %+v, want verdict ok", st)
			}
			if p := published(t, fx); strings.Contains(p, secret) {
				t.Errorf("the auditor publishes what the redirect target answered:\n%s", p)
			}
		})
	}
}

// TestDeploymentHidingBehindErrors: a deployment that answers the auditor
// with errors (here 500; a revoked deployment would do it to the auditor
// only) raises deployment-unreachable after unreachable_after failed
// polls in a row (default 3): one alert per outage, kept across a
// restart, with the error's category published and never its text.
func TestDeploymentHidingBehindErrors(t *testing.T) {
	m := strings.Repeat("5e", 48)
	enc, err := fakeenclave.NewSNP(mustHex(t, m))
	if err != nil {
		t.Fatal(err)
	}
	dep := newHostileServer(t, answer(http.StatusInternalServerError, secret))
	fx := newAuditorFixtureWatch(t, "w", enc, fmt.Sprintf("{name: d, url: %q%s}", dep.URL, optIn))
	fx.log.add(fx.releaseOf(t, fx.op, m))
	poll := func(step string, want ...string) {
		t.Helper()
		_, alerts := fx.runOnce(t)
		wantKinds(t, step, alerts, want...)
	}
	poll("failed poll 1")
	poll("failed poll 2")
	if st := deploymentStatus(t, fx); st.Verdict != "unreachable" || st.Error != "http-status" {
		t.Errorf("after 2 failed polls: status %+v, want unreachable, error http-status", st)
	}
	poll("failed poll 3", "deployment-unreachable")
	if st := deploymentStatus(t, fx); st.Verdict != "deployment-unreachable" || st.Error != "http-status" {
		t.Errorf("after 3 failed polls: status %+v, want deployment-unreachable, error http-status", st)
	}
	poll("failed poll 4")
	fx.aud.Close()
	fx.open(t)
	poll("failed poll 5, after a restart")
	if p := published(t, fx); strings.Contains(p, secret) || strings.Contains(p, "500") {
		t.Errorf("the auditor publishes the deployment's error text:\n%s", p)
	}

	// It answers again: the count starts over, and the next outage is
	// a new alert.
	dep.serve(evidence.Handler(enc, nil))
	poll("answering")
	if st := deploymentStatus(t, fx); st.Verdict != "ok" || st.Error != "" {
		t.Errorf("answering: status %+v, want ok", st)
	}
	dep.serve(answer(http.StatusForbidden, secret))
	poll("second outage, poll 1")
	poll("second outage, poll 2")
	poll("second outage, poll 3", "deployment-unreachable")
}

// TestDeploymentMalformedEvidenceOneAlert: malformed evidence whose
// parse error differs at every poll is one evidence-invalid alert, whose
// text is the category, not the parser's words about the input.
func TestDeploymentMalformedEvidenceOneAlert(t *testing.T) {
	var n atomic.Int64
	dep := newHostileServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"platform": "sev-snp", "%s-%d": 1}`, secret, n.Add(1))
	}))
	fx := newAuditorFixtureWatch(t, "w", nil, fmt.Sprintf("{name: d, url: %q%s}", dep.URL, optIn))
	_, alerts := fx.runOnce(t)
	wantKinds(t, "poll 1", alerts, AlertEvidenceInvalid)
	for i := 2; i <= 5; i++ {
		_, alerts := fx.runOnce(t)
		wantKinds(t, fmt.Sprintf("poll %d", i), alerts)
	}
	if st := deploymentStatus(t, fx); st.Verdict != AlertEvidenceInvalid || st.Error != "evidence-malformed" {
		t.Errorf("status %+v, want evidence-invalid, error evidence-malformed", st)
	}
	if p := published(t, fx); strings.Contains(p, secret) {
		t.Errorf("the auditor publishes the parser's words about the input:\n%s", p)
	}
}

// TestDeploymentInvalidEvidenceOneAlert: evidence that fails verification
// names a measurement nothing vouches for; serving another one at every
// poll is still one alert.
func TestDeploymentInvalidEvidenceOneAlert(t *testing.T) {
	var encs []*fakeenclave.Enclave
	for i := range 4 {
		e, err := fakeenclave.NewSNP(mustHex(t, fmt.Sprintf("%02x", i+1)+strings.Repeat("5e", 47)))
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, e)
	}
	var n atomic.Int64
	dep := newHostileServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evidence.Handler(encs[n.Add(1)%4], nil).ServeHTTP(w, r)
	}))
	// The policy trusts none of their (test) roots: all fail one check.
	fx := newAuditorFixtureWatch(t, "w", nil, fmt.Sprintf("{name: d, url: %q%s}", dep.URL, optIn))
	var all []string
	for range 4 {
		_, alerts := fx.runOnce(t)
		all = append(all, kinds(alerts)...)
	}
	if len(all) != 1 || all[0] != AlertEvidenceInvalid {
		t.Errorf("4 polls of 4 invalid measurements raised %q, want one evidence-invalid", all)
	}
}

// TestDeploymentFailureCategories: what /status says of each way a
// poll fails is a fixed word.
func TestDeploymentFailureCategories(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct {
		name string
		h    http.Handler
		url  string
		opts string
		want string
	}{
		{"connection refused", nil, closedURL, "", "unreachable"},
		{"404", http.NotFoundHandler(), "", "", "http-status"},
		{"too large", answer(http.StatusOK, `{"x": "`+strings.Repeat("a", evidence.MaxBundleSize)+`"}`), "", "", "too-large"},
		{"timeout", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}), "", ", timeout: 200ms", "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if tc.h != nil {
				u = newHostileServer(t, tc.h).URL
			}
			fx := newAuditorFixtureWatch(t, "w", nil, fmt.Sprintf("{name: d, url: %q%s%s}", u, optIn, tc.opts))
			fx.runOnce(t)
			if st := deploymentStatus(t, fx); st.Verdict != "unreachable" || st.Error != tc.want {
				t.Errorf("status %+v, want unreachable, error %q", st, tc.want)
			}
		})
	}
}
