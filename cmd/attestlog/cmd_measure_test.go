package main

import (
	"bytes"
	"strings"
	"testing"
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
		{[]string{"measure", "tdx", "--firmware", tdxTD + "tdvf_synthetic.fd", "--kernel", "x"}, 1, ""},
		{[]string{"measure", "tdx-replay", "--event-log", tdxTD + "ccel_cos113_tdx.bin", "--rtmrs",
			"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6,,4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"},
			0, "rtmr1 f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1 not compared\n"},
		{[]string{"measure", "tdx-replay", "--event-log", tdxTD + "ccel_cos113_tdx.bin", "--quote", tdxTD + "quote_spr_e4.dat"}, 1, "MISMATCH"},
	} {
		code, out := runMeasure(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("attestlog %s = exit %d, output %q; want exit %d, output containing %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
}
