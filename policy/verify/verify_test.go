package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/tlogtest"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu"
	"github.com/attestlog/attestlog/policy/gpu/rim"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// miniLog is the tests' in-memory log (internal/tlogtest) as these tests
// use it: entries kept beside it, proofs under a checkpoint of the current
// size cosigned by the first nCosign of its witnesses.
type miniLog struct {
	*tlogtest.Log
	t       *testing.T
	origin  string
	signer  note.Signer
	vkey    string
	wvkeys  []string
	entries [][]byte
}

func newMiniLog(t *testing.T, nWitnesses int) *miniLog {
	l := tlogtest.New(t, "verify.test/log", nWitnesses)
	return &miniLog{Log: l, t: t, origin: l.Origin, signer: l.Signer, vkey: l.VKey, wvkeys: l.WVKeys}
}

func (l *miniLog) add(entry []byte) uint64 {
	i := l.Add(entry)
	l.entries = append(l.entries, entry)
	return i
}

// proof returns the proof of entry i under a checkpoint of the current
// size cosigned by the first nCosign witnesses.
func (l *miniLog) proof(i uint64, nCosign int) *tlogproof.Proof { return l.Proof(i, nCosign) }

type fixture struct {
	log      *miniLog
	operator *statement.Signer
	auditor  *statement.Signer
	enclave  *fakeenclave.Enclave
	dir      string
	m        string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{log: newMiniLog(t, 3), dir: t.TempDir()}
	f.operator, _ = statement.GenerateSigner(statement.AlgEd25519)
	f.auditor, _ = statement.GenerateSigner(statement.AlgECDSAP256)
	mb := make([]byte, 48)
	rand.Read(mb)
	f.m = hex.EncodeToString(mb)
	var err error
	if f.enclave, err = fakeenclave.NewSNP(mb); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "root.pem"), f.enclave.RootPEM(), 0o644)
	return f
}

func (f *fixture) policy(t *testing.T, extra string, opts ...Option) *Verifier {
	t.Helper()
	text := fmt.Sprintf(`log %s
witness w0 %s
witness w1 %s
witness w2 %s
group g 2 w0 w1 w2
quorum g
operator acme %s
auditor aud %s
trust-root sev-snp root.pem
%s`, f.log.vkey, f.log.wvkeys[0], f.log.wvkeys[1], f.log.wvkeys[2], f.operator.Public(), f.auditor.Public(), extra)
	p := filepath.Join(f.dir, "policy.txt")
	os.WriteFile(p, []byte(text), 0o644)
	v, err := Load(p, opts...)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return v
}

func (f *fixture) release(t *testing.T, s *statement.Signer, m string) []byte {
	t.Helper()
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}},
		&statement.Release{
			Version: "1.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: m}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, s)
	return e
}

// releaseGPUs is f.release of f.m with a gpus section.
func (f *fixture) releaseGPUs(t *testing.T, g *statement.GPUs) []byte {
	t.Helper()
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}},
		&statement.Release{
			Version: fmt.Sprintf("1.0.%d", len(f.log.entries)), Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: f.m}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
			GPUs:         g,
		})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, f.operator)
	return e
}

func (f *fixture) evidence(t *testing.T, nonce []byte) *evidence.Bundle {
	b, err := f.enclave.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nonce() []byte {
	n := make([]byte, 32)
	rand.Read(n)
	return n
}

// failed returns the names of the failed checks.
func failed(vd *Verdict) []string {
	var n []string
	for _, c := range vd.Checks.Failed() {
		n = append(n, c.Name)
	}
	return n
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	v := f.policy(t, "")
	n := nonce()

	// The good case: every check passes, with the proof stapled.
	ev := f.evidence(t, n)
	ev.Proof = string(f.log.proof(relIdx, 2).Marshal())
	vd := v.Verify(Input{Evidence: ev, Nonce: n})
	if !vd.OK() {
		t.Fatalf("good evidence: failed %v\n%s", failed(vd), vd.Checks)
	}
	for _, name := range []string{check.HardwareChain, check.NonceBinding, WitnessQuorum, InclusionProof, Operator, MeasurementMatches, NotRevoked, Reproduced} {
		if c, ok := vd.Checks.Find(name); !ok || !c.OK {
			t.Errorf("check %q missing or failed in the good case", name)
		}
	}

	// Each negative case fails exactly where it should, with a reason.
	otherOp, _ := statement.GenerateSigner(statement.AlgEd25519)
	unknownOpIdx := f.log.add(f.release(t, otherOp, f.m))
	otherM := strings.Repeat("ee", 48)
	otherIdx := f.log.add(f.release(t, f.operator, otherM))
	revokeRef := statement.RefOf(relIdx, f.log.entries[relIdx])
	revPayload, _ := statement.EncodeRevocation(revokeRef, &statement.Revocation{Reason: "CVE-2026-1", Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	revEntry, _ := statement.Sign(revPayload, f.operator)
	revIdx := f.log.add(revEntry)
	strangerRev, _ := statement.Sign(revPayload, otherOp)
	strangerRevIdx := f.log.add(strangerRev)

	flipped := f.evidence(t, n)
	flipped.Report[0x90] ^= 1 // a bit of MEASUREMENT
	debugEnc, _ := fakeenclave.NewSNP(mustHex(f.m), fakeenclave.WithDebug())
	debugEv, _ := debugEnc.Evidence(context.Background(), n)
	os.WriteFile(filepath.Join(f.dir, "root.pem"), append(f.enclave.RootPEM(), debugEnc.RootPEM()...), 0o644)
	lowTCB := f.policy(t, "snp-min-tcb snp=250\n")
	stale := f.policy(t, "max-checkpoint-age 1h\n")
	needRepro := f.policy(t, "reproductions 1\n")
	v = f.policy(t, "")
	wrongProof := f.log.proof(relIdx, 2)
	wrongProof.Extra = f.log.entries[otherIdx] // a proof for another entry

	later, _ := New(stale.pol, WithPolicyDir(f.dir), WithTime(time.Now().Add(2*time.Hour)))

	for _, tc := range []struct {
		name string
		v    *Verifier
		in   Input
		want string // the failed check
		why  string // in its reason
	}{
		{"flipped bit", v, Input{Evidence: flipped, Nonce: n, Proof: f.log.proof(relIdx, 2)}, check.HardwareChain, ""},
		{"debug policy", v, Input{Evidence: debugEv, Nonce: n, Proof: f.log.proof(relIdx, 2)}, check.GuestPolicy, "debug"},
		{"TCB below floor", lowTCB, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2)}, check.TCBFloors, ""},
		{"nonce mismatch", v, Input{Evidence: f.evidence(t, n), Nonce: nonce(), Proof: f.log.proof(relIdx, 2)}, check.NonceBinding, ""},
		{"measurement never logged", v, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(otherIdx, 2)}, MeasurementMatches, "not the logged"},
		{"proof for another entry", v, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: wrongProof}, InclusionProof, "does not"},
		{"short of quorum", v, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 1)}, WitnessQuorum, "short of the quorum"},
		{"stale checkpoint", later, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 3)}, CheckpointFresh, "ago"},
		{"revoked release", v, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(revIdx, 2)}}, NotRevoked, "CVE-2026-1"},
		{"unknown operator", v, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(unknownOpIdx, 2)}, Operator, "not signed by an operator"},
		{"reproduction required", needRepro, Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2)}, Reproduced, "requires 1"},
		{"no proof", v, Input{Evidence: f.evidence(t, n), Nonce: n}, ProofPresent, "no proof"},
	} {
		vd := tc.v.Verify(tc.in)
		c, ok := vd.Checks.Find(tc.want)
		if !ok || c.OK {
			t.Errorf("%s: check %q did not fail; failed: %v", tc.name, tc.want, failed(vd))
			continue
		}
		if !strings.Contains(c.Reason, tc.why) {
			t.Errorf("%s: %q reason %q, want it to mention %q", tc.name, tc.want, c.Reason, tc.why)
		}
		if vd.OK() {
			t.Errorf("%s: verdict OK", tc.name)
		}
	}

	// A revocation signed by someone else than the publisher is ignored.
	vd = v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(strangerRevIdx, 2)}})
	if !vd.OK() {
		t.Errorf("a stranger's revocation was honoured: %v", failed(vd))
	}

	// A reproduction by the policy's auditor satisfies 'reproductions 1'.
	rpPayload, _ := statement.EncodeReproduction(revokeRef, &statement.Reproduction{
		Outcome: statement.OutcomeMatch, Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: f.m}},
	})
	rpEntry, _ := statement.Sign(rpPayload, f.auditor)
	rpIdx := f.log.add(rpEntry)
	vd = needRepro.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(rpIdx, 2)}})
	if !vd.OK() {
		t.Errorf("with a matching reproduction: failed %v\n%s", failed(vd), vd.Checks)
	}
	// A reproduction signed by a non-auditor does not count.
	fakeRp, _ := statement.Sign(rpPayload, otherOp)
	fakeIdx := f.log.add(fakeRp)
	vd = needRepro.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(fakeIdx, 2)}})
	if c, _ := vd.Checks.Find(Reproduced); c.OK {
		t.Error("a reproduction by a non-auditor was counted")
	}
	// A reproduction made without a sandbox counts only where the policy
	// says allow-unsandboxed-reproductions.
	unsbPayload, _ := statement.EncodeReproduction(revokeRef, &statement.Reproduction{
		Outcome: statement.OutcomeMatch, Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: f.m}}, Unsandboxed: true,
	})
	unsbEntry, _ := statement.Sign(unsbPayload, f.auditor)
	unsbIdx := f.log.add(unsbEntry)
	vd = needRepro.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(unsbIdx, 2)}})
	if c, _ := vd.Checks.Find(Reproduced); c.OK {
		t.Error("an unsandboxed reproduction was counted without allow-unsandboxed-reproductions")
	}
	allowUnsb := f.policy(t, "reproductions 1\nallow-unsandboxed-reproductions\n")
	vd = allowUnsb.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: []*tlogproof.Proof{f.log.proof(unsbIdx, 2)}})
	if !vd.OK() {
		t.Errorf("an unsandboxed reproduction with allow-unsandboxed-reproductions: failed %v", failed(vd))
	}
}

func TestVerifyTDX(t *testing.T) {
	f := newFixture(t)
	mb := mustHex(f.m)
	enc, err := fakeenclave.NewTDX(mb)
	if err != nil {
		t.Fatal(err)
	}
	stapleCollateral(t, enc)
	os.WriteFile(filepath.Join(f.dir, "tdxroot.pem"), enc.RootPEM(), 0o644)
	idx := f.log.add(tdxRelease(t, f))
	v := f.policy(t, "trust-root tdx tdxroot.pem\n")
	n := nonce()
	ev, _ := enc.Evidence(context.Background(), n)
	vd := v.Verify(Input{Evidence: ev, Nonce: n, Proof: f.log.proof(idx, 3)})
	if !vd.OK() {
		t.Fatalf("TDX: failed %v\n%s", failed(vd), vd.Checks)
	}
	// SNP evidence for a TDX release fails the measurement check.
	vd = v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(idx, 3)})
	if c, _ := vd.Checks.Find(MeasurementMatches); c.OK {
		t.Error("SNP evidence matched a TDX release")
	}
}

// stapleCollateral staples the demo Intel collateral of a TDX enclave
// (UpToDate, issued an hour ago) to its evidence.
func stapleCollateral(t testing.TB, e *fakeenclave.Enclave) {
	t.Helper()
	c, err := e.TDXCollateral(time.Now().Add(-time.Hour), fakeenclave.UpToDate)
	if err != nil {
		t.Fatal(err)
	}
	e.SetTDXCollateral(c)
}

func tdxRelease(t *testing.T, f *fixture) []byte {
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "td.img", Digest: statement.Digest{SHA384: strings.Repeat("ab", 48)}}},
		&statement.Release{
			Version: "2.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformTDX,
			Measurements: statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: f.m}},
			Source:       statement.Source{Repo: "https://example.com/td", Commit: strings.Repeat("d", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, f.operator)
	return e
}

func writeFile(t testing.TB, dir, name string, b []byte) {
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestClockNotFrozen: a verifier judges certificates at the time of each
// decision, not at the time it was made: the same evidence that verified
// fails once its VCEK has expired.
func TestClockNotFrozen(t *testing.T) {
	f := newFixture(t)
	// A VCEK that expires in an hour (the demo VCEK is valid for 7 years).
	created := time.Now().Add(-7*365*24*time.Hour + time.Hour)
	mb := mustHex(f.m)
	var err error
	if f.enclave, err = fakeenclave.NewSNP(mb, fakeenclave.WithCreationTime(created)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "root.pem"), f.enclave.RootPEM(), 0o644)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	v := f.policy(t, "")
	v2, err := New(v.Policy(), WithPolicyDir(f.dir), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	decide := func() *Verdict {
		n := nonce()
		ev := f.evidence(t, n)
		ev.Proof = string(f.log.proof(relIdx, 2).Marshal())
		return v2.Verify(Input{Evidence: ev, Nonce: n})
	}
	if vd := decide(); !vd.OK() {
		t.Fatalf("before expiry: failed %v\n%s", failed(vd), vd.Checks)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	vd := decide()
	if c, ok := vd.Checks.Find(check.HardwareChain); vd.OK() || !ok || c.OK {
		t.Errorf("after the VCEK expired: OK %v, hardware chain %+v; want it to fail", vd.OK(), c)
	}
}

// TestRelatedFailClosed: a policy auditor's mismatch makes the release
// untrusted (unless the policy allows it), and related entries count only
// under a checkpoint the quorum cosigned.
func TestRelatedFailClosed(t *testing.T) {
	f := newFixture(t)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	ref := statement.RefOf(relIdx, f.log.entries[relIdx])
	mm, _ := statement.EncodeReproduction(ref, &statement.Reproduction{
		Outcome: statement.OutcomeMismatch, Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("ee", 48)}},
	})
	mmEntry, _ := statement.Sign(mm, f.auditor)
	mmIdx := f.log.add(mmEntry)
	rv, _ := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "CVE-2026-9", Time: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)})
	rvEntry, _ := statement.Sign(rv, f.operator)
	rvIdx := f.log.add(rvEntry)
	n := nonce()
	verify := func(v *Verifier, related ...*tlogproof.Proof) *Verdict {
		return v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), Related: related})
	}

	deny := f.policy(t, "")
	vd := verify(deny, f.log.proof(mmIdx, 2))
	if c, _ := vd.Checks.Find(Reproduced); vd.OK() || c.OK || !strings.Contains(c.Reason, "did not reproduce") {
		t.Errorf("a policy auditor's mismatch: OK %v, %q", vd.OK(), c.Reason)
	}
	allow := f.policy(t, "reproduction-mismatch allow\n")
	if vd := verify(allow, f.log.proof(mmIdx, 2)); !vd.OK() {
		t.Errorf("reproduction-mismatch allow: failed %v", failed(vd))
	}
	// Under a checkpoint short of the quorum a revocation is not
	// evidence (the witnesses never saw it) — and the proof of the release
	// under a full quorum still stands.
	if vd := verify(deny, f.log.proof(rvIdx, 1)); !vd.OK() {
		t.Errorf("a revocation under a checkpoint short of the quorum counted: %v", failed(vd))
	}
	if vd := verify(deny, f.log.proof(rvIdx, 2)); vd.OK() {
		t.Error("a revocation under a quorum checkpoint did not count")
	}
}

// indexProof commits the miniLog's index over its entries so far, signed
// now, and returns the proof for the identity of an SNP release with
// launch digest m under a checkpoint cosigned by nCosign.
func (l *miniLog) indexProof(t *testing.T, m string, nCosign int) *vindex.Proof {
	t.Helper()
	return l.indexProofAt(t, m, nCosign, time.Now())
}

// indexProofAt is indexProof with the index checkpoint signed at time at.
func (l *miniLog) indexProofAt(t *testing.T, m string, nCosign int, at time.Time) *vindex.Proof {
	t.Helper()
	b := vindex.NewBuilder()
	for i, e := range l.entries {
		b.Add(uint64(i), e)
	}
	ic := statement.IndexCheckpoint{Origin: l.origin, Size: b.Size(), Root: b.Root(), Time: at}
	ice, err := statement.SignIndexCheckpoint(ic, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	j := l.add(ice)
	return l.proveIndex(t, j, m, nCosign)
}

// proveIndex proves, under a checkpoint of the log's current size, the
// identity of launch digest m under the index checkpoint at entry j —
// with the map rebuilt at its size from the log's entries, as anyone can.
func (l *miniLog) proveIndex(t *testing.T, j uint64, m string, nCosign int) *vindex.Proof {
	t.Helper()
	ic, err := statement.ParseIndexCheckpoint(l.entries[j])
	if err != nil {
		t.Fatal(err)
	}
	b := vindex.NewBuilder()
	for i := range ic.Size {
		b.Add(i, l.entries[i])
	}
	id := append([]byte("sev-snp\x00"), mustHex(m)...)
	items, mp := b.Map().Prove(vindex.Key(vindex.KeyIdentity, id))
	return &vindex.Proof{Type: vindex.KeyIdentity, Digest: id, Items: items, Map: mp, Commit: l.proof(j, nCosign)}
}

// TestRevocationProof: with 'revocation-proof required' a release is
// trusted only with the log's index proof for its identity, listing no
// revocation that applies to it.
func TestRevocationProof(t *testing.T) {
	f := newFixture(t)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	req := f.policy(t, "revocation-proof required\n")
	off := f.policy(t, "")
	n := nonce()
	decideWith := func(v *Verifier, ip *vindex.Proof, related ...*tlogproof.Proof) check.Check {
		t.Helper()
		vd := v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), IndexProof: ip, Related: related})
		c, ok := vd.Checks.Find(NotRevoked)
		if !ok {
			t.Fatal("no not-revoked check")
		}
		if c.OK != vd.OK() {
			t.Fatalf("not revoked %v but verdict %v: %v", c.OK, vd.OK(), failed(vd))
		}
		return c
	}
	decide := func(v *Verifier, ip *vindex.Proof) check.Check { t.Helper(); return decideWith(v, ip) }
	if c := decide(req, nil); c.OK || !strings.Contains(c.Reason, "requires the log's index proof") {
		t.Errorf("required, none given: %+v", c)
	}
	if c := decide(off, nil); !c.OK || !strings.Contains(c.Reason, "not proven") {
		t.Errorf("off, none given: %+v", c)
	}
	good := f.log.indexProof(t, f.m, 2)
	if c := decide(req, good); !c.OK {
		t.Errorf("a good index proof: %+v", c)
	}
	// Stapled in the evidence, the same.
	ev := f.evidence(t, n)
	ev.Proof, ev.IndexProof = string(f.log.proof(relIdx, 2).Marshal()), string(good.Marshal())
	if vd := req.Verify(Input{Evidence: ev, Nonce: n}); !vd.OK() {
		t.Errorf("stapled index proof: %v", failed(vd))
	}
	if c := decide(req, f.log.indexProof(t, f.m, 1)); c.OK || !strings.Contains(c.Reason, "quorum") {
		t.Errorf("index proof short of the quorum: %+v", c)
	}
	if c := decide(req, f.log.indexProof(t, strings.Repeat("ee", 48), 2)); c.OK || !strings.Contains(c.Reason, "not the identity of release") {
		t.Errorf("index proof of another identity: %+v", c)
	}
	// Another release with the same identity, revoked by the same
	// operator: the identity is revoked, so this release is untrusted too.
	other := f.log.add(f.release(t, f.operator, f.m))
	rv, _ := statement.EncodeRevocation(statement.RefOf(other, f.log.entries[other]), &statement.Revocation{Reason: "CVE-2026-11", Time: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})
	rve, _ := statement.Sign(rv, f.operator)
	f.log.add(rve)
	if c := decide(req, f.log.indexProof(t, f.m, 2)); c.OK || !strings.Contains(c.Reason, "was revoked") {
		t.Errorf("identity revoked through another release: %+v", c)
	}
	// An index proof that hides the revocation does not verify.
	hidden := f.log.indexProof(t, f.m, 2)
	hidden.Items = hidden.Items[:len(hidden.Items)-1]
	if c := decide(req, hidden); c.OK {
		t.Errorf("an index proof with the revocation left out: %+v", c)
	}
	// A stale index (committed before the release) does not cover it.
	g := newFixture(t)
	early := g.log.indexProof(t, g.m, 2)
	gi := g.log.add(g.release(t, g.operator, g.m))
	vd := g.policy(t, "revocation-proof required\n").Verify(Input{Evidence: g.evidence(t, n), Nonce: n, Proof: g.log.proof(gi, 2), IndexProof: early})
	if c, _ := vd.Checks.Find(NotRevoked); c.OK || !strings.Contains(c.Reason, "fetch a fresh one") {
		t.Errorf("an index older than the release: %+v", c)
	}
}

// TestReplayedIndexProof is the second security review's item 1: an
// index checkpoint the log appended after a release and before its
// revocation, proven under today's fresh, cosigned checkpoint with the map
// rebuilt at its size, must not show the release unrevoked.
func TestReplayedIndexProof(t *testing.T) {
	f := newFixture(t)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	before := f.log.indexProofAt(t, f.m, 2, time.Now().Add(-time.Hour)) // signed an hour ago
	rv, _ := statement.EncodeRevocation(statement.RefOf(relIdx, f.log.entries[relIdx]), &statement.Revocation{Reason: "CVE-2026-21", Time: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})
	rve, _ := statement.Sign(rv, f.operator)
	f.log.add(rve)
	f.log.indexProof(t, f.m, 2) // the log's honest, newer index checkpoint
	// The replay: the old index checkpoint, proven under the newest
	// checkpoint (which the quorum cosigned just now).
	replayed := f.log.proveIndex(t, before.Commit.Index, f.m, 2)
	n := nonce()
	for _, tc := range []struct {
		policy string
		want   string
	}{
		{"revocation-proof required\nmax-checkpoint-age 20s\n", "too stale"},
		{"revocation-proof required max-age=30m\n", "too stale"},
		{"revocation-proof required max-age=2h\nmax-checkpoint-age 30m\n", "too stale"}, // never more than max-checkpoint-age
		{"revocation-proof required max-age=2h\n", "was revoked"},                       // an hour is within it: the client said so
	} {
		v := f.policy(t, tc.policy)
		ev := f.evidence(t, n)
		ev.Proof, ev.IndexProof = string(f.log.proof(relIdx, 2).Marshal()), string(replayed.Marshal())
		vd := v.Verify(Input{Evidence: ev, Nonce: n, Related: nil})
		c, _ := vd.Checks.Find(NotRevoked)
		if tc.want == "was revoked" {
			// Within max-age the replay is accepted as what it is: the
			// index an hour ago, without the revocation. That is the bound
			// the policy chose; the test records it.
			if !c.OK {
				t.Errorf("%q: %+v", tc.policy, c)
			}
			continue
		}
		if vd.OK() || c.OK || !strings.Contains(c.Reason, tc.want) {
			t.Errorf("%q: the replayed index proof: OK %v, %+v", tc.policy, vd.OK(), c)
		}
	}
	// The honest proof, fetched now, says revoked.
	honest := f.log.indexProof(t, f.m, 2)
	vd := f.policy(t, "revocation-proof required\n").Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(relIdx, 2), IndexProof: honest})
	if c, _ := vd.Checks.Find(NotRevoked); vd.OK() || c.OK || !strings.Contains(c.Reason, "was revoked") {
		t.Errorf("the honest index proof: %+v", c)
	}
}

// TestRevocationScope is the second security review's item 2 at the
// client: a revocation revokes what its signer may revoke, and nothing
// more.
func TestRevocationScope(t *testing.T) {
	f := newFixture(t)
	beta, _ := statement.GenerateSigner(statement.AlgEd25519)
	authority, _ := statement.GenerateSigner(statement.AlgEd25519)
	pol := fmt.Sprintf("revocation-proof required\noperator beta %s\nauthority sec %s\n", beta.Public(), authority.Public())
	v := f.policy(t, pol)
	mine := f.log.add(f.release(t, f.operator, f.m))
	n := nonce()
	decide := func(related ...*tlogproof.Proof) check.Check {
		t.Helper()
		ip := f.log.indexProof(t, f.m, 2)
		vd := v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(mine, 2), IndexProof: ip, Related: related})
		c, _ := vd.Checks.Find(NotRevoked)
		if c.OK != vd.OK() {
			t.Fatalf("not revoked %v but verdict %v: %v", c.OK, vd.OK(), failed(vd))
		}
		return c
	}
	revoke := func(s *statement.Signer, idx uint64) uint64 {
		rv, _ := statement.EncodeRevocation(statement.RefOf(idx, f.log.entries[idx]), &statement.Revocation{Reason: "r", Time: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})
		e, _ := statement.Sign(rv, s)
		return f.log.add(e)
	}
	// 1. A release of another identity whose artifact's SHA-384 is this
	// launch digest, revoked: nothing of this release's.
	payload, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA384: f.m}}}, &statement.Release{
		Version: "9.9.9", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("07", 48)}},
		Source:       statement.Source{Repo: "https://example.com/x", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	colliding, _ := statement.Sign(payload, beta)
	revoke(beta, f.log.add(colliding))
	if c := decide(); !c.OK {
		t.Errorf("a revocation of a release whose artifact digest has the launch digest's bytes: %+v", c)
	}
	// 2. Another operator publishes a release with this very identity and
	// revokes it: unless its entry is at hand the client fails closed; with
	// it, the revocation does not count (beta may not revoke acme's).
	theirs := f.log.add(f.release(t, beta, f.m))
	r := revoke(beta, theirs)
	if c := decide(); c.OK || !strings.Contains(c.Reason, "not at hand") {
		t.Errorf("another operator's revocation of the identity, entry not stapled: %+v", c)
	}
	if c := decide(f.log.proof(r, 2)); !c.OK || !strings.Contains(c.Reason, "not counted") {
		t.Errorf("another operator's revocation, entry stapled: %+v", c)
	}
	// Stapled in the evidence's related proofs, the same.
	ev := f.evidence(t, n)
	ev.Proof, ev.IndexProof, ev.Related = string(f.log.proof(mine, 2).Marshal()), string(f.log.indexProof(t, f.m, 2).Marshal()), []string{string(f.log.proof(r, 2).Marshal())}
	if vd := v.Verify(Input{Evidence: ev, Nonce: n}); !vd.OK() {
		t.Errorf("with the other operator's revocation stapled: %v", failed(vd))
	}
	// Under a checkpoint short of the quorum, the stapled entry is not
	// evidence of anything: fail closed.
	if c := decide(f.log.proof(r, 1)); c.OK {
		t.Errorf("another operator's revocation stapled under a checkpoint short of the quorum counted as evidence: %+v", c)
	}
	// 3. An authority revokes the other operator's release: the identity
	// is revoked for everyone.
	ra := revoke(authority, theirs)
	if c := decide(f.log.proof(r, 2), f.log.proof(ra, 2)); c.OK || !strings.Contains(c.Reason, "signed by sec") {
		t.Errorf("an authority's revocation of the identity: %+v", c)
	}
}

// TestReinstatement: after a revocation, a new release of the measurement
// is trusted only if an authority signed it too, and a later revocation
// revokes it again.
func TestReinstatement(t *testing.T) {
	f := newFixture(t)
	authority, _ := statement.GenerateSigner(statement.AlgEd25519)
	old := f.log.add(f.release(t, f.operator, f.m))
	rv, _ := statement.EncodeRevocation(statement.RefOf(old, f.log.entries[old]), &statement.Revocation{Reason: "CVE-2026-12", Time: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)})
	rve, _ := statement.Sign(rv, f.operator)
	f.log.add(rve)
	payload, _ := statement.Parse(f.release(t, f.operator, f.m))
	plain := f.log.add(f.release(t, f.operator, f.m))
	cosigned, _ := statement.Sign(payload.Envelope.Payload, f.operator, authority)
	re := f.log.add(cosigned)
	v := f.policy(t, fmt.Sprintf("revocation-proof required\nauthority sec-team %s\n", authority.Public()))
	n := nonce()
	ok := func(idx uint64) bool {
		vd := v.Verify(Input{Evidence: f.evidence(t, n), Nonce: n, Proof: f.log.proof(idx, 2), IndexProof: f.log.indexProof(t, f.m, 2)})
		return vd.OK()
	}
	if ok(plain) {
		t.Error("a new release of a revoked measurement, without an authority, was trusted")
	}
	if !ok(re) {
		t.Error("a release reinstated by an authority was not trusted")
	}
	rv2, _ := statement.EncodeRevocation(statement.RefOf(re, f.log.entries[re]), &statement.Revocation{Reason: "again", Time: time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)})
	rve2, _ := statement.Sign(rv2, authority)
	f.log.add(rve2)
	if ok(re) {
		t.Error("a reinstated release revoked again was still trusted")
	}
}

// TestGPUs: the GPUs are part of the decision — each verified on its own
// and bound to the CPU evidence — and held to the policy's gpu line.
func TestGPUs(t *testing.T) {
	f := newFixture(t)
	var err error
	if f.enclave, err = fakeenclave.NewSNP(mustHex(f.m), fakeenclave.WithGPUs(2)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "root.pem"), f.enclave.RootPEM(), 0o644)
	os.WriteFile(filepath.Join(f.dir, "gpu-root.pem"), f.enclave.GPURootPEM(), 0o644)
	golden := map[string]string{}
	for _, b := range []int{2, 3, 10} {
		golden[fmt.Sprint(b)] = hex.EncodeToString(fakeenclave.DemoGPUBlock(b))
	}
	relIdx := f.log.add(f.releaseGPUs(t, &statement.GPUs{Vendor: "nvidia", Arch: "HOPPER", Count: 2, Drivers: []string{fakeenclave.DemoGPUDriver}, Golden: golden}))
	const trustGPU = "trust-root gpu gpu-root.pem\n"
	n := nonce()
	decide := func(v *Verifier, ev *evidence.Bundle) *Verdict {
		ev.Proof = string(f.log.proof(relIdx, 2).Marshal())
		return v.Verify(Input{Evidence: ev, Nonce: n})
	}
	good := f.policy(t, trustGPU+"gpu nvidia count=2 arch=hopper min-driver=550.144 mode=cc rims=optional\n")
	vd := decide(good, f.evidence(t, n))
	if !vd.OK() {
		t.Fatalf("two demo GPUs under a matching gpu line: %v\n%s", failed(vd), vd.Checks)
	}
	if !strings.Contains(vd.Checks.String(), "GPU 1: ECDSA P-384 signature") {
		t.Errorf("the checklist does not show each GPU:\n%s", vd.Checks)
	}
	other := f.evidence(t, nonce()) // the same enclave, another client's nonce
	for _, tc := range []struct {
		name  string
		v     *Verifier
		ev    func() *evidence.Bundle
		fails string
	}{
		{"policy wants 4", f.policy(t, trustGPU+"gpu nvidia count=4 rims=optional\n"), func() *evidence.Bundle { return f.evidence(t, n) }, gpu.CheckCount},
		{"no gpu line", f.policy(t, trustGPU), func() *evidence.Bundle { return f.evidence(t, n) }, gpu.CheckCount},
		{"demo GPU root not trusted", f.policy(t, "gpu nvidia count=2 rims=optional\n"), func() *evidence.Bundle { return f.evidence(t, n) }, spdm.CheckChain},
		{"PPCIe mode required", f.policy(t, trustGPU+"gpu nvidia count=2 mode=ppcie rims=optional\n"), func() *evidence.Bundle { return f.evidence(t, n) }, gpu.CheckMode},
		{"driver too old", f.policy(t, trustGPU+"gpu nvidia count=2 min-driver=560 rims=optional\n"), func() *evidence.Bundle { return f.evidence(t, n) }, gpu.CheckVersion},
		{"RIMs required, none stapled", f.policy(t, trustGPU+"gpu nvidia count=2\n"), func() *evidence.Bundle { return f.evidence(t, n) }, rim.CheckName},
		{"a GPU's report tampered", good, func() *evidence.Bundle {
			ev := f.evidence(t, n)
			ev.GPUs[1].Report[60] ^= 1
			return ev
		}, check.NonceBinding},
		{"GPU evidence replayed from another request", good, func() *evidence.Bundle {
			ev := f.evidence(t, n)
			ev.GPUs = other.GPUs
			return ev
		}, check.NonceBinding},
		{"OCSP staple stripped", good, func() *evidence.Bundle {
			ev := f.evidence(t, n)
			ev.GPUs[0].OCSP = nil
			return ev
		}, gpu.CheckOCSP},
		{"another GPU's OCSP staple", good, func() *evidence.Bundle {
			ev := f.evidence(t, n)
			ev.GPUs[0].OCSP = ev.GPUs[1].OCSP
			return ev
		}, gpu.CheckOCSP},
		{"OCSP staple tampered", good, func() *evidence.Bundle {
			ev := f.evidence(t, n)
			st := bytes.Clone(ev.GPUs[0].OCSP[0])
			st[len(st)-10] ^= 1 // in the signature
			ev.GPUs[0].OCSP = [][]byte{st}
			return ev
		}, gpu.CheckOCSP},
		{"a GPU dropped", f.policy(t, trustGPU+"gpu nvidia count=1 rims=optional\n"), func() *evidence.Bundle {
			ev := f.evidence(t, n)
			ev.GPUs = ev.GPUs[:1]
			return ev
		}, check.NonceBinding},
	} {
		vd := decide(tc.v, tc.ev())
		c, ok := vd.Checks.Find(tc.fails)
		if vd.OK() || !ok || c.OK {
			t.Errorf("%s: OK %v, %q = %+v; failed %v", tc.name, vd.OK(), tc.fails, c, failed(vd))
		}
	}
	// ocsp=optional accepts a GPU whose status nobody stapled, and shows no
	// status check for it.
	ev := f.evidence(t, n)
	ev.GPUs[0].OCSP, ev.GPUs[1].OCSP = nil, nil
	if vd := decide(f.policy(t, trustGPU+"gpu nvidia count=2 rims=optional ocsp=optional\n"), ev); !vd.OK() {
		t.Errorf("ocsp=optional, nothing stapled: %v", failed(vd))
	} else if _, ok := vd.Checks.Find(gpu.CheckOCSP); ok {
		t.Errorf("ocsp=optional, nothing stapled, shows a status check:\n%s", vd.Checks)
	}
	if c, ok := vd.Checks.Find(gpu.CheckOCSP); !ok || !c.OK || !strings.Contains(c.Reason, "BROM good per stapled OCSP") {
		t.Errorf("the good decision's status check = %+v", c)
	}
	// The release's gpus section: another golden value, another driver, or
	// no section at all, and the same GPUs are untrusted.
	for name, gs := range map[string]*statement.GPUs{
		"a swapped VBIOS measurement": {Vendor: "nvidia", Arch: "HOPPER", Count: 2, Golden: map[string]string{"3": strings.Repeat("ee", 48)}},
		"another driver":              {Vendor: "nvidia", Arch: "HOPPER", Count: 2, Drivers: []string{"535.86.09"}, Golden: golden},
		"one GPU released":            {Vendor: "nvidia", Arch: "HOPPER", Count: 1, Golden: golden},
		"no gpus section":             nil,
	} {
		idx := f.log.add(f.releaseGPUs(t, gs))
		ev := f.evidence(t, n)
		ev.Proof = string(f.log.proof(idx, 2).Marshal())
		vd := good.Verify(Input{Evidence: ev, Nonce: n})
		if c, ok := vd.Checks.Find(gpu.CheckRelease); vd.OK() || !ok || c.OK {
			t.Errorf("%s: OK %v, %+v", name, vd.OK(), c)
		}
	}
	// One GPU reported twice, each time answering the nonce derived for its
	// place: REPORT_DATA binds both reports and every signature verifies,
	// but it is one device, and count=2 (and a release of 2) means two.
	if f.enclave, err = fakeenclave.NewSNP(mustHex(f.m), fakeenclave.WithGPUs(2), fakeenclave.WithGPUsCloned()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "root.pem"), f.enclave.RootPEM(), 0o644)
	os.WriteFile(filepath.Join(f.dir, "gpu-root.pem"), f.enclave.GPURootPEM(), 0o644)
	vd = decide(f.policy(t, trustGPU+"gpu nvidia count=2 arch=hopper min-driver=550.144 mode=cc rims=optional\n"), f.evidence(t, n))
	if c, ok := vd.Checks.Failed().Find(gpu.CheckCount); vd.OK() || !ok {
		t.Errorf("one GPU reported twice under count=2: OK %v, %+v\n%s", vd.OK(), c, vd.Checks)
	}
	if c, ok := vd.Checks.Find(gpu.CheckRelease); !ok || c.OK {
		t.Errorf("one GPU reported twice, a release of 2: %+v", c)
	}
	// A policy that requires GPUs refuses a CPU-only enclave.
	g := newFixture(t)
	gi := g.log.add(g.release(t, g.operator, g.m))
	vd = g.policy(t, "gpu nvidia count=1 rims=optional\n").Verify(Input{Evidence: g.evidence(t, n), Nonce: n, Proof: g.log.proof(gi, 2)})
	if c, _ := vd.Checks.Find(gpu.CheckCount); vd.OK() || c.OK {
		t.Errorf("a CPU-only enclave under a gpu line: %v", failed(vd))
	}
}
