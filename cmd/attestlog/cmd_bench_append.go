package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
)

func init() {
	register("bench append", "load a log with signed releases; report entries/s and latency", runBenchAppend)
}

func runBenchAppend(args []string) error {
	fs := newFlagSet("bench append", "--log URL --key operator.key [--writers N] [--duration D] [--baseline tessera]")
	logURL := fs.String("log", "", "URL of the log to load (e.g. the one 'attestlog up' runs)")
	keyPath := fs.String("key", "", "operator key the log trusts (e.g. attestlog-data/operator.key)")
	writers := fs.Int("writers", 256, "concurrent writers")
	duration := fs.Duration("duration", 10*time.Second, "length of each run")
	baseline := fs.String("baseline", "", `"tessera": also run a bare Tessera POSIX appender on the same kind of entries, and print the ratio`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *keyPath == "" || *writers <= 0 || *duration <= 0 {
		fmt.Fprintln(fs.Output(), "--log and --key are required; --writers and --duration must be positive")
		fs.Usage()
		return errUsage
	}
	if *baseline != "" && *baseline != "tessera" {
		fmt.Fprintf(fs.Output(), "--baseline %q: only tessera is supported\n", *baseline)
		return errUsage
	}
	signer, err := statement.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *writers, MaxConnsPerHost: *writers}, Timeout: time.Minute}
	c, err := client.New(*logURL, hc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loading %s with %d writers for %v…\n", *logURL, *writers, *duration)
	var maxIdx atomic.Uint64
	ours := loadtest.Run(ctx, "attestlog", *writers, *duration, loadtest.NewGenerator(signer), func(ctx context.Context, e []byte) error {
		r, err := c.Add(ctx, e)
		if err == nil {
			for old := maxIdx.Load(); r.Index > old && !maxIdx.CompareAndSwap(old, r.Index); old = maxIdx.Load() {
			}
		}
		return err
	})
	fmt.Println(ours)
	if *baseline == "" {
		return nil
	}
	// Let the log finish integrating and indexing what it acknowledged
	// before the baseline runs on the same cores.
	fmt.Fprintf(stderr, "waiting for the log to index entry %d…\n", maxIdx.Load())
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	for {
		if _, err := c.Entry(wctx, maxIdx.Load()); err == nil || wctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wcancel()

	dir, err := os.MkdirTemp("", "attestlog-bench-tessera-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base, err := runTesseraBaseline(ctx, dir, *writers, *duration, loadtest.NewGenerator(signer))
	if err != nil {
		return err
	}
	fmt.Println(base)
	fmt.Printf("ratio      attestlog/tessera throughput = %.2f×  (p99 %v vs %v)\n",
		ours.Rate()/base.Rate(), ours.P99.Round(time.Microsecond), base.P99.Round(time.Microsecond))
	return nil
}

// runTesseraBaseline appends the same kind of entries to a bare Tessera
// POSIX log in dir, with the log server's default batching and checkpoint
// settings and no witnesses: no HTTP, no parsing, no signature checks.
func runTesseraBaseline(ctx context.Context, dir string, writers int, d time.Duration, gen *loadtest.Generator) (loadtest.Result, error) {
	g, err := keyfile.Generate(keyfile.KindLog, "bench.attestlog/tessera", dir+"/log.key", "")
	if err != nil {
		return loadtest.Result{}, err
	}
	s, _, err := keyfile.LoadNoteSigner(g.Path)
	if err != nil {
		return loadtest.Result{}, err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir + "/tiles"})
	if err != nil {
		return loadtest.Result{}, err
	}
	tctx, tcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer tcancel()
	app, shutdown, _, err := tessera.NewAppender(tctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).
		WithBatching(logserver.DefaultBatchMaxSize, logserver.DefaultBatchMaxAge).
		WithCheckpointInterval(logserver.DefaultCheckpointInterval).
		WithPushback(logserver.DefaultPushback))
	if err != nil {
		return loadtest.Result{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown(sctx)
	}()
	fmt.Fprintf(stderr, "loading a bare Tessera POSIX appender with %d writers for %v…\n", writers, d)
	return loadtest.Run(ctx, "tessera", writers, d, gen, func(ctx context.Context, e []byte) error {
		for {
			_, err := app.Add(ctx, tessera.NewEntry(e))()
			if err == nil || ctx.Err() != nil {
				return err
			}
			if !errorsIsPushback(err) {
				return err
			}
			time.Sleep(100 * time.Millisecond) // what the log's clients do on 503
		}
	}), nil
}

func errorsIsPushback(err error) bool { return errors.Is(err, tessera.ErrPushback) }
