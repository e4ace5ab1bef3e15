package statement

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// specExamples returns the ```json example=NAME blocks of
// docs/spec/statement.md.
func specExamples(t *testing.T) map[string][]byte {
	t.Helper()
	doc, err := os.ReadFile("../../docs/spec/statement.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	re := regexp.MustCompile("(?s)```json example=([a-z]+)\n(.*?)\n```")
	for _, m := range re.FindAllSubmatch(doc, -1) {
		out[string(m[1])] = m[2]
	}
	return out
}

// TestStatementSpec holds the encoder to the specification's examples,
// byte for byte: the canonical encoding is the document's, not whatever
// order Go's structs happen to have (reorder a field and this fails).
func TestStatementSpec(t *testing.T) {
	ex := specExamples(t)
	ref := EntryRef{Index: 7, SHA256: strings.Repeat("e7", 32)}
	rel, err := EncodeRelease([]Subject{{Name: "OVMF.fd", Digest: Digest{SHA256: strings.Repeat("d1", 32)}}}, &Release{
		Version: "1.4.2", Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Platform: PlatformSNP,
		Measurements: Measurements{SNP: &SNPMeasurements{LaunchDigest: strings.Repeat("ab", 48), GuestPolicy: "0000000000030000"}},
		Source:       Source{Repo: "https://github.com/acme/enclave", Commit: strings.Repeat("c", 40)},
		Recipe: Recipe{Argv: []string{"make", "release"}, Env: map[string]string{"SOURCE_DATE_EPOCH": "0", "LANG": "C"}, Outputs: []string{"out/OVMF.fd"},
			Measure: &MeasureInputs{Firmware: "out/OVMF.fd", VCPUs: 4, VCPUType: "EPYC-Milan", VMMType: "QEMU"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rp, err := EncodeReproduction(ref, &Reproduction{Outcome: OutcomeMatch, Time: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
		Measurements: Measurements{TDX: &TDXMeasurements{MRTD: strings.Repeat("11", 48), RTMR0: strings.Repeat("22", 48)}}})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := EncodeRevocation(ref, &Revocation{Reason: "CVE-2026-1234: kernel <5.1 & \"quoted\"\n", Advisory: "CVE-2026-1234", Time: time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"release": rel, "reproduction": rp, "revocation": rv} {
		want, ok := ex[name]
		if !ok {
			t.Fatalf("the specification has no %s example", name)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the encoder writes\n%s\nthe specification says\n%s", name, got, want)
		}
		if _, err := ParseStatement(want); err != nil {
			t.Errorf("%s: the specification's example does not parse: %v", name, err)
		}
	}
	// Not canonical, each one way: refused.
	for _, bad := range []string{
		strings.Replace(string(ex["revocation"]), `"reason":"CVE-2026-1234: kernel <5.1 & \"quoted\"\n","advisory":"CVE-2026-1234"`, `"advisory":"CVE-2026-1234","reason":"CVE-2026-1234: kernel <5.1 & \"quoted\"\n"`, 1), // member order
		strings.Replace(string(ex["revocation"]), `<5.1`, `\u003c5.1`, 1),                                                         // escaped where it must not be
		strings.Replace(string(ex["revocation"]), `{"reason"`, `{ "reason"`, 1),                                                   // whitespace
		strings.Replace(string(ex["release"]), `{"LANG":"C","SOURCE_DATE_EPOCH":"0"}`, `{"SOURCE_DATE_EPOCH":"0","LANG":"C"}`, 1), // data names unsorted
		strings.Replace(string(ex["release"]), `"time":"2026-11-26T12:00:00Z"`, `"time":"2026-11-26T13:00:00+01:00"`, 1),          // not UTC
	} {
		if bad == string(ex["revocation"]) || bad == string(ex["release"]) {
			t.Fatal("a mutation did not apply")
		}
		if _, err := ParseStatement([]byte(bad)); err == nil {
			t.Errorf("a non-canonical statement parsed:\n%s", bad)
		}
	}
}
