package bench

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

// TestSoakConsistency runs the soak's final check against a real log
// holding one release: it passes when the acknowledged index holds the
// acknowledged entry, and counts the entry missing when the index holds
// another, while the root recomputed from the tiles still matches the
// checkpoint's.
func TestSoakConsistency(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	cfg, signer, err := growLogConfig(dir, "memory", nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := logserver.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	c, err := client.New(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	e, err := loadtest.NewGenerator(signer).Next()
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Add(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	p, err := statement.ParseEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := p.Entry()
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := keyfile.Public(keyfile.KindLog, cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		hash        [32]byte
		wantMissing int
	}{
		{"the acknowledged entry", sha256.Sum256(stored), 0},
		{"another entry", sha256.Sum256([]byte("not the entry")), 1},
	} {
		ak := &acked{entries: map[uint64][32]byte{r.Index: tc.hash}, order: []uint64{r.Index}}
		got := soakConsistency(ctx, http.DefaultClient, srv.URL, pol, ak)
		if got.Error != "" || got.Acked != 1 || got.Missing != tc.wantMissing || !got.RootMatch || got.TreeSize <= r.Index {
			t.Errorf("soakConsistency with %s at index %d = %+v, want %d missing, the root matching", tc.name, r.Index, got, tc.wantMissing)
		}
	}
}
