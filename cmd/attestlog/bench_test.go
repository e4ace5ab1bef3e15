package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/bench"
	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
)

// 'bench append' against a real 'up': the log gets exactly the entries the
// run reports, and both baselines run on the same entries and print a ratio.
func TestBenchAppend(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir, "--auditor=false")
	before := treeSize(t, u.info.URL)
	out := runCmd(t, "bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key,
		"--sweep", "4,8", "--duration", "2s", "--entries", "800", "--baseline", "tessera,floor,rekor", "--proof-latency",
		"--rekor-checkpoint-interval", "200ms", "--log-pid", strconv.Itoa(u.cmd.Process.Pid))
	line := regexp.MustCompile(`(?m)^(attestlog|tessera|floor|rekor-v2) +(\d+) entries in .* \((\d+) errors.*\((\d+) writers\)$`)
	got := map[string]int{}
	runs := map[string]int{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		if m[3] != "0" {
			t.Errorf("%s run had %s errors:\n%s", m[1], m[3], out)
		}
		if n <= 0 {
			t.Errorf("%s run at %s writers sent nothing:\n%s", m[1], m[4], out)
		}
		got[m[1]] += n
		runs[m[1]]++
	}
	for _, name := range []string{"attestlog", "tessera", "floor", "rekor-v2"} {
		if runs[name] != 2 {
			t.Errorf("%s: %d runs, want one per writer count of the sweep:\n%s", name, runs[name], out)
		}
		if name == "attestlog" {
			continue
		}
		b := strings.TrimSuffix(name, "-v2")
		if !strings.Contains(out, "ratio      attestlog/"+b+" throughput at 8 writers") || !strings.Contains(out, "ratio      attestlog/"+b+" throughput at each one's saturation") {
			t.Errorf("no ratios to %s:\n%s", name, out)
		}
	}
	// CPU per acknowledged entry, of 'up' (the log's process here) and of
	// the floor's own process, and their ratio, at each writer count.
	for _, re := range []string{`(?m)^cpu +attestlog: \d+ µs per acknowledged entry`, `(?m)^cpu +floor: \d+ µs per acknowledged entry`, `(?m)^ratio +attestlog/floor CPU per acknowledged entry at \d+ writers = \d+\.\d+×`} {
		if n := len(regexp.MustCompile(re).FindAllString(out, -1)); n != 2 {
			t.Errorf("%d lines match %s, want one per run:\n%s", n, re, out)
		}
	}
	if got["attestlog"] > 800 {
		t.Errorf("the log got %d entries of 800: the sweep's runs sent some twice", got["attestlog"])
	}
	if m := regexp.MustCompile(`attestlog +POST to witnessed proof, (\d+) sampled entries: p50 \S+ +p99 \S+ +\(0 errors\)`).FindAllStringSubmatch(out, -1); len(m) != 2 {
		t.Errorf("want a proof latency line per run:\n%s", out)
	}
	// Every acknowledged entry is in the log (the bench waited for the
	// index to reach the last one, so the tree covers it).
	waitFor(t, func() bool { return treeSize(t, u.info.URL) >= before+uint64(got["attestlog"]) }, "the tree to cover the bench's entries")

	checkBenchRounds(t, u)

	if _, stderr, err := tryCmd(t, "bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key, "--baseline", "nginx"); err == nil || !strings.Contains(stderr, "the baselines are tessera, floor and rekor") {
		t.Errorf("--baseline nginx: err %v, stderr %q", err, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--storage", "s3", "--baseline", "floor"}, "--storage s3 needs --s3-bucket and --mysql-dsn"},
		{[]string{"--storage", "s3", "--s3-bucket", "b", "--mysql-dsn", "x", "--baseline", "tessera"}, "--baseline tessera runs on POSIX only"},
		{[]string{"--storage", "gcs"}, "--storage \"gcs\": posix or s3"},
		{[]string{"--log-pid", "0"}, "--log-pid \"0\": want process IDs"},
		{[]string{"--rounds", "2", "--baseline", "rekor", "--log-pid", strconv.Itoa(u.cmd.Process.Pid)}, "more than one round alternates the log and the floor"},
		{[]string{"--rounds", "2", "--baseline", "floor"}, "give --baseline floor and --log-pid"},
		{[]string{"--rounds", "0"}, "--rounds N (N ≥ 1)"},
	} {
		args := append([]string{"bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key}, tc.args...)
		if _, stderr, err := tryCmd(t, args...); err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("bench append %v: err %v, stderr %q, want %q", tc.args, err, stderr, tc.want)
		}
	}
}

// checkBenchRounds runs 'bench append --rounds 3': the log and the floor
// alternate, each round says what each did, and the totals are the sums of
// the rounds, with the CPU ratio of the totals.
func checkBenchRounds(t *testing.T, u *upProc) {
	t.Helper()
	out := runCmd(t, "bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key, "--writers", "4", "--duration", "3s",
		"--entries", "600", "--baseline", "floor", "--rounds", "3", "--log-pid", strconv.Itoa(u.cmd.Process.Pid))
	round := regexp.MustCompile(`(?m)^round (\d)/3  attestlog (\d+) entries, (\d+) µs per entry; floor (\d+) entries, (\d+) µs per entry; ratio (\d+\.\d+)×$`)
	rounds := round.FindAllStringSubmatch(out, -1)
	if len(rounds) != 3 {
		t.Fatalf("%d round lines, want 3:\n%s", len(rounds), out)
	}
	var logN, floorN int
	var logUS, floorUS float64 // CPU of the rounds, from their per-entry figures
	for i, m := range rounds {
		if m[1] != strconv.Itoa(i+1) {
			t.Errorf("round %d is numbered %s", i+1, m[1])
		}
		l, _ := strconv.Atoi(m[2])
		f, _ := strconv.Atoi(m[4])
		if l == 0 || f == 0 {
			t.Errorf("round %d: attestlog %d, floor %d entries; want both loaded:\n%s", i+1, l, f, out)
		}
		logN, floorN = logN+l, floorN+f
		lus, _ := strconv.Atoi(m[3])
		fus, _ := strconv.Atoi(m[5])
		logUS, floorUS = logUS+float64(lus*l), floorUS+float64(fus*f)
	}
	cpu := regexp.MustCompile(`(?m)^cpu +(attestlog|floor): \d+ µs per acknowledged entry  \((\d+\.\d+) s of CPU for (\d+) entries.*, 3 rounds\)$`)
	totals := map[string][2]float64{}
	for _, m := range cpu.FindAllStringSubmatch(out, -1) {
		sec, _ := strconv.ParseFloat(m[2], 64)
		n, _ := strconv.ParseFloat(m[3], 64)
		totals[m[1]] = [2]float64{sec, n}
	}
	if totals["attestlog"][1] != float64(logN) || totals["floor"][1] != float64(floorN) {
		t.Errorf("totals %v; want the rounds' sums, attestlog %d and floor %d entries:\n%s", totals, logN, floorN, out)
	}
	// Each round's figure is truncated to a µs and the totals to 10 ms.
	for name, us := range map[string]float64{"attestlog": logUS, "floor": floorUS} {
		if tot := totals[name]; math.Abs(tot[0]*1e6-us) > tot[1]+10_000 {
			t.Errorf("%s: %.2f s of CPU in the totals, %.3f s in the rounds", name, tot[0], us/1e6)
		}
	}
	m := regexp.MustCompile(`(?m)^ratio +attestlog/floor CPU per acknowledged entry at 4 writers = (\d+\.\d+)×  \(of the totals; rounds (\d+\.\d+)–(\d+\.\d+)×, median (\d+\.\d+)×\)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ratio of the totals:\n%s", out)
	}
	got, _ := strconv.ParseFloat(m[1], 64)
	a, f := totals["attestlog"], totals["floor"]
	if want := (a[0] / a[1]) / (f[0] / f[1]); math.Abs(got-want) > 0.01*want+0.01 {
		t.Errorf("ratio of the totals printed %.2f, from the printed totals %.3f", got, want)
	}
	lo, _ := strconv.ParseFloat(m[2], 64)
	hi, _ := strconv.ParseFloat(m[3], 64)
	if lo > hi {
		t.Errorf("round ratios %v–%v are not a range", lo, hi)
	}
}

func treeSize(t *testing.T, url string) uint64 {
	t.Helper()
	cp := httpGet(t, url+"/checkpoint")
	lines := strings.SplitN(cp, "\n", 3)
	if len(lines) < 3 {
		t.Fatalf("bad checkpoint %q", cp)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("bad checkpoint size in %q", cp)
	}
	return size
}

// 'bench soak' against a real 'up' (auditor included): a short run of
// every kind of client reports no server error, every acknowledged entry
// in the tree, and a root recomputed from the tiles that matches
// (internal/bench's TestSoakConsistency checks that the check catches an
// entry that is not what was acknowledged).
func TestBenchSoak(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	out, stderr, err := tryCmd(t, "bench", "soak", "--up", filepath.Join(u.dir, "up.json"), "--duration", "6s", "--rate", "20",
		"--readers", "3", "--explorer", "1", "--garbage", "1", "--slow", "1", "--sample", "2s", "--json")
	if err != nil {
		t.Fatalf("bench soak: %v\n%s\n%s", err, out, stderr)
	}
	var rep bench.SoakResult
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := rep.Consistency
	if !rep.OK || rep.ServerError != 0 || c.Acked == 0 || c.Missing != 0 || !c.RootMatch || len(rep.RSS) < 2 {
		t.Errorf("soak report: %s", out)
	}
	for _, route := range []string{"POST /add", "GET /proof", "garbage POST /add", "short-body POST /add", "witness POST /add-checkpoint", "GET /audit/"} {
		if len(rep.Requests[route]) == 0 {
			t.Errorf("no %s requests in the report", route)
		}
	}
	if n := rep.Requests["short-body POST /add"]["400"]; n == 0 {
		t.Errorf("short bodies: %v, want 400s", rep.Requests["short-body POST /add"])
	}
}

// TestBenchGrow: a small 'bench grow' reports a row per step, each with
// the log's size grown, and a reindex of the whole log at the end.
func TestBenchGrow(t *testing.T) {
	checkGrow(t, runCmd(t, "bench", "grow", "--entries", "600", "--step", "300", "--samples", "20", "--writers", "16", "--dir", t.TempDir()))
}

// TestBenchGrowS3: the same on SeaweedFS and MariaDB (the S3 storage):
// the log grows in the bucket, the reindex reads the tree back from it.
func TestBenchGrowS3(t *testing.T) {
	sw := seaweedtest.Start(t, "attestlog-grow")
	db := mariadbtest.StartServer(t, mariadbtest.Options{})
	t.Setenv("AWS_ACCESS_KEY_ID", sw.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sw.SecretAccessKey)
	out := runCmd(t, "bench", "grow", "--entries", "600", "--step", "300", "--samples", "20", "--writers", "16", "--dir", t.TempDir(),
		"--storage", "s3", "--s3-endpoint", sw.Endpoint, "--s3-bucket", sw.Bucket, "--mysql-dsn", db.DSN)
	checkGrow(t, out)
	// The tiles are in the bucket: the checkpoint there covers the log.
	cp, err := sw.Get(t.Context(), "checkpoint")
	if err != nil {
		t.Fatalf("no checkpoint in the bucket: %v", err)
	}
	if lines := strings.SplitN(string(cp), "\n", 3); len(lines) < 3 {
		t.Errorf("the bucket's checkpoint %q", cp)
	} else if size, err := strconv.ParseUint(lines[1], 10, 64); err != nil || size < 600 {
		t.Errorf("the bucket's checkpoint is of size %d (%v), want at least 600:\n%s", size, err, cp)
	}
	if _, _, err := tryCmd(t, "bench", "grow", "--storage", "s3"); err == nil {
		t.Error("bench grow --storage s3 without a bucket and database ran")
	}
}

// checkGrow checks bench grow's report of 600 entries in two steps: a row
// a step, each 300 entries (and their index checkpoints) more, a rate and
// a CPU cost per entry, and a reindex of all of them.
func checkGrow(t *testing.T, out string) {
	t.Helper()
	rows := regexp.MustCompile(`(?m)^ +(\d+) +(\d+) +\S+ +\S+ +(\S+) +\S+ +\S+ +(\d+) +\d+$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 2 {
		t.Fatalf("want two rows:\n%s", out)
	}
	prev := 0
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		if n < prev+300 || n > prev+310 {
			t.Errorf("a row says the log has %d entries after %d: want 300 more (and its index checkpoints)", n, prev)
		}
		if rate, _ := strconv.Atoi(r[2]); rate <= 0 {
			t.Errorf("append rate %s", r[2])
		}
		if d, err := time.ParseDuration(r[3]); err != nil || d <= 0 {
			t.Errorf("cpu/entry %q", r[3])
		}
		prev = n
	}
	if m := regexp.MustCompile(`reindex: (\d+) entries in`).FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(prev) {
		t.Errorf("no reindex of all %d entries:\n%s", prev, out)
	}
}

// TestBenchAudit: the auditor verifies every entry of the benchmark's log
// with either index map, raises nothing, and the report says where the map
// lived and what heap the auditor kept.
func TestBenchAudit(t *testing.T) {
	for _, mode := range []string{"file", "memory"} {
		out := runCmd(t, "bench", "audit", "--entries", "400", "--index-map", mode)
		if m := regexp.MustCompile(`(?m)^attestlog auditor \(full verification\) +(\d+) `).FindStringSubmatch(out); m == nil || m[1] != "400" {
			t.Errorf("%s: the auditor did not verify all 400 entries:\n%s", mode, out)
		}
		if !regexp.MustCompile(`auditor memory \(index_map ` + mode + `: .*\): Go heap \d+ MB live after following \(\d+ bytes per entry\)`).MatchString(out) {
			t.Errorf("%s: no memory line:\n%s", mode, out)
		}
	}
	if _, errOut, err := tryCmd(t, "bench", "audit", "--entries", "10", "--index-map", "disk"); err == nil || !strings.Contains(errOut, `--index-map "disk": file or memory`) {
		t.Errorf("--index-map disk: %v, %s", err, errOut)
	}
}
