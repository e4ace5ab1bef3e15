//go:build linux

package logserver

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
)

// tmpfs mounts a tmpfs of size bytes at a new directory (root only; the
// test is skipped, or fails under ATTESTLOG_STRICT=1, without it) and
// unmounts it when the test ends.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		testenv.Missing(t, "a tmpfs mount (root)", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file in dir until the file system is full, and returns a
// function that removes it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDiskFullPOSIX fills the file system of the POSIX storage (a small
// tmpfs) under a running log: POST /add answers 503 with Retry-After and
// says why; nothing acknowledged before is lost; once space returns,
// appends resume and every entry acknowledged before, during and after
// reads back from the tree.
func TestDiskFullPOSIX(t *testing.T) {
	dir := tmpfs(t, 4<<20)
	tl := newTestLog(t, &Storage{POSIX: &POSIXStorage{Dir: filepath.Join(dir, "tiles")}})
	ctx := t.Context()
	acked := map[uint64][]byte{}
	for i := range 10 {
		e := release(t, tl.operator, measurement(i))
		acked[tl.add(t, e)] = mustEntry(t, e)
	}
	if _, _, err := tl.client.WaitProof(ctx, 9); err != nil {
		t.Fatal(err)
	}

	free := fill(t, dir)
	post := func(body []byte) (int, string, http.Header) {
		resp, err := http.Post(tl.url+"/add", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	refused := 0
	var refusedBody []byte
	for i := 100; i < 110; i++ {
		e := release(t, tl.operator, measurement(i))
		code, msg, h := post(e)
		switch code {
		case http.StatusOK:
			// Acknowledged while full (Tessera may have held it in
			// memory): it must be in the tree in the end.
			var idx uint64
			if r, err := tl.client.Add(ctx, e); err == nil && r.Duplicate {
				idx = r.Index
				acked[idx] = mustEntry(t, e)
			} else {
				t.Errorf("acknowledged while the disk is full, then %+v, %v", r, err)
			}
		case http.StatusServiceUnavailable:
			refused++
			refusedBody = e
			if h.Get("Retry-After") == "" || !strings.Contains(msg, "no space left on device") {
				t.Errorf("disk full: 503 with Retry-After %q and %q; want Retry-After and the reason", h.Get("Retry-After"), msg)
			}
		default:
			t.Errorf("disk full: POST /add = %d %s; want 503", code, msg)
		}
	}
	if refused == 0 {
		t.Fatal("no append was refused with the disk full")
	}
	t.Logf("with the disk full, %d of 10 appends were refused with 503", refused)

	free()
	deadline := time.Now().Add(60 * time.Second)
	for i := 200; ; i++ {
		e := release(t, tl.operator, measurement(i))
		code, msg, _ := post(e)
		if code == http.StatusOK {
			r, err := tl.client.Add(ctx, e)
			if err != nil || !r.Duplicate {
				t.Fatalf("resubmitted = %+v, %v", r, err)
			}
			acked[r.Index] = mustEntry(t, e)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends did not resume within 60 s of space returning: %d %s", code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A statement refused while the disk was full is not half in the
	// log: submitted again, it is appended (not a duplicate).
	if r, err := tl.client.Add(ctx, refusedBody); err != nil || r.Duplicate {
		t.Errorf("a statement refused with the disk full, submitted again = %+v, %v; want appended", r, err)
	} else {
		acked[r.Index] = mustEntry(t, refusedBody)
	}
	var last uint64
	for idx := range acked {
		last = max(last, idx)
	}
	if _, _, err := tl.client.WaitProof(ctx, last); err != nil {
		t.Fatal(err)
	}
	all := tl.treeEntries(t)
	for idx, e := range acked {
		if idx >= uint64(len(all)) || !bytes.Equal(all[idx], e) {
			t.Errorf("acknowledged entry %d is not in the tree as submitted", idx)
		}
	}
	checkWithTorchwood(t, tl.url, tl.policy, nil)
}
