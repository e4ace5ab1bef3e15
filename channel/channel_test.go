package channel_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/agent/reportsrc"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

func chatBody(stream bool) string {
	return fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hello enclave"}]}`, chat.Model, stream)
}

func post(c *http.Client, base, body string) (int, string, error) {
	resp, err := c.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestTrustedChannel(t *testing.T) {
	f := channeltest.NewFleet(t, 1)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	hc, c, err := channel.HTTPClient(t.Context(), f.Verifier(t), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := post(hc, r.URL, chatBody(false))
	if err != nil || code != 200 || !strings.Contains(body, chat.Reply("hello enclave")) {
		t.Fatalf("POST through the channel = %d %q, %v", code, body, err)
	}
	st := c.State()
	if !st.OK || st.KeySet != r.Agent.Status().KeySet || !st.ValidUntil.After(time.Now()) || st.Verdict == nil || !st.Verdict.OK() {
		t.Fatalf("State = %+v, want OK on key set %s", st, r.Agent.Status().KeySet)
	}
	if _, ok := st.Verdict.Checks.Find("nonce binding"); !ok {
		t.Errorf("the verdict has no nonce binding (key set) check: %s", st.Verdict.Checks)
	}
	// A plain HTTPS client (WebPKI) refuses the self-signed key set
	// certificate: trust comes from the attestation, not from a CA.
	if _, err := http.Get(r.URL + "/v1/models"); err == nil {
		t.Error("a WebPKI client accepted the enclave's self-signed certificate")
	}
	// The channel refuses requests for another host.
	if _, err := hc.Get("https://example.com/"); err == nil {
		t.Error("the channel sent a request to another host")
	}
}

// tlsRelay terminates TLS with a key of its own and forwards every
// request to target (the real agent), recording the bodies it sees.
func tlsRelay(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	tu, _ := url.Parse(target)
	var seen atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(tu)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != evidence.DocumentPath {
			seen.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	srv.TLSConfig = channeltest.SelfSigned(t)
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String(), &seen
}

func TestRelayRefused(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relay, seen := tlsRelay(t, r.URL)
	c, err := channel.New(channel.NewVerifier(f.Verifier(t), 0), relay)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = post(c.HTTPClient(), relay, chatBody(false))
	if !errors.Is(err, channel.ErrKeyNotAttested) {
		t.Fatalf("POST through a TLS-terminating relay = %v, want ErrKeyNotAttested", err)
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the relay saw %d requests besides the attestation document", n)
	}
	if n := up.Requests.Load(); n != 0 {
		t.Errorf("the upstream got %d requests through the relay", n)
	}
	if !strings.Contains(err.Error(), "relay") {
		t.Errorf("the error does not say what happened: %v", err)
	}
}

// TestReplayedDocument: a document of a previous key set, replayed by a
// server holding another key, is refused; an expired key set is refused
// however it is served.
func TestReplayedDocument(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	old := fetchDocument(t, r.URL)
	if err := r.Agent.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	replayer := serveDocument(t, old)
	c, _ := channel.New(channel.NewVerifier(f.Verifier(t), 0), replayer)
	if _, _, err := post(c.HTTPClient(), replayer, chatBody(false)); !errors.Is(err, channel.ErrKeyNotAttested) {
		t.Errorf("a replayed document of the previous key set = %v, want ErrKeyNotAttested", err)
	}

	// A client whose clock is past the key set's expiry (a document
	// kept beyond its life) refuses the real agent's document.
	late := time.Now().Add(agent.DefaultLifetime + time.Hour)
	v, err := verify.Load(f.PolicyPath, verify.WithClock(func() time.Time { return late }))
	if err != nil {
		t.Fatal(err)
	}
	c, _ = channel.New(channel.NewVerifier(v, 0), r.URL)
	_, err = c.Verify(t.Context())
	if !errors.Is(err, channel.ErrNotTrusted) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired key set = %v, want ErrNotTrusted saying it expired", err)
	}
	if n := up.Requests.Load(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// fetchDocument reads the agent's attestation document over plain
// TLS (no pinning: for tests that capture it).
func fetchDocument(t *testing.T, base string) []byte {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(base + evidence.DocumentPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET document = %s %s", resp.Status, b)
	}
	return b
}

// serveDocument serves doc at the document path over TLS with a key of
// its own.
func serveDocument(t *testing.T, doc []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }), TLSConfig: channeltest.SelfSigned(t)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func TestRotationUnderLoad(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	var changes atomic.Int64
	c, err := channel.New(channel.NewVerifier(f.Verifier(t), 0), r.URL, channel.WithOnChange(func(channel.State) { changes.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HTTPClient()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, err := post(hc, r.URL, chatBody(false))
				if err != nil || code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
					continue
				}
				ok.Add(1)
			}
		})
	}
	seen := map[string]bool{}
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if err := r.Agent.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Connections opened from now on carry the new key: wait (a
		// bound, not a timing assertion) until the load has made one.
		c.CloseIdleConnections()
		want := r.Agent.Status().KeySet
		for deadline := time.Now().Add(20 * time.Second); c.State().KeySet != want && time.Now().Before(deadline); {
			c.CloseIdleConnections()
			time.Sleep(20 * time.Millisecond)
		}
		seen[c.State().KeySet] = true
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed across 5 rotations; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if len(seen) < 4 || !seen[r.Agent.Status().KeySet] {
		t.Errorf("the client pinned %d key sets across 5 rotations (want the new ones, ending with %s)", len(seen), r.Agent.Status().KeySet)
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests in a second of load", ok.Load())
	}
	t.Logf("%d requests, %d verdict changes, %d key sets pinned", ok.Load(), changes.Load(), len(seen))
}

// TestRevocationStopsRequests: a revocation logged mid-session reaches
// the client with the agent's next staple, and from the client's next
// refresh no request leaves it.
func TestRevocationStopsRequests(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{StapleInterval: time.Hour}) // refreshed by hand below
	const refresh = 300 * time.Millisecond
	c, err := channel.New(channel.NewVerifier(f.Verifier(t), refresh), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HTTPClient()
	if code, _, err := post(hc, r.URL, chatBody(false)); err != nil || code != 200 {
		t.Fatalf("before the revocation: %d %v", code, err)
	}
	f.Revoke(t)
	if err := r.Agent.RefreshStaple(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := up.Requests.Load()
	time.Sleep(refresh + 50*time.Millisecond) // one client refresh
	for range 3 {
		_, _, err := post(hc, r.URL, chatBody(false))
		if !errors.Is(err, channel.ErrNotTrusted) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("a request after the revocation = %v, want ErrNotTrusted (revoked)", err)
		}
	}
	if got := up.Requests.Load(); got != before {
		t.Errorf("%d requests reached the upstream after the revocation reached the client", got-before)
	}
	if st := c.State(); st.OK {
		t.Errorf("State after the revocation = %+v, want not OK", st)
	}
}

func TestChallengeFlood(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{Challenges: agent.ChallengeBudget{PerSecond: 2, Burst: 2, MaxWaiting: 1}})
	hc, _, err := channel.HTTPClient(t.Context(), f.Verifier(t), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	reports := r.Agent.Reports()
	flood := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 64}}
	var codes sync.Map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := flood.Get(r.URL + evidence.Path + "?nonce=" + strings.Repeat("ab", 32))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if resp.StatusCode != 200 && resp.Header.Get("Retry-After") == "" {
					t.Errorf("a refused challenge (%d) without Retry-After", resp.StatusCode)
				}
			}
		})
	}
	// Verified clients go on meanwhile.
	for i := range 50 {
		if code, _, err := post(hc, r.URL, chatBody(false)); err != nil || code != 200 {
			t.Fatalf("request %d of a verified client during the flood: %d %v", i, code, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	var ok, refused int64
	codes.Range(func(k, v any) bool {
		switch k.(int) {
		case 200:
			ok += v.(*atomic.Int64).Load()
		case 429, 503:
			refused += v.(*atomic.Int64).Load()
		default:
			t.Errorf("challenge answered %d", k)
		}
		return true
	})
	used := r.Agent.Reports() - reports
	if refused == 0 || ok == 0 || used != ok {
		t.Errorf("flood: %d answered, %d refused with 429/503, %d hardware reports spent", ok, refused, used)
	}
	t.Logf("flood: %d answered, %d refused, %d reports", ok, refused, used)
}

// slowSource gives at most one report a second, as an SEV-SNP host does.
type slowSource struct {
	reportsrc.Source
	mu   sync.Mutex
	last time.Time
}

func (s *slowSource) Report(ctx context.Context, rd [64]byte) (*evidence.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wait := time.Second - time.Since(s.last); wait > 0 {
		time.Sleep(wait)
	}
	s.last = time.Now()
	return s.Source.Report(ctx, rd)
}

func TestThousandNewClientsOneReport(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{Source: &slowSource{Source: f.Enclave}})
	cv := channel.NewVerifier(f.Verifier(t), 0)
	start := r.Agent.Reports()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var failed atomic.Int64
	t0 := time.Now()
	for range 1000 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := channel.New(cv, r.URL)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.CloseIdleConnections()
			if code, _, err := post(c.HTTPClient(), r.URL, chatBody(false)); err != nil || code != 200 {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of 1000 new clients failed", n)
	}
	if n := r.Agent.Reports() - start; n != 0 {
		t.Errorf("1000 new clients cost %d hardware reports, want 0 (one per key set)", n)
	}
	t.Logf("1000 new clients in %v on a source of one report a second", time.Since(t0).Round(time.Millisecond))
}

// TestStreaming: a server-sent event reaches the client before the
// upstream sends the next one (nothing buffers it), and the stream
// arrives byte for byte.
func TestStreaming(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	got := make(chan struct{})
	const events = 5
	up := channeltest.StartUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-got: // the client has it: send the next
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	hc, _, err := channel.HTTPClient(t.Context(), f.Verifier(t), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(r.URL + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var all strings.Builder
	for i := range events {
		line, err := br.ReadString('\n')
		blank, _ := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) || blank != "\n" {
			t.Fatalf("event %d = %q %q, %v (buffered somewhere?)", i, line, blank, err)
		}
		all.WriteString(line + blank)
		got <- struct{}{}
	}
	rest, _ := io.ReadAll(br)
	if len(rest) != 0 {
		t.Errorf("after the events: %q", rest)
	}
}

func TestUpstreamDown(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	up.Server.Close()
	hc, _, err := channel.HTTPClient(t.Context(), f.Verifier(t), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := post(hc, r.URL, chatBody(false))
	if err != nil || code != http.StatusBadGateway || !strings.Contains(body, "did not answer") || !strings.Contains(body, "attested") {
		t.Fatalf("POST with the upstream down = %d %q, %v; want 502 saying the service did not answer", code, body, err)
	}
}

// connectProxy is an HTTP CONNECT proxy on loopback; intercept makes it
// terminate TLS itself (with a key of its own) and relay to the target.
func connectProxy(t *testing.T, intercept bool) (*url.URL, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var tunnels atomic.Int64
	cfg := channeltest.SelfSigned(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				tunnels.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				var client net.Conn = c
				if intercept {
					tc := tls.Server(c, cfg)
					uc := tls.Client(up, &tls.Config{InsecureSkipVerify: true})
					client, up = tc, uc
				}
				go io.Copy(up, client)
				io.Copy(client, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}, &tunnels
}

func TestThroughProxy(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	cv := channel.NewVerifier(f.Verifier(t), 0)

	pu, tunnels := connectProxy(t, false)
	c, _ := channel.New(cv, r.URL, channel.WithProxy(func(*url.URL) (*url.URL, error) { return pu, nil }))
	if code, _, err := post(c.HTTPClient(), r.URL, chatBody(false)); err != nil || code != 200 {
		t.Fatalf("through a CONNECT proxy: %d %v", code, err)
	}
	if tunnels.Load() == 0 {
		t.Fatal("the proxy saw no CONNECT")
	}

	// A proxy that intercepts TLS (a corporate inspection box) shows its
	// own key: refused before any request.
	before := up.Requests.Load()
	pi, _ := connectProxy(t, true)
	c, _ = channel.New(cv, r.URL, channel.WithProxy(func(*url.URL) (*url.URL, error) { return pi, nil }))
	if _, _, err := post(c.HTTPClient(), r.URL, chatBody(false)); !errors.Is(err, channel.ErrKeyNotAttested) {
		t.Fatalf("through an intercepting proxy = %v, want ErrKeyNotAttested", err)
	}
	if n := up.Requests.Load() - before; n != 0 {
		t.Errorf("%d requests reached the upstream through the intercepting proxy", n)
	}
}

// FuzzVerifyDocument: whatever a server answers for the attestation
// document, verifying it neither panics nor trusts it.
func FuzzVerifyDocument(f *testing.F) {
	f.Add([]byte(`{"format":"attestlog-evidence/v3","platform":"sev-snp","report":"AAAA","key_set":"AQAAAABpVbkAAAAAAGlXCoA="}`))
	f.Add([]byte(`{"format":"attestlog-evidence/v1","platform":"tdx","quote":"AAAA"}`))
	f.Add([]byte(`{}`))
	fl := channeltest.NewFleet(f, 0)
	cv := channel.NewVerifier(fl.Verifier(f), 0)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > evidence.MaxBundleSize {
			return
		}
		vd, _, err := cv.VerifyDocument(in)
		if err == nil && vd.OK() {
			t.Fatalf("a fuzzed document verified: %q", in)
		}
	})
}

// TestNewClientOneConnection: a new client verifies the enclave and
// sends its first request over one connection (one TCP connection, one
// TLS handshake), not one for the document and another for the request.
func TestNewClientOneConnection(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	pu, tunnels := connectProxy(t, false)
	c, _ := channel.New(channel.NewVerifier(f.Verifier(t), 0), r.URL, channel.WithProxy(func(*url.URL) (*url.URL, error) { return pu, nil }))
	hc := c.HTTPClient()
	for i := range 3 {
		if code, _, err := post(hc, r.URL, chatBody(false)); err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	if n := tunnels.Load(); n != 1 {
		t.Errorf("a new client's verification and three requests took %d connections, want 1", n)
	}
}

// rawRequest opens a TLS connection to the agent at base and sends one
// GET, leaving the connection open.
func rawRequest(t *testing.T, base string) (net.Conn, *http.Response, string) {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: enclave\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return c, resp, string(b)
}

// TestConnectionLimit: past its limit of open connections the agent
// answers 503 with Retry-After and says why; once one closes, a new
// connection is served.
func TestConnectionLimit(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{MaxConnections: 2})
	var open []net.Conn
	for range 2 {
		c, resp, _ := rawRequest(t, r.URL)
		defer c.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a connection within the limit: %s", resp.Status)
		}
		open = append(open, c)
	}
	c, resp, body := rawRequest(t, r.URL)
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "maximum of 2 open connections") {
		t.Fatalf("a connection past the limit: %s (Retry-After %q) %q, want 503 saying so", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	open[0].Close()
	for i := 0; r.Agent.Connections() > 1; i++ {
		if i > 100 {
			t.Fatalf("the agent counts %d connections after one closed", r.Agent.Connections())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, resp, _ = rawRequest(t, r.URL)
	c.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a connection after one closed: %s", resp.Status)
	}
}

// TestDocumentInHandshake: the agent sends the attestation document
// inside the TLS handshake to a client that offers evidence.DocumentALPN
// (and to no other: a browser expects an OCSP response there), still
// negotiating http/1.1; a server with a key of its own that staples a
// real enclave's document is refused.
func TestDocumentInHandshake(t *testing.T) {
	f := channeltest.NewFleet(t, 1)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	addr := strings.TrimPrefix(r.URL, "https://")
	served := fetchDocument(t, r.URL)
	for _, tc := range []struct {
		protos []string
		staple bool
	}{{[]string{"http/1.1", evidence.DocumentALPN}, true}, {[]string{"http/1.1"}, false}, {nil, false}, {[]string{"h2", "http/1.1"}, false}} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: tc.protos})
		if err != nil {
			t.Fatal(err)
		}
		cs := c.ConnectionState()
		c.Close()
		if got := len(cs.OCSPResponse) > 0; got != tc.staple {
			t.Errorf("ALPN %q: document in the handshake = %v, want %v", tc.protos, got, tc.staple)
		}
		if tc.staple && string(cs.OCSPResponse) != string(served) {
			t.Errorf("ALPN %q: the handshake's document differs from the one served at %s", tc.protos, evidence.DocumentPath)
		}
		if slices.Contains(tc.protos, evidence.DocumentALPN) && cs.NegotiatedProtocol != "http/1.1" {
			t.Errorf("ALPN %q: negotiated %q, want http/1.1", tc.protos, cs.NegotiatedProtocol)
		}
	}

	// A relay with its own key, stapling the real document.
	cfg := channeltest.SelfSigned(t)
	cfg.Certificates[0].OCSPStaple = served
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1) }), TLSConfig: cfg}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	relay := "https://" + ln.Addr().String()
	c, _ := channel.New(channel.NewVerifier(f.Verifier(t), 0), relay)
	if _, _, err := post(c.HTTPClient(), relay, chatBody(false)); !errors.Is(err, channel.ErrKeyNotAttested) {
		t.Errorf("a server stapling the real document with its own key = %v, want ErrKeyNotAttested", err)
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the relay got %d requests", n)
	}
}

// TestLargeDocumentFetched: a document too large for the handshake
// (six GPUs) is not sent in it; the client reads it over the connection
// and goes on.
func TestLargeDocumentFetched(t *testing.T) {
	f := channeltest.NewFleet(t, 6)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	if n := len(fetchDocument(t, r.URL)); n <= agent.MaxHandshakeDocument {
		t.Fatalf("the six-GPU document is %d bytes, within the handshake's %d: the test tests nothing", n, agent.MaxHandshakeDocument)
	}
	c, err := tls.Dial("tcp", strings.TrimPrefix(r.URL, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1", evidence.DocumentALPN}})
	if err != nil {
		t.Fatalf("a handshake asking for a document too large for it: %v", err)
	}
	if n := len(c.ConnectionState().OCSPResponse); n != 0 {
		t.Errorf("%d bytes of document in the handshake, want none", n)
	}
	c.Close()
	hc, _, err := channel.HTTPClient(t.Context(), f.Verifier(t), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := post(hc, r.URL, chatBody(false)); err != nil || code != 200 {
		t.Fatalf("POST: %d %v", code, err)
	}
}
