// Package versitygwtest starts a throwaway Versity S3 Gateway for a test:
// `versitygw posix` (an S3 API over a directory) on a free 127.0.0.1 port,
// its data under t.TempDir(), one bucket created, static S3 credentials
// required for everything but anonymous reads of the bucket (a bucket
// policy: the bucket is a log's public read API), stopped when the test
// ends. It is the second S3 implementation the storage tests run on,
// beside SeaweedFS (internal/seaweedtest), with the same shape.
//
// versitygw comes from PATH (.ci/run builds it there) or, when missing, is
// built once from the pinned tools module internal/tools/versitygw into
// the user cache directory (about a minute). When neither works the test
// is skipped, or fails under ATTESTLOG_STRICT=1.
package versitygwtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/attestlog/attestlog/internal/s3proctest"
)

// Version is the versitygw version of internal/tools/versitygw/go.mod.
const Version = "v1.8.0"

// Server is a running versitygw: Endpoint is the gateway's URL, Bucket
// exists (empty at start, anonymously readable), AccessKeyID and
// SecretAccessKey are its root account, Dir holds the data (under data/:
// one directory per bucket, one file per object).
type Server = s3proctest.Server

// Start starts versitygw with one bucket, named bucket.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := Versitygw(t)
	s := s3proctest.New(t, bucket)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + addr
	data := filepath.Join(s.Dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Run(s3proctest.Process{
		Name: "versitygw",
		Argv: []string{bin, "--access", s.AccessKeyID, "--secret", s.SecretAccessKey, "--region", "us-east-1",
			"--port", addr, "--quiet", "posix", data},
		Ready: func(ctx context.Context, c *s3.Client) error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
		Within: time.Minute, Every: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("creating bucket %s on versitygw: %v", bucket, err)
	}
	policy := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::%s/*"]}]}`, bucket)
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatalf("making bucket %s anonymously readable on versitygw: %v", bucket, err)
	}
	return s
}

var versitygw = &s3proctest.Tool{Cmd: "versitygw", What: "the Versity S3 Gateway (versitygw)", Version: Version,
	Module: "versitygw", Package: "github.com/versity/versitygw/cmd/versitygw", BuildTimeout: 20 * time.Minute}

// Versitygw returns the path of a versitygw binary of Version: versitygw
// on PATH, or one built from internal/tools/versitygw into the user cache
// directory.
func Versitygw(t testing.TB) string {
	t.Helper()
	return versitygw.Path(t)
}
