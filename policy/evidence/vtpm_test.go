package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

var trusteeSamples = []struct{ file, platform string }{
	{"../vtpm/testdata/azure-snp/evidence-v2.json", AzureSEVSNP},
	{"../vtpm/testdata/azure-snp/evidence-genoa.json", AzureSEVSNP},
	{"../vtpm/testdata/azure-tdx/evidence-v1.json", AzureTDX},
}

// TestParseTrustee: the three layouts trustee records Azure evidence in
// parse into bundles (the signature wrapped as an RSASSA-SHA256
// TPMT_SIGNATURE), which survive Marshal and ParseBundle unchanged.
func TestParseTrustee(t *testing.T) {
	for _, s := range trusteeSamples {
		raw, err := os.ReadFile(s.file)
		if err != nil {
			t.Fatal(err)
		}
		b, kind, err := Parse(raw)
		if err != nil || kind != KindAzureTrustee || b.Platform != s.platform {
			t.Fatalf("Parse(%s) = %q, %v; want %s", s.file, kind, err, s.platform)
		}
		v := b.VTPM
		if len(v.PCRs) != 24 || len(v.HCLReport) != 2600 || !bytes.HasPrefix(v.Signature, []byte{0, 0x14, 0, 0x0b, 1, 0}) || len(v.Signature) != 262 {
			t.Errorf("%s: %d PCRs, %d-byte HCL report, signature %x…", s.file, len(v.PCRs), len(v.HCLReport), v.Signature[:6])
		}
		if (s.platform == AzureSEVSNP) != (len(b.VCEK) > 0) || (s.platform == AzureTDX) != (len(b.Quote) > 0) {
			t.Errorf("%s: vcek %d bytes, quote %d bytes", s.file, len(b.VCEK), len(b.Quote))
		}
		j, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBundle(j)
		if err != nil || !bytes.Equal(b2.VTPM.HCLReport, v.HCLReport) || !bytes.Equal(b2.VTPM.Quote, v.Quote) || !bytes.Equal(b2.VCEK, b.VCEK) {
			t.Errorf("%s: ParseBundle(Marshal) = %v", s.file, err)
		}
	}
}

func TestCheckVTPM(t *testing.T) {
	raw, _ := os.ReadFile(trusteeSamples[0].file)
	good, _, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(b *Bundle)
		want   string
	}{
		{"vtpm on sev-snp", func(b *Bundle) { b.Platform = SEVSNP }, "a vtpm object belongs to"},
		{"no vtpm", func(b *Bundle) { b.VTPM = nil }, "without its vtpm object"},
		{"version 2", func(b *Bundle) { b.VTPM.Version = 2 }, "vtpm version 2"},
		{"short PCR", func(b *Bundle) { b.VTPM.PCRs[3] = b.VTPM.PCRs[3][:31] }, "pcrs[3] is 31 bytes"},
		{"25 PCRs", func(b *Bundle) { b.VTPM.PCRs = append(b.VTPM.PCRs, b.VTPM.PCRs[0]) }, "25 values"},
		{"no quote", func(b *Bundle) { b.VTPM.Quote = nil }, "vtpm quote of 0 bytes"},
		{"huge event log", func(b *Bundle) { b.VTPM.EventLog = make([]byte, MaxVTPMEventLogSize+1) }, "event_log"},
		{"a report beside it", func(b *Bundle) { b.Report = make([]byte, SNPReportSize) }, "report or quote field"},
	} {
		j, _ := json.Marshal(good)
		var b Bundle
		json.Unmarshal(j, &b)
		tc.change(&b)
		if err := b.Check(); err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, in, want string }{
		{"unknown member", `{"version":2,"tpm_quote":{"signature":"00","message":"00","pcrs":[]},"hcl_report":"AA","vcek":"AA","extra":1}`, "unknown field"},
		{"both layouts", `{"tpm_quote":{"signature":"00","message":"00","pcrs":[]},"hcl_report":"AA","quote":{"signature":"00","message":"00","pcrs":[]},"report":[1]}`, "want tpm_quote and hcl_report"},
		{"signature not hex", `{"version":2,"tpm_quote":{"signature":"zz","message":"00","pcrs":[]},"hcl_report":"AA"}`, "signature"},
		{"a recorded file with a member renamed", strings.Replace(string(raw), `"vcek"`, `"td_quote_"`, 1), "unknown field"},
	} {
		if _, _, err := Parse([]byte(tc.in)); err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want %q", tc.name, err, tc.want)
		}
	}
}
