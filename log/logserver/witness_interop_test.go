package logserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness"
	"github.com/attestlog/attestlog/witness/driver"
)

// TestLogWithThreeWitnesses runs attestlog's log with a 'group … all'
// quorum of attestlog's witness, litewitness and omniwitness (the real
// peers, built from the module cache and started on loopback): every
// checkpoint the log publishes carries all three cosignatures.
func TestLogWithThreeWitnesses(t *testing.T) {
	testenv.LookPath(t, "go")
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	binDir := t.TempDir()
	lwBin, err := driver.BuildPeer(ctx, binDir, driver.LitewitnessPkg)
	if err != nil {
		testenv.Missing(t, "litewitness", err)
	}
	owBin, err := driver.BuildPeer(ctx, binDir, driver.OmniwitnessPkg)
	if err != nil {
		testenv.Missing(t, "omniwitness", err)
	}

	// The log's key first: the witnesses must know it.
	keyDir := t.TempDir()
	skeyPath := filepath.Join(keyDir, "log.key")
	g, err := keyfile.Generate(keyfile.KindLog, testOrigin, skeyPath, "")
	if err != nil {
		t.Fatal(err)
	}

	// attestlog's witness, in process.
	wskey, _, _ := note.GenerateKey(rand.Reader, "ours.witness.test")
	wkey := filepath.Join(keyDir, "witness.key")
	if err := keyfile.WritePrivate(wkey, []byte(wskey)); err != nil {
		t.Fatal(err)
	}
	ours, err := witness.Open(ctx, witness.Config{Key: wkey, DB: filepath.Join(keyDir, "witness.db"),
		Logs: []witness.LogConfig{{Origin: testOrigin, VKey: g.Public}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	oursSrv := httptest.NewServer(ours.Handler())
	defer oursSrv.Close()

	out := &testenv.Buffer{}
	lwDir, err := os.MkdirTemp("", "lw") // short: the agent socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(lwDir)
	lite, err := driver.StartLitewitness(ctx, lwBin, lwDir, "litewitness.test/w", out)
	if err != nil {
		testenv.Missing(t, "litewitness with an ssh-agent", err)
	}
	defer lite.Close()
	if err := lite.AddLog(ctx, testOrigin, g.Public); err != nil {
		t.Fatal(err)
	}
	omni, err := driver.StartOmniwitness(ctx, owBin, t.TempDir(), "omniwitness.test/w", "", map[string]string{testOrigin: g.Public}, out)
	if err != nil {
		testenv.Missing(t, "omniwitness", err)
	}
	defer omni.Close()
	defer func() {
		if t.Failed() {
			t.Logf("peer output:\n%s", out.String())
		}
	}()

	wp := fmt.Sprintf("witness ours %s %s\nwitness lite %s %s\nwitness omni %s %s\ngroup all-three all ours lite omni\nquorum all-three\n",
		ours.VerifierKey(), oursSrv.URL, lite.VKey, lite.URL, omni.VKey, omni.URL)
	tl := newTestLogWitnessedKey(t, skeyPath, wp)

	var entries [][]byte
	for i := range 5 {
		e := release(t, tl.operator, measurement(500+i))
		tl.add(t, e)
		entries = append(entries, mustEntry(t, e))
	}
	p, _, err := tl.client.WaitProof(ctx, 4)
	if err != nil {
		t.Fatalf("no witnessed checkpoint: %v\n%s", err, out.String())
	}
	cp, err := tl.policy.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cp.CosignerNames(), ","); got != "lite,omni,ours" {
		t.Errorf("checkpoint cosigned by %s, want lite,omni,ours", got)
	}
	tl.verifyProof(t, p, entries[4])
	checkWithTorchwood(t, tl.url, tl.policy, entries)

	// The metrics say who cosigned and how far behind each part is.
	var m string
	deadline := time.Now().Add(30 * time.Second)
	for {
		m = scrape(t, tl.url)
		if strings.Contains(m, `attestlog_log_checkpoint_cosignatures_total{result="present",witness="omni"}`) && metricValue(m, "attestlog_log_tree_size") >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the cosigned checkpoint:\n%s", grepLines(m, "attestlog_log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range []string{"ours", "lite", "omni"} {
		if strings.Contains(m, `attestlog_log_checkpoint_cosignatures_total{result="missing",witness="`+w+`"}`) {
			t.Errorf("metrics count a checkpoint published without %s's cosignature:\n%s", w, grepLines(m, "cosignatures"))
		}
	}
	for _, name := range []string{"attestlog_log_integrated_size", "attestlog_log_sequenced_entries", "attestlog_log_checkpoint_age_seconds", "attestlog_log_quorum_lag_entries", "attestlog_log_index_lag_entries", "attestlog_log_pushback_total"} {
		if v := metricValue(m, name); v < 0 || v != v {
			t.Errorf("%s = %v", name, v)
		}
	}
	if metricValue(m, "attestlog_log_integrated_size") < 5 {
		t.Errorf("integrated size %v, want ≥ 5", metricValue(m, "attestlog_log_integrated_size"))
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue is the value of an unlabelled metric, or -1.
func metricValue(m, name string) float64 {
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestStartsBeforeItsWitness: a log whose witness is not up yet (started
// together, or down for a moment) waits for it and starts, rather than
// refusing to.
func TestStartsBeforeItsWitness(t *testing.T) {
	keyDir := t.TempDir()
	skeyPath := filepath.Join(keyDir, "log.key")
	g, err := keyfile.Generate(keyfile.KindLog, testOrigin, skeyPath, "")
	if err != nil {
		t.Fatal(err)
	}
	wskey, _, _ := note.GenerateKey(rand.Reader, "late.witness.test")
	wkey := filepath.Join(keyDir, "witness.key")
	if err := keyfile.WritePrivate(wkey, []byte(wskey)); err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(t.Context(), witness.Config{Key: wkey, DB: filepath.Join(keyDir, "witness.db"),
		Logs: []witness.LogConfig{{Origin: testOrigin, VKey: g.Public}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there yet
	wp := fmt.Sprintf("witness late %s http://%s\nquorum late\n", w.VerifierKey(), addr)
	go func() {
		time.Sleep(3 * time.Second)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("the witness cannot listen on %s: %v", addr, err)
			return
		}
		srv := &http.Server{Handler: w.Handler()}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}()
	tl := newTestLogWitnessedKey(t, skeyPath, wp)
	// Until the witness is up, the log publishes nothing unwitnessed.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		cp, err := tl.client.Checkpoint(t.Context())
		if err != nil {
			continue // none published yet
		}
		if c, err := tl.policy.VerifyCheckpoint(cp); err != nil || !c.QuorumMet {
			t.Fatalf("the log published a checkpoint its witness did not cosign: %v\n%s", err, cp)
		}
	}
	i := tl.add(t, release(t, tl.operator, measurement(900)))
	p, _, err := tl.client.WaitProof(t.Context(), i)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := tl.policy.VerifyCheckpoint(p.Checkpoint)
	if err != nil || !cp.QuorumMet {
		t.Fatalf("checkpoint after the late start: %v", err)
	}
}
