package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/witness"
)

// witnessOutageFlag is how long TestWitnessOutage keeps the witness down:
// `go test ./cmd/attestlog -run TestWitnessOutage -args -witness-outage=1m`
// (or ATTESTLOG_WITNESS_OUTAGE=1m) runs the full minute of the issue;
// CI's default is shorter (defaultWitnessOutage).
var witnessOutageFlag = flag.Duration("witness-outage", 0, "how long TestWitnessOutage keeps the witness down (default 15s, or $ATTESTLOG_WITNESS_OUTAGE)")

// defaultWitnessOutage bounds CI's time: the log's behaviour does not
// change after its first few failed rounds of witnessing.
const defaultWitnessOutage = 15 * time.Second

func witnessOutage(t *testing.T) time.Duration {
	if *witnessOutageFlag > 0 {
		return *witnessOutageFlag
	}
	if s := os.Getenv("ATTESTLOG_WITNESS_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("ATTESTLOG_WITNESS_OUTAGE=%q: want a positive duration such as 1m", s)
		}
		return d
	}
	return defaultWitnessOutage
}

// TestWitnessOutage runs `attestlog log serve` (POSIX tiles and SQLite,
// the default storage) whose witness policy's quorum is one `attestlog
// witness serve`, under writers, and kills the witness with SIGKILL for a
// while (witnessOutage) before starting it again on the same database.
// While the witness is down every append is acknowledged (the log
// sequences and integrates without the witness: no 503), entries are
// acknowledged beyond what the witness last cosigned, and no checkpoint
// served is larger than what the witness had cosigned when it died (and
// every one verifies with its cosignature). Once the witness is back,
// publication catches up: a witnessed checkpoint covers every
// acknowledged entry, each once, consistent with every checkpoint served;
// the witness cosigned one stream (no evidence recorded, at most one 409
// for the checkpoint it cosigned as it was killed).
func TestWitnessOutage(t *testing.T) {
	outage := witnessOutage(t)
	logAddr := freeAddr(t)
	logURL := "http://" + logAddr
	st := newLogSetup(t, "attestlog.test/witness-outage", freeAddr(t))
	origin, witURL, clientPol, op := st.origin, st.witURL, st.clientPol, st.op
	witDB := filepath.Join(st.dir, "witness.db")
	wit := st.startWitness(t, exec.Command)
	lcfg := st.logConfig(t, "log.yaml", logAddr, "  posix: {dir: tiles}", "index.db", "")
	lg := startDaemon(t, "log", exec.Command(binary, "log", "serve", "--config", lcfg))
	waitHTTP(t, lg, logURL+"/checkpoint")

	var bg sync.WaitGroup
	stop, halt := loadStopper(t, &bg)
	cps := watchCheckpoints(t, []string{logURL}, clientPol, stop, &bg)
	ld := startLoad(t, []string{logURL}, op, stop, &bg)

	time.Sleep(3 * time.Second)
	wit.kill()
	down := time.Now()
	t.Logf("killed the witness for %v", outage)
	time.Sleep(outage)
	// What the witness had cosigned when it died, from its database
	// (nothing runs on it now).
	out := runCmd(t, "witness", "list-logs", "--db", witDB)
	var cosigned witness.LogInfo
	if err := json.Unmarshal([]byte(out), &cosigned); err != nil || cosigned.Origin != origin {
		t.Fatalf("witness list-logs printed %q (%v)", out, err)
	}
	gauges := logGauges(t, logURL)
	// back is taken before the restart: a checkpoint the returning witness
	// cosigned must not count as served while it was down.
	back := time.Now()
	wit = st.startWitness(t, exec.Command)
	t.Logf("restarted the witness, which had cosigned size %d; log's gauges at the end of the outage: %v", cosigned.Size, gauges)
	if gauges["attestlog_log_quorum_lag_entries"] <= 0 || uint64(gauges["attestlog_log_tree_size"]) > cosigned.Size {
		t.Errorf("log's gauges at the end of the outage %v: want a quorum lag, and the published size at most the witness's %d", gauges, cosigned.Size)
	}
	// Publication catches up: a checkpoint beyond what the witness had
	// cosigned is served (the load goes on meanwhile).
	waitFor(t, func() bool {
		cps.mu.Lock()
		defer cps.mu.Unlock()
		for _, s := range cps.history {
			if s.at.After(back) && uint64(s.n) > cosigned.Size {
				return true
			}
		}
		return false
	}, "publication to catch up once the witness is back")
	time.Sleep(time.Second) // a little more load after it
	halt()

	// While the witness was down: every append acknowledged, some beyond
	// what it had cosigned; nothing served beyond what it had cosigned.
	ld.mu.Lock()
	var during, beyond int
	var maxIdx uint64
	for _, a := range ld.acks {
		maxIdx = max(maxIdx, a.idx)
		if a.at.After(down) && a.at.Before(back) {
			during++
			if a.idx >= cosigned.Size {
				beyond++
			}
		}
	}
	var failed []failure
	for _, f := range ld.failures {
		if f.at.After(down) && f.at.Before(back) {
			failed = append(failed, f)
		}
	}
	t.Logf("%d statements acknowledged (%d not), %d while the witness was down (%d beyond the size it had cosigned, %d)", len(ld.acks), ld.fails.Load(), during, beyond, cosigned.Size)
	ld.mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("%d appends were not acknowledged while the witness was down (first: status %d at +%v); want every one acknowledged", len(failed), failed[0].code, failed[0].at.Sub(down).Round(time.Millisecond))
	}
	if during < 50 || beyond == 0 {
		t.Errorf("%d appends acknowledged while the witness was down, %d beyond the size it had cosigned: want the log to go on appending", during, beyond)
	}
	cps.mu.Lock()
	var caughtUp time.Duration
	var servedDuring int
	for _, s := range cps.history {
		if s.at.After(down) && s.at.Before(back) {
			servedDuring++
			if uint64(s.n) > cosigned.Size {
				t.Errorf("checkpoint of size %d served at +%v while the witness was down, beyond the %d it had cosigned", s.n, s.at.Sub(down).Round(time.Millisecond), cosigned.Size)
			}
		}
		if s.at.After(back) && uint64(s.n) > cosigned.Size && caughtUp == 0 {
			caughtUp = s.at.Sub(back)
		}
	}
	cps.mu.Unlock()
	if caughtUp == 0 {
		t.Errorf("no checkpoint beyond size %d was served after the witness came back", cosigned.Size)
	}
	t.Logf("publication resumed %v after the witness came back", caughtUp.Round(time.Millisecond))

	// After: a witnessed checkpoint covers everything, once; the witness's
	// last size before the outage is a prefix of the final tree.
	final := checkFinal(t, logURL, clientPol, ld, cps, 60*time.Second)
	if uint64(final.N) <= maxIdx {
		t.Fatalf("final checkpoint %d does not cover entry %d", final.N, maxIdx)
	}
	if root, err := base64.StdEncoding.DecodeString(cosigned.RootHash); err != nil || len(root) != tlog.HashSize {
		t.Errorf("witness list-logs root hash %q: %v", cosigned.RootHash, err)
	} else if cosigned.Size > 0 {
		if err := tlogcheck.Consistent(t.Context(), logURL, tlog.Tree{N: int64(cosigned.Size), Hash: tlog.Hash(root)}, tlog.Tree{N: final.N, Hash: final.Hash}); err != nil {
			t.Errorf("what the witness cosigned before the outage: %v", err)
		}
	}
	if ev := strings.TrimSpace(runCmd(t, "witness", "list-evidence", "--db", witDB)); ev != "" {
		t.Errorf("the witness recorded evidence of an inconsistent log: %s", ev)
	}
	codes := witnessAnswers(t, witURL)
	t.Logf("witness add-checkpoint answers by code since it came back: %v", codes)
	if codes["200"] < 1 || codes["409"] > 1 || len(codes) > 2 {
		t.Errorf("witness add-checkpoint answers %v since it came back: want cosignatures, and at most one 409 (for what it cosigned as it was killed)", codes)
	}
}

// logGauges is the log's gauges of publication: the published tree's
// size, the integrated size, and the quorum lag between them.
func logGauges(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := map[string]float64{}
	for l := range strings.SplitSeq(string(b), "\n") {
		for _, name := range []string{"attestlog_log_tree_size", "attestlog_log_integrated_size", "attestlog_log_quorum_lag_entries"} {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				m[name], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return m
}
