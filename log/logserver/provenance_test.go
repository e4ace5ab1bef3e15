package logserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// TestProvenanceAdmission publishes releases whose SLSA provenance comes
// from sigstore-go's virtual Sigstore (a real trusted-root file and real
// bundles) to a log whose policy requires a builder identity.
func TestProvenanceAdmission(t *testing.T) {
	ss, err := provenancetest.New()
	if err != nil {
		t.Fatal(err)
	}
	const repo = "https://github.com/acme/enclave"
	commit := strings.Repeat("a", 40)
	id := provenancetest.GitHubWorkflow(repo, ".github/workflows/release.yml", "refs/tags/v1.0.0", commit)
	ciID := provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit)
	tl := newTestLogPolicy(t, nil, func(dir string) string {
		if err := ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json")); err != nil {
			t.Fatal(err)
		}
		return "sigstore-root trusted_root.json\n" + id.PolicyLine("builder", "acme-release") + "\n" +
			ciID.PolicyLine("keyless-operator", "acme-ci") + "\n"
	})
	mk := func(mutate func(rel *statement.Release, subj []statement.Subject) []statement.Subject) []byte {
		subj := []statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}
		rel := &statement.Release{
			Version: "1.0.0", Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(7)}},
			Source:       statement.Source{Repo: repo, Commit: commit},
			Recipe:       statement.Recipe{Argv: []string{"make", "image"}, Outputs: []string{"disk.img"}},
		}
		provSubj := subj
		if mutate != nil {
			provSubj = mutate(rel, subj)
		}
		if rel.Provenance == nil {
			b, err := ss.SignProvenance(id, provenancetest.RecipeProvenance(provSubj, rel), nil)
			if err != nil {
				t.Fatal(err)
			}
			rel.Provenance = b
		}
		if len(rel.Provenance) == 1 {
			rel.Provenance = nil
		}
		p, err := statement.EncodeRelease(subj, rel)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := statement.Sign(p, tl.operator)
		return e
	}
	good := mk(nil)
	if code, msg := tl.post(t, good); code != 200 {
		t.Fatalf("release with good provenance: %d %s", code, msg)
	}
	for _, tc := range []struct {
		name   string
		mutate func(rel *statement.Release, subj []statement.Subject) []statement.Subject
		want   string
	}{
		{"artifact not in the provenance subject", func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
			return []statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ff", 32)}}}
		}, "artifact digests in provenance subject"},
		{"commit mismatch", func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
			// The provenance is made for another commit, then the release
			// claims this one.
			other := *rel
			other.Source.Commit = strings.Repeat("b", 40)
			b, err := ss.SignProvenance(id, provenancetest.RecipeProvenance(subj, &other), nil)
			if err != nil {
				t.Fatal(err)
			}
			rel.Provenance = b
			return subj
		}, "source commit"},
		{"no provenance where the policy requires it", func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
			rel.Provenance = []byte{0} // marker: drop it
			return subj
		}, "provenance present"},
		{"wrong builder identity", func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
			bad := provenancetest.GitHubWorkflow(repo, ".github/workflows/evil.yml", "refs/heads/main", commit)
			b, err := ss.SignProvenance(bad, provenancetest.RecipeProvenance(subj, rel), nil)
			if err != nil {
				t.Fatal(err)
			}
			rel.Provenance = b
			return subj
		}, "builder identity"},
	} {
		code, msg := tl.post(t, mk(tc.mutate))
		if code != 403 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: POST /add = %d %q, want 403 naming %q", tc.name, code, msg, tc.want)
		}
	}
	// The admitted release is proven and marked as having provenance.
	p, _, err := tl.client.WaitProof(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tl.verifyProof(t, p, good)
	if err := tl.waitIndexed(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	info, err := tl.client.Entry(t.Context(), 0)
	if err != nil || !info.HasProvenance {
		t.Errorf("entry 0 = %+v, %v; want has_provenance", info, err)
	}
	if n := tl.size(t); n != 1 {
		t.Errorf("log has %d entries, want 1 (rejections append nothing)", n)
	}

	// Keyless: the CI identity signs the release statement itself; the
	// log stores the Sigstore bundle.
	goodP, _ := statement.Parse(mk(func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
		rel.Version = "1.0.1"
		return subj
	}))
	bundle, err := ss.SignStatement(ciID, goodP.Envelope.Payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, msg := tl.post(t, bundle)
	if code != 200 {
		t.Fatalf("keyless release: %d %s", code, msg)
	}
	if code, _ := tl.post(t, bundle); code != 200 {
		t.Errorf("keyless resubmission: %d, want 200 (duplicate)", code)
	}
	stranger := provenancetest.GitHubWorkflow("https://github.com/evil/fork", ".github/workflows/publish.yml", "refs/heads/main", commit)
	otherP, _ := statement.Parse(mk(func(rel *statement.Release, subj []statement.Subject) []statement.Subject {
		rel.Version = "1.0.2-evil"
		return subj
	}))
	evil, _ := ss.SignStatement(stranger, otherP.Envelope.Payload, nil)
	if code, msg := tl.post(t, evil); code != 403 || !strings.Contains(msg, "matches no keyless-operator") {
		t.Errorf("keyless release by an unknown identity: %d %q, want 403", code, msg)
	}
	// Turned away on the identity its certificate names, before the
	// cryptography: the same bundle with its signature broken gets the
	// same answer, not a verification failure (the second security
	// review's item 6: a flood of foreign bundles costs a parse each).
	var bj map[string]any
	if err := json.Unmarshal(evil, &bj); err != nil {
		t.Fatal(err)
	}
	sigs := bj["dsseEnvelope"].(map[string]any)["signatures"].([]any)
	sigs[0].(map[string]any)["sig"] = base64.StdEncoding.EncodeToString(make([]byte, 64))
	broken, _ := json.Marshal(bj)
	if code, msg := tl.post(t, broken); code != 403 || !strings.Contains(msg, "matches no keyless-operator") {
		t.Errorf("keyless release by an unknown identity, signature broken: %d %q, want 403 naming the identity", code, msg)
	}
	// The logged statement, signed by anyone at all, is answered as the
	// duplicate it is: nothing is verified and nothing appended.
	replay, _ := ss.SignStatement(stranger, goodP.Envelope.Payload, nil)
	if r, err := tl.client.Add(t.Context(), replay); err != nil || !r.Duplicate || r.Index != 1 {
		t.Errorf("the logged keyless statement under a stranger's signature = %+v, %v; want the duplicate of 1", r, err)
	}
	p1, _, err := tl.client.WaitProof(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := statement.ParseEntry(bundle); want == nil || string(p1.Extra) != string(want.Bundle) {
		t.Error("the log does not store the canonical encoding of the keyless bundle")
	}
	if err := tl.waitIndexed(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	info, err = tl.client.Entry(t.Context(), 1)
	if err != nil || info.Signer != "acme-ci" || info.Kind != "release" {
		t.Errorf("keyless entry = %+v, %v; want a release signed by acme-ci", info, err)
	}
}

// TestKeylessReencodedReadBack submits keyless bundles spelled the ways
// sigstore-go's parser accepts but a naive reader may not — snake_case
// dsse_envelope, payload base64 without padding, URL-safe base64, extra
// whitespace — and requires every reader to read back what was admitted:
// the stored entry is the canonical encoding, ParseEntry gives the same
// statement, the entry page and lookups work, and 'log reindex' completes
// and names the signer as admission did.
func TestKeylessReencodedReadBack(t *testing.T) {
	ss, err := provenancetest.New()
	if err != nil {
		t.Fatal(err)
	}
	const repo = "https://github.com/acme/enclave"
	commit := strings.Repeat("a", 40)
	ciID := provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit)
	tl := newTestLogPolicy(t, nil, func(dir string) string {
		if err := ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json")); err != nil {
			t.Fatal(err)
		}
		return "sigstore-root trusted_root.json\n" + ciID.PolicyLine("keyless-operator", "acme-ci") + "\n"
	})
	reencodings := []struct {
		name string
		f    func(t *testing.T, b []byte) []byte
	}{
		{"as signed", func(t *testing.T, b []byte) []byte { return b }},
		{"dsse_envelope", func(t *testing.T, b []byte) []byte { return respell(t, b, provenancetest.SnakeCaseDSSE) }},
		{"unpadded payload", func(t *testing.T, b []byte) []byte { return respell(t, b, provenancetest.UnpaddedPayload) }},
		{"url-safe payload", func(t *testing.T, b []byte) []byte { return respell(t, b, provenancetest.URLSafePayload) }},
		{"indented", func(t *testing.T, b []byte) []byte { return respell(t, b, provenancetest.Indented) }},
	}
	var bundles [][]byte
	for i, re := range reencodings {
		rel := &statement.Release{
			Version: fmt.Sprintf("1.0.%d", i), Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(20 + i)}},
			Source:       statement.Source{Repo: repo, Commit: commit},
			Recipe:       statement.Recipe{Argv: []string{"make", "image"}, Outputs: []string{"disk.img"}},
		}
		payload, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}, rel)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ss.SignStatement(ciID, payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		b = re.f(t, b)
		bundles = append(bundles, b)
		if code, msg := tl.post(t, b); code != 200 {
			t.Fatalf("%s: POST /add = %d %s", re.name, code, msg)
		}
	}
	n := uint64(len(bundles))
	if err := tl.waitIndexed(t.Context(), n-1); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i, b := range bundles {
			pr, _, err := tl.client.WaitProof(t.Context(), uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			tl.verifyProof(t, pr, pr.Extra)
			got, err := statement.ParseEntry(pr.Extra)
			if err != nil {
				t.Errorf("%s: %s: the stored entry does not parse: %v", when, reencodings[i].name, err)
				continue
			}
			want, _ := statement.ParseEntry(b)
			if string(got.Bundle) != string(pr.Extra) || got.PayloadHash != want.PayloadHash {
				t.Errorf("%s: %s: stored entry is not the canonical encoding of the submitted statement", when, reencodings[i].name)
			}
			info, err := tl.client.Entry(t.Context(), uint64(i))
			if err != nil || info.Signer != "acme-ci" || info.Kind != "release" {
				t.Errorf("%s: %s: entry %d = %+v, %v; want a release signed by acme-ci", when, reencodings[i].name, i, info, err)
			}
			// A resubmission in another spelling is the same statement.
			if r, err := tl.client.Add(t.Context(), reencodings[(i+1)%len(reencodings)].f(t, b)); err != nil || !r.Duplicate || r.Index != uint64(i) {
				t.Errorf("%s: %s respelled: %+v, %v; want duplicate of %d", when, reencodings[i].name, r, err, i)
			}
		}
	}
	check("live")
	if got, err := tl.Reindex(t.Context()); err != nil || got != n {
		t.Fatalf("Reindex = %d, %v; want %d", got, err, n)
	}
	check("after reindex")
	if s := tl.size(t); s != n {
		t.Errorf("log has %d entries, want %d (respellings are duplicates)", s, n)
	}

	// A log written before bundles were stored canonically holds them as
	// submitted: appended here past admission, as that version did. A
	// reindex reads each back as the release it is, signed by acme-ci.
	var old []uint64
	for i, re := range reencodings[1:] {
		rel := &statement.Release{
			Version: fmt.Sprintf("0.9.%d", i), Time: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(40 + i)}},
			Source:       statement.Source{Repo: repo, Commit: commit},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		}
		payload, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("e1", 32)}}}, rel)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ss.SignStatement(ciID, payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := tl.Log.add(t.Context(), tessera.NewEntry(re.f(t, b)))()
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, idx.Index)
	}
	last := old[len(old)-1]
	if err := tl.waitIndexed(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	if got, err := tl.Reindex(t.Context()); err != nil || got != last+1 {
		t.Fatalf("Reindex over non-canonical bundles = %d, %v; want %d", got, err, last+1)
	}
	for i, idx := range old {
		info, err := tl.client.Entry(t.Context(), idx)
		if err != nil || info.Kind != "release" || info.Signer != "acme-ci" {
			t.Errorf("%s bundle stored as submitted, after reindex: entry %d = %+v, %v; want a release by acme-ci", reencodings[i+1].name, idx, info, err)
		}
	}
}

func respell(t *testing.T, b []byte, r provenancetest.Respelling) []byte {
	t.Helper()
	out, err := provenancetest.Reencode(b, r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
