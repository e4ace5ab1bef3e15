// Package client talks to an attestlog log over HTTP: submitting signed
// statements, fetching proofs and looking up measurements.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
)

// Client is a client of one log.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// New returns a client of the log at baseURL (e.g. "http://127.0.0.1:8080").
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("log URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: u, hc: hc}, nil
}

// HTTPError is a non-2xx answer of the log.
type HTTPError struct {
	Code       int
	Msg        string
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("log answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// IsNotFound reports whether err is a 404 from the log.
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Code == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u := c.base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path, "/")})
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u = c.base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path[:i], "/"), RawQuery: path[i+1:]})
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		he := &HTTPError{Code: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			he.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, he
	}
	return b, nil
}

// Add submits a signed statement (a DSSE envelope) and returns its index.
// A 503 (the log pushing back) is retried, honouring Retry-After, until ctx
// ends.
func (c *Client) Add(ctx context.Context, entry []byte) (api.AddResponse, error) {
	for {
		b, err := c.do(ctx, http.MethodPost, "add", entry)
		var he *HTTPError
		if errors.As(err, &he) && he.Code == http.StatusServiceUnavailable {
			wait := max(he.RetryAfter, 100*time.Millisecond)
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return api.AddResponse{}, fmt.Errorf("%w (last answer: %v)", ctx.Err(), err)
			}
		}
		if err != nil {
			return api.AddResponse{}, err
		}
		r, err := api.ParseAddResponse(b)
		if err != nil {
			return api.AddResponse{}, err
		}
		return *r, nil
	}
}

// Checkpoint returns the latest published checkpoint, with cosignatures.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "checkpoint", nil)
}

// Proof returns the proof of entry idx, parsed and raw.
func (c *Client) Proof(ctx context.Context, idx uint64) (*tlogproof.Proof, []byte, error) {
	return c.proof(ctx, "proof?index="+strconv.FormatUint(idx, 10))
}

// ProofByMeasurement returns the proof of the newest release with the
// measurement m (hex).
func (c *Client) ProofByMeasurement(ctx context.Context, m string) (*tlogproof.Proof, []byte, error) {
	return c.proof(ctx, "proof?measurement="+url.QueryEscape(m))
}

// IndexProof returns the log's index proof for a digest (hex) of type t:
// every entry about it, or its absence, under an index checkpoint. It is
// not verified here (vindex.Proof.VerifyProof, or policy/verify).
func (c *Client) IndexProof(ctx context.Context, t vindex.KeyType, digest string) (*vindex.Proof, []byte, error) {
	return c.indexProof(ctx, "index/proof?type="+url.QueryEscape(string(t))+"&digest="+url.QueryEscape(digest))
}

// IdentityProof returns the log's index proof for the identity of release
// idx: every release with that identity and every revocation of one of
// them (what a client decides "not revoked" on). Not verified here.
func (c *Client) IdentityProof(ctx context.Context, idx uint64) (*vindex.Proof, []byte, error) {
	return c.indexProof(ctx, "index/proof?release="+strconv.FormatUint(idx, 10))
}

func (c *Client) indexProof(ctx context.Context, path string) (*vindex.Proof, []byte, error) {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := vindex.ParseProof(b)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

func (c *Client) proof(ctx context.Context, path string) (*tlogproof.Proof, []byte, error) {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

// proofPoll is how often WaitProof asks again: a checkpoint covering the
// entry comes within a checkpoint interval, and each poll costs the log
// one proof request.
const proofPoll = 50 * time.Millisecond

// WaitProof polls for the proof of entry idx until a witnessed checkpoint
// covers it or ctx ends.
func (c *Client) WaitProof(ctx context.Context, idx uint64) (*tlogproof.Proof, []byte, error) {
	for {
		p, raw, err := c.Proof(ctx, idx)
		var he *HTTPError
		if errors.As(err, &he) && (he.Code == http.StatusNotFound && he.RetryAfter > 0 || he.Code == http.StatusServiceUnavailable) {
			select {
			case <-time.After(proofPoll):
				continue
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("waiting for a witnessed checkpoint covering entry %d: %w (last answer: %v)", idx, ctx.Err(), err)
			}
		}
		return p, raw, err
	}
}

// Lookup returns the entries with the measurement or artifact digest v.
func (c *Client) Lookup(ctx context.Context, v string) (*api.LookupResponse, error) {
	b, err := c.do(ctx, http.MethodGet, "lookup?measurement="+url.QueryEscape(v), nil)
	if err != nil {
		return nil, err
	}
	return api.ParseLookupResponse(b)
}

// Entry returns the index's description of entry idx.
func (c *Client) Entry(ctx context.Context, idx uint64) (*api.EntryInfo, error) {
	b, err := c.do(ctx, http.MethodGet, "entry/"+strconv.FormatUint(idx, 10), nil)
	if err != nil {
		return nil, err
	}
	return api.ParseEntryInfo(b)
}
