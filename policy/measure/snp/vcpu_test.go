package snp

import (
	"strings"
	"testing"
)

func TestVCPUSignature(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	milan := VCPUTypes["EPYC-Milan"]
	for _, tc := range []struct {
		name string
		v    VCPU
		vmm  VMMType
		want uint32
		err  string
	}{
		{"type", VCPU{Type: "EPYC-Milan"}, QEMU, milan, ""},
		{"family/model/stepping", VCPU{Family: n(25), Model: n(1), Stepping: n(1)}, QEMU, milan, ""},
		{"fms wins over type", VCPU{Family: n(25), Model: n(1), Stepping: n(1), Type: "EPYC-v4"}, QEMU, milan, ""},
		{"signature", VCPU{Sig: n(int64(milan))}, QEMU, milan, ""},
		{"signature wins over type", VCPU{Sig: n(0xa00f11), Type: "EPYC-v4"}, QEMU, 0xa00f11, ""},
		{"half a family", VCPU{Family: n(25), Model: n(1)}, QEMU, 0, "go together"},
		{"signature too big", VCPU{Sig: n(1 << 32)}, QEMU, 0, "out of range"},
		{"negative signature", VCPU{Sig: n(-1)}, QEMU, 0, "out of range"},
		{"unknown type", VCPU{Type: "EPYC-Nope"}, QEMU, 0, "unknown vCPU type"},
		{"nothing for QEMU", VCPU{}, QEMU, 0, "needed for VMM type QEMU"},
		{"nothing for EC2", VCPU{}, EC2, 0, ""},
		{"family out of range", VCPU{Family: n(300), Model: n(0), Stepping: n(0)}, QEMU, 0, "out of range"},
	} {
		got, err := tc.v.Signature(tc.vmm)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: Signature = %#x, %v; want an error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: Signature = %#x, %v; want %#x", tc.name, got, err, tc.want)
		}
	}
}
