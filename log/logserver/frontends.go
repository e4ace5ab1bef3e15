package logserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/attestlog/attestlog/log/internal/index"
)

// Many frontends on one MySQL/MariaDB database (Tessera's MySQL driver
// sequences their writes in one transaction per batch, on the TreeState
// row, and publishes one checkpoint per interval whichever frontend
// holds the Checkpoint row; the witnesses are asked with the published
// checkpoint's size as the old size, so they see one stream). What
// attestlog adds:
//
//   - duplicate detection across frontends: each statement's payload hash
//     is claimed in attestlog_payloads before it is appended, so a
//     statement sent to two frontends at once is appended by one and
//     answered as a duplicate by the other;
//   - one frontend at a time signs index checkpoints (the holder of a
//     MySQL named lock); every frontend maps every entry of the shared
//     tree in its own memory and proves lookups against the holder's
//     index checkpoints, which it recognises in the tree.
//
// Each frontend keeps its own measurement index (SQLite): it is derived
// from the shared tree, read locally for every lookup, and rebuilt by
// 'attestlog log reindex', so sharing it would put a network round trip
// in every read for nothing.

// payloadsSchema is the claim table of cross-frontend duplicate detection.
const payloadsSchema = "CREATE TABLE IF NOT EXISTS `attestlog_payloads` (`payload_hash` BINARY(32) NOT NULL, `idx` BIGINT UNSIGNED NULL, `claimed` BIGINT NOT NULL, PRIMARY KEY (`payload_hash`))"

// ErrUnavailable: the storage cannot be reached; nothing was appended.
var ErrUnavailable = errors.New("storage unavailable")

// defaultClaimStale is how long a claim without an index may be held
// before another frontend takes it over (its claimer died between
// claiming and appending, or before recording the index).
const defaultClaimStale = 30 * time.Second

// claimPoll is how often a frontend waiting on another's claim looks.
const claimPoll = 20 * time.Millisecond

// claimPayload claims payload hash h for this frontend to append. It
// returns dup with the entry's index when the statement is in the log
// already (appended through another frontend), and owned when this
// frontend must append it (then recordPayload once it has the index).
func (l *Log) claimPayload(ctx context.Context, h [32]byte) (idx uint64, dup bool, err error) {
	res, err := l.db.ExecContext(ctx, "INSERT IGNORE INTO `attestlog_payloads` (`payload_hash`, `idx`, `claimed`) VALUES (?, NULL, ?)", h[:], l.now().UnixMilli())
	if err != nil {
		return 0, false, fmt.Errorf("%w: claiming the statement: %v", ErrUnavailable, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return 0, false, nil
	}
	for {
		var got sql.NullInt64
		var claimed int64
		err := l.db.QueryRowContext(ctx, "SELECT `idx`, `claimed` FROM `attestlog_payloads` WHERE `payload_hash` = ?", h[:]).Scan(&got, &claimed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Released by a claimer whose append failed: claim it again.
			return l.claimPayload(ctx, h)
		case err != nil:
			return 0, false, fmt.Errorf("%w: reading a claim: %v", ErrUnavailable, err)
		case got.Valid:
			return uint64(got.Int64), true, nil
		}
		if l.now().Sub(time.UnixMilli(claimed)) > l.claimStale {
			// The claimer is gone. If it appended before dying, the entry
			// is in the tree: look there (through our index, caught up to
			// the integrated size) before appending it again.
			if err := l.indexOnce(ctx); err != nil {
				return 0, false, fmt.Errorf("%w: catching up the index: %v", ErrUnavailable, err)
			}
			if i, err := l.idx.ByPayload(ctx, h[:]); err == nil {
				l.recordPayload(ctx, h, i)
				return i, true, nil
			} else if !errors.Is(err, index.ErrNotFound) {
				return 0, false, err
			}
			res, err := l.db.ExecContext(ctx, "UPDATE `attestlog_payloads` SET `claimed` = ? WHERE `payload_hash` = ? AND `idx` IS NULL AND `claimed` = ?", l.now().UnixMilli(), h[:], claimed)
			if err != nil {
				return 0, false, fmt.Errorf("%w: taking over a claim: %v", ErrUnavailable, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				l.logger.Warn("took over a stale claim: its frontend did not append the statement", "payload_sha256", fmt.Sprintf("%x", h[:8]))
				return 0, false, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}

// recordPayload records the index of a claimed statement (best effort:
// a claim left without one is resolved from the tree by the next
// submitter after claimStale).
func (l *Log) recordPayload(ctx context.Context, h [32]byte, idx uint64) {
	if _, err := l.db.ExecContext(context.WithoutCancel(ctx), "UPDATE `attestlog_payloads` SET `idx` = ? WHERE `payload_hash` = ?", idx, h[:]); err != nil {
		l.logger.Warn("recording a statement's index for duplicate detection", "index", idx, "err", err)
	}
}

// releasePayload drops this frontend's claim on h after a failed append,
// so that a retry (here or elsewhere) appends it.
func (l *Log) releasePayload(ctx context.Context, h [32]byte) {
	if _, err := l.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM `attestlog_payloads` WHERE `payload_hash` = ? AND `idx` IS NULL", h[:]); err != nil {
		l.logger.Warn("releasing a claim after a failed append", "err", err)
	}
}

// indexLockName is the MySQL named lock whose holder signs index
// checkpoints.
func (l *Log) indexLockName() string {
	return "attestlog-vindex:" + l.cfg.Origin
}

// indexLeader reports whether this frontend signs index checkpoints now:
// always for POSIX storage; on MySQL, while it holds the named lock on a
// connection of its own (the database releases it when that connection
// dies, and another frontend takes it at its next try).
func (l *Log) indexLeader(ctx context.Context) bool {
	if l.db == nil {
		return true
	}
	v := l.vidx
	if v.lockConn != nil {
		var mine sql.NullInt64
		err := v.lockConn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", l.indexLockName()).Scan(&mine)
		if err == nil && mine.Valid && mine.Int64 == 1 {
			return true
		}
		v.lockConn.Close()
		v.lockConn = nil
		l.logger.Info("no longer signing index checkpoints: the lock was lost", "err", err)
	}
	c, err := l.db.Conn(ctx)
	if err != nil {
		return false
	}
	var got sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", l.indexLockName()).Scan(&got); err != nil || !got.Valid || got.Int64 != 1 {
		c.Close()
		return false
	}
	v.lockConn = c
	l.logger.Info("signing index checkpoints (this frontend holds the lock)")
	return true
}
