package provenance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

const (
	repo   = "https://github.com/acme/enclave"
	commit = "0123456789abcdef0123456789abcdef01234567"
	wfPath = ".github/workflows/release.yml"
	ref    = "refs/tags/v1.4.2"
)

var releaseID = provenancetest.GitHubWorkflow(repo, wfPath, ref, commit)

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

func testRelease() ([]statement.Subject, *statement.Release) {
	subj := []statement.Subject{
		{Name: "bzImage", Digest: statement.Digest{SHA256: hex64('a')}},
		{Name: "initrd.img", Digest: statement.Digest{SHA256: hex64('b'), SHA384: strings.Repeat("c", 96)}},
	}
	rel := &statement.Release{
		Version:  "1.4.2",
		Time:     time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{
			LaunchDigest: strings.Repeat("d", 96),
		}},
		Source: statement.Source{Repo: repo, Commit: commit},
		Recipe: statement.Recipe{
			Argv:    []string{"make", "release"},
			Env:     map[string]string{"SOURCE_DATE_EPOCH": "0"},
			Outputs: []string{"out/bzImage", "out/initrd.img"},
		},
	}
	return subj, rel
}

// virtual is one virtual Sigstore for the whole test binary, with its
// trusted root written to a file.
var virtual struct {
	once sync.Once
	ss   *provenancetest.Sigstore
	dir  string
	err  error
}

func virtualSigstore(t testing.TB) (*provenancetest.Sigstore, string) {
	t.Helper()
	virtual.once.Do(func() {
		virtual.ss, virtual.err = provenancetest.New()
		if virtual.err != nil {
			return
		}
		virtual.dir, virtual.err = os.MkdirTemp("", "provenance-test")
		if virtual.err != nil {
			return
		}
		virtual.err = virtual.ss.WriteTrustedRoot(filepath.Join(virtual.dir, "trusted_root.json"))
	})
	if virtual.err != nil {
		t.Fatal(virtual.err)
	}
	return virtual.ss, virtual.dir
}

func virtualDir() string { return virtual.dir }

func TestMain(m *testing.M) {
	code := m.Run()
	if virtual.dir != "" {
		os.RemoveAll(virtual.dir)
	}
	os.Exit(code)
}

// loadPolicy writes text as a policy file in dir and loads it, as the log
// and `attestlog verify` do (so relative sigstore-root lines resolve).
func loadPolicy(t testing.TB, dir, text string) *policy.Policy {
	t.Helper()
	path := filepath.Join(dir, "policy-"+strings.ReplaceAll(t.Name(), "/", "_")+".txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const builderExtras = " ref=refs/tags/v.* build-config=https://github\\.com/acme/enclave/\\.github/workflows/release\\.yml@refs/tags/.*" +
	" builder-id=" + provenancetest.GitHubHostedRunner +
	" build-type=" + provenance.BuildTypeRecipe + " build-type=" + provenance.BuildTypeGitHubWorkflow

func acmePolicy(t testing.TB, extra string) *policy.ProvenancePolicy {
	_, dir := virtualSigstore(t)
	text := "sigstore-root trusted_root.json\n" +
		releaseID.PolicyLine("builder", "acme-release") + builderExtras + "\n" +
		provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit).PolicyLine("keyless-operator", "acme-ci") + "\n" +
		extra
	return &loadPolicy(t, dir, text).Provenance
}

func mustCheck(t *testing.T, v *provenance.Verifier, rel *statement.Release, subj []statement.Subject) (check.List, *provenance.Identity) {
	t.Helper()
	cs, id, err := v.Check(rel, subj, time.Now())
	if err != nil {
		t.Fatalf("Check: %v\n%s", err, cs)
	}
	return cs, id
}

func newVerifier(t testing.TB, pp *policy.ProvenancePolicy) *provenance.Verifier {
	t.Helper()
	v, err := provenance.New(pp)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var allChecks = []string{provenance.CheckSignature, provenance.CheckBuilder, provenance.CheckDigests, provenance.CheckCommit, provenance.CheckRecipe, provenance.CheckBuilderID}

func wantAllPass(t *testing.T, cs check.List) {
	t.Helper()
	for _, name := range allChecks {
		c, ok := cs.Find(name)
		if !ok || !c.OK {
			t.Errorf("check %q = %+v (found %v), want passed; all checks:\n%s", name, c, ok, cs)
		}
	}
	if err := provenance.Rejection(cs); err != nil {
		t.Errorf("Rejection = %v, want nil", err)
	}
}

// TestVirtualSigstoreRelease is the end-to-end path with bundles written
// as JSON by a virtual Sigstore and a trusted root loaded back from a
// file: the release (with its provenance) is encoded as the log encodes
// it, parsed back strictly, and checked.
func TestVirtualSigstoreRelease(t *testing.T) {
	ss, _ := virtualSigstore(t)
	v := newVerifier(t, acmePolicy(t, ""))
	for _, tc := range []struct {
		name string
		prov func(subj []statement.Subject, rel *statement.Release) provenancetest.Provenance
	}{
		{"recipe build type", provenancetest.RecipeProvenance},
		{"GitHub workflow build type", func(subj []statement.Subject, _ *statement.Release) provenancetest.Provenance {
			return provenancetest.GitHubProvenance(subj, releaseID, wfPath)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subj, rel := testRelease()
			b, err := ss.SignProvenance(releaseID, tc.prov(subj, rel), nil)
			if err != nil {
				t.Fatal(err)
			}
			rel.Provenance = b
			payload, err := statement.EncodeRelease(subj, rel)
			if err != nil {
				t.Fatalf("EncodeRelease with a %d-byte bundle: %v", len(b), err)
			}
			p, err := statement.ParseStatement(payload)
			if err != nil {
				t.Fatal(err)
			}
			cs, id := mustCheck(t, v, p.Release, p.Statement.Subject)
			wantAllPass(t, cs)
			if id == nil || id.Name != "acme-release" || id.Subject != releaseID.Subject || id.Commit != commit || id.Repo != repo ||
				id.BuilderID != provenancetest.GitHubHostedRunner || id.SignedAt.IsZero() {
				t.Errorf("identity = %+v", id)
			}
			// The package-level Check (cached verifier) agrees.
			cs2, _, err := provenance.Check(p.Release, p.Statement.Subject, acmePolicy(t, ""), time.Now())
			if err != nil || !cs2.OK() {
				t.Errorf("provenance.Check = %v\n%s", err, cs2)
			}
		})
	}
}

func TestProvenancePresence(t *testing.T) {
	subj, rel := testRelease()
	for _, tc := range []struct {
		extra string
		ok    bool
	}{
		{"", false}, // a builder line makes provenance required
		{"provenance optional\n", true},
		{"provenance required\n", false},
	} {
		v := newVerifier(t, acmePolicy(t, tc.extra))
		cs, id := mustCheck(t, v, rel, subj)
		if len(cs) != 1 || cs[0].Name != provenance.CheckPresent || cs[0].OK != tc.ok || id != nil {
			t.Errorf("policy extra %q: Check(no provenance) = %v, %+v; want one %q check with OK=%v", tc.extra, cs, id, provenance.CheckPresent, tc.ok)
		}
	}
	// No provenance section at all: releases without provenance pass,
	// releases with provenance cannot be verified.
	v := newVerifier(t, &loadPolicy(t, t.TempDir(), "").Provenance)
	cs, _ := mustCheck(t, v, rel, subj)
	if !cs.OK() {
		t.Errorf("empty policy, no provenance: %s", cs)
	}
	rel.Provenance = []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	cs, _, err := v.Check(rel, subj, time.Now())
	if c, _ := cs.Find(provenance.CheckSignature); err != nil || c.OK || !strings.Contains(c.Reason, "the policy has no sigstore-root line") {
		t.Errorf("empty policy, with provenance: Check = %v, %v; want a failed %q saying the policy has no sigstore-root", cs, err, provenance.CheckSignature)
	}
	if _, _, err := v.VerifyKeylessStatement(rel.Provenance, time.Now()); !errors.Is(err, provenance.ErrUnauthorized) {
		t.Errorf("empty policy: VerifyKeylessStatement = %v, want ErrUnauthorized", err)
	}
}

type negCase struct {
	name    string
	id      *provenancetest.Identity                               // signing identity (default releaseID)
	prov    func(p *provenancetest.Provenance)                     // edits the provenance
	opts    *provenancetest.SignOptions                            // signing options
	policy  string                                                 // extra policy lines
	signer  func(t *testing.T) *provenancetest.Sigstore            // default: the trusted virtual Sigstore
	tamper  func(t *testing.T, bundle []byte) []byte               // edits the bundle JSON
	release func(subj []statement.Subject, rel *statement.Release) // edits the release after signing
	check   string                                                 // the check that must fail
	want    string                                                 // in its reason
}

func TestNegative(t *testing.T) {
	virtualSigstore(t) // for virtualDir
	wrongSubject := releaseID
	wrongSubject.Subject = repo + "/.github/workflows/nightly.yml@" + ref
	wrongIssuer := releaseID
	wrongIssuer.Issuer = "https://gitlab.com"
	wrongRepo := releaseID
	wrongRepo.Repo = "https://github.com/mallory/enclave"
	wrongCertCommit := releaseID
	wrongCertCommit.Commit = strings.Repeat("9", 40)
	branch := releaseID
	branch.Ref = "refs/heads/main"

	for _, tc := range []negCase{
		{name: "wrong identity", id: &wrongSubject, check: provenance.CheckBuilder, want: `wrong subject: certificate has "https://github.com/acme/enclave/.github/workflows/nightly.yml@refs/tags/v1.4.2"`},
		{name: "wrong issuer", id: &wrongIssuer, check: provenance.CheckBuilder, want: `wrong OIDC issuer: certificate has "https://gitlab.com"`},
		{name: "wrong repository", id: &wrongRepo, check: provenance.CheckBuilder, want: `wrong source repository: certificate has "https://github.com/mallory/enclave"`},
		{name: "wrong ref", id: &branch, check: provenance.CheckBuilder, want: `wrong source ref: certificate has "refs/heads/main"`},
		{name: "artifact digest not in subject", prov: func(p *provenancetest.Provenance) {
			p.Subjects = p.Subjects[1:]
		}, check: provenance.CheckDigests, want: "artifact digest not in the provenance subject: bzImage (sha256:aaaa"},
		{name: "artifact digest disagrees", prov: func(p *provenancetest.Provenance) {
			p.Subjects = append(p.Subjects[:1:1], statement.Subject{Name: "initrd.img", Digest: statement.Digest{SHA256: hex64('b'), SHA384: strings.Repeat("e", 96)}})
		}, check: provenance.CheckDigests, want: "has sha384 eeee"},
		{name: "commit mismatch in provenance", prov: func(p *provenancetest.Provenance) {
			p.Commit = strings.Repeat("8", 40)
		}, check: provenance.CheckCommit, want: "commit mismatch: the release says " + commit + " but the provenance's resolved source dependency is 8888"},
		{name: "commit mismatch in certificate", id: &wrongCertCommit, check: provenance.CheckCommit, want: "commit mismatch: the release says " + commit + " but the certificate's source repository digest is 9999"},
		{name: "release names another commit", release: func(_ []statement.Subject, rel *statement.Release) {
			rel.Source.Commit = strings.Repeat("7", 40)
		}, check: provenance.CheckCommit, want: "commit mismatch: the release says 7777"},
		{name: "recipe argv differs", prov: func(p *provenancetest.Provenance) {
			p.ExternalParameters["argv"] = []any{"make", "debug"}
		}, check: provenance.CheckRecipe, want: `argv mismatch: the provenance ran ["make" "debug"]`},
		{name: "recipe env differs", release: func(_ []statement.Subject, rel *statement.Release) {
			rel.Recipe.Env["CC"] = "clang"
		}, check: provenance.CheckRecipe, want: "env mismatch"},
		{name: "unrecorded external parameter", prov: func(p *provenancetest.Provenance) {
			p.ExternalParameters["patches"] = []any{"evil.patch"}
		}, check: provenance.CheckRecipe, want: `externalParameters has "patches"`},
		{name: "unknown build type", prov: func(p *provenancetest.Provenance) {
			p.BuildType = "https://example.com/mystery/v1"
		}, check: provenance.CheckRecipe, want: `build type "https://example.com/mystery/v1": attestlog cannot match`},
		{name: "builder id not allowed", prov: func(p *provenancetest.Provenance) {
			p.BuilderID = "https://ci.example.com/self-hosted"
		}, check: provenance.CheckBuilderID, want: `builder id "https://ci.example.com/self-hosted" is not allowed for builder acme-release`},
		{name: "tampered DSSE payload", tamper: tamperPayload, check: provenance.CheckSignature, want: "the DSSE payload is not the one that was signed and logged"},
		{name: "bundle from an untrusted root", signer: func(t *testing.T) *provenancetest.Sigstore {
			other, err := provenancetest.New()
			if err != nil {
				t.Fatal(err)
			}
			return other
		}, check: provenance.CheckSignature, want: "which the trusted root " + filepath.Join(virtualDir(), "trusted_root.json") + " does not list"},
		{name: "certificate from an untrusted Fulcio", signer: func(t *testing.T) *provenancetest.Sigstore {
			other, err := provenancetest.New()
			if err != nil {
				t.Fatal(err)
			}
			return other
		}, policy: "sigstore-require tlog=0 timestamps=0\n", opts: &provenancetest.SignOptions{NoTLog: true, NoTimestamp: true}, check: provenance.CheckSignature, want: "does not chain to a Fulcio CA of the trusted root"},
		{name: "timestamp from an untrusted TSA", signer: func(t *testing.T) *provenancetest.Sigstore {
			other, err := provenancetest.New()
			if err != nil {
				t.Fatal(err)
			}
			return other
		}, policy: "sigstore-require tlog=0\n", opts: &provenancetest.SignOptions{NoTLog: true}, check: provenance.CheckSignature, want: "RFC 3161 timestamp does not verify against a timestamp authority of the trusted root"},
		{name: "expired certificate without timestamp",
			opts:   &provenancetest.SignOptions{CertNotBefore: time.Now().Add(-30 * time.Minute), NoTLog: true, NoTimestamp: true},
			policy: "sigstore-require tlog=0 timestamps=0\n",
			check:  provenance.CheckSignature, want: "and the bundle carries no timestamp"},
		{name: "expired certificate, logged too late",
			opts:  &provenancetest.SignOptions{CertNotBefore: time.Now().Add(-30 * time.Minute)},
			check: provenance.CheckSignature, want: "signing certificate was not valid at any verified time"},
		{name: "no transparency-log entry", opts: &provenancetest.SignOptions{NoTLog: true},
			check: provenance.CheckSignature, want: "the bundle has no transparency-log entry and the policy requires 1"},
		{name: "no timestamp at all", opts: &provenancetest.SignOptions{NoTLog: true, NoTimestamp: true}, policy: "sigstore-require tlog=0\n",
			check: provenance.CheckSignature, want: "the bundle has no timestamp (no transparency-log entry, no RFC 3161 timestamp) and the policy requires 1"},
	} {
		t.Run(tc.name, func(t *testing.T) { runNegative(t, tc) })
	}
}

func runNegative(t *testing.T, tc negCase) {
	ss, _ := virtualSigstore(t)
	if tc.signer != nil {
		ss = tc.signer(t)
	}
	id := releaseID
	if tc.id != nil {
		id = *tc.id
	}
	subj, rel := testRelease()
	p := provenancetest.RecipeProvenance(subj, rel)
	if tc.prov != nil {
		tc.prov(&p)
	}
	b, err := ss.SignProvenance(id, p, tc.opts)
	if err != nil {
		t.Fatal(err)
	}
	if tc.tamper != nil {
		b = tc.tamper(t, b)
	}
	rel.Provenance = b
	if tc.release != nil {
		tc.release(subj, rel)
	}
	v := newVerifier(t, acmePolicy(t, tc.policy))
	cs, _ := mustCheck(t, v, rel, subj)
	c, ok := cs.Find(tc.check)
	if !ok || c.OK {
		t.Fatalf("check %q = %+v (found %v), want failed; all checks:\n%s", tc.check, c, ok, cs)
	}
	t.Logf("%s: %s", c.Name, c.Reason)
	if !strings.Contains(c.Reason, tc.want) {
		t.Errorf("check %q reason = %q, want it to contain %q", tc.check, c.Reason, tc.want)
	}
	err = provenance.Rejection(cs)
	if !errors.Is(err, provenance.ErrRejected) || !strings.Contains(err.Error(), tc.check+": ") {
		t.Errorf("Rejection = %v, want ErrRejected naming %q", err, tc.check)
	}
	// Only checks that depend on the failure fail: e.g. a wrong commit
	// leaves the signature and identity passed.
	if tc.check != provenance.CheckSignature {
		for _, name := range []string{provenance.CheckSignature} {
			if c, _ := cs.Find(name); !c.OK {
				t.Errorf("check %q failed too: %s", name, c.Reason)
			}
		}
	}
}

// tamperPayload changes one artifact digest inside the signed DSSE
// payload, keeping the bundle well formed.
func tamperPayload(t *testing.T, b []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(payload, []byte(hex64('a')), []byte(hex64('f')), 1)
	if bytes.Equal(changed, payload) {
		t.Fatal("tamper: digest not found in payload")
	}
	env["payload"] = base64.StdEncoding.EncodeToString(changed)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMalformedProvenance(t *testing.T) {
	v := newVerifier(t, acmePolicy(t, ""))
	ss, _ := virtualSigstore(t)
	subj, rel := testRelease()
	good, err := ss.SignProvenance(releaseID, provenancetest.RecipeProvenance(subj, rel), nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	vm := m["verificationMaterial"].(map[string]any)
	tl := vm["tlogEntries"].([]any)
	vm["tlogEntries"] = []any{tl[0], tl[0], tl[0], tl[0], tl[0]}
	tooMany, _ := json.Marshal(m)

	for _, tc := range []struct {
		name, in, want string
	}{
		{"not JSON", "{nope", "malformed Sigstore bundle"},
		{"empty object", "{}", "malformed Sigstore bundle"},
		{"unknown media type", `{"mediaType":"application/json"}`, "malformed Sigstore bundle"},
		{"too large", `{"x":"` + strings.Repeat("a", provenance.MaxBundleSize) + `"}`, "the limit is"},
		{"too many tlog entries", string(tooMany), "5 transparency-log entries, the limit is 4"},
	} {
		rel.Provenance = []byte(tc.in)
		cs, _, err := v.Check(rel, subj, time.Now())
		if !errors.Is(err, provenance.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check error = %v, want ErrMalformed containing %q", tc.name, err, tc.want)
		}
		if c, ok := cs.Find(provenance.CheckSignature); !ok || c.OK {
			t.Errorf("%s: checks = %v, want a failed %q", tc.name, cs, provenance.CheckSignature)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"mediaType":"nope"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ text, want string }{
		{releaseID.PolicyLine("builder", "b"), "need a sigstore-root line"},
		{"provenance required", "need a sigstore-root line"},
		{"sigstore-root missing.json\n" + releaseID.PolicyLine("builder", "b"), "missing.json"},
		{"sigstore-root bad.json\n" + releaseID.PolicyLine("builder", "b"), "not a Sigstore trusted root"},
	} {
		_, err := provenance.New(&loadPolicy(t, dir, tc.text).Provenance)
		if !errors.Is(err, provenance.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q) = %v, want ErrConfig containing %q", tc.text, err, tc.want)
		}
	}
	_, vdir := virtualSigstore(t)
	_, err := provenance.New(&loadPolicy(t, vdir, "sigstore-root trusted_root.json\nsigstore-require sct=yes\n").Provenance)
	if !errors.Is(err, provenance.ErrConfig) || !strings.Contains(err.Error(), "lists no CT logs") {
		t.Errorf("sct=yes with a root without CT logs: %v", err)
	}
}

func TestKeylessStatement(t *testing.T) {
	ss, _ := virtualSigstore(t)
	v := newVerifier(t, acmePolicy(t, ""))
	subj, rel := testRelease()
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		t.Fatal(err)
	}
	ciID := provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit)
	b, err := ss.SignStatement(ciID, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !provenance.IsBundle(b) {
		t.Fatalf("IsBundle(keyless bundle) = false")
	}
	got, id, err := v.VerifyKeylessStatement(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("payload = %q, want %q", got, payload)
	}
	if id.Name != "acme-ci" || id.Subject != ciID.Subject || id.Issuer != provenancetest.GitHubIssuer {
		t.Errorf("identity = %+v", id)
	}
	if _, err := statement.ParseStatement(got); err != nil {
		t.Errorf("ParseStatement(payload) = %v", err)
	}

	// Our own DSSE envelope is not a bundle.
	signer, err := statement.GenerateSigner(statement.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	envBytes, err := statement.Sign(payload, signer)
	if err != nil {
		t.Fatal(err)
	}
	if provenance.IsBundle(envBytes) {
		t.Errorf("IsBundle(DSSE envelope) = true")
	}

	// A builder identity is not a keyless operator.
	notOp, err := ss.SignStatement(releaseID, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKeylessStatement(notOp, time.Now()); !errors.Is(err, provenance.ErrUnauthorized) || !strings.Contains(err.Error(), "keyless-operator acme-ci: wrong subject") {
		t.Errorf("VerifyKeylessStatement(builder-signed) = %v, want ErrUnauthorized naming the subject", err)
	}
	// Tampered payload.
	if _, _, err := v.VerifyKeylessStatement(tamperPayload(t, b), time.Now()); !errors.Is(err, provenance.ErrRejected) {
		t.Errorf("VerifyKeylessStatement(tampered) = %v, want ErrRejected", err)
	}
	// Not a bundle, too large.
	for _, in := range [][]byte{envBytes, []byte("{}"), bytes.Repeat([]byte(" "), statement.MaxEntrySize+1)} {
		if _, _, err := v.VerifyKeylessStatement(in, time.Now()); !errors.Is(err, provenance.ErrMalformed) {
			t.Errorf("VerifyKeylessStatement(%.20q…) = %v, want ErrMalformed", in, err)
		}
	}
	// Other payload types are refused before verification.
	other, err := ss.SignDSSE(ciID, "text/plain", []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKeylessStatement(other, time.Now()); !errors.Is(err, provenance.ErrMalformed) || !strings.Contains(err.Error(), "payloadType") {
		t.Errorf("VerifyKeylessStatement(text/plain) = %v", err)
	}
}

// sigstoreGo returns the directory of the sigstore-go module in the module
// cache, whose shipped test data the real-bundle tests read.
func sigstoreGo(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sigstore/sigstore-go").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		testenv.Missing(t, "the sigstore-go module source (go list -m)", err)
	}
	return dir
}

// TestRealBundleSigstoreJS verifies, offline, the SLSA v1 provenance that
// npm's GitHub Actions release of sigstore-js 2.0.0 published (shipped by
// sigstore-go v1.3.0 as pkg/testing/data/bundles/sigstore.js@2.0.0-provenance.sigstore.json)
// against the public-good trusted root shipped beside it
// (pkg/testing/data/trusted-roots/public-good.json). The bundle (v0.1) has
// a Rekor entry with a signed entry timestamp and an inclusion proof, and
// its certificate embeds an SCT: all three are required by the default
// policy and verified. Its subject is an npm package with only a sha512
// digest, which no attestlog release artifact carries (sha256/sha384), so
// the digest check must fail, naming what the provenance does cover.
func TestRealBundleSigstoreJS(t *testing.T) {
	mod := sigstoreGo(t)
	bundleJSON, err := os.ReadFile(filepath.Join(mod, "pkg/testing/data/bundles/sigstore.js@2.0.0-provenance.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	const jsRepo = "https://github.com/sigstore/sigstore-js"
	const jsCommit = "f0b49a04e5a62250e0f60fb128004a73110fe311"
	text := "sigstore-root " + filepath.Join(mod, "pkg/testing/data/trusted-roots/public-good.json") + "\n" +
		"builder sigstore-js issuer=" + provenancetest.GitHubIssuer +
		" subject=" + jsRepo + "/.github/workflows/release.yml@refs/heads/main repo=" + jsRepo +
		" ref=refs/heads/main builder-id=https://github.com/actions/runner/github-hosted build-type=" + provenance.BuildTypeGitHubWorkflowSLSA + "\n"
	pp := &loadPolicy(t, t.TempDir(), text).Provenance
	v := newVerifier(t, pp)
	rel := &statement.Release{
		Source:     statement.Source{Repo: jsRepo, Commit: jsCommit},
		Recipe:     statement.Recipe{Argv: []string{"npm", "publish"}},
		Provenance: bundleJSON,
	}
	subj := []statement.Subject{{Name: "sigstore-2.0.0.tgz", Digest: statement.Digest{SHA256: hex64('a')}}}
	cs, id := mustCheck(t, v, rel, subj)
	t.Logf("checks:\n%s", cs)
	for _, name := range []string{provenance.CheckSignature, provenance.CheckBuilder, provenance.CheckCommit, provenance.CheckRecipe, provenance.CheckBuilderID} {
		if c, _ := cs.Find(name); !c.OK {
			t.Errorf("check %q failed: %s", name, c.Reason)
		}
	}
	if c, _ := cs.Find(provenance.CheckSignature); !strings.Contains(c.Reason, "1 transparency-log entry") || !strings.Contains(c.Reason, "embedded SCT") {
		t.Errorf("signature reason = %q, want the log entry and the SCT (public-good lists CT logs) named", c.Reason)
	}
	if c, _ := cs.Find(provenance.CheckDigests); c.OK || !strings.Contains(c.Reason, "pkg:npm/sigstore@2.0.0 [sha512]") {
		t.Errorf("digest check = %+v, want failed naming the sha512-only subject", c)
	}
	// An artifact with the package's sha512 (what npm's provenance
	// names) is a subject of it.
	var env struct {
		DSSE struct {
			Payload []byte `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(bundleJSON, &env); err != nil || json.Unmarshal(env.DSSE.Payload, &st) != nil || len(st.Subject) != 1 || st.Subject[0].Digest["sha512"] == "" {
		t.Fatalf("reading the bundle's subject: %v %+v", err, st)
	}
	sha512Subj := []statement.Subject{{Name: "sigstore-2.0.0.tgz", Digest: statement.Digest{SHA512: st.Subject[0].Digest["sha512"]}}}
	if _, err := statement.EncodeRelease(sha512Subj, &statement.Release{Version: "2.0.0", Time: time.Now().UTC().Truncate(time.Second), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("ab", 48)}}, Source: rel.Source, Recipe: rel.Recipe}); err != nil {
		t.Fatalf("a release with a sha512-only artifact: %v", err)
	}
	cs512, _ := mustCheck(t, v, rel, sha512Subj)
	if c, _ := cs512.Find(provenance.CheckDigests); !c.OK {
		t.Errorf("digest check with the sha512 artifact = %+v, want passed", c)
	}
	wrong := []statement.Subject{{Name: "sigstore-2.0.0.tgz", Digest: statement.Digest{SHA512: strings.Repeat("00", 64)}}}
	if cs, _ := mustCheck(t, v, rel, wrong); func() bool { c, _ := cs.Find(provenance.CheckDigests); return c.OK }() {
		t.Error("digest check passed with a wrong sha512")
	}
	if id == nil || id.Commit != jsCommit || id.Repo != jsRepo || id.SignedAt.Year() != 2023 {
		t.Errorf("identity = %+v", id)
	}

	// The same bundle under a policy that wants another workflow.
	text2 := strings.Replace(text, "release.yml@", "publish.yml@", 1)
	v2 := newVerifier(t, &loadPolicy(t, t.TempDir(), text2).Provenance)
	cs2, _ := mustCheck(t, v2, rel, subj)
	if c, _ := cs2.Find(provenance.CheckBuilder); c.OK || !strings.Contains(c.Reason, "wrong subject") {
		t.Errorf("builder check with another workflow = %+v", c)
	}
	// And with a release claiming another commit.
	rel.Source.Commit = strings.Repeat("1", 40)
	cs3, _ := mustCheck(t, v, rel, subj)
	if c, _ := cs3.Find(provenance.CheckCommit); c.OK {
		t.Errorf("commit check with another commit = %+v", c)
	}
}

// TestRealBundleExamplesProvenance verifies sigstore-go v1.3.0's
// examples/bundle-provenance.json (npm provenance of sigstore-js 1.3.0,
// April 2023) offline against examples/trusted-root-public-good.json. Its
// signature, log entry, SCT and identity verify, but its predicate is SLSA
// provenance v0.2, which attestlog does not accept: the three checks that
// read the predicate fail saying so.
func TestRealBundleExamplesProvenance(t *testing.T) {
	mod := sigstoreGo(t)
	bundleJSON, err := os.ReadFile(filepath.Join(mod, "examples/bundle-provenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	text := "sigstore-root " + filepath.Join(mod, "examples/trusted-root-public-good.json") + "\n" +
		"builder npm issuer=" + provenancetest.GitHubIssuer + " subject-regex=https://github\\.com/sigstore/sigstore-js/\\.github/workflows/release\\.yml@refs/heads/.*\n"
	v := newVerifier(t, &loadPolicy(t, t.TempDir(), text).Provenance)
	rel := &statement.Release{
		Source:     statement.Source{Repo: "https://github.com/sigstore/sigstore-js", Commit: "dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1"},
		Provenance: bundleJSON,
	}
	subj := []statement.Subject{{Name: "sigstore-1.3.0.tgz", Digest: statement.Digest{SHA256: hex64('a')}}}
	cs, id := mustCheck(t, v, rel, subj)
	t.Logf("checks:\n%s", cs)
	for _, name := range []string{provenance.CheckSignature, provenance.CheckBuilder} {
		if c, _ := cs.Find(name); !c.OK {
			t.Errorf("check %q failed: %s", name, c.Reason)
		}
	}
	for _, name := range []string{provenance.CheckCommit, provenance.CheckRecipe, provenance.CheckBuilderID} {
		if c, _ := cs.Find(name); c.OK || !strings.Contains(c.Reason, `"https://slsa.dev/provenance/v0.2"; attestlog accepts SLSA provenance v1`) {
			t.Errorf("check %q = %+v, want failed on the v0.2 predicate", name, c)
		}
	}
	if id == nil || id.Name != "npm" {
		t.Errorf("identity = %+v", id)
	}
}

// TestRealBundleTamperedOffline: flipping the sigstore-js bundle's payload
// breaks its real signature.
func TestRealBundleTampered(t *testing.T) {
	mod := sigstoreGo(t)
	b, err := os.ReadFile(filepath.Join(mod, "pkg/testing/data/bundles/sigstore.js@2.0.0-provenance.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(p, []byte("f0b49a04"), []byte("00000000"), 1))
	b, _ = json.Marshal(m)
	text := "sigstore-root " + filepath.Join(mod, "pkg/testing/data/trusted-roots/public-good.json") + "\nprovenance optional\n"
	v := newVerifier(t, &loadPolicy(t, t.TempDir(), text).Provenance)
	cs, _ := mustCheck(t, v, &statement.Release{Provenance: b}, nil)
	if c, _ := cs.Find(provenance.CheckSignature); c.OK {
		t.Errorf("tampered real bundle: %s", cs)
	}
}

func TestIsBundle(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`, true},
		{" \n\t{\"mediaType\":\"application/vnd.dev.sigstore.bundle+json;version=0.1\"}", true},
		{`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`, false},
		{`{"mediaType":"application/json"}`, false},
		{`["application/vnd.dev.sigstore.bundle.v0.3+json"]`, false},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"`, false},
		{``, false},
	} {
		if got := provenance.IsBundle([]byte(tc.in)); got != tc.want {
			t.Errorf("IsBundle(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRejection(t *testing.T) {
	if err := provenance.Rejection(nil); !errors.Is(err, provenance.ErrRejected) {
		t.Errorf("Rejection(no checks) = %v, want ErrRejected", err)
	}
	cs := check.List{check.Pass("a", "fine"), check.Fail("b", "broken"), check.Fail("c", "worse")}
	if err := provenance.Rejection(cs); !errors.Is(err, provenance.ErrRejected) || err.Error() != "provenance rejected: b: broken; c: worse" {
		t.Errorf("Rejection = %v", err)
	}
}

// TestConcurrentCheck runs one verifier from several goroutines (run with
// -race): admission shares one per policy.
func TestConcurrentCheck(t *testing.T) {
	ss, _ := virtualSigstore(t)
	v := newVerifier(t, acmePolicy(t, ""))
	subj, rel := testRelease()
	good, err := ss.SignProvenance(releaseID, provenancetest.RecipeProvenance(subj, rel), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := *rel
			r.Provenance = good
			if i%2 == 1 {
				r.Source.Commit = strings.Repeat("5", 40) // must fail, independently of the others
			}
			cs, _, err := v.Check(&r, subj, time.Now())
			if err != nil || cs.OK() != (i%2 == 0) {
				errs <- fmt.Sprintf("goroutine %d: err %v, checks:\n%s", i, err, cs)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
