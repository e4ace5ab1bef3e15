package logserver

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
)

func TestS3ConfigErrors(t *testing.T) {
	const base = "origin: a\nlisten: x\nkey: k\nindex: i\npolicy: p\nwitness_policy: w\n"
	for name, tc := range map[string]struct{ yaml, want string }{
		"s3 alone":       {base + "storage: {s3: {bucket: b}}\n", "s3 needs mysql"},
		"s3 and posix":   {base + "storage: {s3: {bucket: b}, mysql: {dsn: x}, posix: {dir: d}}\n", "posix alone"},
		"no bucket":      {base + "storage: {s3: {region: eu-west-1}, mysql: {dsn: x}}\n", "storage.s3.bucket is required"},
		"no dsn":         {base + "storage: {s3: {bucket: b}, mysql: {}}\n", "storage.mysql.dsn is required"},
		"prefix":         {base + "storage: {s3: {bucket: b, prefix: logs/a}, mysql: {dsn: x}}\n", "prefix/prefix/key"},
		"half a key":     {base + "storage: {s3: {bucket: b, access_key_id: AKIA}, mysql: {dsn: x}}\n", "set both access_key_id and secret_access_key"},
		"endpoint":       {base + "storage: {s3: {bucket: b, endpoint: \"127.0.0.1:8333\"}, mysql: {dsn: x}}\n", "is not an http:// or https:// URL"},
		"short interval": {base + "storage: {s3: {bucket: b}, mysql: {dsn: x}}\ncheckpoint_interval: 500ms\n", "at least 1s"},
		"unknown key":    {base + "storage: {s3: {bucket: b, secret: x}, mysql: {dsn: x}}\n", "secret"},
	} {
		p := filepath.Join(t.TempDir(), "log.yaml")
		write(t, p, tc.yaml)
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadConfig = %v, want an error with %q", name, err, tc.want)
		}
	}
	// A valid one: defaults filled in.
	p := filepath.Join(t.TempDir(), "log.yaml")
	write(t, p, base+"storage: {s3: {bucket: b, endpoint: \"http://127.0.0.1:8333\"}, mysql: {dsn: x}}\n")
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.S3.Region != DefaultS3Region || c.CheckpointInterval != DefaultMySQLCheckpointInterval || c.Storage.Legacy() {
		t.Errorf("LoadConfig = region %q, checkpoint interval %v, legacy %v; want %q, %v, false", c.Storage.S3.Region, c.CheckpointInterval, c.Storage.Legacy(), DefaultS3Region, DefaultMySQLCheckpointInterval)
	}
}

// s3Storage starts SeaweedFS and MariaDB and returns storage on them.
func s3Storage(t *testing.T) (*Storage, *seaweedtest.Server) {
	t.Helper()
	sw := seaweedtest.Start(t, "attestlog-log")
	dsn := mariadbtest.Start(t)
	return &Storage{
		S3: &S3Storage{Bucket: sw.Bucket, Endpoint: sw.Endpoint, Region: DefaultS3Region,
			AccessKeyID: sw.AccessKeyID, SecretAccessKey: sw.SecretAccessKey},
		MySQL: &MySQLStorage{DSN: dsn},
	}, sw
}

// TestS3Storage runs the log on Tessera's AWS driver against a real
// SeaweedFS and MariaDB, and reads the tree with torchwood's client both
// through the log and straight from the bucket.
func TestS3Storage(t *testing.T) {
	st, sw := s3Storage(t)
	tl := newTestLog(t, st)
	ctx := t.Context()
	var entries [][]byte
	for i := range 20 {
		e := release(t, tl.operator, measurement(i))
		if idx := tl.add(t, e); idx != uint64(i) {
			t.Fatalf("entry %d got index %d", i, idx)
		}
		entries = append(entries, mustEntry(t, e))
	}
	if r, err := tl.client.Add(ctx, mustEntry(t, entries[3])); err != nil || !r.Duplicate || r.Index != 3 {
		t.Errorf("duplicate on S3 = %+v, %v", r, err)
	}
	p, _, err := tl.client.WaitProof(ctx, 19)
	if err != nil {
		t.Fatal(err)
	}
	tl.verifyProof(t, p, entries[19])
	checkWithTorchwood(t, tl.url, tl.policy, entries)
	// The bucket is the read API: anonymous GETs of SeaweedFS serve the
	// same checkpoint, tiles and entry bundles.
	checkWithTorchwood(t, sw.URL(), tl.policy, entries)
	if err := tl.waitIndexed(ctx, 19); err != nil {
		t.Fatal(err)
	}
	lr, err := tl.client.Lookup(ctx, measurement(11))
	if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != 11 {
		t.Errorf("Lookup on S3 = %+v, %v", lr, err)
	}
	// Restart on the same bucket and database.
	tl.Log.Close(ctx)
	tl.start(t)
	p, _, err = tl.client.Proof(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	tl.verifyProof(t, p, entries[5])
	if idx := tl.add(t, release(t, tl.operator, measurement(99))); idx != 20 {
		t.Errorf("after restart, next index = %d, want 20", idx)
	}
}

// TestFrontendsShareS3: TestFrontendsShareMySQL on SeaweedFS + MariaDB.
func TestFrontendsShareS3(t *testing.T) {
	st, _ := s3Storage(t)
	testFrontendsShare(t, st)
}
