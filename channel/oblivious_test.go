package channel_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/policy/verify"
	"github.com/attestlog/attestlog/relay"
)

// recorder keeps everything a relay handled: what clients sent it, what
// it answered them, and what it sent the gateway (headers included).
type recorder struct {
	mu       sync.Mutex
	in, out  bytes.Buffer
	outbound []http.Header
	posts    int
}

func (rc *recorder) all() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	b := append(bytes.Clone(rc.in.Bytes()), rc.out.Bytes()...)
	for _, h := range rc.outbound {
		b = append(b, fmt.Sprint(h)...)
	}
	return b
}

type teeWriter struct {
	http.ResponseWriter
	rc *recorder
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.rc.mu.Lock()
	t.rc.out.Write(p)
	t.rc.mu.Unlock()
	return t.ResponseWriter.Write(p)
}
func (t teeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

type teeTransport struct {
	rt http.RoundTripper
	rc *recorder
}

func (t teeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.rc.mu.Lock()
	t.rc.outbound = append(t.rc.outbound, r.Header.Clone())
	t.rc.mu.Unlock()
	return t.rt.RoundTrip(r)
}

// startRelay runs a real relay (package relay) for the agent at target,
// on loopback, recording what it handles.
func startRelay(t *testing.T, target string) (string, *recorder) {
	t.Helper()
	rc := &recorder{}
	g, err := relay.ParseGateway("demo=" + target)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := relay.New(relay.Options{Gateways: []relay.Gateway{g}, Rate: 1000, Burst: 1000,
		// The agent's certificate is its attested key's, self-signed.
		Transport: teeTransport{rt: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, rc: rc}})
	if err != nil {
		t.Fatal(err)
	}
	h := rl.Handler()
	url := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.in.Write(b)
		if r.Method == http.MethodPost {
			rc.posts++
		}
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(teeWriter{w, rc}, r)
	}))
	return url + "/g/demo", rc
}

func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// headerUpstream is the chat service, recording the headers it got.
func headerUpstream(t *testing.T, h http.Handler) (*channeltest.Upstream, *[]http.Header, *sync.Mutex) {
	var mu sync.Mutex
	var seen []http.Header
	if h == nil {
		h = (&chat.Server{}).Handler()
	}
	up := channeltest.StartUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	return up, &seen, &mu
}

func TestObliviousThroughRelay(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up, seen, mu := headerUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relayURL, rec := startRelay(t, r.URL)
	for _, kem := range []uint16{0, keyset.KEMX25519} {
		o, err := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), 0), relayURL, channel.WithKEM(kem))
		if err != nil {
			t.Fatal(err)
		}
		const question = "what is the secret of the enclave"
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]}`, chat.Model, question)
		req, _ := http.NewRequest(http.MethodPost, "https://enclave.example/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk-header-secret-42")
		resp, err := o.HTTPClient().Do(req)
		if err != nil {
			t.Fatalf("KEM %s: POST through the relay: %v", keyset.KEMName(kem), err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(got), chat.Reply(question)) {
			t.Fatalf("KEM %s: answer %d %q, %v", keyset.KEMName(kem), resp.StatusCode, got, err)
		}
		if st := o.State(); !st.OK || st.KeySet != r.Agent.Status().KeySet {
			t.Errorf("State = %+v, want OK on %s", st, r.Agent.Status().KeySet)
		}
		// The relay handled ciphertext only.
		all := rec.all()
		for _, secret := range []string{question, chat.Reply(question), "/v1/chat/completions", "sk-header-secret-42", "enclave.example"} {
			if bytes.Contains(all, []byte(secret)) {
				t.Errorf("the relay saw %q in plaintext", secret)
			}
		}
	}
	// Nothing of the client reached the gateway or the service.
	rec.mu.Lock()
	for _, h := range rec.outbound {
		for k, v := range h {
			if k != "Content-Type" && k != "Incremental" && k != "Accept" && !(k == "User-Agent" && v[0] == "") {
				t.Errorf("the relay sent the gateway header %s: %q", k, v)
			}
		}
	}
	rec.mu.Unlock()
	mu.Lock()
	for _, h := range *seen {
		for k, v := range h {
			if strings.Contains(strings.ToLower(k), "forward") || strings.Contains(k, "Real-Ip") || strings.Contains(strings.Join(v, " "), "127.0.0.1") {
				t.Errorf("the service got %s: %q", k, v)
			}
		}
	}
	if len(*seen) != 2 {
		t.Errorf("the service got %d requests, want 2", len(*seen))
	}
	mu.Unlock()
}

// TestObliviousRefusals: nothing is posted when the relay substitutes
// its own key configuration, when the document is old, or when the
// enclave is not trusted.
func TestObliviousRefusals(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relayURL, _ := startRelay(t, r.URL)

	// A relay in the middle: the real document, its own gateway's keys
	// (another agent's: a real key pair whose private key it holds).
	other := channeltest.StartAgent(t, channeltest.NewFleet(t, 0), up, agent.Options{})
	otherRelay, _ := startRelay(t, other.URL)
	var posts int
	var mmu sync.Mutex
	mitm := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		src := relayURL
		if strings.HasSuffix(req.URL.Path, "/keys") || req.Method == http.MethodPost {
			src = otherRelay
		}
		if req.Method == http.MethodPost {
			mmu.Lock()
			posts++
			mmu.Unlock()
		}
		suffix := strings.TrimPrefix(req.URL.Path, "/g/demo")
		out, _ := http.NewRequest(req.Method, src+suffix, req.Body)
		out.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	o, _ := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), 0), mitm+"/g/demo")
	_, err := o.HTTPClient().Post("https://enclave/v1/chat/completions", "application/json", strings.NewReader(chatBody(false)))
	if !errors.Is(err, channel.ErrGatewayKeyMismatch) {
		t.Errorf("a relay substituting its key configuration = %v, want ErrGatewayKeyMismatch", err)
	}
	mmu.Lock()
	if posts != 0 {
		t.Errorf("%d requests were posted to the substituting relay", posts)
	}
	mmu.Unlock()

	// An old key set (a client whose clock is past its expiry; or a
	// relay replaying a document that long): refused.
	late := time.Now().Add(agent.DefaultLifetime + time.Hour)
	v, err := verify.Load(f.PolicyPath, verify.WithClock(func() time.Time { return late }))
	if err != nil {
		t.Fatal(err)
	}
	relay2, rec := startRelay(t, r.URL)
	o, _ = channel.NewOblivious(channel.NewVerifier(v, 0), relay2)
	_, err = o.HTTPClient().Post("https://enclave/v1/chat/completions", "application/json", strings.NewReader(chatBody(false)))
	if !errors.Is(err, channel.ErrNotTrusted) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired key set = %v, want ErrNotTrusted saying it expired", err)
	}
	// Another operator's policy: the enclave is not trusted.
	o, _ = channel.NewOblivious(channel.NewVerifier(channeltest.NewFleet(t, 0).Verifier(t), 0), relay2)
	_, err = o.HTTPClient().Post("https://enclave/v1/chat/completions", "application/json", strings.NewReader(chatBody(false)))
	if !errors.Is(err, channel.ErrNotTrusted) {
		t.Errorf("an enclave another policy does not trust = %v, want ErrNotTrusted", err)
	}
	rec.mu.Lock()
	if rec.posts != 0 {
		t.Errorf("%d requests were posted for an enclave not trusted", rec.posts)
	}
	rec.mu.Unlock()
	if n := up.Requests.Load(); n != 0 {
		t.Errorf("the service got %d requests", n)
	}
}

// TestObliviousTamperingRelay: a relay that alters the answer is
// detected (an error, never a different answer); one that replays a
// request gets an answer it cannot read.
func TestObliviousTamperingRelay(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relayURL, rec := startRelay(t, r.URL)
	var mode string
	var captured []byte
	var ct string
	var mu sync.Mutex
	evil := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Method == http.MethodPost {
			mu.Lock()
			captured, ct = body, req.Header.Get("Content-Type")
			mu.Unlock()
		}
		out, _ := http.NewRequest(req.Method, relayURL+strings.TrimPrefix(req.URL.Path, "/g/demo"), bytes.NewReader(body))
		out.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if req.Method == http.MethodPost {
			switch mode {
			case "flip":
				b[len(b)/2] ^= 1
			case "cut":
				b = b[:len(b)-5]
			}
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	o, _ := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), 0), evil+"/g/demo")
	for _, m := range []string{"flip", "cut"} {
		mode = m
		resp, err := o.HTTPClient().Post("https://enclave/v1/chat/completions", "application/json", strings.NewReader(chatBody(false)))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("a relay that does %q to the answer: no error", m)
		}
	}
	// Replay: the gateway answers again (RFC 9458 §6.5: OHTTP does not
	// stop replays), but only the original client can open the answer.
	mu.Lock()
	replay, rct := captured, ct
	mu.Unlock()
	before := up.Requests.Load()
	resp, err := http.Post(relayURL, rct, bytes.NewReader(replay))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(b, []byte(chat.Reply("hello enclave"))) || bytes.Contains(rec.all(), []byte("hello enclave")) {
		t.Error("a replayed request's answer is readable by the relay")
	}
	t.Logf("replay: the service got %d more request(s); the answer (%d bytes) is sealed to the original client", up.Requests.Load()-before, len(b))
}

// TestObliviousStreaming: a server-sent event stream arrives through the
// relay event by event, byte-identical to what the service sent.
func TestObliviousStreaming(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	got := make(chan struct{})
	const events = 5
	var sent bytes.Buffer
	up := channeltest.StartUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			e := fmt.Sprintf("data: event %d %s\n\n", i, strings.Repeat("x", i*7000))
			sent.WriteString(e)
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relayURL, _ := startRelay(t, r.URL)
	o, _ := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), 0), relayURL)
	resp, err := o.HTTPClient().Get("https://enclave/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var all bytes.Buffer
	for i := range events {
		line, err := br.ReadString('\n')
		blank, _ := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, fmt.Sprintf("data: event %d ", i)) || blank != "\n" {
			t.Fatalf("event %d = %q %q, %v (buffered somewhere?)", i, line[:min(len(line), 40)], blank, err)
		}
		all.WriteString(line + blank)
		got <- struct{}{}
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("after the events: %v", err)
	}
	all.Write(rest)
	if !bytes.Equal(all.Bytes(), sent.Bytes()) {
		t.Errorf("the stream differs from what the service sent: %d bytes, want %d", all.Len(), sent.Len())
	}
}

// TestObliviousAfterRestart: a client whose verdict is still current
// when the enclave behind the relay has restarted with new keys (the
// gateway cannot open its request) verifies the new document and seals
// again, without failing the request; a rotation keeps old key sets'
// keys until they expire, so requests to them are simply answered.
func TestObliviousAfterRestart(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	a := channeltest.StartAgent(t, f, up, agent.Options{})
	b := channeltest.StartAgent(t, f, up, agent.Options{}) // the "restarted" enclave
	relayA, _ := startRelay(t, a.URL)
	relayB, _ := startRelay(t, b.URL)
	var mu sync.Mutex
	target := relayA
	front := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		to := target
		mu.Unlock()
		out, _ := http.NewRequest(req.Method, to+strings.TrimPrefix(req.URL.Path, "/g/demo"), req.Body)
		out.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	o, _ := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), time.Hour), front+"/g/demo")
	hc := o.HTTPClient()
	if code, _, err := post(hc, "https://enclave", chatBody(false)); err != nil || code != 200 {
		t.Fatalf("first request: %d %v", code, err)
	}
	if err := a.Agent.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, _, err := post(hc, "https://enclave", chatBody(false)); err != nil || code != 200 {
		t.Fatalf("after a rotation: %d %v", code, err)
	}
	if st := o.State(); st.KeySet == a.Agent.Status().KeySet {
		t.Logf("the client re-verified early (key set %s)", st.KeySet)
	}
	mu.Lock()
	target = relayB
	mu.Unlock()
	code, body, err := post(hc, "https://enclave", chatBody(false))
	if err != nil || code != 200 || !strings.Contains(body, chat.Reply("hello enclave")) {
		t.Fatalf("after the restart: %d %q %v", code, body, err)
	}
	if st := o.State(); st.KeySet != b.Agent.Status().KeySet {
		t.Errorf("the client seals to key set %s, want the restarted enclave's %s", st.KeySet, b.Agent.Status().KeySet)
	}
}
