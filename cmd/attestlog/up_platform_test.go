package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUpPlatforms: 'attestlog up --platform P' runs a demo enclave that
// plays P, publishes a release of P's and writes a client policy for it,
// and 'attestlog verify --enclave' against it says TRUSTED with P's own
// checks (a VLEK for AWS, Turin's TCB layout, Google's endorsement, the
// HCL report and vTPM quote for Azure, Intel collateral for TDX). Without
// the policy line P needs, the same evidence is refused by the check
// that line answers.
func TestUpPlatforms(t *testing.T) {
	for _, tc := range []struct {
		platform string
		trusted  string   // the verdict line's start
		checks   []string // in the checklist, passed
		drop     string   // a policy line the platform needs…
		refused  string   // …and the check that fails without it
	}{
		{"sev-snp", "TRUSTED: sev-snp release", []string{"✓ hardware signature chain: report signature verified with the VCEK"},
			"trust-root sev-snp demo-snp-root.pem", "✗ hardware signature chain"},
		{"aws", "TRUSTED: sev-snp release", []string{"signed by its VLEK", "VLEK certified by ARK-Milan (trust-root demo-snp-root.pem)", "✓ committed firmware: provisional firmware"},
			"snp-allow-provisional-firmware", "✗ committed firmware"},
		{"turin", "TRUSTED: sev-snp release", []string{"KDS struct version 1: Turin", "certified by ARK-Turin", "(snp-min-tcb turin)"},
			"trust-root sev-snp demo-snp-root.pem", "✗ hardware signature chain"},
		{"gcp-sev-snp", "TRUSTED: sev-snp release", []string{"✓ firmware endorsement: Google's launch endorsement", "the firmware endorsed by google"},
			"trust-root gce-tcb demo-gce-root.pem", "✗ measurement matches release"},
		{"azure-sev-snp", "TRUSTED: azure-sev-snp release", []string{"✓ vTPM evidence format: HCL report", "✓ runtime claims binding", "✓ vTPM quote signature", "✓ vTPM quote freshness", "✓ vTPM event log: 3 events", "launch digest, PCR 4, PCR 9, PCR 11"},
			"platform azure-sev-snp", "✗ platform allowed"},
		{"tdx", "TRUSTED: tdx release", []string{"DCAP quote v4", "✓ TCB status: the stapled collateral", "UpToDate"},
			"trust-root tdx demo-tdx-root.pem", "✗ hardware signature chain"},
		{"tdx15", "TRUSTED: tdx release", []string{"DCAP quote v5 (TDX 1.5 body)", "✓ TCB status: the stapled collateral"},
			"trust-root tdx demo-tdx-root.pem", "✗ hardware signature chain"},
		{"gcp-tdx", "TRUSTED: tdx release", []string{"✓ event log: the 4 events", "✓ firmware endorsement: Google's launch endorsement", "MRTD, RTMR0, RTMR1, RTMR2"},
			"trust-root gce-tcb demo-gce-root.pem", "✗ measurement matches release"},
		{"azure-tdx", "TRUSTED: azure-tdx release", []string{"holding a TDX report", "✓ TCB status: the stapled collateral", "✓ vTPM quote freshness", "MRTD, PCR 4, PCR 9, PCR 11"},
			"platform azure-tdx", "✗ platform allowed"},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			// Azure's with the auditor of 'up', which must find the VM's
			// logged release (its PCRs); the others without, for speed.
			azure := strings.HasPrefix(tc.platform, "azure-")
			u := startUp(t, dir, "--platform", tc.platform, "--auditor="+strconv.FormatBool(azure))
			if u.info.Demo.Platform != tc.platform {
				t.Errorf("up.json says the demo plays %q, want %q", u.info.Demo.Platform, tc.platform)
			}
			out := runCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.URL)
			if !strings.Contains(out, "\n"+tc.trusted) {
				t.Fatalf("verify --enclave: want %q\n%s", tc.trusted, out)
			}
			for _, c := range tc.checks {
				if !strings.Contains(out, c) {
					t.Errorf("verify output lacks %q:\n%s", c, out)
				}
			}
			// Over the agent's TLS, as the attested channel verifies it:
			// the same decision, on the connection's key.
			out = runCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.EnclaveURL)
			if !strings.Contains(out, "attested channel: TLS key sha256:") || !strings.Contains(out, "\n"+tc.trusted) {
				t.Errorf("verify --enclave %s:\n%s", u.info.Demo.EnclaveURL, out)
			}
			if azure {
				waitFor(t, func() bool {
					st, err := auditStatus(u.info.AuditorURL)
					return err == nil && len(st.Deployments) == 1 && st.Deployments[0].Verdict == "ok" && len(st.Deployments[0].Releases) == 1
				}, "the auditor's deployment watch to find the Azure VM's release")
			}
			// The platform's own policy line is what lets it through.
			pol, err := os.ReadFile(u.info.ClientPolicy)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(pol), "\n"+tc.drop+"\n") {
				t.Fatalf("the client policy lacks %q:\n%s", tc.drop, pol)
			}
			without := filepath.Join(filepath.Dir(u.info.ClientPolicy), "without.txt")
			if err := os.WriteFile(without, []byte(strings.Replace(string(pol), "\n"+tc.drop+"\n", "\n", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, _, err = tryCmd(t, "verify", "--policy", without, "--enclave", u.info.Demo.URL)
			if err == nil || strings.Contains(out, "TRUSTED:") && !strings.Contains(out, "NOT TRUSTED") || !strings.Contains(out, tc.refused) {
				t.Errorf("without %q: err %v, want a failure of %q:\n%s", tc.drop, err, tc.refused, out)
			}
		})
	}
}
