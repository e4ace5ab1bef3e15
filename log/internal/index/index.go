// Package index is the log's entry index: a SQLite database describing
// each entry, mapping statements to their first index (for duplicate
// detection) and releases to their reproductions and revocations.
// Everything in it is derived from the log and can be rebuilt with
// 'attestlog log reindex'. Lookups by measurement or artifact digest are
// answered by the verifiable index's map (log/vindex), which holds the
// same values already; a table of them here cost more than half of the
// index's writes (random B-tree rows, several per release).
package index

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/attestlog/attestlog/log/statement"
)

// ErrNotFound is returned when no entry matches.
var ErrNotFound = errors.New("not found")

// DB is the index database. Its methods are safe for concurrent use.
type DB struct {
	db *sql.DB // the one writer connection
	ro *sql.DB // readers (WAL lets them run beside the writer)

	filterMu sync.Mutex // serialises rebuilds of filter
	filter   atomic.Pointer[payloadFilter]
}

const schema = `
CREATE TABLE IF NOT EXISTS entries (
	idx          INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	payload_hash BLOB NOT NULL,
	payload_key  INTEGER NOT NULL, -- payloadKey(payload_hash)
	entry_sha256 TEXT NOT NULL,
	signer_key   TEXT NOT NULL,
	signer_name  TEXT NOT NULL,
	platform     TEXT NOT NULL DEFAULT '',
	version      TEXT NOT NULL DEFAULT '',
	primary_measurement TEXT NOT NULL DEFAULT '',
	time         TEXT NOT NULL DEFAULT '',
	ref_idx      INTEGER,
	outcome      TEXT NOT NULL DEFAULT '',
	has_provenance INTEGER NOT NULL DEFAULT 0,
	problem      TEXT NOT NULL DEFAULT '', -- why an unreadable entry is
	reason       TEXT NOT NULL DEFAULT '', -- of a revocation
	advisory     TEXT NOT NULL DEFAULT ''  -- of a revocation
);
CREATE INDEX IF NOT EXISTS entries_payload ON entries(payload_key);
CREATE INDEX IF NOT EXISTS entries_ref ON entries(ref_idx);
CREATE INDEX IF NOT EXISTS entries_unreadable ON entries(idx) WHERE kind = 'unreadable';
CREATE TABLE IF NOT EXISTS checkpoints (
	size    INTEGER PRIMARY KEY,
	note    BLOB NOT NULL,
	seen_at TEXT NOT NULL
);
`

// schemaVersion is stored in meta; an index written with another version is
// dropped and rebuilt from the log (everything but the checkpoint history
// is derived from it).
const schemaVersion = 5

// Open opens (creating if needed) the index at path. An index written by an
// earlier version of the schema is emptied, and the log rebuilds it from
// its entries before it serves.
func Open(path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
	// The writer inserts keys at random places in large B-trees: a 64 MiB
	// page cache and checkpointing the WAL every 64 MiB rather than every
	// 4 MiB halve what each commit writes. Readers keep SQLite's defaults.
	db, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(16384)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	ro, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		db.Close()
		return nil, err
	}
	ro.SetMaxOpenConns(8)
	ro.SetMaxIdleConns(8)
	d := &DB{db: db, ro: ro}
	f, err := d.loadFilter(context.Background())
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	d.filter.Store(f)
	return d, nil
}

// migrate creates the schema, first dropping the derived tables of an index
// written with another schema version.
func migrate(db *sql.DB) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v, entries int
	err := db.QueryRow(`SELECT value FROM meta WHERE key = 'schema'`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'entries'`).Scan(&entries); err != nil {
		return err
	}
	if v != schemaVersion && entries > 0 {
		if _, err := db.Exec(`DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS lookup; DELETE FROM meta;`); err != nil {
			return err
		}
	}
	if _, err := db.Exec(schema); err != nil {
		return err
	}
	// Version 4 had a lookup table, answered by the map since version 5.
	if _, err := db.Exec(`DROP TABLE IF EXISTS lookup`); err != nil {
		return err
	}
	_, err = db.Exec(`INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, schemaVersion)
	return err
}

// Close closes the database.
func (d *DB) Close() error { return errors.Join(d.ro.Close(), d.db.Close()) }

// Next returns the index of the first entry not yet indexed.
func (d *DB) Next(ctx context.Context) (uint64, error) {
	var n uint64
	err := d.ro.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'next'`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// Reset deletes everything, for a reindex.
func (d *DB) Reset(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM entries; DELETE FROM meta WHERE key = 'next';`)
	if err == nil {
		d.filter.Store(newPayloadFilter(0))
	}
	return err
}

// Entry is one indexed entry.
type Entry struct {
	Index         uint64
	Kind          statement.Kind
	PayloadHash   []byte
	EntrySHA256   string
	SignerKey     string // key ID
	SignerName    string // name in the log's policy when indexed, or "sigstore:…"
	Platform      string
	Version       string
	Measurement   string // the primary measurement of a release
	Time          time.Time
	Ref           *uint64 // the release a reproduction or revocation names
	Outcome       string  // of a reproduction
	HasProvenance bool
	// Problem says why an entry of KindUnreadable cannot be read.
	Problem string
	// Reason and Advisory are a revocation's.
	Reason, Advisory string
}

// KindUnreadable marks an entry of the log that does not parse as a
// statement. Admission parses with the same code as the indexer, so one
// is a bug or a foreign writer; the index records it and moves on.
const KindUnreadable statement.Kind = "unreadable" // spelled out in the SQL of Unreadable

// maxProblem bounds the stored reason of an unreadable entry.
const maxProblem = 512

// UnreadableRecord is the record of an entry that does not parse.
func UnreadableRecord(idx uint64, entryHash [32]byte, problem string) Record {
	if len(problem) > maxProblem {
		problem = strings.ToValidUTF8(problem[:maxProblem], "") + "…"
	}
	return Record{Entry: Entry{
		Index: idx, Kind: KindUnreadable,
		// The entry's own hash: no statement payload can collide with it
		// in duplicate detection, which looks up statement payload hashes.
		PayloadHash: append([]byte("unreadable:"), entryHash[:]...),
		EntrySHA256: hex.EncodeToString(entryHash[:]),
		Problem:     problem,
	}}
}

// Record is what Add indexes for one entry.
type Record struct {
	Entry
}

// RecordOf builds the index record of a parsed entry whose bytes have
// SHA-256 entryHash.
func RecordOf(idx uint64, entryHash [32]byte, p *statement.Parsed, signerKey, signerName string) Record {
	r := Record{Entry: Entry{
		Index: idx, Kind: p.Kind, PayloadHash: p.PayloadHash[:],
		EntrySHA256: hex.EncodeToString(entryHash[:]),
		SignerKey:   signerKey, SignerName: signerName,
	}}
	switch p.Kind {
	case statement.KindRelease:
		rel := p.Release
		r.Platform, r.Version, r.Time = rel.Platform, rel.Version, rel.Time
		r.Measurement = rel.Measurements.Primary()
		r.HasProvenance = len(rel.Provenance) > 0
	case statement.KindReproduction:
		ref := p.Ref.Index
		r.Ref, r.Outcome, r.Time = &ref, p.Reproduction.Outcome, p.Reproduction.Time
		r.Measurement = p.Reproduction.Measurements.Primary()
	case statement.KindRevocation:
		ref := p.Ref.Index
		r.Ref, r.Time = &ref, p.Revocation.Time
		r.Reason, r.Advisory = p.Revocation.Reason, p.Revocation.Advisory
	}
	return r
}

// Add indexes records (which must be consecutive and start at Next) and
// advances Next past them, atomically.
func (d *DB) Add(ctx context.Context, recs []Record, next uint64) error {
	// A context that cannot be cancelled spares the driver a watcher
	// goroutine per statement; the transaction is short.
	ctx = context.WithoutCancel(ctx)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Multi-row INSERTs: the driver's per-statement cost, not SQLite's
	// B-tree work, dominates single-row ones.
	var entryRows [][]any
	for _, r := range recs {
		var ref any
		if r.Ref != nil {
			ref = int64(*r.Ref)
		}
		t := ""
		if !r.Time.IsZero() {
			t = r.Time.UTC().Format(time.RFC3339)
		}
		entryRows = append(entryRows, []any{int64(r.Index), string(r.Kind), r.PayloadHash, payloadKey(r.PayloadHash), r.EntrySHA256, r.SignerKey, r.SignerName,
			r.Platform, r.Version, r.Measurement, t, ref, r.Outcome, r.HasProvenance, r.Problem, r.Reason, r.Advisory})
	}
	if err := insertRows(ctx, tx, `INSERT OR REPLACE INTO entries
		(idx, kind, payload_hash, payload_key, entry_sha256, signer_key, signer_name, platform, version, primary_measurement, time, ref_idx, outcome, has_provenance, problem, reason, advisory) VALUES `, entryRows); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('next', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, int64(next)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	f := d.filter.Load()
	for _, r := range recs {
		f.add(r.PayloadHash)
	}
	if f.full() {
		// Rebuild twice as large; until it is stored, the old one (more
		// false positives, never false negatives) answers.
		d.filterMu.Lock()
		if nf, err := d.loadFilter(ctx); err == nil {
			d.filter.Store(nf)
		}
		d.filterMu.Unlock()
	}
	return nil
}

const entryCols = `idx, kind, payload_hash, entry_sha256, signer_key, signer_name, platform, version, primary_measurement, time, ref_idx, outcome, has_provenance, problem, reason, advisory`

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var kind, t string
		var ref sql.NullInt64
		if err := rows.Scan(&e.Index, &kind, &e.PayloadHash, &e.EntrySHA256, &e.SignerKey, &e.SignerName,
			&e.Platform, &e.Version, &e.Measurement, &t, &ref, &e.Outcome, &e.HasProvenance, &e.Problem, &e.Reason, &e.Advisory); err != nil {
			return nil, err
		}
		e.Kind = statement.Kind(kind)
		if t != "" {
			e.Time, _ = time.Parse(time.RFC3339, t)
		}
		if ref.Valid {
			r := uint64(ref.Int64)
			e.Ref = &r
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get returns the entry at idx, or ErrNotFound.
func (d *DB) Get(ctx context.Context, idx uint64) (Entry, error) {
	rows, err := d.ro.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE idx = ?`, int64(idx))
	if err != nil {
		return Entry{}, err
	}
	es, err := scanEntries(rows)
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, ErrNotFound
	}
	return es[0], nil
}

// ByPayload returns the first index of the statement with this payload
// hash, or ErrNotFound.
func (d *DB) ByPayload(ctx context.Context, h []byte) (uint64, error) {
	if !d.filter.Load().mayContain(h) {
		return 0, ErrNotFound
	}
	var idx uint64
	err := d.ro.QueryRowContext(ctx, `SELECT idx FROM entries WHERE payload_key = ? AND payload_hash = ? ORDER BY idx LIMIT 1`, payloadKey(h), h).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return idx, err
}

// Related returns the reproductions and revocations of release idx.
func (d *DB) Related(ctx context.Context, idx uint64) ([]Entry, error) {
	rows, err := d.ro.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE ref_idx = ? ORDER BY idx`, int64(idx))
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// Unreadable returns up to n of the entries recorded as unreadable, oldest
// first, and how many there are.
func (d *DB) Unreadable(ctx context.Context, n int) ([]Entry, int, error) {
	var total int
	if err := d.ro.QueryRowContext(ctx, `SELECT count(*) FROM entries WHERE kind = 'unreadable'`).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := d.ro.QueryContext(ctx, `SELECT `+entryCols+` FROM entries WHERE kind = 'unreadable' ORDER BY idx LIMIT ?`, n)
	if err != nil {
		return nil, 0, err
	}
	es, err := scanEntries(rows)
	return es, total, err
}

// Recent returns up to n entries, newest first, below before (all if 0).
func (d *DB) Recent(ctx context.Context, n int, before uint64) ([]Entry, error) {
	q := `SELECT ` + entryCols + ` FROM entries ORDER BY idx DESC LIMIT ?`
	args := []any{n}
	if before > 0 {
		q = `SELECT ` + entryCols + ` FROM entries WHERE idx < ? ORDER BY idx DESC LIMIT ?`
		args = []any{int64(before), n}
	}
	rows, err := d.ro.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// CheckpointRecord is a published checkpoint as the log saw it.
type CheckpointRecord struct {
	Size   uint64
	Note   []byte // the signed note with its cosignatures
	SeenAt time.Time
}

// AddCheckpoint records a published checkpoint (the first one seen for
// each size).
func (d *DB) AddCheckpoint(ctx context.Context, size uint64, signed []byte, seen time.Time) error {
	_, err := d.db.ExecContext(context.WithoutCancel(ctx), `INSERT OR IGNORE INTO checkpoints (size, note, seen_at) VALUES (?, ?, ?)`,
		int64(size), signed, seen.UTC().Format(time.RFC3339Nano))
	return err
}

// Checkpoints returns up to n recorded checkpoints, newest first.
func (d *DB) Checkpoints(ctx context.Context, n int) ([]CheckpointRecord, error) {
	rows, err := d.ro.QueryContext(ctx, `SELECT size, note, seen_at FROM checkpoints ORDER BY size DESC LIMIT ?`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CheckpointRecord
	for rows.Next() {
		var c CheckpointRecord
		var t string
		if err := rows.Scan(&c.Size, &c.Note, &t); err != nil {
			return nil, err
		}
		c.SeenAt, _ = time.Parse(time.RFC3339Nano, t)
		out = append(out, c)
	}
	return out, rows.Err()
}

// insertRows runs prefix + "(?,…),(?,…)…" over rows, in chunks that stay
// under SQLite's limit on bound parameters.
func insertRows(ctx context.Context, tx *sql.Tx, prefix string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	width := len(rows[0])
	chunk := max(1, 30000/width)
	tuple := "(?" + strings.Repeat(",?", width-1) + ")"
	for len(rows) > 0 {
		n := min(chunk, len(rows))
		var q strings.Builder
		q.WriteString(prefix)
		args := make([]any, 0, n*width)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// payloadKey is what entries_payload indexes of a payload hash: its first
// 8 bytes as an integer. An index of 8-byte keys is a third the size of
// one of whole hashes, and its random inserts dirty fewer pages (the
// index's writes per entry fell by 40%: BenchmarkAdd). Lookups compare
// the whole hash too, so hashes that share a prefix (which anyone can
// make, 2^32 tries for a pair) only cost a scan of the few rows that do.
func payloadKey(h []byte) int64 {
	var b [8]byte
	copy(b[:], h)
	return int64(binary.BigEndian.Uint64(b[:]))
}
