package logserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/attestlog/attestlog/internal/httpbody/httpbodytest"
	"github.com/attestlog/attestlog/log/api"
)

// TestUnreadableEntryDoesNotStopTheIndex puts entries in the tree that no
// statement parser reads (as another writer, or a bug, would) and requires
// the log to record them as unreadable and go on: later entries are
// indexed and found, /entry and /unreadable say what is wrong, a reindex
// completes, and a log whose index is rebuilt from scratch starts.
func TestUnreadableEntryDoesNotStopTheIndex(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	tl.add(t, release(t, tl.operator, measurement(1)))
	for _, garbage := range []string{`{"not":"a statement"}`, "\x00\xff binary " + strings.Repeat("x", 2000)} {
		if _, err := tl.Log.add(ctx, tessera.NewEntry([]byte(garbage)))(); err != nil {
			t.Fatal(err)
		}
	}
	after := measurement(2)
	last := tl.add(t, release(t, tl.operator, after))
	if last != 3 {
		t.Fatalf("release appended at %d, want 3", last)
	}
	check := func(when string) {
		t.Helper()
		if err := tl.waitIndexed(ctx, last); err != nil {
			t.Fatalf("%s: the index stopped: %v", when, err)
		}
		for _, i := range []uint64{1, 2} {
			info, err := tl.client.Entry(ctx, i)
			if err != nil || info.Kind != "unreadable" || info.Problem == "" || len(info.Problem) > 520 {
				t.Errorf("%s: entry %d = %+v, %v; want kind unreadable with a short problem", when, i, info, err)
			}
		}
		es, err := tl.client.Lookup(ctx, after)
		if err != nil || len(es.Entries) != 1 || es.Entries[0].Index != last {
			t.Errorf("%s: lookup of the release after the unreadable entries = %+v, %v", when, es, err)
		}
		resp, err := http.Get(tl.url + "/unreadable")
		if err != nil {
			t.Fatal(err)
		}
		var u api.UnreadableResponse
		err = json.NewDecoder(resp.Body).Decode(&u)
		resp.Body.Close()
		if err != nil || u.Total != 2 || len(u.Entries) != 2 || u.Entries[0].Index != 1 || u.Entries[1].Index != 2 {
			t.Errorf("%s: GET /unreadable = %+v, %v; want entries 1 and 2", when, u, err)
		}
	}
	check("live")
	if n, err := tl.Reindex(ctx); err != nil || n != last+1 {
		t.Fatalf("Reindex = %d, %v", n, err)
	}
	check("after reindex")

	resp, err := http.Get(tl.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "attestlog_log_unreadable_entries_total 4") {
		t.Errorf("metrics do not count the unreadable entries (2 live + 2 on reindex):\n%s", grepLines(string(m), "unreadable"))
	}

	// A log whose index is gone rebuilds it before serving, over the
	// unreadable entries too.
	tl.Log.Close(context.Background())
	if err := os.Remove(tl.cfg.Index); err != nil {
		t.Fatal(err)
	}
	tl.start(t)
	check("after a restart with a fresh index")
	if i := tl.add(t, release(t, tl.operator, measurement(3))); i != last+1 {
		t.Errorf("next release appended at %d, want %d", i, last+1)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBrokenBodies: a body shorter than its Content-Length, or slower
// than the read timeout, is the client's fault: 400 and 408, nothing
// appended, no ERROR line.
func TestBrokenBodies(t *testing.T) {
	tl := newTestLog(t, nil)
	var logs bytes.Buffer
	var mu sync.Mutex
	// Reopen the log with a logger the test reads.
	tl.Log.Close(context.Background())
	l, err := Open(t.Context(), tl.cfg, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	tl.Log = l
	tl2 := tl
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tl2.Handler(), ReadTimeout: 300 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	before := tl2.size(t)
	if code := httpbodytest.Short(t, ln.Addr().String(), "/add"); code != http.StatusBadRequest {
		t.Errorf("short body: %d, want 400", code)
	}
	if code := httpbodytest.Slow(t, ln.Addr().String(), "/add"); code != http.StatusRequestTimeout {
		t.Errorf("slow body: %d, want 408", code)
	}
	if n := tl2.size(t); n != before {
		t.Errorf("the log grew from %d to %d entries", before, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("broken bodies logged as server errors:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
