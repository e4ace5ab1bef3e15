// Package s3proctest is the plumbing the S3 server kits share
// (internal/seaweedtest, internal/versitygwtest): a server process with
// its data under t.TempDir() and static credentials, started and awaited
// until it answers, killed and restarted on the same data and ports,
// stopped when the test ends; an S3 client of it; free 127.0.0.1 ports;
// the server's binary found on PATH or built once from a pinned tools
// module under internal/tools; and Probe, the checks both kits' own
// tests make of their server.
//
// A kit fills in the process (Server.Run) and what it needs on top
// (bucket creation, policies); its tests and callers use Server.
package s3proctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/aws/smithy-go"

	"github.com/attestlog/attestlog/internal/testenv"
)

// Server is a running S3 server process with one bucket.
type Server struct {
	// Endpoint is the S3 API's URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// Bucket exists, empty at start, anonymously readable.
	Bucket string
	// AccessKeyID and SecretAccessKey are the credentials the server
	// requires (its admin or root identity).
	AccessKeyID, SecretAccessKey string
	// Dir holds the data.
	Dir string

	t    testing.TB
	p    Process
	cmd  *exec.Cmd
	done chan struct{}
	out  *testenv.Buffer
}

// Process is how a kit runs its server.
type Process struct {
	// Name names the server in failures, e.g. "weed mini".
	Name string
	// Argv is the command line; it runs in Server.Dir.
	Argv []string
	// Env is its environment (nil: this process's).
	Env []string
	// Ready answers nil once the server serves (polled with the
	// server's client until Within has passed, every Every).
	Ready func(context.Context, *s3.Client) error
	// Within and Every bound the wait for Ready.
	Within, Every time.Duration
}

// New makes a server, not yet running, with bucket name bucket, its data
// directory under t.TempDir() and fresh credentials (key ID
// attestlog-test, a random secret).
func New(t testing.TB, bucket string) *Server {
	key := make([]byte, 20)
	rand.Read(key)
	return &Server{t: t, Bucket: bucket, Dir: t.TempDir(), AccessKeyID: "attestlog-test", SecretAccessKey: hex.EncodeToString(key)}
}

// Run starts the server as p says, stops it when the test ends, and
// waits until it is ready; the test fails if it exits or is not ready in
// time.
func (s *Server) Run(p Process) {
	s.t.Helper()
	s.p = p
	s.t.Cleanup(s.stop)
	s.start()
}

// start runs the process and waits until it is ready.
func (s *Server) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(s.p.Argv[0], s.p.Argv[1:]...)
	s.cmd.Env = s.p.Env
	s.cmd.Dir = s.Dir
	s.out = &testenv.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(s.p.Within)
	c := s.Client()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.p.Ready(ctx, c)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", s.p.Name, s.out.String())
		case <-time.After(s.p.Every):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve bucket %s within %v (%v): %s", s.p.Name, s.Bucket, s.p.Within, err, s.out.String())
		}
	}
}

// URL is the bucket's anonymous read URL, the log's c2sp.org/tlog-tiles
// base URL when the log is stored there.
func (s *Server) URL() string { return s.Endpoint + "/" + s.Bucket }

// Client is an S3 client of the server with its credentials, for a test
// to read the bucket straight.
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

// Get reads an object of the bucket with the server's credentials (for a
// test: the log's read API straight from the bucket).
func (s *Server) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Kill kills the server with SIGKILL (a crash) and waits for it to be
// gone.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again on the same data directory and ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Output is what the server printed (for a failing test's message).
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

// Tool is a server binary of a pinned version: Cmd on PATH, or one built
// once from the tools module internal/tools/Module into the user cache
// directory.
type Tool struct {
	// Cmd is the binary's name on PATH, e.g. weed.
	Cmd string
	// What names it for a missing-peer failure, e.g. "SeaweedFS (weed)".
	What string
	// Version is the version the tools module pins (part of the cached
	// binary's name).
	Version string
	// Module is the tools module's directory under internal/tools, and
	// Package the import path of the binary's main package there.
	Module, Package string
	// BuildTimeout bounds the build.
	BuildTimeout time.Duration

	once  sync.Once
	built string
	err   error
}

// Path returns the binary's path. When it is neither on PATH nor
// buildable the test is skipped, or fails under ATTESTLOG_STRICT=1.
func (b *Tool) Path(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath(b.Cmd); err == nil {
		return p
	}
	b.once.Do(func() { b.built, b.err = b.build() })
	if b.err != nil {
		testenv.Missing(t, b.What, b.err)
	}
	return b.built
}

func (b *Tool) build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "attestlog", b.Cmd+"-"+b.Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("finding internal/tools/%s", b.Module)
	}
	mod := filepath.Join(filepath.Dir(file), "..", "tools", b.Module)
	ctx, cancel := context.WithTimeout(context.Background(), b.BuildTimeout)
	defer cancel()
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, b.Package)
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s in %s: %v\n%s", b.Cmd, mod, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// FreePorts returns n distinct ports free on 127.0.0.1 just now.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
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

// Probe checks of a server s started with bucket probe what Tessera's AWS
// driver and the log's readers rely on: a conditional put (If-None-Match:
// *) succeeds once and is refused with PreconditionFailed after; objects
// read anonymously; anonymous writes are refused; and, killed and
// restarted, the server keeps what it stored.
func Probe(t *testing.T, s *Server) {
	t.Helper()
	ctx := t.Context()
	c := s.Client()
	put := func(body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("tile/0/000"),
			Body: bytes.NewReader([]byte(body)), IfNoneMatch: aws.String("*")})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatal(err)
	}
	var ae smithy.APIError
	if err := put("second"); !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("a second If-None-Match put = %v, want PreconditionFailed", err)
	}
	resp, err := http.Get(s.URL() + "/tile/0/000")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "first" {
		t.Errorf("anonymous GET = %d %q, want 200 \"first\"", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/checkpoint", bytes.NewReader([]byte("forged")))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Error("an anonymous PUT was accepted")
	}
	if _, err := s.Get(ctx, "checkpoint"); err == nil {
		t.Error("the anonymous PUT wrote the object")
	}
	// Killed and restarted, it keeps what it stored.
	s.Kill()
	s.Restart()
	if got, err := s.Get(ctx, "tile/0/000"); err != nil || string(got) != "first" {
		t.Errorf("after a restart, Get = %q, %v", got, err)
	}
}
