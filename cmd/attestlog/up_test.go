package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/internal/tlogcheck"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/web"
)

func writeRelease(t *testing.T, dir string, i int) (string, string) {
	t.Helper()
	m := fmt.Sprintf("%096x", 0xabc000+i)
	y := fmt.Sprintf(`version: 1.0.%d
platform: sev-snp
time: 2026-11-26T12:00:00Z
measurements:
  snp: {launch_digest: %s}
artifacts:
  - {name: disk.img, sha256: %064x}
source: {repo: "https://example.com/enclave", commit: %040x}
recipe:
  argv: [make, image]
  outputs: [disk.img]
`, i, m, i, i)
	p := filepath.Join(dir, fmt.Sprintf("release-%d.yaml", i))
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, m
}

// verifyProofFile checks a proof file as a client would.
func verifyProofFile(t *testing.T, pol *policy.Policy, path string, wantIndex uint64) *policy.Checkpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cp, err := pol.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		t.Fatalf("%s: checkpoint: %v", path, err)
	}
	if err := p.VerifyInclusion(p.Extra, cp.N, cp.Hash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.Index != wantIndex {
		t.Fatalf("%s: proof for index %d, want %d", path, p.Index, wantIndex)
	}
	return cp
}

func TestUpEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	u := startUp(t, data)
	for _, k := range []string{u.info.Log.Key, u.info.Witness.Key, u.info.Operator.Key, u.info.Auditor.Key} {
		fi, err := os.Stat(k)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key %s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	pol, err := policy.Load(u.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}

	// The example release 'up' printed publishes as printed.
	out := runCmd(t, "publish", "--log", u.info.URL, "--key", u.info.Operator.Key, "--wait", u.info.ExampleRelease)
	if strings.TrimSpace(out) != "0" {
		t.Errorf("publish example = %q, want index 0", out)
	}
	verifyProofFile(t, pol, strings.TrimSuffix(u.info.ExampleRelease, ".yaml")+".tlog-proof", 0)

	// Three more releases. Their indexes need not be consecutive: the
	// auditor of 'up' logs reproductions in between.
	var measurements []string
	indexes := map[int]uint64{}
	var last uint64
	for i := 1; i <= 3; i++ {
		rel, m := writeRelease(t, dir, i)
		measurements = append(measurements, m)
		proofPath := filepath.Join(dir, fmt.Sprintf("p%d", i))
		out := runCmd(t, "publish", "--log", u.info.URL, "--key", u.info.Operator.Key, "--wait", "--proof-out", proofPath, rel)
		idx, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil || idx <= last {
			t.Fatalf("publish %d printed %q, want an index after %d", i, out, last)
		}
		indexes[i], last = idx, idx
		cp := verifyProofFile(t, pol, proofPath, idx)
		if !cp.QuorumMet || len(cp.Cosigned) != 1 {
			t.Errorf("proof %d: checkpoint cosigned by %v, want the local witness", i, cp.CosignerNames())
		}
	}
	// attestlog proof by measurement and by index.
	pm := filepath.Join(dir, "pm")
	runCmd(t, "proof", "--log", u.info.URL, "--measurement", measurements[1], "-o", pm)
	verifyProofFile(t, pol, pm, indexes[2])
	if out := runCmd(t, "proof", "--log", u.info.URL, "--index", strconv.FormatUint(indexes[3], 10)); !strings.HasPrefix(out, tlogproof.Header) {
		t.Errorf("proof --index %d printed %.40q", indexes[3], out)
	}
	if _, errOut, err := tryCmd(t, "proof", "--log", u.info.URL, "--measurement", strings.Repeat("ee", 48)); err == nil || !strings.Contains(errOut, "no release with measurement") {
		t.Errorf("proof of an unlogged measurement: err %v, stderr %q", err, errOut)
	}

	// An independent client reads the whole log and its proofs.
	cp1, err := tlogcheck.Log(t.Context(), u.info.URL, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(cp1.N) <= indexes[3] {
		t.Errorf("checkpoint size %d, want more than %d", cp1.N, indexes[3])
	}

	// Revoke release 1; the index shows it.
	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", strconv.FormatUint(indexes[1], 10), "--reason", "CVE-2026-0001 in the kernel")
	c, _ := client.New(u.info.URL, nil)
	waitFor(t, func() bool {
		e, err := c.Entry(t.Context(), indexes[1])
		return err == nil && len(e.Revocations) == 1
	}, "revocation of release 1 in the index")

	// The auditor of 'up' rebuilds the demo release from its local
	// repository and logs a matching reproduction.
	testenv.LookPath(t, "git")
	waitFor(t, func() bool {
		e, err := c.Entry(t.Context(), u.info.Demo.ReleaseIndex)
		return err == nil && len(e.Reproductions) == 1 && e.Reproductions[0].Outcome == "match" && e.Reproductions[0].Signer == u.info.Auditor.Name
	}, "the auditor's reproduction of the demo release")

	// The demo enclave verifies as a client would see it: stapled proof,
	// then with the log's revocations; revoking its release makes it
	// untrusted.
	if out := runCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.URL); !strings.Contains(out, "TRUSTED: sev-snp release 0.1.0") {
		t.Errorf("verify demo enclave:\n%s", out)
	}
	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", strconv.FormatUint(u.info.Demo.ReleaseIndex, 10), "--reason", "demo revoked")
	waitFor(t, func() bool {
		e, err := c.Entry(t.Context(), u.info.Demo.ReleaseIndex)
		return err == nil && len(e.Revocations) == 1
	}, "revocation of the demo release in the index")
	waitFor(t, func() bool {
		out, _, err := tryCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.URL, "--log", u.info.URL)
		return err != nil && strings.Contains(out, "✗ not revoked: release 0 was revoked: entry") && strings.Contains(out, "demo revoked")
	}, "verify --log to report the revocation")

	// The auditor 'up' runs sees the demo enclave serve a revoked release,
	// and so does its dashboard; the explorer shows the revocation.
	waitFor(t, func() bool {
		out, _, _ := tryCmd(t, "alerts", "--db", u.info.AuditorDB)
		return strings.Contains(out, "revoked-release-served")
	}, "the auditor's revoked-release-served alert")
	body := httpGet(t, u.info.URL+"/audit/?format=json")
	if !strings.Contains(body, "revoked-release-served") {
		t.Errorf("dashboard JSON lacks the alert: %.300s", body)
	}
	// Releases are attributed to the operator by its policy name.
	var dash web.DashboardView
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatal(err)
	}
	for _, r := range dash.Releases {
		if r.Signer != u.info.Operator.Name {
			t.Errorf("dashboard release %d signed by %q, want the operator's policy name %q", r.Index, r.Signer, u.info.Operator.Name)
		}
	}
	if len(dash.Releases) == 0 {
		t.Error("dashboard lists no releases")
	}
	// The demo deployment's GPU is shown as it reported itself.
	if len(dash.Deployments) != 1 || len(dash.Deployments[0].GPUs) != 1 || !strings.Contains(dash.Deployments[0].GPUs[0], "HOPPER driver 550.144.03") {
		t.Errorf("dashboard deployments = %+v, want the demo with its GPU", dash.Deployments)
	}
	if body := httpGet(t, u.info.URL+"/ui/entry/"+strconv.FormatUint(u.info.Demo.ReleaseIndex, 10)); !strings.Contains(body, "Revoked") {
		t.Errorf("explorer entry page does not show the revocation")
	}

	// Restart: nothing lost, same keys, duplicates recognised, tree consistent.
	u.stop(t)
	u2 := startUp(t, data)
	if u2.info.Log.VKey != u.info.Log.VKey || u2.info.Witness.VKey != u.info.Witness.VKey {
		t.Fatalf("restart changed keys")
	}
	pol2, err := policy.Load(u2.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}
	rel2, _ := writeRelease(t, dir, 2)
	if out := runCmd(t, "publish", "--log", u2.info.URL, "--key", u2.info.Operator.Key, rel2); strings.TrimSpace(out) != strconv.FormatUint(indexes[2], 10) {
		t.Errorf("republishing release 2 after restart printed %q, want the original index %d", out, indexes[2])
	}
	cp2, err := tlogcheck.Log(t.Context(), u2.info.URL, pol2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlogcheck.Consistent(t.Context(), u2.info.URL, tlog.Tree{N: cp1.N, Hash: cp1.Hash}, tlog.Tree{N: cp2.N, Hash: cp2.Hash}); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashLosesNothing kills the whole stack with SIGKILL while 50 writers
// publish, restarts it, and checks that every acknowledged entry is there,
// that the new tree is consistent with the last checkpoint seen before the
// crash, and that reindex rebuilds the index.
func TestCrashLosesNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	u := startUp(t, data)
	pol, err := policy.Load(u.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keyfile.LoadSigner(u.info.Operator.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(u.info.URL, nil)

	var (
		mu     sync.Mutex
		acked  = map[uint64][]byte{} // index → entry
		lastCP *policy.Checkpoint
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Watch checkpoints until the crash.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if raw, err := c.Checkpoint(ctx); err == nil {
				if cp, err := pol.VerifyCheckpoint(raw); err == nil {
					mu.Lock()
					if lastCP == nil || cp.N >= lastCP.N {
						lastCP = cp
					}
					mu.Unlock()
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200 && ctx.Err() == nil; i++ {
				subj := []statement.Subject{{Name: "img", Digest: statement.Digest{SHA256: fmt.Sprintf("%032x%032x", w, i)}}}
				// MRTD w+1: never all zeros, which measure nothing and which
				// no lookup finds (the verifiable index files no such value).
				payload, err := statement.EncodeRelease(subj, &statement.Release{
					Version: fmt.Sprintf("%d.%d", w, i), Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
					Platform:     statement.PlatformTDX,
					Measurements: statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: fmt.Sprintf("%048x%048x", w+1, i)}},
					Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("b", 40)},
					Recipe:       statement.Recipe{Argv: []string{"build"}},
				})
				if err != nil {
					t.Error(err)
					return
				}
				entry, _ := statement.Sign(payload, signer)
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := c.Add(actx, entry)
				acancel()
				if err != nil {
					return // the crash
				}
				mu.Lock()
				acked[r.Index] = entry
				mu.Unlock()
			}
		}()
	}
	// Let the writers run, then crash.
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 300 && lastCP != nil && lastCP.N > 0 }, "300 acknowledged entries")
	u.kill()
	cancel()
	wg.Wait()
	t.Logf("acknowledged %d entries before SIGKILL; last checkpoint seen: size %d", len(acked), lastCP.N)

	u2 := startUp(t, data)
	pol2, _ := policy.Load(u2.info.ClientPolicy)
	c2, _ := client.New(u2.info.URL, nil)
	var maxIdx uint64
	for i := range acked {
		maxIdx = max(maxIdx, i)
	}
	wctx, wcancel := context.WithTimeout(t.Context(), time.Minute)
	defer wcancel()
	if _, _, err := c2.WaitProof(wctx, maxIdx); err != nil {
		t.Fatalf("after restart, entry %d never got a witnessed checkpoint: %v", maxIdx, err)
	}
	want := make([][]byte, maxIdx+1)
	for i, e := range acked {
		p, _ := statement.Parse(e)
		want[i], _ = p.Entry()
	}
	cp, err := tlogcheck.Log(t.Context(), u2.info.URL, pol2, want)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := tlogcheck.Consistent(t.Context(), u2.info.URL, tlog.Tree{N: lastCP.N, Hash: lastCP.Hash}, tlog.Tree{N: cp.N, Hash: cp.Hash}); err != nil {
		t.Errorf("after restart: %v", err)
	}
	// Every acknowledged statement is a duplicate of its original index.
	for i, e := range acked {
		r, err := c2.Add(t.Context(), e)
		if err != nil || r.Index != i {
			t.Fatalf("resubmitting acknowledged entry %d = %+v, %v", i, r, err)
		}
		break // one is enough here; lookups below cover the index
	}

	// Reindex from scratch with the stack stopped.
	u2.stop(t)
	os.Remove(filepath.Join(data, "index.db"))
	out := runCmd(t, "log", "reindex", "--config", filepath.Join(data, "log.yaml"))
	if !strings.Contains(out, fmt.Sprintf("reindexed %d entries", cp.N)) && !strings.HasPrefix(out, "reindexed") {
		t.Errorf("reindex printed %q", out)
	}
	u3 := startUp(t, data)
	c3, _ := client.New(u3.info.URL, nil)
	for i, e := range acked {
		p, _ := statement.Parse(e)
		lr, err := c3.Lookup(t.Context(), p.Release.Measurements.TDX.MRTD)
		if err != nil || len(lr.Entries) != 1 || lr.Entries[0].Index != i {
			t.Fatalf("after reindex, lookup of entry %d = %+v, %v", i, lr, err)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d: %.200s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestUpKeepsEdits: every file 'up' generates is the user's once edited.
// A restart keeps each edit (and runs with it); a restart that would
// change a file (another address) keeps the edited ones, writes the new
// content beside them as NAME.new and says so, and regenerates only the
// files nobody edited.
func TestUpKeepsEdits(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir, "--auditor=false")
	addr := strings.TrimPrefix(u.info.URL, "http://")
	// The auditor's configuration names the enclave agent's address:
	// restart it where it was (up's default, 127.0.0.1:8443, is fixed).
	enclaveAddr := strings.TrimPrefix(u.info.Demo.EnclaveURL, "https://")
	u.stop(t)
	generated := []string{"policy.txt", "client-policy.txt", "witness-policy.txt", "log.yaml", "auditor.yaml", "witness.yaml", "example-release.yaml"}
	const mark = "\n# edited by the user: keep this line\n"
	for _, name := range generated {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("up did not write %s: %v", name, err)
		}
		extra := mark
		if name == "client-policy.txt" {
			extra += "reproductions 1\n" // the README's example edit
		}
		if err := os.WriteFile(p, append(b, extra...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Same addresses: every edit stands, nothing is proposed.
	u = startUp(t, dir, "--auditor=false", "--listen", addr, "--enclave-listen", enclaveAddr)
	for _, name := range generated {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if !strings.Contains(string(b), mark) {
			t.Errorf("restart dropped the edit of %s", name)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".new")); err == nil {
			t.Errorf("restart on the same address proposed %s.new", name)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "client-policy.txt")); !strings.Contains(string(b), "reproductions 1") {
		t.Error("client-policy.txt lost 'reproductions 1'")
	}
	// The edited log policy is the one the log runs with: still admits.
	publishIndex(t, u, u.info.ExampleRelease)
	u.stop(t)

	// Undo the edit of one address-dependent file; move to another port.
	wy := filepath.Join(dir, "witness.yaml")
	b, _ := os.ReadFile(wy)
	os.WriteFile(wy, []byte(strings.Replace(string(b), mark, "", 1)), 0o644)
	u = startUp(t, dir, "--auditor=false")
	newAddr := strings.TrimPrefix(u.info.URL, "http://")
	if newAddr == addr {
		t.Skip("the new start got the same port")
	}
	u.stop(t) // its output is read below
	for _, name := range []string{"client-policy.txt", "witness-policy.txt", "log.yaml", "auditor.yaml"} {
		cur, _ := os.ReadFile(filepath.Join(dir, name))
		if !strings.Contains(string(cur), mark) || strings.Contains(string(cur), newAddr) {
			t.Errorf("%s: the edited file was overwritten", name)
		}
		nw, err := os.ReadFile(filepath.Join(dir, name+".new"))
		if err != nil || !strings.Contains(string(nw), newAddr) {
			t.Errorf("%s.new: %v; want up's new content with %s", name, err, newAddr)
		}
		if !strings.Contains(u.stderr.String(), name+".new") {
			t.Errorf("up did not say it wrote %s.new:\n%s", name, u.stderr.String())
		}
	}
	// witness.yaml was not edited (any more): regenerated for the new address.
	if cur, _ := os.ReadFile(wy); !strings.Contains(string(cur), newAddr) {
		t.Errorf("the unedited witness.yaml was not regenerated:\n%s", cur)
	}
	// Files that do not name the address are not proposed anew.
	for _, name := range []string{"policy.txt", "example-release.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, name+".new")); err == nil {
			t.Errorf("%s.new proposed, though up's content for it did not change", name)
		}
	}
}

// TestGetSearchVerifyProof: the rekor-cli-like commands against a real up.
func TestGetSearchVerifyProof(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir, "--auditor=false")
	idx := u.info.Demo.ReleaseIndex
	out := runCmd(t, "get", "--log", u.info.URL, "--index", fmt.Sprint(idx))
	if !strings.Contains(out, "kind:        release") || !strings.Contains(out, u.info.Demo.Measurement) {
		t.Errorf("get:\n%s", out)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(runCmd(t, "get", "--log", u.info.URL, "--index", fmt.Sprint(idx), "--json")), &st); err != nil || st["predicateType"] == nil {
		t.Errorf("get --json: %v %v", st, err)
	}
	proofFile := filepath.Join(dir, "release.tlog-proof")
	out = runCmd(t, "get", "--log", u.info.URL, "--index", fmt.Sprint(idx), "--policy", u.info.ClientPolicy, "--proof-out", proofFile)
	if !strings.Contains(out, "VALID: sev-snp release") {
		t.Errorf("get --policy:\n%s", out)
	}
	out = runCmd(t, "verify-proof", "--policy", u.info.ClientPolicy, proofFile)
	if !strings.Contains(out, "✓") || !strings.Contains(out, "VALID: sev-snp release") {
		t.Errorf("verify-proof:\n%s", out)
	}
	// A tampered proof, and a policy that trusts another operator, fail
	// with exit status 1.
	b, _ := os.ReadFile(proofFile)
	bad := filepath.Join(dir, "bad.tlog-proof")
	os.WriteFile(bad, bytes.Replace(b, []byte("\n"), []byte("\n\n"), 1), 0o644)
	if out, _, err := tryCmd(t, "verify-proof", "--policy", u.info.ClientPolicy, bad); err == nil {
		t.Errorf("verify-proof of a tampered proof passed:\n%s", out)
	}
	pol, _ := os.ReadFile(u.info.ClientPolicy)
	other := filepath.Join(dir, "other-policy.txt")
	os.WriteFile(other, []byte(regexp.MustCompile(`(?m)^operator .*$`).ReplaceAllString(string(pol), "operator someone-else ed25519:tMQSguvwVF/uC0VJkNF37laQ96r0knXgsOUNGlXq5p4=")), 0o644)
	os.WriteFile(other+".nolog", []byte(regexp.MustCompile(`(?m)^log .*$`).ReplaceAllString(string(pol), "")), 0o644)
	out, _, err := tryCmd(t, "verify-proof", "--policy", other, proofFile)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "NOT VALID") || !strings.Contains(out, "not signed by an operator of the policy") {
		t.Errorf("verify-proof under a policy that trusts another operator: %v\n%s", err, out)
	}
	out = runCmd(t, "search", "--log", u.info.URL, "--policy", u.info.ClientPolicy, "--measurement", u.info.Demo.Measurement)
	if !strings.HasPrefix(out, fmt.Sprintf("%d\trelease", idx)) {
		t.Errorf("search:\n%s", out)
	}
	out, _, err = tryCmd(t, "search", "--log", u.info.URL, "--policy", u.info.ClientPolicy, "--digest", strings.Repeat("ab", 32))
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "proven absent") {
		t.Errorf("search for an unknown digest: %v, want exit 1 and a proof of absence\n%s", err, out)
	}
	// Under a policy that does not know the log, search prints nothing.
	if out, _, err := tryCmd(t, "search", "--log", u.info.URL, "--policy", other+".nolog", "--measurement", u.info.Demo.Measurement); err == nil || strings.Contains(out, "release") {
		t.Errorf("search under a policy without the log: %v\n%s", err, out)
	}
}

// TestUpOutputAndIndexPages: up's log stays readable (routine witness
// cosignatures and demo evidence polls at debug, no Tessera noise on a new
// log), /demo/ and /auditor/ say what they are, and inspect on the demo's
// evidence without a policy says which policy to pass.
func TestUpOutputAndIndexPages(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	for _, p := range []string{"/demo/", "/auditor/"} {
		body := httpGet(t, u.info.URL+p)
		if !strings.Contains(body, "attestlog up") {
			t.Errorf("GET %s = %q", p, body)
		}
	}
	nonce := strings.Repeat("ab", 32)
	ev := httpGet(t, u.info.Demo.URL+"/.well-known/attestlog/evidence?nonce="+nonce)
	evFile := filepath.Join(dir, "demo-evidence.json")
	os.WriteFile(evFile, []byte(ev), 0o644)
	_, errOut, err := tryCmd(t, "inspect", evFile)
	if err == nil || !strings.Contains(errOut, "--policy attestlog-data/client-policy.txt") {
		t.Errorf("inspect without --policy: %v\n%s", err, errOut)
	}
	if out, errOut, err := tryCmd(t, "inspect", "--policy", u.info.ClientPolicy, evFile); err != nil {
		t.Errorf("inspect --policy client-policy.txt: %v\n%s%s", err, out, errOut)
	}
	// Let the auditor poll the demo enclave and the log cosign a few
	// checkpoints.
	waitFor(t, func() bool { return treeSize(t, u.info.URL) >= 2 }, "the reproduction of the demo release")
	time.Sleep(6 * time.Second)
	u.stop(t)
	out := u.stderr.String()
	for _, noise := range []string{"Failed to fetch old checkpoint", `msg="evidence request"`, "endpoint=add-checkpoint status=200"} {
		if strings.Contains(out, noise) {
			t.Errorf("up's output has routine noise %q", noise)
		}
	}
	if !strings.Contains(out, "attestlog is up") {
		t.Errorf("no banner:\n%s", out)
	}
}
