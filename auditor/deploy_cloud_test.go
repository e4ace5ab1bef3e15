package auditor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
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
