package rim

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/policy/gpu/rim/rimtest"
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

// sdkGPU is NVIDIA's sample H100 as its RIMs see it (its certificate
// names GH100; its report project 1010, SKU 0200, driver 535.86.09, VBIOS
// 96.00.5E.00.01).
func sdkGPU(t *testing.T) GPU {
	t.Helper()
	return GPU{Chip: "GH100", Driver: "535.86.09", VBIOS: "96.00.5E.00.01", Project: "1010", ProjectSKU: "0200", Blocks: sdkBlocks(t)}
}

// TestMatchGPU: NVIDIA's VBIOS RIM of the sample GPU's board, with a
// driver RIM for its driver (NVIDIA's 550.144.03 RIM given the sample's
// version, tag id and values, signed by a test CA), is exactly what the
// sample GPU must be held to; everything else is refused, each with its
// reason.
func TestMatchGPU(t *testing.T) {
	ca, err := rimtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	roots := Roots()
	roots.AddCert(ca.Root)
	verify := func(b []byte) *RIM {
		t.Helper()
		r, _, err := Verify(b, roots, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	g := sdkGPU(t)
	nvDriver := read(t, "testdata/NV_GPU_DRIVER_GH100_550.144.03.xml")
	edits := []rimtest.Edit{rimtest.TagID(tagID("GH100_535.86.09")), rimtest.Version(g.Driver)}
	p, _ := Parse(nvDriver)
	for idx := range p.Active() {
		edits = append(edits, rimtest.Golden(idx, g.Blocks[idx+1]))
	}
	remake := func(b []byte, e ...rimtest.Edit) []byte {
		t.Helper()
		out, err := ca.Remake(b, e...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	driverRaw := remake(nvDriver, edits...)
	driver := verify(driverRaw)
	vbiosRaw := read(t, "testdata/1010_0200_882_96005E0001_PROD.swidtag")
	vbios := verify(vbiosRaw)
	swapped := sdkGPU(t)
	swapped.Blocks[2] = bytes.Repeat([]byte{0xee}, 48)
	chipless := sdkGPU(t)
	chipless.Chip = ""
	otherSKU := sdkGPU(t)
	otherSKU.ProjectSKU = "0205"
	for _, tc := range []struct {
		name string
		g    GPU
		rims []*RIM
		want error
	}{
		{"its driver and VBIOS RIMs", g, []*RIM{driver, vbios}, nil},
		{"in either order", g, []*RIM{vbios, driver}, nil},
		{"no driver RIM", g, []*RIM{vbios}, ErrMissingRIM},
		{"no VBIOS RIM", g, []*RIM{driver}, ErrMissingRIM},
		{"none", g, nil, ErrMissingRIM},
		{"the driver RIM twice", g, []*RIM{driver, driver, vbios}, ErrMissingRIM},
		{"the GPU is of another SKU", otherSKU, []*RIM{driver, vbios}, ErrNotThisGPU},
		{"a VBIOS RIM tagged for another board", g, []*RIM{driver, verify(remake(vbiosRaw, rimtest.TagID(tagID("GH100_P1010_SKU0205_96.00.5E.00.01"))))}, ErrNotThisGPU},
		{"a VBIOS RIM of another chip", g, []*RIM{driver, verify(remake(vbiosRaw, rimtest.TagID(tagID("GH180_P1010_SKU0200_96.00.5E.00.01"))))}, ErrNotThisGPU},
		{"a driver RIM of another version", g, []*RIM{vbios, verify(nvDriver)}, ErrNotThisGPU},
		{"NVIDIA's RIM of another board", g, []*RIM{driver, verify(read(t, "testdata/1010_0205_862_96005E0002_PROD.swidtag"))}, ErrNotThisGPU},
		{"a GPU whose certificate names no chip", chipless, []*RIM{driver, vbios}, ErrNotThisGPU},
		{"a measured block no RIM covers", g, []*RIM{verify(remake(driverRaw, rimtest.Inactive(40))), vbios}, ErrUncovered},
		{"a swapped block", swapped, []*RIM{driver, vbios}, ErrMismatch},
		{"overlapping RIMs", g, []*RIM{verify(remake(driverRaw, rimtest.Golden(1, g.Blocks[2]))), vbios}, ErrMismatch},
	} {
		n, err := MatchGPU(tc.g, tc.rims...)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: MatchGPU = %d, %v; want %v", tc.name, n, err, tc.want)
		}
		if c := CheckMeasurements(tc.g, tc.rims...); c.OK != (tc.want == nil) {
			t.Errorf("%s: CheckMeasurements = %+v", tc.name, c)
		}
	}
	// The sample leaves blocks 14-21 and 42-64 zero, covered by no RIM:
	// unmeasured, accepted; 33 blocks are compared.
	if n, err := MatchGPU(g, driver, vbios); n != 33 || err != nil {
		t.Errorf("MatchGPU(sample) = %d, %v; want 33 blocks", n, err)
	}
}

// TestNVIDIATagIDs: the tag id of each RIM NVIDIA published is the
// SHA-384 of the name of what it is for, as the GPU's evidence states it.
func TestNVIDIATagIDs(t *testing.T) {
	for file, tc := range map[string]struct {
		g     GPU
		vbios bool
		name  string
	}{
		"testdata/1010_0200_882_96005E0001_PROD.swidtag": {GPU{Chip: "GH100", Project: "1010", ProjectSKU: "0200", VBIOS: "96.00.5E.00.01"}, true, "GH100_P1010_SKU0200_96.00.5E.00.01"},
		"testdata/1010_0205_862_96005E0002_PROD.swidtag": {GPU{Chip: "GH100", Project: "1010", ProjectSKU: "0205", VBIOS: "96.00.5E.00.02"}, true, "GH100_P1010_SKU0205_96.00.5E.00.02"},
		"testdata/g520_0202_885_9600740014_PROD.swidtag": {GPU{Chip: "GH100", Project: "G520", ProjectSKU: "0202", VBIOS: "96.00.74.00.14"}, true, "GH100_PG520_SKU0202_96.00.74.00.14"},
		"testdata/NV_GPU_DRIVER_GH100_550.144.03.xml":    {GPU{Chip: "GH100", Driver: "550.144.03"}, false, "GH100_550.144.03"},
	} {
		r, err := Parse(read(t, file))
		if err != nil {
			t.Fatal(err)
		}
		name := tc.g.DriverName()
		if tc.vbios {
			name = tc.g.VBIOSName()
		}
		h := sha512.Sum384([]byte(tc.name))
		if name != tc.name || r.TagID != hex.EncodeToString(h[:]) || tagID(name) != r.TagID {
			t.Errorf("%s: tagId %s; name %q, want SHA-384(%q)", file, r.TagID, name, tc.name)
		}
	}
}
