package witness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// The crash test re-executes the test binary as the witness server (the
// helper below), kills it with SIGKILL under load, restarts it, and checks
// every cosignature it ever returned against the persisted state.

const (
	helperEnv      = "ATTESTLOG_WITNESS_HELPER"       // config path
	helperAddrEnv  = "ATTESTLOG_WITNESS_HELPER_ADDR"  // file to write the address to
	helperCrashEnv = "ATTESTLOG_WITNESS_HELPER_CRASH" // "before-commit" or "after-commit": self-SIGKILL at a random commit
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		crashHelper(cfg)
		return
	}
	code := m.Run()
	if peerDir != "" {
		os.RemoveAll(peerDir)
	}
	os.Exit(code)
}

// crashHelper is the witness server process of the crash test.
func crashHelper(cfgPath string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		fail(err)
	}
	w, err := Open(context.Background(), cfg, nil)
	if err != nil {
		fail(err)
	}
	switch where := os.Getenv(helperCrashEnv); where {
	case "before-commit":
		// Inside the transaction, after the compare-and-swaps, before COMMIT.
		w.store.BeforeCommit = func(int) { maybeDie(20) }
	case "after-commit":
		// Committed, but no client has its answer yet.
		after := w.store.AfterCommit
		w.store.AfterCommit = func(n int, d time.Duration) { after(n, d); maybeDie(20) }
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	tmp := os.Getenv(helperAddrEnv) + ".tmp"
	if err := os.WriteFile(tmp, []byte(l.Addr().String()), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, os.Getenv(helperAddrEnv)); err != nil {
		fail(err)
	}
	fail(Serve(context.Background(), w, l))
}

// maybeDie kills the process with SIGKILL with probability 1/n.
func maybeDie(n int) {
	if rand.IntN(n) == 0 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

type helperProc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func startHelper(t *testing.T, dir, cfgPath, crash string) *helperProc {
	t.Helper()
	addrFile := filepath.Join(dir, "addr")
	os.Remove(addrFile)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+cfgPath, helperAddrEnv+"="+addrFile, helperCrashEnv+"="+crash)
	cmd.Stderr = os.Stderr
	driver.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &helperProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			p.addr = string(b)
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("witness helper exited before listening: %v", cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *helperProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestCrashRecovery kills the witness with SIGKILL at random points while
// several forks of several logs race to get cosignatures, restarts it, and
// checks that every cosignature ever returned is consistent with the
// persisted state: no acknowledged tree head is above the persisted one or
// off its tree, and the restarted witness never cosigns a split view.
// Rounds alternate external kills at a random time with self-kills inside
// the commit path (before COMMIT, and after COMMIT before any answer).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary; skipped with -short")
	}
	dir := t.TempDir()
	cfg := Config{Key: writeKey(t, dir, "witness.example/crash"), DB: filepath.Join(dir, "witness.db")}
	cfgPath := filepath.Join(dir, "witness.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, "key: %s\ndb: %s\n", cfg.Key, cfg.DB), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		logs   = 6
		forks  = 2
		rounds = 9
	)
	ctx := context.Background()
	db, err := OpenDB(ctx, cfg.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	forkLogs := make([][]*driver.Log, logs)
	for i := range forkLogs {
		base, err := driver.NewLog(fmt.Sprintf("example.com/crash/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddLog(ctx, base.Origin, base.VKey); err != nil {
			t.Fatal(err)
		}
		base.Append(2)
		for f := range forks {
			fl := base.Fork(2)
			fl.Append(1 + f)
			forkLogs[i] = append(forkLogs[i], fl)
		}
	}
	db.Close()

	signer, err := LoadKey(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	var acked []cosigned // every 200 answer, over all rounds
	olds := make([][]uint64, logs)
	for i := range olds {
		olds[i] = make([]uint64, forks)
	}
	crashModes := []string{"", "before-commit", "after-commit"}
	for round := range rounds {
		mode := crashModes[round%len(crashModes)]
		p := startHelper(t, dir, cfgPath, mode)
		client := &protocol.Client{SubmissionPrefix: "http://" + p.addr}

		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for li := range logs {
			for fi := range forks {
				fl := forkLogs[li][fi]
				wg.Add(1)
				go func() {
					defer wg.Done()
					old := olds[li][fi]
					defer func() { olds[li][fi] = old }()
					for {
						select {
						case <-stop:
							return
						default:
						}
						size := fl.Append(rand.IntN(2))
						if old > size {
							size = fl.Append(int(old - size))
						}
						cp := fl.Checkpoint(size)
						r := &protocol.AddCheckpointRequest{OldSize: old, Proof: fl.Proof(old, size), Checkpoint: cp}
						cosig, err := client.AddCheckpoint(ctx, r)
						var ce *protocol.ConflictError
						var se *protocol.StatusError
						switch {
						case err == nil:
							if err := cosigError(signer.VKey, cp, string(cosig)); err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							acked = append(acked, cosigned{li, fi, size, fl.Root(size)})
							mu.Unlock()
							old = size
						case errors.As(err, &ce):
							old = ce.Size
						case errors.As(err, &se) && se.Code == 422:
						case errors.As(err, &se):
							t.Errorf("round %d log %d fork %d: %v", round, li, fi, err)
							return
						default:
							// Connection refused or reset: the witness died.
							return
						}
					}
				}()
			}
		}
		if mode == "" {
			time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond)
			p.kill()
		} else {
			<-p.done // it kills itself at a random commit
		}
		close(stop)
		wg.Wait()

		// Check every acknowledged cosignature against the persisted state.
		db, err := OpenDB(ctx, cfg.DB, nil)
		if err != nil {
			t.Fatal(err)
		}
		state, err := db.Logs(ctx)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		persisted := persistedHeads(t, forkLogs, state)
		checkConsistent(t, forkLogs, append(append([]cosigned{}, acked...), persisted...))
		for _, a := range acked {
			if ps := persisted[a.log]; ps.size < a.size {
				t.Fatalf("round %d: log %d acknowledged size %d but persisted %d: rolled back", round, a.log, a.size, ps.size)
			}
		}
		t.Logf("round %d (%s): killed; %d cosignatures acknowledged so far", round, cmp(mode, "external SIGKILL"), len(acked))
	}
	if len(acked) < logs {
		t.Fatalf("only %d cosignatures in %d rounds", len(acked), rounds)
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return "self SIGKILL " + s
}

// persistedHeads maps the persisted state to a cosigned head per log, with
// the fork whose tree it is on. A persisted head on no fork's tree fails.
func persistedHeads(t *testing.T, forkLogs [][]*driver.Log, state []LogInfo) []cosigned {
	t.Helper()
	out := make([]cosigned, len(forkLogs))
	for li, fls := range forkLogs {
		var s *LogInfo
		for i := range state {
			if state[i].Origin == fls[0].Origin {
				s = &state[i]
			}
		}
		if s == nil {
			t.Fatalf("log %d missing from the database", li)
		}
		root, err := tlog.ParseHash(s.RootHash)
		if err != nil {
			t.Fatal(err)
		}
		out[li] = cosigned{log: li, fork: -1, size: s.Size, root: root}
		for fi, fl := range fls {
			if fl.Size() >= s.Size && fl.Root(s.Size) == root {
				out[li].fork = fi
				break
			}
		}
		if out[li].fork < 0 {
			t.Fatalf("log %d: persisted size %d root %s is on no fork's tree", li, s.Size, s.RootHash)
		}
	}
	return out
}
