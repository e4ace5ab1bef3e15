package main

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/netnstest"
	"github.com/attestlog/attestlog/internal/testenv"
)

// daemon is a long-running attestlog process of a test.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
}

// startDaemon starts cmd, stopped (SIGTERM, then SIGKILL) when the test
// ends; its output is shown if the test fails.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{name: name, cmd: cmd, out: &testenv.Buffer{}, done: make(chan struct{})}
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
	st := newLogSetup(t, "attestlog.test/frontends", witHost.IP+":7380")
	st.startWitness(t, witHost.Command)
	var listens []string
	for _, h := range feHosts {
		listens = append(listens, h.IP+":8080")
	}
	fes := st.startFrontends(t, listens, hostCommands(feHosts), func(int) string {
		return fmt.Sprintf("  mysql: {dsn: %q}", db.DSN)
	})
	urls, clientPol, op := fes.urls, st.clientPol, st.op

	// Checkpoints served, verified (log signature and witness
	// cosignature), kept to check the final tree against.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	cps := watchCheckpoints(t, urls, clientPol, stop, &bg)

	// Writers: each statement to one frontend, rotating; every 40th to
	// two frontends at once (frontendLoad).
	ld := startLoad(t, urls, op, stop, &bg)

	time.Sleep(3 * time.Second)
	fes.kill(1)
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
	after := ld.logAcks(t, "the database restart", restarted)
	if after[0] == 0 || after[2] == 0 || after[1] != 0 {
		t.Errorf("acknowledgements after the database restart by frontend: %v; want some from 0 and 2 and none from the killed 1", after)
	}

	// A published checkpoint covers every acknowledged entry, each in
	// the tree once (read from another frontend), consistent with every
	// checkpoint served; a statement sent to two frontends at once got
	// one index.
	checkFinalFrom(t, urls[0], urls[2], clientPol, ld, cps, 30*time.Second)

	// The witness saw one stream: checkpoints from the three frontends,
	// each extending the last, with no conflicts about the old size.
	codes := witnessAnswers(t, st.witURL)
	t.Logf("witness add-checkpoint answers by code: %v", codes)
	if codes["200"] < 5 || codes["409"] > 2 {
		t.Errorf("witness add-checkpoint answers %v: want a stream of cosignatures with at most 2 conflicts (database restart)", codes)
	}
}
