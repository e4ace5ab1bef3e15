package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/attest"
)

// TestVerifyGCPTDX: a Google Cloud TD's release names its RTMRs (the
// workload, replayed from the stapled event log) and says its firmware is
// endorsed by Google; the client decision holds only with the endorsement
// verified against the policy's gce-tcb root and every RTMR equal.
func TestVerifyGCPTDX(t *testing.T) {
	f := newFixture(t)
	enc, err := fakeenclave.NewGCPTDX(mustHex(f.m), fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "tdxroot.pem"), enc.RootPEM(), 0o644)
	os.WriteFile(filepath.Join(f.dir, "gce.pem"), enc.EndorsementRootPEM(), 0o644)
	n := nonce()
	ev, _ := enc.Evidence(context.Background(), n)
	hw, err := attest.New(f.policy(t, "trust-root tdx tdxroot.pem\n").pol.Attestation, attest.WithBaseDir(f.dir))
	if err != nil {
		t.Fatal(err)
	}
	fields := hw.Inspect(ev).TDX
	release := func(rtmr2, endorser string) uint64 {
		return f.log.add(signedRelease(t, f, &statement.TDXMeasurements{MRTD: f.m,
			RTMR0: fields.RTMR0, RTMR1: fields.RTMR1, RTMR2: rtmr2, FirmwareEndorsement: endorser}))
	}
	good := release(fields.RTMR2, statement.FirmwareEndorsedByGoogle)
	withRoot := f.policy(t, "trust-root tdx tdxroot.pem\ntrust-root gce-tcb gce.pem\n")
	vd := withRoot.Verify(Input{Evidence: ev, Nonce: n, Proof: f.log.proof(good, 3)})
	if !vd.OK() {
		t.Fatalf("failed %v\n%s", failed(vd), vd.Checks)
	}
	if c, _ := vd.Checks.Find(MeasurementMatches); !strings.Contains(c.Reason, "MRTD, RTMR0, RTMR1, RTMR2") || !strings.Contains(c.Reason, "firmware endorsed by google (MRTD") {
		t.Errorf("measurement check: %s", c.Reason)
	}
	for _, tc := range []struct {
		name   string
		v      *Verifier
		idx    uint64
		failed string
	}{
		{"no gce-tcb root", f.policy(t, "trust-root tdx tdxroot.pem\n"), good, "the firmware endorsement"},
		{"another workload", withRoot, release(strings.Repeat("00", 48), statement.FirmwareEndorsedByGoogle), "RTMR2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vd := tc.v.Verify(Input{Evidence: ev, Nonce: n, Proof: f.log.proof(tc.idx, 3)})
			if vd.OK() || !strings.Contains(vd.Checks.Failed().String(), tc.failed) {
				t.Errorf("failed checks:\n%s\nwant one mentioning %q", vd.Checks.Failed(), tc.failed)
			}
		})
	}
	// Evidence without its endorsement, for a release that requires one.
	bare := *ev
	bare.FirmwareEndorsement = nil
	vd = withRoot.Verify(Input{Evidence: &bare, Nonce: n, Proof: f.log.proof(good, 3)})
	if c, _ := vd.Checks.Find(MeasurementMatches); c.OK || !strings.Contains(c.Reason, "staples no endorsement") {
		t.Errorf("without an endorsement: %v %s", c.OK, c.Reason)
	}
}

// signedRelease is a TDX release of m signed by the fixture's operator.
func signedRelease(t *testing.T, f *fixture, m *statement.TDXMeasurements) []byte {
	t.Helper()
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "td.img", Digest: statement.Digest{SHA384: strings.Repeat("ab", 48)}}},
		&statement.Release{
			Version: "3.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformTDX,
			Measurements: statement.Measurements{TDX: m},
			Source:       statement.Source{Repo: "https://example.com/td", Commit: strings.Repeat("d", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(payload, f.operator)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
