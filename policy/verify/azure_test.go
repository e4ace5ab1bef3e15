package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// azureRelease is a release of platform (azure-sev-snp or azure-tdx) on
// the paravisor digest m, naming the given vTPM PCRs.
func azureRelease(t *testing.T, f *fixture, platform, m string, pcrs map[int]string, version string) []byte {
	t.Helper()
	meas := statement.Measurements{VTPM: &statement.VTPMMeasurements{PCRs: map[string]string{}}}
	for i, v := range pcrs {
		meas.VTPM.PCRs[strconv.Itoa(i)] = v
	}
	switch statement.HardwarePlatform(platform) {
	case statement.PlatformSNP:
		meas.SNP = &statement.SNPMeasurements{LaunchDigest: m}
	default:
		meas.TDX = &statement.TDXMeasurements{MRTD: m}
	}
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "uki.efi", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}},
		&statement.Release{
			Version: version, Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: platform,
			Measurements: meas,
			Source:       statement.Source{Repo: "https://example.com/cvm", Commit: strings.Repeat("e", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, f.operator)
	return e
}

// TestVerifyAzure: the whole client decision on the demo Azure CVMs
// (SNP and TDX): a release naming the paravisor digest and the guest's
// PCRs is trusted for evidence bound to the nonce and channel key through
// the runtime claims' user-data and the quote's extraData; each way the
// binding or the measurements can be wrong fails its own check.
func TestVerifyAzure(t *testing.T) {
	for _, platform := range []string{evidence.AzureSEVSNP, evidence.AzureTDX} {
		t.Run(platform, func(t *testing.T) {
			f := newFixture(t)
			channel := []byte("the TLS key's SPKI, say")
			var enc *fakeenclave.Enclave
			var err error
			if platform == evidence.AzureSEVSNP {
				enc, err = fakeenclave.NewAzureSNP(mustHex(f.m), fakeenclave.WithChannelKey(channel))
			} else {
				if enc, err = fakeenclave.NewAzureTDX(mustHex(f.m), fakeenclave.WithChannelKey(channel)); err == nil {
					stapleCollateral(t, enc)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(f.dir, "hw.pem"), enc.RootPEM(), 0o644)
			root := "trust-root " + statement.HardwarePlatform(platform) + " hw.pem\n"
			pcrs := enc.PCRs()
			named := map[int]string{4: pcrs[4], 9: pcrs[9], 11: pcrs[11]}
			idx := f.log.add(azureRelease(t, f, platform, f.m, named, "1.0.0"))
			v := f.policy(t, root+"platform "+platform+"\n")
			n := nonce()
			ev, err := enc.Evidence(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			vd := v.Verify(Input{Evidence: ev, Nonce: n, Proof: f.log.proof(idx, 2)})
			if !vd.OK() {
				t.Fatalf("good evidence: failed %v\n%s", failed(vd), vd.Checks)
			}
			for _, name := range []string{attest.ClaimsBinding, attest.QuoteSignature, attest.QuoteFresh, attest.PCRValues, attest.EventLogReplay, check.NonceBinding} {
				if c, ok := vd.Checks.Find(name); !ok || !c.OK {
					t.Errorf("check %q missing or failed in the good case:\n%s", name, vd.Checks)
				}
			}
			if c, _ := vd.Checks.Find(MeasurementMatches); !strings.Contains(c.Reason, "PCR 4, PCR 9, PCR 11") {
				t.Errorf("measurement check %q does not name the PCRs", c.Reason)
			}
			if c, _ := vd.Checks.Find(attest.EventLogReplay); !strings.Contains(c.Reason, "3 events replay") {
				t.Errorf("event log check %q", c.Reason)
			}

			rd, _ := ev.ExpectedReportData(n)
			other := nonce()
			otherRD, _ := ev.ExpectedReportData(other)
			wrongPCR := f.log.add(azureRelease(t, f, platform, f.m, map[int]string{4: pcrs[4], 9: pcrs[11]}, "1.0.1"))
			unquoted := f.log.add(azureRelease(t, f, platform, f.m, map[int]string{4: pcrs[4]}, "1.0.2"))
			// A plain release on the paravisor's digest accepts no Azure guest.
			plain := f.release(t, f.operator, f.m)
			if platform == evidence.AzureTDX {
				plain = tdxRelease(t, f)
			}
			plainIdx := f.log.add(plain)
			for _, tc := range []struct {
				name   string
				pol    string
				ev     func() *evidence.Bundle
				idx    uint64
				fails  string
				reason string
			}{
				{"platform not in the policy", "", func() *evidence.Bundle { return ev }, idx, check.PlatformAllowed, "platform " + platform},
				{"user-data of another nonce", "", func() *evidence.Bundle { b, _ := enc.AzureEvidence(n, otherRD); return b }, idx, check.NonceBinding, "does not bind the nonce"},
				{"quote of another nonce", "", func() *evidence.Bundle { b, _ := enc.AzureEvidence(other, rd); return b }, idx, attest.QuoteFresh, "not made for this request"},
				{"another channel key", "", func() *evidence.Bundle {
					b, _ := enc.Evidence(context.Background(), n)
					b.ChannelKey = []byte("an attacker's key")
					return b
				}, idx, check.NonceBinding, "channel key"},
				{"user-data written raw (no binding)", "", func() *evidence.Bundle {
					var raw [64]byte
					copy(raw[:], n)
					b, _ := enc.AzureEvidence(n, raw)
					return b
				}, idx, check.NonceBinding, "does not bind"},
				{"a PCR the release names otherwise", "", func() *evidence.Bundle { return ev }, wrongPCR, MeasurementMatches, "PCR 9"},
				{"a PCR changed in the evidence", "", func() *evidence.Bundle {
					b, _ := enc.Evidence(context.Background(), n)
					b.VTPM.PCRs[11] = make([]byte, 32)
					return b
				}, unquoted, attest.PCRValues, "not the quote's pcrDigest"},
				{"plain release on the paravisor digest", "", func() *evidence.Bundle { return ev }, plainIdx, MeasurementMatches, "the release is for " + statement.HardwarePlatform(platform) + ", the evidence is " + platform},
			} {
				pol := root + "platform " + platform + "\n"
				if tc.name == "platform not in the policy" {
					pol = root
				}
				v := f.policy(t, pol)
				vd := v.Verify(Input{Evidence: tc.ev(), Nonce: n, Proof: f.log.proof(tc.idx, 2)})
				c, ok := vd.Checks.Find(tc.fails)
				if vd.OK() || !ok || c.OK || !strings.Contains(c.Reason, tc.reason) {
					t.Errorf("%s: %q = %+v, want a failure containing %q\n%s", tc.name, tc.fails, c, tc.reason, vd.Checks)
				}
			}
			// Raw evidence of the same hardware (no vTPM) does not meet an
			// azure release.
			hw := evidence.SEVSNP
			var rawEnc *fakeenclave.Enclave
			if platform == evidence.AzureSEVSNP {
				rawEnc, _ = fakeenclave.NewSNP(mustHex(f.m))
			} else {
				hw = evidence.TDX
				rawEnc, _ = fakeenclave.NewTDX(mustHex(f.m))
			}
			os.WriteFile(filepath.Join(f.dir, "raw.pem"), rawEnc.RootPEM(), 0o644)
			v = f.policy(t, fmt.Sprintf("trust-root %s raw.pem\nplatform %s %s\n", hw, hw, platform))
			rawEv, _ := rawEnc.Evidence(context.Background(), n)
			vd = v.Verify(Input{Evidence: rawEv, Nonce: n, Proof: f.log.proof(idx, 2)})
			if c, _ := vd.Checks.Find(MeasurementMatches); c.OK || !strings.Contains(c.Reason, "the release is for "+platform) {
				t.Errorf("raw %s evidence for an %s release: %+v", hw, platform, c)
			}
		})
	}
}
