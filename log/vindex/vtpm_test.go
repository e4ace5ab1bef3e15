package vindex

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/log/statement"
)

// TestAzureKeyVectors checks the identities and PCR keys of vTPM-measured
// releases against values computed independently of this package
// (Python's hashlib; the identity bytes written out by hand from the
// layout in azureIdentity's comment).
func TestAzureKeyVectors(t *testing.T) {
	snp := &statement.Release{Platform: statement.PlatformAzureSNP, Measurements: statement.Measurements{
		SNP:  &statement.SNPMeasurements{LaunchDigest: strings.Repeat("5b", 48)},
		VTPM: &statement.VTPMMeasurements{PCRs: map[string]string{"4": strings.Repeat("44", 32), "11": strings.Repeat("bb", 32)}}}}
	tdx := &statement.Release{Platform: statement.PlatformAzureTDX, Measurements: statement.Measurements{
		TDX:  &statement.TDXMeasurements{MRTD: strings.Repeat("11", 48)},
		VTPM: &statement.VTPMMeasurements{PCRs: map[string]string{"7": strings.Repeat("cc", 32)}}}}
	for _, tc := range []struct {
		rel      *statement.Release
		id, key  string
		lookups  int
		firstPCR KeyType
	}{
		{snp, "617a7572652d7365762d736e7000" + strings.Repeat("5b", 48) + "100800ae59f07d38e81b32be23c3da0e550651836da8a8a2bec0b9b04ac10156926a56",
			"65c93e2ccb4faf8a901ba6d7bc836099d6b8aa08bbf881cfbc0572d91181e0df", 3, "vtpm/pcr4"},
		{tdx, "617a7572652d7464780001" + strings.Repeat("11", 48) + "0000000000800000c2f480d4dda9f4522b9f6d590011636d904accfe59f12f9d66a0221c2558e3a2",
			"41637d7b40fa8ddcf93cf7f5a8c815c57921f7ad93b9d25a9124a2865121c1dc", 2, "vtpm/pcr7"},
	} {
		id := Identity(tc.rel)
		if got := hex.EncodeToString(id); got != tc.id {
			t.Errorf("Identity(%s) = %s, want %s", tc.rel.Platform, got, tc.id)
		}
		if k, _ := IdentityKey(tc.rel); hex.EncodeToString(k[:]) != tc.key {
			t.Errorf("IdentityKey(%s) = %x, want %s", tc.rel.Platform, k, tc.key)
		}
		ds := LookupDigests(tc.rel, nil)
		if len(ds) != tc.lookups || ds[1].Type != tc.firstPCR || ds[0].Type != PrimaryType(tc.rel.Platform) {
			t.Errorf("LookupDigests(%s) = %v, want %d keys: the primary measurement then %s", tc.rel.Platform, ds, tc.lookups, tc.firstPCR)
		}
	}
	if k := Key(KeyVTPMPCR(4), mustHex(strings.Repeat("44", 32))); hex.EncodeToString(k[:]) != "b316b553dbf9f538900e31583f05fa1add209ac5a1c920521ecd685461b8c509" {
		t.Errorf("Key(vtpm/pcr4, 44…) = %x", k)
	}
	// The plain platform's identity is not the Azure release's: revoking
	// a sev-snp release with the paravisor's digest revokes no Azure guest.
	plain := &statement.Release{Platform: statement.PlatformSNP, Measurements: statement.Measurements{SNP: snp.Measurements.SNP}}
	if hex.EncodeToString(Identity(plain)) == hex.EncodeToString(Identity(snp)) {
		t.Error("a sev-snp release and an azure-sev-snp release on the same launch digest share an identity")
	}
	// Another PCR value, or one PCR fewer, is another identity.
	other := *snp
	other.Measurements.VTPM = &statement.VTPMMeasurements{PCRs: map[string]string{"4": strings.Repeat("44", 32)}}
	if hex.EncodeToString(Identity(&other)) == hex.EncodeToString(Identity(snp)) {
		t.Error("naming fewer PCRs kept the identity")
	}
	for _, s := range []string{"vtpm/pcr0", "vtpm/pcr23"} {
		if kt, err := ParseKeyType(s); err != nil || kt.CheckDigest(make([]byte, 32)) != nil || kt.CheckDigest(make([]byte, 48)) == nil {
			t.Errorf("ParseKeyType(%s) = %v, %v; want a 32-byte key type", s, kt, err)
		}
	}
	for _, s := range []string{"vtpm/pcr24", "vtpm/pcr04", "vtpm/pcr"} {
		if _, err := ParseKeyType(s); err == nil {
			t.Errorf("ParseKeyType(%s) accepted", s)
		}
	}
}
