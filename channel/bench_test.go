package channel_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/proxy"
	"github.com/attestlog/attestlog/relay"
)

// benchAgent is an agent (demo signer, one demo GPU, staples of an
// in-memory log) in front of the demo chat service.
func benchAgent(b *testing.B, up http.Handler) (*channeltest.Fleet, *channeltest.Upstream, *channeltest.Running) {
	b.Helper()
	f := channeltest.NewFleet(b, 1)
	u := channeltest.StartUpstream(b, up)
	r := channeltest.StartAgent(b, f, u, agent.Options{})
	return f, u, r
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// BenchmarkNewClient: a new client's first request, each on a new
// connection to the same agent: plain TLS (no verification: the
// baseline), the attested channel with the verdict of the current
// document already at hand in the process (a proxy or a service serving
// many users: connect, read the document, pin), and a cold client that
// verifies everything itself (hardware chain, GPU, proofs).
func BenchmarkNewClient(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	url := r.URL + "/v1/models"
	b.Run("plain-tls", func(b *testing.B) {
		for b.Loop() {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			get(b, c, url)
			c.CloseIdleConnections()
		}
	})
	cv := channel.NewVerifier(f.Verifier(b), time.Hour)
	b.Run("attested-stapled", func(b *testing.B) {
		for b.Loop() {
			c, err := channel.New(cv, r.URL)
			if err != nil {
				b.Fatal(err)
			}
			get(b, c.HTTPClient(), url)
			c.CloseIdleConnections()
		}
	})
	v := f.Verifier(b)
	b.Run("attested-cold", func(b *testing.B) {
		for b.Loop() {
			c, err := channel.New(channel.NewVerifier(v, 0), r.URL)
			if err != nil {
				b.Fatal(err)
			}
			get(b, c.HTTPClient(), url)
			c.CloseIdleConnections()
		}
	})
}

// BenchmarkWarmRequest: a request on a kept-alive connection, plain TLS
// against the attested channel (pinned, verdict current).
func BenchmarkWarmRequest(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	url := r.URL + "/v1/models"
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	hc, _, err := channel.HTTPClient(b.Context(), f.Verifier(b), r.URL)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    *http.Client
	}{{"plain-tls", plain}, {"attested", hc}} {
		b.Run(c.name, func(b *testing.B) {
			get(b, c.c, url) // connect outside the timing
			for b.Loop() {
				get(b, c.c, url)
			}
		})
	}
}

// eventSource streams n server-sent events of size bytes each, as fast
// as it can.
func eventSource(n, size int) http.Handler {
	ev := "data: " + strings.Repeat("x", size-8) + "\n\n"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for range n {
			io.WriteString(w, ev)
			fl.Flush()
		}
	})
}

// BenchmarkStream: a stream of server-sent events (4,096 of 256 bytes,
// each flushed as written: a model's tokens), read directly from the
// service on loopback, and through the agent and `attestlog proxy` (two
// more hops, TLS between them); and the same for 64 KiB events (bulk
// bytes). b.SetBytes gives MB/s.
func BenchmarkStream(b *testing.B) {
	for _, sz := range []struct {
		name    string
		n, size int
	}{{"events-256B", 4096, 256}, {"bulk-64KiB", 256, 64 << 10}} {
		f, u, r := benchAgent(b, eventSource(sz.n, sz.size))
		c, err := channel.New(channel.NewVerifier(f.Verifier(b), 0), r.URL)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: proxy.New(c, nil).Handler()}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		for _, path := range []struct{ name, url string }{
			{"direct", u.URL.String() + "/stream"},
			{"agent+proxy", "http://" + ln.Addr().String() + "/stream"},
		} {
			b.Run(fmt.Sprintf("%s/%s", sz.name, path.name), func(b *testing.B) {
				b.SetBytes(int64(sz.n * sz.size))
				for b.Loop() {
					get(b, http.DefaultClient, path.url)
				}
			})
		}
	}
}

// BenchmarkReportsPerClient: hardware reports an agent asks for per new
// client (each verifies the attestation document and sends a request).
func BenchmarkReportsPerClient(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	cv := channel.NewVerifier(f.Verifier(b), time.Hour)
	start := r.Agent.Reports()
	n := 0
	for b.Loop() {
		c, _ := channel.New(cv, r.URL)
		get(b, c.HTTPClient(), r.URL+"/v1/models")
		c.CloseIdleConnections()
		n++
	}
	b.ReportMetric(float64(r.Agent.Reports()-start)/float64(n), "reports/client")
}

// BenchmarkOblivious: one chat completion, warm (verdict at hand),
// over the attested TLS channel straight to the agent, as plain HTTP
// through a reverse proxy to the agent's TLS (the relay path without
// OHTTP: the baseline of the relay figures), and through a relay with
// OHTTP, X25519 and the post-quantum hybrid, interleaved in one run;
// ratios against the baselines.
func BenchmarkOblivious(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	relayURL := benchRelay(b, r.URL)
	plainURL := benchPlainRelay(b, r.URL)
	body := chatBody(false)
	tlsClient, _, err := channel.HTTPClient(b.Context(), f.Verifier(b), r.URL)
	if err != nil {
		b.Fatal(err)
	}
	cv := channel.NewVerifier(f.Verifier(b), time.Hour)
	x, _ := channel.NewOblivious(cv, relayURL, channel.WithKEM(keyset.KEMX25519))
	h, _ := channel.NewOblivious(cv, relayURL)
	clients := []*http.Client{tlsClient, x.HTTPClient(), h.HTTPClient(), {Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	base := []string{r.URL, "https://enclave", "https://enclave", plainURL}
	var took [4]time.Duration
	n := 0
	for b.Loop() {
		for i, c := range clients {
			start := time.Now()
			code, out, err := post(c, base[i], body)
			if err != nil || code != 200 || !strings.Contains(out, "hello enclave") {
				b.Fatalf("client %d: %d %q %v", i, code, out, err)
			}
			took[i] += time.Since(start)
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(per(took[0]), "tls-µs/req")
	b.ReportMetric(per(took[1]), "ohttp-x25519-µs/req")
	b.ReportMetric(per(took[2]), "ohttp-hybrid-µs/req")
	b.ReportMetric(float64(took[1])/float64(took[0]), "x25519/tls")
	b.ReportMetric(float64(took[2])/float64(took[0]), "hybrid/tls")
	b.ReportMetric(float64(took[2])/float64(took[1]), "hybrid/x25519")
	b.ReportMetric(per(took[3]), "relay-plain-µs/req")
	b.ReportMetric(float64(took[1])/float64(took[3]), "x25519/relay-plain")
	b.ReportMetric(float64(took[2])/float64(took[3]), "hybrid/relay-plain")
}

// benchPlainRelay is a reverse proxy on loopback to the agent's TLS: the
// relay's network path, carrying plain HTTP (no verification, no OHTTP).
func benchPlainRelay(b *testing.B, target string) string {
	tu, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(tu)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func benchRelay(b *testing.B, target string) string {
	g, err := relay.ParseGateway("demo=" + target)
	if err != nil {
		b.Fatal(err)
	}
	rl, err := relay.New(relay.Options{Gateways: []relay.Gateway{g}, Rate: 1e6, Burst: 1e6,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rl.Handler()}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/g/demo"
}
