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

// Version is the SeaweedFS version of internal/tools/seaweedfs/go.mod.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Server is a running SeaweedFS.
type Server struct {
	// Endpoint is the S3 gateway's URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// Bucket exists, empty at start.
	Bucket string
	// AccessKeyID and SecretAccessKey are the credentials the gateway
	// requires (its admin identity).
	AccessKeyID, SecretAccessKey string
	// Dir holds the data.
	Dir string

	t    testing.TB
	weed string
	wrap []string
	args []string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

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
	s := &Server{t: t, weed: Weed(t), wrap: o.Wrap, Bucket: bucket, Dir: t.TempDir()}
	key := make([]byte, 20)
	rand.Read(key)
	s.AccessKeyID = "attestlog-test"
	s.SecretAccessKey = hex.EncodeToString(key)
	ports := freePorts(t, 7)
	s.args = []string{"mini",
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
	s.args = append(s.args, "-s3.config="+confPath)
	s.env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+s.SecretAccessKey)
	s.Endpoint = "http://" + net.JoinHostPort(o.Bind, strconv.Itoa(ports[6]))
	t.Cleanup(s.stop)
	s.start()
	return s
}

// start runs weed and waits until the bucket answers.
func (s *Server) start() {
	t := s.t
	t.Helper()
	argv := append(append(append([]string{}, s.wrap...), s.weed), s.args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = s.env
	s.cmd.Dir = s.Dir
	s.out = &lockedBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(2 * time.Minute)
	c := s.Client()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("weed mini exited: %s", s.out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeaweedFS did not serve bucket %s within 2 minutes: %s", s.Bucket, s.out.String())
		}
	}
}

// URL is the bucket's anonymous read URL, the log's c2sp.org/tlog-tiles
// base URL when the log is stored there.
func (s *Server) URL() string { return s.Endpoint + "/" + s.Bucket }

// Client is an S3 client of the gateway with the server's credentials,
// for a test to read the bucket straight.
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

// Get reads an object of the bucket (for a test: the log's read API
// straight from the bucket).
func (s *Server) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Kill kills weed with SIGKILL (a crash) and waits for it to be gone.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts weed again on the same data directory and ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Output is what weed printed (for a failing test's message).
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

// Weed returns the path of a weed binary of Version: weed on PATH, or one
// built from internal/tools/seaweedfs into the user cache directory.
func Weed(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		testenv.Missing(t, "SeaweedFS (weed)", buildErr)
	}
	return built
}

func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "attestlog", "weed-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("finding internal/tools/seaweedfs")
	}
	mod := filepath.Join(filepath.Dir(file), "..", "tools", "seaweedfs")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/seaweedfs/seaweedfs/weed")
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building weed in %s: %v\n%s", mod, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
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
