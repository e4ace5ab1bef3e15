package logserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/attestlog/attestlog/log/internal/index"
)

// Many frontends on one MySQL/MariaDB database, with Tessera's AWS driver
// (s3.go: the tree in a bucket, sequencing in the database) or its legacy
// MySQL driver (which sequences their writes in one transaction per batch,
// on the TreeState row, and publishes one checkpoint per interval
// whichever frontend holds the Checkpoint row). Either way the witnesses
// are asked with the published checkpoint's size as the old size, so they
// see one stream. What attestlog adds, the same on both:
//
//   - duplicate detection across frontends: each statement's payload hash
//     is claimed in attestlog_payloads before it is appended, so a
//     statement sent to two frontends at once is appended by one and
//     answered as a duplicate by the other. A claim carries its owner's
//     random token and is timed by the database's clock, never by a
//     frontend's: only its owner refreshes, records or releases it; the
//     owner refreshes it while its append is pending; another frontend
//     takes it over (a compare-and-swap on the token) only once it went
//     unrefreshed for claimStale and the statement is not in the tree;
//   - one frontend at a time signs index checkpoints (the holder of a
//     MySQL named lock, of a fixed-length name); every frontend maps
//     every entry of the shared tree in its own memory and proves lookups
//     against the holder's index checkpoints, which it recognises in the
//     tree.
//
// Each frontend keeps its own measurement index (SQLite): it is derived
// from the shared tree, read locally for every lookup, and rebuilt by
// 'attestlog log reindex', so sharing it would put a network round trip
// in every read for nothing.

// payloadsSchema is the claim table of cross-frontend duplicate detection:
// claimed is the database's clock (Unix milliseconds) when the claim was
// made or last refreshed; owner the claim's token (NULL in claims made
// before tokens, taken over like any other once stale).
const payloadsSchema = "CREATE TABLE IF NOT EXISTS `attestlog_payloads` (`payload_hash` BINARY(32) NOT NULL, `idx` BIGINT UNSIGNED NULL, `claimed` BIGINT NOT NULL, `owner` BINARY(16) NULL, PRIMARY KEY (`payload_hash`))"

// dbNowMillis is the database's clock in Unix milliseconds, in SQL: every
// claim time is written and compared by the one clock all frontends share
// (UTC, whatever the session's time zone).
const dbNowMillis = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)"

// ErrUnavailable: the storage cannot be reached; nothing was appended.
var ErrUnavailable = errors.New("storage unavailable")

// defaultClaimStale is how long a claim without an index may go
// unrefreshed, by the database's clock, before another frontend takes it
// over (its owner died, or lost the database, between claiming and
// recording the index). An owner refreshes its claim every third of it.
const defaultClaimStale = 30 * time.Second

// claimPoll is how often a frontend waiting on another's claim looks.
const claimPoll = 20 * time.Millisecond

// claims is duplicate detection across frontends: the claim table
// attestlog_payloads on the shared database, and this frontend's view of
// the tree (claimTree) to settle a stale claim with. Log holds one when
// its storage has a database (nil on POSIX).
type claims struct {
	db *sql.DB
	// stale is how long a claim without an index may go unrefreshed, by
	// the database's clock, before another frontend takes it over.
	stale  time.Duration
	tree   claimTree
	logger *slog.Logger
	// Claims and records of concurrent admissions go to the database
	// together: one statement per batch, not per entry.
	inserts group[*claim]
	records group[recorded]
}

// claimBatchTimeout bounds one batched statement of the claim table: a
// batch serves many admissions, so no one request's context can cancel
// it, and a database that stopped answering must not hold them forever.
const claimBatchTimeout = 10 * time.Second

// claimTree is what claims need of the log: a stale claim's statement may
// be in the tree already (its owner appended it, then stopped before
// recording the index), and only the tree can say.
type claimTree interface {
	// indexOnce indexes every integrated entry not yet in this
	// frontend's index: afterwards payloadIndex knows every entry of the
	// tree as integrated when it was called. It reads the tree (storage
	// round trips, possibly many entries) and retries nothing: an error
	// is returned as is. It takes the index's lock: claims must not hold
	// anything the indexer waits for.
	indexOnce(ctx context.Context) error
	// payloadIndex returns the index of the entry whose payload hash is
	// h in this frontend's index, or index.ErrNotFound. It only reads.
	payloadIndex(ctx context.Context, h [32]byte) (uint64, error)
}

// payloadIndex implements claimTree.
func (l *Log) payloadIndex(ctx context.Context, h [32]byte) (uint64, error) {
	return l.idx.ByPayload(ctx, h[:])
}

// claim is this frontend's hold on a statement it appends: the row of
// attestlog_payloads for payload hash h whose owner is token, random per
// claim.
type claim struct {
	h     [32]byte
	token [16]byte
}

func newClaim(h [32]byte) *claim {
	c := &claim{h: h}
	rand.Read(c.token[:]) // never fails (crypto/rand)
	return c
}

// payloadAttr names a statement in log lines.
func payloadAttr(h [32]byte) slog.Attr {
	return slog.String("payload_sha256", hex.EncodeToString(h[:8]))
}

// claim claims payload hash h for this frontend to append. It
// returns dup with the entry's index when the statement is in the log
// already (appended through another frontend), or the claim when this
// frontend must append it: hold it while appending, then record it
// with the index, or release it if the append failed.
//
// Another frontend's claim is waited for until it has an index, and
// taken over only when it went unrefreshed for claimStale by the
// database's clock and the statement is not in the tree (takeOver).
// Every database error is ErrUnavailable; nothing is retried but the
// wait for another frontend's claim and InnoDB's deadlock answer to a
// batch (execRetryingDeadlocks).
func (cs *claims) claim(ctx context.Context, h [32]byte) (c *claim, idx uint64, dup bool, err error) {
	c = newClaim(h)
	switch ours, err := cs.insert(c); {
	case err != nil:
		return nil, 0, false, fmt.Errorf("%w: claiming the statement: %v", ErrUnavailable, err)
	case ours:
		return c, 0, false, nil
	}
	// Claimed by another frontend (or released since): look at its claim.
	for insert := false; ; {
		if insert {
			res, err := cs.db.ExecContext(ctx, "INSERT IGNORE INTO `attestlog_payloads` (`payload_hash`, `idx`, `claimed`, `owner`) VALUES (?, NULL, "+dbNowMillis+", ?)", h[:], c.token[:])
			if err == nil {
				var n int64
				if n, err = res.RowsAffected(); err == nil && n == 1 {
					return c, 0, false, nil
				}
			}
			if err != nil {
				return nil, 0, false, dbErr(ctx, "claiming the statement", err)
			}
		}
		var got sql.NullInt64
		var owner []byte
		var stale bool
		err := cs.db.QueryRowContext(ctx, "SELECT `idx`, `owner`, `claimed` < "+dbNowMillis+" - ? FROM `attestlog_payloads` WHERE `payload_hash` = ?", cs.stale.Milliseconds(), h[:]).Scan(&got, &owner, &stale)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Released by its owner, whose append failed: claim it.
			insert = true
			continue
		case err != nil:
			return nil, 0, false, dbErr(ctx, "reading a claim", err)
		case got.Valid:
			return nil, uint64(got.Int64), true, nil
		case stale:
			idx, dup, took, err := cs.takeOver(ctx, c, owner)
			switch {
			case took:
				return c, 0, false, nil
			case err != nil || dup:
				return nil, idx, dup, err
			}
		}
		insert = false
		select {
		case <-ctx.Done():
			return nil, 0, false, ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}

// dbErr is a database error met while waiting on ctx: the caller's own
// end (ctx.Err()) when ctx is done, which is not the database's fault and
// must read as the caller's deadline; ErrUnavailable otherwise.
func dbErr(ctx context.Context, doing string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, doing, err)
}

// insert claims c.h for c if nobody holds it, in one INSERT with the
// claims of concurrent admissions, and reports whether c holds it now.
func (cs *claims) insert(c *claim) (ours bool, err error) {
	err = cs.inserts.do(c, cs.insertBatch)
	if errors.Is(err, errClaimedElsewhere) {
		return false, nil
	}
	return err == nil, err
}

// errClaimedElsewhere answers an item of insertBatch whose payload hash
// another claim holds.
var errClaimedElsewhere = errors.New("claimed by another")

// insertBatch inserts a claim row for each of cs (nil for those now
// theirs, errClaimedElsewhere for those another claim holds). When
// every row went in, that is all; otherwise the rows say which are
// whose.
func (cs *claims) insertBatch(cs2 []*claim) ([]error, error) {
	// Rows in payload hash order: two frontends' batches over the same
	// statements then lock them in the same order.
	sorted := slices.Clone(cs2)
	slices.SortFunc(sorted, func(a, b *claim) int { return bytes.Compare(a.h[:], b.h[:]) })
	q := make([]byte, 0, 128+len(cs2)*(len(dbNowMillis)+16))
	q = append(q, "INSERT IGNORE INTO `attestlog_payloads` (`payload_hash`, `idx`, `claimed`, `owner`) VALUES "...)
	args := make([]any, 0, 2*len(cs2))
	for i, c := range sorted {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, "(?, NULL, "+dbNowMillis+", ?)"...)
		args = append(args, c.h[:], c.token[:])
	}
	return cs.batch(cs2, string(q), args, errClaimedElsewhere)
}

// batch runs q, a statement that changes the claim row of each of cl
// that is its own, and answers each claim: nil where the row is its own
// (every row changed, or the owners read back say so), notOurs where
// another claim owns it or there is none; or the database's error, for
// the whole batch.
func (cs *claims) batch(cl []*claim, q string, args []any, notOurs error) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), claimBatchTimeout)
	defer cancel()
	errs := make([]error, len(cl))
	n, err := execRetryingDeadlocks(ctx, cs.db, q, args)
	if err != nil {
		return nil, err
	}
	if n == int64(len(cl)) {
		return errs, nil
	}
	owners, err := cs.owners(ctx, cl)
	if err != nil {
		return nil, err
	}
	for i, c := range cl {
		if o, ok := owners[c.h]; !ok || string(o) != string(c.token[:]) {
			errs[i] = notOurs
		}
	}
	return errs, nil
}

// execRetryingDeadlocks runs the statement q (one statement, its own
// transaction) and returns the rows it changed; InnoDB's deadlock answer
// (1213: it rolled the statement back) is retried a few times, as the
// server asks, before it is returned.
func execRetryingDeadlocks(ctx context.Context, db *sql.DB, q string, args []any) (int64, error) {
	for try := 1; ; try++ {
		res, err := db.ExecContext(ctx, q, args...)
		if err == nil {
			return res.RowsAffected()
		}
		var me *gomysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1213 || try == 5 {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(time.Duration(try) * 5 * time.Millisecond):
		}
	}
}

// owners returns the owner of each claim row on the payload hashes of cs.
func (cs *claims) owners(ctx context.Context, cs2 []*claim) (map[[32]byte][]byte, error) {
	q := make([]byte, 0, 96+3*len(cs2))
	q = append(q, "SELECT `payload_hash`, `owner` FROM `attestlog_payloads` WHERE `payload_hash` IN ("...)
	args := make([]any, 0, len(cs2))
	for i, c := range cs2 {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, '?')
		args = append(args, c.h[:])
	}
	q = append(q, ')')
	rows, err := cs.db.QueryContext(ctx, string(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[[32]byte][]byte, len(cs2))
	for rows.Next() {
		var h, owner []byte
		if err := rows.Scan(&h, &owner); err != nil {
			return nil, err
		}
		if len(h) == 32 {
			out[[32]byte(h)] = owner
		}
	}
	return out, rows.Err()
}

// takeOver takes over for c the stale claim on c.h whose owner is owner.
// If that owner appended the statement before it stopped, the entry is in
// the tree: look there (through our index, caught up to the integrated
// size) and answer dup. Otherwise swap c's token for owner's, on the
// condition that nobody did first and the claim is still stale by the
// database's clock (its owner did not refresh it meanwhile): took says
// whether c holds it now.
func (cs *claims) takeOver(ctx context.Context, c *claim, owner []byte) (idx uint64, dup, took bool, err error) {
	if err := cs.tree.indexOnce(ctx); err != nil {
		return 0, false, false, fmt.Errorf("%w: catching up the index: %v", ErrUnavailable, err)
	}
	if i, err := cs.tree.payloadIndex(ctx, c.h); err == nil {
		if _, err := cs.setIndex(ctx, c.h, owner, i); err != nil {
			cs.logger.Warn("recording a statement's index for duplicate detection", "index", i, payloadAttr(c.h), "err", err)
		}
		return i, true, false, nil
	} else if !errors.Is(err, index.ErrNotFound) {
		return 0, false, false, err
	}
	res, err := cs.db.ExecContext(ctx, "UPDATE `attestlog_payloads` SET `owner` = ?, `claimed` = "+dbNowMillis+" WHERE `payload_hash` = ? AND `idx` IS NULL AND `owner` <=> ? AND `claimed` < "+dbNowMillis+" - ?",
		c.token[:], c.h[:], owner, cs.stale.Milliseconds())
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("%w: taking over a claim: %v", ErrUnavailable, err)
	}
	if n == 1 {
		cs.logger.Warn("took over a stale claim: its frontend neither appended the statement nor refreshed the claim", payloadAttr(c.h), "stale_after_seconds", cs.stale.Seconds())
	}
	return 0, false, n == 1, nil
}

// hold keeps c fresh while its append is pending: it refreshes the claim
// every third of claimStale, so that another frontend takes it over only
// from a frontend that stopped, or lost the database, for claimStale. It
// logs when the claim is no longer c's. The returned stop ends it and
// returns once it has ended.
func (cs *claims) hold(c *claim) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(cs.stale / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// GREATEST: the row changes (MySQL counts changed rows), also
			// within one millisecond.
			res, err := cs.db.ExecContext(ctx, "UPDATE `attestlog_payloads` SET `claimed` = GREATEST(`claimed` + 1, "+dbNowMillis+") WHERE `payload_hash` = ? AND `idx` IS NULL AND `owner` = ?", c.h[:], c.token[:])
			var n int64
			if err == nil {
				n, err = res.RowsAffected()
			}
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				cs.logger.Warn("refreshing the claim on a statement being appended", payloadAttr(c.h), "err", err)
			case n == 0:
				cs.logger.Error("lost the claim on a statement being appended: another frontend took it over, and may append it too", payloadAttr(c.h))
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// setIndex records idx as the entry of the claim on h whose owner is owner
// (nil: a claim made before tokens), unless an index is recorded already.
// It reports whether it did. Run to the end, whatever ctx.
func (cs *claims) setIndex(ctx context.Context, h [32]byte, owner []byte, idx uint64) (bool, error) {
	res, err := cs.db.ExecContext(context.WithoutCancel(ctx), "UPDATE `attestlog_payloads` SET `idx` = ? WHERE `payload_hash` = ? AND `idx` IS NULL AND `owner` <=> ?", idx, h[:], owner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// record records the index of the statement c claimed (best
// effort: a claim left without one is resolved from the tree by the next
// submitter after claimStale), in one UPDATE with the records of
// concurrent admissions.
func (cs *claims) record(c *claim, idx uint64) {
	err := cs.records.do(recorded{c, idx}, cs.recordBatch)
	switch {
	case errors.Is(err, errNotOurs):
		cs.logger.Error("appended a statement whose claim another frontend had taken over: it may be in the log twice", "index", idx, payloadAttr(c.h))
	case err != nil:
		cs.logger.Warn("recording a statement's index for duplicate detection", "index", idx, payloadAttr(c.h), "err", err)
	}
}

// recorded is a claim with the index its statement was appended at.
type recorded struct {
	c   *claim
	idx uint64
}

// errNotOurs answers an item of recordBatch whose claim row another
// claim now owns (taken over) or that is gone. A row still its own
// whose index was already recorded (from the tree, by a frontend that
// found the claim stale) is answered nil: the index is recorded.
var errNotOurs = errors.New("the claim is not ours")

// recordBatch sets the index of each claim of rs still held by its
// owner without one (nil for those it set, errNotOurs for the others):
// one UPDATE, and, only when it changed fewer rows than given, a read of
// the rows to tell which.
func (cs *claims) recordBatch(rs []recorded) ([]error, error) {
	// SET idx = CASE payload_hash WHEN h THEN idx … END
	// WHERE payload_hash IN (h, …) AND idx IS NULL
	//   AND owner = CASE payload_hash WHEN h THEN owner … END
	var setIdx, inList, owner []byte
	var argsIdx, argsIn, argsOwner []any
	cl := make([]*claim, len(rs))
	for i, r := range rs {
		if i > 0 {
			inList = append(inList, ',')
		}
		setIdx = append(setIdx, " WHEN ? THEN ?"...)
		argsIdx = append(argsIdx, r.c.h[:], r.idx)
		inList = append(inList, '?')
		argsIn = append(argsIn, r.c.h[:])
		owner = append(owner, " WHEN ? THEN ?"...)
		argsOwner = append(argsOwner, r.c.h[:], r.c.token[:])
		cl[i] = r.c
	}
	q := "UPDATE `attestlog_payloads` SET `idx` = CASE `payload_hash`" + string(setIdx) + " END WHERE `payload_hash` IN (" + string(inList) +
		") AND `idx` IS NULL AND `owner` = CASE `payload_hash`" + string(owner) + " END"
	return cs.batch(cl, q, append(append(argsIdx, argsIn...), argsOwner...), errNotOurs)
}

// release drops the claim c after a failed append, so that a retry
// (here or elsewhere) appends it; a claim another frontend took over is
// that frontend's, and stays.
func (cs *claims) release(ctx context.Context, c *claim) {
	res, err := cs.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM `attestlog_payloads` WHERE `payload_hash` = ? AND `idx` IS NULL AND `owner` = ?", c.h[:], c.token[:])
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	switch {
	case err != nil:
		cs.logger.Warn("releasing a claim after a failed append", payloadAttr(c.h), "err", err)
	case n == 0:
		cs.logger.Warn("after a failed append, the claim was no longer this frontend's: left to the frontend that took it over", payloadAttr(c.h))
	}
}

// indexLock is the MySQL named lock whose holder signs index checkpoints,
// held on a connection of its own (the database releases it when that
// connection dies). Only the follower uses it (through Log.indexLeader),
// and Close once the follower has stopped.
type indexLock struct {
	db     *sql.DB
	name   string
	logger *slog.Logger
	// conn holds the lock (nil while this frontend does not); errLogged
	// is the last error logged.
	conn      *sql.Conn
	errLogged string
}

func newIndexLock(db *sql.DB, origin string, logger *slog.Logger) *indexLock {
	return &indexLock{db: db, name: indexLockName(origin), logger: logger}
}

// indexLockName is the name of the index lock of the log of origin: a
// hash of the origin, so that it has one length whatever the origin
// (MySQL 8 refuses names over 64 characters, MariaDB over 192 bytes).
func indexLockName(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return "attestlog-idx-" + hex.EncodeToString(h[:16])
}

// indexLeader reports whether this frontend signs index checkpoints now:
// always for POSIX storage; on MySQL, while it holds the named lock on a
// connection of its own (the database releases it when that connection
// dies, and another frontend takes it at its next try). Errors of the
// database are logged (once until they change) and answer false.
func (l *Log) indexLeader(ctx context.Context) bool {
	if l.lock == nil {
		return true
	}
	return l.lock.held(ctx)
}

// held reports whether this frontend holds the lock, taking it if it is
// free. A database error answers false (logged once until it changes);
// nothing is retried: the follower asks again at its next commit.
func (k *indexLock) held(ctx context.Context) bool {
	name := k.name
	if k.conn != nil {
		var mine sql.NullInt64
		err := k.conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", name).Scan(&mine)
		if err == nil && mine.Valid && mine.Int64 == 1 {
			return true
		}
		if err != nil {
			k.logger.Warn("no longer signing index checkpoints: checking the lock failed", "lock", name, "err", err)
		} else {
			k.logger.Info("no longer signing index checkpoints: the lock was lost", "lock", name)
		}
		k.drop()
	}
	c, err := k.db.Conn(ctx)
	if err != nil {
		k.trouble("taking a connection for the index lock", err)
		return false
	}
	var got sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got)
	if err == nil && !got.Valid {
		err = errors.New("GET_LOCK returned NULL")
	}
	if err != nil || got.Int64 != 1 {
		c.Close()
		if err != nil {
			k.trouble("taking the index lock", err)
		} else {
			k.errLogged = "" // held by another frontend
		}
		return false
	}
	k.conn, k.errLogged = c, ""
	k.logger.Info("signing index checkpoints (this frontend holds the lock)", "lock", name)
	return true
}

// trouble logs an error of the index lock, once until it changes:
// indexLeader runs every checkpoint interval.
func (k *indexLock) trouble(doing string, err error) {
	if s := doing + ": " + err.Error(); s != k.errLogged {
		k.errLogged = s
		k.logger.Warn("not signing index checkpoints: "+doing+" failed", "lock", k.name, "err", err)
	}
}

// drop gives the lock up: RELEASE_LOCK on its connection,
// which is then closed rather than pooled (a pooled connection would go
// on holding the lock had RELEASE_LOCK failed).
func (k *indexLock) drop() {
	c := k.conn
	if c == nil {
		return
	}
	k.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var released sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", k.name).Scan(&released); err != nil {
		k.logger.Warn("releasing the index lock (closing its connection instead)", "lock", k.name, "err", err)
	}
	c.Raw(func(any) error { return driver.ErrBadConn })
	c.Close()
}
