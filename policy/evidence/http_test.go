//go:build !js

package evidence

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sevtd "github.com/google/go-sev-guest/verify/testdata"
)

// The HTTP side of evidence (http.go), which the WebAssembly client
// leaves out.

func TestHandlerAndFetch(t *testing.T) {
	var gotNonce []byte
	src := SourceFunc(func(_ context.Context, nonce []byte) (*Bundle, error) {
		gotNonce = nonce
		return &Bundle{Format: Format, Platform: SEVSNP, Report: sevtd.AttestationBytes, Proof: "c2sp.org/tlog-proof@v1\n"}, nil
	})
	srv := httptest.NewServer(Handler(src, nil))
	defer srv.Close()
	nonce := bytes.Repeat([]byte{0xaa}, 16)
	b, err := Fetch(context.Background(), srv.Client(), srv.URL, nonce)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	if !bytes.Equal(gotNonce, nonce) || b.Proof != "c2sp.org/tlog-proof@v1\n" || !bytes.Equal(b.Report, sevtd.AttestationBytes) {
		t.Errorf("Fetch = %+v, server saw nonce %x", b, gotNonce)
	}
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"", http.StatusBadRequest},
		{"?nonce=abc", http.StatusBadRequest},
		{"?nonce=" + hex.EncodeToString(make([]byte, 8)), http.StatusBadRequest},
	} {
		resp, err := srv.Client().Get(srv.URL + Path + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s = %d, want %d", tc.query, resp.StatusCode, tc.code)
		}
	}
	// Browsers on other origins may read it (no credentials).
	if resp, err := srv.Client().Get(srv.URL + Path + "?nonce=" + hex.EncodeToString(nonce)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("CORS: Allow-Origin %q, want *", got)
		}
	}
	resp, err := srv.Client().Post(srv.URL+Path+"?nonce="+hex.EncodeToString(nonce), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", resp.StatusCode)
	}
	failing := httptest.NewServer(Handler(SourceFunc(func(context.Context, []byte) (*Bundle, error) {
		return nil, errors.New("no hardware")
	}), nil))
	defer failing.Close()
	if _, err := Fetch(context.Background(), failing.Client(), failing.URL, nonce); !errors.Is(err, ErrFetch) || !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "500") {
		t.Errorf("Fetch(failing source) = %v, want ErrFetch and ErrStatus with 500", err)
	}
}

// TestFetchErrors: each way a fetch fails is an error callers can tell
// apart with errors.Is, the HTTP client's own included.
func TestFetchErrors(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xaa}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("nonce") {
		case hex.EncodeToString(nonce):
			w.Write(bytes.Repeat([]byte{' '}, MaxBundleSize+1))
		default:
			w.Write([]byte(`{"format": 1}`))
		}
	}))
	defer srv.Close()
	if _, err := Fetch(context.Background(), srv.Client(), srv.URL, nonce); !errors.Is(err, ErrFetch) || !errors.Is(err, ErrTooLarge) {
		t.Errorf("Fetch(too large) = %v, want ErrFetch and ErrTooLarge", err)
	}
	if _, err := Fetch(context.Background(), srv.Client(), srv.URL, bytes.Repeat([]byte{0xbb}, 16)); !errors.Is(err, ErrMalformed) || errors.Is(err, ErrFetch) {
		t.Errorf("Fetch(malformed) = %v, want ErrMalformed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, srv.Client(), srv.URL, nonce); !errors.Is(err, ErrFetch) || !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch(canceled) = %v, want ErrFetch wrapping context.Canceled", err)
	}
}
