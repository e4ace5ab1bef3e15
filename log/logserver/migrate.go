package logserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/mysql"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/policy"
)

// MigrateResult is what Migrate moved.
type MigrateResult struct {
	// Size and Root are those of the source's published checkpoint, which
	// the target's tree now has.
	Size uint64
	Root []byte
	// Claims is how many statement claims (duplicate detection) were
	// copied.
	Claims int64
}

// Migrate moves a log from Tessera's legacy MySQL driver (from) to S3 +
// MySQL storage (to): a one-way move, done with every frontend of the
// source stopped. It reads the source's published checkpoint, which must
// verify under the log's key and witness policy; copies every entry
// bundle into the bucket with Tessera's migration target, which rebuilds
// the tree in the bucket and fails unless its root equals the
// checkpoint's; and copies the statement claims of duplicate detection.
// The first frontend started on to then publishes a checkpoint of the
// same size and root under the same key, which the witnesses cosign as a
// continuation of what they saw. Migrate is idempotent: run again, it
// resumes where it stopped.
//
// The two configurations must name the same origin and log key, and
// different databases (the two drivers' tables share the name Tessera).
func Migrate(ctx context.Context, from, to *Config, logger *slog.Logger) (*MigrateResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !from.Storage.Legacy() {
		return nil, errors.New("migrate: the source configuration must use the legacy storage (mysql without s3)")
	}
	if to.Storage.S3 == nil {
		return nil, errors.New("migrate: the target configuration must use s3 with mysql storage")
	}
	if from.Origin != to.Origin {
		return nil, fmt.Errorf("migrate: the origins differ (%q, %q): a migrated log keeps its origin", from.Origin, to.Origin)
	}
	if from.Storage.MySQL.DSN == to.Storage.MySQL.DSN {
		return nil, errors.New("migrate: the target's mysql.dsn must name another database than the source's (both drivers have a table named Tessera)")
	}
	_, vkey, err := keyfile.LoadNoteSigner(from.Key)
	if err != nil {
		return nil, err
	}
	_, toVKey, err := keyfile.LoadNoteSigner(to.Key)
	if err != nil {
		return nil, err
	}
	if vkey != toVKey {
		return nil, errors.New("migrate: the two configurations name different log keys; a migrated log keeps its key")
	}
	wp, err := os.ReadFile(to.WitnessPolicy)
	if err != nil {
		return nil, fmt.Errorf("witness_policy: %w", err)
	}
	pol, err := policy.Parse(append([]byte("log "+vkey+"\n"), wp...))
	if err != nil {
		return nil, fmt.Errorf("witness_policy %s: %w", to.WitnessPolicy, err)
	}

	srcDB, err := openMySQL(ctx, from.Storage.MySQL.DSN)
	if err != nil {
		return nil, err
	}
	defer srcDB.Close()
	src, err := mysql.New(ctx, srcDB)
	if err != nil {
		return nil, fmt.Errorf("opening the source: %w", err)
	}
	cpRaw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source's checkpoint: %w", err)
	}
	cp, err := pol.VerifyCheckpoint(cpRaw)
	if err != nil {
		return nil, fmt.Errorf("the source's checkpoint does not verify under the log key and witness policy: %w", err)
	}
	size, root := uint64(cp.N), cp.Hash[:]
	logger.Info("migrating", "origin", from.Origin, "size", size)

	driver, err := newS3Driver(ctx, to, nil)
	if err != nil {
		return nil, err
	}
	mt, err := tessera.NewMigrationTarget(ctx, driver, tessera.NewMigrationOptions())
	if err != nil {
		return nil, fmt.Errorf("opening the target: %w", err)
	}
	// Tessera's MySQL reader returns a partial bundle as stored, maybe
	// grown since: exactly p entries are what the migration hashes.
	getBundle := func(ctx context.Context, idx uint64, p uint8) ([]byte, error) {
		b, err := src.ReadEntryBundle(ctx, idx, p)
		if err != nil || p == 0 {
			return b, err
		}
		return truncateBundle(b, int(p))
	}
	if err := mt.Migrate(ctx, 4, size, root, getBundle); err != nil {
		return nil, fmt.Errorf("migrating entry bundles: %w", err)
	}
	// Nothing may have been appended meanwhile: the move is one-way, and
	// an entry the source acknowledged after cp would be lost.
	after, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source's checkpoint again: %w", err)
	}
	if acp, err := pol.InspectCheckpoint(after); err != nil || acp.N != cp.N || acp.Hash != cp.Hash {
		return nil, fmt.Errorf("the source's checkpoint changed during the migration (size %d then %v): stop every frontend of the source and run the migration again", cp.N, sizeOf(acp))
	}
	if n, err := src.IntegratedSize(ctx); err != nil || n != size {
		return nil, fmt.Errorf("the source has %d integrated entries (%v) but its published checkpoint %d: let its frontends publish, stop them, and run the migration again", n, err, size)
	}

	if err := advanceSequencer(ctx, to.Storage.MySQL.DSN, size); err != nil {
		return nil, err
	}
	claims, err := copyClaims(ctx, srcDB, to.Storage.MySQL.DSN, size)
	if err != nil {
		return nil, err
	}
	logger.Info("migrated", "origin", from.Origin, "size", size, "claims", claims)
	return &MigrateResult{Size: size, Root: bytes.Clone(root), Claims: claims}, nil
}

func sizeOf(c *policy.Checkpoint) any {
	if c == nil {
		return "unreadable"
	}
	return c.N
}

// advanceSequencer sets the AWS driver's next sequence number to size.
// Tessera v1.0.4's migration target integrates the copied tree (IntCoord)
// but leaves SeqCoord at 0, and its sequencer then computes the entries
// awaiting integration as next - size, which underflows: every append is
// pushed back for ever. Nothing is sequenced during a migration (the Seq
// table is empty), so moving next up to the tree's size is what appending
// after the migrated entries needs; it never moves it back.
func advanceSequencer(ctx context.Context, dsn string, size uint64) error {
	db, err := openMySQLSchema(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	var pending int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Seq").Scan(&pending); err != nil {
		return fmt.Errorf("reading the target's sequencer: %w", err)
	}
	if pending > 0 {
		return fmt.Errorf("the target database has %d sequenced batches: it is a live log, not a migration target", pending)
	}
	if _, err := db.ExecContext(ctx, "UPDATE SeqCoord SET next = ? WHERE id = 0 AND next < ?", size, size); err != nil {
		return fmt.Errorf("advancing the target's sequencer to %d: %w", size, err)
	}
	return nil
}

// copyClaims copies the recorded claims (statement → index) below size
// into the target database's claim table.
func copyClaims(ctx context.Context, src *sql.DB, dsn string, size uint64) (int64, error) {
	dst, err := openClaimsDB(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	rows, err := src.QueryContext(ctx, "SELECT `payload_hash`, `idx` FROM `attestlog_payloads` WHERE `idx` IS NOT NULL AND `idx` < ?", size)
	if err != nil {
		return 0, fmt.Errorf("reading the source's claims: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var h []byte
		var idx uint64
		if err := rows.Scan(&h, &idx); err != nil {
			return n, err
		}
		res, err := dst.ExecContext(ctx, "INSERT IGNORE INTO `attestlog_payloads` (`payload_hash`, `idx`, `claimed`, `owner`) VALUES (?, ?, "+dbNowMillis+", NULL)", h, idx)
		if err != nil {
			return n, fmt.Errorf("writing a claim: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, rows.Err()
}
