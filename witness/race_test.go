package witness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// cosigned is one 200 answer: fork f of a log got (size, root) cosigned.
type cosigned struct {
	log  int
	fork int
	size uint64
	root tlog.Hash
}

// checkConsistent checks that no two cosigned tree heads of one log are
// inconsistent: for every pair with sizes a ≤ b, the root cosigned at a is
// the root at a of the tree cosigned at b. forks[log][fork] are the trees.
func checkConsistent(t testing.TB, forks [][]*driver.Log, got []cosigned) {
	t.Helper()
	byLog := map[int][]cosigned{}
	for _, c := range got {
		byLog[c.log] = append(byLog[c.log], c)
	}
	for li, cs := range byLog {
		// The largest cosigned tree of each fork suffices: compare every
		// cosigned head against the largest one of every other fork.
		for _, a := range cs {
			for _, b := range cs {
				if a.size > b.size {
					continue
				}
				if r := forks[li][b.fork].Root(a.size); r != a.root {
					t.Fatalf("log %d: cosigned size %d root %v (fork %d) and size %d (fork %d), whose tree has root %v at %d: split view",
						li, a.size, a.root, a.fork, b.size, b.fork, r, a.size)
				}
			}
		}
	}
}

// TestConcurrentForks runs, for each of several logs, several forks (same
// key, trees that diverge after a shared prefix) whose clients race to get
// their own tree cosigned, with many requests in flight for every log. A
// correct witness cosigns one consistent history per log; every 200 is
// checked with an independent verifier and all of them are checked
// pairwise for consistency. Run it with -race.
func TestConcurrentForks(t *testing.T) {
	tw := newTestWitness(t)
	raceForks(t, []*testWitness{tw})
}

// TestConcurrentForksTwoServers is TestConcurrentForks with two witness
// servers on one database (as two processes would be): the
// compare-and-swap in SQLite, not anything in memory, keeps them from
// cosigning a split view together.
func TestConcurrentForksTwoServers(t *testing.T) {
	a := newTestWitness(t)
	w2, err := Open(context.Background(), a.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w2.Handler())
	t.Cleanup(func() {
		srv.Close()
		w2.Close()
	})
	b := &testWitness{Witness: w2, srv: srv, cfg: a.cfg, logBuf: &testenv.Buffer{},
		client: &protocol.Client{SubmissionPrefix: srv.URL, HTTP: srv.Client()}}
	raceForks(t, []*testWitness{a, b})
}

// raceForks runs the fork race with clients spread over the servers, which
// share one database and key.
func raceForks(t *testing.T, servers []*testWitness) {
	tw := servers[0]
	const (
		logs     = 4
		forks    = 3
		clients  = 2 // per fork
		requests = 40
	)
	forkLogs := make([][]*driver.Log, logs)
	for i := range forkLogs {
		base := newTestLog(t, tw, fmt.Sprintf("example.com/race/%d", i))
		base.Append(3)
		for f := range forks {
			fl := base.Fork(3)
			fl.Append(1 + f) // different leaves and sizes from here on
			forkLogs[i] = append(forkLogs[i], fl)
		}
	}
	// Widen the window between the checks and the compare-and-swap.
	for _, s := range servers {
		s.setHook(func(string) {
			for range rand.IntN(3) {
				runtime.Gosched()
			}
		})
	}

	var mu sync.Mutex
	var got []cosigned
	var wg sync.WaitGroup
	ctx := context.Background()
	for li := range logs {
		for fi := range forks {
			fl := forkLogs[li][fi]
			var appendMu sync.Mutex
			for c := range clients {
				client := servers[(li+fi+c)%len(servers)].client
				wg.Add(1)
				go func() {
					defer wg.Done()
					var old uint64
					for range requests {
						appendMu.Lock()
						size := fl.Append(rand.IntN(3))
						if old > size { // another fork is ahead: grow past it
							size = fl.Append(int(old - size))
						}
						appendMu.Unlock()
						cp := fl.Checkpoint(size)
						r := &protocol.AddCheckpointRequest{OldSize: old, Proof: fl.Proof(old, size), Checkpoint: cp}
						cosig, err := client.AddCheckpoint(ctx, r)
						var ce *protocol.ConflictError
						var se *protocol.StatusError
						switch {
						case err == nil:
							if err := cosigError(tw.VerifierKey(), cp, string(cosig)); err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							got = append(got, cosigned{li, fi, size, fl.Root(size)})
							mu.Unlock()
							old = size
						case errors.As(err, &ce):
							old = ce.Size
						case errors.As(err, &se) && se.Code == 422:
							// Another fork got ahead: our proof cannot verify.
						default:
							t.Errorf("log %d fork %d: %v", li, fi, err)
							return
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	if len(got) < logs {
		t.Fatalf("only %d cosignatures", len(got))
	}
	checkConsistent(t, forkLogs, got)

	// The persisted state is the largest cosigned tree head of each log.
	state, err := tw.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for li := range logs {
		var max cosigned
		for _, c := range got {
			if c.log == li && c.size >= max.size {
				max = c
			}
		}
		for _, s := range state {
			if s.Origin == forkLogs[li][0].Origin && (s.Size != max.size || s.RootHash != b64(max.root[:])) {
				t.Errorf("log %d: persisted size %d root %s, largest cosigned %d %v", li, s.Size, s.RootHash, max.size, max.root)
			}
		}
	}
	t.Logf("%d cosignatures over %d logs", len(got), logs)
}
