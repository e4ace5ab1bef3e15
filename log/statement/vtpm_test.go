package statement

import (
	"strings"
	"testing"
	"time"
)

// TestAzureReleaseSpec: a release for an Azure confidential VM names the
// paravisor's launch digest and the vTPM PCR values; its payload encodes
// them in one way (map keys in byte order, as the golden text says).
func TestAzureReleaseSpec(t *testing.T) {
	y := `version: 3.0.0
platform: azure-sev-snp
time: 2026-11-26T12:00:00Z
measurements:
  snp: {launch_digest: ` + strings.Repeat("5b", 48) + `}
  vtpm:
    pcrs:
      "4": ` + strings.Repeat("44", 32) + `
      "11": ` + strings.Repeat("bb", 32) + `
artifacts:
  - {name: uki.efi, sha256: ` + strings.Repeat("ef", 32) + `}
source: {repo: "file:///tmp/repo", commit: ` + strings.Repeat("1", 40) + `}
recipe:
  argv: [./build.sh]
  outputs: [uki.efi]
`
	subj, r, err := ParseReleaseSpec([]byte(y), "", time.Now())
	if err != nil {
		t.Fatalf("ParseReleaseSpec = %v", err)
	}
	payload, err := EncodeRelease(subj, r)
	if err != nil {
		t.Fatal(err)
	}
	golden := `"measurements":{"snp":{"launch_digest":"` + strings.Repeat("5b", 48) + `"},"vtpm":{"pcrs":{"11":"` + strings.Repeat("bb", 32) + `","4":"` + strings.Repeat("44", 32) + `"}}}`
	if !strings.Contains(string(payload), golden) {
		t.Errorf("payload %s\ndoes not contain %s", payload, golden)
	}
	if got := r.Measurements.Values(); len(got) != 3 || got[1] != strings.Repeat("44", 32) || got[2] != strings.Repeat("bb", 32) {
		t.Errorf("Values() = %v, want the launch digest then PCR 4 and PCR 11", got)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"no vtpm":         {strings.Replace(y, "  vtpm:\n    pcrs:\n", "  other:\n    pcrs:\n", 1), "other"},
		"no PCRs":         {strings.Replace(strings.Replace(y, `      "4": `+strings.Repeat("44", 32)+"\n", "", 1), `      "11": `+strings.Repeat("bb", 32)+"\n", "", 1), "measurements.vtpm.pcrs"},
		"PCR 24":          {strings.Replace(y, `"11":`, `"24":`, 1), `key "24"`},
		"PCR 04":          {strings.Replace(y, `"4":`, `"04":`, 1), `key "04"`},
		"SHA-384 value":   {strings.Replace(y, strings.Repeat("44", 32), strings.Repeat("44", 48), 1), "measurements.vtpm.pcrs.4"},
		"tdx section":     {strings.Replace(y, "snp: {launch_digest", "tdx: {mrtd", 1), "measurements.tdx"},
		"vtpm missing":    {strings.Replace(strings.Replace(strings.Replace(y, "  vtpm:\n    pcrs:\n", "", 1), `      "4": `+strings.Repeat("44", 32)+"\n", "", 1), `      "11": `+strings.Repeat("bb", 32)+"\n", "", 1), "measurements.vtpm.pcrs"},
		"vtpm on sev-snp": {strings.Replace(y, "platform: azure-sev-snp", "platform: sev-snp", 1), "measurements.vtpm"},
	} {
		_, _, err := ParseReleaseSpec([]byte(tc.in), "", time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseReleaseSpec(%s) = %v, want an error naming %q", name, err, tc.want)
		}
	}
}
