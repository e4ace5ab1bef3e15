package snp

import (
	"fmt"
	"sort"
)

// CPUSig returns the CPUID Fn0000_0001_EAX signature of a family, model and
// stepping, as AMD's CPUID specification (publication 25481) encodes it: a
// family above 0xf is 0xf plus the extended family.
func CPUSig(family, model, stepping int) (uint32, error) {
	if family < 0 || family > 0xf+0xff || model < 0 || model > 0xff || stepping < 0 || stepping > 0xf {
		return 0, fmt.Errorf("vCPU family %d, model %d, stepping %d out of range (family 0-%d, model 0-255, stepping 0-15)", family, model, stepping, 0xf+0xff)
	}
	famLow, famHigh := family, 0
	if family > 0xf {
		famLow, famHigh = 0xf, family-0xf
	}
	return uint32(famHigh)<<20 | uint32(model>>4&0xf)<<16 | uint32(famLow)<<8 | uint32(model&0xf)<<4 | uint32(stepping&0xf), nil
}

func mustSig(family, model, stepping int) uint32 {
	s, err := CPUSig(family, model, stepping)
	if err != nil {
		panic(err)
	}
	return s
}

// VCPUTypes maps QEMU's AMD EPYC CPU model names (those of sev-snp-measure's
// --vcpu-type) to their CPUID signatures.
var VCPUTypes = map[string]uint32{
	"EPYC":          mustSig(23, 1, 2),
	"EPYC-v1":       mustSig(23, 1, 2),
	"EPYC-v2":       mustSig(23, 1, 2),
	"EPYC-IBPB":     mustSig(23, 1, 2),
	"EPYC-v3":       mustSig(23, 1, 2),
	"EPYC-v4":       mustSig(23, 1, 2),
	"EPYC-Rome":     mustSig(23, 49, 0),
	"EPYC-Rome-v1":  mustSig(23, 49, 0),
	"EPYC-Rome-v2":  mustSig(23, 49, 0),
	"EPYC-Rome-v3":  mustSig(23, 49, 0),
	"EPYC-Milan":    mustSig(25, 1, 1),
	"EPYC-Milan-v1": mustSig(25, 1, 1),
	"EPYC-Milan-v2": mustSig(25, 1, 1),
	"EPYC-Genoa":    mustSig(25, 17, 0),
	"EPYC-Genoa-v1": mustSig(25, 17, 0),
	"EPYC-Turin":    mustSig(26, 0, 0),
}

// VCPUTypeNames returns the keys of VCPUTypes, sorted.
func VCPUTypeNames() []string {
	names := make([]string, 0, len(VCPUTypes))
	for n := range VCPUTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VCPU names the guest vCPU as sev-snp-measure takes it: by family, model
// and stepping, by CPUID signature, or by QEMU type name. Nil fields are
// unset.
type VCPU struct {
	Family, Model, Stepping *int64
	Sig                     *int64
	Type                    string
}

// Signature returns the vCPU's CPUID signature, preferring as
// sev-snp-measure does family/model/stepping, then the signature, then the
// type. With none of them it is 0 for the VMMs that ignore it (EC2, GCE)
// and an error for QEMU.
func (v VCPU) Signature(vmm VMMType) (uint32, error) {
	switch {
	case v.Family != nil || v.Model != nil || v.Stepping != nil:
		if v.Family == nil || v.Model == nil || v.Stepping == nil {
			return 0, fmt.Errorf("vCPU family, model and stepping go together")
		}
		return CPUSig(int(*v.Family), int(*v.Model), int(*v.Stepping))
	case v.Sig != nil:
		if *v.Sig < 0 || *v.Sig > 0xffffffff {
			return 0, fmt.Errorf("vCPU signature %d out of range", *v.Sig)
		}
		return uint32(*v.Sig), nil
	case v.Type != "":
		return ParseVCPUType(v.Type)
	case vmm == QEMU:
		return 0, fmt.Errorf("no vCPU type, signature or family/model/stepping (needed for VMM type QEMU)")
	}
	return 0, nil
}
