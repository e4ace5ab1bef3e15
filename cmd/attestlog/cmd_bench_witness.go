package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/witness"
	"github.com/attestlog/attestlog/witness/bench"
	"github.com/attestlog/attestlog/witness/driver"
)

func init() {
	register("bench witness", "load a tlog-witness with many advancing logs; report cosignatures/s and latency", runBenchWitness)
}

func runBenchWitness(args []string) error {
	fs := newFlagSet("bench witness", "[--witness URL --witness-db FILE] --logs N --duration D [--rate R] [--baseline litewitness]")
	target := fs.String("witness", "", "submission URL of a running attestlog witness; empty: start one (attestlog witness serve) for this run")
	targetDB := fs.String("witness-db", "", "with --witness: its SQLite database, to add the benchmark's logs to (as witness add-log does)")
	logs := fs.Int("logs", 100, "number of logs, each advancing its tree by one leaf per checkpoint")
	duration := fs.Duration("duration", 10*time.Second, "length of the measured phase")
	rate := fs.Float64("rate", 0, "checkpoints per second per log (open loop, latency from the scheduled time); 0: closed loop at maximum throughput")
	concurrency := fs.Int("concurrency", 32, "closed-loop workers (with --rate 0)")
	baseline := fs.String("baseline", "", `"litewitness": run the same load against a litewitness started here and print the ratio`)
	lwBin := fs.String("litewitness", "", "litewitness binary for --baseline (default: litewitness on PATH, else built with go build "+driver.LitewitnessPkg+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logs <= 0 || *duration <= 0 || *rate < 0 || *concurrency <= 0 {
		fmt.Fprintln(fs.Output(), "--logs, --duration and --concurrency must be positive, --rate not negative")
		fs.Usage()
		return errUsage
	}
	if *baseline != "" && *baseline != "litewitness" {
		fmt.Fprintf(fs.Output(), "--baseline %q: only litewitness is supported\n", *baseline)
		return errUsage
	}
	if *target != "" && *targetDB == "" {
		fmt.Fprintln(fs.Output(), "--witness needs --witness-db, to register the benchmark's logs")
		return errUsage
	}
	ctx, cancel := signalContext()
	defer cancel()
	tmp, err := os.MkdirTemp("", "attestlog-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	run := make([]byte, 4)
	rand.Read(run)
	opts := bench.Options{
		Logs: *logs, Duration: *duration, Rate: *rate, Concurrency: *concurrency,
		OriginPrefix: "bench.example/" + hex.EncodeToString(run),
	}
	mode := fmt.Sprintf("closed loop, %d workers", *concurrency)
	if *rate > 0 {
		mode = fmt.Sprintf("open loop, %g checkpoints/s per log (%g/s offered)", *rate, *rate*float64(*logs))
	}
	fmt.Printf("bench witness: %d logs, %v, %s\n", *logs, *duration, mode)

	ours := bench.Target{Name: "attestlog", URL: *target}
	if *target == "" {
		u, db, stop, err := startOurWitness(ctx, tmp)
		if err != nil {
			return err
		}
		defer stop()
		ours.URL, *targetDB = u, db
		fmt.Printf("started attestlog witness at %s\n", u)
	}
	d, err := witness.OpenDB(ctx, *targetDB, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	ours.AddLog = func(ctx context.Context, origin, vkey string) error {
		_, err := d.AddLog(ctx, origin, vkey)
		return err
	}
	res, err := bench.Run(ctx, ours, opts)
	if err != nil {
		return err
	}
	fmt.Println(res)
	if *baseline == "" {
		return nil
	}

	bin := *lwBin
	if bin == "" {
		if bin, err = exec.LookPath("litewitness"); err != nil {
			fmt.Printf("building %s\n", driver.LitewitnessPkg)
			if bin, err = driver.BuildPeer(ctx, tmp, driver.LitewitnessPkg); err != nil {
				return fmt.Errorf("--baseline litewitness: %w", err)
			}
		}
	}
	lwDir, err := os.MkdirTemp("", "lw")
	if err != nil {
		return err
	}
	defer os.RemoveAll(lwDir)
	lw, err := driver.StartLitewitness(ctx, bin, lwDir, "litewitness.bench/w", io.Discard)
	if err != nil {
		return fmt.Errorf("starting litewitness: %w", err)
	}
	defer lw.Close()
	fmt.Printf("started litewitness at %s\n", lw.URL)
	opts.OriginPrefix += "-lw"
	base, err := bench.Run(ctx, bench.Target{Name: "litewitness", URL: lw.URL, AddLog: lw.AddLog}, opts)
	if err != nil {
		return err
	}
	fmt.Println(base)
	fmt.Printf("ratio attestlog/litewitness: throughput %.3gx, p50 latency %.3gx, p99 latency %.3gx (lower latency is better)\n",
		res.PerSecond()/base.PerSecond(), ratio(res.P50, base.P50), ratio(res.P99, base.P99))
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// startOurWitness runs `attestlog witness serve` (this binary) in its own
// process, like litewitness, on a free loopback port.
func startOurWitness(ctx context.Context, dir string) (string, string, func(), error) {
	skey, _, err := note.GenerateKey(rand.Reader, "attestlog.bench/w")
	if err != nil {
		return "", "", nil, err
	}
	key, db, cfg := filepath.Join(dir, "witness.key"), filepath.Join(dir, "witness.db"), filepath.Join(dir, "witness.yaml")
	if err := os.WriteFile(key, []byte(skey+"\n"), 0o600); err != nil {
		return "", "", nil, err
	}
	addr, err := driver.FreeAddr()
	if err != nil {
		return "", "", nil, err
	}
	// Per-request lines at info would be the benchmark's output too; the
	// baseline (litewitness) logs requests at debug, off by default.
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "listen: %s\nkey: %s\ndb: %s\nlog_level: warn\n", addr, key, db), 0o644); err != nil {
		return "", "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", "", nil, err
	}
	cmd := exec.Command(self, "witness", "serve", "--config", cfg)
	driver.DieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	done := make(chan struct{})
	listening := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				select {
				case listening <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	select {
	case <-listening:
	case <-done:
		return "", "", nil, errors.New("attestlog witness serve exited at start")
	case <-ctx.Done():
		stop()
		return "", "", nil, ctx.Err()
	}
	u := url.URL{Scheme: "http", Host: addr}
	return u.String(), db, stop, nil
}
