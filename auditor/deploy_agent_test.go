package auditor

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel/channeltest"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// startAgent runs the enclave agent (`attestlog enclave`'s package, the
// demo signer as its report source) for enc on loopback, TLS, with no
// upstream, and returns its URL.
func startAgent(t *testing.T, enc *fakeenclave.Enclave) (*agent.Agent, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, agent.Options{Source: enc})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.ServeTLS(ctx, ln, a.Handler(nil)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, "https://" + ln.Addr().String()
}

// TestDeploymentWatchAgent: the auditor reads an enclave agent's
// attestation document over https as clients do — on a connection whose
// TLS key the document's key set names — shows its key set, and spends
// no hardware report per poll.
func TestDeploymentWatchAgent(t *testing.T) {
	served := strings.Repeat("5e", 48)
	enc, err := fakeenclave.NewSNP(mustHex(t, served))
	if err != nil {
		t.Fatal(err)
	}
	a, u := startAgent(t, enc)
	fx := newAuditorFixtureWatch(t, "w", enc, fmt.Sprintf("{name: d, url: %q, allow_private: true}", u))
	fx.log.add(fx.releaseOf(t, fx.op, served))
	reports := a.Reports()
	for i := range 3 {
		err, alerts := fx.runOnce(t)
		if err != nil {
			t.Fatal(err)
		}
		wantKinds(t, fmt.Sprintf("poll %d", i), alerts)
		st := deploymentStatus(t, fx)
		if st.Verdict != "ok" || st.KeySet != a.Status().KeySet || st.KeySetNotAfter.IsZero() {
			t.Fatalf("poll %d: status %+v, want ok on key set %s", i, st, a.Status().KeySet)
		}
	}
	if n := a.Reports() - reports; n != 0 {
		t.Errorf("3 polls cost the agent %d hardware reports, want 0", n)
	}
	// After a rotation the auditor reads the new key set's document.
	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err, _ := fx.runOnce(t); err != nil {
		t.Fatal(err)
	}
	if st := deploymentStatus(t, fx); st.Verdict != "ok" || st.KeySet != a.Status().KeySet {
		t.Errorf("after a rotation: status %+v, want ok on key set %s", st, a.Status().KeySet)
	}
}

// TestDeploymentWatchAgentBehindRelay: a TLS-terminating relay in front
// of the agent (its own key, the agent's document passed through) is
// refused: evidence-invalid, key-not-attested, nothing marked ok.
func TestDeploymentWatchAgentBehindRelay(t *testing.T) {
	served := strings.Repeat("5e", 48)
	enc, err := fakeenclave.NewSNP(mustHex(t, served))
	if err != nil {
		t.Fatal(err)
	}
	_, u := startAgent(t, enc)
	target, _ := url.Parse(u)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay := &http.Server{Handler: rp, TLSConfig: channeltest.SelfSigned(t)}
	go relay.ServeTLS(ln, "", "")
	t.Cleanup(func() { relay.Close() })
	// The relay does pass the real document through.
	if _, err := evidence.FetchDocument(t.Context(), &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, "https://"+ln.Addr().String()); err != nil {
		t.Fatalf("the relay does not relay the document: %v", err)
	}
	fx := newAuditorFixtureWatch(t, "w", enc, fmt.Sprintf("{name: d, url: %q, allow_private: true}", "https://"+ln.Addr().String()))
	fx.log.add(fx.releaseOf(t, fx.op, served))
	_, alerts := fx.runOnce(t)
	wantKinds(t, "behind a relay", alerts, AlertEvidenceInvalid)
	if st := deploymentStatus(t, fx); st.Verdict != AlertEvidenceInvalid || st.Error != FailureKeyNotAttested {
		t.Errorf("status %+v, want %s (%s)", st, AlertEvidenceInvalid, FailureKeyNotAttested)
	}
}
