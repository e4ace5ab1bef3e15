package bench_test

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/witness"
	"github.com/attestlog/attestlog/witness/bench"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "witness.example/bench")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "witness.key")
	if err := os.WriteFile(key, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := witness.Open(ctx, witness.Config{Key: key, DB: filepath.Join(dir, "w.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	target := bench.Target{Name: "attestlog", URL: srv.URL, AddLog: w.AddLog}

	for _, opts := range []bench.Options{
		{Logs: 5, Duration: 200 * time.Millisecond, Concurrency: 3, OriginPrefix: "bench.example/closed"},
		{Logs: 5, Duration: 200 * time.Millisecond, Rate: 20, OriginPrefix: "bench.example/open"},
	} {
		res, err := bench.Run(ctx, target, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Cosignatures == 0 || res.Errors != 0 || res.Conflicts != 0 || res.P50 > res.P99 || res.P99 > res.Max {
			t.Errorf("Run(%+v) = %v", opts, res)
		}
		t.Log(res)
	}
	// Every log advanced with proofs the witness accepted.
	logs, err := w.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if l.Size < 2 {
			t.Errorf("log %s only reached size %d", l.Origin, l.Size)
		}
	}
}
