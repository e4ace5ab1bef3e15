package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
)

// Paths on an attestlog relay under a gateway's URL (relay/ defines
// them; the client needs only these two suffixes).
const (
	relayKeysSuffix     = "/keys"
	relayDocumentSuffix = "/document"
)

// ErrGatewayKeyMismatch is returned, and nothing is sent, when the key
// configurations served for the gateway are not those the verified
// attestation document commits to: a relay (or anyone on the way)
// offers a key of its own.
var ErrGatewayKeyMismatch = errors.New("the gateway's OHTTP key configuration is not the attested one")

// MaxObliviousRequest bounds the content of a request sent over OHTTP
// (it is sealed whole; answers stream).
const MaxObliviousRequest = 8 << 20

// Oblivious is a channel to one enclave through an Oblivious HTTP relay
// (RFC 9458): the relay learns who asks but not what; the enclave's
// operator learns what is asked but not by whom.
//
// Before the first request, and again when the verdict lapses (one
// refresh interval, or the key set's expiry), it fetches the enclave's
// attestation document through the relay and verifies it under the
// policy exactly as Client does (hardware, log, witnesses, operator,
// revocation, expiry), then fetches the gateway's key configurations and
// requires them to be byte for byte those the verified key set commits
// to. Requests are sealed to the verified HPKE key (the post-quantum
// hybrid when offered) as chunked OHTTP, and answers stream. When
// verification fails or the keys differ, nothing is sent.
type Oblivious struct {
	cv       *Verifier
	relay    *url.URL
	relayURL string // relay's String, made once
	hc       *http.Client
	kem      uint16
	logger   *slog.Logger

	mu     sync.Mutex
	state  State
	sealer *ohttp.Sealer // to the verified key (nil before a positive verdict)
}

// ObliviousOption configures an Oblivious channel.
type ObliviousOption func(*Oblivious)

// WithRelayClient sets the HTTP client that reaches the relay (default:
// a client of its own, no proxy from the environment, 10-minute timeout).
func WithRelayClient(hc *http.Client) ObliviousOption { return func(o *Oblivious) { o.hc = hc } }

// WithKEM restricts the HPKE KEM (keyset.KEMX25519 for a client without
// the post-quantum hybrid; default: the key set's first, the hybrid).
func WithKEM(kem uint16) ObliviousOption { return func(o *Oblivious) { o.kem = kem } }

// WithObliviousLogger logs verdict changes and refusals.
func WithObliviousLogger(l *slog.Logger) ObliviousOption { return func(o *Oblivious) { o.logger = l } }

// NewOblivious returns a channel through the relay at relayURL: the
// relay's URL for the enclave's gateway (for `attestlog relay`,
// http(s)://relay/g/NAME).
func NewOblivious(cv *Verifier, relayURL string, opts ...ObliviousOption) (*Oblivious, error) {
	u, err := url.Parse(relayURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("relay URL %q: want http(s)://relay/g/NAME (the relay's URL for the enclave's gateway)", relayURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	o := &Oblivious{cv: cv, relay: u, relayURL: u.String()}
	for _, opt := range opts {
		opt(o)
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// State returns the channel's current view of the enclave.
func (o *Oblivious) State() State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state
}

// Key is the verified key requests are sealed to (ok false before a
// positive verdict).
func (o *Oblivious) Key() (id uint8, kem uint16, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealer == nil {
		return 0, 0, false
	}
	cfg := o.sealer.Config()
	return cfg.ID, cfg.KEM, o.state.OK
}

// Relay is the relay URL requests go to.
func (o *Oblivious) Relay() *url.URL { u := *o.relay; return &u }

func (o *Oblivious) get(ctx context.Context, suffix, accept string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.relay.String()+suffix, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := o.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	case int64(len(b)) > max:
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return b, nil
}

// Verify fetches the attestation document and the key configurations
// through the relay and checks them now.
func (o *Oblivious) Verify(ctx context.Context) (State, error) {
	st, sealer, err := o.verify(ctx)
	o.mu.Lock()
	old := o.state
	if err != nil && st.Err == nil {
		st.Err = err
	}
	o.state, o.sealer = st, sealer
	o.mu.Unlock()
	if old.OK != st.OK || old.KeySet != st.KeySet {
		if st.OK {
			o.logger.Info("oblivious channel: enclave trusted", "relay", o.relay.Redacted(), "key_set", short(st.KeySet), "kem", keyset.KEMName(sealer.Suite().KEM))
		} else {
			o.logger.Warn("oblivious channel: enclave NOT trusted; sending nothing", "relay", o.relay.Redacted(), "err", st.Err)
		}
	}
	return st, err
}

// verify returns the verdict and, when it is positive, the sealer to the
// verified key (made of the configuration just verified, parsed once
// for every request until the next verification).
func (o *Oblivious) verify(ctx context.Context) (State, *ohttp.Sealer, error) {
	doc, err := o.get(ctx, relayDocumentSuffix, "application/json", 4<<20)
	if err != nil {
		return State{}, nil, fmt.Errorf("%w through the relay %s: %w", ErrNoDocument, o.relay.Redacted(), err)
	}
	vd, ks, err := o.cv.VerifyDocument(doc)
	if err != nil {
		return State{}, nil, err
	}
	now := o.cv.now()
	st := State{Verdict: vd, VerifiedAt: now, ValidUntil: minTime(now.Add(o.cv.ttl), ks.NotAfter)}
	d := keyset.Digest(mustMarshal(ks))
	st.KeySet, st.KeySetUntil = fmt.Sprintf("%x", d[:]), ks.NotAfter
	if !vd.OK() {
		var failed []string
		for _, f := range vd.Checks.Failed() {
			failed = append(failed, f.Name+": "+f.Reason)
		}
		st.Err = fmt.Errorf("%w: %s", ErrNotTrusted, strings.Join(failed, "; "))
		return st, nil, st.Err
	}
	if len(ks.HPKE) == 0 {
		st.Err = fmt.Errorf("%w: the attested key set has no HPKE key: this enclave is no OHTTP gateway", ErrNotTrusted)
		return st, nil, st.Err
	}
	// The gateway's own statement of its keys must be the attested
	// ones, byte for byte: anything else is someone else's key.
	served, err := o.get(ctx, relayKeysSuffix, ohttp.ContentTypeKeys, keyset.MaxSize)
	if err != nil {
		st.Err = fmt.Errorf("fetching the gateway's key configurations through %s: %w", o.relay.Redacted(), err)
		return st, nil, st.Err
	}
	if err := ks.CheckServedConfigs(served); err != nil {
		st.Err = fmt.Errorf("%w: through the relay %s, for the enclave's verified key set %s: %w; refusing to send", ErrGatewayKeyMismatch, o.relay.Redacted(), short(st.KeySet), err)
		return st, nil, st.Err
	}
	cs := ks.HPKE
	var cfg keyset.KeyConfig
	var su ohttp.Suite
	if o.kem != 0 {
		cfg, su, err = ohttp.ChooseKEM(cs, o.kem)
	} else {
		cfg, su, err = ohttp.Choose(cs)
	}
	if err != nil {
		st.Err = fmt.Errorf("%w: %v", ErrNotTrusted, err)
		return st, nil, st.Err
	}
	sealer, err := ohttp.NewSealer(cfg, su)
	if err != nil {
		st.Err = fmt.Errorf("%w: the attested key configuration %d: %v", ErrNotTrusted, cfg.ID, err)
		return st, nil, st.Err
	}
	st.OK = true
	return st, sealer, nil
}

// ready returns the sealer to the verified key, verifying again when
// the verdict lapsed.
func (o *Oblivious) ready(ctx context.Context) (*ohttp.Sealer, error) {
	o.mu.Lock()
	st, sealer := o.state, o.sealer
	o.mu.Unlock()
	if st.OK && sealer != nil && o.cv.now().Before(st.ValidUntil) {
		return sealer, nil
	}
	st, err := o.Verify(ctx)
	if err != nil {
		return nil, err
	}
	if !st.OK {
		return nil, st.Err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealer == nil { // another Verify, failing, since
		return nil, fmt.Errorf("%w: the verdict changed while sending", ErrNotTrusted)
	}
	return o.sealer, nil
}

// sealedSize is about the size of a chunked request of n bytes of
// Binary HTTP (no less), so that it is sealed into one buffer, not grown
// in steps.
func sealedSize(k *ohttp.Sealer, n int) int {
	enc := 32
	if k.Suite().KEM == keyset.KEMMLKEM768X25519 {
		enc = 1120
	}
	const perChunk = 8 + 32 // a length, the AEAD's tag
	return 7 + enc + n + (n/ohttp.ChunkSize+2)*perChunk
}

// HTTPClient returns an *http.Client whose requests go through the
// relay, sealed to the attested key. The request's URL names the path
// and query at the enclave's service; its host is not sent to anyone
// but the enclave.
func (o *Oblivious) HTTPClient() *http.Client {
	return &http.Client{Transport: o, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// RoundTrip sends req through the relay: verified first (see the type's
// documentation), nothing sent when not trusted.
func (o *Oblivious) RoundTrip(req *http.Request) (*http.Response, error) {
	var content []byte
	if req.Body != nil {
		var err error
		content, err = io.ReadAll(io.LimitReader(req.Body, MaxObliviousRequest+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(content) > MaxObliviousRequest {
			return nil, fmt.Errorf("oblivious channel: a request of more than %d bytes", MaxObliviousRequest)
		}
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if req.URL.RawQuery != "" {
		path += "?" + req.URL.RawQuery
	}
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	br := &bhttp.Request{Method: req.Method, Scheme: "https", Authority: req.URL.Host, Path: path, Header: bhttp.Fields(h), Content: content}
	if br.Method == "" {
		br.Method = http.MethodGet
	}
	msg, err := br.MarshalKnownLength()
	if err != nil {
		return nil, err
	}
	var creq *ohttp.ChunkedRequest
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		sealer, err := o.ready(req.Context())
		if err != nil {
			return nil, err
		}
		var sealed bytes.Buffer
		sealed.Grow(sealedSize(sealer, len(msg)))
		if creq, err = sealer.NewChunkedRequest(&sealed); err != nil {
			return nil, err
		}
		creq.Write(msg)
		creq.Close()
		out, err := http.NewRequestWithContext(req.Context(), http.MethodPost, o.relayURL, &sealed)
		if err != nil {
			return nil, err
		}
		out.Header.Set("Content-Type", ohttp.ContentTypeChunkedRequest)
		out.Header.Set("Incremental", "?1")
		if resp, err = o.hc.Do(out); err != nil {
			return nil, fmt.Errorf("oblivious channel: the relay %s: %w", o.relay.Redacted(), err)
		}
		if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == ohttp.ContentTypeChunkedResponse {
			break
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if attempt == 0 && (resp.StatusCode == http.StatusUnprocessableEntity || resp.StatusCode == http.StatusBadRequest) {
			// The gateway has no such key (422), or a key of that
			// identifier that does not open it (400): the enclave
			// rotated past, or restarted since, the key set verified.
			// Nothing was opened: verify the current document and, if
			// it names another key set, seal again — once.
			before := o.State().KeySet
			o.mu.Lock()
			o.state.OK = false
			o.mu.Unlock()
			if st, err := o.Verify(req.Context()); err == nil && st.OK && st.KeySet != before {
				continue
			}
		}
		return nil, fmt.Errorf("oblivious channel: the relay or gateway answered %s (%s): %s", resp.Status, resp.Header.Get("Content-Type"), strings.TrimSpace(string(b)))
	}
	pt := creq.OpenResponse(resp.Body)
	sr, err := bhttp.ReadResponse(pt, bhttp.Limits{MaxFieldSection: 64 << 10, MaxFields: 256})
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("oblivious channel: the encapsulated response: %w", err)
	}
	out2 := &http.Response{
		Status: fmt.Sprintf("%d %s", sr.Status, http.StatusText(sr.Status)), StatusCode: sr.Status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header(bhttp.Header(sr.Header)), Trailer: http.Header{}, ContentLength: -1, Request: req,
	}
	out2.Body = &obliviousBody{sr: sr, raw: resp.Body, resp: out2}
	return out2, nil
}

// obliviousBody is the content of a decapsulated response; at its end it
// reads the trailer (and fails if the response was cut).
type obliviousBody struct {
	sr   *bhttp.StreamedResponse
	raw  io.ReadCloser
	resp *http.Response
	done bool
}

func (b *obliviousBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.sr.Body.Read(p)
	if err == io.EOF {
		tr, terr := b.sr.Trailer()
		if terr != nil {
			return n, terr
		}
		for k, v := range bhttp.Header(tr) {
			b.resp.Trailer[k] = v
		}
		b.done = true
	}
	return n, err
}

func (b *obliviousBody) Close() error { return b.raw.Close() }
