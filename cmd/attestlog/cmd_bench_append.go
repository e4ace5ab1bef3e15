package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/witness/driver"
)

func init() {
	register("bench append", "load a log with signed releases; report entries/s and latency", runBenchAppend)
}

func runBenchAppend(args []string) error {
	fs := newFlagSet("bench append", "--log URL --key operator.key [--writers N | --sweep N,N,…] [--duration D] [--entries N] [--baseline tessera,floor,rekor] [--rate R] [--proof-latency]")
	logURL := fs.String("log", "", "URL of the log to load (e.g. the one 'attestlog up' runs)")
	keyPath := fs.String("key", "", "operator key the log trusts (e.g. attestlog-data/operator.key)")
	writers := fs.Int("writers", 256, "concurrent writers")
	sweep := fs.String("sweep", "", "`LIST` of writer counts to run each system at in turn (e.g. 256,1024,4096,8192), instead of --writers; the highest rate of each is its saturation")
	duration := fs.Duration("duration", 10*time.Second, "length of each run")
	nEntries := fs.Int("entries", 60000, "releases to sign before the runs (about 6 KB each in memory); the log gets each once, in order, across all its runs; the baselines get the same ones, cycling through them")
	baseline := fs.String("baseline", "", "`LIST` of baselines to run after the log, on the same entries, printing the ratio to each: \"tessera\" (a bare Tessera POSIX appender in this process), \"floor\" (HTTP + envelope decode + one signature check + bare Tessera), \"rekor\" (Rekor v2's POSIX server, each entry's SHA-512 as a hashedrekord with an Ed25519ph signature made beforehand), e.g. tessera,floor,rekor")
	rekorBin := fs.String("rekor", "", "rekor-server binary for --baseline rekor (default: built with go build "+loadtest.RekorPkg+" from this module)")
	rekorBucket := fs.String("rekor-s3-bucket", "", "with --storage s3 and --baseline rekor: an empty bucket for Rekor v2's AWS server, on --s3-endpoint")
	rekorDSN := fs.String("rekor-mysql-dsn", "", "with --storage s3 and --baseline rekor: an empty MySQL/MariaDB database for Rekor v2's AWS server")
	rekorInterval := fs.Duration("rekor-checkpoint-interval", time.Second, "Rekor's checkpoint interval (it answers a write once a checkpoint covers it)")
	rate := fs.Float64("rate", 0, "offer at most this many entries per second to the log in all (an open-loop load; 0: as fast as the writers go); the baselines are not paced")
	proofLatency := fs.Bool("proof-latency", false, "also measure, for the first and every 100th acknowledged entry of a run, the time from the POST to a witnessed inclusion proof (as publish --wait gets it); Rekor answers with its proof, so its latency to a proof is its latency to the acknowledgement")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this (client) process's load run against the log to `FILE`")
	logPIDs := fs.String("log-pid", "", "`LIST` of the log's process IDs (its frontends on this machine): report the CPU time they use per acknowledged entry (/proc/PID/stat, user + system), beside the floor's (measured the same way in its own process)")
	bs := addBenchStorageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *keyPath == "" || *writers <= 0 || *duration <= 0 || *nEntries <= 0 {
		fmt.Fprintln(fs.Output(), "--log and --key are required; --writers, --duration and --entries must be positive")
		fs.Usage()
		return errUsage
	}
	counts := []int{*writers}
	if *sweep != "" {
		counts = nil
		for f := range strings.SplitSeq(*sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 || n > 65536 {
				fmt.Fprintf(fs.Output(), "--sweep %q: want writer counts from 1 to 65536\n", *sweep)
				return errUsage
			}
			counts = append(counts, n)
		}
	}
	var baselines []string
	if *baseline != "" {
		for b := range strings.SplitSeq(*baseline, ",") {
			if b != "tessera" && b != "floor" && b != "rekor" {
				fmt.Fprintf(fs.Output(), "--baseline %q: the baselines are tessera, floor and rekor\n", b)
				return errUsage
			}
			baselines = append(baselines, b)
		}
	}
	var pids []int
	if *logPIDs != "" {
		for f := range strings.SplitSeq(*logPIDs, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				fmt.Fprintf(fs.Output(), "--log-pid %q: want process IDs\n", *logPIDs)
				return errUsage
			}
			if _, err := loadtest.ProcCPU(n); err != nil {
				return fmt.Errorf("--log-pid %d: %w", n, err)
			}
			pids = append(pids, n)
		}
	}
	if *bs.kind == "s3" && slices.Contains(baselines, "tessera") {
		fmt.Fprintln(fs.Output(), "--baseline tessera runs on POSIX only; with --storage s3 the floor is the baseline on the same storage")
		return errUsage
	}
	if *bs.kind == "s3" && slices.Contains(baselines, "rekor") && (*rekorBucket == "" || *rekorDSN == "") {
		fmt.Fprintln(fs.Output(), "--baseline rekor with --storage s3 runs Rekor v2's AWS server: give it --rekor-s3-bucket and --rekor-mysql-dsn")
		return errUsage
	}
	if _, err := bs.storage("/nonexistent"); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	signer, err := keyfile.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()

	maxW := slices.Max(counts)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxW, MaxConnsPerHost: maxW}, Timeout: time.Minute}
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
	var maxIdx atomic.Uint64
	// settle waits until the log has indexed what it acknowledged, so
	// that a next run starts on a log that has caught up.
	settle := func() {
		if maxIdx.Load() == 0 {
			return
		}
		fmt.Fprintf(stderr, "waiting for the log to index entry %d…\n", maxIdx.Load())
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer wcancel()
		for {
			if _, err := c.Entry(wctx, maxIdx.Load()); err == nil || wctx.Err() != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ours := map[int]loadtest.Result{}
	oursCPU := map[int]time.Duration{}
	used := 0
	for _, w := range counts {
		settle()
		if used >= len(entries) {
			return fmt.Errorf("the log has had all %d entries; give more with --entries", len(entries))
		}
		fmt.Fprintf(stderr, "loading %s with %d writers for %v…\n", *logURL, w, *duration)
		var proofs proofLatencies
		var acks atomic.Int64
		var meter *loadtest.CPUMeter
		if len(pids) > 0 {
			if meter, err = loadtest.StartCPU(pids...); err != nil {
				return err
			}
		}
		res := loadtest.RunRate(ctx, "attestlog", w, *duration, *rate, entries[used:], false, func(ctx context.Context, e []byte) error {
			t0 := time.Now()
			r, err := c.Add(ctx, e)
			if err == nil {
				for old := maxIdx.Load(); r.Index > old && !maxIdx.CompareAndSwap(old, r.Index); old = maxIdx.Load() {
				}
				if *proofLatency && (acks.Add(1)-1)%100 == 0 {
					proofs.wait(c, r.Index, t0)
				}
			}
			return err
		})
		used += res.Sent
		ours[w] = res
		fmt.Printf("%s  (%d writers)\n", res, w)
		if meter != nil {
			cpu, err := meter.Used()
			if err != nil {
				return fmt.Errorf("--log-pid: %w", err)
			}
			oursCPU[w] = cpu
			fmt.Printf("cpu        attestlog: %s per acknowledged entry  (%.2f s of CPU for %d entries, %d processes)\n", loadtest.PerEntry(cpu, res.Entries), cpu.Seconds(), res.Entries, len(pids))
		}
		if *proofLatency {
			fmt.Println(proofs.summary("attestlog"))
		}
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if len(baselines) == 0 {
		return nil
	}
	// The log's connections are not needed any more (file descriptors:
	// a run at 8,192 writers holds as many).
	defer hc.CloseIdleConnections()
	// Let the log finish integrating and indexing what it acknowledged
	// before the baseline runs on the same cores.
	settle()
	hc.CloseIdleConnections()

	for _, b := range baselines {
		dir, err := os.MkdirTemp("", "attestlog-bench-"+b+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		var run func(w int) (loadtest.Result, error)
		var baselineCPU func() (time.Duration, error)
		switch b {
		case "tessera":
			run = func(w int) (loadtest.Result, error) {
				d, err := os.MkdirTemp(dir, "run-")
				if err != nil {
					return loadtest.Result{}, err
				}
				return runTesseraBaseline(ctx, d, w, *duration, entries)
			}
		case "floor":
			fp, err := startFloor(ctx, dir, signer.Public(), bs)
			if err != nil {
				return fmt.Errorf("--baseline floor: %w", err)
			}
			defer fp.Close()
			var meter *loadtest.CPUMeter
			run = func(w int) (loadtest.Result, error) {
				// Connections of its own, closed after the run.
				fhc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: w, MaxConnsPerHost: w}, Timeout: time.Minute}
				defer fhc.CloseIdleConnections()
				fc, err := client.New(fp.URL, fhc)
				if err != nil {
					return loadtest.Result{}, err
				}
				if meter, err = loadtest.StartCPU(fp.cmd.Process.Pid); err != nil {
					return loadtest.Result{}, err
				}
				fmt.Fprintf(stderr, "loading the floor (HTTP + envelope decode + one signature check + bare Tessera, %s storage, its own process) with %d writers for %v…\n", *bs.kind, w, *duration)
				return loadtest.Run(ctx, "floor", w, *duration, entries, true, func(ctx context.Context, e []byte) error {
					_, err := fc.Add(ctx, e)
					return err
				}), nil
			}
			baselineCPU = func() (time.Duration, error) { return meter.Used() }
		case "rekor":
			var s3 *loadtest.RekorS3
			if *bs.kind == "s3" {
				s3 = &loadtest.RekorS3{Endpoint: *bs.endpoint, Bucket: *rekorBucket, Region: *bs.region, DSN: *rekorDSN,
					AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
			}
			rr, pid, stop, err := startRekorBaseline(ctx, dir, *rekorBin, *rekorInterval, *duration, entries, s3)
			if err != nil {
				return err
			}
			defer stop()
			var meter *loadtest.CPUMeter
			run = func(w int) (loadtest.Result, error) {
				var err error
				if meter, err = loadtest.StartCPU(pid); err != nil {
					return loadtest.Result{}, err
				}
				return rr(w)
			}
			baselineCPU = func() (time.Duration, error) { return meter.Used() }
		}
		var best, bestOurs loadtest.Result
		for i, w := range counts {
			res, err := run(w)
			if err != nil {
				return err
			}
			fmt.Printf("%s  (%d writers)\n", res, w)
			o := ours[w]
			fmt.Printf("ratio      attestlog/%s throughput at %d writers = %.2f×  (p50 %v vs %v, p99 %v vs %v)\n",
				b, w, o.Rate()/res.Rate(), o.P50.Round(time.Microsecond), res.P50.Round(time.Microsecond), o.P99.Round(time.Microsecond), res.P99.Round(time.Microsecond))
			if baselineCPU != nil {
				fcpu, err := baselineCPU()
				if err != nil {
					return err
				}
				fmt.Printf("cpu        %s: %s per acknowledged entry  (%.2f s of CPU for %d entries, %s storage)\n", b, loadtest.PerEntry(fcpu, res.Entries), fcpu.Seconds(), res.Entries, *bs.kind)
				if ocpu, ok := oursCPU[w]; ok && o.Entries > 0 && res.Entries > 0 && fcpu > 0 {
					fmt.Printf("ratio      attestlog/%s CPU per acknowledged entry at %d writers = %.2f×\n", b, w,
						(ocpu.Seconds()/float64(o.Entries))/(fcpu.Seconds()/float64(res.Entries)))
				}
			}
			if i == 0 || res.Rate() > best.Rate() {
				best = res
			}
			if i == 0 || o.Rate() > bestOurs.Rate() {
				bestOurs = o
			}
		}
		if len(counts) > 1 {
			fmt.Printf("ratio      attestlog/%s throughput at each one's saturation = %.2f×  (%.1f vs %.1f entries/s)\n", b, bestOurs.Rate()/best.Rate(), bestOurs.Rate(), best.Rate())
		}
	}
	return nil
}

// startRekorBaseline builds (unless bin names one) and starts Rekor v2's
// POSIX server (its AWS server on s3 if given), signs a hashedrekord
// request for each entry, and returns a run at a writer count and the
// server's process ID; successive runs send requests not sent before
// (cycling once all were).
func startRekorBaseline(ctx context.Context, dir, bin string, interval, d time.Duration, entries [][]byte, s3 *loadtest.RekorS3) (func(int) (loadtest.Result, error), int, func(), error) {
	pkg, kind := loadtest.RekorPkg, "POSIX"
	if s3 != nil {
		pkg, kind = loadtest.RekorAWSPkg, "AWS on "+s3.Endpoint
	}
	if bin == "" {
		fmt.Fprintf(stderr, "building %s…\n", pkg)
		var err error
		if bin, err = driver.BuildPeer(ctx, dir, pkg); err != nil {
			return nil, 0, nil, fmt.Errorf("--baseline rekor: %w (or name a binary with --rekor)", err)
		}
	}
	fmt.Fprintf(stderr, "signing %d hashedrekord requests (Ed25519ph over each entry's SHA-512)…\n", len(entries))
	reqs, err := loadtest.RekorRequests(entries)
	if err != nil {
		return nil, 0, nil, err
	}
	var r *loadtest.Rekor
	if s3 != nil {
		r, err = loadtest.StartRekorS3(ctx, bin, dir, interval, *s3)
	} else {
		r, err = loadtest.StartRekor(ctx, bin, dir, interval)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	used := 0
	run := func(w int) (loadtest.Result, error) {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: w, MaxConnsPerHost: w}, Timeout: time.Minute}
		fmt.Fprintf(stderr, "loading Rekor v2 (%s, checkpoint interval %v) with %d writers for %v…\n", kind, interval, w, d)
		rest := reqs[used%len(reqs):]
		res := loadtest.Run(ctx, "rekor-v2", w, d, rest, true, func(ctx context.Context, q []byte) error {
			return r.Add(ctx, hc, q)
		})
		used += res.Sent
		hc.CloseIdleConnections()
		return res, nil
	}
	return run, r.PID(), r.Close, nil
}

// proofLatencies measures, for sampled entries, the time from the POST to
// a witnessed inclusion proof.
type proofLatencies struct {
	mu   sync.Mutex
	wg   sync.WaitGroup
	lats []time.Duration
	errs int
}

// wait waits in the background for entry idx's proof, posted at t0.
func (p *proofLatencies) wait(c *client.Client, idx uint64, t0 time.Time) {
	p.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _, err := c.WaitProof(ctx, idx)
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.errs++
			return
		}
		p.lats = append(p.lats, time.Since(t0))
	})
}

// summary waits for every sampled proof and describes their latencies.
func (p *proofLatencies) summary(name string) string {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lats) == 0 {
		return fmt.Sprintf("%-10s no witnessed proof measured (%d errors)", name, p.errs)
	}
	slices.Sort(p.lats)
	return fmt.Sprintf("%-10s POST to witnessed proof, %d sampled entries: p50 %v  p99 %v  (%d errors)", name, len(p.lats),
		p.lats[len(p.lats)/2].Round(time.Millisecond), p.lats[min(len(p.lats)*99/100, len(p.lats)-1)].Round(time.Millisecond), p.errs)
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
