package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/policy/measure/tdx"
)

// runMeasure runs an attestlog command line and returns its exit status and
// what it printed on measureStdout.
func runMeasure(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	old := measureStdout
	measureStdout = &out
	defer func() { measureStdout = old }()
	return run(args), out.String()
}

// The expected digests are sev-snp-measure's and td-shim's outputs recorded in
// policy/measure/{snp,tdx}/testdata/README.md.
func TestMeasureCommands(t *testing.T) {
	const snpTD = "../../policy/measure/snp/testdata/"
	const tdxTD = "../../policy/measure/tdx/testdata/"
	const gcpTD = "../../policy/attest/testdata/cloud/gcp-tdx/"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_AmdSev_suffix.bin", "--vcpus", "4", "--vcpu-type", "EPYC-Genoa",
			"--kernel", snpTD + "kernel.bin", "--initrd", snpTD + "initrd.bin", "--append", "console=ttyS0",
			"--snp-ovmf-hash", "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"},
			0, "c5ec8544b266abb3d6eaf945d80f42e3bb81ed49abda490b31370df0184117f280aa7db73eb78db1407f2f7d128e4565\n"},
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_AmdSev_suffix.bin", "--vcpus", "2", "--vmm-type", "gce",
			"--kernel", snpTD + "kernel.bin", "--initrd", snpTD + "initrd.bin"},
			0, "1df20790d07d50a4bf7b47e7ad6b4d1eb38da934073916d85aa246e24ea8ce0e58810b7b97daee0910563d481d58bbae\n"},
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_OvmfX64_suffix.bin", "--vcpus", "1", "--vcpu-family", "23", "--vcpu-model", "1", "--vcpu-stepping", "2",
			"--guest-features", "0x21"},
			0, "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385\n"},
		{[]string{"measure", "snp-ovmf-hash", "--ovmf", snpTD + "ovmf_AmdSev_suffix.bin"},
			0, "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74\n"},
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_OvmfX64_suffix.bin", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel", snpTD + "kernel.bin"}, 1, ""},
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_OvmfX64_suffix.bin", "--vcpus", "1"}, 2, ""},
		{[]string{"measure", "snp", "--ovmf", snpTD + "ovmf_OvmfX64_suffix.bin", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--initrd", "x"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd"},
			0, "mrtd 0872a724616aa6e8357b953e7d1ab70f75f183e2ff7e1f4d63fc3e3cd05f37681449f791f1b4aef8d4b87544bd4468b7\n"},
		{[]string{"measure", "tdx", "--firmware", snpTD + "ovmf_AmdSev_suffix.bin"}, 1, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", "no-such-file"}, 1, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", tdxTD + "tdvf_synthetic.fd"}, 1, ""}, // not a bzImage
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--initrd", "x", "--memory", "4G"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--append", "quiet"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", "k", "--initrd", "i"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", "k", "--memory", "4X"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", "k", "--both-orders"}, 2, ""},
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--acpi-tables", "dir", "--memory", "4G"}, 1, ""}, // RTMR0 not implemented
		{[]string{"measure", "tdx-replay", "--event-log", tdxTD + "ccel_cos113_tdx.bin", "--rtmrs",
			"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6,,4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"},
			0, "rtmr1 f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1 not compared\n"},
		{[]string{"measure", "tdx-replay", "--event-log", tdxTD + "ccel_cos113_tdx.bin", "--quote", tdxTD + "quote_spr_e4.dat"}, 1, "MISMATCH"},
		// Google Cloud's TD (the real quote beside its log) and a quote v5.
		{[]string{"measure", "tdx-replay", "--event-log", gcpTD + "ccel_data.trimmed", "--quote", gcpTD + "cos-113-tdx-quote.dat"},
			0, "rtmr2 4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1 matches\nrtmr3 000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000 matches\nnote: the replayed rtmr0-rtmr2 are this TD's boot"},
		{[]string{"measure", "tdx-replay", "--event-log", gcpTD + "ccel_data.trimmed", "--quote", gcpTD + "cos-113-tdx-quote.dat"}, 0, "never rtmr0 (host and firmware configuration) nor a shim/GRUB boot such as Google Cloud's"},
		{[]string{"measure", "tdx-replay", "--event-log", gcpTD + "ccel_data.trimmed", "--quote", "../../policy/attest/testdata/cloud/tdx-v5/quote_v5_sample.dat"}, 1, "MISMATCH"},
	} {
		code, out := runMeasure(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("attestlog %s = exit %d, output %q; want exit %d, output containing %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
}

// measure tdx with boot inputs prints what the tdx package computes for
// them (whose expected values are checked in policy/measure/tdx), after the
// unchanged mrtd line, and says what RTMR0 needs.
func TestMeasureTDXRTMRs(t *testing.T) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		testenv.Missing(t, "a Debian kernel in /boot (Debian package linux-image-amd64)", os.ErrNotExist)
	}
	const fw = "../../policy/measure/tdx/testdata/tdvf_synthetic.fd"
	kernel, err := os.ReadFile(kernels[0])
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(initrd, []byte("an initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	events, err := tdx.DirectBoot{Kernel: kernel, Initrd: []byte("an initrd"), Cmdline: "console=ttyS0", MemorySize: 3 << 30}.Events()
	if err != nil {
		t.Fatal(err)
	}
	want := tdx.FoldRTMRs(events)

	args := []string{"measure", "tdx", "--firmware", fw, "--kernel", kernels[0], "--initrd", initrd, "--memory", "3072", "--append", "console=ttyS0"}
	code, out := runMeasure(t, args...)
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 4 ||
		lines[0] != "mrtd 0872a724616aa6e8357b953e7d1ab70f75f183e2ff7e1f4d63fc3e3cd05f37681449f791f1b4aef8d4b87544bd4468b7" ||
		lines[1] != "rtmr1 "+hex.EncodeToString(want[1][:]) || lines[2] != "rtmr2 "+hex.EncodeToString(want[2][:]) ||
		!strings.Contains(out, "note: rtmr0 not computed:") {
		t.Errorf("attestlog %s = exit %d, output:\n%s\nwant mrtd, rtmr1 %x, rtmr2 %x and a note on RTMR0", strings.Join(args, " "), code, out, want[1], want[2])
	}

	code, out = runMeasure(t, append(args, "--json")...)
	var j struct {
		MRTD, RTMR0, RTMR1, RTMR2 string
		Notes                     []string
		Events                    []struct{ RTMR int }
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if j.RTMR0 != "" || j.RTMR1 != hex.EncodeToString(want[1][:]) || j.RTMR2 != hex.EncodeToString(want[2][:]) || len(j.Events) != len(events) || len(j.Notes) == 0 {
		t.Errorf("--json = %+v; want rtmr1 %x, rtmr2 %x, %d events, notes", j, want[1], want[2], len(events))
	}
}
