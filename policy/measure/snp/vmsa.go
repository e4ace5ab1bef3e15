package snp

import "encoding/binary"

// Offsets in the VMSA (the SEV-ES save area, AMD64 Architecture
// Programmer's Manual vol. 2, table B-4 "VMSA Layout, State Save Area for
// SEV-ES"; Linux's struct sev_es_save_area).
const (
	vmsaES           = 0x000 // segment registers: selector u16, attrib u16, limit u32, base u64
	vmsaCS           = 0x010
	vmsaSS           = 0x020
	vmsaDS           = 0x030
	vmsaFS           = 0x040
	vmsaGS           = 0x050
	vmsaGDTR         = 0x060
	vmsaLDTR         = 0x070
	vmsaIDTR         = 0x080
	vmsaTR           = 0x090
	vmsaEFER         = 0x0d0
	vmsaCR4          = 0x148
	vmsaCR0          = 0x158
	vmsaDR7          = 0x160
	vmsaDR6          = 0x168
	vmsaRFLAGS       = 0x170
	vmsaRIP          = 0x178
	vmsaGPAT         = 0x268
	vmsaRDX          = 0x310
	vmsaSEVFeatures  = 0x3b0
	vmsaXCR0         = 0x3e8
	vmsaMXCSR        = 0x408
	vmsaX87FCW       = 0x410
	defaultGuestPAT  = 0x0007040600070406 // PAT MSR reset value (APM vol. 2, A.3)
	gceGuestPAT      = 0x00070106         // GCE's hypervisor overwrites the default
	ec2GCEInitialRDX = 0x600
)

// vmsaPage returns the initial VMSA of a vCPU starting at eip (CS base from
// its upper 16 bits, RIP from its lower 16), with the register values of
// sev-snp-measure's VMSA.build_save_area for vmm.
func vmsaPage(eip, vcpuSig uint32, sevFeatures uint64, vmm VMMType) *[pageSize]byte {
	csFlags, ssFlags, trFlags := uint16(0x9b), uint16(0x93), uint16(0x8b)
	rdx := uint64(vcpuSig)
	mxcsr, fcw := uint32(0x1f80), uint16(0x37f)
	gPAT := uint64(defaultGuestPAT)
	switch vmm {
	case EC2:
		if eip == resetEIP {
			csFlags = 0x9a
		}
		ssFlags, trFlags = 0x92, 0x83
		rdx, mxcsr, fcw = ec2GCEInitialRDX, 0, 0
	case GCE:
		gPAT = gceGuestPAT
		rdx, mxcsr, fcw = ec2GCEInitialRDX, 0, 0
	}

	var p [pageSize]byte
	seg := func(off int, selector, attrib uint16, limit uint32, base uint64) {
		binary.LittleEndian.PutUint16(p[off:], selector)
		binary.LittleEndian.PutUint16(p[off+2:], attrib)
		binary.LittleEndian.PutUint32(p[off+4:], limit)
		binary.LittleEndian.PutUint64(p[off+8:], base)
	}
	u64 := func(off int, v uint64) { binary.LittleEndian.PutUint64(p[off:], v) }

	seg(vmsaES, 0, 0x93, 0xffff, 0)
	seg(vmsaCS, 0xf000, csFlags, 0xffff, uint64(eip&0xffff0000))
	seg(vmsaSS, 0, ssFlags, 0xffff, 0)
	seg(vmsaDS, 0, 0x93, 0xffff, 0)
	seg(vmsaFS, 0, 0x93, 0xffff, 0)
	seg(vmsaGS, 0, 0x93, 0xffff, 0)
	seg(vmsaGDTR, 0, 0, 0xffff, 0)
	seg(vmsaLDTR, 0, 0x82, 0xffff, 0)
	seg(vmsaIDTR, 0, 0, 0xffff, 0)
	seg(vmsaTR, 0, trFlags, 0xffff, 0)
	u64(vmsaEFER, 0x1000) // KVM sets EFER.SVME
	u64(vmsaCR4, 0x40)    // KVM sets CR4.MCE
	u64(vmsaCR0, 0x10)
	u64(vmsaDR7, 0x400)
	u64(vmsaDR6, 0xffff0ff0)
	u64(vmsaRFLAGS, 0x2)
	u64(vmsaRIP, uint64(eip&0xffff))
	u64(vmsaGPAT, gPAT)
	u64(vmsaRDX, rdx)
	u64(vmsaSEVFeatures, sevFeatures)
	u64(vmsaXCR0, 0x1)
	binary.LittleEndian.PutUint32(p[vmsaMXCSR:], mxcsr)
	binary.LittleEndian.PutUint16(p[vmsaX87FCW:], fcw)
	return &p
}
