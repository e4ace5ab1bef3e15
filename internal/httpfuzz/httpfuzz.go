// Package httpfuzz drives an http.Handler with arbitrary requests for the
// fuzz targets of attestlog's servers: whatever the method, path, query
// and body, the handler must answer — no panic, no 5xx other than a 503
// that says when to retry — within a bounded time.
package httpfuzz

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Methods are the methods the fuzz targets pick from (by a byte of input).
var Methods = []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, "PATCH", "BREW"}

// Limit bounds how long one request may take.
const Limit = 10 * time.Second

// Serve sends h the request method target body (target is a path with an
// optional query) and checks the answer. It returns nil when target is
// not a request URI an HTTP server would pass to a handler.
func Serve(t *testing.T, h http.Handler, method byte, target string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\x00#") {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), Limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, Methods[int(method)%len(Methods)], "http://127.0.0.1"+target, bytes.NewReader(body))
	if err != nil || req.URL.Host != "127.0.0.1" {
		return nil
	}
	req.RequestURI = target
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, req)
	if d := time.Since(start); d > Limit {
		t.Fatalf("%s %q took %v", req.Method, target, d)
	}
	if w.Code >= 500 && !(w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "") {
		t.Fatalf("%s %q (%d-byte body) = %d: %.300s", req.Method, target, len(body), w.Code, w.Body.String())
	}
	return w
}
