package streamproxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// serve runs h on loopback and returns its URL.
func serve(t *testing.T, h http.Handler) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// relay is Handler in front of upstream, twice (as agent and proxy are).
func relay(t *testing.T, upstream *url.URL) *url.URL {
	t.Helper()
	for range 2 {
		upstream = serve(t, Handler(httputil.NewSingleHostReverseProxy(upstream)))
	}
	return upstream
}

// TestEventsUnbuffered: each event reaches the client through two relays
// before the upstream writes the next one — nothing waits for more data
// to share a flush with. Chunked and with a Content-Type other than
// text/event-stream, so ReverseProxy's own rule for event streams is not
// what flushes.
func TestEventsUnbuffered(t *testing.T) {
	got := make(chan struct{})
	const events = 20
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range events {
			fmt.Fprintf(w, "{\"event\":%d}\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	resp, err := http.Get(relay(t, up).String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range events {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("{\"event\":%d}\n", i) {
			t.Fatalf("event %d = %q, %v (held back by a relay?)", i, line, err)
		}
		got <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("after the events: %q", rest)
	}
}

// TestBulkIdentical: 8 MiB of random bytes in writes of odd sizes,
// flushed at random, arrive identical through two relays, with and
// without a Content-Length.
func TestBulkIdentical(t *testing.T) {
	data := make([]byte, 8<<20+12345)
	rand.Read(data)
	want := sha256.Sum256(data)
	for _, length := range []bool{false, true} {
		up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if length {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			}
			for off, i := 0, 0; off < len(data); i++ {
				n := min(len(data)-off, 1+(i*7919)%100000)
				w.Write(data[off : off+n])
				off += n
				if i%3 == 0 {
					w.(http.Flusher).Flush()
				}
			}
		}))
		resp, err := http.Get(relay(t, up).String())
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("content-length %v: got %d bytes (%v), sha256 %x, want %d bytes, %x", length, n, err, h.Sum(nil), len(data), want)
		}
	}
}

// TestClientLeaves: a client that stops reading a stream mid-way ends
// the upstream's response (the read-ahead does not keep pulling).
func TestClientLeaves(t *testing.T) {
	ended := make(chan error, 1)
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				ended <- err
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	resp, err := http.Get(relay(t, up).String())
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, resp.Body, 1<<20)
	resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream still writes 10 s after the client left")
	}
}
