package logserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
)

// snp is the index proof query of an SNP launch digest.
func snp(m string) string { return "type=sev-snp/launch_digest&digest=" + m }

// identityOf is the index proof query of release i's identity.
func identityOf(i uint64) string { return fmt.Sprintf("release=%d", i) }

// getIndexProof polls GET /index/proof?QUERY until the proof lists want
// entries, and returns it verified as a client would.
func (tl *testLog) getIndexProof(t *testing.T, query string, want int) (*vindex.Proof, *vindex.Verified) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(tl.url + "/index/proof?" + query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			p, err := vindex.ParseProof(b)
			if err != nil {
				t.Fatalf("the log's index proof does not parse: %v\n%s", err, b)
			}
			cp, err := tl.policy.VerifyCheckpoint(p.Commit.Checkpoint)
			if err != nil {
				t.Fatalf("index proof checkpoint: %v", err)
			}
			v, err := p.VerifyProof(tl.verifier, cp.N, cp.Hash)
			if err != nil {
				t.Fatalf("the log's index proof does not verify: %v", err)
			}
			if len(v.Items) == want {
				return p, v
			}
		} else if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /index/proof = %d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no index proof of %d entries for %s within 30 s (last: %d %s)", want, query, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIndexProofs: every lookup is proven — present with every entry
// about the digest (the revocation included), absent with a proof of
// absence — and nobody but the log appends index checkpoints.
func TestIndexProofs(t *testing.T) {
	authority, _ := statement.GenerateSigner(statement.AlgEd25519)
	tl := newTestLogOpts(t, nil, func(string) string { return "authority sec " + authority.Public().String() + "\n" }, "quorum none\n", "", true)
	ctx := context.Background()
	m := measurement(40)
	rel := release(t, tl.operator, m)
	i := tl.add(t, rel)
	j := tl.add(t, release(t, tl.operator, measurement(41)))
	_, v := tl.getIndexProof(t, snp(m), 1)
	if v.Items[0] != (vindex.Item{Index: i, Kind: vindex.KindRelease}) {
		t.Errorf("index proof of %s lists %v, want release %d", m[:12], v.Items, i)
	}
	// A revocation joins the release's identity, and only that key.
	rv, _ := statement.EncodeRevocation(statement.RefOf(i, mustEntry(t, rel)), &statement.Revocation{Reason: "CVE-2026-7", Time: time.Now().UTC().Truncate(time.Second)})
	rve, _ := statement.Sign(rv, tl.operator)
	r := tl.add(t, rve)
	_, v = tl.getIndexProof(t, identityOf(i), 2)
	if v.Items[1] != (vindex.Item{Index: r, Kind: vindex.KindRevocation}) {
		t.Errorf("after the revocation: %v, want it to list revocation %d", v.Items, r)
	}
	if _, v := tl.getIndexProof(t, snp(m), 1); v.Items[0].Kind != vindex.KindRelease {
		t.Errorf("the launch digest's lookup key lists %v", v.Items)
	}
	// The measurement is revoked: a new version of it is refused, unless
	// an authority signs it too.
	again := release(t, tl.operator, m)
	if code, msg := tl.post(t, again); code != http.StatusForbidden || !strings.Contains(msg, "was revoked") {
		t.Errorf("a new release of the revoked measurement = %d %q, want 403 naming the revocation", code, msg)
	}
	// The revoked release itself, resubmitted, is still its duplicate.
	if r, err := tl.client.Add(ctx, rel); err != nil || !r.Duplicate || r.Index != i {
		t.Errorf("resubmitting the revoked release = %+v, %v; want the duplicate of %d", r, err, i)
	}
	ap, _ := statement.Parse(again)
	cosigned, _ := statement.Sign(ap.Envelope.Payload, tl.operator, authority)
	if code, msg := tl.post(t, cosigned); code != 200 {
		t.Errorf("the release co-signed by an authority = %d %q, want 200", code, msg)
	}
	// Absent: a proof of absence over an index that covers both releases.
	p, v := tl.getIndexProof(t, snp(strings.Repeat("ee", 48)), 0)
	if v.Checkpoint.Size <= j {
		t.Errorf("the absence proof's index covers %d entries, want more than %d", v.Checkpoint.Size, j)
	}
	// Index checkpoints are the log's alone.
	// Not even one signed with the log's own key.
	ls, _, err := keyfile.LoadNoteSigner(tl.cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: testOrigin, Size: 1, Root: vindex.EmptyRoot(), Time: time.Now()}, ls)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := tl.post(t, forged); code != http.StatusForbidden {
		t.Errorf("POST /add of an index checkpoint = %d %q, want 403", code, msg)
	}
	// /lookup carries the same proof beside the log's word.
	lr, err := tl.client.Lookup(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if lp, err := vindex.ParseProof([]byte(lr.IndexProof)); err != nil {
		t.Errorf("/lookup index_proof: %v", err)
	} else if len(lp.Items) == 0 {
		t.Error("/lookup index_proof lists no entry")
	}
	// Bad queries are 400s.
	for _, q := range []string{"", "key=" + m, "type=sev-snp/launch_digest&digest=zz", "type=sev-snp/launch_digest&digest=" + strings.Repeat("a", 200),
		"type=artifact/sha256&digest=" + m, "type=nope&digest=" + m, "release=x", fmt.Sprintf("release=%d", r)} {
		resp, err := http.Get(tl.url + "/index/proof?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /index/proof?%.40s = %d, want 400", q, resp.StatusCode)
		}
	}
	// The index checkpoint entries are read back like any other entry,
	// credited to the log.
	if err := tl.waitIndexed(ctx, p.Commit.Index); err != nil {
		t.Fatal(err)
	}
	info, err := tl.client.Entry(ctx, p.Commit.Index)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != string(statement.KindIndexCheckpoint) || info.Signer != "the log" {
		t.Errorf("entry %d = kind %q signer %q, want an index checkpoint by the log", p.Commit.Index, info.Kind, info.Signer)
	}
}

// TestIndexProofsAfterRestart: a restarted log rebuilds its map from its
// entries and serves proofs at once from the index checkpoint it had
// committed (no new commit, no witness round needed), and commits anew
// only for entries after it.
func TestIndexProofsAfterRestart(t *testing.T) {
	tl := newTestLogIndexed(t)
	m := measurement(50)
	tl.add(t, release(t, tl.operator, m))
	p, _ := tl.getIndexProof(t, snp(m), 1)
	size := tl.size(t)
	tl.Log.Close(context.Background())
	// Restarted with the map in a file: the replay rebuilds the same map
	// there, and the commit it finds in the log matches it.
	tl.cfg.IndexMap = "file"
	tl.start(t)
	p2, v2 := tl.getIndexProof(t, snp(m), 1)
	if p2.Commit.Index != p.Commit.Index {
		t.Errorf("after the restart the proof is from index checkpoint %d, want the committed %d", p2.Commit.Index, p.Commit.Index)
	}
	if got := tl.size(t); got != size {
		t.Errorf("the restart appended %d entries (a needless index checkpoint)", got-size)
	}
	// New entries get a new commit.
	i := tl.add(t, release(t, tl.operator, m))
	_, v3 := tl.getIndexProof(t, snp(m), 2)
	if v3.Checkpoint.Size <= i || v3.Checkpoint.Size <= v2.Checkpoint.Size {
		t.Errorf("no new commit after the restart: covers %d", v3.Checkpoint.Size)
	}
}

// releaseOf is release with the subjects and measurements given.
func releaseOf(t *testing.T, s *statement.Signer, platform string, m statement.Measurements, subj statement.Digest) []byte {
	t.Helper()
	n := releaseN.Add(1)
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: subj}}, &statement.Release{
		Version: fmt.Sprintf("2.0.%d", n), Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Platform: platform,
		Measurements: m, Source: statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("a", 40)},
		Recipe: statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(p, s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRevocationScopeAtAdmission is the second security review's item 2
// at the log: a revocation revokes exactly what its signer may revoke,
// so the log refuses a new release of an identity only when a revocation
// that applies to it was logged.
func TestRevocationScopeAtAdmission(t *testing.T) {
	authority, _ := statement.GenerateSigner(statement.AlgEd25519)
	tl := newTestLogOpts(t, nil, func(string) string { return "authority sec " + authority.Public().String() + "\n" }, "quorum none\n", "", true)
	acme, beta := tl.operator, tl.operator2
	revoke := func(s *statement.Signer, i uint64, body []byte) uint64 {
		rv, _ := statement.EncodeRevocation(statement.RefOf(i, mustEntry(t, body)), &statement.Revocation{Reason: "r", Time: time.Now().UTC().Truncate(time.Second)})
		e, _ := statement.Sign(rv, s)
		return tl.add(t, e)
	}
	waitRevoked := func(query string, n int) { t.Helper(); tl.getIndexProof(t, query, n) }
	v := measurement(60)
	tl.add(t, release(t, acme, v))
	// 1. Beta's release lists, as an artifact's SHA-384, the bytes of
	// acme's launch digest; beta revokes it.
	x := releaseOf(t, beta, statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(61)}}, statement.Digest{SHA384: v})
	xi := tl.add(t, x)
	revoke(beta, xi, x)
	waitRevoked(identityOf(xi), 2)
	if code, msg := tl.post(t, release(t, acme, v)); code != 200 {
		t.Errorf("acme's new release of its own identity after beta revoked a release whose artifact digest has its bytes = %d %q, want 200", code, msg)
	}
	// 2. Beta publishes a release with acme's very identity and revokes
	// it: acme may still publish it (beta may not revoke acme's), beta
	// may not.
	y := release(t, beta, v)
	yi := tl.add(t, y)
	revoke(beta, yi, y)
	waitRevoked(identityOf(yi), 4) // acme's two releases, beta's, its revocation
	if code, msg := tl.post(t, release(t, acme, v)); code != 200 {
		t.Errorf("acme's new release after beta revoked beta's release of the same identity = %d %q, want 200", code, msg)
	}
	if code, msg := tl.post(t, release(t, beta, v)); code != http.StatusForbidden || !strings.Contains(msg, "was revoked") {
		t.Errorf("beta's new release of the identity it revoked = %d %q, want 403", code, msg)
	}
	// 3. TDX: two releases on one TDVF (one MRTD), other RTMRs. Revoking
	// one revokes its identity, not the TDVF's.
	mrtd := measurement(70)
	tdx := func(rtmr0 string) []byte {
		return releaseOf(t, acme, statement.PlatformTDX, statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: mrtd, RTMR0: rtmr0}}, statement.Digest{SHA256: strings.Repeat("d7", 32)})
	}
	t1 := tdx(measurement(71))
	t1i := tl.add(t, t1)
	tl.add(t, tdx(measurement(72)))
	revoke(acme, t1i, t1)
	waitRevoked(identityOf(t1i), 2)
	if code, msg := tl.post(t, tdx(measurement(73))); code != 200 {
		t.Errorf("a new TDX release on the same TDVF after another one's revocation = %d %q, want 200", code, msg)
	}
	if code, msg := tl.post(t, tdx(measurement(71))); code != http.StatusForbidden || !strings.Contains(msg, "was revoked") {
		t.Errorf("a new TDX release of the revoked identity = %d %q, want 403", code, msg)
	}
	// 4. An authority's revocation of beta's release revokes the identity
	// for acme too.
	revoke(authority, yi, y)
	waitRevoked(identityOf(yi), 6)
	if code, msg := tl.post(t, release(t, acme, v)); code != http.StatusForbidden || !strings.Contains(msg, "signed by sec") {
		t.Errorf("acme's new release after an authority revoked the identity = %d %q, want 403", code, msg)
	}
}

// TestIndexProofAtRest: a log at rest ends with its last index
// checkpoint, so its proofs are complete (and current for any client
// whatever the checkpoint's age, as long as the witnesses cosigned the
// tree recently).
func TestIndexProofAtRest(t *testing.T) {
	tl := newTestLogIndexed(t)
	m := measurement(80)
	i := tl.add(t, release(t, tl.operator, m))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, v := tl.getIndexProof(t, identityOf(i), 1)
		if v.Complete() {
			if v.Checkpoint.Time.IsZero() || time.Since(v.Checkpoint.Time) > time.Minute {
				t.Errorf("the index checkpoint is dated %v", v.Checkpoint.Time)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete index proof within 30 s: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLogFromBeforeMapVersion2: a log written by the version before map
// version 2 (testdata/log-29fd2cb: releases, a reproduction, a revocation
// and undated version 1 index checkpoints) opens, reads back every entry,
// rebuilds its map as version 2 and commits afresh, and proves the old
// revocation under the release's identity.
func TestLogFromBeforeMapVersion2(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/log-29fd2cb")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "log.key"), 0o600)
	on := true
	cfg := &Config{
		Origin: testOrigin, Listen: "127.0.0.1:0", Key: filepath.Join(dir, "log.key"),
		Storage: Storage{POSIX: &POSIXStorage{Dir: filepath.Join(dir, "tiles")}},
		Index:   filepath.Join(dir, "index.db"), Policy: filepath.Join(dir, "policy.txt"),
		WitnessPolicy: filepath.Join(dir, "witnesses.txt"), BatchMaxAge: 10 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond, IndexCheckpoints: &on,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pub, err := keyfile.Public(keyfile.KindLog, cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := os.ReadFile(cfg.Policy)
	tl := &testLog{dir: dir, cfg: cfg}
	tl.start(t)
	if tl.policy, err = policy.Parse([]byte("log " + pub + "\nquorum none\n" + string(pol))); err != nil {
		t.Fatal(err)
	}
	old := tl.size(t)
	if old < 6 {
		t.Fatalf("the old log has %d entries, want 6", old)
	}
	v1 := 0
	for i := range old {
		e, err := tl.entry(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		p, err := statement.ParseEntry(e)
		if err != nil {
			t.Fatalf("entry %d of the old log does not parse: %v", i, err)
		}
		if p.Kind == statement.KindIndexCheckpoint {
			if p.IndexCheckpoint.Version != 1 {
				t.Errorf("entry %d: index checkpoint of version %d, want 1", i, p.IndexCheckpoint.Version)
			}
			v1++
		}
	}
	if v1 == 0 {
		t.Fatal("the old log holds no version 1 index checkpoint")
	}
	// The map, rebuilt as version 2, proves the revocation under entry
	// 0's identity, from a version 2 index checkpoint appended now.
	_, v := tl.getIndexProof(t, identityOf(0), 2)
	if v.Checkpoint.Version != 2 || v.Entry < old || v.Items[1].Kind != vindex.KindRevocation {
		t.Errorf("after opening the old log: %+v, items %v", v.Checkpoint, v.Items)
	}
	info, err := tl.client.Entry(t.Context(), 0)
	if err != nil || info.Kind != "release" || len(info.Revocations) != 1 || len(info.Reproductions) != 1 {
		t.Errorf("entry 0 read back = %+v, %v", info, err)
	}
}
