package tdx

import (
	"os"
	"testing"
)

// FuzzParseQuoteMeasurements: a quote is untrusted input (from an enclave
// or a bundle). Parsing never panics; what parses has a 48-byte MRTD,
// four 48-byte RTMRs and a 48-byte MRCONFIGID.
func FuzzParseQuoteMeasurements(f *testing.F) {
	raw, err := os.ReadFile("testdata/quote_spr_e4.dat")
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds: the header and TD report of a real quote (where the
	// measurements are), cut short. The whole quote (5 KB) would make a
	// short run spend its time minimising; TestParseQuoteMeasurementsReal
	// covers the success path.
	f.Add(raw[:632])
	f.Add(raw[:100])
	f.Add([]byte{4, 0, 2, 0, 0x81, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		m, err := ParseQuoteMeasurements(b)
		if err != nil {
			return
		}
		if len(m.MRTD) != 48 || len(m.RTMRs) != 4 || len(m.MRConfigID) != 48 {
			t.Fatalf("accepted a quote with MRTD %d bytes, %d RTMRs, MRCONFIGID %d bytes", len(m.MRTD), len(m.RTMRs), len(m.MRConfigID))
		}
		for i, r := range m.RTMRs {
			if len(r) != 48 {
				t.Fatalf("RTMR%d is %d bytes", i, len(r))
			}
		}
	})
}

// FuzzParseMemorySize: recipe.measure.memory is release input. What
// parses is positive, at most 16 TiB and a whole number of KiB.
func FuzzParseMemorySize(f *testing.F) {
	for _, s := range []string{"4G", "4096M", "4096", "1T", "512KiB", "2gb", "0", "-1", "16385G", "1X"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemorySize(s)
		if err != nil {
			return
		}
		if n == 0 || n > 1<<44 || n%1024 != 0 {
			t.Fatalf("ParseMemorySize(%q) = %d", s, n)
		}
	})
}

// TestParseQuoteMeasurementsReal: the real quote parses to 48-byte values.
func TestParseQuoteMeasurementsReal(t *testing.T) {
	raw, err := os.ReadFile("testdata/quote_spr_e4.dat")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseQuoteMeasurements(raw)
	if err != nil || len(m.MRTD) != 48 || len(m.RTMRs) != 4 || len(m.MRConfigID) != 48 {
		t.Fatalf("ParseQuoteMeasurements(real quote) = %+v, %v", m, err)
	}
}
