// Package loadtest generates realistic release statements and drives a
// log (or a bare Tessera appender, the baseline) with many concurrent
// writers, for 'attestlog bench append'.
package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// Generator makes unique signed releases of 4–8 KiB.
type Generator struct {
	signer *statement.Signer
	prefix uint64
	n      atomic.Uint64
}

// NewGenerator returns a generator signing with s. Entries from different
// generators differ (a random prefix).
func NewGenerator(s *statement.Signer) *Generator {
	return &Generator{signer: s, prefix: rand.Uint64()}
}

// Next returns a new signed release entry.
func (g *Generator) Next() ([]byte, error) {
	i := g.n.Add(1)
	r := rand.New(rand.NewPCG(g.prefix, i))
	// A release of a VM image: firmware, kernel, initrd and a few disk
	// layers, and a long reproducible-build recipe (pinned toolchain
	// arguments and environment) — 4–8 KiB in all, like a real one
	// without its provenance bundle.
	names := []string{"OVMF.fd", "bzImage", "initrd.img", "cmdline.txt", "rootfs.erofs", "model-weights.manifest", "verity.hash", "sbom.spdx.json"}
	nArt := 4 + r.IntN(5)
	subj := make([]statement.Subject, nArt)
	for a := range subj {
		subj[a] = statement.Subject{
			Name:   names[a],
			Digest: statement.Digest{SHA256: fmt.Sprintf("%016x%016x%016x%016x", g.prefix, i, a, r.Uint64())},
		}
	}
	env := map[string]string{"SOURCE_DATE_EPOCH": "0", "TZ": "UTC", "LC_ALL": "C"}
	for e := range 22 + r.IntN(28) {
		env[fmt.Sprintf("PIN_%02d", e)] = fmt.Sprintf("sha256:%016x%016x%016x%016x", g.prefix, i, e, r.Uint64())
	}
	argv := []string{"nix", "build", "--print-build-logs", "--option", "sandbox", "true"}
	for a := range 10 {
		argv = append(argv, fmt.Sprintf(".#image-%d", a))
	}
	rel := &statement.Release{
		Version:  fmt.Sprintf("%d.%d.%d", g.prefix%1000, i, nArt),
		Time:     time.Unix(1_790_000_000+int64(i), 0).UTC(),
		Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{
			LaunchDigest: fmt.Sprintf("%032x%032x%032x", g.prefix, i, r.Uint64()),
		}},
		Source: statement.Source{Repo: "https://github.com/example/enclave", Commit: fmt.Sprintf("%040x", i)},
		Recipe: statement.Recipe{Argv: argv, Env: env, Outputs: names[:nArt]},
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		return nil, err
	}
	return statement.Sign(payload, g.signer)
}

// Pregenerate returns n entries from gen, signed on every core, calling
// progress (if not nil) now and then with the number made so far.
func Pregenerate(ctx context.Context, gen *Generator, n int, progress func(done int)) ([][]byte, error) {
	out := make([][]byte, n)
	var (
		next  atomic.Int64
		done  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				e, err := gen.Next()
				if err != nil {
					errMu.Lock()
					first = cmp.Or(first, err)
					errMu.Unlock()
					return
				}
				out[i] = e
				if d := done.Add(1); progress != nil && d%10000 == 0 {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, ctx.Err()
}

// Result is the outcome of a load run.
type Result struct {
	Name     string
	Entries  int
	Errors   int
	Duration time.Duration
	P50, P99 time.Duration
	Bytes    int64
	// RanOut is set when every entry was sent before the duration ended.
	RanOut bool
	// Sent is how many of the entries were handed to add (answered or
	// not): a next run on the same target starts after them.
	Sent int
}

// Rate is entries per second.
func (r Result) Rate() float64 { return float64(r.Entries) / r.Duration.Seconds() }

func (r Result) String() string {
	s := fmt.Sprintf("%-10s %8d entries in %5.1fs = %8.1f entries/s  p50 %8v  p99 %8v  (%d errors, avg entry %d B)",
		r.Name, r.Entries, r.Duration.Seconds(), r.Rate(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
		r.Errors, r.Bytes/int64(max(r.Entries, 1)))
	if r.RanOut {
		s += " (ran out of entries before the duration; give more with --entries)"
	}
	return s
}

// Run sends entries, in order, with add from writers goroutines until d
// has passed or every entry was sent, and measures each call's latency.
// The entries are made beforehand (Pregenerate), so the load generator's
// signing does not compete with the target for the CPU. With cycle, Run
// starts over from the first entry instead of stopping (for targets that
// do not detect duplicates, such as a bare Tessera appender).
func Run(ctx context.Context, name string, writers int, d time.Duration, entries [][]byte, cycle bool, add func(context.Context, []byte) error) Result {
	return RunRate(ctx, name, writers, d, 0, entries, cycle, add)
}

// RunRate is Run offering at most rate entries per second in all (0: as
// fast as the writers go): an open-loop load at a given rate, as long as
// the writers keep up with it.
func RunRate(ctx context.Context, name string, writers int, d time.Duration, rate float64, entries [][]byte, cycle bool, add func(context.Context, []byte) error) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var tokens chan struct{}
	if rate > 0 {
		tokens = make(chan struct{}, writers)
		go func() {
			start := time.Now()
			sent := 0
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				for due := int(time.Since(start).Seconds() * rate); sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	var (
		mu     sync.Mutex
		lats   []time.Duration
		errs   int
		nbytes int64
		next   atomic.Int64
		ranOut atomic.Bool
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			var localErrs int
			var localBytes int64
			for ctx.Err() == nil {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						continue
					}
				}
				i := int(next.Add(1) - 1)
				if i >= len(entries) && cycle {
					i %= len(entries)
				} else if i >= len(entries) {
					ranOut.Store(true)
					break
				}
				e := entries[i]
				t0 := time.Now()
				err := add(ctx, e)
				if ctx.Err() != nil {
					break // cut off by the deadline: not counted
				}
				if err != nil {
					localErrs++
					continue
				}
				local = append(local, time.Since(t0))
				localBytes += int64(len(e))
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += localErrs
			nbytes += localBytes
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := Result{Name: name, Entries: len(lats), Errors: errs, Duration: time.Since(start), Bytes: nbytes, RanOut: ranOut.Load(), Sent: min(int(next.Load()), len(entries))}
	slices.Sort(lats)
	if len(lats) > 0 {
		res.P50 = lats[len(lats)*50/100]
		res.P99 = lats[min(len(lats)*99/100, len(lats)-1)]
	}
	return res
}
