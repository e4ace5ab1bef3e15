// Package store keeps the witness state in SQLite (modernc.org/sqlite): for
// each log its verifier keys and the latest cosigned tree head and checkpoint.
//
// Writes of tree heads go through a single committer goroutine that groups
// concurrent updates into one transaction (group commit); each update is a
// compare-and-swap on the previous (size, hash), and Update returns only after
// the transaction is durable (WAL, synchronous=FULL: fsynced).
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var (
	// ErrUnknownLog means the origin has no row, or no keys (removed).
	ErrUnknownLog = errors.New("unknown log")
	// ErrConflict means a compare-and-swap found a different previous tree
	// head: another update won. The caller MUST NOT release its signature.
	ErrConflict = errors.New("tree head changed concurrently")
	// ErrClosed is returned by Update after Close.
	ErrClosed = errors.New("store closed")
)

// EmptyTreeHash is the RFC 6962 hash of the empty tree, SHA-256 of "": the
// root recorded for a log that was never cosigned (size 0).
var EmptyTreeHash = sha256.Sum256(nil)

// Log is one log's row with its keys.
type Log struct {
	Origin string
	// Keys are note verifier keys (vkeys), sorted.
	Keys []string
	// Size and Hash are the latest cosigned tree head (0 and EmptyTreeHash
	// if never cosigned).
	Size uint64
	Hash [32]byte
	// Checkpoint is the latest cosigned checkpoint, with the log signatures
	// that verified and the witness cosignature; nil if never cosigned.
	Checkpoint []byte
	// Added is when the log was first added.
	Added time.Time
}

// Update is one compare-and-swap of a log's tree head.
type Update struct {
	Origin           string
	OldSize          uint64
	OldHash          [32]byte
	NewSize          uint64
	NewHash          [32]byte
	SignedCheckpoint []byte
}

// Store is the SQLite state. Its methods are safe for concurrent use, also
// with other processes (the CLI's add-log) using the same file.
type Store struct {
	read  *sql.DB // pool of readers (WAL lets them run during a write)
	write *sql.DB // one connection: the committer, AddLog, RemoveLog

	// Prepared once: preparing is most of the cost of a small query.
	logStmt    *sql.Stmt // on read
	updateStmt *sql.Stmt // on write

	// BeforeCommit, if set (tests only, before the first Update), is called
	// by the committer inside the transaction after the updates and before
	// COMMIT.
	BeforeCommit func(n int)
	// AfterCommit, if set (before the first Update), is called with the
	// size and duration of every transaction that committed.
	AfterCommit func(n int, d time.Duration)

	mu     sync.RWMutex // held for reading while sending on reqs
	closed bool
	reqs   chan *pending
	done   chan struct{}
}

type pending struct {
	u   Update
	err chan error
}

// maxBatch bounds how many updates one transaction carries.
const maxBatch = 512

const schema = `
CREATE TABLE IF NOT EXISTS log (
	origin     TEXT PRIMARY KEY,
	origin_sha TEXT NOT NULL UNIQUE,   -- lowercase hex SHA-256 of origin
	size       INTEGER NOT NULL,       -- latest cosigned tree size, 0 if never
	hash       BLOB NOT NULL,          -- root hash at size (32 bytes)
	checkpoint BLOB,                   -- latest cosigned checkpoint, NULL if never
	added      INTEGER NOT NULL        -- unix seconds
) STRICT;
CREATE TABLE IF NOT EXISTS key (
	origin TEXT NOT NULL REFERENCES log(origin),
	vkey   TEXT NOT NULL,              -- note verifier key
	PRIMARY KEY (origin, vkey)
) STRICT;
CREATE TABLE IF NOT EXISTS evidence (
	id         INTEGER PRIMARY KEY,
	origin     TEXT NOT NULL,
	received   INTEGER NOT NULL,       -- unix seconds
	kind       TEXT NOT NULL,          -- split-view, bad-proof
	request    BLOB NOT NULL,          -- the add-checkpoint body, verbatim
	cosigned   BLOB                    -- the latest cosigned checkpoint then
) STRICT;
`

func dsn(path string, extra string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// > The witness MUST persist the new checkpoint before responding.
	// synchronous=FULL makes every WAL commit fsync before it returns.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if extra != "" {
		q.Add("_txlock", extra)
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and starts the
// committer. Close stops it.
func Open(ctx context.Context, path string) (*Store, error) {
	write, err := sql.Open("sqlite", dsn(path, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	if _, err := write.ExecContext(ctx, schema); err != nil {
		write.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, ""))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	s := &Store{read: read, write: write, reqs: make(chan *pending, maxBatch), done: make(chan struct{})}
	if s.logStmt, err = read.PrepareContext(ctx, logQuery); err == nil {
		s.updateStmt, err = write.PrepareContext(ctx, updateQuery)
	}
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("preparing statements: %w", err)
	}
	go s.committer()
	return s, nil
}

// Close stops the committer and closes the database. Updates already queued
// are committed first; later ones fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	return errors.Join(s.logStmt.Close(), s.updateStmt.Close(), s.read.Close(), s.write.Close())
}

const logQuery = `
	SELECT l.size, l.hash, l.checkpoint, l.added, k.vkey
	FROM log l JOIN key k ON k.origin = l.origin
	WHERE l.origin = ? ORDER BY k.vkey`

const updateQuery = `
	UPDATE log SET size = ?, hash = ?, checkpoint = ?
	WHERE origin = ? AND size = ? AND hash = ?`

// Log returns the state and keys of origin, or ErrUnknownLog if the log is
// absent or has no keys. It reads committed state only.
func (s *Store) Log(ctx context.Context, origin string) (*Log, error) {
	rows, err := s.logStmt.QueryContext(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("reading log %q: %w", origin, err)
	}
	defer rows.Close()
	var l *Log
	for rows.Next() {
		var (
			size  int64
			hash  []byte
			cp    []byte
			added int64
			vkey  string
		)
		if err := rows.Scan(&size, &hash, &cp, &added, &vkey); err != nil {
			return nil, fmt.Errorf("reading log %q: %w", origin, err)
		}
		if l == nil {
			l = &Log{Origin: origin, Size: uint64(size), Checkpoint: cp, Added: time.Unix(added, 0)}
			if len(hash) != 32 {
				return nil, fmt.Errorf("log %q: stored hash has %d bytes", origin, len(hash))
			}
			copy(l.Hash[:], hash)
		}
		l.Keys = append(l.Keys, vkey)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading log %q: %w", origin, err)
	}
	if l == nil {
		return nil, ErrUnknownLog
	}
	return l, nil
}

// Logs returns every log, including removed ones (with no keys), sorted by
// origin.
func (s *Store) Logs(ctx context.Context) ([]*Log, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT l.origin, l.size, l.hash, l.checkpoint, l.added, k.vkey
		FROM log l LEFT JOIN key k ON k.origin = l.origin
		ORDER BY l.origin, k.vkey`)
	if err != nil {
		return nil, fmt.Errorf("listing logs: %w", err)
	}
	defer rows.Close()
	var logs []*Log
	for rows.Next() {
		var (
			origin string
			size   int64
			hash   []byte
			cp     []byte
			added  int64
			vkey   sql.NullString
		)
		if err := rows.Scan(&origin, &size, &hash, &cp, &added, &vkey); err != nil {
			return nil, fmt.Errorf("listing logs: %w", err)
		}
		if len(logs) == 0 || logs[len(logs)-1].Origin != origin {
			l := &Log{Origin: origin, Size: uint64(size), Checkpoint: cp, Added: time.Unix(added, 0)}
			copy(l.Hash[:], hash)
			logs = append(logs, l)
		}
		if vkey.Valid {
			l := logs[len(logs)-1]
			l.Keys = append(l.Keys, vkey.String)
		}
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Origin < logs[j].Origin })
	return logs, rows.Err()
}

// AddLog adds origin with vkey. A new origin starts at size 0 (its first
// checkpoint is accepted with old 0). For a known origin — also one removed
// earlier — the key is added and the recorded tree head is kept, so that
// removing and re-adding a log never rolls its state back. Adding a key that
// is already there is not an error. It reports whether the origin was new.
func (s *Store) AddLog(ctx context.Context, origin, vkey string) (created bool, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("adding log %q: %w", origin, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO log (origin, origin_sha, size, hash, added) VALUES (?, ?, 0, ?, ?)
		ON CONFLICT (origin) DO NOTHING`, origin, originSHA(origin), EmptyTreeHash[:], time.Now().Unix())
	if err != nil {
		return false, fmt.Errorf("adding log %q: %w", origin, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO key (origin, vkey) VALUES (?, ?)
		ON CONFLICT DO NOTHING`, origin, vkey); err != nil {
		return false, fmt.Errorf("adding key for %q: %w", origin, err)
	}
	return n == 1, tx.Commit()
}

// RemoveLog removes the keys of origin (all of them if vkey is empty), so
// that requests for it get 404. The tree head is kept (see AddLog). It
// returns ErrUnknownLog if nothing was removed.
func (s *Store) RemoveLog(ctx context.Context, origin, vkey string) error {
	var res sql.Result
	var err error
	if vkey == "" {
		res, err = s.write.ExecContext(ctx, `DELETE FROM key WHERE origin = ?`, origin)
	} else {
		res, err = s.write.ExecContext(ctx, `DELETE FROM key WHERE origin = ? AND vkey = ?`, origin, vkey)
	}
	if err != nil {
		return fmt.Errorf("removing log %q: %w", origin, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrUnknownLog
	}
	return nil
}

// Update compare-and-swaps the tree head of u.Origin from (OldSize, OldHash)
// to (NewSize, NewHash) and stores SignedCheckpoint. It returns nil only once
// the change is durable (committed and fsynced), ErrConflict if the stored
// tree head is no longer (OldSize, OldHash), and any other error if the
// commit failed (the state is then unchanged). It is never retried here.
func (s *Store) Update(ctx context.Context, u Update) error {
	p := &pending{u: u, err: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- p:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx is cancelled: the
	// committer decides, and the caller must know what was decided.
	return <-p.err
}

func (s *Store) committer() {
	defer close(s.done)
	for {
		first, ok := <-s.reqs
		if !ok {
			return
		}
		batch := []*pending{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		results, err := s.commit(batch)
		for i, p := range batch {
			if err != nil {
				p.err <- err
			} else {
				p.err <- results[i]
			}
		}
	}
}

// commit runs one transaction for batch. Updates of the same origin in one
// batch are applied in order, so the second one's compare-and-swap sees the
// first one's result.
func (s *Store) commit(batch []*pending) ([]error, error) {
	ctx := context.Background()
	start := time.Now()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.updateStmt)
	defer stmt.Close()
	results := make([]error, len(batch))
	for i, p := range batch {
		u := p.u
		res, err := stmt.ExecContext(ctx, int64(u.NewSize), u.NewHash[:], u.SignedCheckpoint,
			u.Origin, int64(u.OldSize), u.OldHash[:])
		if err != nil {
			return nil, fmt.Errorf("updating %q: %w", u.Origin, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		if n != 1 {
			results[i] = ErrConflict
		}
	}
	if s.BeforeCommit != nil {
		s.BeforeCommit(len(batch))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing: %w", err)
	}
	if s.AfterCommit != nil {
		s.AfterCommit(len(batch), time.Since(start))
	}
	return results, nil
}

func originSHA(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// CheckpointByOriginHash returns the latest cosigned checkpoint of the log
// whose origin has the lowercase hex SHA-256 originSHA, also for a removed
// log. It returns ErrUnknownLog if there is none (unknown or never cosigned).
func (s *Store) CheckpointByOriginHash(ctx context.Context, originSHA string) ([]byte, error) {
	var cp []byte
	err := s.read.QueryRowContext(ctx, `SELECT checkpoint FROM log WHERE origin_sha = ?`, originSHA).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) || err == nil && cp == nil {
		return nil, ErrUnknownLog
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	return cp, nil
}

// Count returns the number of logs with at least one key.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(DISTINCT origin) FROM key`).Scan(&n)
	return n, err
}

// Evidence is a validly signed checkpoint the witness refused as
// inconsistent, next to the checkpoint it had cosigned.
type Evidence struct {
	ID       int64
	Origin   string
	Received time.Time
	Kind     string
	Request  []byte
	Cosigned []byte
}

// MaxEvidencePerKind bounds the evidence kept per origin and kind. A
// split view can only come from the log's key, but anyone can replay one of
// the log's checkpoints with a bogus proof: the bound per kind keeps that
// from filling the disk or crowding out split-view evidence.
const MaxEvidencePerKind = 100

// AddEvidence records e, unless MaxEvidencePerKind rows exist for its origin
// and kind.
func (s *Store) AddEvidence(ctx context.Context, e Evidence) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO evidence (origin, received, kind, request, cosigned)
		SELECT ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM evidence WHERE origin = ? AND kind = ?) < ?`,
		e.Origin, e.Received.Unix(), e.Kind, e.Request, e.Cosigned, e.Origin, e.Kind, MaxEvidencePerKind)
	if err != nil {
		return fmt.Errorf("recording evidence: %w", err)
	}
	return nil
}

// Evidence lists the recorded evidence, oldest first.
func (s *Store) Evidence(ctx context.Context) ([]Evidence, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, origin, received, kind, request, cosigned FROM evidence ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing evidence: %w", err)
	}
	defer rows.Close()
	var out []Evidence
	for rows.Next() {
		var e Evidence
		var received int64
		if err := rows.Scan(&e.ID, &e.Origin, &received, &e.Kind, &e.Request, &e.Cosigned); err != nil {
			return nil, fmt.Errorf("listing evidence: %w", err)
		}
		e.Received = time.Unix(received, 0)
		out = append(out, e)
	}
	return out, rows.Err()
}
