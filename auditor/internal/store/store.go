// Package store is the auditor's SQLite state: how far each log is
// followed, every checkpoint seen, the releases and their rebuilds, the
// alerts raised and the webhook outbox. Everything is committed before the
// auditor acts on it (signs, alerts, delivers), so a restart resumes where
// the previous process stopped and never re-alerts.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite"
)

// ErrNotFound is returned by lookups of a row that does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open state database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// ro reads for the dashboard and the HTTP API, beside the one writer
	// connection (WAL lets them), so that a page does not queue behind the
	// auditor's writes.
	ro *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS logs (
	origin     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	hash       BLOB NOT NULL,
	checkpoint BLOB NOT NULL,
	next_entry INTEGER NOT NULL,
	updated    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
	origin  TEXT NOT NULL,
	size    INTEGER NOT NULL,
	hash    BLOB NOT NULL,
	source  TEXT NOT NULL,
	note    BLOB NOT NULL,
	checked INTEGER NOT NULL DEFAULT 0,
	seen    TEXT NOT NULL,
	PRIMARY KEY (origin, size, hash)
);
CREATE TABLE IF NOT EXISTS releases (
	origin       TEXT NOT NULL,
	idx          INTEGER NOT NULL,
	entry_sha256 TEXT NOT NULL,
	platform     TEXT NOT NULL,
	version      TEXT NOT NULL,
	measurement  TEXT NOT NULL,
	signer       TEXT NOT NULL,
	rebuild      TEXT NOT NULL,
	detail       TEXT NOT NULL DEFAULT '',
	rebuilt      TEXT NOT NULL DEFAULT '',
	entry        BLOB,
	repro_entry  BLOB,
	repro_index  INTEGER,
	revoked      TEXT NOT NULL DEFAULT '',
	authority    TEXT NOT NULL DEFAULT '', -- an authority co-signed it (a reinstatement)
	PRIMARY KEY (origin, idx)
);
CREATE INDEX IF NOT EXISTS releases_measurement ON releases (measurement);
CREATE INDEX IF NOT EXISTS releases_rebuild ON releases (rebuild);
CREATE INDEX IF NOT EXISTS releases_idx ON releases (idx);
CREATE TABLE IF NOT EXISTS alerts (
	id       INTEGER PRIMARY KEY,
	key      TEXT NOT NULL UNIQUE,
	kind     TEXT NOT NULL,
	subject  TEXT NOT NULL,
	time     TEXT NOT NULL,
	summary  TEXT NOT NULL,
	evidence TEXT NOT NULL DEFAULT '',
	open     INTEGER NOT NULL DEFAULT 1,
	closed   TEXT NOT NULL DEFAULT '',  -- when it was closed (RFC 3339)
	close_note TEXT NOT NULL DEFAULT '' -- why, as the closer said
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (open, id);
CREATE TABLE IF NOT EXISTS outbox (
	alert_id     INTEGER NOT NULL,
	url          TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	delivered    TEXT NOT NULL DEFAULT '',
	last_error   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (alert_id, url)
);
`

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema+deploymentSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening auditor database %s: %w", path, err)
	}
	if err := addColumns(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening auditor database %s: %w", path, err)
	}
	ro, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		db.Close()
		return nil, err
	}
	ro.SetMaxOpenConns(4)
	return &Store{db: db, ro: ro}, nil
}

// addColumns adds the columns later versions added to a database made
// by an earlier one: alerts' closing (closed, close_note) and releases'
// authority co-signature.
func addColumns(ctx context.Context, db *sql.DB) error {
	for _, c := range []struct{ table, column, add string }{
		{"alerts", "closed", `ALTER TABLE alerts ADD COLUMN closed TEXT NOT NULL DEFAULT '';
			ALTER TABLE alerts ADD COLUMN close_note TEXT NOT NULL DEFAULT '';`},
		{"releases", "authority", `ALTER TABLE releases ADD COLUMN authority TEXT NOT NULL DEFAULT '';`},
	} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.ExecContext(ctx, c.add); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return errors.Join(s.ro.Close(), s.db.Close()) }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// --- Logs and checkpoints

// LogState is how far a log has been followed.
type LogState struct {
	Origin     string
	Size       int64
	Hash       []byte
	Checkpoint []byte // the signed note of the latest verified tree
	NextEntry  int64  // entries below this index are verified
	Updated    time.Time
}

// Log returns the state of origin, or ErrNotFound.
func (s *Store) Log(ctx context.Context, origin string) (*LogState, error) {
	var l LogState
	var upd string
	err := s.db.QueryRowContext(ctx, `SELECT origin, size, hash, checkpoint, next_entry, updated FROM logs WHERE origin = ?`, origin).
		Scan(&l.Origin, &l.Size, &l.Hash, &l.Checkpoint, &l.NextEntry, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.Updated, _ = time.Parse(time.RFC3339Nano, upd)
	return &l, nil
}

// SetTree records a verified, consistent tree of origin as the latest,
// keeping NextEntry.
func (s *Store) SetTree(ctx context.Context, origin string, size int64, hash, checkpoint []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO logs (origin, size, hash, checkpoint, next_entry, updated) VALUES (?, ?, ?, ?, 0, ?)
		ON CONFLICT (origin) DO UPDATE SET size = excluded.size, hash = excluded.hash, checkpoint = excluded.checkpoint, updated = excluded.updated`,
		origin, size, hash, checkpoint, now())
	return err
}

// SeenCheckpoint is a checkpoint seen from some source.
type SeenCheckpoint struct {
	Origin string
	Size   int64
	Hash   []byte
	Source string
	Note   []byte
}

// AddCheckpoint records a checkpoint seen from source. checked says
// whether it was already shown consistent with the log's tree. It reports
// whether the checkpoint is new.
func (s *Store) AddCheckpoint(ctx context.Context, c SeenCheckpoint, checked bool) (bool, error) {
	r, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO checkpoints (origin, size, hash, source, note, checked, seen) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Origin, c.Size, c.Hash, c.Source, c.Note, checked, now())
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

// UncheckedCheckpoints returns the checkpoints of origin of at most size
// entries not yet shown consistent with the log's tree.
func (s *Store) UncheckedCheckpoints(ctx context.Context, origin string, size int64) ([]SeenCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT origin, size, hash, source, note FROM checkpoints WHERE origin = ? AND checked = 0 AND size <= ? ORDER BY size`, origin, size)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SeenCheckpoint
	for rows.Next() {
		var c SeenCheckpoint
		if err := rows.Scan(&c.Origin, &c.Size, &c.Hash, &c.Source, &c.Note); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// MarkChecked records that a checkpoint was checked (consistent or not).
func (s *Store) MarkChecked(ctx context.Context, origin string, size int64, hash []byte) error {
	_, err := s.db.ExecContext(ctx, `UPDATE checkpoints SET checked = 1 WHERE origin = ? AND size = ? AND hash = ?`, origin, size, hash)
	return err
}

// --- Entries

// Release is a verified release entry and its rebuild state.
type Release struct {
	Origin      string `json:"origin"`
	Index       int64  `json:"index"`
	EntrySHA256 string `json:"entry_sha256"`
	Platform    string `json:"platform"`
	Version     string `json:"version"`
	Measurement string `json:"measurement"`
	Signer      string `json:"signer"`
	// Rebuild is RebuildQueued, RebuildRunning, RebuildReproduced,
	// RebuildMismatch, RebuildFailed or RebuildOff.
	Rebuild string `json:"rebuild"`
	Detail  string `json:"detail,omitempty"`
	Rebuilt string `json:"rebuilt_measurement,omitempty"`
	// Revoked is the index of the first valid revocation, or "".
	Revoked string `json:"revoked,omitempty"`
	// Authority names the authority of the auditor's policy that
	// co-signed the release (reinstating its measurement), or "".
	Authority string `json:"authority,omitempty"`
	// ReproIndex is the log index of our reproduction statement, or -1.
	ReproIndex int64  `json:"reproduction_index"`
	Entry      []byte `json:"-"` // the logged entry, kept until rebuilt
	ReproEntry []byte `json:"-"` // our signed reproduction, kept until logged
}

// Rebuild states.
const (
	RebuildQueued     = "queued"
	RebuildRunning    = "running"
	RebuildReproduced = "reproduced"
	RebuildMismatch   = "mismatch"
	RebuildFailed     = "failed"
	RebuildOff        = "off"
	// RebuildUnsandboxed: not rebuilt for want of a sandbox; queued again
	// at the next start.
	RebuildUnsandboxed = "unsandboxed"
)

// Batch is a set of changes applied in one transaction with the log's new
// progress.
type Batch struct {
	Releases []Release
	// Revocations maps a release index to the revoking entry's index.
	Revocations map[int64]int64
}

// Apply records b and sets origin's NextEntry to next, atomically.
func (s *Store) Apply(ctx context.Context, origin string, b *Batch, next int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(b.Releases) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO releases (origin, idx, entry_sha256, platform, version, measurement, signer, rebuild, entry, authority, repro_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, -1)`)
		if err != nil {
			return err
		}
		for _, r := range b.Releases {
			if _, err := st.ExecContext(ctx, origin, r.Index, r.EntrySHA256, r.Platform, r.Version, r.Measurement, r.Signer, r.Rebuild, r.Entry, r.Authority); err != nil {
				st.Close()
				return err
			}
		}
		st.Close()
	}
	for rel, rev := range b.Revocations {
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET revoked = ? WHERE origin = ? AND idx = ? AND revoked = ''`, fmt.Sprint(rev), origin, rel); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE logs SET next_entry = ?, updated = ? WHERE origin = ?`, next, now(), origin); err != nil {
		return err
	}
	return tx.Commit()
}

const releaseCols = `origin, idx, entry_sha256, platform, version, measurement, signer, rebuild, detail, rebuilt, revoked, authority, COALESCE(repro_index, -1), entry, repro_entry`

func scanRelease(sc interface{ Scan(...any) error }) (Release, error) {
	var r Release
	err := sc.Scan(&r.Origin, &r.Index, &r.EntrySHA256, &r.Platform, &r.Version, &r.Measurement, &r.Signer, &r.Rebuild, &r.Detail, &r.Rebuilt, &r.Revoked, &r.Authority, &r.ReproIndex, &r.Entry, &r.ReproEntry)
	return r, err
}

func (s *Store) releases(ctx context.Context, where string, args ...any) ([]Release, error) {
	return releasesFrom(ctx, s.db, where, args...)
}

func releasesFrom(ctx context.Context, db *sql.DB, where string, args ...any) ([]Release, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Release returns the release at idx of origin, or ErrNotFound.
func (s *Store) Release(ctx context.Context, origin string, idx int64) (*Release, error) {
	r, err := scanRelease(s.db.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE origin = ? AND idx = ?`, origin, idx))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ReleasesByMeasurement returns the releases of origin with measurement m.
func (s *Store) ReleasesByMeasurement(ctx context.Context, origin, m string) ([]Release, error) {
	return s.releases(ctx, `origin = ? AND measurement = ? ORDER BY idx`, origin, m)
}

// NextRebuild marks the oldest queued release running and returns it, or
// ErrNotFound when none is queued.
func (s *Store) NextRebuild(ctx context.Context) (*Release, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	r, err := scanRelease(tx.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE rebuild = ? ORDER BY origin, idx LIMIT 1`, RebuildQueued))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE releases SET rebuild = ? WHERE origin = ? AND idx = ?`, RebuildRunning, r.Origin, r.Index); err != nil {
		return nil, err
	}
	r.Rebuild = RebuildRunning
	return &r, tx.Commit()
}

// RequeueRunning puts rebuilds interrupted by a crash, and those held for
// want of a sandbox, back in the queue.
func (s *Store) RequeueRunning(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE releases SET rebuild = ? WHERE rebuild IN (?, ?)`, RebuildQueued, RebuildRunning, RebuildUnsandboxed)
	return err
}

// HoldRebuild records that a release was not rebuilt (state, with why)
// and keeps its entry, so that RequeueRunning queues it again.
func (s *Store) HoldRebuild(ctx context.Context, origin string, idx int64, state, detail string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE releases SET rebuild = ?, detail = ? WHERE origin = ? AND idx = ?`, state, detail, origin, idx)
	return err
}

// FinishRebuild records the outcome of a rebuild and, when not nil, the
// signed reproduction statement to submit. The logged entry is dropped.
func (s *Store) FinishRebuild(ctx context.Context, origin string, idx int64, state, detail, rebuilt string, repro []byte) error {
	_, err := s.db.ExecContext(ctx, `UPDATE releases SET rebuild = ?, detail = ?, rebuilt = ?, repro_entry = ?, entry = NULL WHERE origin = ? AND idx = ?`,
		state, detail, rebuilt, repro, origin, idx)
	return err
}

// PendingReproductions returns releases whose signed reproduction is not
// yet logged.
func (s *Store) PendingReproductions(ctx context.Context) ([]Release, error) {
	return s.releases(ctx, `repro_entry IS NOT NULL AND COALESCE(repro_index, -1) < 0 ORDER BY origin, idx`)
}

// SetReproIndex records where our reproduction of a release was logged.
func (s *Store) SetReproIndex(ctx context.Context, origin string, idx, reproIdx int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE releases SET repro_index = ? WHERE origin = ? AND idx = ?`, reproIdx, origin, idx)
	return err
}

// RebuildCounts returns the number of releases in each rebuild state.
func (s *Store) RebuildCounts(ctx context.Context) (map[string]int64, error) {
	return s.countBy(ctx, `SELECT rebuild, COUNT(*) FROM releases GROUP BY rebuild`)
}

// countBy runs a "SELECT key, COUNT(*) … GROUP BY key" query.
func (s *Store) countBy(ctx context.Context, query string) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// --- Alerts

// Alert is a raised alert.
type Alert struct {
	ID       int64           `json:"id"`
	Key      string          `json:"key"`
	Kind     string          `json:"kind"`
	Subject  string          `json:"subject"`
	Time     time.Time       `json:"time"`
	Summary  string          `json:"summary"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
	Open     bool            `json:"open"`
	// Closed is when the alert was closed (RFC 3339), and CloseNote why.
	Closed    string `json:"closed,omitempty"`
	CloseNote string `json:"close_note,omitempty"`
	// Webhooks is the delivery state per webhook URL.
	Webhooks []Delivery `json:"webhooks,omitempty"`
}

// Delivery is the state of one alert's delivery to one webhook.
type Delivery struct {
	URL       string `json:"url"`
	Attempts  int    `json:"attempts"`
	Delivered string `json:"delivered,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// RaiseAlert records a, unless an alert with the same key exists, together
// with one outbox row per webhook URL, in one transaction. It reports
// whether the alert is new; a.ID is set when it is.
func (s *Store) RaiseAlert(ctx context.Context, a *Alert, webhooks []string) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	ev := ""
	if len(a.Evidence) > 0 {
		ev = string(a.Evidence)
	}
	r, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO alerts (key, kind, subject, time, summary, evidence) VALUES (?, ?, ?, ?, ?, ?)`,
		a.Key, a.Kind, a.Subject, a.Time.UTC().Format(time.RFC3339Nano), a.Summary, ev)
	if err != nil {
		return false, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return false, nil
	}
	a.ID, _ = r.LastInsertId()
	a.Open = true
	for _, u := range webhooks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (alert_id, url) VALUES (?, ?)`, a.ID, u); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// ErrAlreadyClosed is returned by CloseAlert for an alert closed before.
var ErrAlreadyClosed = errors.New("alert already closed")

// CloseAlert closes open alert id with a note saying why. The alert's
// condition is not raised again (alerts are unique by key); a new one,
// such as another measurement, raises a new alert.
func (s *Store) CloseAlert(ctx context.Context, id int64, note string) error {
	r, err := s.db.ExecContext(ctx, `UPDATE alerts SET open = 0, closed = ?, close_note = ? WHERE id = ? AND open = 1`, now(), note, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 1 {
		return nil
	}
	var open bool
	err = s.db.QueryRowContext(ctx, `SELECT open FROM alerts WHERE id = ?`, id).Scan(&open)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("alert %d: %w", id, ErrNotFound)
	case err != nil:
		return err
	}
	return fmt.Errorf("alert %d: %w", id, ErrAlreadyClosed)
}

// Alerts returns every alert, oldest first, with its deliveries.
func (s *Store) Alerts(ctx context.Context) ([]Alert, error) {
	return queryAlerts(ctx, s.db, `ORDER BY id`)
}

// AlertsPage returns the n newest alerts that are open (or closed), newest
// first, with their webhook deliveries, and how many such alerts there are.
func (s *Store) AlertsPage(ctx context.Context, open bool, n int) ([]Alert, int, error) {
	var total int
	if err := s.ro.QueryRowContext(ctx, `SELECT count(*) FROM alerts WHERE open = ?`, open).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := queryAlerts(ctx, s.ro, `WHERE open = ? ORDER BY id DESC LIMIT ?`, open, n)
	return out, total, err
}

// RecentAlerts returns the n newest alerts, open or not, newest first.
func (s *Store) RecentAlerts(ctx context.Context, n int) ([]Alert, error) {
	return queryAlerts(ctx, s.ro, `ORDER BY id DESC LIMIT ?`, n)
}

// AlertByID returns one alert, or ErrNotFound.
func (s *Store) AlertByID(ctx context.Context, id int64) (*Alert, error) {
	out, err := queryAlerts(ctx, s.ro, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return &out[0], nil
}

// queryAlerts reads the alerts the clause selects, with their webhook
// deliveries (one query for each).
func queryAlerts(ctx context.Context, db *sql.DB, where string, args ...any) ([]Alert, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, key, kind, subject, time, summary, evidence, open, closed, close_note FROM alerts `+where, args...)
	if err != nil {
		return nil, err
	}
	var out []Alert
	byID := map[int64]int{}
	lo, hi := int64(1<<62), int64(-1)
	for rows.Next() {
		var a Alert
		var t, ev string
		if err := rows.Scan(&a.ID, &a.Key, &a.Kind, &a.Subject, &t, &a.Summary, &ev, &a.Open, &a.Closed, &a.CloseNote); err != nil {
			rows.Close()
			return nil, err
		}
		a.Time, _ = time.Parse(time.RFC3339Nano, t)
		if ev != "" {
			a.Evidence = json.RawMessage(ev)
		}
		byID[a.ID] = len(out)
		lo, hi = min(lo, a.ID), max(hi, a.ID)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	drows, err := db.QueryContext(ctx, `SELECT alert_id, url, attempts, delivered, last_error FROM outbox WHERE alert_id BETWEEN ? AND ? ORDER BY alert_id, url`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer drows.Close()
	for drows.Next() {
		var id int64
		var d Delivery
		if err := drows.Scan(&id, &d.URL, &d.Attempts, &d.Delivered, &d.LastError); err != nil {
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Webhooks = append(out[i].Webhooks, d)
		}
	}
	return out, drows.Err()
}

// OpenAlertCounts returns the number of open alerts of each kind.
func (s *Store) OpenAlertCounts(ctx context.Context) (map[string]int64, error) {
	return s.countBy(ctx, `SELECT kind, COUNT(*) FROM alerts WHERE open = 1 GROUP BY kind`)
}

// --- Webhook outbox

// Outgoing is an undelivered alert for one webhook.
type Outgoing struct {
	Alert    Alert
	URL      string
	Attempts int
}

// DueDeliveries returns up to limit undelivered outbox rows due at t for
// the given URLs.
func (s *Store) DueDeliveries(ctx context.Context, t time.Time, limit int) ([]Outgoing, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.key, a.kind, a.subject, a.time, a.summary, a.evidence, a.open, o.url, o.attempts
		FROM outbox o JOIN alerts a ON a.id = o.alert_id
		WHERE o.delivered = '' AND o.next_attempt <= ? ORDER BY o.next_attempt, a.id LIMIT ?`, t.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Outgoing
	for rows.Next() {
		var o Outgoing
		var ts, ev string
		if err := rows.Scan(&o.Alert.ID, &o.Alert.Key, &o.Alert.Kind, &o.Alert.Subject, &ts, &o.Alert.Summary, &ev, &o.Alert.Open, &o.URL, &o.Attempts); err != nil {
			return nil, err
		}
		o.Alert.Time, _ = time.Parse(time.RFC3339Nano, ts)
		if ev != "" {
			o.Alert.Evidence = json.RawMessage(ev)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Delivered marks an outbox row delivered.
func (s *Store) Delivered(ctx context.Context, alertID int64, url string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET delivered = ?, attempts = attempts + 1, last_error = '' WHERE alert_id = ? AND url = ?`, now(), alertID, url)
	return err
}

// DeliveryFailed records a failed attempt and when to retry.
func (s *Store) DeliveryFailed(ctx context.Context, alertID int64, url string, next time.Time, msg string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE alert_id = ? AND url = ?`, next.UnixMilli(), msg, alertID, url)
	return err
}

// RetryAllNow makes every undelivered row due (after a restart).
func (s *Store) RetryAllNow(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET next_attempt = 0 WHERE delivered = ''`)
	return err
}

// PendingDeliveries returns the number of undelivered outbox rows.
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE delivered = ''`).Scan(&n)
	return n, err
}

// Releases returns every release known, by origin and index.
func (s *Store) Releases(ctx context.Context) ([]Release, error) {
	return s.releases(ctx, `1 = 1 ORDER BY origin, idx`)
}

// RecentReleases returns the n releases with the highest indexes (of any
// log), highest first.
func (s *Store) RecentReleases(ctx context.Context, n int) ([]Release, error) {
	return releasesFrom(ctx, s.ro, `1 = 1 ORDER BY idx DESC LIMIT ?`, n)
}

// ReleaseCounts counts the releases by rebuild state.
func (s *Store) ReleaseCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.ro.QueryContext(ctx, `SELECT rebuild, count(*) FROM releases GROUP BY rebuild`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
