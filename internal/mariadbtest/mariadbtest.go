// Package mariadbtest starts a throwaway MariaDB server for a test: a fresh
// data directory under t.TempDir(), listening on 127.0.0.1 on a free port,
// stopped when the test ends. It needs Debian's mariadb-server (mariadbd
// and mariadb-install-db); without them the test is skipped, or fails
// under ATTESTLOG_STRICT=1.
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
	mariadbd := testenv.LookPath(t, "mariadbd")
	installDB := testenv.LookPath(t, "mariadb-install-db")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(installDB, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	srvArgs := []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"),
		"--pid-file=" + filepath.Join(dir, "pid"), "--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--skip-grant-tables", "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--log-error=" + filepath.Join(dir, "error.log")}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		srvArgs = append(srvArgs, "--user=root")
	}
	cmd := exec.Command(mariadbd, srvArgs...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // mariadbd shuts down on SIGTERM (SIGINT it ignores)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	root := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	db, err := sql.Open("mysql", root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for db.PingContext(ctx) != nil {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("mariadbd exited: %s\n%s", out.String(), log)
		case <-ctx.Done():
			t.Fatalf("mariadbd did not answer within a minute")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE attestlog"); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/attestlog", port)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
