package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/internal/bench"
	"github.com/attestlog/attestlog/internal/up"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/witness/driver"
)

// The bench commands parse and check their flags here; internal/bench
// runs them.
func init() {
	register("bench append", "load a log with signed releases; report entries/s and latency", runBenchAppend)
	register("bench floor-serve", "serve the floor of 'bench append' in a process of its own (bench append starts it)", runBenchFloorServe)
	register("bench audit", "follow a log of N entries with full per-entry verification; compare with Tessera's fsck over the same log", runBenchAudit)
	register("bench grow", "grow a log to N entries in steps; report how append, proofs, lookups, the index and a reindex cost as it grows", runBenchGrow)
	register("bench witness", "load a tlog-witness with many advancing logs; report cosignatures/s and latency", runBenchWitness)
	register("bench channel", "measure the attested channel against its baselines in one run: new client vs plain TLS, warm requests, streamed throughput vs direct, hardware reports vs clients, agent memory per connection", runBenchChannel)
	register("bench soak", "run mixed load (publishers, readers, explorer, witness, hostile clients) against 'attestlog up'; report statuses, p99 per route, RSS over time and a final consistency check", runBenchSoak)
}

// runBench runs a benchmark until it returns or SIGINT or SIGTERM.
func runBench(f func(ctx context.Context) error) error {
	ctx, cancel := signalContext()
	defer cancel()
	return f(ctx)
}

// addBenchStorageFlags adds the flags naming the storage of the floor.
func addBenchStorageFlags(fs *flag.FlagSet) *bench.Storage {
	return addStorageFlags(fs, "the floor and the tessera baseline", "; give the log the same kind", "the floor's log")
}

// addStorageFlags adds the flags naming the storage of what (help texts:
// note after the kinds, whose for the bucket and database).
func addStorageFlags(fs *flag.FlagSet, what, note, whose string) *bench.Storage {
	var s bench.Storage
	fs.StringVar(&s.Kind, "storage", "posix", "storage of "+what+": posix (a temporary directory) or s3 (--s3-endpoint, --s3-bucket, --mysql-dsn, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"+note)
	fs.StringVar(&s.Endpoint, "s3-endpoint", "", "with --storage s3: the S3-compatible server's URL (empty: AWS)")
	fs.StringVar(&s.Bucket, "s3-bucket", "", "with --storage s3: an empty bucket for "+whose)
	fs.StringVar(&s.Region, "s3-region", logserver.DefaultS3Region, "with --storage s3: the bucket's region")
	fs.StringVar(&s.DSN, "mysql-dsn", "", "with --storage s3: an empty MySQL/MariaDB database for "+whose)
	return &s
}

func runBenchAppend(args []string) error {
	fs := newFlagSet("bench append", "--log URL --key operator.key [--writers N | --sweep N,N,…] [--duration D] [--entries N] [--baseline tessera,floor,rekor] [--rate R] [--proof-latency] [--log-pid PID [--rounds N]]")
	var o bench.AppendOptions
	fs.StringVar(&o.Log, "log", "", "URL of the log to load (e.g. the one 'attestlog up' runs)")
	fs.StringVar(&o.Key, "key", "", "operator key the log trusts (e.g. attestlog-data/operator.key)")
	writers := fs.Int("writers", 256, "concurrent writers")
	sweep := fs.String("sweep", "", "`LIST` of writer counts to run each system at in turn (e.g. 256,1024,4096,8192), instead of --writers; the highest rate of each is its saturation")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.Entries, "entries", 60000, "releases to sign before the runs (about 6 KB each in memory); the log gets each once, in order, across all its runs; the baselines get the same ones, cycling through them")
	baseline := fs.String("baseline", "", "`LIST` of baselines to run after the log, on the same entries, printing the ratio to each: \"tessera\" (a bare Tessera POSIX appender in this process), \"floor\" (HTTP + envelope decode + one signature check + bare Tessera), \"rekor\" (Rekor v2's POSIX server, each entry's SHA-512 as a hashedrekord with an Ed25519ph signature made beforehand), e.g. tessera,floor,rekor")
	fs.StringVar(&o.Rekor, "rekor", "", "rekor-server binary for --baseline rekor (default: built with go build "+loadtest.RekorPkg+" from this module)")
	fs.StringVar(&o.RekorS3Bucket, "rekor-s3-bucket", "", "with --storage s3 and --baseline rekor: an empty bucket for Rekor v2's AWS server, on --s3-endpoint")
	fs.StringVar(&o.RekorMySQLDSN, "rekor-mysql-dsn", "", "with --storage s3 and --baseline rekor: an empty MySQL/MariaDB database for Rekor v2's AWS server")
	fs.DurationVar(&o.RekorInterval, "rekor-checkpoint-interval", time.Second, "Rekor's checkpoint interval (it answers a write once a checkpoint covers it)")
	fs.Float64Var(&o.Rate, "rate", 0, "offer at most this many entries per second to the log in all (an open-loop load; 0: as fast as the writers go); the baselines are not paced")
	fs.BoolVar(&o.ProofLatency, "proof-latency", false, "also measure, for the first and every 100th acknowledged entry of a run, the time from the POST to a witnessed inclusion proof (as publish --wait gets it); Rekor answers with its proof, so its latency to a proof is its latency to the acknowledgement")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of this (client) process's load run against the log to `FILE`")
	fs.IntVar(&o.Rounds, "rounds", 1, "with --baseline floor and --log-pid: run the log and the floor in `N` alternating rounds of --duration/N each (log, floor, log, floor, …), so that both see the same machine, and give the CPU ratio of their totals beside each round's")
	logPIDs := fs.String("log-pid", "", "`LIST` of the log's process IDs (its frontends on this machine): report the CPU time they use per acknowledged entry (/proc/PID/stat, user + system), beside the floor's (measured the same way in its own process)")
	bs := addBenchStorageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Log == "" || o.Key == "" || *writers <= 0 || o.Duration <= 0 || o.Entries <= 0 {
		fmt.Fprintln(fs.Output(), "--log and --key are required; --writers, --duration and --entries must be positive")
		fs.Usage()
		return errUsage
	}
	o.Writers = []int{*writers}
	if *sweep != "" {
		o.Writers = nil
		for f := range strings.SplitSeq(*sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 || n > 65536 {
				fmt.Fprintf(fs.Output(), "--sweep %q: want writer counts from 1 to 65536\n", *sweep)
				return errUsage
			}
			o.Writers = append(o.Writers, n)
		}
	}
	if *baseline != "" {
		for b := range strings.SplitSeq(*baseline, ",") {
			if b != "tessera" && b != "floor" && b != "rekor" {
				fmt.Fprintf(fs.Output(), "--baseline %q: the baselines are tessera, floor and rekor\n", b)
				return errUsage
			}
			o.Baselines = append(o.Baselines, b)
		}
	}
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
			o.LogPIDs = append(o.LogPIDs, n)
		}
	}
	if o.Rounds < 1 || o.Rounds > 1 && (!slices.Contains(o.Baselines, "floor") || len(o.LogPIDs) == 0) {
		fmt.Fprintln(fs.Output(), "--rounds N (N ≥ 1): more than one round alternates the log and the floor; give --baseline floor and --log-pid")
		return errUsage
	}
	if bs.Kind == "s3" && slices.Contains(o.Baselines, "tessera") {
		fmt.Fprintln(fs.Output(), "--baseline tessera runs on POSIX only; with --storage s3 the floor is the baseline on the same storage")
		return errUsage
	}
	if bs.Kind == "s3" && slices.Contains(o.Baselines, "rekor") && (o.RekorS3Bucket == "" || o.RekorMySQLDSN == "") {
		fmt.Fprintln(fs.Output(), "--baseline rekor with --storage s3 runs Rekor v2's AWS server: give it --rekor-s3-bucket and --rekor-mysql-dsn")
		return errUsage
	}
	if _, err := bs.LogStorage("/nonexistent"); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	o.Storage = *bs
	return runBench(func(ctx context.Context) error { return bench.Append(ctx, o, os.Stdout, stderr) })
}

func runBenchFloorServe(args []string) error {
	fs := newFlagSet("bench floor-serve", "--operator KEY --dir DIR [--storage posix|s3 …]")
	operator := fs.String("operator", "", "the operator's public key, whose signature the floor checks")
	dir := fs.String("dir", "", "directory for the signing key (and POSIX storage)")
	bs := addBenchStorageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key, err := statement.ParsePublicKey(*operator)
	if err != nil || *dir == "" {
		fs.Usage()
		return errUsage
	}
	o := bench.FloorOptions{Operator: key, Dir: *dir, Storage: *bs}
	// The floor runs with the log server's garbage collector setting, so
	// that the two spend alike on collection (its CPU is the baseline of
	// the log's). ATTESTLOG_CPUPROFILE (here set on 'bench append', whose
	// environment the floor inherits) profiles it, as it does the log.
	serverGC()
	stop, err := envCPUProfile()
	if err != nil {
		return err
	}
	defer stop()
	return runBench(func(ctx context.Context) error { return bench.FloorServe(ctx, o, os.Stdout) })
}

func runBenchAudit(args []string) error {
	fs := newFlagSet("bench audit", "[--entries N] [--fsck-workers K] [--index-map file|memory] [--cpuprofile FILE]")
	var o bench.AuditOptions
	fs.IntVar(&o.Entries, "entries", 100000, "entries in the benchmark log (releases, with a reproduction or revocation every 10th)")
	fs.UintVar(&o.FsckWorkers, "fsck-workers", 2, "Tessera fsck's -N (parallel fetchers)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the auditor phase to `FILE`")
	fs.StringVar(&o.IndexMap, "index-map", "file", "the auditor's index_map: file or memory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Entries <= 0 {
		fmt.Fprintln(fs.Output(), "--entries must be positive")
		return errUsage
	}
	if o.IndexMap != "file" && o.IndexMap != "memory" {
		fmt.Fprintf(fs.Output(), "--index-map %q: file or memory\n", o.IndexMap)
		return errUsage
	}
	newLogger() // route Tessera's klog through slog
	return runBench(func(ctx context.Context) error { return bench.Audit(ctx, o, os.Stdout, stderr) })
}

func runBenchGrow(args []string) error {
	fs := newFlagSet("bench grow", "[--entries N] [--step N] [--writers N] [--dir DIR] [--index-map memory|file] [--storage posix|s3 …]")
	var o bench.GrowOptions
	o.Storage = addStorageFlags(fs, "the log", "", "the log")
	fs.IntVar(&o.Entries, "entries", 1000000, "grow the log to this many releases")
	fs.IntVar(&o.Step, "step", 100000, "measure after every this many")
	fs.IntVar(&o.Writers, "writers", 256, "concurrent writers while appending")
	fs.StringVar(&o.Dir, "dir", "", "directory for the log (default: a temporary one, removed afterwards)")
	fs.IntVar(&o.Samples, "samples", 300, "proofs and lookups timed after each step")
	fs.StringVar(&o.IndexMap, "index-map", "memory", "the log's index_map: memory or file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.IndexMap != "file" && o.IndexMap != "memory" {
		fmt.Fprintf(fs.Output(), "--index-map %q: memory or file\n", o.IndexMap)
		return errUsage
	}
	if o.Entries <= 0 || o.Step <= 0 || o.Writers <= 0 || o.Samples <= 0 {
		fmt.Fprintln(fs.Output(), "--entries, --step, --writers and --samples must be positive")
		return errUsage
	}
	if _, err := o.Storage.LogStorage(""); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	return runBench(func(ctx context.Context) error { return bench.Grow(ctx, o, os.Stdout, stderr) })
}

func runBenchWitness(args []string) error {
	fs := newFlagSet("bench witness", "[--witness URL --witness-db FILE] --logs N --duration D [--rate R] [--baseline litewitness]")
	var o bench.WitnessOptions
	fs.StringVar(&o.Witness, "witness", "", "submission URL of a running attestlog witness; empty: start one (attestlog witness serve) for this run")
	fs.StringVar(&o.WitnessDB, "witness-db", "", "with --witness: its SQLite database, to add the benchmark's logs to (as witness add-log does)")
	fs.IntVar(&o.Logs, "logs", 100, "number of logs, each advancing its tree by one leaf per checkpoint")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the measured phase")
	fs.Float64Var(&o.Rate, "rate", 0, "checkpoints per second per log (open loop, latency from the scheduled time); 0: closed loop at maximum throughput")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "closed-loop workers (with --rate 0)")
	fs.StringVar(&o.Baseline, "baseline", "", `"litewitness": run the same load against a litewitness started here and print the ratio`)
	fs.StringVar(&o.Litewitness, "litewitness", "", "litewitness binary for --baseline (default: litewitness on PATH, else built with go build "+driver.LitewitnessPkg+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Logs <= 0 || o.Duration <= 0 || o.Rate < 0 || o.Concurrency <= 0 {
		fmt.Fprintln(fs.Output(), "--logs, --duration and --concurrency must be positive, --rate not negative")
		fs.Usage()
		return errUsage
	}
	if o.Baseline != "" && o.Baseline != "litewitness" {
		fmt.Fprintf(fs.Output(), "--baseline %q: only litewitness is supported\n", o.Baseline)
		return errUsage
	}
	if o.Witness != "" && o.WitnessDB == "" {
		fmt.Fprintln(fs.Output(), "--witness needs --witness-db, to register the benchmark's logs")
		return errUsage
	}
	return runBench(func(ctx context.Context) error { return bench.Witness(ctx, o, os.Stdout) })
}

func runBenchChannel(args []string) error {
	fs := newFlagSet("bench channel", "[--iterations N] [--stream-iterations N] [--clients 10,100,1000] [--window D] [--connections 1000,10000] [--gpus N] [--json]")
	var o bench.ChannelOptions
	fs.IntVar(&o.Iterations, "iterations", 200, "new clients and warm requests measured, each way")
	fs.IntVar(&o.StreamIterations, "stream-iterations", 8, "streams read each way, per stream kind")
	clientsFlag := fs.String("clients", "10,100,1000", "numbers of concurrent clients for the hardware-reports figure")
	fs.DurationVar(&o.Window, "window", 8*time.Second, "how long each number of clients runs for the hardware-reports figure")
	connsFlag := fs.String("connections", "1000,10000", "numbers of open connections for the memory figure (the agent runs as a child process, 'attestlog enclave'; the last number is its connection limit, and one more is refused)")
	fs.IntVar(&o.GPUs, "gpus", 1, "demo GPUs the enclave attests beside its CPU")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err1, err2 error
	o.Clients, err1 = parseInts(*clientsFlag)
	o.Connections, err2 = parseInts(*connsFlag)
	if err := errors.Join(err1, err2); err != nil || o.Iterations < 1 || o.StreamIterations < 1 || o.Window < time.Second || o.GPUs < 0 || o.GPUs > 8 {
		fmt.Fprintln(fs.Output(), "--iterations and --stream-iterations must be positive, --window at least 1s, --gpus 0 to 8, --clients and --connections comma-separated positive numbers", err)
		return errUsage
	}
	return runBench(func(ctx context.Context) error { return bench.Channel(ctx, o, os.Stdout, stderr) })
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func runBenchSoak(args []string) error {
	fs := newFlagSet("bench soak", "[--up attestlog-data/up.json] [--duration D] [--rate N] ...")
	var o bench.SoakOptions
	fs.StringVar(&o.Up, "up", up.DefaultDir+"/up.json", "the up.json of the running 'attestlog up' to load")
	fs.DurationVar(&o.Duration, "duration", 30*time.Minute, "how long to run the load")
	fs.Float64Var(&o.Rate, "rate", 40, "releases published per second, over all publishers")
	fs.IntVar(&o.Publishers, "publishers", 4, "concurrent publishers")
	fs.IntVar(&o.Readers, "readers", 8, "concurrent proof and lookup readers (each verifies what it reads)")
	fs.IntVar(&o.Explorer, "explorer", 2, "concurrent explorer and dashboard readers")
	fs.IntVar(&o.Garbage, "garbage", 2, "concurrent clients sending garbage, truncated bodies and random paths")
	fs.IntVar(&o.Slow, "slow", 2, "concurrent clients sending bodies slower than the server's read timeout")
	fs.DurationVar(&o.Sample, "sample", time.Minute, "how often to sample the up process's RSS")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Duration <= 0 || o.Rate <= 0 || o.Publishers <= 0 || o.Sample <= 0 {
		fmt.Fprintln(fs.Output(), "--duration, --rate, --publishers and --sample must be positive")
		return errUsage
	}
	return runBench(func(ctx context.Context) error { return bench.Soak(ctx, o, os.Stdout, stderr) })
}
