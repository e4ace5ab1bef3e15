// Package seaweedtest starts a throwaway SeaweedFS for a test: `weed mini`
// (master, volume server, filer and S3 gateway in one process) on free
// 127.0.0.1 ports (or on the address of a network namespace the test
// made: StartOptions), its data under t.TempDir(), one bucket created,
// static S3 credentials required for everything but anonymous reads (the
// bucket is a log's public read API: Endpoint/Bucket/checkpoint), stopped
// when the test ends.
//
// weed comes from PATH (.ci/run builds it there) or, when missing, is
// built once from the pinned tools module internal/tools/seaweedfs into
// the user cache directory (a few minutes). When neither works the test is
// skipped, or fails under ATTESTLOG_STRICT=1.
package seaweedtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/attestlog/attestlog/internal/s3proctest"
)

// Version is the SeaweedFS version of internal/tools/seaweedfs/go.mod.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Server is a running SeaweedFS: Endpoint is the S3 gateway's URL, Bucket
// exists (empty at start, anonymously readable), AccessKeyID and
// SecretAccessKey are the gateway's admin identity, Dir holds the data.
type Server = s3proctest.Server

// Start starts SeaweedFS with one bucket, named bucket, on 127.0.0.1.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	return StartOptions(t, bucket, Options{})
}

// Options place the server.
type Options struct {
	// Wrap runs weed under this command line (e.g. ip netns exec NS).
	Wrap []string
	// Bind is the address weed listens on and advertises to itself
	// (default 127.0.0.1).
	Bind string
}

// StartOptions starts SeaweedFS with one bucket, named bucket, as o says.
func StartOptions(t testing.TB, bucket string, o Options) *Server {
	t.Helper()
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	weed := Weed(t)
	s := s3proctest.New(t, bucket)
	ports := s3proctest.FreePorts(t, 7)
	args := []string{"mini",
		"-dir=" + s.Dir, "-ip=" + o.Bind, "-ip.bind=" + o.Bind,
		fmt.Sprintf("-master.port=%d", ports[0]), fmt.Sprintf("-master.port.grpc=%d", ports[1]),
		fmt.Sprintf("-volume.port=%d", ports[2]), fmt.Sprintf("-volume.port.grpc=%d", ports[3]),
		fmt.Sprintf("-filer.port=%d", ports[4]), fmt.Sprintf("-filer.port.grpc=%d", ports[5]),
		fmt.Sprintf("-s3.port=%d", ports[6]), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-filer.localSocket=" + filepath.Join(s.Dir, "filer.sock"), "-s3.localSocket=" + filepath.Join(s.Dir, "s3.sock"),
		"-webdav=false", "-admin.ui=false", "-master.telemetry=false",
		"-bucket=" + bucket,
	}
	// Identities of SeaweedFS's S3 gateway (its -s3.config): an admin
	// with the test's key, and the anonymous identity, which may read
	// the bucket.
	conf := fmt.Sprintf(`{"identities": [
  {"name": "admin", "credentials": [{"accessKey": %q, "secretKey": %q}], "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
  {"name": "anonymous", "actions": ["Read:%s"]}
]}`, s.AccessKeyID, s.SecretAccessKey, bucket)
	confPath := filepath.Join(s.Dir, "s3.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "-s3.config="+confPath)
	s.Endpoint = "http://" + net.JoinHostPort(o.Bind, strconv.Itoa(ports[6]))
	s.Run(s3proctest.Process{
		Name: "weed mini",
		Argv: append(append(append([]string{}, o.Wrap...), weed), args...),
		Env:  append(os.Environ(), "AWS_ACCESS_KEY_ID="+s.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+s.SecretAccessKey),
		Ready: func(ctx context.Context, c *s3.Client) error {
			_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
			return err
		},
		Within: 2 * time.Minute, Every: 200 * time.Millisecond,
	})
	return s
}

var weed = &s3proctest.Tool{Cmd: "weed", What: "SeaweedFS (weed)", Version: Version,
	Module: "seaweedfs", Package: "github.com/seaweedfs/seaweedfs/weed", BuildTimeout: 30 * time.Minute}

// Weed returns the path of a weed binary of Version: weed on PATH, or one
// built from internal/tools/seaweedfs into the user cache directory.
func Weed(t testing.TB) string {
	t.Helper()
	return weed.Path(t)
}
