package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/netnstest"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

// daemon is a long-running attestlog process of a test.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon starts cmd, stopped (SIGTERM, then SIGKILL) when the test
// ends; its output is shown if the test fails.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			out := d.out.String()
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("%s output:\n%s", d.name, out)
		}
	})
	return d
}

// kill is kill -9.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// waitHTTP waits until url answers 200, failing if d exits first.
func waitHTTP(t *testing.T, d *daemon, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	go func() {
		select {
		case <-d.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := waitReady(ctx, url); err != nil {
		select {
		case <-d.done:
			t.Fatalf("%s exited: %s", d.name, d.out.String())
		default:
			t.Fatalf("%s did not answer %s within 90 s (%v)", d.name, url, err)
		}
	}
}

// TestLogFrontendsOnMariaDB runs one log as three `attestlog log serve`
// frontends on one MariaDB, each (and the witness) on a host of its own
// (network namespaces), under writers spread over the frontends, and
// kills one frontend and then the database with SIGKILL during the load.
// Every acknowledged entry is in the tree, once; the tree is consistent
// with every checkpoint any frontend served; writes go on through the
// other frontends, also after the database comes back; a statement sent
// to two frontends at once is appended once; the witness sees one stream.
func TestLogFrontendsOnMariaDB(t *testing.T) {
	hosts := netnstest.New(t, "db", "fe0", "fe1", "fe2", "wit")
	dbHost, feHosts, witHost := hosts.Hosts[0], hosts.Hosts[1:4], hosts.Hosts[4]
	db := mariadbtest.StartServer(t, mariadbtest.Options{Wrap: []string{"ip", "netns", "exec", dbHost.Name}, Bind: dbHost.IP, Port: 3306})

	dir := t.TempDir()
	const origin = "attestlog.test/frontends"
	logKey, witKey := filepath.Join(dir, "log.key"), filepath.Join(dir, "witness.key")
	if _, err := keyfile.Generate(keyfile.KindLog, origin, logKey, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.Generate(keyfile.KindWitness, "attestlog.test/witness", witKey, ""); err != nil {
		t.Fatal(err)
	}
	logVKey, err := keyfile.Public(keyfile.KindLog, logKey)
	if err != nil {
		t.Fatal(err)
	}
	witVKey, err := keyfile.Public(keyfile.KindWitness, witKey)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := statement.GenerateSigner(statement.AlgEd25519)
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	witURL := "http://" + witHost.IP + ":7380"
	write("policy.txt", "operator acme "+op.Public().String()+"\n")
	wpol := fmt.Sprintf("witness w %s %s\nquorum w\n", witVKey, witURL)
	write("witnesses.txt", wpol)
	clientPol, err := policy.Parse([]byte("log " + logVKey + "\n" + wpol))
	if err != nil {
		t.Fatal(err)
	}
	wcfg := write("witness.yaml", fmt.Sprintf("listen: %s:7380\nkey: witness.key\ndb: witness.db\nlogs:\n  - {origin: %s, vkey: %q}\n", witHost.IP, origin, logVKey))
	wit := startDaemon(t, "witness", witHost.Command(binary, "witness", "serve", "--config", wcfg))
	waitHTTP(t, wit, witURL+"/metrics")

	var fes []*daemon
	var urls []string
	for i, h := range feHosts {
		cfg := write(fmt.Sprintf("fe%d.yaml", i), fmt.Sprintf(`origin: %s
listen: %s:8080
key: log.key
storage:
  mysql: {dsn: %q}
index: fe%d-index.db
policy: policy.txt
witness_policy: witnesses.txt
checkpoint_interval: 1s
batch_max_age: 20ms
`, origin, h.IP, db.DSN, i))
		fes = append(fes, startDaemon(t, fmt.Sprintf("frontend %d", i), h.Command(binary, "log", "serve", "--config", cfg)))
		urls = append(urls, "http://"+h.IP+":8080")
	}
	for i, d := range fes {
		waitHTTP(t, d, urls[i]+"/checkpoint")
	}

	// Checkpoints served, verified (log signature and witness
	// cosignature), kept to check the final tree against.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	cps := watchCheckpoints(t, urls, clientPol, stop, &bg)

	// Writers: each statement to one frontend, rotating; every 40th to
	// two frontends at once (frontendLoad).
	ld := startLoad(t, urls, op, stop, &bg)

	time.Sleep(3 * time.Second)
	fes[1].kill()
	t.Log("killed frontend 1")
	time.Sleep(3 * time.Second)
	db.Kill()
	t.Log("killed the database")
	time.Sleep(2 * time.Second)
	db.Restart()
	restarted := time.Now()
	t.Log("restarted the database")
	time.Sleep(6 * time.Second)
	close(stop)
	bg.Wait()

	// Writes went on: through the surviving frontends, also after the
	// database came back.
	ld.mu.Lock()
	defer ld.mu.Unlock()
	after := map[int]int{}
	var maxIdx uint64
	for _, a := range ld.acks {
		maxIdx = max(maxIdx, a.idx)
		if a.at.After(restarted) {
			after[a.fe]++
		}
	}
	t.Logf("%d statements acknowledged (%d not), %d after the database restart %v, %d sent to two frontends at once", len(ld.acks), ld.fails.Load(), after[0]+after[2], after, len(ld.doubles))
	if after[0] == 0 || after[2] == 0 || after[1] != 0 {
		t.Errorf("acknowledgements after the database restart by frontend: %v; want some from 0 and 2 and none from the killed 1", after)
	}
	for _, d := range ld.doubles {
		if d[0].Index != d[1].Index || d[0].Duplicate == d[1].Duplicate {
			t.Errorf("a statement sent to two frontends at once: %+v and %+v, want one index, one duplicate", d[0], d[1])
		}
	}
	if len(ld.doubles) == 0 {
		t.Error("no statement was acknowledged by two frontends at once")
	}

	// A published checkpoint covers every acknowledged entry.
	var final *policy.Checkpoint
	deadline := time.Now().Add(30 * time.Second)
	for {
		if cp, err := tlogcheck.Log(t.Context(), urls[0], clientPol, nil); err == nil && uint64(cp.N) > maxIdx {
			final = cp
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers entry %d within 30 s (%v, %v)", maxIdx, cp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tree := tlog.Tree{N: final.N, Hash: final.Hash}
	entries, err := tlogcheck.Entries(t.Context(), urls[2], tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ld.acks {
		if !bytes.Equal(entries[a.idx], a.entry) {
			t.Fatalf("acknowledged entry %d is not in the tree as submitted", a.idx)
		}
	}
	count := map[[32]byte]int{}
	for _, e := range entries {
		if statement.IsIndexCheckpoint(e) {
			continue
		}
		count[sha256.Sum256(e)]++
	}
	for h, n := range count {
		if n > 1 {
			t.Errorf("an entry (sha256 %x…) is in the tree %d times", h[:6], n)
		}
	}
	cps.mu.Lock()
	for n, h := range cps.seen {
		if n > final.N {
			t.Errorf("a checkpoint of size %d was served, larger than the final %d", n, final.N)
			continue
		}
		if n == 0 {
			continue // the empty tree: a prefix of every tree
		}
		if err := tlogcheck.Consistent(t.Context(), urls[0], tlog.Tree{N: n, Hash: h}, tree); err != nil {
			t.Error(err)
		}
	}
	t.Logf("the tree of %d entries is consistent with all %d checkpoints served", final.N, len(cps.seen))
	cps.mu.Unlock()

	// The witness saw one stream: checkpoints from the three frontends,
	// each extending the last, with no conflicts about the old size.
	resp, err := http.Get(witURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	codes := map[string]int{}
	for _, m := range regexp.MustCompile(`attestlog_witness_requests_total\{code="(\d+)",endpoint="add-checkpoint"\} (\d+)`).FindAllStringSubmatch(string(mb), -1) {
		codes[m[1]], _ = strconv.Atoi(m[2])
	}
	t.Logf("witness add-checkpoint answers by code: %v", codes)
	if codes["200"] < 5 || codes["409"] > 2 {
		t.Errorf("witness add-checkpoint answers %v: want a stream of cosignatures with at most 2 conflicts (database restart)", codes)
	}
}
