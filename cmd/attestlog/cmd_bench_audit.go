package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	tapi "github.com/transparency-dev/tessera/api"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/fsck"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

func init() {
	register("bench audit", "follow a log of N entries with full per-entry verification; compare with Tessera's fsck over the same log", runBenchAudit)
}

func runBenchAudit(args []string) error {
	fs := newFlagSet("bench audit", "[--entries N] [--writers W] [--fsck-workers K]")
	n := fs.Int("entries", 100000, "entries in the benchmark log (releases, with a reproduction or revocation every 10th)")
	writers := fs.Int("writers", 64, "concurrent writers building the log")
	fsckN := fs.Uint("fsck-workers", 2, "Tessera fsck's -N (parallel fetchers)")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the auditor phase to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n <= 0 || *writers <= 0 {
		fmt.Fprintln(fs.Output(), "--entries and --writers must be positive")
		return errUsage
	}
	ctx, cancel := signalContext()
	defer cancel()
	tmp, err := os.MkdirTemp("", "attestlog-bench-audit-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Printf("data in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	newLogger() // route Tessera's klog through slog
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	files := map[string]string{
		"policy.txt":         pol,
		"witness-policy.txt": "quorum none\n",
		"log.yaml": fmt.Sprintf("origin: %s\nlisten: %s\nkey: log.key\nstorage:\n  posix:\n    dir: tiles\nindex: index.db\npolicy: policy.txt\nwitness_policy: witness-policy.txt\ncheckpoint_interval: 1s\nbatch_max_size: 1024\n",
			origin, ln.Addr()),
	}
	for name, c := range files {
		if err := os.WriteFile(p(name), []byte(c), 0o644); err != nil {
			return err
		}
	}
	lcfg, err := logserver.LoadConfig(p("log.yaml"))
	if err != nil {
		return err
	}
	lg, err := logserver.Open(ctx, lcfg, quiet)
	if err != nil {
		return err
	}
	defer func() {
		cctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		lg.Close(cctx)
	}()
	srv := newServer(lg.Handler())
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	op, err := statement.LoadSigner(p("operator.key"))
	if err != nil {
		return err
	}
	au, err := statement.LoadSigner(p("auditor.key"))
	if err != nil {
		return err
	}
	fmt.Printf("building a log of %d entries with %d writers…\n", *n, *writers)
	start := time.Now()
	if err := benchFill(ctx, lg, op, au, *n, *writers); err != nil {
		return err
	}
	c, _ := client.New(base, nil)
	cpol, err := policy.Parse([]byte(fmt.Sprintf("log %s %s\nquorum none\n", lk.Public, base)))
	if err != nil {
		return err
	}
	for {
		raw, err := c.Checkpoint(ctx)
		if err == nil {
			if cp, err := cpol.VerifyCheckpoint(raw); err == nil && cp.N >= int64(*n) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("log built in %v (%.0f entries/s admitted)\n", time.Since(start).Round(time.Millisecond), float64(*n)/time.Since(start).Seconds())

	// 1. The auditor: checkpoint, every entry parsed strictly, canonical
	// form, signature against the policy, references, state in SQLite.
	acfg, err := auditor.ParseConfig([]byte(fmt.Sprintf("db: %s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: %s\n    witness_policy: %s\nrebuild:\n  enabled: false\n",
		p("auditor.db"), lk.Public, base, p("policy.txt"), p("witness-policy.txt"))))
	if err != nil {
		return err
	}
	a, err := auditor.Open(ctx, acfg, quiet)
	if err != nil {
		return err
	}
	defer a.Close()
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
	}
	t0 := time.Now()
	if err := a.RunOnce(ctx); err != nil {
		return err
	}
	auditDur := time.Since(t0)
	if *cpuProfile != "" {
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
	f := fsck.New(origin, v, hf, benchLeafHasher, fsck.Opts{N: *fsckN})
	t1 := time.Now()
	if err := f.Check(ctx); err != nil {
		return fmt.Errorf("tessera fsck: %w", err)
	}
	fsckDur := time.Since(t1)

	fmt.Printf("\n%-44s %10s %12s %14s\n", "", "entries", "time", "entries/s")
	fmt.Printf("%-44s %10d %12v %14.0f\n", "attestlog auditor (full verification)", verified, auditDur.Round(time.Millisecond), float64(verified)/auditDur.Seconds())
	fmt.Printf("%-44s %10d %12v %14.0f\n", fmt.Sprintf("tessera fsck (Merkle only, N=%d)", *fsckN), *n, fsckDur.Round(time.Millisecond), float64(*n)/fsckDur.Seconds())
	fmt.Printf("auditor / fsck time: %.2fx\n", auditDur.Seconds()/fsckDur.Seconds())
	return nil
}

// benchFill appends n statements: releases, and every 10th a reproduction
// (signed by the auditor) or a revocation of an earlier release.
func benchFill(ctx context.Context, lg *logserver.Log, op, au *statement.Signer, n, writers int) error {
	var next atomic.Int64
	var mu sync.Mutex
	releases := map[uint64][]byte{} // index → entry, for references
	var firstErr error
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				var entry []byte
				var err error
				if i%10 == 9 {
					mu.Lock()
					var ref statement.EntryRef
					for idx, e := range releases {
						ref = statement.RefOf(idx, e)
						delete(releases, idx)
						break
					}
					mu.Unlock()
					if ref.SHA256 != "" {
						entry, err = benchRef(i, ref, op, au)
					}
				}
				if entry == nil && err == nil {
					entry, err = benchRelease(i, op)
				}
				if err == nil {
					var res logserver.Result
					for {
						res, err = lg.Admit(ctx, entry)
						if errors.Is(err, tessera.ErrPushback) || errors.Is(err, logserver.ErrRetry) {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						break
					}
					if err == nil && res.Kind == statement.KindRelease {
						mu.Lock()
						releases[res.Index] = entry
						mu.Unlock()
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("adding entry %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
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
