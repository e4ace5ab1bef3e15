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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/attestlog/attestlog/internal/testenv"
)

// Version is the versitygw version of internal/tools/versitygw/go.mod.
const Version = "v1.8.0"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the gateway's URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// Bucket exists, empty at start, anonymously readable.
	Bucket string
	// AccessKeyID and SecretAccessKey are the credentials the gateway
	// requires (its root account).
	AccessKeyID, SecretAccessKey string
	// Dir holds the data: one directory per bucket, one file per object.
	Dir string

	t    testing.TB
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

// Start starts versitygw with one bucket, named bucket.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := Versitygw(t)
	s := &Server{t: t, Bucket: bucket, Dir: t.TempDir()}
	key := make([]byte, 20)
	rand.Read(key)
	s.AccessKeyID = "attestlog-test"
	s.SecretAccessKey = hex.EncodeToString(key)
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
	s.args = []string{bin, "--access", s.AccessKeyID, "--secret", s.SecretAccessKey, "--region", "us-east-1",
		"--port", addr, "--quiet", "posix", data}
	t.Cleanup(s.stop)
	s.start()
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

// start runs versitygw and waits until it answers.
func (s *Server) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Dir = s.Dir
	s.out = &lockedBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(time.Minute)
	c := s.Client()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("versitygw exited: %s", s.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer within a minute (%v): %s", err, s.out.String())
		}
	}
}

// URL is the bucket's anonymous read URL, the log's c2sp.org/tlog-tiles
// base URL when the log is stored there.
func (s *Server) URL() string { return s.Endpoint + "/" + s.Bucket }

// Client is an S3 client of the gateway with the server's credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Get reads an object of the bucket with the server's credentials.
func (s *Server) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Kill kills versitygw with SIGKILL (a crash) and waits for it to be gone.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts versitygw again on the same directory and port.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Output is what versitygw printed (for a failing test's message).
func (s *Server) Output() string { return s.out.String() }

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// Versitygw returns the path of a versitygw binary of Version: versitygw
// on PATH, or one built from internal/tools/versitygw into the user cache
// directory.
func Versitygw(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		testenv.Missing(t, "the Versity S3 Gateway (versitygw)", buildErr)
	}
	return built
}

func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "attestlog", "versitygw-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("finding internal/tools/versitygw")
	}
	mod := filepath.Join(filepath.Dir(file), "..", "tools", "versitygw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/versity/versitygw/cmd/versitygw")
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building versitygw in %s: %v\n%s", mod, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
