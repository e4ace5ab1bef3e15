package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/up"
	"github.com/attestlog/attestlog/npm"
)

// binary is the attestlog binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "attestlog-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "attestlog")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building attestlog: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCmd runs the binary and returns stdout, failing the test on a
// non-zero exit.
func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := tryCmd(t, args...)
	if err != nil {
		t.Fatalf("attestlog %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func tryCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// upProc is a running 'attestlog up'.
type upProc struct {
	cmd    *exec.Cmd
	info   up.Info
	dir    string
	stderr *bytes.Buffer
	done   chan struct{}
}

// startUp starts 'attestlog up --dir dir' (with extra flags) on a free
// loopback port and waits until its log has published a checkpoint.
func startUp(t *testing.T, dir string, extra ...string) *upProc {
	t.Helper()
	os.Remove(filepath.Join(dir, "up.json"))
	cmd := exec.Command(binary, append([]string{"up", "--dir", dir, "--listen", "127.0.0.1:0", "--enclave-listen", "127.0.0.1:0"}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &upProc{cmd: cmd, dir: dir, stderr: &stderr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(u.done) }()
	t.Cleanup(func() { u.stop(t) })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		b, err := os.ReadFile(filepath.Join(dir, "up.json"))
		if err == nil && json.Unmarshal(b, &u.info) == nil && u.info.PID == cmd.Process.Pid {
			break
		}
		select {
		case <-u.done:
			t.Fatalf("attestlog up exited: %s", stderr.String())
		case <-ctx.Done():
			t.Fatalf("attestlog up did not start: %s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := waitReady(ctx, u.info.URL+"/checkpoint"); err != nil {
		t.Fatalf("no checkpoint from %s: %v\n%s", u.info.URL, err, stderr.String())
	}
	return u
}

// stop sends SIGTERM and waits.
func (u *upProc) stop(t *testing.T) {
	select {
	case <-u.done:
		return
	default:
	}
	u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.done:
	case <-time.After(30 * time.Second):
		u.cmd.Process.Kill()
		<-u.done
		t.Errorf("attestlog up did not stop within 30s of SIGTERM")
	}
}

// kill sends SIGKILL and waits.
func (u *upProc) kill() {
	u.cmd.Process.Kill()
	<-u.done
}

// waitReady polls url until it answers 200 or ctx ends (used by tests).
func waitReady(ctx context.Context, url string) error {
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestHelpEverywhere: every command and group answers -h with exit 0, a
// group alone lists its commands, every usage line lists every flag of
// its command, and no help text names a Go type.
func TestHelpEverywhere(t *testing.T) {
	out, errOut, err := tryCmd(t, "version")
	if err != nil || !strings.HasPrefix(out, "attestlog ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "\n@attestlog/verify "+npm.Version+" ") {
		t.Errorf("version = %q %q %v, want the npm package's version %s named too", out, errOut, err, npm.Version)
	}
	for _, group := range []string{"log", "witness", "measure", "bench"} {
		_, errOut, err := tryCmd(t, group)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(errOut, "Usage: attestlog "+group+" COMMAND") {
			t.Errorf("attestlog %s alone: %v\n%s", group, err, errOut)
		}
		for n := range commands {
			if strings.HasPrefix(n, group+" ") && !strings.Contains(errOut, n) {
				t.Errorf("attestlog %s does not list %s", group, n)
			}
		}
		if _, _, err := tryCmd(t, group, "-h"); err != nil {
			t.Errorf("attestlog %s -h: %v", group, err)
		}
	}
	flagRE := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for name := range commands {
		args := append(strings.Fields(name), "-h")
		_, help, err := tryCmd(t, args...)
		if err != nil {
			t.Errorf("attestlog %s -h: %v\n%s", name, err, help)
			continue
		}
		usageLine, _, _ := strings.Cut(help, "\n")
		for _, m := range flagRE.FindAllStringSubmatch(help, -1) {
			if !strings.Contains(usageLine, "--"+m[1]) {
				t.Errorf("attestlog %s: the usage line %q does not list --%s", name, usageLine, m[1])
			}
		}
		for _, bad := range []string{"statement.", "policy.", "struct", "pkg.go.dev", "go doc"} {
			if strings.Contains(help, bad) {
				t.Errorf("attestlog %s -h mentions %q", name, bad)
			}
		}
	}
}
