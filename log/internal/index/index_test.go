package index

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// An index written by the first schema (hex TEXT lookup values, no schema
// version) is emptied on Open so that the log rebuilds it; the checkpoint
// history, which is not derived from the log, survives.
func TestOpenRebuildsOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE entries (idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload_hash BLOB NOT NULL, entry_sha256 TEXT NOT NULL, signer_key TEXT NOT NULL, signer_name TEXT NOT NULL, platform TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '', primary_measurement TEXT NOT NULL DEFAULT '', time TEXT NOT NULL DEFAULT '', ref_idx INTEGER, outcome TEXT NOT NULL DEFAULT '', has_provenance INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE lookup (value TEXT NOT NULL, what TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (value, idx, what)) WITHOUT ROWID`,
		`CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL, seen_at TEXT NOT NULL)`,
		`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
		`INSERT INTO entries (idx, kind, payload_hash, entry_sha256, signer_key, signer_name) VALUES (0, 'release', x'00', 'aa', 'k', 'n')`,
		`INSERT INTO lookup VALUES ('aabb', 'measurement', 0)`,
		`INSERT INTO checkpoints VALUES (1, 'note', '2026-11-26T00:00:00Z')`,
		`INSERT INTO meta VALUES ('next', 1)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if n, err := d.Next(t.Context()); err != nil || n != 0 {
		t.Errorf("Next after opening an old-schema index = %d, %v; want 0 (rebuild from the log)", n, err)
	}
	if cps, err := d.Checkpoints(t.Context(), 10); err != nil || len(cps) != 1 {
		t.Errorf("checkpoint history after migration: %v, %v; want the one recorded", cps, err)
	}
	// The rebuilt index takes entries, and its lookup table (answered by
	// the verifiable index's map since schema 5) is gone.
	m := "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff001122334455"
	r := Record{Entry: Entry{Index: 0, Kind: statement.KindRelease, PayloadHash: []byte{1}, EntrySHA256: "aa",
		Measurement: m, Time: time.Unix(1_790_000_000, 0)}}
	if err := d.Add(t.Context(), []Record{r}, 1); err != nil {
		t.Fatal(err)
	}
	if e, err := d.Get(t.Context(), 0); err != nil || e.Measurement != m {
		t.Errorf("Get(0) = %+v, %v; want the entry", e, err)
	}
	var tables int
	if err := d.ro.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'lookup'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("lookup tables after migration: %d, %v; want none", tables, err)
	}
	// Opening again keeps what the current schema wrote.
	d.Close()
	if d, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Next(t.Context()); err != nil || n != 1 {
		t.Errorf("Next after reopening = %d, %v; want 1", n, err)
	}
}

// Duplicate detection finds a statement by its whole payload hash: hashes
// that share the 8 bytes the index keys on (which a submitter can make)
// are told apart, and one never logged is not found.
func TestByPayloadPrefixCollision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(last byte) []byte {
		h := make([]byte, 32)
		copy(h, "prefix!!")
		h[31] = last
		return h
	}
	var recs []Record
	for i, last := range []byte{1, 2, 3} {
		recs = append(recs, Record{Entry: Entry{Index: uint64(i), Kind: statement.KindRelease, PayloadHash: hash(last), EntrySHA256: "aa"}})
	}
	recs = append(recs, UnreadableRecord(3, [32]byte{1}, "bad"))
	if err := d.Add(t.Context(), recs, 4); err != nil {
		t.Fatal(err)
	}
	check := func(d *DB) {
		t.Helper()
		for i, last := range []byte{1, 2, 3} {
			if idx, err := d.ByPayload(t.Context(), hash(last)); err != nil || idx != uint64(i) {
				t.Errorf("ByPayload(prefix…%02x) = %d, %v; want %d", last, idx, err, i)
			}
		}
		if idx, err := d.ByPayload(t.Context(), hash(4)); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByPayload(a hash never logged, same prefix) = %d, %v; want ErrNotFound", idx, err)
		}
	}
	check(d)
	// Reopened: the filter is rebuilt from the table and agrees.
	d.Close()
	if d, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	check(d)
}
