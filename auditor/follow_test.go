package auditor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/attestlog/attestlog/internal/tlogtest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/auditor/misbehaviour"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
)

// fakeLog is the tests' in-memory log (internal/tlogtest) served over its
// real protocol (c2sp.org/tlog-tiles and a signed checkpoint), with a
// witness's and a peer auditor's checkpoint endpoints beside it. Tests
// make it lie.
type fakeLog struct {
	*tlogtest.Log
	t  *testing.T
	mu sync.Mutex // guards what is served
	// serve is the checkpoint GET /checkpoint answers; nil means the
	// latest, cosigned by the witness.
	serve []byte
	// tilesOf, when set, is the log whose tiles are served (a fork).
	tilesOf *fakeLog
	// witnessCP and peerCP are what the witness and the peer say.
	witnessCP, peerCP []byte
	// lookup is what GET /lookup answers (the log's unauthenticated
	// word); nil is 404.
	lookup []byte
}

func newFakeLog(t *testing.T) *fakeLog {
	return &fakeLog{Log: tlogtest.New(t, "log.example/fake", 1), t: t}
}

// fork returns a log with the same key and the first n entries of f.
func (f *fakeLog) fork(n int) *fakeLog { return &fakeLog{Log: f.Fork(n), t: f.t} }

func (f *fakeLog) add(entries ...[]byte) {
	for _, e := range entries {
		f.Add(e)
	}
}

// checkpoint signs the tree of the first n entries, cosigned by the
// witness when cosigned is set.
func (f *fakeLog) checkpoint(n int, cosigned bool) []byte {
	k := 0
	if cosigned {
		k = 1
	}
	return f.Checkpoint(f.TreeAt(int64(n)), k)
}

func (f *fakeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	serve, tiles, wcp, pcp := f.serve, f.tilesOf, f.witnessCP, f.peerCP
	f.mu.Unlock()
	n := len(f.Entries())
	if tiles == nil {
		tiles = f
	}
	oh := sha256.Sum256([]byte(f.Origin))
	switch p := r.URL.Path; {
	case p == "/checkpoint":
		if serve == nil {
			serve = f.checkpoint(n, true)
		}
		w.Write(serve)
	case p == "/witness/"+hex.EncodeToString(oh[:])+"/checkpoint":
		if wcp == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(wcp)
	case p == "/peer/logs/"+hex.EncodeToString(oh[:])+"/checkpoint":
		if pcp == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(pcp)
	case strings.HasPrefix(p, "/tile/"):
		tiles.serveTile(w, r)
	case p == "/add" && r.Method == http.MethodPost:
		// Submission, deduplicated as the log does: the same bytes
		// again answer the index they have.
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, e := range f.Entries() {
			if bytes.Equal(e, b) {
				fmt.Fprintf(w, `{"index":%d,"duplicate":true}`, i)
				return
			}
		}
		fmt.Fprintf(w, `{"index":%d}`, f.Add(b))
	case p == "/lookup":
		f.mu.Lock()
		lk := f.lookup
		f.mu.Unlock()
		if lk == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(lk)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeLog) serveTile(w http.ResponseWriter, r *http.Request) {
	entries := f.Entries()
	t, err := torchwood.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if t.L == -1 {
		start, end := t.N*torchwood.TileWidth, t.N*torchwood.TileWidth+int64(t.W)
		if end > int64(len(entries)) {
			http.NotFound(w, r)
			return
		}
		var b []byte
		for _, e := range entries[start:end] {
			if b, err = torchwood.AppendTileEntry(b, e); err != nil {
				f.t.Error(err)
			}
		}
		w.Write(b)
		return
	}
	data, err := tlog.ReadTileData(t, f)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

// auditorFixture is an auditor following a fakeLog.
type auditorFixture struct {
	log  *fakeLog
	srv  *httptest.Server
	aud  *Auditor
	op   *statement.Signer
	op2  *statement.Signer
	auth *statement.Signer // an authority of the policy
	dir  string
	seen map[string]bool
	// config is the auditor's configuration (YAML).
	config []byte
}

func newAuditorFixture(t *testing.T, quorum string) *auditorFixture {
	t.Helper()
	return newAuditorFixtureDeploy(t, quorum, nil)
}

// newAuditorFixtureDeploy is newAuditorFixture watching enc as deployment
// "d" (its demo root trusted by the policy) when enc is not nil.
func newAuditorFixtureDeploy(t *testing.T, quorum string, enc *fakeenclave.Enclave) *auditorFixture {
	t.Helper()
	if enc == nil {
		return newAuditorFixtureWatch(t, quorum, nil, "")
	}
	esrv := httptest.NewServer(evidence.Handler(enc, nil))
	t.Cleanup(esrv.Close)
	return newAuditorFixtureWatch(t, quorum, enc, fmt.Sprintf("{name: d, url: %q, allow_private: true}", esrv.URL))
}

// newAuditorFixtureWatch is newAuditorFixture watching the deployment dep
// (a YAML flow mapping; none when "") whose evidence is signed under
// enc's demo roots, which the policy trusts.
func newAuditorFixtureWatch(t *testing.T, quorum string, enc *fakeenclave.Enclave, dep string) *auditorFixture {
	t.Helper()
	fx := &auditorFixture{log: newFakeLog(t), dir: t.TempDir(), seen: map[string]bool{}}
	fx.srv = httptest.NewServer(fx.log)
	t.Cleanup(fx.srv.Close)
	var err error
	if fx.op, err = statement.GenerateSigner(statement.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	if fx.op2, err = statement.GenerateSigner(statement.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	if fx.auth, err = statement.GenerateSigner(statement.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string {
		p := filepath.Join(fx.dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pol := fmt.Sprintf("operator ops %s\noperator other-ops %s\nauthority sec %s\n", fx.op.Public(), fx.op2.Public(), fx.auth.Public())
	deploy := ""
	if enc != nil {
		write("root.pem", string(enc.RootPEM()))
		pol += "trust-root " + statement.HardwarePlatform(enc.Platform()) + " root.pem\n"
		if g := enc.GPURootPEM(); g != nil {
			write("gpu-root.pem", string(g))
			pol += "trust-root gpu gpu-root.pem\ngpu nvidia count=1 mode=cc rims=optional\n"
		}
	}
	if dep != "" {
		deploy = "deployments:\n  - " + dep + "\n"
	}
	write("policy.txt", pol)
	write("witnesses.txt", fmt.Sprintf("witness w %s %s/witness\nquorum %s\n", fx.log.WVKeys[0], fx.srv.URL, quorum))
	fx.config = []byte(fmt.Sprintf("db: %s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: %s\n    witness_policy: %s\n    peers: [%s/peer]\nrebuild: {enabled: false}\n%s",
		filepath.Join(fx.dir, "a.db"), fx.log.VKey, fx.srv.URL, filepath.Join(fx.dir, "policy.txt"), filepath.Join(fx.dir, "witnesses.txt"), fx.srv.URL, deploy))
	fx.open(t)
	return fx
}

// open opens the fixture's auditor (again, after a restart: same
// configuration, same database) and closes it when the test ends.
func (fx *auditorFixture) open(t *testing.T, opts ...Option) {
	t.Helper()
	cfg, err := ParseConfig(fx.config)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(t.Context(), cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	fx.aud = a
	t.Cleanup(func() { a.Close() })
}

func (fx *auditorFixture) release(t *testing.T, signer *statement.Signer, version string) []byte {
	t.Helper()
	rel := &statement.Release{
		Version: version, Time: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("ab", 48), GuestPolicy: "0000000000030000"}},
		Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c0", 20)},
		Recipe:       statement.Recipe{Argv: []string{"make"}, Outputs: []string{"disk.img"}},
	}
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}, rel)
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(p, signer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (fx *auditorFixture) revocation(t *testing.T, signer *statement.Signer, index uint64, entry []byte) []byte {
	t.Helper()
	p, err := statement.EncodeRevocation(statement.RefOf(index, entry), &statement.Revocation{Reason: "test", Time: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(p, signer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runOnce runs one audit pass and returns the alerts raised by it.
func (fx *auditorFixture) runOnce(t *testing.T) (error, []Alert) {
	t.Helper()
	err := fx.aud.RunOnce(context.Background())
	all, aerr := fx.aud.Alerts(context.Background())
	if aerr != nil {
		t.Fatal(aerr)
	}
	var fresh []Alert
	for _, a := range all {
		if !fx.seen[a.Key] {
			fx.seen[a.Key] = true
			fresh = append(fresh, a)
		}
	}
	return err, fresh
}

func (fx *auditorFixture) treeSize(t *testing.T) (size, verified int64) {
	t.Helper()
	st, err := fx.aud.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Logs[0].TreeSize, st.Logs[0].Verified
}

func kinds(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

func wantKinds(t *testing.T, step string, as []Alert, want ...string) {
	t.Helper()
	if got := strings.Join(kinds(as), ","); got != strings.Join(want, ",") {
		t.Errorf("%s: alerts %q, want %q", step, got, strings.Join(want, ","))
		for _, a := range as {
			t.Logf("  %s: %s", a.Kind, a.Summary)
		}
	}
}

// TestFollowHonestLog: the first checkpoint is trusted on first use,
// entries are verified up to it, and growth is followed.
func TestFollowHonestLog(t *testing.T) {
	fx := newAuditorFixture(t, "w")
	fx.log.add(fx.release(t, fx.op, "1.0.0"), fx.release(t, fx.op, "1.0.1"))
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "first pass", alerts)
	if size, verified := fx.treeSize(t); size != 2 || verified != 2 {
		t.Errorf("followed %d, verified %d; want 2, 2", size, verified)
	}
	for i := range 300 { // past one tile
		fx.log.add(fx.release(t, fx.op, fmt.Sprintf("2.0.%d", i)))
	}
	if err, alerts = fx.runOnce(t); err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "after growth", alerts)
	if size, verified := fx.treeSize(t); size != 302 || verified != 302 {
		t.Errorf("followed %d, verified %d; want 302, 302", size, verified)
	}
}

// TestFollowMisbehaviour pins each way a log, its witness or a peer can
// disagree with the tree followed so far, and what the auditor does.
func TestFollowMisbehaviour(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lie is applied after the auditor followed 4 honest entries.
		lie        func(t *testing.T, fx *auditorFixture)
		wantAlerts []string
		wantErr    string
		wantSize   int64
	}{
		{
			name: "log forks (split view served to the auditor)",
			lie: func(t *testing.T, fx *auditorFixture) {
				g := fx.log.fork(2)
				g.add(fx.release(t, fx.op, "evil-1"), fx.release(t, fx.op, "evil-2"), fx.release(t, fx.op, "evil-3"))
				fx.log.mu.Lock()
				fx.log.serve, fx.log.tilesOf = g.checkpoint(5, true), g
				fx.log.mu.Unlock()
			},
			wantAlerts: []string{AlertLogInconsistent},
			wantSize:   4,
		},
		{
			name: "witness shows a fork of the same size",
			lie: func(t *testing.T, fx *auditorFixture) {
				g := fx.log.fork(3)
				g.add(fx.release(t, fx.op, "evil"))
				fx.log.mu.Lock()
				fx.log.witnessCP = g.checkpoint(4, true)
				fx.log.mu.Unlock()
			},
			wantAlerts: []string{AlertLogInconsistent},
			wantSize:   4,
		},
		{
			name: "peer saw an older, inconsistent tree",
			lie: func(t *testing.T, fx *auditorFixture) {
				g := fx.log.fork(1)
				g.add(fx.release(t, fx.op, "evil"))
				fx.log.mu.Lock()
				fx.log.peerCP = g.checkpoint(2, false)
				fx.log.mu.Unlock()
			},
			wantAlerts: []string{AlertLogInconsistent},
			wantSize:   4,
		},
		{
			name: "peer saw an older, consistent tree",
			lie: func(t *testing.T, fx *auditorFixture) {
				fx.log.mu.Lock()
				fx.log.peerCP = fx.log.checkpoint(2, false)
				fx.log.mu.Unlock()
			},
			wantSize: 4,
		},
		{
			name: "log rolls back to an older checkpoint",
			lie: func(t *testing.T, fx *auditorFixture) {
				fx.log.mu.Lock()
				fx.log.serve = fx.log.checkpoint(3, true)
				fx.log.mu.Unlock()
			},
			wantSize: 4, // consistent, so no alert, and the tree does not go back
		},
		{
			name: "log publishes a checkpoint without the quorum",
			lie: func(t *testing.T, fx *auditorFixture) {
				fx.log.add(fx.release(t, fx.op, "1.1.0"))
				fx.log.mu.Lock()
				fx.log.serve = fx.log.checkpoint(5, false)
				fx.log.mu.Unlock()
			},
			wantAlerts: []string{AlertQuorumMissing},
			wantSize:   5,
		},
		{
			name: "checkpoint signed by another key",
			lie: func(t *testing.T, fx *auditorFixture) {
				other := newFakeLog(t)
				other.add(fx.log.fork(4).Entries()...)
				other.add(fx.release(t, fx.op, "evil"))
				fx.log.mu.Lock()
				fx.log.serve = other.checkpoint(5, true)
				fx.log.mu.Unlock()
			},
			wantErr:  "checkpoint",
			wantSize: 4,
		},
		{
			name: "witness's checkpoint is forged (no alert: nobody signed it)",
			lie: func(t *testing.T, fx *auditorFixture) {
				other := newFakeLog(t)
				other.add(fx.release(t, fx.op, "evil"))
				fx.log.mu.Lock()
				fx.log.witnessCP = other.checkpoint(1, true)
				fx.log.mu.Unlock()
			},
			wantSize: 4,
		},
		{
			name: "witness is ahead: checked once the log catches up",
			lie: func(t *testing.T, fx *auditorFixture) {
				fx.log.add(fx.release(t, fx.op, "1.2.0"), fx.release(t, fx.op, "1.2.1"))
				fx.log.mu.Lock()
				fx.log.witnessCP = fx.log.checkpoint(6, true)
				fx.log.serve = fx.log.checkpoint(4, true)
				fx.log.mu.Unlock()
			},
			wantSize: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newAuditorFixture(t, "w")
			for i := range 4 {
				fx.log.add(fx.release(t, fx.op, fmt.Sprintf("1.0.%d", i)))
			}
			if err, alerts := fx.runOnce(t); err != nil || len(alerts) != 0 {
				t.Fatalf("honest pass: %v, alerts %q", err, kinds(alerts))
			}
			tc.lie(t, fx)
			err, alerts := fx.runOnce(t)
			if tc.wantErr == "" && err != nil {
				t.Errorf("RunOnce = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("RunOnce = %v, want an error containing %q", err, tc.wantErr)
			}
			wantKinds(t, "after the lie", alerts, tc.wantAlerts...)
			if size, _ := fx.treeSize(t); size != tc.wantSize {
				t.Errorf("followed tree %d, want %d", size, tc.wantSize)
			}
			for _, a := range alerts {
				if a.Kind != AlertLogInconsistent {
					continue
				}
				// The evidence stands on its own: anyone can check it.
				var ma MisbehaviourAlert
				if err := json.Unmarshal(a.Evidence, &ma); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(ma.File)
				if err != nil {
					t.Fatal(err)
				}
				ev, err := misbehaviour.Parse(b)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ev.Verify(); err != nil {
					t.Errorf("the evidence file does not verify: %v", err)
				}
			}
			// A second pass raises nothing new (alerts dedup by key).
			if _, again := fx.runOnce(t); len(again) != 0 {
				t.Errorf("second pass raised %q again", kinds(again))
			}
		})
	}
}

// TestFollowEntries: each entry is judged on its own and against the
// entries before it; an invalid one raises one invalid-entry alert and
// does not stop the rest.
func TestFollowEntries(t *testing.T) {
	fx := newAuditorFixture(t, "w")
	stranger, err := statement.GenerateSigner(statement.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	rel := fx.release(t, fx.op, "1.0.0")
	rel2 := fx.release(t, fx.op2, "1.0.1")
	entries := []struct {
		entry   []byte
		invalid string // in the alert's summary; "" = valid
	}{
		{rel, ""},  // 0
		{rel2, ""}, // 1
		{[]byte("not a statement"), "is invalid"},                                           // 2
		{fx.release(t, stranger, "9.9.9"), "not signed by an operator key"},                 // 3
		{fx.revocation(t, fx.op2, 0, rel), "not by the release's operator or an authority"}, // 4: another operator
		{fx.revocation(t, fx.op, 1, rel), "SHA-256"},                                        // 5: names entry 1 with entry 0's hash
		{fx.revocation(t, fx.op, 7, rel), "not before it"},                                  // 6: names a later entry
		{fx.revocation(t, fx.op, 2, rel), "not a valid release"},                            // 7: names the garbage
		{fx.revocation(t, fx.op, 0, rel), ""},                                               // 8: the release's own operator
		{fx.revocation(t, fx.op2, 1, rel2), ""},                                             // 9
	}
	for _, e := range entries {
		fx.log.add(e.entry)
	}
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	byIndex := map[int]Alert{}
	for _, a := range alerts {
		if a.Kind != AlertInvalidEntry {
			t.Errorf("unexpected %s alert: %s", a.Kind, a.Summary)
			continue
		}
		var i int
		if _, err := fmt.Sscanf(a.Summary, "entry %d", &i); err != nil {
			t.Fatalf("alert summary %q does not start with the entry index", a.Summary)
		}
		byIndex[i] = a
	}
	for i, e := range entries {
		a, raised := byIndex[i]
		switch {
		case e.invalid == "" && raised:
			t.Errorf("entry %d is valid but raised: %s", i, a.Summary)
		case e.invalid != "" && !raised:
			t.Errorf("entry %d is invalid (%s) but raised nothing", i, e.invalid)
		case e.invalid != "" && !strings.Contains(a.Summary, e.invalid):
			t.Errorf("entry %d: alert %q, want it to say %q", i, a.Summary, e.invalid)
		}
	}
	if size, verified := fx.treeSize(t); size != int64(len(entries)) || verified != int64(len(entries)) {
		t.Errorf("followed %d, verified %d; want %d", size, verified, len(entries))
	}
	// Only the valid revocations revoke.
	for _, c := range []struct {
		index int64
		by    string
	}{{0, "8"}, {1, "9"}} {
		r, err := fx.aud.st.Release(context.Background(), fx.log.Origin, c.index)
		if err != nil {
			t.Fatal(err)
		}
		if r.Revoked != c.by {
			t.Errorf("release %d revoked by %q, want by entry %s", c.index, r.Revoked, c.by)
		}
	}
}

// TestFollowIndexCheckpoints: the auditor replays the log's verifiable
// index; an index checkpoint with the right root passes, one with another
// root raises index-inconsistent with evidence that verifies on its own,
// and one not signed by the log is an invalid entry.
func TestFollowIndexCheckpoints(t *testing.T) {
	fx := newAuditorFixture(t, "w")
	for i := range 3 {
		fx.log.add(fx.release(t, fx.op, fmt.Sprintf("1.0.%d", i)))
	}
	b := vindex.NewBuilder()
	for i, e := range fx.log.fork(3).Entries() {
		b.Add(uint64(i), e)
	}
	good, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: fx.log.Origin, Size: 3, Root: b.Root(), Time: time.Now()}, fx.log.Signer)
	if err != nil {
		t.Fatal(err)
	}
	fx.log.add(good)
	if err, alerts := fx.runOnce(t); err != nil || len(alerts) != 0 {
		t.Fatalf("a correct index checkpoint: %v, alerts %q", err, kinds(alerts))
	}
	// A root that hides entry 1 (as if a revocation were left out).
	lying := vindex.NewBuilder()
	for i, e := range fx.log.fork(3).Entries() {
		if i == 1 {
			e = []byte("not a statement")
		}
		lying.Add(uint64(i), e)
	}
	bad, _ := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: fx.log.Origin, Size: 3, Root: lying.Root(), Time: time.Now()}, fx.log.Signer)
	fx.log.add(fx.release(t, fx.op, "1.1.0"), bad)
	other := newFakeLog(t)
	forged, _ := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: fx.log.Origin, Size: 3, Root: b.Root(), Time: time.Now()}, other.Signer)
	fx.log.add(forged)
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "a lying and a forged index checkpoint", alerts, AlertIndexInconsistent, AlertInvalidEntry)
	for _, a := range alerts {
		if a.Kind != AlertIndexInconsistent {
			continue
		}
		var ev struct{ File string }
		if err := json.Unmarshal(a.Evidence, &ev); err != nil || ev.File == "" {
			t.Fatalf("no evidence file: %s", a.Evidence)
		}
		raw, err := os.ReadFile(ev.File)
		if err != nil {
			t.Fatal(err)
		}
		m, err := vindex.ParseMisbehaviour(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Verify(); err != nil {
			t.Errorf("the evidence does not verify on its own: %v", err)
		}
		// The same file with the honest checkpoint in its place proves nothing.
		m.Entries[m.IndexEntry] = good
		if err := m.Verify(); err == nil {
			t.Error("evidence with the entries changed still verifies")
		}
	}
	// A restarted auditor replays the index from the tiles and goes on.
	fx.log.add(fx.release(t, fx.op, "1.2.0"))
	fx.aud.logs[0].index = nil
	if err, alerts := fx.runOnce(t); err != nil || len(alerts) != 0 {
		t.Errorf("after a replay: %v, alerts %q", err, kinds(alerts))
	}
}

// TestDeploymentWatch: the watch decides "logged" and "revoked" from the
// auditor's own verified copy of the log. A log whose /lookup claims a
// release it does not have cannot silence unlogged-measurement.
func TestDeploymentWatch(t *testing.T) {
	served := strings.Repeat("5e", 48)
	lie := []byte(`{"query":"` + served + `","entries":[{"index":1000000000,"kind":"release","measurement":"` + served + `"}]}`)
	golden := map[string]string{"3": hex.EncodeToString(fakeenclave.DemoGPUBlock(3)), "9": hex.EncodeToString(fakeenclave.DemoGPUBlock(9))}
	withGPU := &statement.GPUs{Vendor: "nvidia", Arch: fakeenclave.DemoGPUArch, Count: 1, Drivers: []string{fakeenclave.DemoGPUDriver}, Golden: golden}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, fx *auditorFixture)
		want    []string
		verdict string
		opts    []fakeenclave.Option
	}{
		{"GPU as released", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.releaseOfGPUs(t, fx.op, served, withGPU))
		}, nil, "ok", []fakeenclave.Option{fakeenclave.WithGPUs(1)}},
		{"GPU with a swapped VBIOS measurement", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.releaseOfGPUs(t, fx.op, served, withGPU))
		}, []string{AlertGPUUnlogged}, AlertGPUUnlogged, []fakeenclave.Option{fakeenclave.WithGPUs(1), fakeenclave.WithGPUMeasurement(0, 3, bytes.Repeat([]byte{0xee}, 48))}},
		{"GPUs in protected-PCIe mode where the policy requires CC", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.releaseOfGPUs(t, fx.op, served, withGPU))
		}, []string{AlertGPUMode}, AlertGPUMode, []fakeenclave.Option{fakeenclave.WithGPUs(1), fakeenclave.WithGPUsInPPCIe()}},
		{"GPU the release does not name", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.releaseOf(t, fx.op, served))
		}, []string{AlertGPUUnlogged}, AlertGPUUnlogged, []fakeenclave.Option{fakeenclave.WithGPUs(1)}},
		{"logged", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.releaseOf(t, fx.op, served))
		}, nil, "ok", nil},
		{"not logged, and /lookup lies that it is", func(t *testing.T, fx *auditorFixture) {
			fx.log.add(fx.release(t, fx.op, "1.0.0"))
			fx.log.mu.Lock()
			fx.log.lookup = lie
			fx.log.mu.Unlock()
		}, []string{AlertUnloggedMeasurement}, AlertUnloggedMeasurement, nil},
		{"revoked", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel)
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
		}, []string{AlertRevokedReleaseServed}, AlertRevokedReleaseServed, nil},
		{"revoked, then reinstated by an authority", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel)
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
			fx.log.add(fx.releaseOfGPUs(t, fx.op, served, nil, fx.auth))
		}, nil, "ok", nil},
		{"reinstated by a signer that is no authority", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel)
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
			fx.log.add(fx.releaseOfGPUs(t, fx.op, served, nil, fx.op2))
		}, []string{AlertRevokedReleaseServed}, AlertRevokedReleaseServed, nil},
		{"reinstated, then revoked again", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			re := fx.releaseOfGPUs(t, fx.op, served, nil, fx.auth)
			fx.log.add(rel)
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
			fx.log.add(re)
			fx.log.add(fx.revocation(t, fx.op, 2, re))
		}, []string{AlertRevokedReleaseServed}, AlertRevokedReleaseServed, nil},
		{"another release of the measurement, by the same operator, revoked", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel, fx.releaseOfGPUs(t, fx.op, served, nil))
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
		}, []string{AlertRevokedReleaseServed}, AlertRevokedReleaseServed, nil},
		// A revocation revokes what its signer may revoke: op's revocation
		// of its own release leaves op2's release of the measurement
		// standing, which the deployment may be running.
		{"another operator's release of the measurement revoked", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel, fx.releaseOf(t, fx.op2, served))
			fx.log.add(fx.revocation(t, fx.op, 0, rel))
		}, nil, "ok", nil},
		{"an authority revoked another operator's release of the measurement", func(t *testing.T, fx *auditorFixture) {
			rel := fx.releaseOf(t, fx.op, served)
			fx.log.add(rel, fx.releaseOf(t, fx.op2, served))
			fx.log.add(fx.revocation(t, fx.auth, 0, rel))
		}, []string{AlertRevokedReleaseServed}, AlertRevokedReleaseServed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := fakeenclave.NewSNP(mustHex(t, served), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			fx := newAuditorFixtureDeploy(t, "w", enc)
			tc.setup(t, fx)
			err, alerts := fx.runOnce(t)
			if err != nil {
				t.Fatal(err)
			}
			wantKinds(t, tc.name, alerts, tc.want...)
			st, err := fx.aud.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Deployments) != 1 || st.Deployments[0].Verdict != tc.verdict {
				t.Errorf("deployment status %+v, want verdict %q", st.Deployments, tc.verdict)
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// releaseOf is a release with launch digest m.
func (fx *auditorFixture) releaseOf(t *testing.T, signer *statement.Signer, m string) []byte {
	t.Helper()
	return fx.releaseOfGPUs(t, signer, m, nil)
}

// releaseOfGPUs is releaseOf with a gpus section.
func (fx *auditorFixture) releaseOfGPUs(t *testing.T, signer *statement.Signer, m string, g *statement.GPUs, more ...*statement.Signer) []byte {
	t.Helper()
	rel := &statement.Release{
		Version: "2.0.0-" + m[:6] + signer.Public().ID()[:6], Time: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: m}},
		Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c0", 20)},
		Recipe:       statement.Recipe{Argv: []string{"make"}, Outputs: []string{"disk.img"}},
		GPUs:         g,
	}
	if len(more) > 0 {
		rel.Version += "-reinstated"
	}
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d2", 32)}}}, rel)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(p, signer, more...)
	return e
}

// TestFollowProvenanceRequired: under 'provenance required' a release
// without provenance is as inadmissible to the auditor as to the log and
// to clients (provenance.Admit, the one rule); the auditor used to check
// provenance only when a release carried some, and said nothing.
func TestFollowProvenanceRequired(t *testing.T) {
	fx := newAuditorFixture(t, "w")
	fx.aud.Close()
	p := filepath.Join(fx.dir, "policy.txt")
	pol, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(pol, "provenance required\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.open(t)
	fx.log.add(fx.release(t, fx.op, "1.0.0"))
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "a release without provenance under provenance required", alerts, AlertInvalidEntry)
	if len(alerts) == 1 && !strings.Contains(alerts[0].Summary, "provenance") {
		t.Errorf("the alert does not say why: %q", alerts[0].Summary)
	}
}
