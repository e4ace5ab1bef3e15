package logserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// mysqlSchema is the schema Tessera's MySQL driver expects (compatibility
// version 1) and attestlog's claim table, applied idempotently on
// start-up.
var mysqlSchema = []string{
	"CREATE TABLE IF NOT EXISTS Tessera (`id` TINYINT UNSIGNED NOT NULL, `compatibilityVersion` BIGINT UNSIGNED NOT NULL, PRIMARY KEY (`id`))",
	"INSERT IGNORE INTO Tessera (`id`, `compatibilityVersion`) VALUES (0, 1)",
	"CREATE TABLE IF NOT EXISTS `Checkpoint` (`id` TINYINT UNSIGNED NOT NULL, `note` MEDIUMBLOB NOT NULL, `published_at` BIGINT NOT NULL, PRIMARY KEY(`id`))",
	"CREATE TABLE IF NOT EXISTS `TreeState` (`id` TINYINT UNSIGNED NOT NULL, `size` BIGINT UNSIGNED NOT NULL, `root` TINYBLOB NOT NULL, PRIMARY KEY(`id`))",
	"CREATE TABLE IF NOT EXISTS `Subtree` (`level` TINYINT UNSIGNED NOT NULL, `index` BIGINT UNSIGNED NOT NULL, `nodes` MEDIUMBLOB NOT NULL, PRIMARY KEY(`level`, `index`))",
	"CREATE TABLE IF NOT EXISTS `TiledLeaves` (`tile_index` BIGINT UNSIGNED NOT NULL, `size` SMALLINT UNSIGNED NOT NULL, `data` LONGBLOB NOT NULL, PRIMARY KEY(`tile_index`))",
	payloadsSchema, // attestlog's, beside Tessera's (frontends.go)
}

// openMySQL opens the database of the legacy MySQL driver, applying its
// schema and attestlog's.
func openMySQL(ctx context.Context, dsn string) (*sql.DB, error) {
	return openMySQLSchema(ctx, dsn, mysqlSchema)
}

func openMySQLSchema(ctx context.Context, dsn string, schema []string) (*sql.DB, error) {
	// Placeholders are filled in by the driver (interpolateParams): a
	// claim is then one round trip, not three (prepare, execute, close a
	// server-side statement), which was an eighth of the log's CPU per
	// entry on S3 + MySQL. The driver falls back to server-side
	// statements for character sets where that would be unsafe.
	if c, err := gomysql.ParseDSN(dsn); err == nil {
		c.InterpolateParams = true
		dsn = c.FormatDSN()
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage.mysql.dsn: %w", err)
	}
	db.SetConnMaxLifetime(3 * time.Minute)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to MySQL at %s: %w", redactDSN(dsn), err)
	}
	for _, s := range schema {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("applying the MySQL schema: %w", err)
		}
	}
	if schema == nil {
		return db, nil
	}
	if err := addClaimOwners(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("adding the owner column to attestlog_payloads: %w", err)
	}
	return db, nil
}

// addClaimOwners adds the owner column to a claim table created before
// claims had owners (CREATE TABLE IF NOT EXISTS leaves it as it was). Of
// frontends starting together, one adds it and the others find it added
// (MySQL error 1060, duplicate column).
func addClaimOwners(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'attestlog_payloads' AND COLUMN_NAME = 'owner'").Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.ExecContext(ctx, "ALTER TABLE `attestlog_payloads` ADD COLUMN `owner` BINARY(16) NULL")
	if me := (*gomysql.MySQLError)(nil); errors.As(err, &me) && me.Number == 1060 {
		return nil
	}
	return err
}

// redactDSN hides the password of a DSN for error messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	cred := dsn[:at]
	if u, _, ok := strings.Cut(cred, ":"); ok {
		return u + ":***" + dsn[at:]
	}
	return dsn
}
