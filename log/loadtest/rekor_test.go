package loadtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness/driver"
)

// TestRekorPeer builds Rekor v2's POSIX server from the module graph,
// logs two digests in it with their Ed25519ph signatures and gets each
// back with an inclusion proof; a request whose signature is not over its
// digest is refused.
func TestRekorPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rekor-server")
	}
	testenv.LookPath(t, "go")
	dir := t.TempDir()
	ctx := context.Background()
	bin, err := driver.BuildPeer(ctx, dir, RekorPkg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := StartRekor(ctx, bin, dir, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reqs, err := RekorRequests([][]byte{[]byte("release one"), []byte("release two")})
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range reqs {
		if err := r.Add(ctx, http.DefaultClient, q); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	// Request 0's digest with request 1's signature.
	bad := strings.Replace(string(reqs[0]), sigOf(t, reqs[0]), sigOf(t, reqs[1]), 1)
	if err := r.Add(ctx, http.DefaultClient, []byte(bad)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a signature over another digest: %v, want a 400", err)
	}
}

func sigOf(t *testing.T, req []byte) string {
	s := string(req)
	i := strings.Index(s, `"content":"`)
	if i < 0 {
		t.Fatalf("no content in %s", s)
	}
	s = s[i+len(`"content":"`):]
	return s[:strings.Index(s, `"`)]
}
