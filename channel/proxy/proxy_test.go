package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/relay"
)

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8090": true, "[::1]:8090": true, "localhost:8090": true, "127.0.0.2:1": true,
		"0.0.0.0:8090": false, ":8090": false, "192.168.1.2:8090": false, "[::]:8090": false, "example.com:80": false, "8090": false,
	} {
		err := CheckListen(addr)
		if (err == nil) != ok {
			t.Errorf("CheckListen(%q) = %v, want ok=%v", addr, err, ok)
		}
		if !ok && strings.Contains(addr, ":") && addr != "8090" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckListen(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
}

// serve runs the proxy for the fleet's agent on loopback.
func serve(t *testing.T, f *channeltest.Fleet, r *channeltest.Running, refresh time.Duration) string {
	t.Helper()
	c, err := channel.New(channel.NewVerifier(f.Verifier(t), refresh), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(c, nil).Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestProxy(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{StapleInterval: time.Hour})
	const refresh = 300 * time.Millisecond
	base := serve(t, f, r, refresh)

	// An OpenAI client's request, plain HTTP to the proxy.
	body := `{"model":"` + chat.Model + `","messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), chat.Reply("hi")) {
		t.Fatalf("POST via the proxy = %s %s", resp.Status, b)
	}
	var v Verdict
	resp, err = http.Get(base + VerdictPath)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || !v.OK || v.KeySet != r.Agent.Status().KeySet || v.Verdict == nil || !v.Verdict.OK() {
		t.Fatalf("verdict = %s %+v", resp.Status, v)
	}

	// Revoked mid-session: within one refresh, nothing more is sent, and
	// the client reads why in OpenAI's error shape.
	f.Revoke(t)
	if err := r.Agent.RefreshStaple(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := up.Requests.Load()
	time.Sleep(refresh + 50*time.Millisecond)
	resp, err = http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Message, Type string }
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || e.Error.Type != "attestlog_not_trusted" || !strings.Contains(e.Error.Message, "revoked") {
		t.Fatalf("after the revocation: %s %+v", resp.Status, e)
	}
	if n := up.Requests.Load() - before; n != 0 {
		t.Errorf("%d requests reached the upstream after the revocation", n)
	}
	resp, _ = http.Get(base + VerdictPath)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("verdict after the revocation: %s, want 503", resp.Status)
	}
}

// TestProxyStreams: a streamed chat answer through agent and proxy is
// byte for byte what the service sent directly.
func TestProxyStreams(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	base := serve(t, f, r, 0)
	body := `{"model":"` + chat.Model + `","stream":true,"messages":[{"role":"user","content":"stream me a few words please"}]}`
	get := func(u string) string {
		resp, err := http.Post(u+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("%s: Content-Type %q", u, resp.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	direct, proxied := get(up.URL.String()), get(base)
	// The ids count requests; the rest must be identical.
	// The ids count requests and "created" is the second: the rest
	// must be identical.
	volatile := regexp.MustCompile(`"created":\d+|chatcmpl-demo-\d+`)
	norm := func(s string) string { return volatile.ReplaceAllString(s, "") }
	if norm(direct) != norm(proxied) || !strings.HasSuffix(proxied, "data: [DONE]\n\n") {
		t.Fatalf("streamed through agent and proxy:\n%s\nwant\n%s", proxied, direct)
	}
}

// TestProxyStreamsUnbuffered: through agent and proxy, each server-sent
// event reaches the local client before the service writes the next one.
func TestProxyStreamsUnbuffered(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	got := make(chan struct{})
	const events = 10
	up := channeltest.StartUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: token %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	base := serve(t, f, r, 0)
	resp, err := http.Get(base + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range events {
		line, err := br.ReadString('\n')
		blank, _ := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: token %d\n", i) || blank != "\n" {
			t.Fatalf("event %d = %q %q, %v (held back by agent or proxy?)", i, line, blank, err)
		}
		got <- struct{}{}
	}
}

// TestObliviousProxy: `attestlog proxy --relay`: an OpenAI-style request
// to the local proxy goes sealed through a real relay to the enclave.
func TestObliviousProxy(t *testing.T) {
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	g, _ := relay.ParseGateway("demo=" + r.URL)
	rl, err := relay.New(relay.Options{Gateways: []relay.Gateway{g}, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rln, _ := net.Listen("tcp", "127.0.0.1:0")
	rsrv := &http.Server{Handler: rl.Handler()}
	go rsrv.Serve(rln)
	t.Cleanup(func() { rsrv.Close() })
	o, err := channel.NewOblivious(channel.NewVerifier(f.Verifier(t), 0), "http://"+rln.Addr().String()+"/g/demo")
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: NewOblivious(o, nil).Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	body := `{"model":"` + chat.Model + `","messages":[{"role":"user","content":"hi through a relay"}]}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), chat.Reply("hi through a relay")) {
		t.Fatalf("POST through the oblivious proxy = %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(base + VerdictPath)
	if err != nil {
		t.Fatal(err)
	}
	var v Verdict
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || !v.OK || !strings.Contains(v.Enclave, "oblivious via") {
		t.Errorf("verdict = %d %+v", resp.StatusCode, v)
	}
}
