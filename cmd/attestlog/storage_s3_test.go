package main

import (
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/internal/versitygwtest"
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
	st := newLogSetup(t, "attestlog.test/s3-frontends", freeAddr(t))
	st.startWitness(t, exec.Command)
	listens := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	commands := []func(string, ...string) *exec.Cmd{exec.Command, exec.Command, exec.Command}
	fes := st.startFrontends(t, listens, commands, func(int) string {
		return fmt.Sprintf("  s3: {bucket: %s, endpoint: %q, access_key_id: %q, secret_access_key: %q}\n  mysql: {dsn: %q}",
			sw.Bucket, sw.Endpoint, sw.AccessKeyID, sw.SecretAccessKey, db.DSN)
	})
	urls, clientPol, op := fes.urls, st.clientPol, st.op

	// Checkpoints served, verified (log signature and witness
	// cosignature), kept to check the final tree against.
	var bg sync.WaitGroup
	stop, halt := loadStopper(t, &bg)
	cps := watchCheckpoints(t, append([]string{sw.URL()}, urls...), clientPol, stop, &bg)

	ld := startLoad(t, urls, op, stop, &bg)

	// resumed waits up to 60 s for acknowledgements after at.
	resumed := func(what string, at time.Time) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := ld.acksSince(at)
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
	fes.kill(1)
	t.Log("killed frontend 1")
	time.Sleep(3 * time.Second)
	fes.restart(t, 1)
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
	halt()

	after := ld.logAcks(t, "the database restart", dbBack)
	if after[0] == 0 || after[1] == 0 || after[2] == 0 {
		t.Errorf("acknowledgements after the database restart by frontend: %v; want some from each", after)
	}

	// The bucket's checkpoint covers every acknowledged entry, each in
	// the tree read straight from the bucket once, consistent with every
	// checkpoint served; a statement sent to two frontends at once got
	// one index.
	final := checkFinal(t, sw.URL(), clientPol, ld, cps, 60*time.Second)
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

	codes := witnessAnswers(t, st.witURL)
	t.Logf("witness add-checkpoint answers by code: %v", codes)
	if codes["200"] < 5 || codes["409"] > 3 {
		t.Errorf("witness add-checkpoint answers %v: want a stream of cosignatures with at most 3 conflicts (restarts)", codes)
	}
}
