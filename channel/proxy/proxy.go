// Package proxy is `attestlog proxy`: a plain-HTTP endpoint on the
// user's own machine that forwards every request over the attested
// channel (package channel) to one enclave, for programs that cannot use
// the Go client — an OpenAI SDK with its base URL set to
// http://127.0.0.1:PORT/v1, curl, a browser extension. Nothing is sent
// unless the enclave is trusted now; the verdict is at VerdictPath.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/internal/streamproxy"
)

// VerdictPath serves the proxy's current verdict about the enclave (JSON;
// 200 while trusted, 503 otherwise).
const VerdictPath = "/.well-known/attestlog/verdict"

// ErrNotLoopback is returned by CheckListen for an address other
// programs on the network could reach.
var ErrNotLoopback = errors.New("the proxy listens on loopback only: anything that can reach it can use the channel (and the credentials it forwards); pass --allow-remote to listen elsewhere")

// CheckListen refuses an address that is not a loopback IP (an empty
// host listens on every interface).
func CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen %q: %w", addr, ErrNotLoopback)
	}
	return nil
}

// Channel is what the proxy sends over: the attested TLS channel
// (*channel.Client) or the oblivious one through a relay
// (*channel.Oblivious).
type Channel interface {
	http.RoundTripper
	// State is the current verdict.
	State() channel.State
	// Verify checks the enclave now.
	Verify(ctx context.Context) (channel.State, error)
}

// Proxy forwards to one enclave over the attested channel.
type Proxy struct {
	c      Channel
	name   string
	logger *slog.Logger
	rp     http.Handler
}

// New returns a proxy over c.
func New(c *channel.Client, logger *slog.Logger) *Proxy {
	return newProxy(c, c.Base(), c.Base().Redacted(), logger)
}

// NewOblivious returns a proxy over o: every request is sealed to the
// attested HPKE key and sent through o's relay.
func NewOblivious(o *channel.Oblivious, logger *slog.Logger) *Proxy {
	// The host is not sent anywhere but to the gateway (sealed), which
	// sends the request to its own service whatever it says.
	return newProxy(o, &url.URL{Scheme: "https", Host: "enclave"}, "oblivious via "+o.Relay().Redacted(), logger)
}

func newProxy(c Channel, base *url.URL, name string, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{c: c, name: name, logger: logger}
	p.rp = streamproxy.Handler(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			// The local client's address stays on this machine.
			pr.Out.Header.Del("X-Forwarded-For")
		},
		Transport:    c,
		ErrorHandler: p.refuse,
	})
	return p
}

// Handler serves the verdict at VerdictPath and forwards everything else.
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+VerdictPath, p.verdict)
	mux.Handle("/", p.rp)
	return mux
}

// Verdict is what VerdictPath serves.
type Verdict struct {
	Enclave string `json:"enclave"`
	channel.State
	Error string `json:"error,omitempty"`
}

func (p *Proxy) verdict(w http.ResponseWriter, r *http.Request) {
	st := p.c.State()
	v := Verdict{Enclave: p.name, State: st, Error: st.Error()}
	if st.OK && !time.Now().Before(st.ValidUntil) {
		// Lapsed: the next request will refresh it; say so now.
		v.OK, v.Error = false, "the verdict lapsed at "+st.ValidUntil.Format(time.RFC3339)+"; it is refreshed before the next request"
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !v.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write(append(b, '\n'))
}

// refuse answers a request the channel did not send (or whose answer did
// not come), in the shape OpenAI clients show: a JSON error with what
// was wrong.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	kind := "attestlog_channel_error"
	msg := "attestlog proxy: the request could not be completed over the attested channel: " + err.Error()
	if errors.Is(err, channel.ErrNotTrusted) || errors.Is(err, channel.ErrKeyNotAttested) || errors.Is(err, channel.ErrGatewayKeyMismatch) {
		kind = "attestlog_not_trusted"
		msg = "attestlog proxy: NOT SENT — " + err.Error() + " (the verdict is at " + VerdictPath + ")"
	}
	p.logger.Warn("request refused", "path", r.URL.Path, "err", err)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg, "type": kind}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	w.Write(append(b, '\n'))
}

// Run re-verifies every interval until ctx ends, so that the verdict
// served (and logged when it changes) is current without traffic.
func (p *Proxy) Run(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		vctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := p.c.Verify(vctx); err != nil && ctx.Err() == nil {
			p.logger.Debug("verifying the enclave", "err", err)
		}
		cancel()
	}
}
