package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ConflictError is returned by Client.AddCheckpoint when the witness answered
// 409 Conflict: its latest cosigned checkpoint has Size, not the old size the
// request claimed. Retry with OldSize = Size and a proof from Size.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness has cosigned size %d (409 Conflict); retry from that size", e.Size)
}

// StatusError is returned by Client for any other non-200 answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d %s: %s", e.Code, http.StatusText(e.Code), strings.TrimSpace(e.Body))
}

// ErrNotFound is returned (wrapped) by Client.Checkpoint when the witness has
// never cosigned a checkpoint for the origin.
var ErrNotFound = errors.New("witness has no checkpoint for this origin")

// Client talks to one witness. The zero HTTP uses http.DefaultClient.
type Client struct {
	// SubmissionPrefix is the URL that add-checkpoint is appended to, for
	// example "http://127.0.0.1:7380".
	SubmissionPrefix string
	// MonitoringPrefix is the URL that "<origin hash>/checkpoint" is appended
	// to; empty means the same as SubmissionPrefix.
	MonitoringPrefix string
	HTTP             *http.Client
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// AddCheckpoint posts req and returns the cosignature lines of a 200 answer.
// A 409 is a *ConflictError, any other status a *StatusError.
func (c *Client) AddCheckpoint(ctx context.Context, req *AddCheckpointRequest) ([]byte, error) {
	u := strings.TrimSuffix(c.SubmissionPrefix, "/") + "/add-checkpoint"
	resp, body, err := c.do(ctx, http.MethodPost, u, bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, fmt.Errorf("add-checkpoint: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if !bytes.HasPrefix(body, []byte("— ")) || !bytes.HasSuffix(body, []byte("\n")) {
			return nil, fmt.Errorf("witness answered 200 with %q, not note signature lines", body)
		}
		return body, nil
	case http.StatusConflict:
		if ct := resp.Header.Get("Content-Type"); ct != ContentTypeTreeSize {
			return nil, &StatusError{Code: resp.StatusCode, Body: string(body)}
		}
		size, err := ParseConflictBody(body)
		if err != nil {
			return nil, fmt.Errorf("parsing 409 body: %w", err)
		}
		return nil, &ConflictError{Size: size}
	default:
		return nil, &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
}

// Checkpoint fetches the latest cosigned checkpoint the witness serves for
// origin (GET <monitoring prefix>/<origin hash>/checkpoint).
func (c *Client) Checkpoint(ctx context.Context, origin string) ([]byte, error) {
	prefix := c.MonitoringPrefix
	if prefix == "" {
		prefix = c.SubmissionPrefix
	}
	u := strings.TrimSuffix(prefix, "/") + "/" + OriginHash(origin) + "/checkpoint"
	resp, body, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %q", ErrNotFound, origin)
	default:
		return nil, &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
}

// do sends one request and reads the answer, at most
// DefaultMaxRequestBytes of it.
func (c *Client) do(ctx context.Context, method, url string, body io.Reader) (*http.Response, []byte, error) {
	hr, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.http().Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxRequestBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp, b, nil
}
