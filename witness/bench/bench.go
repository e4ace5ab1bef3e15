// Package bench drives a c2sp.org/tlog-witness witness with many logs, each
// advancing its tree with valid consistency proofs, and measures
// cosignatures per second and latency. `attestlog bench witness` wires it to
// flags.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// Target is a witness under load.
type Target struct {
	// Name labels the results ("attestlog", "litewitness").
	Name string
	// URL is the submission prefix.
	URL string
	// AddLog registers a log with the witness before the run.
	AddLog func(ctx context.Context, origin, vkey string) error
}

// Options shape the load.
type Options struct {
	// Logs is how many logs submit checkpoints.
	Logs int
	// Duration is how long the measured phase lasts.
	Duration time.Duration
	// Rate is checkpoints per second per log (open loop: each log submits on
	// its own schedule, and latency counts from the scheduled time, so a
	// slow witness is not hidden by a slow client). Zero means closed loop:
	// Concurrency workers submit back to back, for maximum throughput.
	Rate float64
	// Concurrency is the number of closed-loop workers (Rate 0).
	Concurrency int
	// OriginPrefix names the logs: <prefix>/<i>.
	OriginPrefix string
}

// Result is what one run measured.
type Result struct {
	Target       string
	Logs         int
	Elapsed      time.Duration
	Cosignatures int
	Conflicts    int // 409s (a log's old size was stale; retried)
	Errors       int // anything else
	FirstError   error
	// Latencies of the 200 answers.
	P50, P99, Max time.Duration
}

// PerSecond is cosignatures per second over the measured phase.
func (r Result) PerSecond() float64 { return float64(r.Cosignatures) / r.Elapsed.Seconds() }

func (r Result) String() string {
	s := fmt.Sprintf("%-12s %d logs  %8.1f cosignatures/s  p50 %6.2fms  p99 %6.2fms  max %6.2fms  (%d cosignatures in %v, %d conflicts, %d errors)",
		r.Target, r.Logs, r.PerSecond(), ms(r.P50), ms(r.P99), ms(r.Max), r.Cosignatures, r.Elapsed.Round(time.Millisecond), r.Conflicts, r.Errors)
	if r.FirstError != nil {
		s += fmt.Sprintf("\n             first error: %v", r.FirstError)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type benchLog struct {
	*driver.Log
	mu  sync.Mutex
	old uint64 // the size the witness last cosigned, as far as we know
}

// Run registers opts.Logs new logs with the target, gets each one's first
// checkpoint cosigned (not measured), then runs the measured phase.
func Run(ctx context.Context, t Target, opts Options) (Result, error) {
	if opts.Logs <= 0 || opts.Duration <= 0 {
		return Result{}, errors.New("bench: Logs and Duration must be positive")
	}
	if opts.Rate == 0 && opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	conns := opts.Concurrency
	if opts.Rate > 0 {
		conns = min(opts.Logs, 1024)
	}
	client := &protocol.Client{SubmissionPrefix: t.URL, HTTP: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
		},
	}}
	logs := make([]*benchLog, opts.Logs)
	for i := range logs {
		l, err := driver.NewLog(fmt.Sprintf("%s/%d", opts.OriginPrefix, i))
		if err != nil {
			return Result{}, err
		}
		if err := t.AddLog(ctx, l.Origin, l.VKey); err != nil {
			return Result{}, fmt.Errorf("adding log to %s: %w", t.Name, err)
		}
		logs[i] = &benchLog{Log: l}
	}
	// First checkpoints, unmeasured, a few at a time.
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for _, l := range logs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			size := l.Append(1)
			if _, err := client.AddCheckpoint(ctx, l.Request(0, size)); err != nil {
				errMu.Lock()
				firstErr = cmpOr(firstErr, fmt.Errorf("first checkpoint of %s: %w", l.Origin, err))
				errMu.Unlock()
				return
			}
			l.old = size
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}

	res := Result{Target: t.Name, Logs: opts.Logs}
	var mu sync.Mutex
	var lat []time.Duration
	record := func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		var ce *protocol.ConflictError
		switch {
		case err == nil:
			res.Cosignatures++
			lat = append(lat, d)
		case errors.As(err, &ce):
			res.Conflicts++
		default:
			res.Errors++
			if res.FirstError == nil {
				res.FirstError = err
			}
		}
	}
	// submit advances l by one leaf and gets the new checkpoint cosigned.
	submit := func(ctx context.Context, l *benchLog) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		size := l.Append(1)
		_, err := client.AddCheckpoint(ctx, l.Request(l.old, size))
		var ce *protocol.ConflictError
		if errors.As(err, &ce) {
			l.old = ce.Size
		} else if err == nil {
			l.old = size
		}
		return err
	}

	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	start := time.Now()
	if opts.Rate > 0 {
		period := time.Duration(float64(time.Second) / opts.Rate)
		for i, l := range logs {
			// Spread the logs' phases evenly over one period.
			first := start.Add(time.Duration(int64(period) * int64(i) / int64(len(logs))))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					at := first.Add(time.Duration(n) * period)
					if at.Sub(start) >= opts.Duration {
						return
					}
					select {
					case <-runCtx.Done():
						return
					case <-time.After(time.Until(at)):
					}
					err := submit(ctx, l)
					record(time.Since(at), err)
				}
			}()
		}
	} else {
		for w := range opts.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Worker w owns logs w, w+C, w+2C, …
				for n := 0; ; n++ {
					if runCtx.Err() != nil {
						return
					}
					mine := (len(logs) - w + opts.Concurrency - 1) / opts.Concurrency
					if mine == 0 {
						return
					}
					l := logs[w+(n%mine)*opts.Concurrency]
					t0 := time.Now()
					err := submit(ctx, l)
					if runCtx.Err() != nil && err != nil {
						return
					}
					record(time.Since(t0), err)
				}
			}()
		}
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if opts.Rate > 0 {
		res.Elapsed = max(res.Elapsed, opts.Duration)
	}
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
