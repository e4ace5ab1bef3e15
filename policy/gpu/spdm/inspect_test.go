package spdm

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"testing"
	"time"
)

func TestInspect(t *testing.T) {
	raw := readHex(t, "testdata/sdk-hopperAttestationReport.txt")
	chain, _ := os.ReadFile("testdata/sdk-hopperCertChain.txt")
	e := GPUEvidence{Arch: "HOPPER", Report: raw, Certificate: chain}
	in := Inspect(e, DeviceRoots(), at, raw[4:36])
	if !in.OK() || in.Arch != "HOPPER" || in.Driver != "535.86.09" || in.VBIOS != "96.00.5E.00.01" || len(in.Measurements) != 64 || in.Board != "1010_0200_882" {
		t.Fatalf("good evidence: OK %v, %+v\n%s", in.OK(), in, in.Checks)
	}
	if chip := CertifiedChip(in.Path()[0]); chip != "GH100" {
		t.Errorf("CertifiedChip(%q) = %q, want GH100", in.Path()[0].Subject.CommonName, chip)
	}
	for _, tc := range []struct {
		name  string
		e     GPUEvidence
		at    time.Time
		nonce []byte
		fails string
	}{
		{"wrong nonce", e, at, bytes.Repeat([]byte{7}, 32), CheckNonce},
		{"chain not yet valid", e, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), nil, CheckChain},
		{"tampered report", GPUEvidence{Report: func() []byte { b := bytes.Clone(raw); b[RequestSize+30] ^= 1; return b }(), Certificate: chain}, at, nil, CheckSignature},
		{"another GPU's chain", GPUEvidence{Report: raw, Certificate: mustRead(t, "testdata/nvtrust-hopperCertChain.txt")}, at, nil, CheckSignature},
		{"an architecture its certificate does not name", GPUEvidence{Arch: "BLACKWELL", Report: raw, Certificate: chain}, at, nil, CheckArch},
		{"not a report", GPUEvidence{Report: []byte("hello"), Certificate: chain}, at, nil, CheckReport},
	} {
		in := Inspect(tc.e, DeviceRoots(), tc.at, tc.nonce)
		c, ok := in.Checks.Find(tc.fails)
		if in.OK() || !ok || c.OK {
			t.Errorf("%s: OK %v, %q = %+v\n%s", tc.name, in.OK(), tc.fails, c, in.Checks)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEvidenceJSON(t *testing.T) {
	gpus, err := ParseEvidenceJSON(mustRead(t, "testdata/nvtrust-ppcie-gpu_evidence-8xH100.json"))
	if err != nil || len(gpus) != 8 {
		t.Fatalf("%d GPUs, %v", len(gpus), err)
	}
	for _, bad := range []string{"", "{}", "[]", `[{"certificate":"!!"}]`, `[{"evidence":"!!"}]`} {
		if _, err := ParseEvidenceJSON([]byte(bad)); err == nil {
			t.Errorf("ParseEvidenceJSON(%q) = nil error", bad)
		}
	}
}

func FuzzParseEvidenceJSON(f *testing.F) {
	f.Add([]byte(`[{"arch":"HOPPER","certificate":"","evidence":"EeAB/w==","nonce":"00"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		gpus, err := ParseEvidenceJSON(b)
		if err != nil {
			return
		}
		for _, g := range gpus {
			Inspect(g, DeviceRoots(), at, nil)
		}
	})
}

func TestCertifiedChip(t *testing.T) {
	for cn, want := range map[string]string{
		"GH100 A01 GSP FMC LF":              "GH100", // NVIDIA's H100 leaf
		"attestlog demo GH100 GPU 0 FMC LF": "GH100", // the demo's
		"GB100 A01 FSP FMC LF":              "GB100",
		"NVIDIA Device Identity CA":         "",
		"XGH1000":                           "",
	} {
		if got := CertifiedChip(&x509.Certificate{Subject: pkix.Name{CommonName: cn}}); got != want {
			t.Errorf("CertifiedChip(%q) = %q, want %q", cn, got, want)
		}
	}
}
