package driver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"

	_ "modernc.org/sqlite" // litewitness's database
)

// Peer witness packages, built from the module cache with BuildPeer.
const (
	LitewitnessPkg = "filippo.io/torchwood/cmd/litewitness"
	OmniwitnessPkg = "github.com/transparency-dev/witness/cmd/omniwitness"
)

// BuildPeer runs `go build -o dir pkg` (from within this module, so at the
// version go.mod requires) and returns the binary's path. Run from outside
// the module (an installed attestlog), it installs pkg at the version this
// binary was built with instead (`go install pkg@version`, GOBIN=dir).
func BuildPeer(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	b, err := cmd.CombinedOutput()
	if err == nil {
		return out, nil
	}
	version := moduleVersion(pkg)
	if version == "" || !bytes.Contains(b, []byte("go.mod file not found")) && !bytes.Contains(b, []byte("no required module provides")) {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cmd = exec.CommandContext(ctx, "go", "install", pkg+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+abs)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s (not within the attestlog module): %v\n%s", pkg, version, err, b)
	}
	return out, nil
}

// moduleVersion is the version of the module providing pkg in this
// binary's dependencies ("" when it is not one).
func moduleVersion(pkg string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	best, version := "", ""
	for _, d := range bi.Deps {
		if m := d; m.Replace == nil && (pkg == m.Path || strings.HasPrefix(pkg, m.Path+"/")) && len(m.Path) > len(best) {
			best, version = m.Path, m.Version
		}
	}
	return version
}

// Peer is a witness process started on 127.0.0.1.
type Peer struct {
	// URL is the submission (and monitoring) prefix.
	URL string
	// VKey is the peer's cosignature/v1 verifier key.
	VKey string
	// Name is the witness name in its cosignature lines.
	Name string

	addLog func(ctx context.Context, origin, vkey string) error
	procs  []*exec.Cmd
	waits  []chan struct{}
	once   sync.Once
}

// AddLog makes the peer witness origin with vkey from size 0.
func (p *Peer) AddLog(ctx context.Context, origin, vkey string) error {
	return p.addLog(ctx, origin, vkey)
}

// Close kills the peer's processes and waits for them.
func (p *Peer) Close() {
	p.once.Do(func() {
		for i := len(p.procs) - 1; i >= 0; i-- {
			p.procs[i].Process.Kill()
			<-p.waits[i]
		}
	})
}

func (p *Peer) start(cmd *exec.Cmd) (chan struct{}, error) {
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.procs = append(p.procs, cmd)
	p.waits = append(p.waits, done)
	return done, nil
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitListening waits until addr accepts connections, the process exits,
// or ctx ends.
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited before listening")
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// vkeyFor returns the cosignature/v1 vkey of an Ed25519 public key.
func vkeyFor(name string, pub ed25519.PublicKey) string {
	key := append([]byte{0x04}, pub...)
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(key)
	sum := h.Sum(nil)
	return fmt.Sprintf("%s+%02x%02x%02x%02x+%s", name, sum[0], sum[1], sum[2], sum[3], base64.StdEncoding.EncodeToString(key))
}

// StartLitewitness starts litewitness (bin) named name on a free loopback
// port, with a new Ed25519 key held by an ssh-agent it also starts
// (ssh-agent and ssh-add must be on PATH). dir holds the database, the key
// and the agent socket (keep it short: socket paths are limited to about
// 100 bytes). Logs are added to its SQLite "log" and "key" tables directly,
// as witnessctl would. stderr, if not nil, gets both processes' output.
func StartLitewitness(ctx context.Context, bin, dir, name string, stderr io.Writer) (p *Peer, err error) {
	for _, tool := range []string{"ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, err
		}
	}
	p = &Peer{Name: name}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "litewitness test key")
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "lw.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "lw.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	agent.Stdout, agent.Stderr = stderr, stderr
	agentDone, err := p.start(agent)
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-agentDone:
			return nil, errors.New("ssh-agent exited")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	add := exec.CommandContext(ctx, "ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if b, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-add: %v: %s", err, b)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "litewitness.db")
	lw := exec.Command(bin, "-name", name, "-db", db, "-ssh-agent", sock,
		"-key", ssh.FingerprintSHA256(sshPub), "-listen", addr)
	lw.Stdout, lw.Stderr = stderr, stderr
	lwDone, err := p.start(lw)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, addr, lwDone); err != nil {
		return nil, fmt.Errorf("litewitness: %w", err)
	}
	p.URL = "http://" + addr
	p.VKey = vkeyFor(name, pub)
	p.addLog = func(ctx context.Context, origin, vkey string) error {
		// The schema is litewitness's (created when it started):
		//   log(origin TEXT PRIMARY KEY, tree_size INTEGER, tree_hash TEXT base64)
		//   key(origin TEXT, key TEXT)
		conn, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer conn.Close()
		empty := sha256.Sum256(nil)
		if _, err := conn.ExecContext(ctx, "INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)",
			origin, base64.StdEncoding.EncodeToString(empty[:])); err != nil {
			return fmt.Errorf("litewitness log table: %w", err)
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO key (origin, key) VALUES (?, ?)", origin, vkey); err != nil {
			return fmt.Errorf("litewitness key table: %w", err)
		}
		return nil
	}
	return p, nil
}

// StartOmniwitness starts omniwitness (bin) named name on addr (a free
// loopback port if empty) with the key and SQLite database in dir (created
// if missing, so that a restart with the same dir and addr is the same
// witness). It contacts no other
// host: no feeders, distributors or public witness-network configs. Since
// omniwitness reads its logs from a YAML file at start-up, the logs (origin
// to vkey) must be given here.
func StartOmniwitness(ctx context.Context, bin, dir, name, addr string, logs map[string]string, stderr io.Writer) (p *Peer, err error) {
	p = &Peer{Name: name}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	keyFile := filepath.Join(dir, "omni.key")
	b, err := os.ReadFile(keyFile)
	skey := string(b)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, err = note.GenerateKey(rand.Reader, name)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, err
	}
	var y strings.Builder
	y.WriteString("Logs:\n")
	for origin, vkey := range logs {
		fmt.Fprintf(&y, "  - Origin: %q\n    PublicKey: %q\n    URL: \"http://127.0.0.1:1/unused\"\n", origin, vkey)
	}
	logsFile := filepath.Join(dir, "omni-logs.yaml")
	if err := os.WriteFile(logsFile, []byte(y.String()), 0o644); err != nil {
		return nil, err
	}
	if addr == "" {
		if addr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	ow := exec.Command(bin, "--listen", addr, "--metrics_listen", "", "--db_file", filepath.Join(dir, "omni.db"),
		"--private_key_path", keyFile, "--additional_logs", logsFile, "--logtostderr")
	ow.Stdout, ow.Stderr = stderr, stderr
	done, err := p.start(ow)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, addr, done); err != nil {
		return nil, fmt.Errorf("omniwitness: %w", err)
	}
	p.URL = "http://" + addr
	// The cosignature/v1 vkey of the key, derived as omniwitness does
	// (formats/note.NewSignerForCosignatureV1).
	seed, _ := base64.StdEncoding.DecodeString(strings.SplitN(skey, "+", 5)[4])
	p.VKey = vkeyFor(name, ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey))
	if v, err := fnote.NewVerifierForCosignatureV1(p.VKey); err != nil || v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("omniwitness vkey %q does not match its signer", p.VKey)
	}
	p.addLog = func(context.Context, string, string) error {
		return errors.New("omniwitness reads its logs at start-up: pass them to StartOmniwitness")
	}
	return p, nil
}
