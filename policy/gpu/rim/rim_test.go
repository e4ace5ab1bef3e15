package rim

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// at is inside the RIM signing certificates' validity.
var at = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sdkBlocks(t *testing.T) map[int][]byte {
	t.Helper()
	raw, err := hex.DecodeString(strings.TrimSpace(string(read(t, "../spdm/testdata/sdk-hopperAttestationReport.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	r, err := spdm.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]byte{}
	for _, b := range r.Blocks {
		out[int(b.Index)] = b.Value
	}
	return out
}

// TestRealVBIOSRIM: NVIDIA's production VBIOS RIM verifies (chain to the
// CoRIM root, XML signature) and its 12 active measurements are the
// sample GPU's; another board's RIM does not match it.
func TestRealVBIOSRIM(t *testing.T) {
	r, signer, err := Verify(read(t, "testdata/1010_0200_882_96005E0001_PROD.swidtag"), Roots(), at)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "96.00.5E.00.01" || r.Product != "GH100" || len(r.Active()) != 12 || signer == nil {
		t.Errorf("RIM %s %s with %d active measurements", r.Product, r.Version, len(r.Active()))
	}
	blocks := sdkBlocks(t)
	done, err := Match(blocks, r)
	if err != nil || len(done) != 12 {
		t.Errorf("Match(sample GPU, its VBIOS RIM) = %v, %v", done, err)
	}
	other, _, err := Verify(read(t, "testdata/1010_0205_862_96005E0002_PROD.swidtag"), Roots(), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Match(blocks, other); err == nil {
		t.Error("another board's VBIOS RIM matches the sample GPU")
	}
	// A swapped measurement is caught, naming the block.
	bad := map[int][]byte{}
	for k, v := range blocks {
		bad[k] = v
	}
	bad[2] = bytes.Repeat([]byte{0xee}, 48)
	if _, err := Match(bad, r); err == nil || !strings.Contains(err.Error(), "block 2") {
		t.Errorf("a swapped block 2: %v", err)
	}
}

func TestRealDriverRIM(t *testing.T) {
	r, _, err := Verify(read(t, "testdata/NV_GPU_DRIVER_GH100_550.144.03.xml"), Roots(), at)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "550.144.03" {
		t.Errorf("driver RIM version %q", r.Version)
	}
	// Driver and VBIOS RIMs own different indices.
	v, _, _ := Verify(read(t, "testdata/1010_0200_882_96005E0001_PROD.swidtag"), Roots(), at)
	for idx := range r.Active() {
		if _, both := v.Active()[idx]; both {
			t.Errorf("index %d is active in both the driver and the VBIOS RIM", idx)
		}
	}
	if _, err := Match(map[int][]byte{}, r, r); err == nil || !strings.Contains(err.Error(), "active in both") {
		t.Errorf("overlapping RIMs: %v", err)
	}
}

func TestRIMRefused(t *testing.T) {
	good := read(t, "testdata/1010_0200_882_96005E0001_PROD.swidtag")
	for _, tc := range []struct {
		name string
		b    []byte
		at   time.Time
		want string
	}{
		{"broken signature (NVIDIA's sample)", read(t, "testdata/incorrect_signature_driver_rim.xml"), at, "signature"},
		{"a golden value changed", bytes.Replace(good, []byte("c3f65ef79a19c029"), []byte("c3f65ef79a19c028"), 1), at, "signature"},
		{"expired signing certificate", good, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), "certificate"},
		{"not yet valid", good, time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), "certificate"},
		{"not XML", []byte("hello"), at, "malformed"},
	} {
		if _, _, err := Verify(tc.b, Roots(), tc.at); err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
			t.Errorf("%s: Verify = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	// Another root: nothing verifies.
	if _, _, err := Verify(good, spdm.DeviceRoots(), at); err == nil {
		t.Error("a RIM verified to the device root")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<SoftwareIdentity tagId="x"><Meta product="GH100" colloquialVersion="1"/><Payload><Resource type="Measurement" index="1" active="True" alternatives="1" Hash0="` + strings.Repeat("00", 48) + `"/></Payload></SoftwareIdentity>`))
	f.Add([]byte(`<SoftwareIdentity/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		r, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range r.Measurements {
			if len(m.Golden) == 0 {
				t.Fatal("a measurement without a golden value")
			}
		}
	})
}

func TestCheckMeasurements(t *testing.T) {
	v, _, err := Verify(read(t, "testdata/1010_0200_882_96005E0001_PROD.swidtag"), Roots(), at)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := Verify(read(t, "testdata/1010_0205_862_96005E0002_PROD.swidtag"), Roots(), at)
	blocks := sdkBlocks(t)
	for _, tc := range []struct {
		name   string
		rims   []*RIM
		driver string
		vbios  string
		ok     bool
		why    string
	}{
		{"its VBIOS RIM", []*RIM{v}, "535.86.09", "96.00.5E.00.01", true, "12 active"},
		{"no RIM", nil, "535.86.09", "96.00.5E.00.01", false, "no RIM"},
		{"a RIM of another version", []*RIM{other}, "535.86.09", "96.00.5E.00.01", false, "neither"},
		{"its RIM, but the GPU says another VBIOS", []*RIM{v}, "535.86.09", "96.00.5E.00.09", false, "neither"},
	} {
		c := CheckMeasurements(blocks, tc.driver, tc.vbios, tc.rims...)
		if c.OK != tc.ok || !strings.Contains(c.Reason, tc.why) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
}
