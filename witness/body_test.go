package witness

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/httpbody/httpbodytest"
	"github.com/attestlog/attestlog/internal/testenv"
)

// TestBrokenBodies: on POST /add-checkpoint, a body shorter than its
// Content-Length, or slower than request_timeout, is the client's fault —
// 400 and 408 from the server Serve runs, never a 500 or an ERROR line.
func TestBrokenBodies(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Key: writeKey(t, dir, "witness.example/w1"), DB: filepath.Join(dir, "witness.db"), RequestTimeout: 300 * time.Millisecond}
	buf := new(testenv.Buffer)
	w, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, w, ln) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
	if code := httpbodytest.Short(t, ln.Addr().String(), "/add-checkpoint"); code != http.StatusBadRequest {
		t.Errorf("short body: %d, want 400", code)
	}
	if code := httpbodytest.Slow(t, ln.Addr().String(), "/add-checkpoint"); code != http.StatusRequestTimeout {
		t.Errorf("slow body: %d, want 408", code)
	}
	if strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("broken bodies logged as server errors:\n%s", buf.String())
	}
}
