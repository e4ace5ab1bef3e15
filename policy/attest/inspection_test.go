package attest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/policy/evidence"
)

// TestInspection: both renderings of a real Milan report carry the kind,
// the verdict, every check and the report's fields.
func TestInspection(t *testing.T) {
	v := mustVerifier(t, "", WithTime(snpSampleTime))
	b := snpSample()
	b.ChannelKey = []byte{0xca, 0xfe}
	in := v.InspectAs(b, evidence.KindSNPReport)
	var text bytes.Buffer
	if err := in.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SEV-SNP report (sev-snp)",
		in.Checks[0].Name,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	fields := map[string]string{}
	for _, line := range strings.Split(text.String(), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			fields[f[0]] = f[1]
		}
	}
	if fields["launch_digest"] != in.SNP.LaunchDigest || fields["channel_key"] != "cafe" || fields["policy.debug"] != "true" {
		t.Errorf("field lines: launch_digest %q channel_key %q policy.debug %q", fields["launch_digest"], fields["channel_key"], fields["policy.debug"])
	}
	if strings.Contains(text.String(), "proof") {
		t.Errorf("text mentions a proof the bundle does not have")
	}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Kind     string `json:"kind"`
		OK       bool   `json:"ok"`
		HasProof bool   `json:"has_proof"`
		Checks   []json.RawMessage
		SNP      struct {
			LaunchDigest string `json:"launch_digest"`
		} `json:"snp"`
	}
	if err := json.Unmarshal(j, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != string(evidence.KindSNPReport) || got.OK != in.OK() || got.HasProof || len(got.Checks) != len(in.Checks) || got.SNP.LaunchDigest != in.SNP.LaunchDigest {
		t.Errorf("JSON = %s", j)
	}
}

// TestInspectionCloudFacts: what inspect prints of AWS and Turin evidence
// names the signing key, the provider, the product line, the FMC and the
// provisional state.
func TestInspectionCloudFacts(t *testing.T) {
	lines := func(in Inspection) map[string]string {
		var text bytes.Buffer
		if err := in.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, line := range strings.Split(text.String(), "\n") {
			if k, v, ok := strings.Cut(line, "  "); ok && !strings.HasPrefix(k, "✓") && !strings.HasPrefix(k, "✗") {
				fields[k] = strings.TrimSpace(v)
			}
		}
		return fields
	}
	aws := lines(mustVerifier(t, "snp-allow-provisional-firmware", WithTime(awsTime)).InspectAs(awsSample(t), evidence.KindSNPReport))
	wantFields(t, "AWS", aws, map[string]string{
		"signer":               "vlek",
		"csp_id":               "CN=cc-us-east-2.amazonaws.com",
		"product_line":         "Milan",
		"provisional_firmware": "true",
		"reported_tcb":         "bootloader=4 tee=0 snp=24 microcode=217",
		"committed_tcb":        "bootloader=4 tee=0 snp=24 microcode=219",
		"current_tcb":          "bootloader=4 tee=0 snp=24 microcode=220",
	})
	e, b, _ := turinEnclave(t)
	turin := lines(fakeVerifier(t, e, "").InspectAs(b, evidence.KindBundle))
	wantFields(t, "Turin", turin, map[string]string{
		"signer":               "vcek",
		"product_line":         "Turin",
		"provisional_firmware": "false",
		"reported_tcb":         "fmc=1 bootloader=2 tee=3 snp=4 microcode=5",
	})
	if _, ok := turin["csp_id"]; ok {
		t.Error("a VCEK report prints a csp_id")
	}
}

func wantFields(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s = %q, want %q", what, k, got[k], w)
		}
	}
}
