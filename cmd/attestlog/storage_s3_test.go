package main

import (
	"bytes"
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
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/internal/versitygwtest"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

// TestLogFrontendsOnS3 runs one log as three `attestlog log serve`
// frontends on SeaweedFS + MariaDB (Tessera's AWS driver), with a witness,
// under writers spread over the frontends, and kills with SIGKILL, in
// turn, a frontend, SeaweedFS and MariaDB, restarting each. Every
// acknowledged entry is in the tree, once; the tree read straight from
// the bucket (torchwood, anonymous GETs) is consistent with every
// checkpoint served by any frontend or the bucket, and its latest
// checkpoint covers every acknowledgement; writes resume after each
// restart; a statement sent to two frontends at once is appended once;
// the witness sees one stream.
func TestLogFrontendsOnS3(t *testing.T) {
	sw := seaweedtest.Start(t, "attestlog-fe")
	testLogFrontendsOnS3(t, "SeaweedFS", s3Store{sw.Endpoint, sw.Bucket, sw.AccessKeyID, sw.SecretAccessKey, sw.URL, sw.Kill, sw.Restart})
}

// TestLogFrontendsOnVersitygw is TestLogFrontendsOnS3 on a second S3
// implementation, the Versity S3 Gateway (its POSIX backend: objects as
// files).
func TestLogFrontendsOnVersitygw(t *testing.T) {
	vg := versitygwtest.Start(t, "attestlog-fe")
	testLogFrontendsOnS3(t, "versitygw", s3Store{vg.Endpoint, vg.Bucket, vg.AccessKeyID, vg.SecretAccessKey, vg.URL, vg.Kill, vg.Restart})
}

// s3Store is an S3-compatible object store a test started: where it is,
// its bucket (anonymously readable), credentials, and kill -9 and restart.
type s3Store struct {
	Endpoint, Bucket, AccessKeyID, SecretAccessKey string
	URL                                            func() string
	Kill, Restart                                  func()
}

func testLogFrontendsOnS3(t *testing.T, name string, sw s3Store) {
	db := mariadbtest.StartServer(t, mariadbtest.Options{})

	dir := t.TempDir()
	const origin = "attestlog.test/s3-frontends"
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
	write := func(name, s string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	witAddr := freeAddr(t)
	witURL := "http://" + witAddr
	write("policy.txt", "operator acme "+op.Public().String()+"\n", 0o644)
	wpol := fmt.Sprintf("witness w %s %s\nquorum w\n", witVKey, witURL)
	write("witnesses.txt", wpol, 0o644)
	clientPol, err := policy.Parse([]byte("log " + logVKey + "\n" + wpol))
	if err != nil {
		t.Fatal(err)
	}
	wcfg := write("witness.yaml", fmt.Sprintf("listen: %s\nkey: witness.key\ndb: witness.db\nlogs:\n  - {origin: %s, vkey: %q}\n", witAddr, origin, logVKey), 0o644)
	wit := startDaemon(t, "witness", exec.Command(binary, "witness", "serve", "--config", wcfg))
	waitHTTP(t, wit, witURL+"/metrics")

	var (
		feMu sync.Mutex
		fes  []*daemon
		cfgs []string
		urls []string
	)
	startFE := func(i int) {
		d := startDaemon(t, fmt.Sprintf("frontend %d", i), exec.Command(binary, "log", "serve", "--config", cfgs[i]))
		waitHTTP(t, d, urls[i]+"/checkpoint")
		feMu.Lock()
		fes[i] = d
		feMu.Unlock()
	}
	for i := range 3 {
		addr := freeAddr(t)
		// The credentials come from the environment here (AWS_*), as
		// an operator's would; the file holds the rest.
		cfgs = append(cfgs, write(fmt.Sprintf("fe%d.yaml", i), fmt.Sprintf(`origin: %s
listen: %s
key: log.key
storage:
  s3: {bucket: %s, endpoint: %q, access_key_id: %q, secret_access_key: %q}
  mysql: {dsn: %q}
index: fe%d-index.db
policy: policy.txt
witness_policy: witnesses.txt
checkpoint_interval: 1s
batch_max_age: 20ms
`, origin, addr, sw.Bucket, sw.Endpoint, sw.AccessKeyID, sw.SecretAccessKey, db.DSN, i), 0o600))
		urls = append(urls, "http://"+addr)
		fes = append(fes, nil)
	}
	for i := range 3 {
		startFE(i)
	}

	// Checkpoints served, verified (log signature and witness
	// cosignature), kept to check the final tree against.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	cps := watchCheckpoints(t, append([]string{sw.URL()}, urls...), clientPol, stop, &bg)

	ld := startLoad(t, urls, op, stop, &bg)

	// acksSince counts acknowledgements after a moment, by frontend.
	acksSince := func(at time.Time) map[int]int {
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
	// resumed waits up to 60 s for acknowledgements after at.
	resumed := func(what string, at time.Time) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := acksSince(at)
			if m[0]+m[1]+m[2] >= 20 {
				t.Logf("writes resumed after %s: %v", what, m)
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("no writes acknowledged within 60 s after %s (%v)", what, m)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	time.Sleep(3 * time.Second)
	fes[1].kill()
	t.Log("killed frontend 1")
	time.Sleep(3 * time.Second)
	startFE(1)
	resumed("frontend 1 restarted", time.Now())

	sw.Kill()
	t.Log("killed " + name)
	time.Sleep(3 * time.Second)
	sw.Restart()
	t.Log("restarted " + name)
	resumed(name+" restarted", time.Now())

	db.Kill()
	t.Log("killed MariaDB")
	time.Sleep(3 * time.Second)
	db.Restart()
	dbBack := time.Now()
	t.Log("restarted MariaDB")
	resumed("MariaDB restarted", dbBack)
	time.Sleep(3 * time.Second)
	close(stop)
	bg.Wait()

	ld.mu.Lock()
	defer ld.mu.Unlock()
	var maxIdx uint64
	for _, a := range ld.acks {
		maxIdx = max(maxIdx, a.idx)
	}
	after := map[int]int{}
	for _, a := range ld.acks {
		if a.at.After(dbBack) {
			after[a.fe]++
		}
	}
	t.Logf("%d statements acknowledged (%d not), after the database restart by frontend %v, %d sent to two frontends at once", len(ld.acks), ld.fails.Load(), after, len(ld.doubles))
	if after[0] == 0 || after[1] == 0 || after[2] == 0 {
		t.Errorf("acknowledgements after the database restart by frontend: %v; want some from each", after)
	}
	for _, d := range ld.doubles {
		if d[0].Index != d[1].Index || d[0].Duplicate == d[1].Duplicate {
			t.Errorf("a statement sent to two frontends at once: %+v and %+v, want one index, one duplicate", d[0], d[1])
		}
	}
	if len(ld.doubles) == 0 {
		t.Error("no statement was acknowledged by two frontends at once")
	}

	// The bucket's checkpoint covers every acknowledged entry.
	var final *policy.Checkpoint
	deadline := time.Now().Add(60 * time.Second)
	for {
		if cp, err := tlogcheck.Log(t.Context(), sw.URL(), clientPol, nil); err == nil && uint64(cp.N) > maxIdx {
			final = cp
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no checkpoint in the bucket covers entry %d within 60 s (%v, %v)", maxIdx, cp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tree := tlog.Tree{N: final.N, Hash: final.Hash}
	entries, err := tlogcheck.Entries(t.Context(), sw.URL(), tree)
	if err != nil {
		t.Fatal(err)
	}
	// The root of what the bucket holds is the checkpoint's: torchwood
	// checked every entry bundle against tiles under tree; recompute it
	// from the entries themselves too.
	var hashes []tlog.Hash
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = hashes[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(final.N, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = hashes[x]
		}
		return out, nil
	}))
	if err != nil || root != final.Hash {
		t.Fatalf("the entries in the bucket hash to %x (%v), the checkpoint says %x", root, err, final.Hash)
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
			continue
		}
		if err := tlogcheck.Consistent(t.Context(), sw.URL(), tlog.Tree{N: n, Hash: h}, tree); err != nil {
			t.Error(err)
		}
	}
	t.Logf("the tree of %d entries in the bucket is consistent with all %d checkpoints served", final.N, len(cps.seen))
	cps.mu.Unlock()

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
	if codes["200"] < 5 || codes["409"] > 3 {
		t.Errorf("witness add-checkpoint answers %v: want a stream of cosignatures with at most 3 conflicts (restarts)", codes)
	}
}
