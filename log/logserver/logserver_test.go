package logserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy"
)

const testOrigin = "test.attestlog/log"

type testLog struct {
	*Log
	url       string
	dir       string
	cfg       *Config
	operator  *statement.Signer
	operator2 *statement.Signer
	auditor   *statement.Signer
	stranger  *statement.Signer
	client    *client.Client
	policy    *policy.Policy // a client policy for this log
	with      []option       // what start passes to Open
	logger    *slog.Logger   // what start passes to Open (nil: none)
}

// newTestLog starts a log with POSIX storage (or the given storage) in a
// temp dir, with no witness quorum, served on 127.0.0.1.
func newTestLog(t testing.TB, storage *Storage) *testLog {
	t.Helper()
	return newTestLogPolicy(t, storage, nil)
}

// newTestLogPolicy is newTestLog with more policy lines, returned by extra
// (which may write files the lines name into dir).
func newTestLogPolicy(t testing.TB, storage *Storage, extra func(dir string) string) *testLog {
	t.Helper()
	return newTestLogWitnessed(t, storage, extra, "quorum none\n")
}

// newTestLogWitnessed is newTestLogPolicy with a witness policy.
func newTestLogWitnessed(t testing.TB, storage *Storage, extra func(dir string) string, witnessPolicy string) *testLog {
	t.Helper()
	return newTestLogFull(t, storage, extra, witnessPolicy, "")
}

// newTestLogWitnessedKey is newTestLogWitnessed with an existing log key.
func newTestLogWitnessedKey(t testing.TB, keyPath, witnessPolicy string) *testLog {
	t.Helper()
	return newTestLogFull(t, nil, nil, witnessPolicy, keyPath)
}

// newTestLogIndexed is newTestLog with index checkpoints on (the
// default of a real log).
func newTestLogIndexed(t testing.TB) *testLog {
	t.Helper()
	return newTestLogOpts(t, nil, nil, "quorum none\n", "", true)
}

func newTestLogFull(t testing.TB, storage *Storage, extra func(dir string) string, witnessPolicy, keyPathOverride string) *testLog {
	t.Helper()
	return newTestLogOpts(t, storage, extra, witnessPolicy, keyPathOverride, false)
}

// newTestLogOpts starts a test log with everything said; its origin is the
// key's name (testOrigin, or that of keyPathOverride's key).
func newTestLogOpts(t testing.TB, storage *Storage, extra func(dir string) string, witnessPolicy, keyPathOverride string, indexCheckpoints bool, with ...option) *testLog {
	t.Helper()
	dir := t.TempDir()
	keyPath := keyPathOverride
	if keyPath == "" {
		keyPath = filepath.Join(dir, "log.key")
		if _, err := keyfile.Generate(keyfile.KindLog, testOrigin, keyPath, ""); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := keyfile.Public(keyfile.KindLog, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	g := struct{ Path, Public string }{keyPath, pub}
	origin, _, _ := strings.Cut(pub, "+")
	tl := &testLog{dir: dir, with: with}
	tl.operator, _ = statement.GenerateSigner(statement.AlgEd25519)
	tl.operator2, _ = statement.GenerateSigner(statement.AlgECDSAP256)
	tl.auditor, _ = statement.GenerateSigner(statement.AlgEd25519)
	tl.stranger, _ = statement.GenerateSigner(statement.AlgEd25519)
	pol := fmt.Sprintf("operator acme %s\noperator beta %s\nauditor aud %s\n",
		tl.operator.Public(), tl.operator2.Public(), tl.auditor.Public())
	if extra != nil {
		pol += extra(dir)
	}
	write(t, filepath.Join(dir, "policy.txt"), pol)
	write(t, filepath.Join(dir, "witnesses.txt"), witnessPolicy)
	if storage == nil {
		storage = &Storage{POSIX: &POSIXStorage{Dir: filepath.Join(dir, "tiles")}}
	}
	tl.cfg = &Config{
		Origin: origin, Listen: "127.0.0.1:0", Key: g.Path, Storage: *storage,
		Index: filepath.Join(dir, "index.db"), Policy: filepath.Join(dir, "policy.txt"),
		WitnessPolicy: filepath.Join(dir, "witnesses.txt"),
		BatchMaxAge:   10 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond,
		// Tests that count entries run without index checkpoints between
		// them; newTestLogIndexed turns them on.
		IndexCheckpoints: &indexCheckpoints,
	}
	if storage.MySQL != nil {
		tl.cfg.CheckpointInterval = time.Second
	}
	if err := tl.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tl.start(t)
	tl.policy, err = policy.Parse([]byte(fmt.Sprintf("log %s\n%s%s", g.Public, witnessPolicy, pol)))
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *testLog) start(t testing.TB) {
	t.Helper()
	l, err := Open(t.Context(), tl.cfg, tl.logger, tl.with...)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	srv := httptest.NewServer(l.Handler())
	tl.Log, tl.url = l, srv.URL
	tl.client, _ = client.New(srv.URL, nil)
	t.Cleanup(func() {
		srv.Close()
		l.Close(context.Background())
	})
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// releaseN numbers the test releases, so that each is unique.
var releaseN atomic.Int64

func release(t *testing.T, s *statement.Signer, measurement string) []byte {
	t.Helper()
	n := releaseN.Add(1)
	subj := []statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", n)}}}
	r := &statement.Release{
		Version: fmt.Sprintf("1.0.%d", n), Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Platform:     statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement}},
		Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("a", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	}
	p, err := statement.EncodeRelease(subj, r)
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(p, s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func measurement(i int) string { return fmt.Sprintf("%096x", 1000+i) }

func (tl *testLog) post(t *testing.T, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(tl.url+"/add", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (tl *testLog) add(t *testing.T, body []byte) uint64 {
	t.Helper()
	r, err := tl.client.Add(t.Context(), body)
	if err != nil {
		t.Fatalf("Add = %v", err)
	}
	return r.Index
}

func (tl *testLog) size(t *testing.T) uint64 {
	t.Helper()
	n, err := tl.reader.NextIndex(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyProof checks a proof as a client would: checkpoint signature under
// the client policy, inclusion of the entry.
func (tl *testLog) verifyProof(t *testing.T, p *tlogproof.Proof, want []byte) {
	t.Helper()
	cp, err := tl.policy.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		t.Fatalf("VerifyCheckpoint = %v", err)
	}
	if err := p.VerifyInclusion(p.Extra, cp.N, cp.Hash); err != nil {
		t.Fatalf("VerifyInclusion = %v", err)
	}
	if want != nil {
		pw, err := statement.ParseEntry(want)
		if err != nil {
			t.Fatalf("the wanted entry does not parse: %v", err)
		}
		pe, err := statement.ParseEntry(p.Extra)
		if err != nil {
			t.Fatalf("the proven entry does not parse: %v", err)
		}
		if pw.PayloadHash != pe.PayloadHash {
			t.Fatalf("proof is for another statement")
		}
	}
}

func TestAdmission(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	rel := release(t, tl.operator, measurement(1))
	i := tl.add(t, rel)

	// A resubmission is a duplicate, before and after indexing.
	r, err := tl.client.Add(ctx, rel)
	if err != nil || r.Index != i || !r.Duplicate {
		t.Fatalf("resubmission = %+v, %v; want duplicate of %d", r, err, i)
	}
	if err := tl.waitIndexed(ctx, i); err != nil {
		t.Fatal(err)
	}
	// The same statement signed again (ECDSA: a different signature) is a
	// duplicate too.
	p, _ := statement.Parse(rel)
	resigned, _ := statement.Sign(p.Envelope.Payload, tl.operator)
	if r, err := tl.client.Add(ctx, resigned); err != nil || r.Index != i || !r.Duplicate {
		t.Fatalf("re-signed resubmission = %+v, %v; want duplicate of %d", r, err, i)
	}
	ecdsaRel := release(t, tl.operator2, measurement(2))
	j := tl.add(t, ecdsaRel)
	pe, _ := statement.Parse(ecdsaRel)
	resignedECDSA, _ := statement.Sign(pe.Envelope.Payload, tl.operator2)
	if bytes.Equal(resignedECDSA, ecdsaRel) {
		t.Fatal("ECDSA signatures are expected to differ")
	}
	if r, err := tl.client.Add(ctx, resignedECDSA); err != nil || r.Index != j || !r.Duplicate {
		t.Fatalf("ECDSA re-signed = %+v, %v; want duplicate of %d", r, err, j)
	}
	if err := tl.waitIndexed(ctx, j); err != nil {
		t.Fatal(err)
	}

	ref := statement.RefOf(i, mustEntry(t, rel))
	now := time.Now().UTC().Truncate(time.Second)
	repro := func(s *statement.Signer, ref statement.EntryRef) []byte {
		b, err := statement.EncodeReproduction(ref, &statement.Reproduction{
			Outcome: statement.OutcomeMatch, Time: now,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(1)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := statement.Sign(b, s)
		return e
	}
	revoke := func(s *statement.Signer, ref statement.EntryRef) []byte {
		b, _ := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "CVE-2026-1234", Time: now})
		e, _ := statement.Sign(b, s)
		return e
	}
	badRef := ref
	badRef.SHA256 = strings.Repeat("0", 64)
	missing := statement.EntryRef{Index: 99, SHA256: ref.SHA256}
	for _, tc := range []struct {
		name string
		body []byte
		code int
		msg  string
	}{
		{"reproduction by an operator", repro(tl.operator, ref), 403, "auditor"},
		{"reproduction by the auditor", repro(tl.auditor, ref), 200, ""},
		{"reproduction of a wrong digest", repro(tl.auditor, badRef), 400, "SHA-256"},
		{"reproduction of a missing entry", repro(tl.auditor, missing), 400, "no entry 99"},
		{"revocation by another operator", revoke(tl.operator2, ref), 403, "an operator that signed release"},
		{"revocation by a stranger", revoke(tl.stranger, ref), 403, ""},
		{"release by a stranger", release(t, tl.stranger, measurement(3)), 403, "operator"},
		{"revocation by the publisher", revoke(tl.operator, ref), 200, ""},
	} {
		code, msg := tl.post(t, tc.body)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: POST /add = %d %q, want %d with %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	// The index links the release to its reproduction and revocation.
	if err := tl.waitIndexed(ctx, tl.size(t)-1); err != nil {
		t.Fatal(err)
	}
	info, err := tl.client.Entry(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Reproductions) != 1 || len(info.Revocations) != 1 || info.Signer != "acme" {
		t.Errorf("entry %d = %+v, want one reproduction, one revocation, signer acme", i, info)
	}
}

func mustEntry(t *testing.T, b []byte) []byte {
	p, err := statement.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := p.Entry()
	return e
}

func TestBadInputChangesNothing(t *testing.T) {
	tl := newTestLog(t, nil)
	good := release(t, tl.operator, measurement(1))
	tl.add(t, good)
	before := tl.size(t)
	// A statement not yet logged under a broken signature (a logged one
	// is answered as its duplicate before any signature is checked).
	p, _ := statement.Parse(release(t, tl.operator, measurement(3)))
	badSig := bytes.Clone(p.Envelope.Signatures[0].Sig)
	badSig[3] ^= 0x40
	p.Envelope.Signatures[0].Sig = badSig
	wrongSig, _ := p.Envelope.Marshal()
	for _, tc := range []struct {
		name string
		body []byte
		code int
	}{
		{"truncated", good[:len(good)-10], 400},
		{"oversized", bytes.Repeat([]byte("x"), statement.MaxEntrySize+10), 413},
		{"wrong signature", wrongSig, 403},
		{"unknown operator", release(t, tl.stranger, measurement(2)), 403},
		{"garbage JSON", []byte(`{"payloadType": [1,2,3]`), 400},
		{"empty", nil, 400},
		{"bad measurement", bytes.Replace(good, []byte("payload"), []byte("payl0ad"), 1), 400},
	} {
		code, msg := tl.post(t, tc.body)
		if code != tc.code {
			t.Errorf("%s: POST /add = %d %q, want %d", tc.name, code, msg, tc.code)
		}
		if code/100 == 4 && strings.TrimSpace(msg) == "" {
			t.Errorf("%s: %d with an empty message", tc.name, code)
		}
	}
	time.Sleep(3 * tl.cfg.BatchMaxAge)
	if after := tl.size(t); after != before {
		t.Errorf("tree size %d → %d after rejected input", before, after)
	}
	// Wrong methods and paths.
	resp, _ := http.Get(tl.url + "/add")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /add = %d, want 405", resp.StatusCode)
	}
}

func TestProofsAndLookups(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	var entries [][]byte
	for i := range 5 {
		e := release(t, tl.operator, measurement(i))
		entries = append(entries, e)
		tl.add(t, e)
	}
	for i, e := range entries {
		p, raw, err := tl.client.WaitProof(ctx, uint64(i))
		if err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
		if !bytes.HasPrefix(raw, []byte(tlogproof.Header+"\n")) {
			t.Errorf("proof %d does not start with the tlog-proof header", i)
		}
		tl.verifyProof(t, p, e)
		// A proof for another entry must not verify as this one.
		if i > 0 {
			cp, _ := tl.policy.VerifyCheckpoint(p.Checkpoint)
			if err := p.VerifyInclusion(mustEntry(t, entries[i-1]), cp.N, cp.Hash); err == nil {
				t.Errorf("proof %d verifies entry %d", i, i-1)
			}
		}
	}
	if err := tl.waitIndexed(ctx, 4); err != nil {
		t.Fatal(err)
	}
	p, _, err := tl.client.ProofByMeasurement(ctx, measurement(3))
	if err != nil || p.Index != 3 {
		t.Fatalf("ProofByMeasurement(3) = %v, %v; want index 3", p, err)
	}
	tl.verifyProof(t, p, entries[3])
	if _, _, err := tl.client.ProofByMeasurement(ctx, measurement(42)); !client.IsNotFound(err) || !strings.Contains(err.Error(), "no release with measurement") {
		t.Errorf("ProofByMeasurement(never logged) = %v, want 404 with a message", err)
	}
	lr, err := tl.client.Lookup(ctx, measurement(2))
	if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != 2 {
		t.Errorf("Lookup(measurement 2) = %+v, %v", lr, err)
	}
	lr, err = tl.client.Lookup(ctx, fmt.Sprintf("%064x", releaseN.Load()))
	if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != 4 {
		t.Errorf("Lookup(artifact digest) = %+v, %v", lr, err)
	}
	// The views the web explorer uses.
	recent, err := tl.Recent(ctx, 3, 0)
	if err != nil || len(recent) != 3 || recent[0].Index != 4 || recent[2].Index != 2 {
		t.Errorf("Recent(3) = %+v, %v; want entries 4, 3, 2", recent, err)
	}
	st, raw, err := tl.Statement(ctx, 2)
	if err != nil || st.Release.Measurements.Primary() != measurement(2) || !bytes.Equal(raw, mustEntry(t, entries[2])) {
		t.Errorf("Statement(2) = %v, %v", st, err)
	}
	if _, _, err := tl.Statement(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Statement(99) = %v, want ErrNotFound", err)
	}
	waitForCond(t, func() bool {
		cps, err := tl.Checkpoints(ctx, 10)
		return err == nil && len(cps) > 0 && cps[0].Size == 5
	}, "a recorded checkpoint of size 5")
	for _, q := range []string{"/lookup?measurement=xyz", "/proof?index=-1", "/proof", "/lookup"} {
		resp, _ := http.Get(tl.url + q)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET %s = %d, want 400", q, resp.StatusCode)
		}
	}
	resp, _ := http.Get(tl.url + "/proof?index=1000")
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Retry-After") != "" {
		t.Errorf("GET /proof?index=1000 = %d (Retry-After %q), want 404 without Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestIndependentClient reads the log through the tlog-tiles API with
// torchwood's tile client and checks every entry and its proof.
func TestIndependentClient(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	var entries [][]byte
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 75 {
				e := release(t, tl.operator, measurement(w*1000+i))
				r, err := tl.client.Add(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for uint64(len(entries)) <= r.Index {
					entries = append(entries, nil)
				}
				entries[r.Index] = mustEntry(t, e)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n := len(entries)
	if _, _, err := tl.client.WaitProof(ctx, uint64(n-1)); err != nil {
		t.Fatal(err)
	}
	checkWithTorchwood(t, tl.url, tl.policy, entries)

	// Content types and caching of the read API.
	for path, want := range map[string][2]string{
		"/checkpoint":            {"text/plain; charset=utf-8", "no-cache"},
		"/tile/0/000":            {"application/octet-stream", "public, max-age=31536000, immutable"},
		"/tile/entries/000":      {"application/octet-stream", "public, max-age=31536000, immutable"},
		"/tile/entries/001.p/44": {"application/octet-stream", "public, max-age=60"},
		"/tile/0/x999/999":       {"text/plain; charset=utf-8", ""},
		"/tile/entries/notatile": {"text/plain; charset=utf-8", ""},
	} {
		resp, err := http.Get(tl.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := [2]string{resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control")}; got != want {
			t.Errorf("GET %s: Content-Type, Cache-Control = %q, want %q", path, got, want)
		}
		if wantOK := want[1] != ""; (resp.StatusCode == 200) != wantOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
}

// checkWithTorchwood verifies the log at url holds exactly entries, using
// filippo.io/torchwood's tlog client (not our code) for tiles and proofs.
func checkWithTorchwood(t *testing.T, url string, pol *policy.Policy, entries [][]byte) {
	t.Helper()
	if _, err := tlogcheck.Log(t.Context(), url, pol, entries); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":  {"origin: a\ncolour: red\n", "colour"},
		"no storage":   {"origin: a\nlisten: x\nkey: k\nindex: i\npolicy: p\nwitness_policy: w\n", "storage"},
		"two storages": {"origin: a\nlisten: x\nkey: k\nindex: i\npolicy: p\nwitness_policy: w\nstorage: {posix: {dir: d}, mysql: {dsn: x}}\n", "posix alone"},
		"missing":      {"storage: {posix: {dir: d}}\n", "origin is required"},
		"index map":    {"origin: a\nlisten: x\nkey: k\nindex: i\npolicy: p\nwitness_policy: w\nstorage: {posix: {dir: d}}\nindex_map: disk\n", `index_map: "disk" is neither memory nor file`},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "log.yaml")
		write(t, p, tc.yaml)
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadConfig = %v, want an error with %q", name, err, tc.want)
		}
	}
}

func TestReindex(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	for i := range 10 {
		tl.add(t, release(t, tl.operator, measurement(i)))
	}
	if err := tl.waitIndexed(ctx, 9); err != nil {
		t.Fatal(err)
	}
	n, err := tl.Reindex(ctx)
	if err != nil || n != 10 {
		t.Fatalf("Reindex = %d, %v; want 10", n, err)
	}
	lr, err := tl.client.Lookup(ctx, measurement(7))
	if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != 7 {
		t.Errorf("after reindex, Lookup(7) = %+v, %v", lr, err)
	}
}

func waitForCond(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPushback: when more entries wait for integration than the pushback
// setting allows, POST /add answers 503 with Retry-After, and the client
// retries until it gets an index.
func TestPushback(t *testing.T) {
	tl := newTestLog(t, nil)
	tl.Log.Close(t.Context())
	tl.cfg.Pushback = 1
	tl.cfg.BatchMaxAge = 500 * time.Millisecond
	tl.start(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var retryAfter []string
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(tl.url+"/add", "application/json", bytes.NewReader(release(t, tl.operator, measurement(900+i))))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 {
				retryAfter = append(retryAfter, resp.Header.Get("Retry-After"))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[503] == 0 || codes[200] == 0 || codes[200]+codes[503] != 16 {
		t.Fatalf("status codes %v, want some 200 and some 503", codes)
	}
	for _, ra := range retryAfter {
		if ra == "" {
			t.Error("503 without Retry-After")
		}
	}
	// The client's Add retries through pushback.
	if _, err := tl.client.Add(t.Context(), release(t, tl.operator, measurement(999))); err != nil {
		t.Errorf("client.Add under pushback = %v", err)
	}
}

// TestSignerIsTheKeyThatVerifies: one operator signs its release and adds
// a junk signature under the other operator's key ID (sorted first, so a
// reader that trusts claimed key IDs meets it first). The log credits the
// attacker (whose signature verifies), the attacker may revoke its own
// release, and the victim may not.
func TestSignerIsTheKeyThatVerifies(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := context.Background()
	attacker, victim, attackerName := tl.operator2, tl.operator, "beta"
	if attacker.Public().ID() < victim.Public().ID() {
		attacker, victim, attackerName = tl.operator, tl.operator2, "acme"
	}
	b := release(t, attacker, measurement(7))
	p, err := statement.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	p.Envelope.Signatures = append(p.Envelope.Signatures, statement.Signature{KeyID: victim.Public().ID(), Sig: bytes.Repeat([]byte{1}, 64)})
	forged, err := p.Envelope.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if fp, _ := statement.Parse(forged); fp == nil || fp.Envelope.Signatures[0].KeyID != victim.Public().ID() {
		t.Fatal("the junk signature does not come first")
	}
	i := tl.add(t, forged)
	if err := tl.waitIndexed(ctx, i); err != nil {
		t.Fatal(err)
	}
	info, err := tl.client.Entry(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	if info.Signer != attackerName {
		t.Errorf("entry %d is credited to %q, want %s (the key whose signature verifies)", i, info.Signer, attackerName)
	}
	entry := mustEntry(t, forged)
	ref := statement.RefOf(i, entry)
	revoke := func(s *statement.Signer) []byte {
		r, _ := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "test", Time: time.Now().UTC().Truncate(time.Second)})
		e, _ := statement.Sign(r, s)
		return e
	}
	if code, msg := tl.post(t, revoke(victim)); code != 403 {
		t.Errorf("the victim revoking the attacker's release = %d %q, want 403", code, msg)
	}
	if code, msg := tl.post(t, revoke(attacker)); code != 200 {
		t.Errorf("the attacker revoking its own release = %d %q, want 200", code, msg)
	}
}
