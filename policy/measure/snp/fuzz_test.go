package snp

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParseFirmware feeds malformed firmware tails (footer table, SEV
// metadata) to ParseFirmware and, when it accepts one, to LaunchDigest with
// and without direct boot: either may return an error, neither may panic,
// and the work stays bounded by the package's limits.
func FuzzParseFirmware(f *testing.F) {
	for _, name := range []string{"testdata/ovmf_AmdSev_suffix.bin", "testdata/ovmf_OvmfX64_suffix.bin"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(2))
	}
	k, _ := HashKernel(bytes.NewReader(nil), nil, "")
	f.Fuzz(func(t *testing.T, fw []byte, vcpus uint8) {
		if len(fw) > 3*pageSize {
			return
		}
		// Pad to whole pages at the front, keeping the tail where the
		// footer table is read.
		if r := len(fw) % pageSize; r != 0 {
			fw = append(make([]byte, pageSize-r), fw...)
		}
		p, err := ParseFirmware(fw)
		if err != nil {
			return
		}
		for _, vmm := range []VMMType{QEMU, EC2, GCE} {
			cfg := Config{VCPUs: int(vcpus%8) + 1, VCPUSig: VCPUTypes["EPYC-Milan"], VMM: vmm, GuestFeatures: DefaultGuestFeatures}
			LaunchDigest(p, cfg)
			cfg.Kernel = k
			LaunchDigest(p, cfg)
		}
	})
}
