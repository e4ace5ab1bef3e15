package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
)

func init() {
	register("bench append", "load a log with signed releases; report entries/s and latency", runBenchAppend)
}

func runBenchAppend(args []string) error {
	fs := newFlagSet("bench append", "--log URL --key operator.key [--writers N] [--duration D] [--entries N] [--baseline tessera]")
	logURL := fs.String("log", "", "URL of the log to load (e.g. the one 'attestlog up' runs)")
	keyPath := fs.String("key", "", "operator key the log trusts (e.g. attestlog-data/operator.key)")
	writers := fs.Int("writers", 256, "concurrent writers")
	duration := fs.Duration("duration", 10*time.Second, "length of each run")
	nEntries := fs.Int("entries", 60000, "releases to sign before the runs (about 6 KB each in memory); the log gets each once, in order, until --duration ends; the baselines, which do not detect duplicates, get the same ones, cycling through them")
	baseline := fs.String("baseline", "", "`LIST` of baselines to run after the log, on the same entries, printing the ratio to each: \"tessera\" (a bare Tessera POSIX appender in this process) and/or \"floor\" (HTTP + envelope decode + one signature check + bare Tessera), e.g. tessera,floor")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this (client) process's load run against the log to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *keyPath == "" || *writers <= 0 || *duration <= 0 || *nEntries <= 0 {
		fmt.Fprintln(fs.Output(), "--log and --key are required; --writers, --duration and --entries must be positive")
		fs.Usage()
		return errUsage
	}
	var baselines []string
	if *baseline != "" {
		for b := range strings.SplitSeq(*baseline, ",") {
			if b != "tessera" && b != "floor" {
				fmt.Fprintf(fs.Output(), "--baseline %q: the baselines are tessera and floor\n", b)
				return errUsage
			}
			baselines = append(baselines, b)
		}
	}
	signer, err := keyfile.LoadSigner(*keyPath)
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
	// Sign every entry first: an operator signs a release once, offline,
	// and signing during the run would take CPU from the log under test.
	fmt.Fprintf(stderr, "signing %d releases…\n", *nEntries)
	entries, err := loadtest.Pregenerate(ctx, loadtest.NewGenerator(signer), *nEntries, func(n int) {
		fmt.Fprintf(stderr, "  %d/%d\n", n, *nEntries)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loading %s with %d writers for %v…\n", *logURL, *writers, *duration)
	var maxIdx atomic.Uint64
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	ours := loadtest.Run(ctx, "attestlog", *writers, *duration, entries, false, func(ctx context.Context, e []byte) error {
		r, err := c.Add(ctx, e)
		if err == nil {
			for old := maxIdx.Load(); r.Index > old && !maxIdx.CompareAndSwap(old, r.Index); old = maxIdx.Load() {
			}
		}
		return err
	})
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	fmt.Println(ours)
	if len(baselines) == 0 {
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

	for _, b := range baselines {
		dir, err := os.MkdirTemp("", "attestlog-bench-"+b+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		var res loadtest.Result
		switch b {
		case "tessera":
			res, err = runTesseraBaseline(ctx, dir, *writers, *duration, entries)
		case "floor":
			res, err = runFloorBaseline(ctx, dir, *writers, *duration, entries, signer.Public(), hc)
		}
		if err != nil {
			return err
		}
		fmt.Println(res)
		fmt.Printf("ratio      attestlog/%s throughput = %.2f×  (p99 %v vs %v)\n",
			b, ours.Rate()/res.Rate(), ours.P99.Round(time.Microsecond), res.P99.Round(time.Microsecond))
	}
	return nil
}

// newBareAppender returns a Tessera POSIX appender in dir with the log
// server's default batching, checkpoint and pushback settings and no
// witnesses.
func newBareAppender(ctx context.Context, dir string) (*tessera.Appender, func(), error) {
	g, err := keyfile.Generate(keyfile.KindLog, "bench.attestlog/tessera", dir+"/log.key", "")
	if err != nil {
		return nil, nil, err
	}
	s, _, err := keyfile.LoadNoteSigner(g.Path)
	if err != nil {
		return nil, nil, err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir + "/tiles"})
	if err != nil {
		return nil, nil, err
	}
	tctx, tcancel := context.WithCancel(context.WithoutCancel(ctx))
	app, shutdown, _, err := tessera.NewAppender(tctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).
		WithBatching(logserver.DefaultBatchMaxSize, logserver.DefaultBatchMaxAge).
		WithCheckpointInterval(logserver.DefaultCheckpointInterval).
		WithPushback(logserver.DefaultPushback))
	if err != nil {
		tcancel()
		return nil, nil, err
	}
	return app, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown(sctx)
		tcancel()
	}, nil
}

// addRetrying appends e, waiting out pushback as the log's clients do on 503.
func addRetrying(ctx context.Context, app *tessera.Appender, e []byte) (tessera.Index, error) {
	for {
		i, err := app.Add(ctx, tessera.NewEntry(e))()
		if err == nil || ctx.Err() != nil || !errors.Is(err, tessera.ErrPushback) {
			return i, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runTesseraBaseline appends the same entries to a bare Tessera POSIX log
// in dir: no HTTP, no parsing, no signature checks.
func runTesseraBaseline(ctx context.Context, dir string, writers int, d time.Duration, entries [][]byte) (loadtest.Result, error) {
	app, stop, err := newBareAppender(ctx, dir)
	if err != nil {
		return loadtest.Result{}, err
	}
	defer stop()
	fmt.Fprintf(stderr, "loading a bare Tessera POSIX appender with %d writers for %v…\n", writers, d)
	return loadtest.Run(ctx, "tessera", writers, d, entries, true, func(ctx context.Context, e []byte) error {
		_, err := addRetrying(ctx, app, e)
		return err
	}), nil
}

// runFloorBaseline serves, on loopback in this process, the least any log
// that checks signatures must do for an entry: POST /add over HTTP,
// decode the DSSE envelope, verify its signature with the operator key,
// append to a bare Tessera POSIX log, answer with the index. No statement
// parsing, canonical check, policy, duplicate detection or index. Our log
// cannot be faster than this on the same machine.
func runFloorBaseline(ctx context.Context, dir string, writers int, d time.Duration, entries [][]byte, key statement.PublicKey, hc *http.Client) (loadtest.Result, error) {
	app, stop, err := newBareAppender(ctx, dir)
	if err != nil {
		return loadtest.Result{}, err
	}
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, statement.MaxEntrySize))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		var env statement.Envelope
		if err := jsonv2.Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, ok := env.VerifiedBy([]statement.PublicKey{key}); !ok {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		i, err := addRetrying(r.Context(), app, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.AddResponse{Index: i.Index})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return loadtest.Result{}, err
	}
	srv := httpserve.NewServer(mux)
	go srv.Serve(ln)
	defer srv.Close()
	c, err := client.New("http://"+ln.Addr().String(), hc)
	if err != nil {
		return loadtest.Result{}, err
	}
	fmt.Fprintf(stderr, "loading the floor (HTTP + envelope decode + one signature check + bare Tessera) with %d writers for %v…\n", writers, d)
	return loadtest.Run(ctx, "floor", writers, d, entries, true, func(ctx context.Context, e []byte) error {
		_, err := c.Add(ctx, e)
		return err
	}), nil
}
