package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sevtd "github.com/google/go-sev-guest/verify/testdata"
	tdxtd "github.com/google/go-tdx-guest/testing/testdata"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
)

func runInspectCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	old := inspectStdout
	inspectStdout = &out
	defer func() { inspectStdout = old }()
	return run(append([]string{"inspect"}, args...)), out.String()
}

// The samples are go-sev-guest's verify/testdata (a Milan report and its
// VCEK) and go-tdx-guest's testing/testdata (a Sapphire Rapids quote),
// embedded in those modules.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	report := write("report.bin", sevtd.AttestationBytes)
	vcek := write("vcek.der", sevtd.VcekBytes)
	quote := write("quote.dat", tdxtd.RawQuote)
	flipped := bytes.Clone(sevtd.AttestationBytes)
	flipped[0x90] ^= 1
	bad := write("flipped.bin", flipped)
	const cloud = "../../policy/attest/testdata/cloud/"
	must := func(s string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	gcpLog, err := os.ReadFile(cloud + "gcp-tdx/ccel_data.trimmed")
	if err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Clone(gcpLog), bytes.Repeat([]byte{0xff}, 1<<17)...)
	otherLog := bytes.Clone(gcpLog[:len(gcpLog)/2])

	e, err := fakeenclave.NewSNP(bytes.Repeat([]byte{0xcd}, 48))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := e.Evidence(context.Background(), bytes.Repeat([]byte{1}, 32))
	j, _ := ev.Marshal()
	bundle := write("evidence.json", j)
	write("root.pem", e.RootPEM())
	pol := write("policy", []byte("trust-root sev-snp root.pem\n"))

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--vcek", vcek, "--at", "2025-01-01T00:00:00Z", report}, 0, "launch_digest         b07af962"},
		{[]string{"--at", "2025-01-01T00:00:00Z", report}, 1, "✗ hardware signature chain: no VCEK certificate"},
		{[]string{"--vcek", vcek, "--at", "2025-01-01T00:00:00Z", bad}, 1, "✗ hardware signature chain"},
		{[]string{"--vcek", vcek, "--at", "2030-01-01T00:00:00Z", report}, 1, "expired"},
		// A TDX quote with no Intel collateral has no TCB status: refused
		// unless the policy accepts that, as a warning.
		{[]string{"--at", "2023-07-01T00:00:00Z", quote}, 1, "✗ TCB status: no Intel collateral"},
		{[]string{"--policy", write("unchecked.policy", []byte("tdx-tcb-status unchecked\n")), "--at", "2023-07-01T00:00:00Z", quote}, 0, "! TCB status: not evaluated"},
		// Fake evidence verifies only when a policy names its test root.
		{[]string{bundle}, 1, "✗ hardware signature chain"},
		{[]string{"--policy", pol, bundle}, 0, "✓ hardware signature chain: report signature verified with the VCEK; VCEK certified by ARK-Milan (trust-root root.pem)"},
		{[]string{"--json", "--policy", pol, bundle}, 0, `"launch_digest": "cdcdcd`},
		{[]string{}, 2, ""},
		{[]string{"--vcek", vcek, quote}, 1, ""},
		// Real cloud samples (policy/attest/testdata/cloud): a TDX 1.5
		// quote v5 with its collateral, Google Cloud's TD with its whole
		// CCEL area.
		{[]string{"--policy", write("v5.policy", []byte("tdx-collateral "+must(filepath.Abs(cloud+"tdx-v5/collateral"))+"\n")), "--at", "2026-02-25T00:00:00Z", cloud + "tdx-v5/quote_v5_sample.dat"},
			0, "TDX quote v5 (tdx)"},
		{[]string{"--policy", filepath.Join(dir, "v5.policy"), "--at", "2026-02-25T00:00:00Z", cloud + "tdx-v5/quote_v5_sample.dat"}, 0, "tee_tcb_svn 0b010400000000000000000000000000 tee_tcb_svn2 0d010400000000000000000000000000 mrservicetd"},
		{[]string{"--policy", filepath.Join(dir, "v5.policy"), "--at", "2026-02-25T00:00:00Z", cloud + "tdx-v5/quote_v5_sample.dat"}, 0, "tcb.status UpToDate tcb.platform 2024-11-13 UpToDate tcb.module TDX_01 isvsvn 11 UpToDate tcb.qe isvsvn 7 UpToDate tcb.evaluation_data_number 18"},
		{[]string{"--policy", filepath.Join(dir, "v5.policy"), "--at", "2026-03-25T00:00:00Z", cloud + "tdx-v5/quote_v5_sample.dat"}, 1, "✗ TCB status"},
		{[]string{"--policy", filepath.Join(dir, "unchecked.policy"), "--event-log", write("ccel", padded), "--at", "2024-08-01T00:00:00Z", cloud + "gcp-tdx/cos-113-tdx-quote.dat"}, 0, "event_log          43 events replay to RTMR0-3 (16, 7, 20, 0)"},
		{[]string{"--policy", filepath.Join(dir, "unchecked.policy"), "--event-log", write("other.ccel", otherLog), "--at", "2024-08-01T00:00:00Z", cloud + "gcp-tdx/cos-113-tdx-quote.dat"}, 1, "✗ event log: the stapled event log"},
		{[]string{"--event-log", filepath.Join(dir, "ccel"), report}, 1, ""},
		{[]string{"--endorsement", quote, "--at", "2024-08-01T00:00:00Z", cloud + "gcp-tdx/cos-113-tdx-quote.dat"}, 1, "✗ firmware endorsement: the policy trusts no firmware-endorsement root"},
	} {
		code, out := runInspectCmd(t, tc.args...)
		// Field lines are aligned: compare them with single spaces too.
		if code != tc.code || !strings.Contains(out, tc.want) && !strings.Contains(strings.Join(strings.Fields(out), " "), tc.want) {
			t.Errorf("attestlog inspect %v = %d\n%s\nwant %d containing %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	_, out := runInspectCmd(t, "--json", "--policy", pol, bundle)
	var res struct {
		OK  bool `json:"ok"`
		SNP struct {
			LaunchDigest string `json:"launch_digest"`
		} `json:"snp"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.OK || res.SNP.LaunchDigest != strings.Repeat("cd", 48) {
		t.Errorf("--json output %q: %+v, %v", out, res, err)
	}
}

// TestInspectGPU: NVIDIA's serialized evidence of 8 H100s inspects as 8
// verified H100s; a hex report with its chain verifies, and is refused
// for a nonce it does not answer.
func TestInspectGPU(t *testing.T) {
	const td = "../../policy/gpu/spdm/testdata/"
	code, out := runInspectCmd(t, "--at", "2025-10-01T00:00:00Z", td+"nvtrust-ppcie-gpu_evidence-8xH100.json")
	if code != 0 || strings.Count(out, "GPU report signature: ECDSA P-384") != 8 || strings.Count(out, "(HOPPER)") != 8 {
		t.Errorf("8xH100: exit %d\n%.600s", code, out)
	}
	code, out = runInspectCmd(t, "--json", "--cert-chain", td+"sdk-hopperCertChain.txt", td+"sdk-hopperAttestationReport.txt")
	var ins []struct {
		Driver string `json:"driver_version"`
		VBIOS  string `json:"vbios_version"`
	}
	if err := json.Unmarshal([]byte(out), &ins); code != 0 || err != nil || len(ins) != 1 || ins[0].Driver != "535.86.09" || ins[0].VBIOS != "96.00.5E.00.01" {
		t.Errorf("hex report: exit %d, %v\n%.400s", code, err, out)
	}
	if code, out := runInspectCmd(t, "--nonce", strings.Repeat("00", 32), "--cert-chain", td+"sdk-hopperCertChain.txt", td+"sdk-hopperAttestationReport.txt"); code != 1 || !strings.Contains(out, "✗ GPU nonce binding") {
		t.Errorf("wrong nonce: exit %d\n%.400s", code, out)
	}
}

// TestMeasureGPUAndInspectRIM: measure gpu verifies RIMs and prints their
// golden blocks; inspect --rim compares a GPU with them.
func TestMeasureGPUAndInspectRIM(t *testing.T) {
	const rims, td = "../../policy/gpu/rim/testdata/", "../../policy/gpu/spdm/testdata/"
	var out bytes.Buffer
	old := measureStdout
	measureStdout = &out
	code := run([]string{"measure", "gpu", "--at", "2025-06-01T00:00:00Z", rims + "1010_0200_882_96005E0001_PROD.swidtag", rims + "NV_GPU_DRIVER_GH100_550.144.03.xml"})
	measureStdout = old
	if code != 0 || !strings.Contains(out.String(), "GH100 96.00.5E.00.01") || !strings.Contains(out.String(), "block 2 c3f65ef79a19c029") || !strings.Contains(out.String(), "550.144.03") {
		t.Errorf("measure gpu: exit %d\n%.500s", code, out.String())
	}
	if code := run([]string{"measure", "gpu", rims + "incorrect_signature_driver_rim.xml"}); code != 1 {
		t.Errorf("measure gpu of a broken RIM: exit %d, want 1", code)
	}
	// The sample GPU's board's VBIOS RIM alone leaves its driver's blocks
	// unchecked (NVIDIA published no RIM of its driver, 535.86.09).
	code, got := runInspectCmd(t, "--at", "2025-06-01T00:00:00Z", "--rim", rims+"1010_0200_882_96005E0001_PROD.swidtag", "--cert-chain", td+"sdk-hopperCertChain.txt", td+"sdk-hopperAttestationReport.txt")
	if code != 1 || !strings.Contains(got, "✗ GPU measurements: a RIM of the GPU is missing: no driver RIM for GH100_535.86.09") {
		t.Errorf("inspect --rim (its VBIOS RIM only): exit %d\n%.600s", code, got)
	}
	code, got = runInspectCmd(t, "--at", "2025-06-01T00:00:00Z", "--rim", rims+"1010_0205_862_96005E0002_PROD.swidtag", "--cert-chain", td+"sdk-hopperCertChain.txt", td+"sdk-hopperAttestationReport.txt")
	if code != 1 || !strings.Contains(got, "✗ GPU measurements: a RIM is not this GPU's") {
		t.Errorf("inspect --rim (another board): exit %d\n%.600s", code, got)
	}
}
