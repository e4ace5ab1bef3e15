package gpu

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu/rim"
	"github.com/attestlog/attestlog/policy/gpu/rim/rimtest"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// rimAt is inside the validity of NVIDIA's sample RIM signing
// certificates.
var rimAt = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

const (
	spdmData = "spdm/testdata/"
	rimData  = "rim/testdata/"
	// NVIDIA's RIMs as published: the VBIOS RIM of the sample GPU's board
	// (project 1010, SKU 0200, VBIOS 96.00.5E.00.01) and a driver RIM.
	nvidiaVBIOS  = rimData + "1010_0200_882_96005E0001_PROD.swidtag"
	nvidiaDriver = rimData + "NV_GPU_DRIVER_GH100_550.144.03.xml"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nvidiaTagID is the tag id of NVIDIA's RIM called name: the hex
// SHA-384 of "GH100_550.144.03" for a driver, of
// "GH100_P1010_SKU0200_96.00.5E.00.01" for a board's VBIOS (rim's
// TestNVIDIATagIDs checks this on NVIDIA's published RIMs).
func nvidiaTagID(name string) string {
	h := sha512.Sum384([]byte(name))
	return hex.EncodeToString(h[:])
}

// realGPU is NVIDIA's sample H100 (attestation-sdk): its report, chain and
// measurement blocks.
func realGPU(t *testing.T) (evidence.GPU, *spdm.Report) {
	t.Helper()
	raw, err := hex.DecodeString(strings.TrimSpace(string(readFile(t, spdmData+"sdk-hopperAttestationReport.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	r, err := spdm.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.GPU{Arch: "HOPPER", Report: raw, CertChain: string(readFile(t, spdmData+"sdk-hopperCertChain.txt"))}, r
}

// mustRemake is ca.Remake or the end of the test.
func mustRemake(t *testing.T, ca *rimtest.CA, base []byte, edits ...rimtest.Edit) []byte {
	t.Helper()
	b, err := ca.Remake(base, edits...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rimCheck runs v on b and returns its GPU measurements checks, at least
// one (the test ends otherwise).
func rimChecks(t *testing.T, v *Verifier, b *evidence.Bundle, nonce []byte) check.List {
	t.Helper()
	var out check.List
	for _, c := range v.Verify(b, nonce) {
		if c.Name == rim.CheckName {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q check", rim.CheckName)
	}
	return out
}

// TestRIMsOfARealGPU: NVIDIA's sample H100 against NVIDIA's VBIOS RIM for
// its board and a driver RIM for its driver (535.86.09: NVIDIA's is not
// among the published samples, so it is NVIDIA's 550.144.03 RIM, its tag
// id, version and golden values set to the sample's, signed by a test CA
// and verified through the same code as NVIDIA's). Whoever staples the
// RIMs chooses them: each way of choosing a subset that would leave a
// measurement unchecked is refused.
func TestRIMsOfARealGPU(t *testing.T) {
	g, rep := realGPU(t)
	ca, err := rimtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	blocks := rep.BlockMap()
	nvDriver, err := rim.Parse(readFile(t, nvidiaDriver))
	if err != nil {
		t.Fatal(err)
	}
	driverEdits := []rimtest.Edit{rimtest.TagID(nvidiaTagID("GH100_535.86.09")), rimtest.Version("535.86.09")}
	for idx := range nvDriver.Active() {
		driverEdits = append(driverEdits, rimtest.Golden(idx, blocks[idx+1]))
	}
	driver := mustRemake(t, ca, readFile(t, nvidiaDriver), driverEdits...)
	vbios := readFile(t, nvidiaVBIOS)
	roots := rim.Roots()
	roots.AddCert(ca.Root)
	v := &Verifier{Policy: policy.GPUPolicy{Required: true, Vendor: "nvidia", Count: 1, RequireRIMs: true},
		DeviceCAs: spdm.DeviceRoots(), RIMRoots: roots, Now: func() time.Time { return rimAt }}
	for _, tc := range []struct {
		name string
		rims [][]byte
		ok   bool
		why  string
	}{
		{"its driver and VBIOS RIMs", [][]byte{vbios, driver}, true, "33 active measurements"},
		{"the VBIOS RIM only: every driver block unchecked", [][]byte{vbios}, false, "no driver RIM"},
		{"the driver RIM only: every VBIOS block unchecked", [][]byte{driver}, false, "no VBIOS RIM"},
		{"another board's VBIOS RIM, same version and values", [][]byte{driver, mustRemake(t, ca, vbios, rimtest.TagID(nvidiaTagID("GH100_P1010_SKU0205_96.00.5E.00.01")))}, false, "another board"},
		{"a driver RIM leaving block 31 unchecked", [][]byte{vbios, mustRemake(t, ca, driver, rimtest.Inactive(30))}, false, "block 31"},
		{"NVIDIA's VBIOS RIM of another board", [][]byte{driver, readFile(t, rimData+"1010_0205_862_96005E0002_PROD.swidtag")}, false, "neither"},
		{"a third RIM", [][]byte{vbios, driver, readFile(t, rimData+"g520_0202_885_9600740014_PROD.swidtag")}, false, "neither"},
		{"the VBIOS RIM twice", [][]byte{vbios, vbios}, false, "twice"},
	} {
		g.RIMs = tc.rims
		cs := rimChecks(t, v, &evidence.Bundle{GPUs: []evidence.GPU{g}}, make([]byte, 32))
		if cs.OK() != tc.ok || !strings.Contains(cs.String(), tc.why) {
			t.Errorf("%s: %s, want OK %v and %q", tc.name, cs, tc.ok, tc.why)
		}
	}
}

// demoRIMs are a driver RIM and a VBIOS RIM for the demo GPUs (board
// "demo", SKU 0000), made from NVIDIA's and signed by ca: the VBIOS RIM
// covers blocks 1-21, the driver RIM blocks 22-64 (every demo block is
// measured). Each edit list is applied after that.
func demoRIMs(t *testing.T, ca *rimtest.CA, driverExtra, vbiosExtra []rimtest.Edit) (driver, vbios []byte) {
	t.Helper()
	d := []rimtest.Edit{rimtest.TagID(nvidiaTagID("GH100_" + fakeenclave.DemoGPUDriver)), rimtest.Version(fakeenclave.DemoGPUDriver)}
	vb := []rimtest.Edit{rimtest.TagID(nvidiaTagID("GH100_Pdemo_SKU0000_96.00.5E.00.01"))}
	for idx := range 64 {
		if idx < 21 {
			d, vb = append(d, rimtest.Inactive(idx)), append(vb, rimtest.Golden(idx, fakeenclave.DemoGPUBlock(idx+1)))
		} else {
			d, vb = append(d, rimtest.Golden(idx, fakeenclave.DemoGPUBlock(idx+1))), append(vb, rimtest.Inactive(idx))
		}
	}
	return mustRemake(t, ca, readFile(t, nvidiaDriver), append(d, driverExtra...)...), mustRemake(t, ca, readFile(t, nvidiaVBIOS), append(vb, vbiosExtra...)...)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestRIMsOfDemoGPUs: two demo GPUs with their RIMs stapled pass every
// check; each way of stapling that would leave a measurement unchecked,
// or one GPU reported twice, fails the decision and the release check.
func TestRIMsOfDemoGPUs(t *testing.T) {
	ca, err := rimtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	driver, vbios := demoRIMs(t, ca, nil, nil)
	nonce := make([]byte, 32)
	evidenceOf := func(opts ...fakeenclave.Option) (*evidence.Bundle, []byte) {
		enc, err := fakeenclave.NewSNP(make([]byte, 48), append([]fakeenclave.Option{fakeenclave.WithGPUs(2)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := enc.Evidence(context.Background(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		return ev, enc.GPURootPEM()
	}
	verifier := func(root []byte) *Verifier {
		v := NewVerifier(policy.GPUPolicy{Required: true, Vendor: "nvidia", Count: 2, Arch: "hopper", RequireRIMs: true}, root)
		v.RIMRoots = ca.Roots()
		return v
	}
	released := &statement.Release{Version: "1.0.0", GPUs: &statement.GPUs{Vendor: "nvidia", Arch: "HOPPER", Count: 2, RIMs: []string{sha256Hex(driver), sha256Hex(vbios)}}}

	ev, root := evidenceOf()
	for i := range ev.GPUs {
		ev.GPUs[i].RIMs = [][]byte{driver, vbios}
	}
	v := verifier(root)
	if cs := v.Verify(ev, nonce); !cs.OK() {
		t.Fatalf("two demo GPUs with their RIMs:\n%s", cs)
	}
	if c := v.CheckRelease(ev, released); !c.OK {
		t.Fatalf("two demo GPUs with the released RIMs: %+v", c)
	}

	_, otherBoard := demoRIMs(t, ca, nil, []rimtest.Edit{rimtest.TagID(nvidiaTagID("GH100_Pdemo_SKU0001_96.00.5E.00.01"))})
	uncovering, _ := demoRIMs(t, ca, []rimtest.Edit{rimtest.Inactive(40)}, nil)
	for _, tc := range []struct {
		name  string
		rims  [][]byte
		fails string
	}{
		{"the VBIOS RIM only", [][]byte{vbios}, rim.CheckName},
		{"the driver RIM only", [][]byte{driver}, rim.CheckName},
		{"a VBIOS RIM of another board", [][]byte{driver, otherBoard}, rim.CheckName},
		{"a driver RIM leaving block 41 unchecked", [][]byte{uncovering, vbios}, rim.CheckName},
	} {
		ev, root := evidenceOf()
		ev.GPUs[0].RIMs, ev.GPUs[1].RIMs = tc.rims, [][]byte{driver, vbios}
		cs := verifier(root).Verify(ev, nonce)
		if c, ok := cs.Failed().Find(tc.fails); cs.OK() || !ok || !strings.HasPrefix(c.Reason, "GPU 0: ") {
			t.Errorf("%s: want GPU 0's %q check failed:\n%s", tc.name, tc.fails, cs)
		}
	}

	// A RIM the release names is left out (its signer, say, revoked):
	// the release check fails, whatever else is stapled.
	ev, _ = evidenceOf()
	for i := range ev.GPUs {
		ev.GPUs[i].RIMs = [][]byte{vbios}
	}
	if c := v.CheckRelease(ev, released); c.OK {
		t.Errorf("the released driver RIM omitted: %+v", c)
	}

	// One GPU reported twice, each time answering its derived nonce,
	// meets neither count=2 nor a release of 2 GPUs.
	ev, root = evidenceOf(fakeenclave.WithGPUsCloned())
	for i := range ev.GPUs {
		ev.GPUs[i].RIMs = [][]byte{driver, vbios}
	}
	v = verifier(root)
	if cs := v.Verify(ev, nonce); cs.OK() {
		t.Errorf("one GPU reported twice, count=2:\n%s", cs)
	} else if c, ok := cs.Failed().Find(CheckCount); !ok || !strings.Contains(c.Reason, "same device") {
		t.Errorf("one GPU reported twice, count=2: %+v, want a failed %q check naming the same device:\n%s", c, CheckCount, cs)
	}
	if c := v.CheckRelease(ev, released); c.OK {
		t.Errorf("one GPU reported twice, a release of 2: %+v", c)
	}
}

// TestCountDistinctRealGPUs: of NVIDIA's 8-GPU sample, two GPUs are two
// devices; GPU 0 given twice is one.
func TestCountDistinctRealGPUs(t *testing.T) {
	gs, err := spdm.ParseEvidenceJSON(readFile(t, spdmData+"nvtrust-ppcie-gpu_evidence-8xH100.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := func(i int) evidence.GPU {
		return evidence.GPU{Arch: gs[i].Arch, Report: gs[i].Report, CertChain: string(gs[i].Certificate)}
	}
	v := &Verifier{Policy: policy.GPUPolicy{Required: true, Vendor: "nvidia", Count: 2},
		DeviceCAs: spdm.DeviceRoots(), RIMRoots: rim.Roots(), Now: func() time.Time { return time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC) }}
	for _, tc := range []struct {
		name string
		gpus []evidence.GPU
		ok   bool
	}{
		{"GPUs 0 and 1", []evidence.GPU{g(0), g(1)}, true},
		{"GPU 0 twice", []evidence.GPU{g(0), g(0)}, false},
	} {
		c, ok := v.Verify(&evidence.Bundle{GPUs: tc.gpus}, make([]byte, 32)).Find(CheckCount)
		if !ok || c.OK != tc.ok {
			t.Errorf("%s, count=2: %+v, want OK %v", tc.name, c, tc.ok)
		}
	}
}
