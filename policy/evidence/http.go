//go:build !js

// The HTTP side of evidence: an enclave serves it, a client fetches it.
// Not in the WebAssembly client, which makes no request (the JavaScript
// around it fetches) and so links no net/http.

package evidence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// Path is where an enclave serves its evidence:
// GET Path?nonce=HEX returns a JSON [Bundle].
const Path = "/.well-known/attestlog/evidence"

// ContentType is the media type of a JSON bundle.
const ContentType = "application/json"

// Source produces evidence for a client's nonce.
type Source interface {
	// Evidence returns a bundle whose REPORT_DATA is
	// ReportData(nonce, bundle.ChannelKey). It is called once per request;
	// nothing is retried.
	Evidence(ctx context.Context, nonce []byte) (*Bundle, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context, nonce []byte) (*Bundle, error)

// Evidence calls f.
func (f SourceFunc) Evidence(ctx context.Context, nonce []byte) (*Bundle, error) {
	return f(ctx, nonce)
}

// Handler serves GET Path?nonce=HEX from s. A missing or malformed nonce
// is 400; a failure of s is 500. One log line per request.
func Handler(s Source, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		// Any page may ask: the evidence is public and answers the
		// caller's own nonce (a browser client on another origin, such
		// as the npm package's, needs this to read it). No credentials.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		nonce, err := ParseNonce(r.URL.Query().Get("nonce"))
		if err != nil {
			logger.Info("evidence request", "status", http.StatusBadRequest, "error", err)
			http.Error(w, "nonce query parameter: "+err.Error(), http.StatusBadRequest)
			return
		}
		b, err := s.Evidence(r.Context(), nonce)
		var body []byte
		if err == nil {
			body, err = b.Marshal()
		}
		if err != nil {
			logger.Error("evidence request", "status", http.StatusInternalServerError, "error", err)
			http.Error(w, "could not produce evidence", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
		logger.Debug("evidence request", "status", http.StatusOK, "platform", b.Platform, "nonce", hex.EncodeToString(nonce))
	})
	return http.MaxBytesHandler(mux, 8<<10)
}

var (
	// ErrFetch is wrapped by Fetch errors that come from the server or
	// the connection to it (beside, with %w, the client's own error:
	// errors.Is sees a timeout, a refused redirect, …).
	ErrFetch = errors.New("fetching evidence")
	// ErrStatus is wrapped (with ErrFetch) when the server answers with
	// a status other than 200 OK.
	ErrStatus = errors.New("answer is not 200 OK")
	// ErrTooLarge is wrapped (with ErrFetch) when the answer is larger
	// than MaxBundleSize.
	ErrTooLarge = errors.New("answer too large")
	// ErrNotFound is wrapped (with ErrFetch and ErrStatus) when the
	// server answers 404 Not Found: for FetchDocument, an enclave that
	// serves no attestation document (one without an enclave agent).
	ErrNotFound = errors.New("not found")
)

// Fetch asks the enclave at baseURL (scheme and host, optionally a path
// prefix) for evidence bound to nonce, and parses the answer strictly. It
// does not verify it. c may be nil for http.DefaultClient. Besides
// ErrFetch, ErrStatus and ErrTooLarge, a malformed answer is
// ErrMalformed.
func Fetch(ctx context.Context, c *http.Client, baseURL string, nonce []byte) (*Bundle, error) {
	if err := CheckNonce(nonce); err != nil {
		return nil, err
	}
	return fetch(ctx, c, baseURL, Path, url.Values{"nonce": {hex.EncodeToString(nonce)}}.Encode())
}

// FetchDocument asks the enclave agent at baseURL for its attestation
// document (DocumentPath: no nonce, no hardware report spent) and parses
// it strictly; it does not verify it. Errors are Fetch's; an enclave
// without an agent answers ErrNotFound.
func FetchDocument(ctx context.Context, c *http.Client, baseURL string) (*Bundle, error) {
	return fetch(ctx, c, baseURL, DocumentPath, "")
}

func fetch(ctx context.Context, c *http.Client, baseURL, path, query string) (*Bundle, error) {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("evidence URL %q: want http(s)://host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", ContentType)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w: %w: %s", ErrFetch, ErrStatus, ErrNotFound, u.Redacted())
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %w: %s: %s", ErrFetch, ErrStatus, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	if len(body) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %w: more than %d bytes", ErrFetch, ErrTooLarge, MaxBundleSize)
	}
	return ParseBundle(body)
}
