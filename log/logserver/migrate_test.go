package logserver

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
)

// TestMigrateMySQLToS3 moves a log with more than one entry bundle (a
// full one and a partial one) from the legacy MySQL driver to SeaweedFS +
// MariaDB. The new log's checkpoint at the same size has the same root,
// under the same key; every entry reads back from the bucket as it was;
// a statement of the old log is answered as the duplicate it is; the
// next append gets the next index.
func TestMigrateMySQLToS3(t *testing.T) {
	dsn := mariadbtest.Start(t)
	sw := seaweedtest.Start(t, "attestlog-migrated")
	ctx := t.Context()
	old := newTestLog(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}})
	const n = 300
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = release(t, old.operator, measurement(i))
	}
	var idxMu sync.Mutex
	indexOf := map[int]uint64{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				r, err := old.client.Add(ctx, bodies[i])
				if err != nil {
					t.Error(err)
				}
				idxMu.Lock()
				indexOf[i] = r.Index
				idxMu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if _, _, err := old.client.WaitProof(ctx, n-1); err != nil {
		t.Fatal(err)
	}
	oldEntries := old.treeEntries(t)
	cpOld, err := old.reader.ReadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldCP, err := old.policy.VerifyCheckpoint(cpOld)
	if err != nil || oldCP.N != n {
		t.Fatalf("the old log's checkpoint: %+v, %v; want size %d", oldCP, err, n)
	}
	old.Log.Close(ctx)

	newDSN := strings.TrimSuffix(dsn, "/attestlog") + "/attestlog_s3"
	db, err := sql.Open("mysql", strings.TrimSuffix(dsn, "attestlog"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE attestlog_s3"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	toCfg := *old.cfg
	toCfg.Storage = Storage{
		S3:    &S3Storage{Bucket: sw.Bucket, Endpoint: sw.Endpoint, Region: DefaultS3Region, AccessKeyID: sw.AccessKeyID, SecretAccessKey: sw.SecretAccessKey},
		MySQL: &MySQLStorage{DSN: newDSN},
	}
	toCfg.Index = filepath.Join(t.TempDir(), "index.db")

	// What must be refused: another origin, another key, one database.
	otherKey := filepath.Join(t.TempDir(), "other.key")
	if _, err := keyfile.Generate(keyfile.KindLog, old.cfg.Origin, otherKey, ""); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(c *Config){
		"origin":   func(c *Config) { c.Origin = "example.com/other" },
		"key":      func(c *Config) { c.Key = otherKey },
		"database": func(c *Config) { c.Storage.MySQL = &MySQLStorage{DSN: dsn} },
	} {
		c := toCfg
		mod(&c)
		if _, err := Migrate(ctx, old.cfg, &c, nil); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Migrate with another %s = %v, want an error naming it", name, err)
		}
	}

	r, err := Migrate(ctx, old.cfg, &toCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size != n || !bytes.Equal(r.Root, oldCP.Hash[:]) || r.Claims != n {
		t.Errorf("Migrate = size %d root %x claims %d; want %d, %x, %d", r.Size, r.Root, r.Claims, n, oldCP.Hash[:], n)
	}
	// Again: nothing to do, same answer.
	if r2, err := Migrate(ctx, old.cfg, &toCfg, nil); err != nil || r2.Size != n || r2.Claims != 0 {
		t.Errorf("Migrate again = %+v, %v; want size %d and no new claims", r2, err, n)
	}

	nl := *old
	nl.cfg = &toCfg
	nl.start(t)
	// The bucket's checkpoint (published by the new log once it runs):
	// same size, same root, the same key.
	var cpNew []byte
	waitForCond(t, func() bool {
		cpNew, err = sw.Get(ctx, "checkpoint")
		if err != nil {
			time.Sleep(100 * time.Millisecond)
		}
		return err == nil
	}, "the migrated log's first checkpoint in the bucket")
	newCP, err := old.policy.VerifyCheckpoint(cpNew)
	if err != nil || newCP.N != oldCP.N || newCP.Hash != oldCP.Hash {
		t.Fatalf("the migrated log's checkpoint = %+v, %v; want size %d root %x", newCP, err, oldCP.N, oldCP.Hash)
	}
	checkWithTorchwood(t, sw.URL(), old.policy, oldEntries)
	if res, err := nl.client.Add(ctx, bodies[123]); err != nil || !res.Duplicate || res.Index != indexOf[123] {
		t.Errorf("an old statement on the migrated log = %+v, %v; want duplicate of %d", res, err, indexOf[123])
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if r, err := nl.client.Add(actx, release(t, old.operator, measurement(1000))); err != nil || r.Duplicate || r.Index != n {
		t.Errorf("the migrated log's next append = %+v, %v; want index %d", r, err, n)
	}
}
