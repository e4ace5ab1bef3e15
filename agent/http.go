package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/streamproxy"
	"github.com/attestlog/attestlog/policy/evidence"
)

// ChallengeBudget bounds the nonce challenges an agent answers: each
// costs a hardware report, which a guest gets about once a second.
type ChallengeBudget struct {
	// Off refuses every challenge (404): clients read the attestation
	// document only.
	Off bool `yaml:"off"`
	// PerSecond is the sustained rate of challenges answered, across
	// all clients (default 1).
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many may be answered at once after a quiet spell
	// (default 5).
	Burst int `yaml:"burst"`
	// MaxWaiting is how many challenges may wait for the hardware at
	// once (default 4); past it the answer is 503.
	MaxWaiting int `yaml:"max_waiting"`
}

func (b *ChallengeBudget) check() error {
	if b.PerSecond == 0 {
		b.PerSecond = 1
	}
	if b.Burst == 0 {
		b.Burst = 5
	}
	if b.MaxWaiting == 0 {
		b.MaxWaiting = 4
	}
	if b.PerSecond < 0 || b.PerSecond > 1000 || math.IsNaN(b.PerSecond) || b.Burst < 1 || b.MaxWaiting < 1 {
		return fmt.Errorf("challenges: per_second %v (0 to 1000), burst %d and max_waiting %d (at least 1)", b.PerSecond, b.Burst, b.MaxWaiting)
	}
	return nil
}

// limiter is a token bucket with a bound on waiters.
type limiter struct {
	b   ChallengeBudget
	now func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	waiting atomic.Int32
}

func newLimiter(b ChallengeBudget, now func() time.Time) *limiter {
	return &limiter{b: b, now: now, tokens: float64(b.Burst), last: now()}
}

// take spends a token, or says when the next one comes.
func (l *limiter) take() (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens = min(float64(l.b.Burst), l.tokens+now.Sub(l.last).Seconds()*l.b.PerSecond)
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) / l.b.PerSecond * float64(time.Second))
}

// Handler serves the attestation document, nonce challenges, and
// everything else from upstream (nil: 404).
func (a *Agent) Handler(upstream *url.URL) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+evidence.DocumentPath, http.HandlerFunc(a.serveDocument))
	mux.Handle("GET "+evidence.Path, http.HandlerFunc(a.serveChallenge))
	mux.Handle("/.well-known/attestlog/", http.NotFoundHandler())
	mux.Handle("GET "+GatewayPath, http.HandlerFunc(a.serveKeys))
	mux.Handle("POST "+GatewayPath, a.ohttpHandler(upstream))
	if upstream != nil {
		mux.Handle("/", a.reverseProxy(upstream))
	}
	return mux
}

// DocumentHandler serves only the attestation document and challenges
// (for mounting beside other handlers).
func (a *Agent) DocumentHandler() http.Handler { return a.Handler(nil) }

func (a *Agent) serveDocument(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	g, ok := a.generationOf(r.Context())
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the enclave's key set expired and no new one could be made: no attestation document to serve", http.StatusServiceUnavailable)
		return
	}
	body, err := a.document(g)
	if err != nil {
		a.logger.Error("attestation document", "err", err)
		http.Error(w, "could not produce the attestation document", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", evidence.ContentType)
	// The staples change every refresh: a cache may keep the document
	// no longer than that.
	w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(a.o.StapleInterval.Seconds())))
	w.Write(body)
}

func (a *Agent) serveChallenge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	status := a.challenge(w, r)
	a.metrics.challenges.WithLabelValues(strconv.Itoa(status)).Inc()
}

func (a *Agent) challenge(w http.ResponseWriter, r *http.Request) int {
	if a.o.Challenges.Off {
		http.Error(w, "this enclave answers no nonce challenges: read its attestation document at "+evidence.DocumentPath, http.StatusNotFound)
		return http.StatusNotFound
	}
	nonce, err := evidence.ParseNonce(r.URL.Query().Get("nonce"))
	if err != nil {
		http.Error(w, "nonce query parameter: "+err.Error(), http.StatusBadRequest)
		return http.StatusBadRequest
	}
	g, ok := a.generationOf(r.Context())
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the enclave's key set expired and no new one could be made", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	ok, wait := a.limiter.take()
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		http.Error(w, "too many nonce challenges: each costs a hardware report; retry later, or read the attestation document at "+evidence.DocumentPath+" (no nonce, no report)", http.StatusTooManyRequests)
		return http.StatusTooManyRequests
	}
	if a.limiter.waiting.Add(1) > int32(a.o.Challenges.MaxWaiting) {
		a.limiter.waiting.Add(-1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the hardware is busy with other challenges; retry later", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	b, err := a.report(ctx, g, nonce)
	cancel()
	a.limiter.waiting.Add(-1)
	if err != nil {
		a.logger.Error("nonce challenge", "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "could not get a hardware report", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	if a.st != nil {
		st, _ := a.st.Current()
		b.Proof, b.IndexProof, b.Related = st.Proof, st.IndexProof, st.Related
	}
	body, err := b.Marshal()
	if err != nil {
		a.logger.Error("nonce challenge", "err", err)
		http.Error(w, "could not produce evidence", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", evidence.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
	return http.StatusOK
}

// reverseProxy forwards to upstream, streaming (internal/streamproxy: a
// server-sent event reaches the client when the upstream sends it; bulk
// bytes are read ahead and share flushes), and
// answers 502 with a clear message when the upstream does not answer.
func (a *Agent) reverseProxy(upstream *url.URL) http.Handler {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Whole read-ahead buffers per read from the service, not 4 KiB.
		ReadBufferSize:  streamproxy.BufferSize,
		WriteBufferSize: streamproxy.BufferSize,
	}
	return streamproxy.Handler(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return // the client left
			}
			a.logger.Warn("upstream", "err", err, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("attestlog enclave: the service behind this enclave (%s) did not answer: %v. The enclave itself is up and attested; the service is down or starting — retry later.", upstream.Redacted(), err), http.StatusBadGateway)
		},
	})
}

// Server returns the agent's HTTP server for h: each connection is
// tagged with the key set its TLS handshake used, so that the
// attestation document asked over it is that key set's. No write or
// read timeout (responses stream for as long as the upstream sends);
// headers must arrive within 10 s and idle connections close after 2
// minutes.
//
// It holds at most Options.MaxConnections client connections open: the
// requests of a connection made beyond that are answered 503 with
// Retry-After, and the connection is closed.
func (a *Agent) Server(h http.Handler) *http.Server {
	max := int64(a.o.MaxConnections)
	msg := fmt.Sprintf("attestlog enclave: serving its maximum of %d open connections; retry later", max)
	srv := httpserve.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cg, ok := r.Context().Value(connKey{}).(*connGen); ok && cg.over {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	srv.ReadTimeout, srv.WriteTimeout = 0, 0
	// Failed handshakes and the like: clients' doing, the agent's log at
	// debug level.
	srv.ErrorLog = slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug)
	srv.TLSConfig = a.TLSConfig()
	// ConnContext runs before the connection's StateNew.
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connGen{over: a.conns.Load() >= max})
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			a.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			a.conns.Add(-1)
		}
	}
	return srv
}

// Connections is how many client connections the agent holds open.
func (a *Agent) Connections() int64 { return a.conns.Load() }

// ServeTLS serves h over TLS on ln until ctx ends.
func (a *Agent) ServeTLS(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := a.Server(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), httpserve.ShutdownTimeout)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}
