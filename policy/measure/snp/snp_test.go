package snp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

// Published vectors: sev-snp-measure v0.0.13, tests/test_guest.py (see
// testdata/README.md). "kernel = /dev/null" means direct boot with an empty
// kernel and initrd.
const publishedOVMFHash = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"

type vector struct {
	name      string
	ovmf      string // file in testdata, or an absolute path
	vcpus     int
	sig       uint32
	vmm       VMMType
	features  uint64
	directNil bool // no kernel: no direct boot
	kernel    string
	initrd    string
	cmdline   string
	ovmfHash  string
	want      string
}

func sig(t string) uint32 { return VCPUTypes[t] }

var publishedVectors = []vector{
	{name: "test_snp_ovmf_hash_gen_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21, ovmfHash: publishedOVMFHash,
		want: "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"},
	{name: "test_snp_ovmf_hash_gen_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1, ovmfHash: publishedOVMFHash,
		want: "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5"},
	{name: "test_snp_ovmf_hash_full_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21, cmdline: "console=ttyS0 loglevel=7", ovmfHash: publishedOVMFHash,
		want: "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"},
	{name: "test_snp_ovmf_hash_full_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1, cmdline: "console=ttyS0 loglevel=7", ovmfHash: publishedOVMFHash,
		want: "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"},
	{name: "test_snp_ec2_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), vmm: EC2, features: 0x21,
		want: "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0d67fb"},
	{name: "test_snp_ec2_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), vmm: EC2, features: 0x1,
		want: "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056"},
	{name: "test_snp_gce_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, vmm: GCE, features: 0x1,
		want: "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e"},
	{name: "test_snp_gce_with_multiple_vcpus_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 4, vmm: GCE, features: 0x1,
		want: "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d"},
	{name: "test_snp_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21, cmdline: "console=ttyS0 loglevel=7",
		want: "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"},
	{name: "test_snp_guest_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1, cmdline: "console=ttyS0 loglevel=7",
		want: "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"},
	{name: "test_snp_without_kernel_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21, directNil: true,
		want: "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"},
	{name: "test_snp_without_kernel_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1, directNil: true,
		want: "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d"},
	{name: "test_snp_with_multiple_vcpus_default", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 4, sig: sig("EPYC-v4"), features: 0x21,
		want: "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942"},
	{name: "test_snp_with_multiple_vcpus_feature_snp_only", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 4, sig: sig("EPYC-v4"), features: 0x1,
		want: "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5"},
	{name: "test_snp_with_ovmfx64_without_default", ovmf: "ovmf_OvmfX64_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21, directNil: true,
		want: "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385"},
	{name: "test_snp_with_ovmfx64_without_kernel_feature_snp_only", ovmf: "ovmf_OvmfX64_suffix.bin", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1, directNil: true,
		want: "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993afdb6a30b4005"},
}

// Vectors computed by running sev-snp-measure v0.0.13 (commit 8f2b337) on
// the test kernel and initrd in testdata; the commands are in
// testdata/README.md.
var referenceDirectBootVectors = []vector{
	{name: "ref_milan_2_initrd_cmdline", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 2, sig: sig("EPYC-Milan"), features: 0x1,
		kernel: "kernel.bin", initrd: "initrd.bin", cmdline: "console=ttyS0 root=/dev/vda ro",
		want: "85984792d6ee9aa179599a058772178b8ee8c083fd5b8283ab66d2033fc422e21b6525d4c9b41d2900e5fd264aed04b7"},
	{name: "ref_milan_2_no_initrd", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 2, sig: sig("EPYC-Milan"), features: 0x1,
		kernel: "kernel.bin", cmdline: "console=ttyS0",
		want: "3428163ebb007b6ffe578bab9fa2f14bbe57fefc80b22c7946797fb50172f085947db7f40fabc561f73d7e513cefe89e"},
	{name: "ref_ec2_2", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 2, vmm: EC2, features: 0x1,
		kernel: "kernel.bin", initrd: "initrd.bin", cmdline: "console=ttyS0",
		want: "cd8d6c59160b6d2359df07d9ce25df670cba91b2ca2d52a1292ac760af7891168f9f401ba8ff7199d96476bf0f3e3780"},
	{name: "ref_gce_2_no_cmdline", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 2, vmm: GCE, features: 0x1,
		kernel: "kernel.bin", initrd: "initrd.bin",
		want: "1df20790d07d50a4bf7b47e7ad6b4d1eb38da934073916d85aa246e24ea8ce0e58810b7b97daee0910563d481d58bbae"},
	{name: "ref_genoa_4_ovmf_hash", ovmf: "ovmf_AmdSev_suffix.bin", vcpus: 4, sig: sig("EPYC-Genoa"), features: 0x1,
		kernel: "kernel.bin", initrd: "initrd.bin", cmdline: "console=ttyS0", ovmfHash: publishedOVMFHash,
		want: "c5ec8544b266abb3d6eaf945d80f42e3bb81ed49abda490b31370df0184117f280aa7db73eb78db1407f2f7d128e4565"},
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	if !strings.HasPrefix(name, "/") {
		name = "testdata/" + name
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (v vector) run(t *testing.T, fwBytes []byte) {
	t.Helper()
	fw, err := ParseFirmware(fwBytes)
	if err != nil {
		t.Fatalf("ParseFirmware(%s): %v", v.ovmf, err)
	}
	cfg := Config{VCPUs: v.vcpus, VCPUSig: v.sig, VMM: v.vmm, GuestFeatures: v.features}
	if !v.directNil && (v.kernel != "" || v.ovmf == "ovmf_AmdSev_suffix.bin") {
		var kernel, initrd []byte
		if v.kernel != "" {
			kernel = readTestdata(t, v.kernel)
		}
		var ir *bytes.Reader
		if v.initrd != "" {
			initrd = readTestdata(t, v.initrd)
			ir = bytes.NewReader(initrd)
		}
		var k *KernelHashes
		if ir != nil {
			k, err = HashKernel(bytes.NewReader(kernel), ir, v.cmdline)
		} else {
			k, err = HashKernel(bytes.NewReader(kernel), nil, v.cmdline)
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kernel = k
	}
	if v.ovmfHash != "" {
		cfg.OVMFHash, _ = hex.DecodeString(v.ovmfHash)
	}
	got, err := LaunchDigest(fw, cfg)
	if err != nil {
		t.Fatalf("LaunchDigest: %v", err)
	}
	if h := hex.EncodeToString(got[:]); h != v.want {
		t.Errorf("LaunchDigest(%s, %+v) = %s, want %s", v.ovmf, cfg, h, v.want)
	}
}

func TestPublishedVectors(t *testing.T) {
	for _, v := range publishedVectors {
		t.Run(v.name, func(t *testing.T) { v.run(t, readTestdata(t, v.ovmf)) })
	}
}

func TestReferenceDirectBoot(t *testing.T) {
	for _, v := range referenceDirectBootVectors {
		t.Run(v.name, func(t *testing.T) { v.run(t, readTestdata(t, v.ovmf)) })
	}
}

func TestPublishedOVMFHash(t *testing.T) {
	got, err := OVMFHash(readTestdata(t, "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got[:]); h != publishedOVMFHash {
		t.Errorf("OVMFHash(ovmf_AmdSev_suffix.bin) = %s, want %s", h, publishedOVMFHash)
	}
}

// debianOVMF describes the Debian ovmf package's firmware the reference
// vectors below were computed for.
const (
	debianOVMFPath    = "/usr/share/ovmf/OVMF.fd"
	debianOVMFSHA256  = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773" // ovmf 2022.11-6+deb12u2
	debianCode4MPath  = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	debianCode4MSHA25 = "b157d97b1f69729514feb7f201d2cbe4957f23ab77920e361fe9f822ba49ca4c"
	// The build the vectors were computed for.
	debianOVMFPackage = "ovmf 2022.11-6+deb12u2"
)

// Computed by sev-snp-measure v0.0.13 on Debian's OVMF.fd; commands in
// testdata/README.md.
var debianVectors = []vector{
	{name: "epyc-v4_1", vcpus: 1, sig: sig("EPYC-v4"), features: 0x1,
		want: "11570979c77a0adb515761a702527c8b9e11554e730552621d950988613a3a75c6ff1703f540bd22a9beede8fe7a97e3"},
	{name: "epyc-v4_1_0x21", vcpus: 1, sig: sig("EPYC-v4"), features: 0x21,
		want: "c32245cb607f82791b60757bf0b344d9030e5b5a107342e69c09e668ff28aca5af9ca1dc41ce74f5a4e81aeaeb5e7b54"},
	{name: "epyc-rome_2", vcpus: 2, sig: sig("EPYC-Rome"), features: 0x1,
		want: "5f2cfa5dab714b3b6290c2caf59e725e1bcb7a24cabd25447535e58665b0e32722ea275c9113d1830561cb186e0e04da"},
	{name: "epyc-milan_4", vcpus: 4, sig: sig("EPYC-Milan"), features: 0x1,
		want: "e9c10ab98f8086bf4a4993dcdc1f768b1128bcb02301d1791f1d3274329e790db2d12a301d66d99a462a13b5d87e2840"},
	{name: "epyc-genoa_8_0x21", vcpus: 8, sig: sig("EPYC-Genoa"), features: 0x21,
		want: "cad9212c78b1a76d0cdcaee0b582c0ef73d721d61a856ac4de9bce739dbb6232ff3d082646a2a7cafbc79ad6ab1dd292"},
	{name: "epyc-turin_64", vcpus: 64, sig: sig("EPYC-Turin"), features: 0x1,
		want: "ded1ef29cc4dcb1fed83742ea2f2c97eace9a36c8e48b984b2c1ff935a1e3ebc7364704e2defb0c832938952dcadd336"},
	{name: "sig_0xa00f11_2", vcpus: 2, sig: 0xa00f11, features: 0x1,
		want: "a175292a4a09fcfb760c5bd80c93ed667dbaafce6247d0f21fc06638658b3ebf2804d3019e2abed05cb6a9efe0a7464e"},
	{name: "family25_model17_stepping1_3", vcpus: 3, sig: mustSig(25, 17, 1), features: 0x1,
		want: "9728d7cd24ef4f84b20fb302e19c584395fed4cbc937ad5ff6ae6fd1eaa2157e0349609cb1f8392164a462c184f71db2"},
	{name: "ec2_4", vcpus: 4, sig: sig("EPYC-v4"), vmm: EC2, features: 0x1,
		want: "247ad4ffd2aa671f172a61d8fc73337c2b3489dae4e53a8d9dd2d96d3b71b35ab008b3581c496f99810fe72bfd84d5ac"},
	{name: "gce_4", vcpus: 4, vmm: GCE, features: 0x1,
		want: "dc9e0c41c8b0ca2000043e749d6fd77737d0ef146b3c9eaaaf693f50dd5ce57fbcb379cb4af9918c94d265a7e0bd8317"},
	// Printed in base64 by the reference: a6PLGEp4dUjhNGtJqdGnfdGmp6DkUwt+SHnwbcA8v8gn7F8QyaN76dJgL6Y6MTAt
	{name: "epyc-milan_16", vcpus: 16, sig: sig("EPYC-Milan"), features: 0x1,
		want: "6ba3cb184a787548e1346b49a9d1a77dd1a6a7a0e4530b7e4879f06dc03cbfc827ec5f10c9a37be9d2602fa63a31302d"},
}

func TestReferenceDebianOVMF(t *testing.T) {
	fw := testenv.ReadDebianFile(t, debianOVMFPackage, debianOVMFPath, debianOVMFSHA256)
	t.Run("ovmf-hash", func(t *testing.T) {
		const want = "ba2c811512ef868474f239a21f7d7057d65a20de87a003c4f116e4fb1573183bfbcd75c3e99b2f558575a5d0094f73c6"
		got, err := OVMFHash(fw)
		if err != nil {
			t.Fatal(err)
		}
		if h := hex.EncodeToString(got[:]); h != want {
			t.Errorf("OVMFHash(OVMF.fd) = %s, want %s", h, want)
		}
	})
	for _, v := range debianVectors {
		v.ovmf = debianOVMFPath
		v.directNil = true
		t.Run(v.name, func(t *testing.T) { v.run(t, fw) })
	}
	t.Run("sections", func(t *testing.T) {
		// As sev-snp-measure's OVMF class lists them for this file
		// (testdata/README.md).
		f, err := ParseFirmware(fw)
		if err != nil {
			t.Fatal(err)
		}
		want := []Section{
			{0x800000, 0x9000, SectionSecMem},
			{0x80a000, 0x3000, SectionSecMem},
			{0x80d000, 0x1000, SectionSecrets},
			{0x80e000, 0x1000, SectionCPUID},
			{0x80f000, 0x11000, SectionSecMem},
		}
		got := f.Sections()
		if len(got) != len(want) {
			t.Fatalf("Sections() = %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Sections()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("kernel_without_hashes_section", func(t *testing.T) {
		f, err := ParseFirmware(fw)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := HashKernel(strings.NewReader("k"), nil, "")
		_, err = LaunchDigest(f, Config{VCPUs: 1, VCPUSig: sig("EPYC-v4"), GuestFeatures: 1, Kernel: k})
		if !errors.Is(err, ErrNoKernelHashes) {
			t.Errorf("LaunchDigest(OVMF.fd, kernel) error = %v, want ErrNoKernelHashes", err)
		}
	})
}

func TestReferenceDebianOVMFCode4M(t *testing.T) {
	fw := testenv.ReadDebianFile(t, debianOVMFPackage, debianCode4MPath, debianCode4MSHA25)
	v := vector{name: "epyc-genoa_2", ovmf: debianCode4MPath, vcpus: 2, sig: sig("EPYC-Genoa"), features: 0x1, directNil: true,
		want: "f85ad0ee5a0ed682c2a3b30efddb8e7024cf76cca8bc54cafc9506515b6c02bd610628bb959e2c27d25d5ab89c56a60c"}
	v.run(t, fw)
}

func TestCPUSig(t *testing.T) {
	// sev-snp-measure tests/test_vcpu_types.py, and AMD's encoding.
	for _, tc := range []struct {
		family, model, stepping int
		want                    uint32
	}{
		{14, 1, 2, 0x0e12},
		{23, 1, 2, 0x800f12},
		{25, 1, 1, 0xa00f11},
		{25, 17, 0, 0xa10f10},
		{26, 0, 0, 0xb00f00},
		{0, 0, 0, 0},
	} {
		got, err := CPUSig(tc.family, tc.model, tc.stepping)
		if err != nil || got != tc.want {
			t.Errorf("CPUSig(%d, %d, %d) = %#x, %v, want %#x", tc.family, tc.model, tc.stepping, got, err, tc.want)
		}
	}
	if _, err := CPUSig(23, 256, 0); err == nil {
		t.Errorf("CPUSig(23, 256, 0) succeeded, want an error")
	}
	if VCPUTypes["EPYC-Milan"] != 0xa00f11 {
		t.Errorf("VCPUTypes[EPYC-Milan] = %#x, want 0xa00f11", VCPUTypes["EPYC-Milan"])
	}
	if n := len(VCPUTypeNames()); n != 16 {
		t.Errorf("len(VCPUTypeNames()) = %d, want the 16 of sev-snp-measure", n)
	}
}

func TestErrors(t *testing.T) {
	amd, err := ParseFirmware(readTestdata(t, "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	x64, err := ParseFirmware(readTestdata(t, "ovmf_OvmfX64_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !amd.SupportsDirectBoot() || x64.SupportsDirectBoot() {
		t.Errorf("SupportsDirectBoot: AmdSev %v, OvmfX64 %v; want true, false", amd.SupportsDirectBoot(), x64.SupportsDirectBoot())
	}
	k, _ := HashKernel(strings.NewReader(""), nil, "")
	for _, tc := range []struct {
		name string
		fw   *Firmware
		cfg  Config
		want string
	}{
		{"no vcpus", amd, Config{GuestFeatures: 1}, "vCPU count 0"},
		{"too many vcpus", amd, Config{VCPUs: MaxVCPUs + 1, GuestFeatures: 1}, "out of range"},
		{"no SNPActive", amd, Config{VCPUs: 1, GuestFeatures: 0x20}, "SNPActive"},
		{"kernel without section", x64, Config{VCPUs: 1, GuestFeatures: 1, Kernel: k}, "SNP_KERNEL_HASHES"},
		{"short OVMF hash", amd, Config{VCPUs: 1, GuestFeatures: 1, OVMFHash: []byte{1}}, "OVMF hash has 1 bytes"},
		{"bad VMM", amd, Config{VCPUs: 1, GuestFeatures: 1, VMM: 9}, "unknown VMM"},
	} {
		if _, err := LaunchDigest(tc.fw, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LaunchDigest error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		fw   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"not pages", make([]byte, 4097), "whole number"},
		{"no footer", make([]byte, 4096), "SEV-ES AP reset block"},
	} {
		if _, err := ParseFirmware(tc.fw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFirmware(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	for _, s := range []string{"QEMU", "qemu", "ec2", "EC2", "gce"} {
		if _, err := ParseVMMType(s); err != nil {
			t.Errorf("ParseVMMType(%q): %v", s, err)
		}
	}
	if _, err := ParseVMMType("azure"); err == nil {
		t.Errorf("ParseVMMType(azure) succeeded")
	}
}

// TestSuffixLayout checks what ParseFirmware reads from the AmdSev suffix
// against edk2-stable202405's OvmfPkg/AmdSev layout (AmdSevX64.fdf and
// ResetVector/X64/OvmfSevMetadata.asm): the AP reset vector, the hashes table
// in the kernel-hashes page and the section order.
func TestSuffixLayout(t *testing.T) {
	fw, err := ParseFirmware(readTestdata(t, "ovmf_AmdSev_suffix.bin"))
	if err != nil {
		t.Fatal(err)
	}
	gpa, ok := fw.HashTableGPA()
	if !ok {
		t.Fatal("no SEV hash table in the AmdSev suffix")
	}
	var kh Section
	for _, s := range fw.Sections() {
		if s.Type == SectionKernelHashes {
			kh = s
		}
	}
	if gpa < kh.GPA || gpa >= kh.GPA+kh.Size {
		t.Errorf("hash table GPA %#x outside the SNP_KERNEL_HASHES section %#x+%#x", gpa, kh.GPA, kh.Size)
	}
	if fw.APResetEIP()&0xffff0000 == 0 {
		t.Errorf("AP reset EIP %#x has no CS base", fw.APResetEIP())
	}
	var types []string
	for _, s := range fw.Sections() {
		types = append(types, s.Type.String())
	}
	t.Logf("sections: %v, AP EIP %#x, hash table %#x", types, fw.APResetEIP(), gpa)
}

func TestHashTable(t *testing.T) {
	// The layout written out from QEMU's SevHashTable/PaddedSevHashTable:
	// 168 bytes padded to 176.
	k := &KernelHashes{}
	for i := range k.Kernel {
		k.Kernel[i], k.Initrd[i], k.Cmdline[i] = 0xaa, 0xbb, 0xcc
	}
	tab := k.Table()
	if len(tab) != 176 {
		t.Fatalf("len(Table()) = %d, want 176", len(tab))
	}
	want := "06d63894224fc94cb479a793d411fd21" + "a800" +
		"d82dd097-20bd-944c-aa78-e7714d36ab2a" + "3200" + strings.Repeat("cc", 32) +
		"31f7ba44-2f3a-d74b-9af1-41e29169781d" + "3200" + strings.Repeat("bb", 32) +
		"3794e74d-d2ab-7f42-b835-d5b172d2045b" + "3200" + strings.Repeat("aa", 32) +
		strings.Repeat("00", 8)
	want = strings.ReplaceAll(want, "-", "")
	if got := hex.EncodeToString(tab); got != want {
		t.Errorf("Table() =\n%s\nwant\n%s", got, want)
	}
	_ = ovmf.FooterGUID
}
