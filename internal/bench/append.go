package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/witness/driver"
)

// AppendOptions are the options of 'attestlog bench append'.
type AppendOptions struct {
	// Log is the URL of the log to load, and Key the operator key file it
	// trusts.
	Log, Key string
	// Writers are the writer counts to run each system at in turn (one,
	// or a sweep); each must be positive.
	Writers []int
	// Duration is the length of each run.
	Duration time.Duration
	// Entries is how many releases to sign before the runs.
	Entries int
	// Baselines are run after the log on the same entries: "tessera",
	// "floor" or "rekor".
	Baselines []string
	// Rekor is the rekor-server binary (empty: built from this module);
	// RekorS3Bucket and RekorMySQLDSN are Rekor's AWS storage when
	// Storage is s3; RekorInterval is its checkpoint interval.
	Rekor, RekorS3Bucket, RekorMySQLDSN string
	RekorInterval                       time.Duration
	// Rate caps the entries offered to the log a second (0: none).
	Rate float64
	// ProofLatency also measures the time from a POST to a witnessed
	// inclusion proof for sampled entries.
	ProofLatency bool
	// CPUProfile is a file for a CPU profile of the load runs against the
	// log (empty: none).
	CPUProfile string
	// LogPIDs are the log's processes on this machine, whose CPU time per
	// acknowledged entry is reported.
	LogPIDs []int
	// Storage is the storage of the floor (and the kind the log has).
	Storage Storage
	// Rounds, above 1, alternates the log and the floor (which must be a
	// baseline, with LogPIDs given) in Rounds rounds of Duration/Rounds
	// each, so that both see the same machine: on a shared one the speed
	// of a core moves by half from one run to the next, and a ratio of two
	// runs made minutes apart moved with it. The ratio is of the totals.
	Rounds int
}

// Append loads the log at o.Log with signed releases and reports entries/s
// and latency on stdout (progress on stderr), then runs the baselines on
// the same entries and prints the ratio to each.
func Append(ctx context.Context, o AppendOptions, stdout, stderr io.Writer) error {
	signer, err := keyfile.LoadSigner(o.Key)
	if err != nil {
		return err
	}
	counts, pids, bs := o.Writers, o.LogPIDs, o.Storage
	maxW := slices.Max(counts)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxW, MaxConnsPerHost: maxW}, Timeout: time.Minute}
	c, err := client.New(o.Log, hc)
	if err != nil {
		return err
	}
	// Sign every entry first: an operator signs a release once, offline,
	// and signing during the run would take CPU from the log under test.
	fmt.Fprintf(stderr, "signing %d releases…\n", o.Entries)
	entries, err := loadtest.Pregenerate(ctx, loadtest.NewGenerator(signer), o.Entries, func(n int) {
		fmt.Fprintf(stderr, "  %d/%d\n", n, o.Entries)
	})
	if err != nil {
		return err
	}
	if o.CPUProfile != "" {
		pf, err := os.Create(o.CPUProfile)
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
	if o.Rounds > 1 {
		if !slices.Contains(o.Baselines, "floor") || len(pids) == 0 {
			return fmt.Errorf("rounds: alternating rounds compare the log with the floor: give --baseline floor and --log-pid")
		}
		fdir, err := os.MkdirTemp("", "attestlog-bench-floor-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(fdir)
		fp, err := startFloor(ctx, fdir, signer.Public(), bs, stderr)
		if err != nil {
			return fmt.Errorf("--baseline floor: %w", err)
		}
		defer fp.Close()
		for _, w := range counts {
			res, cpu, err := appendRounds(ctx, o, w, c, fp, entries[used:], settle, &maxIdx, stdout, stderr)
			if err != nil {
				return err
			}
			used += res.Sent
			ours[w], oursCPU[w] = res, cpu
		}
		o.Baselines = slices.DeleteFunc(slices.Clone(o.Baselines), func(b string) bool { return b == "floor" })
	}
	logRuns := counts
	if o.Rounds > 1 {
		logRuns = nil // the log ran in the rounds
	}
	for _, w := range logRuns {
		settle()
		if used >= len(entries) {
			return fmt.Errorf("the log has had all %d entries; give more with --entries", len(entries))
		}
		fmt.Fprintf(stderr, "loading %s with %d writers for %v…\n", o.Log, w, o.Duration)
		var proofs proofLatencies
		var acks atomic.Int64
		var meter *loadtest.CPUMeter
		if len(pids) > 0 {
			if meter, err = loadtest.StartCPU(pids...); err != nil {
				return err
			}
		}
		res := loadtest.RunRate(ctx, "attestlog", w, o.Duration, o.Rate, entries[used:], false, func(ctx context.Context, e []byte) error {
			t0 := time.Now()
			r, err := c.Add(ctx, e)
			if err == nil {
				storeMax(&maxIdx, r.Index)
				if o.ProofLatency && (acks.Add(1)-1)%100 == 0 {
					proofs.wait(c, r.Index, t0)
				}
			}
			return err
		})
		used += res.Sent
		ours[w] = res
		fmt.Fprintf(stdout, "%s  (%d writers)\n", res, w)
		if meter != nil {
			// The entries' cost includes indexing them: stop the meter
			// once the log has indexed what it acknowledged, not when
			// the load stops (the follower may still be behind).
			settle()
			cpu, err := meter.Used()
			if err != nil {
				return fmt.Errorf("--log-pid: %w", err)
			}
			oursCPU[w] = cpu
			fmt.Fprintf(stdout, "cpu        attestlog: %s per acknowledged entry  (%.2f s of CPU for %d entries, %d processes)\n", loadtest.PerEntry(cpu, res.Entries), cpu.Seconds(), res.Entries, len(pids))
		}
		if o.ProofLatency {
			fmt.Fprintln(stdout, proofs.summary("attestlog"))
		}
	}
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if len(o.Baselines) == 0 {
		return nil
	}
	// The log's connections are not needed any more (file descriptors:
	// a run at 8,192 writers holds as many).
	defer hc.CloseIdleConnections()
	// Let the log finish integrating and indexing what it acknowledged
	// before the baseline runs on the same cores.
	settle()
	hc.CloseIdleConnections()

	for _, b := range o.Baselines {
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
				return runTesseraBaseline(ctx, d, w, o.Duration, entries, stderr)
			}
		case "floor":
			fp, err := startFloor(ctx, dir, signer.Public(), bs, stderr)
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
				fmt.Fprintf(stderr, "loading the floor (HTTP + envelope decode + one signature check + bare Tessera, %s storage, its own process) with %d writers for %v…\n", bs.Kind, w, o.Duration)
				res := loadtest.Run(ctx, "floor", w, o.Duration, entries, true, func(ctx context.Context, e []byte) error {
					_, err := fc.Add(ctx, e)
					return err
				})
				time.Sleep(floorSettle(bs))
				return res, nil
			}
			baselineCPU = func() (time.Duration, error) { return meter.Used() }
		case "rekor":
			var s3 *loadtest.RekorS3
			if bs.Kind == "s3" {
				s3 = &loadtest.RekorS3{Endpoint: bs.Endpoint, Bucket: o.RekorS3Bucket, Region: bs.Region, DSN: o.RekorMySQLDSN,
					AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
			}
			rr, pid, stop, err := startRekorBaseline(ctx, dir, o.Rekor, o.RekorInterval, o.Duration, entries, s3, stderr)
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
			fmt.Fprintf(stdout, "%s  (%d writers)\n", res, w)
			o := ours[w]
			fmt.Fprintf(stdout, "ratio      attestlog/%s throughput at %d writers = %.2f×  (p50 %v vs %v, p99 %v vs %v)\n",
				b, w, o.Rate()/res.Rate(), o.P50.Round(time.Microsecond), res.P50.Round(time.Microsecond), o.P99.Round(time.Microsecond), res.P99.Round(time.Microsecond))
			if baselineCPU != nil {
				fcpu, err := baselineCPU()
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "cpu        %s: %s per acknowledged entry  (%.2f s of CPU for %d entries, %s storage)\n", b, loadtest.PerEntry(fcpu, res.Entries), fcpu.Seconds(), res.Entries, bs.Kind)
				if ocpu, ok := oursCPU[w]; ok && o.Entries > 0 && res.Entries > 0 && fcpu > 0 {
					fmt.Fprintf(stdout, "ratio      attestlog/%s CPU per acknowledged entry at %d writers = %.2f×\n", b, w,
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
			fmt.Fprintf(stdout, "ratio      attestlog/%s throughput at each one's saturation = %.2f×  (%.1f vs %.1f entries/s)\n", b, bestOurs.Rate()/best.Rate(), bestOurs.Rate(), best.Rate())
		}
	}
	return nil
}

// storeMax raises a to v if v is higher.
func storeMax(a *atomic.Uint64, v uint64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

// appendRounds runs the log (c, its processes o.LogPIDs) and the floor fp
// at w writers in o.Rounds alternating rounds of o.Duration/o.Rounds,
// log first, printing each round and the totals with the ratio of their
// CPU per acknowledged entry. It returns the log's total result (P50 the
// median of its rounds', P99 the highest) and CPU.
func appendRounds(ctx context.Context, o AppendOptions, w int, c *client.Client, fp *floorProcess, entries [][]byte, settle func(), maxIdx *atomic.Uint64, stdout, stderr io.Writer) (loadtest.Result, time.Duration, error) {
	d := o.Duration / time.Duration(o.Rounds)
	fhc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: w, MaxConnsPerHost: w}, Timeout: time.Minute}
	defer fhc.CloseIdleConnections()
	fc, err := client.New(fp.URL, fhc)
	if err != nil {
		return loadtest.Result{}, 0, err
	}
	var total [2]loadtest.Result // the log's, the floor's
	var cpu [2]time.Duration
	var p50s [2][]time.Duration
	var ratios []float64
	used := 0
	for r := range o.Rounds {
		settle()
		meter, err := loadtest.StartCPU(o.LogPIDs...)
		if err != nil {
			return loadtest.Result{}, 0, err
		}
		fmt.Fprintf(stderr, "round %d/%d: loading %s with %d writers for %v…\n", r+1, o.Rounds, o.Log, w, d)
		lr := loadtest.RunRate(ctx, "attestlog", w, d, o.Rate, entries[used:], false, func(ctx context.Context, e []byte) error {
			res, err := c.Add(ctx, e)
			if err == nil {
				storeMax(maxIdx, res.Index)
			}
			return err
		})
		used += lr.Sent
		settle() // the entries' cost includes indexing them
		lc, err := meter.Used()
		if err != nil {
			return loadtest.Result{}, 0, fmt.Errorf("--log-pid: %w", err)
		}
		if meter, err = loadtest.StartCPU(fp.cmd.Process.Pid); err != nil {
			return loadtest.Result{}, 0, err
		}
		fmt.Fprintf(stderr, "round %d/%d: loading the floor with %d writers for %v…\n", r+1, o.Rounds, w, d)
		fr := loadtest.Run(ctx, "floor", w, d, entries, true, func(ctx context.Context, e []byte) error {
			_, err := fc.Add(ctx, e)
			return err
		})
		time.Sleep(floorSettle(o.Storage))
		fcpu, err := meter.Used()
		if err != nil {
			return loadtest.Result{}, 0, err
		}
		ratio := math.NaN()
		if lr.Entries > 0 && fr.Entries > 0 && fcpu > 0 {
			ratio = (lc.Seconds() / float64(lr.Entries)) / (fcpu.Seconds() / float64(fr.Entries))
			ratios = append(ratios, ratio)
		}
		fmt.Fprintf(stdout, "round %d/%d  attestlog %d entries, %s per entry; floor %d entries, %s per entry; ratio %.2f×\n",
			r+1, o.Rounds, lr.Entries, loadtest.PerEntry(lc, lr.Entries), fr.Entries, loadtest.PerEntry(fcpu, fr.Entries), ratio)
		for i, x := range []loadtest.Result{lr, fr} {
			t := &total[i]
			t.Name, t.Entries, t.Errors, t.Duration, t.Bytes, t.Sent = x.Name, t.Entries+x.Entries, t.Errors+x.Errors, t.Duration+x.Duration, t.Bytes+x.Bytes, t.Sent+x.Sent
			t.RanOut = t.RanOut || x.RanOut
			t.P99 = max(t.P99, x.P99)
			p50s[i] = append(p50s[i], x.P50)
		}
		cpu[0] += lc
		cpu[1] += fcpu
	}
	for i := range total {
		slices.Sort(p50s[i])
		total[i].P50 = p50s[i][len(p50s[i])/2]
	}
	lt, ft := total[0], total[1]
	fmt.Fprintf(stdout, "%s  (%d writers, %d rounds: p50 the median round's, p99 the highest)\n", lt, w, o.Rounds)
	fmt.Fprintf(stdout, "%s  (%d writers, %d rounds)\n", ft, w, o.Rounds)
	fmt.Fprintf(stdout, "ratio      attestlog/floor throughput at %d writers = %.2f×\n", w, lt.Rate()/ft.Rate())
	fmt.Fprintf(stdout, "cpu        attestlog: %s per acknowledged entry  (%.2f s of CPU for %d entries, %d processes, %d rounds)\n", loadtest.PerEntry(cpu[0], lt.Entries), cpu[0].Seconds(), lt.Entries, len(o.LogPIDs), o.Rounds)
	fmt.Fprintf(stdout, "cpu        floor: %s per acknowledged entry  (%.2f s of CPU for %d entries, %s storage, %d rounds)\n", loadtest.PerEntry(cpu[1], ft.Entries), cpu[1].Seconds(), ft.Entries, o.Storage.Kind, o.Rounds)
	if lt.Entries > 0 && ft.Entries > 0 && cpu[1] > 0 && len(ratios) > 0 {
		slices.Sort(ratios)
		fmt.Fprintf(stdout, "ratio      attestlog/floor CPU per acknowledged entry at %d writers = %.2f×  (of the totals; rounds %.2f–%.2f×, median %.2f×)\n", w,
			(cpu[0].Seconds()/float64(lt.Entries))/(cpu[1].Seconds()/float64(ft.Entries)), ratios[0], ratios[len(ratios)-1], ratios[len(ratios)/2])
	}
	return lt, cpu[0], nil
}

// startRekorBaseline builds (unless bin names one) and starts Rekor v2's
// POSIX server (its AWS server on s3 if given), signs a hashedrekord
// request for each entry, and returns a run at a writer count and the
// server's process ID; successive runs send requests not sent before
// (cycling once all were).
func startRekorBaseline(ctx context.Context, dir, bin string, interval, d time.Duration, entries [][]byte, s3 *loadtest.RekorS3, stderr io.Writer) (func(int) (loadtest.Result, error), int, func(), error) {
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
func runTesseraBaseline(ctx context.Context, dir string, writers int, d time.Duration, entries [][]byte, stderr io.Writer) (loadtest.Result, error) {
	app, stop, err := newBareAppender(ctx, dir, "bench.attestlog/tessera", &logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: dir + "/tiles"}})
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
