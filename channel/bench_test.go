package channel_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
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
// many users: connect, document in the handshake, pin), and a cold
// client that verifies everything itself (hardware chain, GPU, proofs).
// Each iteration runs the three in turn; it reports each one's time and
// the ratios to plain TLS (goal for the first: at most 1.3).
func BenchmarkNewClient(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	url := r.URL + "/v1/models"
	cv := channel.NewVerifier(f.Verifier(b), time.Hour)
	v := f.Verifier(b)
	var tp, ts, tc time.Duration
	for b.Loop() {
		t0 := time.Now()
		pc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		get(b, pc, url)
		pc.CloseIdleConnections()
		t1 := time.Now()
		c, err := channel.New(cv, r.URL)
		if err != nil {
			b.Fatal(err)
		}
		get(b, c.HTTPClient(), url)
		c.CloseIdleConnections()
		t2 := time.Now()
		c, _ = channel.New(channel.NewVerifier(v, 0), r.URL)
		get(b, c.HTTPClient(), url)
		c.CloseIdleConnections()
		tp, ts, tc = tp+t1.Sub(t0), ts+t2.Sub(t1), tc+time.Since(t2)
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(b.N) }
	b.ReportMetric(ms(tp), "plain-ms")
	b.ReportMetric(ms(ts), "attested-ms")
	b.ReportMetric(ms(tc), "cold-ms")
	b.ReportMetric(ts.Seconds()/tp.Seconds(), "ratio")
	b.ReportMetric(tc.Seconds()/tp.Seconds(), "cold-ratio")
}

// BenchmarkWarmRequest: a request on a kept-alive connection, plain TLS
// (the baseline) and the attested channel (pinned, verdict current), in
// turn each iteration (each first half of the time); it reports both
// and their ratio (goal: at most 1.05).
func BenchmarkWarmRequest(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	url := r.URL + "/v1/models"
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	hc, _, err := channel.HTTPClient(b.Context(), f.Verifier(b), r.URL)
	if err != nil {
		b.Fatal(err)
	}
	get(b, plain, url) // connect outside the timing
	get(b, hc, url)
	var tp, ta time.Duration
	timed := func(c *http.Client) time.Duration {
		t0 := time.Now()
		get(b, c, url)
		return time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // each goes first half of the time
			tp += timed(plain)
			ta += timed(hc)
		} else {
			ta += timed(hc)
			tp += timed(plain)
		}
	}
	b.ReportMetric(tp.Seconds()*1e6/float64(b.N), "plain-µs")
	b.ReportMetric(ta.Seconds()*1e6/float64(b.N), "attested-µs")
	b.ReportMetric(ta.Seconds()/tp.Seconds(), "ratio")
}

// eventSource streams n server-sent events of size bytes each, each
// flushed as written, as fast as it can or, when rate > 0, at rate
// bytes a second.
func eventSource(n, size int, rate float64) http.Handler {
	ev := []byte("data: " + strings.Repeat("x", size-8) + "\n\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		t0 := time.Now()
		for i := range n {
			if rate > 0 {
				time.Sleep(time.Until(t0.Add(time.Duration(float64(i*size) / rate * float64(time.Second)))))
			}
			w.Write(ev)
			fl.Flush()
		}
	})
}

// BenchmarkStream: a stream of server-sent events, each flushed as
// written, read directly from the service on loopback (the baseline)
// and through the agent and `attestlog proxy` (two more hops, TLS
// between them): 4,096 events of 256 bytes (a model's tokens, as fast
// as the service can write them), 256 of 64 KiB (bulk bytes as fast as
// the machine moves them: CPU-bound on loopback, where the two hops'
// TLS and copies are the whole cost), and bulk bytes paced as a network
// link delivers them: 256 of 64 KiB at 50 MB/s, 512 at 125 MB/s
// (1 Gbit/s) and at 250 MB/s (2 Gbit/s). Each iteration reads the stream both ways, one after
// the other, so both see the same load on the machine; it reports each
// throughput and their ratio (goal: at least 0.95).
func BenchmarkStream(b *testing.B) {
	for _, sz := range []struct {
		name    string
		n, size int
		rate    float64
	}{{"events-256B", 4096, 256, 0}, {"bulk-64KiB", 256, 64 << 10, 0}, {"bulk-64KiB-50MBps", 256, 64 << 10, 50e6}, {"bulk-64KiB-1Gbps", 512, 64 << 10, 125e6}, {"bulk-64KiB-2Gbps", 512, 64 << 10, 250e6}} {
		b.Run(sz.name, func(b *testing.B) {
			f, u, r := benchAgent(b, eventSource(sz.n, sz.size, sz.rate))
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
			direct, through := u.URL.String()+"/stream", "http://"+ln.Addr().String()+"/stream"
			get(b, http.DefaultClient, direct) // connections made outside the timing
			get(b, http.DefaultClient, through)
			var td, tt time.Duration
			for b.Loop() {
				t0 := time.Now()
				get(b, http.DefaultClient, direct)
				t1 := time.Now()
				get(b, http.DefaultClient, through)
				td, tt = td+t1.Sub(t0), tt+time.Since(t1)
			}
			mb := float64(b.N*sz.n*sz.size) / 1e6
			b.ReportMetric(mb/td.Seconds(), "direct-MB/s")
			b.ReportMetric(mb/tt.Seconds(), "channel-MB/s")
			b.ReportMetric(td.Seconds()/tt.Seconds(), "ratio")
		})
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
// over the attested TLS channel straight to the agent, as a plain HTTPS
// request through a reverse proxy to the agent's TLS (the relay path
// without OHTTP: the baseline of the relay figures), and through a relay
// with OHTTP, X25519 and the post-quantum hybrid, interleaved in one
// run; ratios against the baselines. The client reaches the relay (and
// the baseline's proxy) over HTTPS on a kept-alive connection, as it
// does when deployed (a relay on the Internet is behind TLS).
func BenchmarkOblivious(b *testing.B) {
	f, _, r := benchAgent(b, nil)
	relayURL, relayTLS := benchRelay(b, r.URL)
	plainURL, plainTLS := benchPlainRelay(b, r.URL)
	body := chatBody(false)
	tlsClient, _, err := channel.HTTPClient(b.Context(), f.Verifier(b), r.URL)
	if err != nil {
		b.Fatal(err)
	}
	cv := channel.NewVerifier(f.Verifier(b), time.Hour)
	x, _ := channel.NewOblivious(cv, relayURL, channel.WithKEM(keyset.KEMX25519), channel.WithRelayClient(relayTLS()))
	h, _ := channel.NewOblivious(cv, relayURL, channel.WithRelayClient(relayTLS()))
	clients := []*http.Client{tlsClient, x.HTTPClient(), h.HTTPClient(), plainTLS()}
	base := []string{r.URL, "https://enclave", "https://enclave", plainURL}
	for i, c := range clients { // connect and verify outside the timing
		if code, out, err := post(c, base[i], body); err != nil || code != 200 {
			b.Fatalf("client %d: %d %q %v", i, code, out, err)
		}
	}
	var took, cpu [4]time.Duration
	n := 0
	for b.Loop() {
		for j := range clients {
			i := (j + n) % len(clients) // each goes first in turn
			c0, start := cpuTime(), time.Now()
			code, out, err := post(clients[i], base[i], body)
			if err != nil || code != 200 || !strings.Contains(out, "hello enclave") {
				b.Fatalf("client %d: %d %q %v", i, code, out, err)
			}
			took[i] += time.Since(start)
			cpu[i] += cpuTime() - c0
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
	b.ReportMetric(per(took[2]-took[1]), "hybrid-extra-µs/req")
	b.ReportMetric(per(took[3]), "relay-https-µs/req")
	b.ReportMetric(float64(took[1])/float64(took[3]), "x25519/relay-https")
	b.ReportMetric(float64(took[2])/float64(took[3]), "hybrid/relay-https")
	// The CPU time of the whole path (client, relay, agent and service
	// are all in this process, and one request runs at a time): what a
	// request costs, less moved by other load on the machine than the
	// time it takes.
	if cpu[3] > 0 {
		b.ReportMetric(per(cpu[3]), "relay-https-cpu-µs/req")
		b.ReportMetric(per(cpu[1]), "ohttp-x25519-cpu-µs/req")
		b.ReportMetric(per(cpu[2]), "ohttp-hybrid-cpu-µs/req")
		b.ReportMetric(float64(cpu[1])/float64(cpu[3]), "x25519/relay-https-cpu")
		b.ReportMetric(float64(cpu[2])/float64(cpu[3]), "hybrid/relay-https-cpu")
	}
}

// serveRelayTLS serves h on a loopback TLS listener with a test
// certificate (HTTP/1.1, as a relay behind a TLS terminator is reached)
// and returns its origin and a maker of clients that trust it and keep
// their connection alive.
func serveRelayTLS(b *testing.B, h http.Handler) (string, func() *http.Client) {
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS()
	b.Cleanup(srv.Close)
	return srv.URL, func() *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		return &http.Client{Transport: tr, Timeout: time.Minute}
	}
}

// benchPlainRelay is a reverse proxy on loopback to the agent's TLS: the
// relay's network path, carrying plain HTTPS (no verification, no
// OHTTP). Its copy buffers are pooled, as the relay's are.
func benchPlainRelay(b *testing.B, target string) (string, func() *http.Client) {
	tu, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(tu)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	rp.BufferPool = &bufferPool{}
	return serveRelayTLS(b, rp)
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// benchRelay is an attestlog relay on loopback, behind TLS, for the
// agent at target.
func benchRelay(b *testing.B, target string) (string, func() *http.Client) {
	g, err := relay.ParseGateway("demo=" + target)
	if err != nil {
		b.Fatal(err)
	}
	rl, err := relay.New(relay.Options{Gateways: []relay.Gateway{g}, Rate: 1e6, Burst: 1e6,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}})
	if err != nil {
		b.Fatal(err)
	}
	u, clients := serveRelayTLS(b, rl.Handler())
	return u + "/g/demo", clients
}
