package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
)

// GatewayPath is where the agent is an Oblivious HTTP gateway: GET
// answers the key configurations (application/ohttp-keys), POST takes
// message/ohttp-req and message/ohttp-chunked-req ([RFC 9540] names the
// path).
//
// [RFC 9540]: https://www.rfc-editor.org/rfc/rfc9540.html
const GatewayPath = "/.well-known/ohttp-gateway"

// Gateway limits.
const (
	// MaxOHTTPRequest bounds an encapsulated request (and its Binary HTTP
	// content).
	MaxOHTTPRequest = 8 << 20
	// MaxOHTTPResponse bounds a whole (non-chunked) upstream response;
	// chunked responses stream without a bound.
	MaxOHTTPResponse = 32 << 20
)

// serveKeys answers the HPKE key configurations of the current key set:
// byte for byte those its attestation document commits to.
func (a *Agent) serveKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	g, ok := a.generationOf(r.Context())
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the enclave's key set expired and no new one could be made", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", ohttp.ContentTypeKeys)
	w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(a.o.StapleInterval.Seconds())))
	w.Write(keyset.MarshalKeyConfigs(g.ks.HPKE))
}

// gatewayFor returns the gateway of the unexpired generation whose key
// the request names (the newest first: identifiers repeat only after 128
// rotations).
func (a *Agent) gatewayFor(keyID byte) *ohttp.Gateway {
	a.mu.RLock()
	gs := a.unexpired
	a.mu.RUnlock()
	for _, g := range gs {
		if !a.o.Now().Before(g.ks.NotAfter) {
			continue
		}
		for _, c := range g.ks.HPKE {
			if c.ID == keyID {
				return g.gateway
			}
		}
	}
	return nil
}

// ohttpHandler is the gateway in front of upstream (nil: requests are
// refused with 404, keys are still served).
func (a *Agent) ohttpHandler(upstream *url.URL) http.HandlerFunc {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(w http.ResponseWriter, r *http.Request) {
		status := a.serveOHTTP(w, r, upstream, client)
		a.metrics.ohttp.WithLabelValues(status).Inc()
	}
}

// keyProblem refuses a request whose key configuration the gateway does
// not hold (RFC 9458 §5.2–5.3): 422, so that attestlog's clients verify
// the enclave again, with the RFC 9457 problem of type ohttp-key, so that
// any OHTTP client can tell it should fetch the key configurations again.
func keyProblem(w http.ResponseWriter, detail string) {
	w.Header().Set("Content-Type", ohttp.ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnprocessableEntity)
	json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{ohttp.ProblemTypeKey, "key configuration unknown", http.StatusUnprocessableEntity, detail})
}

func (a *Agent) serveOHTTP(w http.ResponseWriter, r *http.Request, upstream *url.URL, client *http.Client) string {
	if upstream == nil {
		http.Error(w, "this enclave has no service behind it", http.StatusNotFound)
		return "no_upstream"
	}
	ct := r.Header.Get("Content-Type")
	if ct != ohttp.ContentTypeRequest && ct != ohttp.ContentTypeChunkedRequest {
		http.Error(w, "Content-Type must be "+ohttp.ContentTypeRequest+" or "+ohttp.ContentTypeChunkedRequest, http.StatusUnsupportedMediaType)
		return "bad_type"
	}
	body := http.MaxBytesReader(w, r.Body, MaxOHTTPRequest+64<<10)
	first := make([]byte, 1)
	if _, err := io.ReadFull(body, first); err != nil {
		http.Error(w, "an empty encapsulated request", http.StatusBadRequest)
		return "malformed"
	}
	gw := a.gatewayFor(first[0])
	if gw == nil {
		keyProblem(w, "the request names no key of this enclave's current key sets: fetch and verify its attestation document again")
		return "unknown_key"
	}
	in := io.MultiReader(bytes.NewReader(first), body)
	chunked := ct == ohttp.ContentTypeChunkedRequest
	var msg []byte
	var gr *ohttp.GatewayResponse
	var cr *ohttp.ChunkedRequestReader
	var err error
	if chunked {
		if cr, err = gw.OpenChunkedRequest(in); err == nil {
			msg, err = io.ReadAll(io.LimitReader(cr, MaxOHTTPRequest+1))
		}
	} else {
		var enc []byte
		if enc, err = io.ReadAll(in); err == nil {
			msg, gr, err = gw.DecapsulateRequest(enc)
		}
	}
	if err != nil || len(msg) > MaxOHTTPRequest {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe) || len(msg) > MaxOHTTPRequest:
			http.Error(w, "the encapsulated request is too large", http.StatusRequestEntityTooLarge)
			return "too_large"
		case errors.Is(err, ohttp.ErrUnknownKey):
			keyProblem(w, "the request names no key configuration of this enclave: fetch and verify its attestation document again")
			return "unknown_key"
		}
		http.Error(w, "the encapsulated request does not decapsulate", http.StatusBadRequest)
		return "decrypt_error"
	}
	// From here on every answer is encapsulated: the client learns what
	// went wrong, the relay does not.
	breq, perr := bhttp.ParseRequestLimits(msg, bhttp.Limits{MaxFieldSection: 64 << 10, MaxFields: 256, MaxContent: MaxOHTTPRequest})
	var resp *http.Response
	if perr == nil {
		resp, perr = a.forward(r.Context(), client, upstream, breq)
	}
	if perr != nil {
		a.logger.Warn("oblivious request", "err", perr)
		status, text := http.StatusBadRequest, "attestlog enclave: the binary HTTP request is invalid: "+perr.Error()
		if !errors.Is(perr, bhttp.ErrInvalid) && !errors.Is(perr, bhttp.ErrTooLarge) {
			status, text = http.StatusBadGateway, fmt.Sprintf("attestlog enclave: the service behind this enclave (%s) did not answer: %v", upstream.Redacted(), perr)
		}
		resp = &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, Body: io.NopCloser(strings.NewReader(text))}
	}
	defer resp.Body.Close()
	w.Header().Set("Cache-Control", "no-store")
	if chunked {
		return a.streamResponse(w, cr, resp)
	}
	content, err := io.ReadAll(io.LimitReader(resp.Body, MaxOHTTPResponse+1))
	if err != nil || len(content) > MaxOHTTPResponse {
		content, resp.StatusCode, resp.Header = []byte("attestlog enclave: the service's answer is too large or broke off; use chunked OHTTP (message/ohttp-chunked-req)"), http.StatusBadGateway, http.Header{}
	}
	m := &bhttp.Response{Status: resp.StatusCode, Header: bhttp.Fields(responseHeader(resp)), Content: content}
	b, err := m.MarshalKnownLength()
	if err != nil {
		http.Error(w, "the service's answer cannot be encoded", http.StatusBadGateway)
		return "encode_error"
	}
	out, err := gr.SealResponse(b)
	if err != nil {
		http.Error(w, "sealing the response", http.StatusInternalServerError)
		return "seal_error"
	}
	w.Header().Set("Content-Type", ohttp.ContentTypeResponse)
	w.Write(out)
	return "ok"
}

// responseHeader is what of an upstream response's header travels.
func responseHeader(resp *http.Response) http.Header {
	h := resp.Header.Clone()
	h.Del("Content-Length")
	return h
}

// forward sends the decapsulated request to the upstream: its path and
// query on the upstream's origin, its fields but no connection-specific
// ones, and nothing added about where it came from (the gateway knows
// nothing of the client; it adds nothing either).
func (a *Agent) forward(ctx context.Context, client *http.Client, upstream *url.URL, br *bhttp.Request) (*http.Response, error) {
	if !strings.HasPrefix(br.Path, "/") {
		return nil, fmt.Errorf("%w: path %q", bhttp.ErrInvalid, br.Path)
	}
	ref, err := url.Parse(br.Path)
	if err != nil || ref.Scheme != "" || ref.Host != "" {
		return nil, fmt.Errorf("%w: path %q", bhttp.ErrInvalid, br.Path)
	}
	u := *upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + ref.Path
	u.RawPath = ""
	u.RawQuery = ref.RawQuery
	req, err := http.NewRequestWithContext(ctx, br.Method, u.String(), bytes.NewReader(br.Content))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", bhttp.ErrInvalid, err)
	}
	req.Header = http.Header(bhttp.Header(br.Header))
	req.Header.Del("Content-Length")
	if br.Authority != "" {
		req.Host = upstream.Host // the upstream's own name, never the client's choice of host
	}
	req.ContentLength = int64(len(br.Content))
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "") // no Go default: nothing the client did not send
	}
	return client.Do(req)
}

// copyBuffers are streamResponse's read buffers (ohttp.ChunkSize: one
// upstream read is one sealed chunk), cleared before they are reused.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, ohttp.ChunkSize); return &b }}

// streamResponse writes resp as a chunked OHTTP response of an
// indeterminate-length Binary HTTP response, a chunk per upstream read.
//
// Each chunk of content leaves at once (flushed), so that a stream
// arrives as the service writes it; what needs no flush of its own is
// not flushed: the response nonce and the head leave with the first
// chunk of content (or with the end), and the last chunk of a content
// of known length with the trailer and the final chunk, which follow it
// at once — the server sends what is left when the handler returns. A
// small answer so leaves in one write instead of one per part, and the
// relay forwards it in one.
func (a *Agent) streamResponse(w http.ResponseWriter, cr *ohttp.ChunkedRequestReader, resp *http.Response) string {
	w.Header().Set("Content-Type", ohttp.ContentTypeChunkedResponse)
	w.Header().Set("Incremental", "?1")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	cw, err := cr.Response(w)
	if err != nil {
		return "write_error"
	}
	bw := bhttp.NewResponseWriter(cw)
	if err := bw.WriteHead(resp.StatusCode, bhttp.Fields(responseHeader(resp))); err != nil {
		return "write_error"
	}
	bp := copyBuffers.Get().(*[]byte)
	defer func() { clear(*bp); copyBuffers.Put(bp) }()
	buf := *bp
	left := resp.ContentLength // -1: not known
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := bw.Write(buf[:n]); werr != nil {
				return "client_gone"
			}
			if left >= 0 {
				left = max(left-int64(n), 0)
			}
			if left != 0 && rc.Flush() != nil {
				return "client_gone"
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// No final chunk: the client sees a truncated response,
			// never a short one that looks whole.
			a.logger.Warn("oblivious response broke off", "err", err)
			return "upstream_broke"
		}
	}
	if err := bw.Close(bhttp.Fields(resp.Trailer)); err != nil {
		return "client_gone"
	}
	if err := cw.Close(); err != nil {
		return "client_gone"
	}
	return "ok"
}
