// Package relay is an Oblivious HTTP relay ([RFC 9458] §2, "Oblivious
// Relay Resource"): the service a third party runs (`attestlog relay`)
// between clients and enclave gateways, so that the gateway's operator
// never learns which client sent what, and the relay never learns what
// was sent.
//
// It forwards encapsulated requests (message/ohttp-req,
// message/ohttp-chunked-req) to the gateways it is configured with, and
// nowhere else, and streams their encapsulated answers back. It adds
// nothing that identifies the client and strips everything that could:
// the request it sends carries only the media type, the length and the
// Incremental signal — no client address, no X-Forwarded-For or
// Forwarded, no cookies, no user agent, no header of the client's. It
// keeps no bodies (they pass through, bounded, and are not logged), and
// its log lines name the gateway and the status, never the client.
//
// So that a client can use the enclave through the relay alone, it also
// forwards the two public, client-independent documents a client needs
// before its first request: the enclave's attestation document and its
// key configurations (both verified by the client: the relay cannot
// forge them, only withhold or replay them, and a replayed document's
// key set expires).
//
// Rates are bounded per source address (kept in memory only, as a keyed
// hash, and forgotten), sizes are bounded both ways, and Prometheus
// metrics count requests by gateway and result.
//
// [RFC 9458]: https://www.rfc-editor.org/rfc/rfc9458.html
package relay

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/policy/evidence"
)

// Paths on the relay, under /g/{name} for the gateway named name.
const (
	// PathPrefix precedes a gateway's name: POST /g/{name} forwards an
	// encapsulated request.
	PathPrefix = "/g/"
	// KeysSuffix: GET /g/{name}/keys forwards the gateway's key
	// configurations.
	KeysSuffix = "/keys"
	// DocumentSuffix: GET /g/{name}/document forwards the enclave's
	// attestation document.
	DocumentSuffix = "/document"
	// GatewayPath is where an attestlog enclave is a gateway.
	GatewayPath = "/.well-known/ohttp-gateway"
)

// Defaults.
const (
	DefaultMaxRequest  = 1 << 20
	DefaultMaxResponse = 64 << 20
	DefaultRate        = 10 // requests per second per source
	DefaultBurst       = 20
	DefaultTimeout     = 10 * time.Minute // of one forwarded request, streaming included
)

// Gateway is a gateway the relay forwards to.
type Gateway struct {
	// Name is its path segment on the relay (letters, digits, '.', '-',
	// '_').
	Name string
	// URL is the enclave agent's origin (https://host:port): requests
	// go to its GatewayPath, documents to its attestation path.
	URL *url.URL
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseGateway reads NAME=URL, or URL alone (named by its host:port).
func ParseGateway(s string) (Gateway, error) {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || strings.Contains(name, "/") {
		name, raw = "", s
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return Gateway{}, fmt.Errorf("gateway %q: want [NAME=]https://host[:port] (the enclave agent's origin)", s)
	}
	u.Path = ""
	if name == "" {
		name = strings.ReplaceAll(u.Host, ":", "_")
	}
	if !nameRE.MatchString(name) {
		return Gateway{}, fmt.Errorf("gateway name %q: letters, digits, '.', '-' and '_' only", name)
	}
	return Gateway{Name: name, URL: u}, nil
}

// Options configure a Relay.
type Options struct {
	Gateways []Gateway
	// MaxRequest bounds an encapsulated request (default
	// DefaultMaxRequest); MaxResponse an answer, streamed or not
	// (default DefaultMaxResponse).
	MaxRequest, MaxResponse int64
	// Rate and Burst bound requests per source address (defaults
	// DefaultRate, DefaultBurst).
	Rate  float64
	Burst int
	// Transport reaches the gateways (default: a transport that
	// verifies the gateways' certificates against the system roots).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Relay is an Oblivious HTTP relay. Safe for concurrent use.
type Relay struct {
	o        Options
	gateways map[string]Gateway
	client   *http.Client
	limiter  *sourceLimiter
	logger   *slog.Logger
	metrics  *metrics
}

// New checks o and returns a relay.
func New(o Options) (*Relay, error) {
	if len(o.Gateways) == 0 {
		return nil, errors.New("relay: no gateway configured (a relay forwards to the gateways it names, nowhere else)")
	}
	if o.MaxRequest == 0 {
		o.MaxRequest = DefaultMaxRequest
	}
	if o.MaxResponse == 0 {
		o.MaxResponse = DefaultMaxResponse
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.MaxRequest < 0 || o.MaxResponse < 0 || o.Rate < 0 || math.IsNaN(o.Rate) || o.Burst < 1 {
		return nil, fmt.Errorf("relay: limits must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
			ForceAttemptHTTP2: true, Proxy: nil,
		}
	}
	r := &Relay{o: o, gateways: map[string]Gateway{}, logger: o.Logger, metrics: newMetrics(), limiter: newSourceLimiter(o.Rate, o.Burst)}
	for _, g := range o.Gateways {
		if _, dup := r.gateways[g.Name]; dup {
			return nil, fmt.Errorf("relay: gateway name %q twice", g.Name)
		}
		r.gateways[g.Name] = g
	}
	r.client = &http.Client{Transport: o.Transport, Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r, nil
}

// Handler serves the relay.
func (rl *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathPrefix+"{name}", rl.serveRequest)
	mux.HandleFunc("GET "+PathPrefix+"{name}"+KeysSuffix, rl.serveGet(GatewayPath, ohttp.ContentTypeKeys))
	mux.HandleFunc("GET "+PathPrefix+"{name}"+DocumentSuffix, rl.serveGet(evidence.DocumentPath, evidence.ContentType))
	mux.HandleFunc("OPTIONS "+PathPrefix+"{name}", rl.preflight)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "attestlog OHTTP relay: POST message/ohttp-req to %s{gateway}; gateways:", PathPrefix)
		for name := range rl.gateways {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintln(w)
	})
	return mux
}

// cors lets a web page (the explorer's verify page) use the relay.
func cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Incremental")
	h.Set("Access-Control-Expose-Headers", "Content-Type")
}

func (rl *Relay) preflight(w http.ResponseWriter, r *http.Request) {
	cors(w)
	w.WriteHeader(http.StatusNoContent)
}

// admit finds the gateway and charges the source's rate.
func (rl *Relay) admit(w http.ResponseWriter, r *http.Request, kind string) (Gateway, bool) {
	cors(w)
	g, ok := rl.gateways[r.PathValue("name")]
	if !ok {
		rl.metrics.requests.WithLabelValues("", kind, "unknown_gateway").Inc()
		http.Error(w, "this relay forwards to no gateway of that name", http.StatusNotFound)
		return Gateway{}, false
	}
	if ok, wait := rl.limiter.take(r.RemoteAddr); !ok {
		rl.metrics.requests.WithLabelValues(g.Name, kind, "rate_limited").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		http.Error(w, "too many requests from your address; retry later", http.StatusTooManyRequests)
		return Gateway{}, false
	}
	return g, true
}

func (rl *Relay) serveRequest(w http.ResponseWriter, r *http.Request) {
	g, ok := rl.admit(w, r, "request")
	if !ok {
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != ohttp.ContentTypeRequest && ct != ohttp.ContentTypeChunkedRequest {
		rl.metrics.requests.WithLabelValues(g.Name, "request", "bad_type").Inc()
		http.Error(w, "a relay forwards "+ohttp.ContentTypeRequest+" and "+ohttp.ContentTypeChunkedRequest+" only", http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > rl.o.MaxRequest {
		rl.metrics.requests.WithLabelValues(g.Name, "request", "too_large").Inc()
		http.Error(w, fmt.Sprintf("an encapsulated request of at most %d bytes", rl.o.MaxRequest), http.StatusRequestEntityTooLarge)
		return
	}
	// The request is read whole (bounded) before it is forwarded: a
	// request cut short by the client never reaches the gateway, and
	// the gateway never sees the client's pacing.
	var in bytes.Buffer
	if r.ContentLength > 0 {
		// Read in one go, not grown in steps; but a client's stated length
		// reserves no more than a chunk before its bytes arrive.
		in.Grow(int(min(r.ContentLength, 64<<10)) + bytes.MinRead)
	}
	_, err := in.ReadFrom(http.MaxBytesReader(w, r.Body, rl.o.MaxRequest))
	body := in.Bytes()
	if err != nil {
		rl.metrics.requests.WithLabelValues(g.Name, "request", "too_large").Inc()
		http.Error(w, fmt.Sprintf("an encapsulated request of at most %d bytes", rl.o.MaxRequest), http.StatusRequestEntityTooLarge)
		return
	}
	rl.metrics.bytes.WithLabelValues("in").Add(float64(len(body)))
	u := *g.URL
	u.Path = GatewayPath
	defer clear(body) // kept no longer than it takes to send
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "relay error", http.StatusInternalServerError)
		return
	}
	// A fresh header: nothing of the client's travels.
	out.Header = http.Header{"Content-Type": {ct}, "User-Agent": {""}}
	if ct == ohttp.ContentTypeChunkedRequest {
		out.Header.Set("Incremental", "?1")
	}
	// A gateway's refusal may be an RFC 9457 problem (RFC 9458 §5.3:
	// the ohttp-key type tells the client to fetch the key
	// configurations again); it keeps its media type so that a client
	// can read it as one. Any other media type of the gateway's becomes
	// text/plain.
	rl.forward(w, out, g, "request", []string{ohttp.ContentTypeResponse, ohttp.ContentTypeChunkedResponse, ohttp.ContentTypeProblem})
}

func (rl *Relay) serveGet(path, want string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind := strings.TrimPrefix(path, "/.well-known/")
		g, ok := rl.admit(w, r, kind)
		if !ok {
			return
		}
		u := *g.URL
		u.Path = path
		out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
		if err != nil {
			http.Error(w, "relay error", http.StatusInternalServerError)
			return
		}
		out.Header = http.Header{"Accept": {want}, "User-Agent": {""}}
		rl.forward(w, out, g, kind, []string{want})
	}
}

// forward sends out and streams the gateway's answer back, with only its
// status, media type (when one of want) and caching headers.
func (rl *Relay) forward(w http.ResponseWriter, out *http.Request, g Gateway, kind string, want []string) {
	resp, err := rl.client.Do(out)
	if err != nil {
		if out.Context().Err() == nil {
			rl.logger.Warn("gateway unreachable", "gateway", g.Name, "err", err)
		}
		rl.metrics.requests.WithLabelValues(g.Name, kind, "gateway_error").Inc()
		http.Error(w, "the gateway did not answer", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength > rl.o.MaxResponse {
		rl.metrics.requests.WithLabelValues(g.Name, kind, "response_too_large").Inc()
		http.Error(w, "the gateway's answer is too large", http.StatusBadGateway)
		return
	}
	ct := resp.Header.Get("Content-Type")
	h := w.Header()
	known := false
	for _, x := range want {
		known = known || ct == x
	}
	if known {
		h.Set("Content-Type", ct)
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8") // an error text of the gateway's
	}
	for _, k := range []string{"Cache-Control", "Incremental", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	bp := copyBuffers.Get().(*[]byte)
	buf := *bp
	var n int64
	result := "ok"
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 {
			n += int64(m)
			if n > rl.o.MaxResponse {
				result = "response_too_large"
				break // the client sees a cut answer, which it detects
			}
			if _, werr := w.Write(buf[:m]); werr != nil {
				result = "client_gone"
				break
			}
			// What was read leaves at once (a stream's chunks are
			// not held back), unless it is the end of an answer of
			// known length: the server sends that as the handler
			// returns, in the same write as the rest.
			if resp.ContentLength < 0 || n < resp.ContentLength {
				rc.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			result = "gateway_broke"
			break
		}
	}
	clear(buf)
	copyBuffers.Put(bp)
	rl.metrics.bytes.WithLabelValues("out").Add(float64(n))
	if result == "ok" && resp.StatusCode != http.StatusOK {
		result = "status_" + strconv.Itoa(resp.StatusCode)
	}
	rl.metrics.requests.WithLabelValues(g.Name, kind, result).Inc()
	rl.logger.Debug("relayed", "gateway", g.Name, "kind", kind, "status", resp.StatusCode, "result", result)
}

// copyBuffers are forward's read buffers, cleared before they are put
// back (nothing of an answer outlives its forwarding).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// sourceLimiter is a token bucket per source address. Addresses are
// kept as a keyed hash (the key is made at start and never leaves the
// process) and forgotten once their bucket is full again.
type sourceLimiter struct {
	rate  float64
	burst int
	key   [32]byte
	macs  sync.Pool // of HMAC-SHA256 under key, reused
	now   func() time.Time

	mu      sync.Mutex
	buckets map[[16]byte]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimiter(rate float64, burst int) *sourceLimiter {
	l := &sourceLimiter{rate: rate, burst: burst, now: time.Now, buckets: map[[16]byte]*bucket{}}
	rand.Read(l.key[:])
	return l
}

func (l *sourceLimiter) take(remoteAddr string) (bool, time.Duration) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = ip.Mask(net.CIDRMask(64, 128)).String() // one IPv6 /64 is one source
	}
	m, _ := l.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, l.key[:])
	}
	m.Reset()
	m.Write([]byte(host))
	var sum [sha256.Size]byte
	var k [16]byte
	copy(k[:], m.Sum(sum[:0]))
	l.macs.Put(m)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 100000 {
		for kk, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= float64(l.burst) {
				delete(l.buckets, kk)
			}
		}
	}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: float64(l.burst), last: now}
		l.buckets[k] = b
	}
	b.tokens = min(float64(l.burst), b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate == 0 {
		return false, time.Minute
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

type metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attestlog_relay_requests_total", Help: "Requests relayed, by gateway, kind (request, ohttp-gateway keys, attestlog document) and result."},
			[]string{"gateway", "kind", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attestlog_relay_bytes_total", Help: "Bytes relayed: in (encapsulated requests) and out (answers)."},
			[]string{"direction"}),
	}
}

// Collectors returns the relay's metrics.
func (rl *Relay) Collectors() []prometheus.Collector {
	return []prometheus.Collector{rl.metrics.requests, rl.metrics.bytes}
}
