package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"filippo.io/torchwood"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// testWitness is a Witness behind an httptest server on 127.0.0.1.
type testWitness struct {
	*Witness
	srv    *httptest.Server
	cfg    Config
	client *protocol.Client
	logBuf *testenv.Buffer
}

func writeKey(t testing.TB, dir, name string) string {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "witness.key")
	if err := os.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestWitness(t testing.TB) *testWitness {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Key: writeKey(t, dir, "witness.example/w1"), DB: filepath.Join(dir, "witness.db")}
	buf := new(testenv.Buffer)
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := Open(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() {
		srv.Close()
		w.Close()
	})
	return &testWitness{Witness: w, srv: srv, cfg: w.cfg, logBuf: buf,
		client: &protocol.Client{SubmissionPrefix: srv.URL, HTTP: srv.Client()}}
}

func newTestLog(t testing.TB, tw *testWitness, origin string) *driver.Log {
	t.Helper()
	l, err := driver.NewLog(origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.AddLog(context.Background(), l.Origin, l.VKey); err != nil {
		t.Fatal(err)
	}
	return l
}

func post(t testing.TB, tw *testWitness, body []byte) (int, string, string) {
	t.Helper()
	resp, err := tw.srv.Client().Post(tw.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// verifyCosig checks a 200 body with an independent verifier: the
// transparency-dev/formats cosignature/v1 verifier built from the vkey alone.
func verifyCosig(t testing.TB, vkey string, checkpoint []byte, cosig string) {
	t.Helper()
	if err := cosigError(vkey, checkpoint, cosig); err != nil {
		t.Fatal(err)
	}
}

// cosigError is verifyCosig for goroutines other than the test's.
func cosigError(vkey string, checkpoint []byte, cosig string) error {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return err
	}
	if strings.Count(cosig, "\n") != 1 || !strings.HasPrefix(cosig, "— ") {
		return fmt.Errorf("response %q is not one signature line", cosig)
	}
	n, err := note.Open(append(bytes.Clone(checkpoint), cosig...), note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("cosignature %q does not verify on %q: %v", cosig, checkpoint, err)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil || ts.Unix() == 0 {
		return fmt.Errorf("cosignature timestamp = %v, %v; want non-zero", ts, err)
	}
	return nil
}

// corruptSignature flips one bit of the (last) signature of a note, keeping
// the key name and ID and the base64 valid.
func corruptSignature(t testing.TB, n []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(n[:len(n)-1], []byte("\n")) + 1
	name, b64sig, _ := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(string(n[i:]), "\n"), "— "), " ")
	sig, err := base64.StdEncoding.DecodeString(b64sig)
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	return fmt.Appendf(bytes.Clone(n[:i]), "— %s %s\n", name, base64.StdEncoding.EncodeToString(sig))
}

func req(old uint64, proof [][32]byte, cp []byte) []byte {
	return (&protocol.AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: cp}).Marshal()
}

// TestAddCheckpointStatusCodes walks one log through every answer of
// c2sp.org/tlog-witness add-checkpoint, in order (each step sees the state
// the previous ones left).
func TestAddCheckpointStatusCodes(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/log")
	l.Append(10)
	l.Append(10)

	other, _ := driver.NewLog("example.com/log") // same name, another key
	other.Append(20)
	unknown, _ := driver.NewLog("example.com/unknown")
	unknown.Append(1)
	fork := l.Fork(5) // same first 5 leaves, then different ones
	fork.Append(15)

	badSig := corruptSignature(t, l.Checkpoint(10))

	badProof := l.Proof(10, 20)
	badProof[0][0] ^= 1

	steps := []struct {
		name     string
		body     []byte
		wantCode int
		wantBody string // for 409: exact; else substring; empty: not checked
	}{
		{"unknown origin", req(0, nil, unknown.Checkpoint(1)), 404, "unknown log"},
		{"no trusted signature", req(0, nil, other.Checkpoint(10)), 403, ""},
		{"signature fails to verify", req(0, nil, badSig), 403, ""},
		{"malformed body", []byte("old 0\n" + string(l.Checkpoint(10))), 400, ""},
		{"note without signatures", req(0, nil, []byte("example.com/log\n10\n"+b64(make([]byte, 32))+"\n\n")), 400, ""},
		{"old larger than size", req(11, nil, l.Checkpoint(10)), 400, "larger than the checkpoint size"},
		{"size 0 with non-empty root", req(0, nil, l.SignCheckpoint(0, l.Root(1))), 422, "empty tree"},
		{"proof with old 0", req(0, l.Proof(5, 10), l.Checkpoint(10)), 422, "must be empty"},
		{"size 0 with empty root", req(0, nil, l.Checkpoint(0)), 200, ""},
		{"first checkpoint", req(0, nil, l.Checkpoint(10)), 200, ""},
		{"stale old", req(0, nil, l.Checkpoint(20)), 409, "10\n"},
		{"old ahead", req(15, l.Proof(15, 20), l.Checkpoint(20)), 409, "10\n"},
		{"same size same root", req(10, nil, l.Checkpoint(10)), 200, ""},
		{"same size other root", req(10, nil, fork.SignCheckpoint(10, l.Root(9))), 422, "was cosigned with root"},
		{"same size with proof", req(10, l.Proof(5, 10), l.Checkpoint(10)), 422, ""},
		{"bad proof", req(10, badProof, l.Checkpoint(20)), 422, "does not verify"},
		{"fork", req(10, fork.Proof(10, 20), fork.Checkpoint(20)), 422, "does not verify"},
		{"missing proof", req(10, nil, l.Checkpoint(20)), 422, ""},
		{"good proof", req(10, l.Proof(10, 20), l.Checkpoint(20)), 200, ""},
		{"old 0 after cosigning", req(0, nil, l.Checkpoint(20)), 409, "20\n"},
		{"body too large", append([]byte("old 0\n\n"), bytes.Repeat([]byte("x"), DefaultMaxRequestBytes)...), 413, ""},
	}
	for _, s := range steps {
		code, ct, body := post(t, tw, s.body)
		if code != s.wantCode {
			t.Fatalf("%s: POST /add-checkpoint = %d %q, want %d", s.name, code, body, s.wantCode)
		}
		switch code {
		case 200:
			r, err := protocol.ParseAddCheckpointRequest(s.body)
			if err != nil {
				t.Fatal(err)
			}
			verifyCosig(t, tw.VerifierKey(), r.Checkpoint, body)
		case 409:
			if ct != protocol.ContentTypeTreeSize || body != s.wantBody {
				t.Fatalf("%s: 409 with Content-Type %q body %q, want %q body %q", s.name, ct, body, protocol.ContentTypeTreeSize, s.wantBody)
			}
		default:
			if !strings.Contains(body, s.wantBody) {
				t.Fatalf("%s: %d body %q, want it to contain %q", s.name, code, body, s.wantBody)
			}
		}
	}

	// Validly signed but inconsistent checkpoints are kept as evidence; the
	// split view verifies on its own: two log-signed checkpoints of one size
	// with different roots.
	ev, err := tw.Evidence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range ev {
		kinds[e.Kind]++
	}
	if kinds["split-view"] != 1 || kinds["bad-proof"] != 3 || len(ev) != 4 {
		t.Fatalf("evidence kinds = %v, want 1 split-view and 3 bad-proof", kinds)
	}
	for _, e := range ev {
		if e.Kind != "split-view" {
			continue
		}
		r, err := protocol.ParseAddCheckpointRequest([]byte(e.Request))
		if err != nil {
			t.Fatal(err)
		}
		lv, _ := note.NewVerifier(l.VKey)
		a, errA := note.Open(r.Checkpoint, note.VerifierList(lv))
		b, errB := note.Open([]byte(e.Cosigned), note.VerifierList(lv))
		if errA != nil || errB != nil {
			t.Fatalf("split-view evidence does not verify: %v, %v", errA, errB)
		}
		ca, _ := torchwood.ParseCheckpoint(a.Text)
		cb, _ := torchwood.ParseCheckpoint(b.Text)
		if ca.N != cb.N || ca.Hash == cb.Hash || ca.Origin != l.Origin {
			t.Fatalf("split-view evidence is not two roots for one size: %+v %+v", ca, cb)
		}
	}

	// Only POST is allowed.
	resp, err := tw.srv.Client().Get(tw.srv.URL + "/add-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint = %d, want 405", resp.StatusCode)
	}

	// One log line per request, with the fixed keys.
	lines := strings.Count(tw.logBuf.String(), "msg=request ")
	if want := len(steps) + 1; lines != want {
		t.Errorf("%d request log lines, want %d:\n%s", lines, want, tw.logBuf.String())
	}
	if !strings.Contains(tw.logBuf.String(), `origin=example.com/log old=10 size=20`) {
		t.Errorf("request log lines lack origin/old/size:\n%s", tw.logBuf.String())
	}
	// Cosignatures are routine (debug); refusals are news (info).
	for _, l := range strings.Split(tw.logBuf.String(), "\n") {
		if !strings.Contains(l, "msg=request ") {
			continue
		}
		if strings.Contains(l, "status=200") != strings.Contains(l, "level=DEBUG") {
			t.Errorf("request logged at the wrong level: %s", l)
		}
	}
}

// TestClientConflictRetry is the retry path a log takes: it starts with old
// 0, gets 409 with the size, and retries with a proof from that size.
func TestClientConflictRetry(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/retry")
	ctx := context.Background()
	l.Append(7)
	if _, err := tw.client.AddCheckpoint(ctx, l.Request(0, 7)); err != nil {
		t.Fatal(err)
	}
	l.Append(5)
	_, err := tw.client.AddCheckpoint(ctx, l.Request(0, 12))
	var ce *protocol.ConflictError
	if !errors.As(err, &ce) || ce.Size != 7 {
		t.Fatalf("AddCheckpoint(old 0) = %v, want ConflictError{7}", err)
	}
	cosig, err := tw.client.AddCheckpoint(ctx, l.Request(ce.Size, 12))
	if err != nil {
		t.Fatal(err)
	}
	verifyCosig(t, tw.VerifierKey(), l.Checkpoint(12), string(cosig))
}

func TestMonitorCheckpoint(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/monitored")
	ctx := context.Background()

	if _, err := tw.client.Checkpoint(ctx, l.Origin); !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("Checkpoint before any cosignature = %v, want ErrNotFound", err)
	}
	for _, path := range []string{"/" + strings.ToUpper(protocol.OriginHash(l.Origin)) + "/checkpoint", "/abc/checkpoint", "/" + protocol.OriginHash("nope") + "/checkpoint"} {
		resp, err := tw.srv.Client().Get(tw.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}

	l.Append(3)
	cosig, err := tw.client.AddCheckpoint(ctx, l.Request(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tw.client.Checkpoint(ctx, l.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(l.Checkpoint(3), cosig...); !bytes.Equal(got, want) {
		t.Fatalf("Checkpoint = %q, want the log's checkpoint and the returned cosignature %q", got, want)
	}
	// Both the log signature and the witness cosignature verify.
	lv, _ := note.NewVerifier(l.VKey)
	wv, _ := fnote.NewVerifierForCosignatureV1(tw.VerifierKey())
	n, err := note.Open(got, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("note.Open(checkpoint) = %v, %v; want two verified signatures", n, err)
	}
}

func TestManageLogs(t *testing.T) {
	tw := newTestWitness(t)
	ctx := context.Background()
	l, _ := driver.NewLog("example.com/managed")
	l.Append(4)

	if code, _, _ := post(t, tw, req(0, nil, l.Checkpoint(4))); code != 404 {
		t.Fatalf("before add-log: %d, want 404", code)
	}
	// Another process adds the log to the same database while the server
	// runs: no restart.
	db, err := OpenDB(ctx, tw.cfg.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if created, err := db.AddLog(ctx, l.Origin, l.VKey); err != nil || !created {
		t.Fatalf("AddLog = %v, %v; want created", created, err)
	}
	if created, err := db.AddLog(ctx, l.Origin, l.VKey); err != nil || created {
		t.Fatalf("AddLog again = %v, %v; want no error, not created", created, err)
	}
	if code, _, body := post(t, tw, req(0, nil, l.Checkpoint(4))); code != 200 {
		t.Fatalf("after add-log: %d %q, want 200", code, body)
	}
	logs, err := db.Logs(ctx)
	if err != nil || len(logs) != 1 || logs[0].Size != 4 || !logs[0].Cosigned || len(logs[0].Keys) != 1 {
		t.Fatalf("Logs = %+v, %v", logs, err)
	}

	if err := db.RemoveLog(ctx, l.Origin, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveLog(ctx, l.Origin, ""); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("RemoveLog twice = %v, want ErrUnknownLog", err)
	}
	l.Append(1)
	if code, _, _ := post(t, tw, req(4, l.Proof(4, 5), l.Checkpoint(5))); code != 404 {
		t.Fatalf("after remove-log: %d, want 404", code)
	}
	// The monitor endpoint still serves what was cosigned.
	if _, err := tw.client.Checkpoint(ctx, l.Origin); err != nil {
		t.Fatalf("Checkpoint after remove-log: %v", err)
	}
	// Re-adding continues from the recorded tree head, never from 0.
	if err := tw.AddLog(ctx, l.Origin, l.VKey); err != nil {
		t.Fatal(err)
	}
	if code, _, body := post(t, tw, req(0, nil, l.Checkpoint(5))); code != 409 || body != "4\n" {
		t.Fatalf("old 0 after re-add: %d %q, want 409 \"4\\n\"", code, body)
	}

	for _, bad := range []struct{ origin, vkey string }{
		{"", l.VKey},
		{"a\nb", l.VKey},
		{"example.com/x", "not a key"},
		{"example.com/x", strings.Replace(l.VKey, "+", "-", 1)},
	} {
		if err := tw.AddLog(ctx, bad.origin, bad.vkey); err == nil {
			t.Errorf("AddLog(%q, %q) = nil, want error", bad.origin, bad.vkey)
		}
	}
}

func TestIndexAndMetrics(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/indexed")
	l.Append(1)
	if code, _, _ := post(t, tw, req(0, nil, l.Checkpoint(1))); code != 200 {
		t.Fatal(code)
	}
	get := func(path string) string {
		resp, err := tw.srv.Client().Get(tw.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if idx := get("/"); !strings.Contains(idx, tw.VerifierKey()) || !strings.Contains(idx, "example.com/indexed") {
		t.Errorf("GET / = %q, want the vkey and the log", idx)
	}
	m := get("/metrics")
	for _, want := range []string{
		`attestlog_witness_requests_total{code="200",endpoint="add-checkpoint"} 1`,
		`attestlog_witness_cosignatures_total 1`,
		`attestlog_witness_logs 1`,
		`attestlog_witness_commit_batch_size_count 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSignerVKey(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "witness.example/k")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	// The lead's keygen prints VKeyToCosignatureV1(vkey); ours must agree.
	want, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if s.VKey != want {
		t.Errorf("NewSigner(skey).VKey = %q, want VKeyToCosignatureV1(vkey) = %q", s.VKey, want)
	}
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+x+00000000+AAAA", strings.Replace(skey, "PRIVATE", "PUBLIC", 1)} {
		if _, err := NewSigner(bad); err == nil {
			t.Errorf("NewSigner(%q) = nil error", bad)
		}
	}
}

func TestLoadKeyMode(t *testing.T) {
	dir := t.TempDir()
	path := writeKey(t, dir, "witness.example/m")
	if _, err := LoadKey(path); err != nil {
		t.Fatalf("LoadKey(0600) = %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKey(path); !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadKey(0644) = %v, want ErrKeyFile telling to chmod 600", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("LoadKey(missing) = %v, want ErrKeyFile", err)
	}
}

func TestParseConfig(t *testing.T) {
	l, _ := driver.NewLog("example.com/cfg")
	tests := []struct {
		name    string
		yaml    string
		wantErr string // empty: valid
		check   func(Config) error
	}{
		{"minimal", "key: /k\n", "", func(c Config) error {
			if c.Listen != DefaultListen || c.DB != DefaultDB || c.MaxRequestBytes != DefaultMaxRequestBytes || c.RequestTimeout != DefaultRequestTimeout {
				return fmt.Errorf("defaults not applied: %+v", c)
			}
			return nil
		}},
		{"full", "listen: 127.0.0.1:0\nkey: /k\ndb: /tmp/w.db\nmax_request_bytes: 8192\nrequest_timeout: 3s\nlog_level: debug\nlogs:\n  - origin: example.com/cfg\n    vkey: " + l.VKey + "\n", "", func(c Config) error {
			if len(c.Logs) != 1 || c.RequestTimeout.Seconds() != 3 || c.MaxRequestBytes != 8192 {
				return fmt.Errorf("got %+v", c)
			}
			return nil
		}},
		{"empty", "", "key: required", nil},
		{"unknown key", "key: /k\nlisten_addr: x\n", "listen_addr (line 2): unknown field; did you mean listen?", nil},
		{"unknown log key", "key: /k\nlogs:\n  - origin: a\n    key: b\n", "logs[0].key (line 4): unknown field; did you mean vkey?", nil},
		{"bad listen", "key: /k\nlisten: 7380\n", "listen:", nil},
		{"bad level", "key: /k\nlog_level: loud\n", "log_level:", nil},
		{"small body", "key: /k\nmax_request_bytes: 10\n", "max_request_bytes:", nil},
		{"bad vkey", "key: /k\nlogs:\n  - origin: a\n    vkey: b\n", "logs[0]: vkey", nil},
		{"empty origin", "key: /k\nlogs:\n  - vkey: " + l.VKey + "\n", "logs[0]: origin", nil},
		{"duplicate log", "key: /k\nlogs:\n  - {origin: a, vkey: " + l.VKey + "}\n  - {origin: a, vkey: " + l.VKey + "}\n", "listed twice", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseConfig(%q) = %v, want error containing %q", tt.yaml, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q) = %v", tt.yaml, err)
			}
			if err := tt.check(c); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, dir, "witness.example/o")
	ctx := context.Background()
	if _, err := Open(ctx, Config{DB: filepath.Join(dir, "db")}, nil); err == nil || !strings.Contains(err.Error(), "key: required") {
		t.Errorf("Open without key = %v", err)
	}
	if _, err := Open(ctx, Config{Key: key, DB: filepath.Join(dir, "nodir", "db")}, nil); err == nil {
		t.Errorf("Open with a database in a missing directory = nil error")
	}
	os.Chmod(key, 0o640)
	if _, err := Open(ctx, Config{Key: key, DB: filepath.Join(dir, "db")}, nil); !errors.Is(err, ErrKeyFile) {
		t.Errorf("Open with key mode 0640 = %v, want ErrKeyFile", err)
	}
}

// TestRollbackRace is the race the specification warns about: request A
// (old N → N+1) and request B (old N → N+K) both pass their checks; B is
// persisted and answered; A must then fail (409), not roll the state back
// to N+1.
func TestRollbackRace(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/race")
	ctx := context.Background()
	l.Append(10)
	if _, err := tw.client.AddCheckpoint(ctx, l.Request(0, 10)); err != nil {
		t.Fatal(err)
	}
	l.Append(10)

	aChecked := make(chan struct{})
	bDone := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	tw.setHook(func(string) {
		if first.CompareAndSwap(true, false) { // request A
			close(aChecked)
			<-bDone
		}
	})
	errA := make(chan error, 1)
	go func() {
		_, err := tw.client.AddCheckpoint(ctx, l.Request(10, 11))
		errA <- err
	}()
	<-aChecked
	if _, err := tw.client.AddCheckpoint(ctx, l.Request(10, 20)); err != nil {
		t.Fatalf("request B: %v", err)
	}
	close(bDone)
	var ce *protocol.ConflictError
	if err := <-errA; !errors.As(err, &ce) || ce.Size != 20 {
		t.Fatalf("request A = %v, want ConflictError{20}", err)
	}
	logs, err := tw.Logs(ctx)
	if err != nil || logs[0].Size != 20 || logs[0].RootHash != b64(func() []byte { h := l.Root(20); return h[:] }()) {
		t.Fatalf("state after the race = %+v, %v; want size 20", logs, err)
	}
}

func (w *Witness) setHook(f func(origin string)) { w.testHookBeforeUpdate.Store(&f) }

// BenchmarkAddCheckpoint measures one add-checkpoint round trip (HTTP on
// loopback, verification, cosigning, fsynced SQLite commit), with
// GOMAXPROCS×4 clients on distinct logs so that group commit can batch.
func BenchmarkAddCheckpoint(b *testing.B) {
	tw := newTestWitness(b)
	tw.log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := newTestLog(b, tw, fmt.Sprintf("example.com/bench/%d", next.Add(1)))
		var old uint64
		for pb.Next() {
			size := l.Append(1)
			if _, err := tw.client.AddCheckpoint(ctx, l.Request(old, size)); err != nil {
				b.Error(err)
				return
			}
			old = size
		}
	})
}

func TestSigsumLog(t *testing.T) {
	// The vector of litewitness's README (filippo.io/torchwood v0.6.1,
	// cmd/litewitness/README.md, list-logs after witnessctl add-sigsum-log
	// -key=ffdc2d4d…): the same log, so that a Sigsum log added to both
	// witnesses has one origin and key.
	origin, vkey, err := SigsumLog("ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f")
	const (
		wantOrigin = "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562"
		wantVKey   = wantOrigin + "+5202289b+Af/cLU2Y5BJNP+r3iMDC+av9eWCD0fBJVDfzAux5zxAP"
	)
	if err != nil || origin != wantOrigin || vkey != wantVKey {
		t.Errorf("SigsumLog(ffdc2d4d…) = %q, %q, %v; want %q, %q", origin, vkey, err, wantOrigin, wantVKey)
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin, vkey, err = SigsumLog(hex.EncodeToString(pub))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(pub)
	if want := "sigsum.org/v1/tree/" + hex.EncodeToString(h[:]); origin != want {
		t.Errorf("SigsumLog origin = %q, want %q", origin, want)
	}
	// A checkpoint signed with the Sigsum log key verifies with the vkey.
	skey := "PRIVATE+KEY+" + origin + "+" + strings.SplitN(vkey, "+", 3)[1] + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: origin + "\n1\n" + b64(make([]byte, 32)) + "\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("checkpoint signed by the Sigsum key does not verify with %q: %v", vkey, err)
	}
	for _, bad := range []string{"", "zz", hex.EncodeToString(pub[:31])} {
		if _, _, err := SigsumLog(bad); err == nil {
			t.Errorf("SigsumLog(%q) = nil error", bad)
		}
	}
}
