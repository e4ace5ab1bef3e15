package auditor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
)

// TestDeploymentWatchCloudSNP: the watch answers "is this measurement
// logged?" for the SEV-SNP evidence the clouds produce (the demo signer
// playing AWS: a VLEK, provisional firmware; and Turin: a struct-version-1
// VCEK, Turin's TCB layout), and raises evidence-invalid for provisional
// firmware its policy does not accept.
func TestDeploymentWatchCloudSNP(t *testing.T) {
	served := strings.Repeat("a5", 48)
	for _, tc := range []struct {
		name    string
		mk      func([]byte, ...fakeenclave.Option) (*fakeenclave.Enclave, error)
		policy  string
		want    []string
		verdict string
	}{
		{"AWS, provisional firmware accepted", fakeenclave.NewAWS, "snp-allow-provisional-firmware\n", nil, "ok"},
		{"AWS, provisional firmware not accepted", fakeenclave.NewAWS, "", []string{AlertEvidenceInvalid}, AlertEvidenceInvalid},
		{"Turin", fakeenclave.NewTurin, "snp-min-tcb turin fmc=1 snp=4\n", nil, "ok"},
		{"Turin below its FMC floor", fakeenclave.NewTurin, "snp-min-tcb turin fmc=2\n", []string{AlertEvidenceInvalid}, AlertEvidenceInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.mk(mustHex(t, served))
			if err != nil {
				t.Fatal(err)
			}
			fx := newAuditorFixtureDeploy(t, "w", enc)
			// The policy's attestation lines, read when the auditor opens.
			p := filepath.Join(fx.dir, "policy.txt")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, tc.policy...), 0o644); err != nil {
				t.Fatal(err)
			}
			fx.aud.Close()
			fx.open(t)
			fx.log.add(fx.releaseOf(t, fx.op, served))
			err, alerts := fx.runOnce(t)
			if err != nil {
				t.Fatal(err)
			}
			wantKinds(t, tc.name, alerts, tc.want...)
			if st := deploymentStatus(t, fx); st.Verdict != tc.verdict {
				t.Errorf("deployment status %+v, want verdict %q", st, tc.verdict)
			}
			failed := "TCB floors"
			if strings.HasPrefix(tc.name, "AWS") {
				failed = "committed firmware"
			}
			for _, a := range alerts {
				if !strings.Contains(a.Summary+string(a.Evidence), failed) {
					t.Errorf("alert %q (%s) does not name the failed check %q", a.Summary, a.Evidence, failed)
				}
			}
		})
	}
}

// azureReleaseOf is a release of platform (azure-sev-snp or azure-tdx)
// on the paravisor digest m naming the given vTPM PCRs, signed by the
// fixture's operator.
func (fx *auditorFixture) azureReleaseOf(t *testing.T, platform, m string, pcrs map[int]string) []byte {
	t.Helper()
	meas := statement.Measurements{VTPM: &statement.VTPMMeasurements{PCRs: map[string]string{}}}
	for i, v := range pcrs {
		meas.VTPM.PCRs[strconv.Itoa(i)] = v
	}
	if platform == statement.PlatformAzureSNP {
		meas.SNP = &statement.SNPMeasurements{LaunchDigest: m}
	} else {
		meas.TDX = &statement.TDXMeasurements{MRTD: m}
	}
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "uki.efi", Digest: statement.Digest{SHA256: strings.Repeat("d3", 32)}}}, &statement.Release{
		Version: fmt.Sprintf("3.0.%d", len(pcrs)), Time: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Platform: platform, Measurements: meas,
		Source: statement.Source{Repo: "https://example.com/cvm", Commit: strings.Repeat("c1", 20)},
		Recipe: statement.Recipe{Argv: []string{"make"}, Outputs: []string{"uki.efi"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(p, fx.op)
	return e
}

// TestDeploymentWatchAzure: the watch finds the logged release of an
// Azure confidential VM (SEV-SNP and TDX: the paravisor's launch
// measurement and the vTPM PCRs the release names, compared with the
// VM's quoted ones) and reports it "ok"; a VM on the same paravisor whose
// guest booted something else (PCRs no release names) raises
// unlogged-measurement, though the paravisor's digest is logged.
func TestDeploymentWatchAzure(t *testing.T) {
	paravisor := strings.Repeat("9a", 48)
	for _, platform := range []string{statement.PlatformAzureSNP, statement.PlatformAzureTDX} {
		mk := fakeenclave.NewAzureSNP
		if platform == statement.PlatformAzureTDX {
			mk = fakeenclave.NewAzureTDX
		}
		logged, err := mk(mustHex(t, paravisor))
		if err != nil {
			t.Fatal(err)
		}
		other, err := mk(mustHex(t, paravisor), fakeenclave.WithBootEvents(fakeenclave.BootEvent{PCR: 4, Type: 0x0d, Data: []byte("another boot loader")},
			fakeenclave.DemoBootEvents[1], fakeenclave.DemoBootEvents[2]))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			enc     *fakeenclave.Enclave
			want    []string
			verdict string
		}{
			{"logged", logged, nil, "ok"},
			{"unlogged PCRs", other, []string{AlertUnloggedMeasurement}, AlertUnloggedMeasurement},
		} {
			t.Run(platform+"/"+tc.name, func(t *testing.T) {
				if platform == statement.PlatformAzureTDX {
					c, err := tc.enc.TDXCollateral(time.Now().Add(-time.Hour), fakeenclave.UpToDate)
					if err != nil {
						t.Fatal(err)
					}
					tc.enc.SetTDXCollateral(c)
				}
				fx := newAuditorFixtureDeploy(t, "w", tc.enc)
				p := filepath.Join(fx.dir, "policy.txt")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				pol := string(b) + "platform " + platform + "\n"
				if err := os.WriteFile(p, []byte(pol), 0o644); err != nil {
					t.Fatal(err)
				}
				fx.aud.Close()
				fx.open(t)
				pcrs := logged.PCRs()
				// The release the logged VM runs (PCRs 4, 9, 11), one
				// naming PCR 4 of neither, and a release on the paravisor's
				// digest alone for raw hardware (which no Azure VM runs).
				fx.log.add(fx.azureReleaseOf(t, platform, paravisor, map[int]string{4: pcrs[4], 9: pcrs[9], 11: pcrs[11]}),
					fx.azureReleaseOf(t, platform, paravisor, map[int]string{4: strings.Repeat("00", 32)}))
				if platform == statement.PlatformAzureSNP {
					fx.log.add(fx.releaseOf(t, fx.op, paravisor))
				}
				err, alerts := fx.runOnce(t)
				if err != nil {
					t.Fatal(err)
				}
				wantKinds(t, tc.name, alerts, tc.want...)
				st := deploymentStatus(t, fx)
				if st.Verdict != tc.verdict {
					t.Errorf("deployment status %+v, want verdict %q", st, tc.verdict)
				}
				if tc.verdict == "ok" && (len(st.Releases) != 1 || st.Releases[0] != 0) {
					t.Errorf("the VM runs releases %v, want [0] (the one naming its PCRs)", st.Releases)
				}
				for _, a := range alerts {
					if !strings.Contains(a.Summary, "vTPM PCRs") {
						t.Errorf("alert %q does not say the PCRs are what no release names", a.Summary)
					}
				}
			})
		}
	}
}
