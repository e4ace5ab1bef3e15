package relay

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/internal/httpfuzz"
)

// gatewaySeen is a gateway stand-in on loopback that records what
// reaches it (the relay's output is what these tests are about; the real
// agent behind a relay is tested in package channel).
type gatewaySeen struct {
	mu      sync.Mutex
	headers []http.Header
	paths   []string
	bodies  [][]byte
}

func startGateway(t testing.TB, answer func(w http.ResponseWriter, r *http.Request)) (string, *gatewaySeen) {
	t.Helper()
	seen := &gatewaySeen{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.mu.Lock()
		seen.headers = append(seen.headers, r.Header.Clone())
		seen.paths = append(seen.paths, r.Method+" "+r.URL.Path)
		seen.bodies = append(seen.bodies, b)
		seen.mu.Unlock()
		answer(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), seen
}

func startRelay(t *testing.T, o Options) (string, *Relay) {
	t.Helper()
	rl, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rl.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), rl
}

func sealedAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", ohttp.ContentTypeResponse)
	w.Header().Set("Set-Cookie", "gateway=tracks-you")
	w.Header().Set("X-Gateway-Secret", "internal")
	w.Write([]byte("sealed answer"))
}

func TestParseGateway(t *testing.T) {
	for in, want := range map[string]string{
		"demo=https://10.0.0.1:8443": "demo https://10.0.0.1:8443",
		"https://enclave.example":    "enclave.example https://enclave.example",
		"https://127.0.0.1:8443/":    "127.0.0.1_8443 https://127.0.0.1:8443",
	} {
		g, err := ParseGateway(in)
		if err != nil || g.Name+" "+g.URL.String() != want {
			t.Errorf("ParseGateway(%q) = %s %v, %v; want %s", in, g.Name, g.URL, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "https://", "a b=https://x", "x=https://u:p@host", "x=https://host/path", "x=https://host?q=1", "=https://x/y"} {
		if g, err := ParseGateway(bad); err == nil {
			t.Errorf("ParseGateway(%q) = %+v, want an error", bad, g)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("a relay without gateways started")
	}
}

// TestNothingOfTheClient: what the gateway receives is the sealed body
// and the media type, nothing the client sent besides; what the client
// receives is the gateway's status, media type and body, nothing else of
// the gateway's.
func TestNothingOfTheClient(t *testing.T) {
	gw, seen := startGateway(t, sealedAnswer)
	g, _ := ParseGateway("demo=" + gw)
	base, rl := startRelay(t, Options{Gateways: []Gateway{g}})
	for _, ct := range []string{ohttp.ContentTypeRequest, ohttp.ContentTypeChunkedRequest} {
		req, _ := http.NewRequest(http.MethodPost, base+"/g/demo", strings.NewReader("sealed request"))
		for k, v := range map[string]string{
			"Content-Type": ct, "X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7", "X-Real-Ip": "203.0.113.7",
			"Cookie": "session=alice", "User-Agent": "alice-browser/1.0", "Authorization": "Bearer alice", "Accept-Language": "fr-CH",
		} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "sealed answer" || resp.Header.Get("Content-Type") != ohttp.ContentTypeResponse {
			t.Fatalf("relay answered %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("X-Gateway-Secret") != "" {
			t.Errorf("the relay passed the gateway's headers on: %v", resp.Header)
		}
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.headers) != 2 {
		t.Fatalf("the gateway got %d requests, want 2", len(seen.headers))
	}
	for i, h := range seen.headers {
		if seen.paths[i] != "POST "+GatewayPath || string(seen.bodies[i]) != "sealed request" {
			t.Errorf("the gateway got %s %q", seen.paths[i], seen.bodies[i])
		}
		for k, v := range h {
			switch k {
			case "Content-Type", "Content-Length", "Incremental":
			default:
				t.Errorf("the gateway got header %s: %q", k, v)
			}
		}
		for _, v := range h {
			if strings.Contains(strings.Join(v, " "), "alice") || strings.Contains(strings.Join(v, " "), "203.0.113.7") {
				t.Errorf("something of the client reached the gateway: %v", h)
			}
		}
	}
	if got := counter(t, rl.metrics.requests.WithLabelValues("demo", "request", "ok")); got != 2 {
		t.Errorf("attestlog_relay_requests_total{demo,request,ok} = %v, want 2", got)
	}
}

func TestRefusals(t *testing.T) {
	gw, seen := startGateway(t, sealedAnswer)
	g, _ := ParseGateway("demo=" + gw)
	base, rl := startRelay(t, Options{Gateways: []Gateway{g}, MaxRequest: 100, Rate: 1000, Burst: 1000})
	post := func(path, ct string, body []byte) int {
		resp, err := http.Post(base+path, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path, ct string
		body           []byte
		want           int
	}{
		{"an unknown gateway", "/g/other", ohttp.ContentTypeRequest, []byte("x"), 404},
		{"a path off the gateway", "/g/demo/../../admin", ohttp.ContentTypeRequest, []byte("x"), 404},
		{"plain JSON", "/g/demo", "application/json", []byte("{}"), 415},
		{"too large", "/g/demo", ohttp.ContentTypeRequest, make([]byte, 101), 413},
	} {
		if got := post(tc.path, tc.ct, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// A chunked upload without a length, too large: refused too.
	pr, pw := io.Pipe()
	go func() { pw.Write(make([]byte, 200)); pw.Close() }()
	req, _ := http.NewRequest(http.MethodPost, base+"/g/demo", pr)
	req.Header.Set("Content-Type", ohttp.ContentTypeRequest)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("a streamed 200-byte request: %v %v, want 413", resp, err)
	}
	seen.mu.Lock()
	if len(seen.paths) != 0 {
		t.Errorf("the gateway got %v", seen.paths)
	}
	seen.mu.Unlock()
	if got := counter(t, rl.metrics.requests.WithLabelValues("demo", "request", "too_large")); got != 2 {
		t.Errorf("too_large = %v, want 2", got)
	}
}

// TestGatewayProblem: a gateway's refusal that is an RFC 9457 problem
// (RFC 9458 §5.3's ohttp-key) reaches the client as one, status and media
// type; a refusal of any other media type reaches it as text/plain.
func TestGatewayProblem(t *testing.T) {
	const problem = `{"type":"https://iana.org/assignments/http-problem-types#ohttp-key","title":"key identifier unknown"}`
	for _, tc := range []struct{ ct, want string }{
		{ohttp.ContentTypeProblem, ohttp.ContentTypeProblem},
		{"text/html", "text/plain; charset=utf-8"},
	} {
		gw, _ := startGateway(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.ct)
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(problem))
		})
		g, _ := ParseGateway("demo=" + gw)
		base, _ := startRelay(t, Options{Gateways: []Gateway{g}, Rate: 1000, Burst: 1000})
		resp, err := http.Post(base+"/g/demo", ohttp.ContentTypeRequest, bytes.NewReader([]byte("sealed")))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != tc.want || string(b) != problem {
			t.Errorf("a gateway's 400 of %s: the client got %d %q %q, want 400 %q", tc.ct, resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	gw, _ := startGateway(t, sealedAnswer)
	g, _ := ParseGateway("demo=" + gw)
	base, _ := startRelay(t, Options{Gateways: []Gateway{g}, Rate: 0.5, Burst: 2})
	var codes []int
	for range 3 {
		resp, err := http.Post(base+"/g/demo", ohttp.ContentTypeRequest, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("three requests at once, burst 2: %v, want [200 200 429]", codes)
	}
	// Sources are counted apart (an IPv6 /64 as one).
	l := newSourceLimiter(1, 1)
	now := time.Now()
	l.now = func() time.Time { return now }
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{"192.0.2.1:1", true}, {"192.0.2.1:2", false}, {"192.0.2.2:1", true}, {"[2001:db8::1]:1", true}, {"[2001:db8::2]:1", false}, {"[2001:db9::1]:1", true}} {
		if ok, _ := l.take(tc.addr); ok != tc.ok {
			t.Errorf("take(%s) = %v, want %v", tc.addr, ok, tc.ok)
		}
	}
	now = now.Add(time.Second)
	if ok, _ := l.take("192.0.2.1:3"); !ok {
		t.Error("a token did not come back after a second at rate 1")
	}
}

// TestStreams: a chunked answer reaches the client as the gateway sends
// it, not when it ends.
func TestStreams(t *testing.T) {
	next := make(chan struct{})
	gw, _ := startGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ohttp.ContentTypeChunkedResponse)
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("second"))
	})
	g, _ := ParseGateway("demo=" + gw)
	base, _ := startRelay(t, Options{Gateways: []Gateway{g}})
	resp, err := http.Post(base+"/g/demo", ohttp.ContentTypeChunkedRequest, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first chunk = %q, %v (buffered by the relay?)", buf, err)
	}
	close(next)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Errorf("rest = %q", rest)
	}
}

// TestResponseBound: an answer past MaxResponse is cut (the client's
// chunked OHTTP reader then reports it truncated).
func TestResponseBound(t *testing.T) {
	gw, _ := startGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ohttp.ContentTypeChunkedResponse)
		for range 10 {
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
		}
	})
	g, _ := ParseGateway("demo=" + gw)
	base, _ := startRelay(t, Options{Gateways: []Gateway{g}, MaxResponse: 4000})
	resp, err := http.Post(base+"/g/demo", ohttp.ContentTypeChunkedRequest, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) > 4000 {
		t.Errorf("the relay passed %d bytes, the bound is 4000", len(b))
	}
}

func FuzzHandler(f *testing.F) {
	f.Add(byte(1), "/g/demo", []byte("x"))
	f.Add(byte(0), "/g/demo/keys", []byte{})
	f.Add(byte(0), "/g/demo/document", []byte{})
	f.Add(byte(5), "/g/demo", []byte{})
	gw, _ := startGateway(f, sealedAnswer)
	g, _ := ParseGateway("demo=" + gw)
	rl, err := New(Options{Gateways: []Gateway{g}, Rate: 1e9, Burst: 1 << 30, MaxRequest: 1 << 12})
	if err != nil {
		f.Fatal(err)
	}
	h := rl.Handler()
	f.Fuzz(func(t *testing.T, method byte, target string, body []byte) {
		if len(body) > 1<<13 {
			return
		}
		httpfuzz.Serve(t, h, method, target, body)
	})
}

// counter reads a counter's value by gathering a registry holding it.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathering the counter: %v", err)
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}
