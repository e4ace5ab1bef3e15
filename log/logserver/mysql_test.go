package logserver

import (
	"testing"

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
}
