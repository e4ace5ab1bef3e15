package bench

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
	wbench "github.com/attestlog/attestlog/witness/bench"
	"github.com/attestlog/attestlog/witness/driver"
)

// WitnessOptions are the options of 'attestlog bench witness'.
type WitnessOptions struct {
	// Witness is the submission URL of a running attestlog witness, and
	// WitnessDB its SQLite database, to add the benchmark's logs to; an
	// empty Witness starts one (attestlog witness serve) for the run.
	Witness, WitnessDB string
	// Logs is the number of logs, each advancing by one leaf a checkpoint.
	Logs int
	// Duration is the length of the measured phase.
	Duration time.Duration
	// Rate is checkpoints a second per log (open loop); 0 runs a closed
	// loop of Concurrency workers.
	Rate        float64
	Concurrency int
	// Baseline is "litewitness" to run the same load against a
	// litewitness (the binary Litewitness, empty: on PATH or built), or
	// empty.
	Baseline, Litewitness string
}

// Witness loads a tlog-witness with many advancing logs and reports
// cosignatures/s and latency on stdout, and the ratio to the baseline.
func Witness(ctx context.Context, o WitnessOptions, stdout io.Writer) error {
	tmp, err := os.MkdirTemp("", "attestlog-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	run := make([]byte, 4)
	rand.Read(run)
	opts := wbench.Options{
		Logs: o.Logs, Duration: o.Duration, Rate: o.Rate, Concurrency: o.Concurrency,
		OriginPrefix: "bench.example/" + hex.EncodeToString(run),
	}
	mode := fmt.Sprintf("closed loop, %d workers", o.Concurrency)
	if o.Rate > 0 {
		mode = fmt.Sprintf("open loop, %g checkpoints/s per log (%g/s offered)", o.Rate, o.Rate*float64(o.Logs))
	}
	fmt.Fprintf(stdout, "bench witness: %d logs, %v, %s\n", o.Logs, o.Duration, mode)

	ours := wbench.Target{Name: "attestlog", URL: o.Witness}
	if o.Witness == "" {
		u, db, stop, err := startOurWitness(ctx, tmp)
		if err != nil {
			return err
		}
		defer stop()
		ours.URL, o.WitnessDB = u, db
		fmt.Fprintf(stdout, "started attestlog witness at %s\n", u)
	}
	d, err := witness.OpenDB(ctx, o.WitnessDB, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	ours.AddLog = func(ctx context.Context, origin, vkey string) error {
		_, err := d.AddLog(ctx, origin, vkey)
		return err
	}
	res, err := wbench.Run(ctx, ours, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	if o.Baseline == "" {
		return nil
	}

	bin := o.Litewitness
	if bin == "" {
		if bin, err = exec.LookPath("litewitness"); err != nil {
			fmt.Fprintf(stdout, "building %s\n", driver.LitewitnessPkg)
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
	fmt.Fprintf(stdout, "started litewitness at %s\n", lw.URL)
	opts.OriginPrefix += "-lw"
	base, err := wbench.Run(ctx, wbench.Target{Name: "litewitness", URL: lw.URL, AddLog: lw.AddLog}, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, base)
	fmt.Fprintf(stdout, "ratio attestlog/litewitness: throughput %.3gx, p50 latency %.3gx, p99 latency %.3gx (lower latency is better)\n",
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
