// Package snp computes the AMD SEV-SNP launch digest (the MEASUREMENT field
// of an attestation report) of an OVMF guest from its build outputs: the
// firmware image, the vCPU count and type, the VMM, the guest features and,
// for measured direct boot, the kernel, initrd and command line.
//
// The algorithm is the one of virtee's sev-snp-measure ("snp" mode), which
// models what QEMU (and the EC2 and GCE hypervisors) ask the AMD-SP to measure
// through SNP_LAUNCH_UPDATE; see the SEV-SNP firmware ABI specification
// (AMD publication 56860), section "SNP_LAUNCH_UPDATE", table "PAGE_INFO":
//
//  1. every 4 KiB page of the firmware image, which ends at 4 GiB, as a
//     normal page;
//  2. the sections of the firmware's SEV metadata ("ASEV"), in order: zero
//     pages (SNP_SEC_MEM; unmeasured on GCE), the secrets page, the CPUID
//     page (last of all on EC2), the kernel-hashes page (SNP_KERNEL_HASHES:
//     the SEV hashes table of the kernel, initrd and command line at its
//     offset, or zero pages without direct boot) and zero pages (SVSM_CAA);
//  3. one VMSA page per vCPU: the bootstrap processor starts at the reset
//     vector 0xfffffff0, the others at the firmware's SEV-ES AP reset vector.
//
// Each measured page updates the digest as
//
//	LD = SHA-384(LD || PAGE_INFO)
//
// where PAGE_INFO holds the contents' SHA-384 (or zeros), the page type and
// the guest physical address.
package snp

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

// DigestSize is the size of a launch digest (SHA-384).
const DigestSize = sha512.Size384

// pageSize is the SEV-SNP page granularity of SNP_LAUNCH_UPDATE.
const pageSize = 4096

// DefaultGuestFeatures is sev-snp-measure's default --guest-features: only
// SNPActive (bit 0 of SEV_FEATURES).
const DefaultGuestFeatures = 0x1

// MaxVCPUs bounds the vCPU count accepted by LaunchDigest. SEV-SNP guests
// are limited well below this by the hardware's ASID and VMSA bookkeeping.
const MaxVCPUs = 1 << 16

// maxMetadataPages bounds the pages the SEV metadata may ask to be measured
// (256 MiB); real firmware declares a few dozen.
const maxMetadataPages = 1 << 16

// Page types of PAGE_INFO (SEV-SNP ABI, table "PAGE_TYPE Field Encodings").
const (
	pageTypeNormal     = 0x01
	pageTypeVMSA       = 0x02
	pageTypeZero       = 0x03
	pageTypeUnmeasured = 0x04
	pageTypeSecrets    = 0x05
	pageTypeCPUID      = 0x06
)

// vmsaGPA is the GPA recorded for VMSA pages: (u64)-1, page aligned, with
// the bits above 51 cleared.
const vmsaGPA = 0xFFFFFFFFF000

// A VMMType is the hypervisor that launches the guest; they differ in the
// initial register state of the VMSA and in how some metadata sections are
// measured.
type VMMType int

// VMM types, named as sev-snp-measure's --vmm-type values.
const (
	QEMU VMMType = iota + 1
	EC2
	GCE
)

// String returns the sev-snp-measure name of v.
func (v VMMType) String() string {
	switch v {
	case QEMU:
		return "QEMU"
	case EC2:
		return "ec2"
	case GCE:
		return "gce"
	}
	return fmt.Sprintf("VMMType(%d)", int(v))
}

// ParseVMMType parses a sev-snp-measure --vmm-type value ("QEMU", "ec2",
// "gce"; any case).
func ParseVMMType(s string) (VMMType, error) {
	for _, v := range []VMMType{QEMU, EC2, GCE} {
		if equalFold(s, v.String()) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown VMM type %q (want QEMU, ec2 or gce)", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Config is what, beyond the firmware, determines the launch digest.
type Config struct {
	// VCPUs is the number of vCPUs (one VMSA page each). Required, ≥ 1.
	VCPUs int
	// VCPUSig is the CPUID signature (CPUID Fn0000_0001_EAX) the VMM puts
	// in RDX of each VMSA: see CPUSig and VCPUTypes. Ignored on EC2 and GCE,
	// whose VMSAs hold a fixed 0x600.
	VCPUSig uint32
	// VMM is the hypervisor; zero means QEMU.
	VMM VMMType
	// GuestFeatures is the VMSA's SEV_FEATURES (sev-snp-measure's
	// --guest-features; its default is DefaultGuestFeatures). Bit 0
	// (SNPActive) must be set.
	GuestFeatures uint64
	// Kernel, when not nil, selects measured direct boot: the firmware's
	// SNP_KERNEL_HASHES page holds the SEV hashes table of these hashes.
	Kernel *KernelHashes
	// OVMFHash, when not nil, is the precomputed launch digest after the
	// firmware pages (see OVMFHash; sev-snp-measure's --snp-ovmf-hash): the
	// firmware's pages are then not hashed, only its footer table and
	// metadata are read. It must be DigestSize bytes.
	OVMFHash []byte
}

// ErrNoKernelHashes is returned when direct boot is asked for but the
// firmware's SEV metadata has no SNP_KERNEL_HASHES section (it is not an
// AmdSev build of OVMF).
var ErrNoKernelHashes = errors.New("a kernel was given but the firmware's SEV metadata has no SNP_KERNEL_HASHES section (direct boot needs an OvmfPkg/AmdSev build)")

// LaunchDigest returns the SEV-SNP launch digest of fw launched with cfg.
func LaunchDigest(fw *Firmware, cfg Config) ([DigestSize]byte, error) {
	var zero [DigestSize]byte
	vmm := cfg.VMM
	if vmm == 0 {
		vmm = QEMU
	}
	if vmm != QEMU && vmm != EC2 && vmm != GCE {
		return zero, fmt.Errorf("unknown VMM type %d", int(vmm))
	}
	if cfg.VCPUs < 1 || cfg.VCPUs > MaxVCPUs {
		return zero, fmt.Errorf("vCPU count %d out of range (1 to %d)", cfg.VCPUs, MaxVCPUs)
	}
	if cfg.GuestFeatures&1 == 0 {
		return zero, fmt.Errorf("guest features %#x lack SNPActive (bit 0), which every SEV-SNP VMSA has", cfg.GuestFeatures)
	}
	if cfg.VCPUs > 1 && fw.apResetEIP == 0 {
		return zero, fmt.Errorf("%d vCPUs need the SEV-ES AP reset vector, but the firmware's is 0", cfg.VCPUs)
	}
	if cfg.Kernel != nil && !fw.hasSection(SectionKernelHashes) {
		return zero, ErrNoKernelHashes
	}

	var g gctx
	if cfg.OVMFHash != nil {
		if len(cfg.OVMFHash) != DigestSize {
			return zero, fmt.Errorf("OVMF hash has %d bytes, want %d", len(cfg.OVMFHash), DigestSize)
		}
		copy(g.ld[:], cfg.OVMFHash)
	} else {
		g.normalPages(fw.GPA(), fw.data)
	}

	for _, s := range fw.sections {
		if err := g.section(fw, s, cfg.Kernel, vmm); err != nil {
			return zero, err
		}
	}
	if vmm == EC2 {
		// EC2 measures the CPUID page after all other metadata pages.
		for _, s := range fw.sections {
			if s.Type == SectionCPUID {
				g.update(pageTypeCPUID, uint64(s.GPA), nil)
			}
		}
	}

	bsp := vmsaPage(resetEIP, cfg.VCPUSig, cfg.GuestFeatures, vmm)
	bspHash := sha512.Sum384(bsp[:])
	g.update(pageTypeVMSA, vmsaGPA, &bspHash)
	if cfg.VCPUs > 1 {
		ap := vmsaPage(fw.apResetEIP, cfg.VCPUSig, cfg.GuestFeatures, vmm)
		apHash := sha512.Sum384(ap[:])
		for i := 1; i < cfg.VCPUs; i++ {
			g.update(pageTypeVMSA, vmsaGPA, &apHash)
		}
	}
	return g.ld, nil
}

// OVMFHash returns the launch digest after only the firmware's pages have
// been measured, as sev-snp-measure's "snp:ovmf-hash" mode prints it. Pass it
// as Config.OVMFHash to compute launch digests without the full image.
func OVMFHash(fw []byte) ([DigestSize]byte, error) {
	var zero [DigestSize]byte
	if err := checkImageSize(fw); err != nil {
		return zero, err
	}
	var g gctx
	g.normalPages(uint64(fourGiB-len(fw)), fw)
	return g.ld, nil
}

// section measures one SEV metadata section.
func (g *gctx) section(fw *Firmware, s Section, kernel *KernelHashes, vmm VMMType) error {
	switch s.Type {
	case SectionSecMem:
		if vmm == GCE {
			g.pages(pageTypeUnmeasured, uint64(s.GPA), uint64(s.Size))
		} else {
			g.pages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
		}
	case SectionSecrets:
		g.update(pageTypeSecrets, uint64(s.GPA), nil)
	case SectionCPUID:
		if vmm != EC2 {
			g.update(pageTypeCPUID, uint64(s.GPA), nil)
		}
	case SectionKernelHashes:
		if kernel == nil {
			g.pages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
			return nil
		}
		if s.Size != pageSize {
			return fmt.Errorf("%w: SNP_KERNEL_HASHES section is %d bytes; direct boot needs exactly one page", ovmf.ErrMalformed, s.Size)
		}
		if !fw.hasHashTable {
			return fmt.Errorf("%w: firmware has an SNP_KERNEL_HASHES section but no SEV hash table entry (%v) in its footer table", ovmf.ErrMalformed, ovmf.SEVHashTableGUID)
		}
		page, err := kernel.page(int(fw.hashTableGPA % pageSize))
		if err != nil {
			return err
		}
		h := sha512.Sum384(page[:])
		g.update(pageTypeNormal, uint64(s.GPA), &h)
	case SectionSVSMCAA:
		g.pages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
	default:
		// ParseFirmware rejects other types.
		return fmt.Errorf("%w: unknown SEV metadata section type %#x", ovmf.ErrMalformed, uint32(s.Type))
	}
	return nil
}

// gctx is the SNP guest context's launch digest.
type gctx struct {
	ld  [DigestSize]byte
	buf [0x70]byte
}

// update extends the digest with one PAGE_INFO (SEV-SNP ABI, table
// "Layout of the PAGE_INFO Structure"); contents nil means zeros.
func (g *gctx) update(pageType byte, gpa uint64, contents *[DigestSize]byte) {
	b := &g.buf
	copy(b[0:48], g.ld[:])
	if contents != nil {
		copy(b[48:96], contents[:])
	} else {
		clear(b[48:96])
	}
	binary.LittleEndian.PutUint16(b[96:], uint16(len(b))) // LENGTH
	b[98] = pageType                                      // PAGE_TYPE
	b[99] = 0                                             // IMI_PAGE
	b[100], b[101], b[102] = 0, 0, 0                      // VMPL3, VMPL2, VMPL1 permissions
	b[103] = 0                                            // reserved
	binary.LittleEndian.PutUint64(b[104:], gpa)           // GPA
	g.ld = sha512.Sum384(b[:])
}

// normalPages measures data, a whole number of pages, starting at gpa.
func (g *gctx) normalPages(gpa uint64, data []byte) {
	for off := 0; off+pageSize <= len(data); off += pageSize {
		h := sha512.Sum384(data[off : off+pageSize])
		g.update(pageTypeNormal, gpa+uint64(off), &h)
	}
}

// pages measures size bytes (a whole number of pages) of a contentless page
// type from gpa.
func (g *gctx) pages(pageType byte, gpa, size uint64) {
	for off := uint64(0); off < size; off += pageSize {
		g.update(pageType, gpa+off, nil)
	}
}

// ParseVCPUType returns the CPUID signature of a vCPU type name, one of
// VCPUTypeNames (sev-snp-measure's --vcpu-type; a release's
// recipe.measure.vcpu_type). It is the one rule for that value: 'attestlog
// measure snp', release validation and the auditor's rebuild all use it.
func ParseVCPUType(name string) (uint32, error) {
	sig, ok := VCPUTypes[name]
	if !ok {
		return 0, fmt.Errorf("unknown vCPU type %q (want one of %s)", name, strings.Join(VCPUTypeNames(), ", "))
	}
	return sig, nil
}

// ParseGuestFeatures parses the SEV features word as sev-snp-measure's
// --guest-features and a release's recipe.measure.guest_features give it:
// a 0x-prefixed hex number (e.g. 0x1). The one rule for that value.
func ParseGuestFeatures(s string) (uint64, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || h == "" || len(h) > 16 {
		return 0, fmt.Errorf("guest features %q: want a 0x-prefixed hex number of at most 64 bits (e.g. 0x1)", s)
	}
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("guest features %q: want a 0x-prefixed hex number of at most 64 bits (e.g. 0x1)", s)
	}
	return v, nil
}
