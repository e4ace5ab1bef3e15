package provenance_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// benchCase is one release with provenance, and the same verification done
// by sigstore-go alone: parse the bundle, Verify it with the same verifier
// options (tlog, observer timestamps, SCT when the root has CT logs) and
// sigstore-go's own identity (issuer + SAN) and artifact digest policy.
type benchCase struct {
	name   string
	v      *provenance.Verifier
	rel    *statement.Release
	subj   []statement.Subject
	sv     *verify.Verifier
	policy verify.PolicyBuilder
	allOK  bool // Check must pass every check (false: the digest check fails by design)
}

func virtualBench(b *testing.B) benchCase {
	ss, dir := virtualSigstore(b)
	subj, rel := testRelease()
	bn, err := ss.SignProvenance(releaseID, provenancetest.RecipeProvenance(subj, rel), nil)
	if err != nil {
		b.Fatal(err)
	}
	rel.Provenance = bn
	tr, err := root.NewTrustedRootFromPath(filepath.Join(dir, "trusted_root.json"))
	if err != nil {
		b.Fatal(err)
	}
	sv, err := verify.NewVerifier(tr, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		b.Fatal(err)
	}
	digest, _ := hex.DecodeString(subj[0].Digest.SHA256)
	certID, err := verify.NewShortCertificateIdentity(releaseID.Issuer, "", releaseID.Subject, "")
	if err != nil {
		b.Fatal(err)
	}
	return benchCase{
		name: "virtual", v: newVerifier(b, acmePolicy(b, "")), rel: rel, subj: subj, sv: sv, allOK: true,
		policy: verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithCertificateIdentity(certID)),
	}
}

// sigstoreJSBench is the real sigstore-js 2.0.0 bundle against the
// public-good root (with an SCT to verify). Its subject has only a sha512
// digest, so sigstore-go is given that digest and Check's digest check
// fails (the other five pass); the cost is the same.
func sigstoreJSBench(b *testing.B) benchCase {
	mod := sigstoreGo(b)
	bn, err := os.ReadFile(filepath.Join(mod, "pkg/testing/data/bundles/sigstore.js@2.0.0-provenance.sigstore.json"))
	if err != nil {
		b.Fatal(err)
	}
	rootPath := filepath.Join(mod, "pkg/testing/data/trusted-roots/public-good.json")
	const jsRepo = "https://github.com/sigstore/sigstore-js"
	subject := jsRepo + "/.github/workflows/release.yml@refs/heads/main"
	text := "sigstore-root " + rootPath + "\nbuilder js issuer=" + provenancetest.GitHubIssuer + " subject=" + subject + " repo=" + jsRepo + "\n"
	tr, err := root.NewTrustedRootFromPath(rootPath)
	if err != nil {
		b.Fatal(err)
	}
	sv, err := verify.NewVerifier(tr, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1), verify.WithSignedCertificateTimestamps(1))
	if err != nil {
		b.Fatal(err)
	}
	digest, _ := hex.DecodeString("46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c")
	certID, err := verify.NewShortCertificateIdentity(provenancetest.GitHubIssuer, "", subject, "")
	if err != nil {
		b.Fatal(err)
	}
	return benchCase{
		name: "sigstore-js",
		v:    newVerifier(b, &loadPolicy(b, b.TempDir(), text).Provenance),
		rel: &statement.Release{
			Source:     statement.Source{Repo: jsRepo, Commit: "f0b49a04e5a62250e0f60fb128004a73110fe311"},
			Recipe:     statement.Recipe{Argv: []string{"npm", "publish"}},
			Provenance: bn,
		},
		subj:   []statement.Subject{{Name: "sigstore-2.0.0.tgz", Digest: statement.Digest{SHA256: hex64('a')}}},
		sv:     sv,
		policy: verify.NewPolicy(verify.WithArtifactDigest("sha512", digest), verify.WithCertificateIdentity(certID)),
	}
}

func (c benchCase) bare(b *testing.B) {
	var bn bundle.Bundle
	if err := bn.UnmarshalJSON(c.rel.Provenance); err != nil {
		b.Fatal(err)
	}
	if _, err := c.sv.Verify(&bn, c.policy); err != nil {
		b.Fatal(err)
	}
}

func (c benchCase) check(b *testing.B) {
	cs, _, err := c.v.Check(c.rel, c.subj, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if c.allOK && !cs.OK() {
		b.Fatalf("checks failed:\n%s", cs)
	}
	if c, _ := cs.Find(provenance.CheckSignature); !c.OK {
		b.Fatal(c.Reason)
	}
}

// BenchmarkAdmission measures the provenance part of admitting one release
// (provenance.Verifier.Check: parse, sigstore-go Verify, the five
// consistency checks) next to sigstore-go's bare parse + Verify of the same
// bundle. The two run interleaved in one loop, so that a machine shared
// with other work slows both alike; ns/verify and ns/check are the
// median per-release costs and check/verify their ratio (goal ≤ 1.2).
//
//	go test ./policy/provenance -run '^$' -bench Admission -benchtime 400x -count 3
func BenchmarkAdmission(b *testing.B) {
	for _, mk := range []func(*testing.B) benchCase{virtualBench, sigstoreJSBench} {
		c := mk(b)
		b.Run(c.name, func(b *testing.B) {
			c.bare(b) // warm up both paths
			c.check(b)
			var bare, chk []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Alternate the order so neither always runs on a warm cache.
				t0 := time.Now()
				if i%2 == 0 {
					c.bare(b)
					t1 := time.Now()
					c.check(b)
					bare, chk = append(bare, t1.Sub(t0)), append(chk, time.Since(t1))
				} else {
					c.check(b)
					t1 := time.Now()
					c.bare(b)
					chk, bare = append(chk, t1.Sub(t0)), append(bare, time.Since(t1))
				}
			}
			// Medians: bursts of other work on a shared machine hit single
			// iterations, and the median ignores them.
			mb, mc := median(bare), median(chk)
			b.ReportMetric(float64(mb.Nanoseconds()), "ns/verify")
			b.ReportMetric(float64(mc.Nanoseconds()), "ns/check")
			b.ReportMetric(float64(mc)/float64(mb), "check/verify")
		})
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkCheck and BenchmarkBareVerify are the two halves alone.
func BenchmarkCheck(b *testing.B) {
	c := virtualBench(b)
	b.ReportAllocs()
	for b.Loop() {
		c.check(b)
	}
}

func BenchmarkBareVerify(b *testing.B) {
	c := virtualBench(b)
	b.ReportAllocs()
	for b.Loop() {
		c.bare(b)
	}
}

// FuzzBundle feeds arbitrary bytes to the admission entry points for
// bundles: IsBundle, VerifyKeylessStatement (then statement.ParseStatement
// of what it returns, as admission does) and Check with the bytes as a
// release's provenance. Nothing may panic, and the results must be
// consistent. Inputs near a valid bundle take milliseconds each, so keep
// minimization short:
//
//	go test ./policy/provenance -run '^$' -fuzz FuzzBundle -fuzztime 2m -fuzzminimizetime 2s
func FuzzBundle(f *testing.F) {
	ss, _ := virtualSigstore(f)
	v := newVerifier(f, acmePolicy(f, ""))
	subj, rel := testRelease()
	good, err := ss.SignProvenance(releaseID, provenancetest.RecipeProvenance(subj, rel), nil)
	if err != nil {
		f.Fatal(err)
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		f.Fatal(err)
	}
	keyless, err := ss.SignStatement(provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit), payload, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(keyless)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"tlogEntries":[{}]},"dsseEnvelope":{}}`))
	f.Add([]byte(strings.Repeat("[", 1000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		isBundle := provenance.IsBundle(data)
		p, id, err := v.VerifyKeylessStatement(data, time.Now())
		if err == nil {
			if !isBundle || id == nil || id.Name == "" {
				t.Fatalf("VerifyKeylessStatement accepted %q: IsBundle=%v identity=%+v", data, isBundle, id)
			}
			statement.ParseStatement(p) // must not panic
		}
		r := *rel
		r.Provenance = data
		if len(data) == 0 {
			return
		}
		cs, cid, err := v.Check(&r, subj, time.Now())
		if len(cs) == 0 {
			t.Fatalf("Check returned no checks (err %v)", err)
		}
		if cs.OK() && (err != nil || cid == nil) {
			t.Fatalf("Check passed with err %v, identity %+v", err, cid)
		}
	})
}
