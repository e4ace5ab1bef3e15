package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
)

// TestUpRevocationFailsClosed is the README's client, revoked: after the
// demo release is revoked, the demo enclave's next staple carries the
// revocation and the README's verify (no --log) says NOT TRUSTED; a new
// release of the revoked measurement is refused; the auditor's deployment
// watch raises revoked-release-served.
func TestUpRevocationFailsClosed(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	verifyDemo := func() (string, error) {
		out, errOut, err := tryCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.URL)
		return out + errOut, err
	}
	// The README's verify waits for the first staple with an index proof.
	waitFor(t, func() bool {
		out, err := verifyDemo()
		return err == nil && strings.Contains(out, "TRUSTED: sev-snp release 0.1.0")
	}, "the demo enclave to verify")
	out, _ := verifyDemo()
	if !strings.Contains(out, "✓ not revoked: the log's index") {
		t.Errorf("the TRUSTED verdict does not rest on the index proof:\n%s", out)
	}

	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(u.info.Demo.ReleaseIndex),
		"--reason", "CVE-2026-4242: test", "--wait", "--proof-out", filepath.Join(dir, "revocation.tlog-proof"))
	var last string
	waitFor(t, func() bool {
		out, err := verifyDemo()
		last = out
		return err != nil && strings.Contains(out, "NOT TRUSTED") && strings.Contains(out, "✗ not revoked") && strings.Contains(out, "was revoked")
	}, "the README's verify to say NOT TRUSTED after the revocation")
	t.Logf("after the revocation:\n%s", last)

	// A new version of the revoked measurement is refused.
	rel, err := os.ReadFile(u.info.ExampleRelease)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.yaml")
	os.WriteFile(again, []byte(strings.Replace(string(rel), "version: 0.1.0", "version: 0.1.1", 1)), 0o644)
	if out, errOut, err := tryCmd(t, "publish", "--log", u.info.URL, "--key", u.info.Operator.Key, again); err == nil || !strings.Contains(out+errOut, "was revoked") {
		t.Errorf("republishing the revoked measurement: %v\n%s%s", err, out, errOut)
	}

	// The auditor's watch of the demo deployment sees it too.
	waitFor(t, func() bool {
		return len(alertsOf(listAlerts(t, u.info.AuditorDB), auditor.AlertRevokedReleaseServed)) > 0
	}, "the auditor's revoked-release-served alert")
}

// TestUpReplayedIndexProof is the second security review's item 1, end
// to end: with the demo release revoked, an enclave that staples an index
// proof built from an index checkpoint of before the revocation (its map
// rebuilt from public entries, its inclusion proven under today's fresh,
// cosigned checkpoint) and drops the revocation it was handed is not
// trusted by the README's client once that index is older than the
// policy's bound; verify-proof says NOT VALID.
func TestUpReplayedIndexProof(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	ctx := t.Context()
	c, err := client.New(u.info.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel := uint64(u.info.Demo.ReleaseIndex)
	var before *vindex.Proof
	waitFor(t, func() bool {
		p, _, err := c.IdentityProof(ctx, rel)
		before = p
		return err == nil && len(p.Items) > 0
	}, "an index proof of the demo release")
	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(rel), "--reason", "CVE-2026-4243: test", "--wait", "--proof-out", filepath.Join(t.TempDir(), "revocation.tlog-proof"))
	// The honest proof shows the revocation.
	waitFor(t, func() bool {
		p, _, err := c.IdentityProof(ctx, rel)
		return err == nil && len(p.Items) == 2 && p.Items[1].Kind == vindex.KindRevocation
	}, "the index proof to list the revocation")

	// The replay: the old index checkpoint, under the newest checkpoint.
	ic, err := statement.ParseIndexCheckpoint(before.Commit.Extra)
	if err != nil {
		t.Fatal(err)
	}
	b := vindex.NewBuilder()
	for i := range ic.Size {
		p, _, err := c.Proof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		b.Add(i, p.Extra)
	}
	items, mp := b.Map().Prove(vindex.Key(before.Type, before.Digest))
	commit, _, err := c.Proof(ctx, before.Commit.Index)
	if err != nil {
		t.Fatal(err)
	}
	replayed := &vindex.Proof{Type: before.Type, Digest: before.Digest, Items: items, Map: mp, Commit: commit}
	if len(items) != 1 {
		t.Fatalf("the replayed index lists %v", items)
	}
	replayedFile := filepath.Join(dir, "replayed.vindex")
	os.WriteFile(replayedFile, replayed.Marshal(), 0o644)

	// A client that bounds the index at 3 s (the default is 10 minutes;
	// the bound is the client's), once the old index is older than that.
	pol, err := os.ReadFile(u.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}
	strict := filepath.Join(filepath.Dir(u.info.ClientPolicy), "strict-policy.txt")
	os.WriteFile(strict, []byte(strings.Replace(string(pol), "revocation-proof required", "revocation-proof required max-age=3s", 1)), 0o644)
	if d := time.Until(ic.Time.Add(4 * time.Second)); d > 0 {
		time.Sleep(d)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	ev, err := evidence.Fetch(ctx, nil, u.info.Demo.URL, nonce)
	if err != nil {
		t.Fatal(err)
	}
	ev.IndexProof, ev.Related = string(replayed.Marshal()), nil
	evFile := filepath.Join(dir, "evidence.json")
	raw, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(evFile, raw, 0o644)
	out, errOut, err := tryCmd(t, "verify", "--policy", strict, "--evidence", evFile, "--nonce", hex.EncodeToString(nonce))
	if err == nil || !strings.Contains(out, "NOT TRUSTED") || !strings.Contains(out, "too stale") {
		t.Errorf("verify with the replayed index proof: %v\n%s%s", err, out, errOut)
	}
	proofFile := filepath.Join(dir, "demo.tlog-proof")
	os.WriteFile(proofFile, []byte(ev.Proof), 0o644)
	out, errOut, err = tryCmd(t, "verify-proof", "--policy", strict, "--index-proof", replayedFile, proofFile)
	if err == nil || !strings.Contains(out, "NOT VALID") || !strings.Contains(out, "too stale") {
		t.Errorf("verify-proof --index-proof with the replayed index proof: %v\n%s%s", err, out, errOut)
	}
}
