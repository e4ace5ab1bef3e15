// Package channel is the client end of the attested channel: an
// *http.Client whose requests reach only an enclave that a policy
// trusts, over TLS pinned to the key its hardware attested.
//
// Every new connection is checked before any request is written on it:
// the TLS handshake proves the server holds the key of its certificate;
// the certificate's key must be the TLS key of a key set (channel/keyset)
// that a verified attestation document committed to. A key not seen
// before is verified on the spot: the attestation document is asked over
// that same connection (so a relay that terminates TLS with a key of its
// own shows a document naming another key, and is refused), verified
// under the policy (policy/verify: hardware, log, witnesses, operator,
// revocation, the key set's expiry), and pinned. After a rotation the
// server presents a new key: the client verifies it once and pins it,
// and goes on; it never fails forever on a "fingerprint mismatch".
//
// The verdict lasts until the key set expires or one refresh interval
// passes, whichever is first: then the next request waits for a fresh
// document (with fresh staples: the log's index proof that nothing
// revoked the release), so a revocation stops new requests within one
// refresh. A connection whose key set expired, or that belongs to an
// enclave no longer trusted, writes nothing more.
//
// Proxies: HTTPS_PROXY (or WithProxy) is honoured with CONNECT, and the
// pin holds through it, since TLS runs end to end inside the tunnel.
package channel

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

// DefaultRefresh is how long a verdict holds before the client asks for
// the document again (with fresh staples): the agent refreshes its
// staple as often by default.
const DefaultRefresh = 5 * time.Second

var (
	// ErrNotTrusted is returned, and no request is sent, when the
	// enclave's attestation document does not verify under the policy
	// (the error lists the failed checks), or the enclave serves none.
	ErrNotTrusted = errors.New("enclave not trusted")
	// ErrKeyNotAttested is returned, and no request is sent, when the
	// server's TLS key is not the key set's its attestation document
	// commits to: a relay or an interceptor holds the connection.
	ErrKeyNotAttested = errors.New("the server's TLS key is not the attested key")
	// ErrNoDocument wraps a failure to get the attestation document.
	ErrNoDocument = errors.New("fetching the attestation document")
)

// Verifier checks attestation documents under one policy for many
// clients, remembering verdicts of a document for one refresh interval
// (a fleet's clients in one process verify each document once). It is
// safe for concurrent use.
type Verifier struct {
	v   *verify.Verifier
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedVerdict
}

type cachedVerdict struct {
	vd *verify.Verdict
	ks *keyset.KeySet
	at time.Time
}

// NewVerifier returns a verifier for v's policy whose verdicts are
// remembered for refresh (0: DefaultRefresh).
func NewVerifier(v *verify.Verifier, refresh time.Duration) *Verifier {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	return &Verifier{v: v, ttl: refresh, now: time.Now, cache: map[[32]byte]cachedVerdict{}}
}

// VerifyDocument verifies an attestation document (the JSON body served
// at evidence.DocumentPath). The key set is nil when the document has
// none or does not parse (the verdict then fails).
func (cv *Verifier) VerifyDocument(body []byte) (*verify.Verdict, *keyset.KeySet, error) {
	h := sha256.Sum256(body)
	now := cv.now()
	cv.mu.Lock()
	c, ok := cv.cache[h]
	cv.mu.Unlock()
	if ok && now.Sub(c.at) < cv.ttl && now.Before(c.ks.NotAfter) {
		return c.vd, c.ks, nil
	}
	b, err := evidence.ParseBundle(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotTrusted, err)
	}
	if b.Format != evidence.FormatKeySet {
		return nil, nil, fmt.Errorf("%w: the enclave's document is %s evidence without a key set: it binds no key to pin (is it an attestlog enclave agent?)", ErrNotTrusted, b.Format)
	}
	ks, err := b.ParsedKeySet()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotTrusted, err)
	}
	vd := cv.v.Verify(verify.Input{Evidence: b})
	cv.mu.Lock()
	if len(cv.cache) >= 1024 {
		clear(cv.cache)
	}
	cv.cache[h] = cachedVerdict{vd: vd, ks: ks, at: now}
	cv.mu.Unlock()
	return vd, ks, nil
}

// Option configures a Client.
type Option func(*Client)

// WithProxy sets how the proxy for the enclave's URL is found (default:
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment, read when
// the client is made; loopback is never proxied by that default). The
// function returns nil for a direct connection.
func WithProxy(f func(*url.URL) (*url.URL, error)) Option { return func(c *Client) { c.proxy = f } }

// WithLogger logs verdict changes and refusals.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithOnChange calls f when the verdict changes (trusted or not, another
// key set).
func WithOnChange(f func(State)) Option { return func(c *Client) { c.onChange = f } }

// WithDialer sets the dialer of TCP connections (to the enclave or the
// proxy).
func WithDialer(d *net.Dialer) Option { return func(c *Client) { c.dialer = d } }

// Client is a channel to one enclave. Its methods are safe for
// concurrent use.
type Client struct {
	cv       *Verifier
	base     *url.URL
	host     string // host:port
	proxy    func(*url.URL) (*url.URL, error)
	dialer   *net.Dialer
	logger   *slog.Logger
	onChange func(State)
	tr       *http.Transport

	mu         sync.Mutex
	state      State
	pins       map[[32]byte]*keyset.KeySet
	refreshing chan struct{} // closed when the refresh under way ends
	lastErr    error         // of the last refresh
	// spare is the connection the last verification was made over,
	// kept for the transport's next dial (a new client then needs one
	// handshake, not two), until spareUntil.
	spare      *pinnedConn
	spareUntil time.Time
}

// State is the client's view of the enclave.
type State struct {
	// OK says the last verification passed: requests may be sent until
	// ValidUntil.
	OK bool `json:"ok"`
	// Verdict is the last verdict (nil before the first or when no
	// document could be had: see Err).
	Verdict *verify.Verdict `json:"verdict,omitempty"`
	// KeySet is the hex SHA-256 of the key set last verified, with its
	// expiry and TLS key.
	KeySet      string    `json:"key_set,omitempty"`
	KeySetUntil time.Time `json:"key_set_not_after,omitzero"`
	TLSKey      string    `json:"tls_spki_sha256,omitempty"`
	// VerifiedAt is when; ValidUntil is when the verdict lapses (the key
	// set's expiry, or one refresh interval after VerifiedAt).
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Err says why the enclave is not trusted.
	Err error `json:"-"`
}

// Error is Err's text ("" when none).
func (s State) Error() string {
	if s.Err == nil {
		return ""
	}
	return s.Err.Error()
}

// New returns a client of the enclave at enclaveURL (https://host[:port]
// with an optional path prefix), checked under cv. It connects to
// nothing yet: Verify or the first request does.
func New(cv *Verifier, enclaveURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(enclaveURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("enclave URL %q: want https://host[:port][/prefix] (an attested channel is TLS to the enclave agent)", enclaveURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	c := &Client{cv: cv, base: u, host: host, pins: map[[32]byte]*keyset.KeySet{}, dialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
	env := httpproxy.FromEnvironment().ProxyFunc()
	c.proxy = env
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.tr = &http.Transport{
		Proxy:          nil, // the dialer tunnels through the proxy itself, keeping TLS (and the pin) end to end
		DialTLSContext: c.dialTLS,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("attested channel: plain HTTP is refused")
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		// Streams: read whole TLS records' worth per call, not 4 KiB.
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 64 << 10,
	}
	return c, nil
}

// HTTPClient verifies the enclave at enclaveURL under v's policy and
// returns an *http.Client that sends only to it (see the package
// documentation), or the reason it is not trusted.
func HTTPClient(ctx context.Context, v *verify.Verifier, enclaveURL string, opts ...Option) (*http.Client, *Client, error) {
	c, err := New(NewVerifier(v, 0), enclaveURL, opts...)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Verify(ctx); err != nil {
		return nil, nil, err
	}
	return c.HTTPClient(), c, nil
}

// HTTPClient returns an *http.Client over the channel. Its requests must
// be for the enclave's host: a request elsewhere is refused.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: c, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != c.base.Host || req.URL.Scheme != "https" {
			return fmt.Errorf("attested channel: refusing to follow a redirect off the enclave, to %s", req.URL.Redacted())
		}
		return nil
	}}
}

// Base is the enclave's URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// State returns the client's current view of the enclave.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Verify fetches and verifies the attestation document now (over a new
// connection, which the next request may use) and returns the new state;
// the error says why the enclave is not trusted.
func (c *Client) Verify(ctx context.Context) (State, error) {
	conn, err := c.connect(ctx, true)
	if pc, ok := conn.(*pinnedConn); ok {
		c.park(pc)
	} else if conn != nil {
		conn.Close()
	}
	st := c.State()
	if err == nil && !st.OK {
		err = st.Err
	}
	return st, err
}

// RoundTrip sends req over the channel, after making sure the verdict is
// current: a stale verdict is refreshed first, and a request to an
// enclave not trusted is not sent.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || req.URL.Host != c.base.Host {
		return nil, fmt.Errorf("attested channel to %s: refusing a request for %s", c.base.Host, req.URL.Redacted())
	}
	if err := c.ready(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return c.tr.RoundTrip(req)
}

// CloseIdleConnections closes the channel's idle connections.
func (c *Client) CloseIdleConnections() {
	c.park(nil)
	c.tr.CloseIdleConnections()
}

// park keeps pc (nil: none) as the spare connection for one refresh
// interval, closing the one it replaces.
func (c *Client) park(pc *pinnedConn) {
	c.mu.Lock()
	old := c.spare
	c.spare, c.spareUntil = pc, c.cv.now().Add(c.cv.ttl)
	c.mu.Unlock()
	if old != nil {
		old.Conn.Close()
	}
}

// takeSpare returns the spare connection if its key set is still
// pinned and trusted, closing a stale one.
func (c *Client) takeSpare() *pinnedConn {
	c.mu.Lock()
	pc, until := c.spare, c.spareUntil
	c.spare = nil
	c.mu.Unlock()
	if pc == nil {
		return nil
	}
	if !c.cv.now().Before(until) || c.pinned(pc.spki) != pc.ks {
		pc.Conn.Close()
		return nil
	}
	return pc
}

// ready returns nil once the verdict is current and positive: it
// refreshes a stale one (waiting), starts a refresh in the background
// past half the interval, and refuses when the enclave is not trusted.
func (c *Client) ready(ctx context.Context) error {
	now := c.cv.now()
	st := c.State()
	if st.OK && now.Before(st.ValidUntil) {
		if now.After(st.ValidUntil.Add(-c.cv.ttl / 2)) {
			c.startRefresh()
		}
		return nil
	}
	if err := c.refresh(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	st, err := c.state, c.lastErr
	c.mu.Unlock()
	if st.OK && c.cv.now().Before(st.ValidUntil) {
		return nil
	}
	switch {
	case err != nil:
		return err
	case st.Err != nil:
		return st.Err
	}
	return fmt.Errorf("%w: no current verdict about %s", ErrNotTrusted, c.base.Redacted())
}

// refresh verifies once, shared by the callers that ask meanwhile.
func (c *Client) refresh(ctx context.Context) error {
	c.mu.Lock()
	ch := c.refreshing
	if ch == nil {
		ch = make(chan struct{})
		c.refreshing = ch
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := c.Verify(rctx)
			cancel()
			c.mu.Lock()
			c.refreshing, c.lastErr = nil, err
			c.mu.Unlock()
			close(ch)
		}()
	}
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) startRefresh() {
	c.mu.Lock()
	busy := c.refreshing != nil
	c.mu.Unlock()
	if !busy {
		go c.refresh(context.Background())
	}
}

// dialTLS is the transport's dialer: a connection whose key is pinned
// and whose verdict holds, or one verified on the spot.
func (c *Client) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != c.host {
		return nil, fmt.Errorf("attested channel to %s: refusing to dial %s", c.host, addr)
	}
	if pc := c.takeSpare(); pc != nil {
		return pc, nil
	}
	return c.connect(ctx, false)
}

// connect dials the enclave (through the proxy, if any), completes the
// TLS handshake and checks the server's key: pinned (and force unset),
// or attested by the document asked over this connection.
func (c *Client) connect(ctx context.Context, force bool) (net.Conn, error) {
	tc, spki, err := c.handshake(ctx)
	if err != nil {
		return nil, err
	}
	if !force {
		if ks := c.pinned(spki); ks != nil {
			return &pinnedConn{Conn: tc, c: c, ks: ks, spki: spki}, nil
		}
	}
	ks, err := c.attest(ctx, tc, spki)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return &pinnedConn{Conn: tc, c: c, ks: ks, spki: spki}, nil
}

// handshake dials the enclave (through the proxy, if any) and completes
// the TLS handshake, returning the SHA-256 of the key the server proved
// it holds.
//
// A document the agent sent inside the handshake (evidence.DocumentALPN)
// is read by documentOf.
func (c *Client) handshake(ctx context.Context) (*tls.Conn, [32]byte, error) {
	raw, err := c.dialRaw(ctx)
	if err != nil {
		return nil, [32]byte{}, err
	}
	tc := tls.Client(raw, &tls.Config{
		ServerName: c.base.Hostname(),
		MinVersion: tls.VersionTLS13,
		// http/1.1 is what is spoken; DocumentALPN asks the agent for
		// its attestation document inside the handshake.
		NextProtos: []string{"http/1.1", evidence.DocumentALPN},
		// The certificate is self-signed by the enclave's key set key:
		// what makes it trusted is the attestation, checked below on
		// the key the handshake proved the server holds.
		InsecureSkipVerify: true,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, [32]byte{}, fmt.Errorf("TLS handshake with %s: %w", c.host, err)
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		tc.Close()
		return nil, [32]byte{}, fmt.Errorf("%w: no certificate", ErrKeyNotAttested)
	}
	if cs.NegotiatedProtocol != "" && cs.NegotiatedProtocol != "http/1.1" {
		tc.Close()
		return nil, [32]byte{}, fmt.Errorf("TLS handshake with %s: the server chose protocol %q, not http/1.1", c.host, cs.NegotiatedProtocol)
	}
	return tc, sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo), nil
}

// documentOf is the attestation document of tc: the one the agent sent
// inside the handshake (signed over by the handshake's key, like all it
// sent), or else the one asked over tc at DocumentPath.
func (c *Client) documentOf(ctx context.Context, tc *tls.Conn) ([]byte, error) {
	if doc := tc.ConnectionState().OCSPResponse; len(doc) > 0 {
		if len(doc) > evidence.MaxBundleSize {
			return nil, fmt.Errorf("%w from %s: %w: a document of more than %d bytes in the handshake", ErrNoDocument, c.host, evidence.ErrTooLarge, evidence.MaxBundleSize)
		}
		return doc, nil
	}
	return c.fetchDocument(ctx, tc)
}

// FetchDocument reads the attestation document of the enclave agent at
// enclaveURL (https) as a client does: over a connection of its own,
// dialled with d (no proxy), whose TLS key the document's key set must
// name; otherwise the error wraps ErrKeyNotAttested (a relay or an
// interceptor holds the connection). It does not verify the document
// (the auditor does, with its own verifier); its errors wrap
// evidence.ErrFetch (with ErrStatus, ErrNotFound or ErrTooLarge as
// evidence.FetchDocument's) or evidence.ErrMalformed. No hardware report
// is spent: this is the document every client reads.
func FetchDocument(ctx context.Context, enclaveURL string, d *net.Dialer) (*evidence.Bundle, error) {
	c, err := New(nil, enclaveURL, WithDialer(d), WithProxy(nil))
	if err != nil {
		return nil, err
	}
	tc, spki, err := c.handshake(ctx)
	if err != nil {
		if errors.Is(err, ErrKeyNotAttested) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", evidence.ErrFetch, err)
	}
	defer tc.Close()
	body, err := c.documentOf(ctx, tc)
	if err != nil {
		return nil, err
	}
	b, err := evidence.ParseBundle(body)
	if err != nil {
		return nil, err
	}
	ks, err := b.ParsedKeySet()
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", evidence.ErrMalformed, err)
	case b.Format != evidence.FormatKeySet || ks == nil:
		return nil, fmt.Errorf("%w: the document served over https at %s is %s evidence without a key set: it binds no key to this connection", ErrKeyNotAttested, c.host, b.Format)
	case ks.TLSSPKIHash != spki:
		return nil, fmt.Errorf("%w: the server presented TLS key sha256:%x, and the attestation document it served commits to sha256:%x; a relay or an interceptor terminates TLS in front of the enclave", ErrKeyNotAttested, spki[:8], ks.TLSSPKIHash[:8])
	}
	return b, nil
}

// pinned returns the key set whose TLS key is spki if it is valid now
// and the verdict holds.
func (c *Client) pinned(spki [32]byte) *keyset.KeySet {
	now := c.cv.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	ks := c.pins[spki]
	if ks == nil || !c.state.OK || !now.Before(c.state.ValidUntil) || !now.Before(ks.NotAfter) {
		return nil
	}
	return ks
}

// allowed reports whether a connection pinned to ks may carry another
// byte: its key set has not expired and the enclave is still trusted.
func (c *Client) allowed(ks *keyset.KeySet) error {
	now := c.cv.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !now.Before(ks.NotAfter):
		return fmt.Errorf("%w: the key set of this connection expired at %s", ErrNotTrusted, ks.NotAfter.Format(time.RFC3339))
	case !c.state.OK:
		return c.state.Err
	}
	return nil
}

// attest reads the attestation document of tc, verifies it and
// checks that its key set names spki, updating the state.
func (c *Client) attest(ctx context.Context, tc *tls.Conn, spki [32]byte) (*keyset.KeySet, error) {
	body, err := c.documentOf(ctx, tc)
	if err != nil {
		// No document over this connection: it is refused, and the
		// verdict stands (a refresh that cannot reach the enclave
		// leaves a stale verdict stale: nothing is sent on it).
		return nil, err
	}
	vd, ks, err := c.cv.VerifyDocument(body)
	if err != nil {
		c.setState(State{Err: err}, nil, spki)
		return nil, err
	}
	now := c.cv.now()
	st := State{Verdict: vd, VerifiedAt: now, ValidUntil: now.Add(c.cv.ttl)}
	if ks != nil {
		d := keyset.Digest(mustMarshal(ks))
		st.KeySet, st.KeySetUntil, st.TLSKey = hex.EncodeToString(d[:]), ks.NotAfter, hex.EncodeToString(ks.TLSSPKIHash[:])
		st.ValidUntil = minTime(st.ValidUntil, ks.NotAfter)
	}
	switch {
	case !vd.OK():
		var failed []string
		for _, f := range vd.Checks.Failed() {
			failed = append(failed, f.Name+": "+f.Reason)
		}
		st.Err = fmt.Errorf("%w: %s", ErrNotTrusted, strings.Join(failed, "; "))
	case ks.TLSSPKIHash != spki:
		// The document is a real enclave's, but this connection's key
		// is not its key set's: someone relays it. The verdict about
		// the enclave stands; this connection is refused.
		err := fmt.Errorf("%w: the server presented TLS key sha256:%x, and the attestation document it relayed commits to sha256:%x; a relay or an interceptor terminates TLS between you and the enclave", ErrKeyNotAttested, spki[:8], ks.TLSSPKIHash[:8])
		c.logger.Warn("attested channel: connection refused", "enclave", c.base.Redacted(), "err", err)
		return nil, err
	default:
		st.OK = true
	}
	c.setState(st, ks, spki)
	if !st.OK {
		return nil, st.Err
	}
	return ks, nil
}

// setState records a verification's outcome and pins ks when it passed.
func (c *Client) setState(st State, ks *keyset.KeySet, spki [32]byte) {
	c.mu.Lock()
	old := c.state
	c.state = st
	now := c.cv.now()
	for k, p := range c.pins {
		if !now.Before(p.NotAfter) {
			delete(c.pins, k)
		}
	}
	if st.OK && ks != nil {
		c.pins[spki] = ks
	} else if !st.OK {
		clear(c.pins)
	}
	f := c.onChange
	c.mu.Unlock()
	if old.OK != st.OK || old.KeySet != st.KeySet || (old.Verdict == nil) != (st.Verdict == nil) {
		if st.OK {
			c.logger.Info("attested channel: enclave trusted", "enclave", c.base.Redacted(), "key_set", short(st.KeySet), "key_set_not_after", st.KeySetUntil)
		} else {
			c.logger.Warn("attested channel: enclave NOT trusted; sending nothing", "enclave", c.base.Redacted(), "err", st.Err)
		}
		if f != nil {
			f(st)
		}
	}
}

// fetchDocument asks for the attestation document over tc itself (HTTP/1.1),
// leaving the connection ready for the next request.
func (c *Client) fetchDocument(ctx context.Context, tc *tls.Conn) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		tc.SetDeadline(d)
	} else {
		tc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	defer tc.SetDeadline(time.Time{})
	u := *c.base
	u.Path += evidence.DocumentPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", evidence.ContentType)
	req.Header.Set("User-Agent", "attestlog-channel")
	if err := req.Write(tc); err != nil {
		return nil, fmt.Errorf("%w from %s: %w: %w", ErrNoDocument, c.host, evidence.ErrFetch, err)
	}
	br := bufio.NewReaderSize(tc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("%w from %s: %w: %w", ErrNoDocument, c.host, evidence.ErrFetch, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, evidence.MaxBundleSize+1))
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w from %s: %w: %w", ErrNoDocument, c.host, evidence.ErrFetch, err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w from %s: %w: %w: %w: %s", ErrNoDocument, c.host, evidence.ErrFetch, evidence.ErrStatus, evidence.ErrNotFound, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w from %s: %w: %w: %s: %s", ErrNoDocument, c.host, evidence.ErrFetch, evidence.ErrStatus, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	case len(body) > evidence.MaxBundleSize:
		return nil, fmt.Errorf("%w from %s: %w: %w: more than %d bytes", ErrNoDocument, c.host, evidence.ErrFetch, evidence.ErrTooLarge, evidence.MaxBundleSize)
	case br.Buffered() > 0 || resp.Close:
		return nil, fmt.Errorf("%w from %s: %w: the server sent more than the document, or closes the connection", ErrNoDocument, c.host, evidence.ErrMalformed)
	}
	return body, nil
}

// dialRaw opens the TCP connection to the enclave, directly or as a
// CONNECT tunnel through the proxy.
func (c *Client) dialRaw(ctx context.Context) (net.Conn, error) {
	var pu *url.URL
	if c.proxy != nil {
		var err error
		if pu, err = c.proxy(c.base); err != nil {
			return nil, fmt.Errorf("finding the proxy for %s: %w", c.base.Redacted(), err)
		}
	}
	if pu == nil {
		return c.dialer.DialContext(ctx, "tcp", c.host)
	}
	if pu.Scheme != "http" {
		return nil, fmt.Errorf("proxy %s: only http:// proxies (CONNECT) are supported", pu.Redacted())
	}
	paddr := pu.Host
	if pu.Port() == "" {
		paddr = net.JoinHostPort(pu.Hostname(), "80")
	}
	conn, err := c.dialer.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", pu.Redacted(), err)
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	req := "CONNECT " + c.host + " HTTP/1.1\r\nHost: " + c.host + "\r\n"
	if pu.User != nil {
		pw, _ := pu.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pw)) + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: %w", pu.Redacted(), err)
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: %w", pu.Redacted(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || br.Buffered() > 0 {
		conn.Close()
		return nil, fmt.Errorf("proxy %s refused CONNECT %s: %s", pu.Redacted(), c.host, resp.Status)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// pinnedConn is a connection to a pinned key set: it writes nothing once
// the key set expired or the enclave is no longer trusted.
type pinnedConn struct {
	net.Conn
	c    *Client
	ks   *keyset.KeySet
	spki [32]byte
}

func (p *pinnedConn) Write(b []byte) (int, error) {
	if err := p.c.allowed(p.ks); err != nil {
		p.Conn.Close()
		return 0, err
	}
	return p.Conn.Write(b)
}

func mustMarshal(ks *keyset.KeySet) []byte {
	b, _ := ks.Marshal()
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}
