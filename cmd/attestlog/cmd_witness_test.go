package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness"
	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// captureStdout runs f with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- []byte(b.String())
	}()
	f()
	os.Stdout = old
	w.Close()
	return string(<-done)
}

// TestWitnessCommands runs `witness serve` with a config file, and add-log,
// list-logs and remove-log against its database while it serves.
func TestWitnessCommands(t *testing.T) {
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "witness.example/cmd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "witness.key"), []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "witness.yaml")
	// Relative paths are relative to the config file.
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nkey: witness.key\ndb: witness.db\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "witness.db")

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- witnessServe(ctx, []string{"--config", cfg}, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("witness serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("witness serve: %v", err)
		}
	}()

	l, err := driver.NewLog("example.com/cmd-log")
	if err != nil {
		t.Fatal(err)
	}
	out := captureStdout(t, func() {
		if code := run([]string{"witness", "add-log", "--db", db, "--origin", l.Origin, "--vkey", l.VKey}); code != 0 {
			t.Fatalf("witness add-log exited %d", code)
		}
	})
	if !strings.Contains(out, "added example.com/cmd-log") {
		t.Errorf("add-log printed %q", out)
	}
	client := &protocol.Client{SubmissionPrefix: "http://" + addr.String()}
	l.Append(5)
	if _, err := client.AddCheckpoint(ctx, l.Request(0, 5)); err != nil {
		t.Fatalf("add-checkpoint after add-log: %v", err)
	}

	out = captureStdout(t, func() {
		if code := run([]string{"witness", "list-logs", "--db", db}); code != 0 {
			t.Fatalf("witness list-logs exited %d", code)
		}
	})
	var li witness.LogInfo
	if err := json.Unmarshal([]byte(out), &li); err != nil || li.Origin != l.Origin || li.Size != 5 || len(li.Keys) != 1 {
		t.Fatalf("list-logs printed %q (%v)", out, err)
	}

	// A split view: another root for the cosigned size, signed by the log.
	if _, err := client.AddCheckpoint(ctx, &protocol.AddCheckpointRequest{OldSize: 5, Checkpoint: l.SignCheckpoint(5, l.Root(4))}); err == nil {
		t.Fatal("split view cosigned")
	}
	out = captureStdout(t, func() {
		if code := run([]string{"witness", "list-evidence", "--db", db}); code != 0 {
			t.Fatalf("witness list-evidence exited %d", code)
		}
	})
	var ev witness.Evidence
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Kind != "split-view" || ev.Origin != l.Origin {
		t.Fatalf("list-evidence printed %q (%v)", out, err)
	}

	captureStdout(t, func() {
		if code := run([]string{"witness", "remove-log", "--db", db, "--origin", l.Origin}); code != 0 {
			t.Fatalf("witness remove-log exited %d", code)
		}
	})
	l.Append(1)
	if _, err := client.AddCheckpoint(ctx, l.Request(5, 6)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("add-checkpoint after remove-log = %v, want 404", err)
	}

	if code := run([]string{"witness", "add-log", "--db", db, "--origin", l.Origin}); code != 2 {
		t.Errorf("add-log without --vkey exited %d, want 2", code)
	}
	if code := run([]string{"witness", "remove-log", "--db", db, "--origin", "example.com/none"}); code != 1 {
		t.Errorf("remove-log of an unknown origin exited %d, want 1", code)
	}
	out = captureStdout(t, func() {
		if code := run([]string{"witness", "vkey", "--key", filepath.Join(dir, "witness.key")}); code != 0 {
			t.Fatalf("witness vkey exited %d", code)
		}
	})
	if s, _ := witness.NewSigner(skey); strings.TrimSpace(out) != s.VKey {
		t.Errorf("witness vkey printed %q, want %q", out, s.VKey)
	}
}

func TestWitnessServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "witness.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nkey: missing.key\nport: 1\n"), 0o644)
	err := witnessServe(context.Background(), []string{"--config", cfg}, nil)
	if err == nil || !strings.Contains(err.Error(), "port (line 3): unknown field") {
		t.Fatalf("witness serve with an unknown key = %v, want an error naming it", err)
	}
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nkey: missing.key\n"), 0o644)
	err = witnessServe(context.Background(), []string{"--config", cfg}, nil)
	if err == nil || !strings.Contains(err.Error(), "witness key file") {
		t.Fatalf("witness serve with a missing key file = %v", err)
	}
}

// TestBenchWitness runs `bench witness` briefly against an in-process
// witness, with litewitness as the baseline.
func TestBenchWitness(t *testing.T) {
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "witness.example/bench")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "witness.key")
	os.WriteFile(key, []byte(skey), 0o600)
	db := filepath.Join(dir, "witness.db")
	ctx := context.Background()
	w, err := witness.Open(ctx, witness.Config{Key: key, DB: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()

	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// Built as an installed attestlog builds it: from a directory outside
	// this module, at the version this binary was built with.
	t.Chdir(dir)
	lw, err := driver.BuildPeer(bctx, dir, driver.LitewitnessPkg)
	if err != nil {
		testenv.Missing(t, "litewitness", err)
	}
	for _, tool := range []string{"ssh-agent", "ssh-add"} {
		testenv.LookPath(t, tool)
	}
	out := captureStdout(t, func() {
		if code := run([]string{"bench", "witness", "--witness", srv.URL, "--witness-db", db,
			"--logs", "3", "--duration", "300ms", "--concurrency", "2",
			"--baseline", "litewitness", "--litewitness", lw}); code != 0 {
			t.Errorf("bench witness exited %d", code)
		}
	})
	t.Log(out)
	for _, want := range []string{"attestlog ", "litewitness ", "cosignatures/s", "0 errors", "ratio attestlog/litewitness"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench witness output lacks %q", want)
		}
	}
}
