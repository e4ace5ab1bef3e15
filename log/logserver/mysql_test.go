package logserver

import (
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"

	"github.com/attestlog/attestlog/internal/mariadbtest"
)

// TestMySQLStorage runs the log on Tessera's MySQL driver against a real
// MariaDB, and checks what it serves with torchwood's client.
func TestMySQLStorage(t *testing.T) {
	dsn := mariadbtest.Start(t)
	tl := newTestLog(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}})
	ctx := t.Context()
	var entries [][]byte
	for i := range 20 {
		e := release(t, tl.operator, measurement(i))
		idx := tl.add(t, e)
		if idx != uint64(i) {
			t.Fatalf("entry %d got index %d", i, idx)
		}
		entries = append(entries, mustEntry(t, e))
	}
	if r, err := tl.client.Add(ctx, mustEntry(t, entries[3])); err != nil || !r.Duplicate || r.Index != 3 {
		t.Errorf("duplicate on MySQL = %+v, %v", r, err)
	}
	p, _, err := tl.client.WaitProof(ctx, 19)
	if err != nil {
		t.Fatal(err)
	}
	tl.verifyProof(t, p, entries[19])
	checkWithTorchwood(t, tl.url, tl.policy, entries)
	if err := tl.waitIndexed(ctx, 19); err != nil {
		t.Fatal(err)
	}
	lr, err := tl.client.Lookup(ctx, measurement(11))
	if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != 11 {
		t.Errorf("Lookup on MySQL = %+v, %v", lr, err)
	}

	// Restart on the same database: the schema is applied again
	// idempotently and everything is still there.
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
	// A partial tile asked for at an older width is that width, though
	// the tile in the database has grown (c2sp.org/tlog-tiles; Tessera's
	// MySQL reader returns the whole row).
	for _, tc := range []struct {
		path string
		want func([]byte) bool
	}{
		{"/tile/0/000.p/5", func(b []byte) bool { return len(b) == 5*32 }},
		{"/tile/entries/000.p/5", func(b []byte) bool {
			n := 0
			for len(b) >= 2 {
				l := int(b[0])<<8 | int(b[1])
				if len(b) < 2+l {
					return false
				}
				b, n = b[2+l:], n+1
			}
			return len(b) == 0 && n == 5
		}},
	} {
		resp, err := http.Get(tl.url + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !tc.want(b) {
			t.Errorf("GET %s = %d, %d bytes: not exactly what that width holds", tc.path, resp.StatusCode, len(b))
		}
	}
}

// frontend starts another frontend of tl's log: the same key, policy and
// database, its own measurement index, served on its own port, opened with
// the options given (not tl's).
func (tl *testLog) frontend(t *testing.T, with ...option) *testLog {
	t.Helper()
	cfg := *tl.cfg
	cfg.Index = filepath.Join(t.TempDir(), "index.db")
	f := *tl
	f.cfg, f.with = &cfg, with
	f.start(t)
	return &f
}

// TestFrontendsShareMySQL: two frontends of one log on one MariaDB. A
// statement sent to both at once is appended once (one answers it as the
// duplicate, with the same index); one frontend signs index checkpoints
// and the other proves lookups against them; when the signer stops, the
// other takes over.
func TestFrontendsShareMySQL(t *testing.T) {
	dsn := mariadbtest.Start(t)
	testFrontendsShare(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}})
}

// testFrontendsShare is TestFrontendsShareMySQL's on storage.
func testFrontendsShare(t *testing.T, storage *Storage) {
	a := newTestLogOpts(t, storage, nil, "quorum none\n", "", true)
	b := a.frontend(t)
	ctx := t.Context()
	const n = 24
	for i := range n {
		e := release(t, a.operator, measurement(i))
		var wg sync.WaitGroup
		var ra, rb api.AddResponse
		var ea, eb error
		wg.Go(func() { ra, ea = a.client.Add(ctx, mustEntry(t, e)) })
		wg.Go(func() { rb, eb = b.client.Add(ctx, mustEntry(t, e)) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("statement %d: %v, %v", i, ea, eb)
		}
		if ra.Index != rb.Index || ra.Duplicate == rb.Duplicate {
			t.Fatalf("statement %d sent to both frontends: %+v and %+v, want one index, one duplicate", i, ra, rb)
		}
	}
	// Both frontends' indexes hold every entry, whoever appended it, and
	// the tree holds each statement once.
	size := a.size(t)
	if err := a.waitIndexed(ctx, size-1); err != nil {
		t.Fatal(err)
	}
	if err := b.waitIndexed(ctx, size-1); err != nil {
		t.Fatal(err)
	}
	all, releases := a.treeEntries(t), 0
	for _, e := range all {
		if !statement.IsIndexCheckpoint(e) {
			releases++
		}
	}
	if releases != n {
		t.Errorf("the tree holds %d statements (of %d entries), want %d", releases, len(all), n)
	}
	for _, f := range []*testLog{a, b} {
		lr, err := f.client.Lookup(ctx, measurement(7))
		if err != nil || len(lr.Entries) != 1 {
			t.Errorf("lookup on a frontend = %+v, %v", lr, err)
		}
	}
	// One signer of index checkpoints; the other proves against them.
	signer, other := a, b
	if b.lock.conn != nil {
		signer, other = b, a
	}
	if signer.lock.conn == nil || other.lock.conn != nil {
		t.Fatalf("index checkpoint signers: a %v, b %v; want exactly one", a.lock.conn != nil, b.lock.conn != nil)
	}
	other.getIndexProof(t, snp(measurement(3)), 1)
	// The signer stops; the other commits the next entries itself.
	signer.Log.Close(ctx)
	m := measurement(100)
	other.add(t, release(t, other.operator, m))
	other.getIndexProof(t, snp(m), 1)
	if other.lock.conn == nil {
		t.Error("the remaining frontend proves a new entry but holds no lock")
	}
}
