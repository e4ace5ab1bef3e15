// Package mariadbtest starts a throwaway MariaDB server for a test: a fresh
// data directory under t.TempDir(), listening on 127.0.0.1 (or in a
// network namespace the test made) on a free port, stopped when the test
// ends. It needs Debian's mariadb-server (mariadbd and mariadb-install-db);
// without them the test is skipped, or fails under ATTESTLOG_STRICT=1.
package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/attestlog/attestlog/internal/testenv"
)

// Start starts MariaDB and returns the DSN of a new, empty database.
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t, Options{}).DSN
}

// Options place the server.
type Options struct {
	// Wrap runs mariadbd under this command line (e.g. ip netns exec NS).
	Wrap []string
	// Bind is the address to listen on (default 127.0.0.1); Port its
	// port (default: a free one).
	Bind string
	Port int
}

// Server is a running MariaDB.
type Server struct {
	DSN      string // root@tcp(addr)/attestlog
	t        testing.TB
	mariadbd string
	args     []string
	o        Options
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
	out      bytes.Buffer
}

// StartServer starts MariaDB as o says and creates the database
// attestlog.
func StartServer(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, o: o, mariadbd: testenv.LookPath(t, "mariadbd")}
	installDB := testenv.LookPath(t, "mariadb-install-db")
	s.dir = t.TempDir()
	data := filepath.Join(s.dir, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}
	root := false
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		args = append(args, "--user=root")
		root = true
	}
	if out, err := exec.Command(installDB, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	if s.o.Bind == "" {
		s.o.Bind = "127.0.0.1"
	}
	if s.o.Port == 0 {
		s.o.Port = freePort(t)
	}
	s.args = []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(s.dir, "sock"),
		"--pid-file=" + filepath.Join(s.dir, "pid"), "--bind-address=" + s.o.Bind, fmt.Sprintf("--port=%d", s.o.Port),
		"--skip-grant-tables", "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--log-error=" + filepath.Join(s.dir, "error.log")}
	if root {
		s.args = append(s.args, "--user=root")
	}
	t.Cleanup(s.stop)
	s.start()
	addr := net.JoinHostPort(s.o.Bind, fmt.Sprint(s.o.Port))
	db, err := sql.Open("mysql", "root@tcp("+addr+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE attestlog"); err != nil {
		t.Fatal(err)
	}
	s.DSN = "root@tcp(" + addr + ")/attestlog"
	return s
}

// start runs mariadbd on the data directory and waits until it answers.
func (s *Server) start() {
	t := s.t
	t.Helper()
	argv := append(append(append([]string{}, s.o.Wrap...), s.mariadbd), s.args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.out.Reset()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	db, err := sql.Open("mysql", "root@tcp("+net.JoinHostPort(s.o.Bind, fmt.Sprint(s.o.Port))+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for db.PingContext(ctx) != nil {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			t.Fatalf("mariadbd exited: %s\n%s", s.out.String(), log)
		case <-ctx.Done():
			t.Fatalf("mariadbd did not answer within a minute")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill kills the server with SIGKILL (a crash: nothing is flushed but
// what InnoDB already made durable) and waits for it to be gone.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again on the same data directory and port.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM) // mariadbd shuts down on SIGTERM (SIGINT it ignores)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
