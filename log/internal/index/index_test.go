package index

import (
	"database/sql"
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
	// The rebuilt index takes binary lookup values, found by either case of hex.
	m := "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff001122334455"
	r := Record{Entry: Entry{Index: 0, Kind: statement.KindRelease, PayloadHash: []byte{1}, EntrySHA256: "aa",
		Measurement: m, Time: time.Unix(1_790_000_000, 0)}, Measurements: []string{m}}
	if err := d.Add(t.Context(), []Record{r}, 1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{m, "AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF001122334455"} {
		if es, err := d.Lookup(t.Context(), q); err != nil || len(es) != 1 || es[0].Measurement != m {
			t.Errorf("Lookup(%.8s…) = %v, %v; want the entry", q, es, err)
		}
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
