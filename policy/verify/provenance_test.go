package verify

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// TestVerifyProvenance: a client policy naming a builder checks the
// release's provenance again, each check in the checklist; a release
// without provenance fails where the policy requires it.
func TestVerifyProvenance(t *testing.T) {
	f := newFixture(t)
	ss, err := provenancetest.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.WriteTrustedRoot(filepath.Join(f.dir, "trusted_root.json")); err != nil {
		t.Fatal(err)
	}
	const repo = "https://github.com/acme/enclave"
	commit := strings.Repeat("c", 40)
	id := provenancetest.GitHubWorkflow(repo, ".github/workflows/release.yml", "refs/tags/v1.0.0", commit)
	subj := []statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}}
	rel := &statement.Release{
		Version: "1.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: f.m}},
		Source:       statement.Source{Repo: repo, Commit: commit},
		Recipe:       statement.Recipe{Argv: []string{"make"}, Outputs: []string{"disk.img"}},
	}
	rel.Provenance, err = ss.SignProvenance(id, provenancetest.RecipeProvenance(subj, rel), nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, f.operator)
	withProv := f.log.add(e)
	withoutProv := f.log.add(f.release(t, f.operator, f.m))

	v := f.policy(t, "sigstore-root trusted_root.json\n"+id.PolicyLine("builder", "acme-release")+"\n")
	n := nonce()
	vd := v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(withProv, 2)})
	if !vd.OK() {
		t.Fatalf("release with provenance: failed %v\n%s", failed(vd), vd.Checks)
	}
	for _, name := range []string{provenance.CheckSignature, provenance.CheckBuilder, provenance.CheckDigests, provenance.CheckCommit, provenance.CheckRecipe} {
		if c, ok := vd.Checks.Find(name); !ok || !c.OK {
			t.Errorf("check %q missing or failed: %+v", name, c)
		}
	}
	vd = v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(withoutProv, 2)})
	if c, ok := vd.Checks.Find(provenance.CheckPresent); !ok || c.OK || vd.OK() {
		t.Errorf("release without provenance under a builder policy: %+v, verdict %v", c, vd.OK())
	}
	// A keyless release (the Sigstore bundle is the entry) verifies under a
	// policy naming its CI identity as keyless-operator, and fails
	// otherwise.
	ciID := provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit)
	bundle, err := ss.SignStatement(ciID, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	keylessIdx := f.log.add(bundle)
	kv := f.policy(t, "sigstore-root trusted_root.json\n"+id.PolicyLine("builder", "acme-release")+"\n"+ciID.PolicyLine("keyless-operator", "acme-ci")+"\n")
	vd = kv.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(keylessIdx, 2)})
	if !vd.OK() || vd.Release.Operator != "acme-ci" {
		t.Errorf("keyless release: failed %v, operator %q\n%s", failed(vd), vd.Release.Operator, vd.Checks)
	}
	vd = v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(keylessIdx, 2)})
	if c, _ := vd.Checks.Find(Operator); c.OK {
		t.Errorf("keyless release accepted without a keyless-operator line: %+v", c)
	}

	// Without builder lines, provenance is optional and its absence is
	// shown, not failed.
	v = f.policy(t, "")
	vd = v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(withoutProv, 2)})
	if c, ok := vd.Checks.Find(provenance.CheckPresent); !ok || !c.OK || !strings.Contains(c.Reason, "no provenance") || !vd.OK() {
		t.Errorf("release without provenance, optional: %+v, verdict %v", c, vd.OK())
	}
}
