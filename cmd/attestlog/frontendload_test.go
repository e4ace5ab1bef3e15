package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/netnstest"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

// ack is one acknowledged statement: its index, its entry, the frontend
// that acknowledged it and when.
type ack struct {
	idx   uint64
	entry []byte
	fe    int
	at    time.Time
}

// failure is one statement a frontend did not acknowledge: the status it
// answered (0: no answer, e.g. a refused connection or a timeout), and
// when.
type failure struct {
	fe, code int
	at       time.Time
}

// frontendLoad is the writers of the multi-frontend tests (MariaDB, and
// S3 + MariaDB): 24 of them, each statement a new release sent to one
// frontend, rotating, and every 40th to two frontends at once. Nothing is
// retried: an answer other than 200 acknowledges nothing, and a frontend
// that fails is left alone for 50 ms, as a load balancer would.
type frontendLoad struct {
	mu       sync.Mutex // guards acks, doubles and failures
	acks     []ack
	doubles  [][2]api.AddResponse
	failures []failure
	seq      atomic.Int64
	fails    atomic.Int64
}

// loadStopper returns the stop channel of startLoad and watchCheckpoints
// and halt, which closes it and waits for bg; halt also runs when the test
// ends, so that a test failing early stops its writers and watchers too.
func loadStopper(t *testing.T, bg *sync.WaitGroup) (stop chan struct{}, halt func()) {
	stop = make(chan struct{})
	var once sync.Once
	halt = func() {
		once.Do(func() { close(stop) })
		bg.Wait()
	}
	t.Cleanup(halt)
	return stop, halt
}

// startLoad starts the writers on bg; they stop when stop is closed.
func startLoad(t *testing.T, urls []string, op *statement.Signer, stop chan struct{}, bg *sync.WaitGroup) *frontendLoad {
	ld := &frontendLoad{}
	hc := &http.Client{Timeout: 45 * time.Second}
	fail := func(fe, code int) {
		ld.fails.Add(1)
		ld.mu.Lock()
		ld.failures = append(ld.failures, failure{fe, code, time.Now()})
		ld.mu.Unlock()
	}
	post := func(fe int, body []byte) (api.AddResponse, bool) {
		resp, err := hc.Post(urls[fe]+"/add", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			fail(fe, 0)
			time.Sleep(50 * time.Millisecond)
			return api.AddResponse{}, false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r api.AddResponse
		if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil {
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("frontend %d answered %d %s", fe, resp.StatusCode, b)
			}
			fail(fe, resp.StatusCode)
			time.Sleep(50 * time.Millisecond)
			return api.AddResponse{}, false
		}
		return r, true
	}
	newStatement := func() (body, entry []byte) {
		n := ld.seq.Add(1)
		r := &statement.Release{
			Version: fmt.Sprintf("1.0.%d", n), Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", n)}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("a", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		}
		p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", n)}}}, r)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		body, _ = statement.Sign(p, op)
		parsed, err := statement.ParseEntry(body)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		entry, _ = parsed.Entry()
		return body, entry
	}
	const writers = 24
	for w := range writers {
		bg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				body, entry := newStatement()
				fe := (w + k) % len(urls)
				if (w*1000+k)%40 == 0 {
					var rs [2]api.AddResponse
					var oks [2]bool
					var wg sync.WaitGroup
					for j := range 2 {
						wg.Go(func() { rs[j], oks[j] = post((fe+j)%len(urls), body) })
					}
					wg.Wait()
					ld.mu.Lock()
					for j := range 2 {
						if oks[j] {
							ld.acks = append(ld.acks, ack{rs[j].Index, entry, (fe + j) % len(urls), time.Now()})
						}
					}
					if oks[0] && oks[1] {
						ld.doubles = append(ld.doubles, rs)
					}
					ld.mu.Unlock()
					continue
				}
				if r, ok := post(fe, body); ok {
					ld.mu.Lock()
					ld.acks = append(ld.acks, ack{r.Index, entry, fe, time.Now()})
					ld.mu.Unlock()
				}
			}
		})
	}
	return ld
}

// checkpointWatch is what watchCheckpoints saw: a verified root per tree
// size, every checkpoint served, and each size when it was first served
// by each URL.
type checkpointWatch struct {
	mu      sync.Mutex // guards seen and history
	seen    map[int64]tlog.Hash
	history []served
}

// served is a checkpoint size that url served at a moment, after serving
// another size (or nothing) before.
type served struct {
	url string
	n   int64
	at  time.Time
}

// watchCheckpoints polls /checkpoint of each URL every 200 ms on bg until
// stop is closed: each must verify under pol (log signature and witness
// quorum), and two of one size must have one root.
func watchCheckpoints(t *testing.T, urls []string, pol *policy.Policy, stop chan struct{}, bg *sync.WaitGroup) *checkpointWatch {
	w := &checkpointWatch{seen: map[int64]tlog.Hash{}}
	// A frontend cut off from its storage may not answer at all: bound
	// each poll, so that the others are still watched.
	hc := &http.Client{Timeout: 5 * time.Second}
	bg.Go(func() {
		last := map[string]int64{}
		for {
			for _, u := range urls {
				resp, err := hc.Get(u + "/checkpoint")
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				cp, err := pol.VerifyCheckpoint(b)
				if err != nil {
					t.Errorf("%s served a checkpoint that does not verify: %v", u, err)
					continue
				}
				w.mu.Lock()
				if h, ok := w.seen[cp.N]; ok && h != cp.Hash {
					t.Errorf("two checkpoints of size %d with different roots", cp.N)
				}
				w.seen[cp.N] = cp.Hash
				if n, ok := last[u]; !ok || n != cp.N {
					last[u] = cp.N
					w.history = append(w.history, served{u, cp.N, time.Now()})
				}
				w.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	return w
}

// acksSince counts the acknowledgements after at, by frontend.
func (ld *frontendLoad) acksSince(at time.Time) map[int]int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	m := map[int]int{}
	for _, a := range ld.acks {
		if a.at.After(at) {
			m[a.fe]++
		}
	}
	return m
}

// logAcks logs how many statements were acknowledged (and not), by
// frontend after at (what), and how many were sent to two frontends at
// once, and fails t if none of those was acknowledged by both. The load
// must have stopped.
func (ld *frontendLoad) logAcks(t *testing.T, what string, at time.Time) map[int]int {
	t.Helper()
	after := ld.acksSince(at)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	t.Logf("%d statements acknowledged (%d not), after %s by frontend %v, %d sent to two frontends at once", len(ld.acks), ld.fails.Load(), what, after, len(ld.doubles))
	if len(ld.doubles) == 0 {
		t.Error("no statement was acknowledged by two frontends at once")
	}
	return after
}

// checkFinal waits up to within for a checkpoint at readURL (verified
// under pol) that covers every entry ld acknowledged, then checks the
// tree it reads there under that checkpoint: every acknowledged entry is
// in it as submitted, no statement is in it twice, a statement sent to two
// frontends at once got one index (one of the two answers a duplicate),
// and every checkpoint cps saw is consistent with it. It returns the final
// checkpoint. It locks ld and cps: the load and the watch must have
// stopped.
func checkFinal(t *testing.T, readURL string, pol *policy.Policy, ld *frontendLoad, cps *checkpointWatch, within time.Duration) *policy.Checkpoint {
	t.Helper()
	return checkFinalFrom(t, readURL, readURL, pol, ld, cps, within)
}

// checkFinalFrom is checkFinal reading the checkpoint and the consistency
// proofs at readURL, and the tree's entries at entriesURL (another
// frontend of the same log).
func checkFinalFrom(t *testing.T, readURL, entriesURL string, pol *policy.Policy, ld *frontendLoad, cps *checkpointWatch, within time.Duration) *policy.Checkpoint {
	t.Helper()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	var maxIdx uint64
	for _, a := range ld.acks {
		maxIdx = max(maxIdx, a.idx)
	}
	for _, d := range ld.doubles {
		if d[0].Index != d[1].Index || d[0].Duplicate == d[1].Duplicate {
			t.Errorf("a statement sent to two frontends at once: %+v and %+v, want one index, one duplicate", d[0], d[1])
		}
	}
	var final *policy.Checkpoint
	deadline := time.Now().Add(within)
	for {
		if cp, err := tlogcheck.Log(t.Context(), readURL, pol, nil); err == nil && uint64(cp.N) > maxIdx {
			final = cp
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no checkpoint at %s covers entry %d within %v (%v, %v)", readURL, maxIdx, within, cp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tree := tlog.Tree{N: final.N, Hash: final.Hash}
	entries, err := tlogcheck.Entries(t.Context(), entriesURL, tree)
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
	defer cps.mu.Unlock()
	for n, h := range cps.seen {
		if n > final.N {
			t.Errorf("a checkpoint of size %d was served, larger than the final %d", n, final.N)
			continue
		}
		if n == 0 {
			continue // the empty tree: a prefix of every tree
		}
		if err := tlogcheck.Consistent(t.Context(), readURL, tlog.Tree{N: n, Hash: h}, tree); err != nil {
			t.Error(err)
		}
	}
	t.Logf("the tree of %d entries at %s holds all %d acknowledged statements once and is consistent with all %d checkpoints served", final.N, readURL, len(ld.acks), len(cps.seen))
	return final
}

// witnessAnswers is the witness's add-checkpoint answers by HTTP status,
// from its metrics.
func witnessAnswers(t *testing.T, witURL string) map[string]int {
	t.Helper()
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
	return codes
}

// logSetup is what the tests of whole `attestlog log serve` and `witness
// serve` processes share: in a directory of their own, a log key for
// origin and a witness key, an operator's signer and the log's policy
// naming it (policy.txt), a witness policy whose quorum is the one
// witness at witAddr (witnesses.txt), the witness's config
// (witness.yaml, its database witness.db), and the client policy that
// verifies the log's checkpoints and their cosignatures.
type logSetup struct {
	dir, origin string
	logVKey     string
	op          *statement.Signer
	clientPol   *policy.Policy
	witURL      string
	witCfg      string
}

// newLogSetup writes the keys, policies and witness config of a log
// named origin whose witness listens on witAddr.
func newLogSetup(t *testing.T, origin, witAddr string) *logSetup {
	t.Helper()
	s := &logSetup{dir: t.TempDir(), origin: origin, witURL: "http://" + witAddr}
	logKey, witKey := filepath.Join(s.dir, "log.key"), filepath.Join(s.dir, "witness.key")
	if _, err := keyfile.Generate(keyfile.KindLog, origin, logKey, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.Generate(keyfile.KindWitness, "attestlog.test/witness", witKey, ""); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.logVKey, err = keyfile.Public(keyfile.KindLog, logKey); err != nil {
		t.Fatal(err)
	}
	witVKey, err := keyfile.Public(keyfile.KindWitness, witKey)
	if err != nil {
		t.Fatal(err)
	}
	s.op, _ = statement.GenerateSigner(statement.AlgEd25519)
	s.write(t, "policy.txt", "operator acme "+s.op.Public().String()+"\n")
	wpol := fmt.Sprintf("witness w %s %s\nquorum w\n", witVKey, s.witURL)
	s.write(t, "witnesses.txt", wpol)
	if s.clientPol, err = policy.Parse([]byte("log " + s.logVKey + "\n" + wpol)); err != nil {
		t.Fatal(err)
	}
	s.witCfg = s.write(t, "witness.yaml", fmt.Sprintf("listen: %s\nkey: witness.key\ndb: witness.db\nlogs:\n  - {origin: %s, vkey: %q}\n", witAddr, origin, s.logVKey))
	return s
}

// write writes a file of the setup's directory, readable by its owner
// only (a config may hold credentials), and returns its path.
func (s *logSetup) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logConfig writes name, the config of a `log serve` of the setup's log
// listening on listen, its storage as the storage lines say (indented
// under storage:), its index in index; extra lines follow.
func (s *logSetup) logConfig(t *testing.T, name, listen, storage, index, extra string) string {
	t.Helper()
	return s.write(t, name, fmt.Sprintf(`origin: %s
listen: %s
key: log.key
storage:
%s
index: %s
policy: policy.txt
witness_policy: witnesses.txt
%sbatch_max_age: 20ms
`, s.origin, listen, storage, index, extra))
}

// startWitness starts `witness serve` of the setup, run by command
// (exec.Command, or a netnstest host's), and waits until it answers.
func (s *logSetup) startWitness(t *testing.T, command func(string, ...string) *exec.Cmd) *daemon {
	t.Helper()
	d := startDaemon(t, "witness", command(binary, "witness", "serve", "--config", s.witCfg))
	waitHTTP(t, d, s.witURL+"/metrics")
	return d
}

// frontends are frontends of one log, each a `log serve` whose config
// logConfig wrote, run by its command.
type frontends struct {
	mu       sync.Mutex // guards d
	d        []*daemon
	cfgs     []string
	urls     []string
	commands []func(string, ...string) *exec.Cmd
}

// startFrontends writes the configs of len(listens) frontends of the
// setup's log, frontend i listening on listens[i], run by commands[i],
// its storage as storage(i) says, checkpointing every second, and starts
// them all, waiting until each serves a checkpoint.
func (s *logSetup) startFrontends(t *testing.T, listens []string, commands []func(string, ...string) *exec.Cmd, storage func(i int) string) *frontends {
	t.Helper()
	fs := &frontends{commands: commands}
	for i, l := range listens {
		fs.cfgs = append(fs.cfgs, s.logConfig(t, fmt.Sprintf("fe%d.yaml", i), l, storage(i), fmt.Sprintf("fe%d-index.db", i), "checkpoint_interval: 1s\n"))
		fs.urls = append(fs.urls, "http://"+l)
		fs.d = append(fs.d, fs.run(t, i))
	}
	for i := range listens {
		waitHTTP(t, fs.daemon(i), fs.urls[i]+"/checkpoint")
	}
	return fs
}

func (fs *frontends) run(t *testing.T, i int) *daemon {
	t.Helper()
	return startDaemon(t, fmt.Sprintf("frontend %d", i), fs.commands[i](binary, "log", "serve", "--config", fs.cfgs[i]))
}

func (fs *frontends) daemon(i int) *daemon {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.d[i]
}

// restart starts frontend i again (after kill) and waits until it serves
// a checkpoint.
func (fs *frontends) restart(t *testing.T, i int) {
	t.Helper()
	d := fs.run(t, i)
	waitHTTP(t, d, fs.urls[i]+"/checkpoint")
	fs.mu.Lock()
	fs.d[i] = d
	fs.mu.Unlock()
}

// kill kills frontend i with SIGKILL.
func (fs *frontends) kill(i int) { fs.daemon(i).kill() }

// hostCommands is the commands of hosts, one each.
func hostCommands(hosts []netnstest.Host) []func(string, ...string) *exec.Cmd {
	var cs []func(string, ...string) *exec.Cmd
	for _, h := range hosts {
		cs = append(cs, h.Command)
	}
	return cs
}
