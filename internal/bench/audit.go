package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	tapi "github.com/transparency-dev/tessera/api"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/fsck"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/transparency-dev/tessera/storage/posix"
)

// AuditOptions are the options of 'attestlog bench audit'.
type AuditOptions struct {
	// Entries is the size of the benchmark's log; positive.
	Entries int
	// FsckWorkers is Tessera fsck's -N (parallel fetchers).
	FsckWorkers uint
	// Keep keeps the temporary directory.
	Keep bool
	// CPUProfile is a file for a CPU profile of the auditor phase (empty:
	// none).
	CPUProfile string
	// IndexMap is the auditor's index_map: "file" or "memory".
	IndexMap string
}

// Audit builds a log of o.Entries entries, follows it with the auditor
// (full per-entry verification) and then with Tessera's fsck, and reports
// both on stdout; the auditor's warnings go to stderr. Tessera logs through
// klog: the caller routes it.
func Audit(ctx context.Context, o AuditOptions, stdout, stderr io.Writer) error {
	tmp, err := os.MkdirTemp("", "attestlog-bench-audit-")
	if err != nil {
		return err
	}
	if o.Keep {
		fmt.Fprintf(stdout, "data in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := func(s string) string { return filepath.Join(tmp, s) }

	// A log of our own (quorum none: no witness round trips) in-process.
	origin := "bench.attestlog.localhost/log"
	lk, err := keyfile.Generate(keyfile.KindLog, origin, p("log.key"), "")
	if err != nil {
		return err
	}
	ok, err := keyfile.Generate(keyfile.KindOperator, "bench-operator", p("operator.key"), "ed25519")
	if err != nil {
		return err
	}
	ak, err := keyfile.Generate(keyfile.KindAuditor, "bench-auditor", p("auditor.key"), "ed25519")
	if err != nil {
		return err
	}
	pol := fmt.Sprintf("operator bench-operator %s\nauditor bench-auditor %s\nquorum none\n", ok.Public, ak.Public)
	for name, c := range map[string]string{"policy.txt": pol, "witness-policy.txt": "quorum none\n"} {
		if err := os.WriteFile(p(name), []byte(c), 0o644); err != nil {
			return err
		}
	}
	op, err := keyfile.LoadSigner(p("operator.key"))
	if err != nil {
		return err
	}
	au, err := keyfile.LoadSigner(p("auditor.key"))
	if err != nil {
		return err
	}

	// The log: Tessera's POSIX driver writing c2sp.org/tlog-tiles files,
	// served as static files, as a CDN would.
	fmt.Fprintf(stdout, "signing %d statements…\n", o.Entries)
	entries, err := benchEntries(o.Entries, op, au)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := benchTessera(ctx, p("log.key"), p("tiles"), entries); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Tessera (POSIX) appended and integrated %d entries in %v\n", o.Entries, time.Since(start).Round(time.Millisecond))
	entries = nil // the log has them; the auditor's memory is measured without them
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := httpserve.NewServer(http.FileServer(http.Dir(p("tiles"))))
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	// 1. The auditor: checkpoint, every entry parsed strictly, canonical
	// form, signature against the policy, references, state in SQLite.
	acfg, err := auditor.ParseConfig([]byte(fmt.Sprintf("db: %s\nindex_map: %s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: %s\n    witness_policy: %s\nrebuild:\n  enabled: false\n",
		p("auditor.db"), o.IndexMap, lk.Public, base, p("policy.txt"), p("witness-policy.txt"))))
	if err != nil {
		return err
	}
	a, err := auditor.Open(ctx, acfg, quiet)
	if err != nil {
		return err
	}
	defer a.Close()
	if o.CPUProfile != "" {
		pf, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
	}
	heap0 := liveHeap()
	peak := sampleHeap()
	c0, t0 := cpuTime(), time.Now()
	if err := a.RunOnce(ctx); err != nil {
		return err
	}
	auditDur, auditCPU := time.Since(t0), cpuTime()-c0
	peakHeap := peak()
	heap1 := liveHeap()
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	st, err := a.Status(ctx)
	if err != nil {
		return err
	}
	if open, _ := a.OpenAlerts(ctx); open != 0 {
		return fmt.Errorf("the auditor raised %d alerts over a valid log", open)
	}
	verified := st.Logs[0].Verified

	// 2. Tessera's fsck over the same log: every entry bundle and tile
	// fetched and rehashed up to the checkpoint.
	u, _ := url.Parse(base)
	hf, err := tclient.NewHTTPFetcher(u, nil)
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(lk.Public)
	if err != nil {
		return err
	}
	f := fsck.New(origin, v, hf, benchLeafHasher, fsck.Opts{N: o.FsckWorkers})
	c1, t1 := cpuTime(), time.Now()
	if err := f.Check(ctx); err != nil {
		return fmt.Errorf("tessera fsck: %w", err)
	}
	fsckDur, fsckCPU := time.Since(t1), cpuTime()-c1

	// CPU time is of the whole process (the in-process log serves the
	// tiles too); on a shared machine it is the steadier figure.
	fmt.Fprintf(stdout, "\n%-40s %8s %10s %11s %10s %14s\n", "", "entries", "wall", "entries/s", "CPU", "entries/CPU-s")
	fmt.Fprintf(stdout, "%-40s %8d %10v %11.0f %10v %14.0f\n", "attestlog auditor (full verification)", verified, auditDur.Round(time.Millisecond),
		float64(verified)/auditDur.Seconds(), auditCPU.Round(time.Millisecond), float64(verified)/auditCPU.Seconds())
	fmt.Fprintf(stdout, "%-40s %8d %10v %11.0f %10v %14.0f\n", fmt.Sprintf("tessera fsck (Merkle only, N=%d)", o.FsckWorkers), o.Entries, fsckDur.Round(time.Millisecond),
		float64(o.Entries)/fsckDur.Seconds(), fsckCPU.Round(time.Millisecond), float64(o.Entries)/fsckCPU.Seconds())
	fmt.Fprintf(stdout, "auditor / fsck: %.1fx the wall time, %.1fx the CPU time\n", auditDur.Seconds()/fsckDur.Seconds(), auditCPU.Seconds()/fsckCPU.Seconds())
	where := "in a scratch file mapped into memory, not on the heap"
	if o.IndexMap == "memory" {
		where = "on the heap: most of it"
	}
	fmt.Fprintf(stdout, "auditor memory (index_map %s: the map is %s): Go heap %.0f MB live after following (%.0f bytes per entry), %.0f MB at the peak of the run (sampled every 50 ms)\n",
		o.IndexMap, where, float64(heap1-min(heap1, heap0))/1e6, float64(heap1-min(heap1, heap0))/float64(verified), float64(peakHeap-min(peakHeap, heap0))/1e6)
	return nil
}

// liveHeap is the Go heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// sampleHeap samples the Go heap in use every 50 ms until the returned
// function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	done := make(chan struct{})
	res := make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-res }
}

// benchEntries signs n statements: releases, and every 10th a
// reproduction (signed by the auditor) or a revocation of the release just
// before it.
func benchEntries(n int, op, au *statement.Signer) ([][]byte, error) {
	entries := make([][]byte, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if i%10 == 9 {
					continue
				}
				e, err := benchRelease(int64(i), op)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				entries[i] = e
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for i := 9; i < n; i += 10 {
		e, err := benchRef(int64(i), statement.RefOf(uint64(i-1), entries[i-1]), op, au)
		if err != nil {
			return nil, err
		}
		entries[i] = e
	}
	return entries, nil
}

// benchTessera appends entries, in order, to a new POSIX log in dir and
// waits for a checkpoint covering them all.
func benchTessera(ctx context.Context, keyPath, dir string, entries [][]byte) error {
	skey, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return err
	}
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).WithBatching(1024, 100*time.Millisecond).
		WithCheckpointInterval(time.Second).WithPushback(uint(len(entries)) + 1)
	app, shutdown, _, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return err
	}
	futures := make([]tessera.IndexFuture, len(entries))
	for i, e := range entries {
		futures[i] = app.Add(ctx, tessera.NewEntry(e))
	}
	for i, f := range futures {
		idx, err := f()
		if err != nil {
			return fmt.Errorf("appending entry %d: %w", i, err)
		}
		if idx.Index != uint64(i) {
			return fmt.Errorf("entry %d was sequenced at %d", i, idx.Index)
		}
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if err == nil {
			if _, rest, ok := strings.Cut(string(b), "\n"); ok {
				if size, _, _ := strings.Cut(rest, "\n"); size == fmt.Sprint(len(entries)) {
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return shutdown(ctx)
}

func benchRelease(i int64, op *statement.Signer) ([]byte, error) {
	payload, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", i)}}}, &statement.Release{
		Version: fmt.Sprintf("1.%d", i), Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", i)}},
		Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make", "image"}, Outputs: []string{"disk.img"}},
	})
	if err != nil {
		return nil, err
	}
	return statement.Sign(payload, op)
}

func benchRef(i int64, ref statement.EntryRef, op, au *statement.Signer) ([]byte, error) {
	t := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	if i%20 == 9 {
		payload, err := statement.EncodeReproduction(ref, &statement.Reproduction{Outcome: statement.OutcomeMatch, Time: t,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", ref.Index)}}})
		if err != nil {
			return nil, err
		}
		return statement.Sign(payload, au)
	}
	payload, err := statement.EncodeRevocation(ref, &statement.Revocation{Reason: fmt.Sprintf("benchmark revocation %d", i), Time: t})
	if err != nil {
		return nil, err
	}
	return statement.Sign(payload, op)
}

// benchLeafHasher is the bundle hasher of Tessera's cmd/fsck: the RFC 6962
// leaf hash of each entry of a c2sp.org/tlog-tiles entry bundle.
func benchLeafHasher(bundle []byte) ([][]byte, error) {
	eb := &tapi.EntryBundle{}
	if err := eb.UnmarshalText(bundle); err != nil {
		return nil, fmt.Errorf("unmarshal: %v", err)
	}
	r := make([][]byte, 0, len(eb.Entries))
	for _, e := range eb.Entries {
		h := rfc6962.DefaultHasher.HashLeaf(e)
		r = append(r, h[:])
	}
	return r, nil
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
