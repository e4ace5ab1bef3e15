package logserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
)

// getIndexProof polls GET /index/proof until the proof lists want
// entries, and returns it verified as a client would.
func (tl *testLog) getIndexProof(t *testing.T, digestHex string, want int) (*vindex.Proof, *vindex.Verified) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(tl.url + "/index/proof?key=" + digestHex)
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
			t.Fatalf("no index proof of %d entries for %s within 30 s (last: %d %s)", want, digestHex[:12], resp.StatusCode, b)
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
	_, v := tl.getIndexProof(t, m, 1)
	if v.Items[0] != (vindex.Item{Index: i, Kind: vindex.KindRelease}) {
		t.Errorf("index proof of %s lists %v, want release %d", m[:12], v.Items, i)
	}
	// A revocation joins the release's keys.
	rv, _ := statement.EncodeRevocation(statement.RefOf(i, mustEntry(t, rel)), &statement.Revocation{Reason: "CVE-2026-7", Time: time.Now().UTC().Truncate(time.Second)})
	rve, _ := statement.Sign(rv, tl.operator)
	r := tl.add(t, rve)
	_, v = tl.getIndexProof(t, m, 2)
	if v.Items[1] != (vindex.Item{Index: r, Kind: vindex.KindRevocation}) {
		t.Errorf("after the revocation: %v, want it to list revocation %d", v.Items, r)
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
	p, v := tl.getIndexProof(t, strings.Repeat("ee", 48), 0)
	if v.Checkpoint.Size <= j {
		t.Errorf("the absence proof's index covers %d entries, want more than %d", v.Checkpoint.Size, j)
	}
	// Index checkpoints are the log's alone.
	// Not even one signed with the log's own key.
	ls, _, err := keyfile.LoadNoteSigner(tl.cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: testOrigin, Size: 1, Root: vindex.EmptyRoot()}, ls)
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
	// Bad keys are 400s.
	for _, q := range []string{"", "zz", strings.Repeat("a", 200)} {
		resp, err := http.Get(tl.url + "/index/proof?key=" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /index/proof?key=%.10s = %d, want 400", q, resp.StatusCode)
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
	p, _ := tl.getIndexProof(t, m, 1)
	size := tl.size(t)
	tl.Log.Close(context.Background())
	// Restarted with the map in a file: the replay rebuilds the same map
	// there, and the commit it finds in the log matches it.
	tl.cfg.IndexMap = "file"
	tl.start(t)
	p2, v2 := tl.getIndexProof(t, m, 1)
	if p2.Commit.Index != p.Commit.Index {
		t.Errorf("after the restart the proof is from index checkpoint %d, want the committed %d", p2.Commit.Index, p.Commit.Index)
	}
	if got := tl.size(t); got != size {
		t.Errorf("the restart appended %d entries (a needless index checkpoint)", got-size)
	}
	// New entries get a new commit.
	i := tl.add(t, release(t, tl.operator, m))
	_, v3 := tl.getIndexProof(t, m, 2)
	if v3.Checkpoint.Size <= i || v3.Checkpoint.Size <= v2.Checkpoint.Size {
		t.Errorf("no new commit after the restart: covers %d", v3.Checkpoint.Size)
	}
}
