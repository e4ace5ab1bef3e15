package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
)

// GrowOptions are the options of 'attestlog bench grow'; the counts are
// positive.
type GrowOptions struct {
	// Entries is the size to grow the log to, measuring every Step.
	Entries, Step int
	// Writers append concurrently.
	Writers int
	// Dir is the log's directory (empty: a temporary one, removed
	// afterwards).
	Dir string
	// Samples is how many proofs and lookups are timed after each step.
	Samples int
	// IndexMap is the log's index_map: "memory" or "file".
	IndexMap string
	// Storage is the log's storage (nil or Kind "posix": files in Dir;
	// "s3": the bucket and database it names, which must be empty).
	Storage *Storage
}

// Grow grows a log of its own to o.Entries entries in steps and reports,
// on stdout, how append, proofs, lookups, the index and a reindex cost as
// it grows.
func Grow(ctx context.Context, o GrowOptions, stdout, stderr io.Writer) error {
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "attestlog-grow-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	cfg, signer, err := growLogConfig(o.Dir, o.IndexMap, o.Storage)
	if err != nil {
		return err
	}
	l, err := logserver.Open(ctx, cfg, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close(ctx)
		return err
	}
	srv := httpserve.NewServer(l.Handler())
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Writers, MaxConnsPerHost: o.Writers}, Timeout: time.Minute}
	c, err := client.New(url, hc)
	if err != nil {
		return err
	}
	where := o.Dir
	if cfg.Storage.S3 != nil {
		where = fmt.Sprintf("S3 bucket %s on %s + MySQL (index and keys in %s)", cfg.Storage.S3.Bucket, cfg.Storage.S3.Endpoint, o.Dir)
	}
	fmt.Fprintf(stderr, "growing a log in %s to %d releases (4–8 KiB each), measuring every %d; no witness (the log alone)\n", where, o.Entries, o.Step)
	fmt.Fprintln(stderr, "cpu/entry is this process's CPU (user + system) while appending: the log and its writers' HTTP client; the entries are signed beforehand")
	fmt.Fprintf(stdout, "%9s %10s %9s %9s %10s %10s %10s %11s %9s\n", "entries", "append/s", "p50", "p99", "cpu/entry", "proof p99", "lookup p99", "index B/ent", "heap MB")
	gen := loadtest.NewGenerator(signer)
	var size uint64
	var digests []string // a measurement per appended entry, sampled for lookups
	for size < uint64(o.Entries) {
		n := min(o.Step, o.Entries-int(size))
		entries, err := loadtest.Pregenerate(ctx, gen, n, nil)
		if err != nil {
			return err
		}
		var top atomic.Uint64
		cpu0 := cpuTime()
		res := loadtest.Run(ctx, "grow", o.Writers, 24*time.Hour, entries, false, func(ctx context.Context, e []byte) error {
			r, err := c.Add(ctx, e)
			if err == nil {
				storeMax(&top, r.Index)
			}
			return err
		})
		cpu := cpuTime() - cpu0
		maxIdx := top.Load()
		if ctx.Err() != nil {
			break
		}
		if res.Errors > 0 {
			return fmt.Errorf("%d appends failed", res.Errors)
		}
		for i := 0; i < len(entries); i += max(1, len(entries)/o.Samples) {
			if p, err := statement.ParseEntry(entries[i]); err == nil && p.Release != nil {
				digests = append(digests, p.Release.Measurements.Primary())
			}
		}
		entries = nil
		// Wait until a checkpoint covers what was appended and the index
		// holds it, then time reads.
		for {
			if _, _, err := c.Proof(ctx, maxIdx); err == nil {
				if _, err := c.Entry(ctx, maxIdx); err == nil {
					break
				}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(100 * time.Millisecond)
		}
		size = maxIdx + 1
		proofP99 := timeP99(o.Samples, func() error {
			_, _, err := c.Proof(ctx, rand.Uint64N(size))
			return err
		})
		lookupP99 := timeP99(o.Samples, func() error {
			_, err := c.Lookup(ctx, digests[rand.IntN(len(digests))])
			return err
		})
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(stdout, "%9d %10.0f %9v %9v %10v %10v %10v %11.0f %9.0f\n", size, res.Rate(), res.P50.Round(time.Millisecond), res.P99.Round(time.Millisecond),
			(cpu / time.Duration(max(1, n))).Round(time.Microsecond), proofP99.Round(time.Microsecond*100), lookupP99.Round(time.Microsecond*100), float64(indexBytes(cfg.Index))/float64(size), float64(ms.HeapInuse)/1e6)
	}
	srv.Close()
	if err := l.Close(ctx); err != nil {
		return err
	}
	// A reindex from the tree: the index removed, the log opened again
	// (it indexes everything before serving).
	for _, f := range []string{cfg.Index, cfg.Index + "-wal", cfg.Index + "-shm"} {
		os.Remove(f)
	}
	t0 := time.Now()
	l, err = logserver.Open(ctx, cfg, nil)
	if err != nil {
		return err
	}
	d := time.Since(t0)
	defer l.Close(ctx)
	fmt.Fprintf(stdout, "reindex: %d entries in %.1f s = %.0f entries/s (index of %.0f bytes per entry)\n", size, d.Seconds(), float64(size)/d.Seconds(), float64(indexBytes(cfg.Index))/float64(size))
	return nil
}

// growLogConfig writes a log of its own in dir: a key, an operator, a
// policy trusting it, no witness.
func growLogConfig(dir, indexMap string, storage *Storage) (*logserver.Config, *statement.Signer, error) {
	st := &logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: filepath.Join(dir, "tiles")}}
	if storage != nil && storage.Kind != "posix" {
		var err error
		if st, err = storage.LogStorage(""); err != nil {
			return nil, nil, err
		}
	}
	keyPath := filepath.Join(dir, "log.key")
	if _, err := os.Stat(keyPath); err != nil {
		if _, err := keyfile.Generate(keyfile.KindLog, "bench.attestlog/grow", keyPath, ""); err != nil {
			return nil, nil, err
		}
	}
	op, err := statement.GenerateSigner(statement.AlgEd25519)
	if err != nil {
		return nil, nil, err
	}
	pol := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(pol, []byte("operator bench "+op.Public().String()+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	wp := filepath.Join(dir, "witnesses.txt")
	if err := os.WriteFile(wp, []byte("quorum none\n"), 0o644); err != nil {
		return nil, nil, err
	}
	cfg := &logserver.Config{Origin: "bench.attestlog/grow", Listen: "127.0.0.1:0", Key: keyPath,
		Storage: *st,
		Index:   filepath.Join(dir, "index.db"), Policy: pol, WitnessPolicy: wp, IndexMap: indexMap}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	return cfg, op, nil
}

// timeP99 runs f n times and returns the 99th percentile of its duration
// (failures count as what they took).
func timeP99(n int, f func() error) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		t0 := time.Now()
		f()
		ds[i] = time.Since(t0)
	}
	slices.Sort(ds)
	return ds[min(n*99/100, n-1)]
}

// indexBytes is the size of the SQLite index and its WAL.
func indexBytes(path string) int64 {
	var n int64
	for _, f := range []string{path, path + "-wal"} {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
