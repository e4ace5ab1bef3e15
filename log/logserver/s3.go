package logserver

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/transparency-dev/tessera"
	tesseraaws "github.com/transparency-dev/tessera/storage/aws"
	"github.com/transparency-dev/tessera/storage/posix"
)

// S3 + MySQL storage runs Tessera's AWS driver (storage/aws), the path
// Tessera maintains for "any MySQL-compatible DBMS and any S3-compatible
// object storage": every frontend sequences into the database's Seq
// table, whichever frontend holds IntCoord integrates and writes entry
// bundles and tiles to the bucket (PutObject with If-None-Match "*",
// idempotent on retry), and one checkpoint per interval is published to
// the bucket through PubCoord. The bucket is the log's read API: a CDN or
// any static server in front of it serves c2sp.org/tlog-tiles, and every
// frontend's follower reads the tree from it.
//
// attestlog's cross-frontend state lives in the same database as on the
// legacy MySQL driver (frontends.go): the statement claims of duplicate
// detection and the named lock of the frontend that signs index
// checkpoints. Tessera's antispam (storage/aws/antispam) is not used: it
// learns an entry only once the entry is integrated (its follower reads
// the tree), so the same statement sent to two frontends within the
// integration delay is appended twice; a claim, taken before the append,
// is what keeps "nothing appended twice" across frontends.

// s3SDKConfig is the AWS SDK configuration of s: the default chain
// (environment, shared config, instance role) unless static credentials
// are set, and for a custom endpoint path-style addressing and checksums
// only when required (S3-compatible servers reject or mishandle the
// SDK's default CRC checksums on every request).
func s3SDKConfig(ctx context.Context, s *S3Storage) (*aws.Config, func(*s3.Options), error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(s.Region)}
	if s.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, "")))
	}
	if s.Endpoint != "" {
		opts = append(opts,
			awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("storage.s3: loading the AWS configuration: %w", err)
	}
	s3opts := func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
			o.UsePathStyle = true
		}
	}
	return &cfg, s3opts, nil
}

// newS3Driver returns Tessera's AWS driver on cfg's bucket and database;
// hc is for the witnesses.
func newS3Driver(ctx context.Context, cfg *Config, hc *http.Client) (tessera.Driver, error) {
	sdk, s3opts, err := s3SDKConfig(ctx, cfg.Storage.S3)
	if err != nil {
		return nil, err
	}
	return tesseraaws.New(ctx, tesseraaws.Config{
		SDKConfig:    sdk,
		S3Options:    s3opts,
		Bucket:       cfg.Storage.S3.Bucket,
		BucketPrefix: cfg.Storage.S3.Prefix,
		DSN:          cfg.Storage.MySQL.DSN,
		MaxOpenConns: 32,
		MaxIdleConns: 32,
		HTTPClient:   hc,
	})
}

// openClaimsDB opens the database of S3 + MySQL storage for attestlog's
// own state beside the AWS driver's tables: the claim table only.
func openClaimsDB(ctx context.Context, dsn string) (*sql.DB, error) {
	return openMySQLSchema(ctx, dsn, []string{payloadsSchema})
}

// NewDriver returns Tessera's driver for st, which must be posix or s3
// (with mysql): for a bare appender on the same storage as a log (the
// benchmark's floor). The legacy MySQL driver is not offered.
func NewDriver(ctx context.Context, st *Storage) (tessera.Driver, error) {
	switch {
	case st.POSIX != nil:
		if err := os.MkdirAll(st.POSIX.Dir, 0o755); err != nil {
			return nil, err
		}
		return posix.New(ctx, posix.Config{Path: st.POSIX.Dir})
	case st.S3 != nil && st.MySQL != nil:
		if err := st.S3.validate(); err != nil {
			return nil, err
		}
		return newS3Driver(ctx, &Config{Storage: *st}, nil)
	}
	return nil, fmt.Errorf("storage: posix or s3 with mysql")
}
