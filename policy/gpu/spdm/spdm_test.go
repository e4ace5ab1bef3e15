package spdm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// at is inside the validity of the samples' device chains.
var at = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRealReports(t *testing.T) {
	for _, tc := range []struct {
		report, chain, driver, vbios string
	}{
		{"testdata/sdk-hopperAttestationReport.txt", "testdata/sdk-hopperCertChain.txt", "535.86.09", "96.00.5E.00.01"},
		{"testdata/nvtrust-hopperAttestationReport.txt", "testdata/nvtrust-hopperCertChain.txt", "", ""},
	} {
		raw := readHex(t, tc.report)
		r, err := ParseReport(raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.report, err)
		}
		if len(r.Blocks) != 64 || len(r.Blocks[0].Value) != 48 || r.Blocks[0].Index != 1 {
			t.Errorf("%s: %d blocks, first index %d of %d bytes; want 64 SHA-384 blocks from 1", tc.report, len(r.Blocks), r.Blocks[0].Index, len(r.Blocks[0].Value))
		}
		if !bytes.Equal(r.Nonce[:], raw[4:36]) {
			t.Errorf("%s: nonce is not the request's", tc.report)
		}
		if tc.driver != "" && (r.DriverVersion() != tc.driver || r.VBIOSVersion() != tc.vbios) {
			t.Errorf("%s: driver %q VBIOS %q, want %q %q", tc.report, r.DriverVersion(), r.VBIOSVersion(), tc.driver, tc.vbios)
		}
		pemData, _ := os.ReadFile(tc.chain)
		chain, err := ParseChain(pemData)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := VerifyChain(chain, DeviceRoots(), at)
		if err != nil {
			t.Fatalf("%s: %v", tc.chain, err)
		}
		if err := r.VerifySignature(leaf); err != nil {
			t.Errorf("%s: %v", tc.report, err)
		}
		// Every tampered byte of what is signed breaks the signature.
		for _, off := range []int{5, RequestSize + 20, len(raw) - SignatureSize - 3, len(raw) - 1} {
			bad := bytes.Clone(raw)
			bad[off] ^= 0x01
			if r2, err := ParseReport(bad); err == nil && r2.VerifySignature(leaf) == nil {
				t.Errorf("%s: flipping byte %d still verifies", tc.report, off)
			}
		}
		// The chain does not verify before or long after its validity,
		// nor to another root.
		if _, err := VerifyChain(chain, DeviceRoots(), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
			t.Errorf("%s: the chain verifies in 2000", tc.chain)
		}
		if _, err := VerifyChain(chain[:1], DeviceRoots(), at); err == nil && len(chain) > 2 {
			t.Errorf("%s: the leaf alone verifies", tc.chain)
		}
	}
}

// TestEightGPUs reads NVIDIA's serialized evidence of 8 H100s: each report
// verifies with its own chain and carries the listed nonce and versions.
func TestEightGPUs(t *testing.T) {
	b, err := os.ReadFile("testdata/nvtrust-ppcie-gpu_evidence-8xH100.json")
	if err != nil {
		t.Fatal(err)
	}
	var gpus []struct {
		Arch, Certificate, Evidence, Nonce string
		Driver                             string `json:"driver_version"`
		VBIOS                              string `json:"vbios_version"`
	}
	if err := json.Unmarshal(b, &gpus); err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	for i, g := range gpus {
		ev, err := base64.StdEncoding.DecodeString(g.Evidence)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := base64.StdEncoding.DecodeString(g.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReport(ev)
		if err != nil {
			t.Fatalf("GPU %d: %v", i, err)
		}
		chain, err := ParseChain(cert)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := VerifyChain(chain, DeviceRoots(), time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatalf("GPU %d: %v", i, err)
		}
		if err := r.VerifySignature(leaf); err != nil {
			t.Errorf("GPU %d: %v", i, err)
		}
		if hex.EncodeToString(r.Nonce[:]) != g.Nonce || g.Arch != "HOPPER" || r.DriverVersion() != g.Driver || r.VBIOSVersion() != g.VBIOS {
			t.Errorf("GPU %d: nonce %x driver %q VBIOS %q; the JSON says %s %s %q %q", i, r.Nonce, r.DriverVersion(), r.VBIOSVersion(), g.Nonce, g.Arch, g.Driver, g.VBIOS)
		}
	}
}

func TestMalformed(t *testing.T) {
	raw := readHex(t, "testdata/sdk-hopperAttestationReport.txt")
	for name, b := range map[string][]byte{
		"empty":           nil,
		"truncated":       raw[:len(raw)-1],
		"trailing byte":   append(bytes.Clone(raw), 0),
		"not GET_MEAS":    append([]byte{0x11, 0xe1}, raw[2:]...),
		"no signature":    append(append([]byte{}, raw[:2]...), append([]byte{0x00}, raw[3:]...)...),
		"block count off": func() []byte { c := bytes.Clone(raw); c[RequestSize+4]--; return c }(),
	} {
		if _, err := ParseReport(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseReport = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add(readHex(f, "testdata/sdk-hopperAttestationReport.txt"))
	f.Add(make([]byte, RequestSize+8+NonceSize+2+SignatureSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxReportSize+1 {
			return
		}
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		if len(r.Signed)+SignatureSize != len(b) {
			t.Fatalf("signed %d + signature != %d bytes", len(r.Signed), len(b))
		}
		r.DriverVersion()
		r.VBIOSVersion()
	})
}

// TestBuildRoundTrip: what Build signs, ParseReport reads back and the key
// verifies; the VBIOS version reads back in NVIDIA's spelling.
func TestBuildRoundTrip(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var nonce [NonceSize]byte
	nonce[0] = 9
	blocks := [][]byte{bytes.Repeat([]byte{1}, 48), bytes.Repeat([]byte{2}, 48)}
	b, err := Build(nonce, blocks, []OpaqueField{TextField(OpaqueDriverVersion, "550.144.03"), VBIOSField([5]byte{0x96, 0x00, 0x5e, 0x00, 0x01})}, key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReport(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Nonce != nonce || len(r.Blocks) != 2 || !bytes.Equal(r.Blocks[1].Value, blocks[1]) || r.DriverVersion() != "550.144.03" || r.VBIOSVersion() != "96.00.5E.00.01" {
		t.Errorf("round trip: %+v driver %q VBIOS %q", r.Nonce, r.DriverVersion(), r.VBIOSVersion())
	}
	leaf := &x509.Certificate{PublicKey: &key.PublicKey}
	if err := r.VerifySignature(leaf); err != nil {
		t.Error(err)
	}
}

// TestMode: the 8xH100 PPCIe sample states protected PCIe; the older
// single-GPU samples state no mode.
func TestMode(t *testing.T) {
	gpus, err := ParseEvidenceJSON(mustRead(t, "testdata/nvtrust-ppcie-gpu_evidence-8xH100.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range gpus {
		r, err := ParseReport(g.Report)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := r.Mode(); !ok || m != ModePPCIe {
			t.Errorf("GPU %d: mode %q, %v; want ppcie", i, m, ok)
		}
	}
	r, _ := ParseReport(readHex(t, "testdata/sdk-hopperAttestationReport.txt"))
	if m, ok := r.Mode(); ok {
		t.Errorf("the SDK sample states mode %q; it has no FEATURE_FLAG", m)
	}
}
