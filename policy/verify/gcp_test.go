package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
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
	stapleCollateral(t, enc)
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

// TestVerifyRealGCPTDX: a release naming the real Google Cloud TD's MRTD
// and RTMR0-2 (policy/attest/testdata/cloud/gcp-tdx) matches its quote
// with its event log stapled; only the nonce check fails (its REPORT_DATA
// is the nonce go-tdx-guest's test chose). A release naming another RTMR1
// does not match.
func TestVerifyRealGCPTDX(t *testing.T) {
	f := newFixture(t)
	const dir = "../attest/testdata/cloud/gcp-tdx/"
	quote, err := os.ReadFile(dir + "cos-113-tdx-quote.dat")
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := evidence.Parse(quote)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventLog, err = os.ReadFile(dir + "ccel_data.trimmed"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	// The sample comes with no Intel collateral.
	v := f.policy(t, "tdx-tcb-status unchecked\n", WithTime(at))
	tdx := v.hw.Inspect(ev).TDX
	// RTMR values as the README of the samples gives them (go-eventlog's
	// published replay of this log).
	const rtmr1 = "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1"
	if tdx.RTMR1 != rtmr1 {
		t.Fatalf("RTMR1 = %s", tdx.RTMR1)
	}
	for _, tc := range []struct {
		name   string
		rtmr1  string
		failed []string
	}{
		{"as released", rtmr1, []string{check.NonceBinding}},
		{"another boot", strings.Repeat("11", 48), []string{check.NonceBinding, MeasurementMatches}},
	} {
		idx := f.log.add(signedRelease(t, f, &statement.TDXMeasurements{MRTD: tdx.MRTD, RTMR0: tdx.RTMR0, RTMR1: tc.rtmr1, RTMR2: tdx.RTMR2}))
		vd := v.Verify(Input{Evidence: ev, Nonce: nonce(), Proof: f.log.proof(idx, 3)})
		if got := failedNames(vd); !slices.Equal(got, tc.failed) {
			t.Errorf("%s: failed %v, want %v:\n%s", tc.name, got, tc.failed, vd.Checks)
		}
	}
}
