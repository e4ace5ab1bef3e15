package snp

import (
	"encoding/binary"
	"fmt"

	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

const fourGiB = 1 << 32

// resetEIP is the bootstrap processor's reset vector.
const resetEIP = 0xfffffff0

// A SectionType is the type of an SEV metadata section, as edk2 declares them
// in OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm.
type SectionType uint32

// SEV metadata section types.
const (
	SectionSecMem       SectionType = 1    // SNP_SEC_MEM: pre-validated zero pages
	SectionSecrets      SectionType = 2    // SNP_SECRETS: the secrets page
	SectionCPUID        SectionType = 3    // CPUID: the CPUID page
	SectionSVSMCAA      SectionType = 4    // SVSM_CAA: the SVSM calling area
	SectionKernelHashes SectionType = 0x10 // SNP_KERNEL_HASHES: the SEV hashes table page
)

// String returns the edk2 name of t.
func (t SectionType) String() string {
	switch t {
	case SectionSecMem:
		return "SNP_SEC_MEM"
	case SectionSecrets:
		return "SNP_SECRETS"
	case SectionCPUID:
		return "CPUID"
	case SectionSVSMCAA:
		return "SVSM_CAA"
	case SectionKernelHashes:
		return "SNP_KERNEL_HASHES"
	}
	return fmt.Sprintf("SectionType(%#x)", uint32(t))
}

// A Section is one entry of the SEV metadata: a guest memory range and what
// the VMM puts there.
type Section struct {
	GPA  uint32
	Size uint32
	Type SectionType
}

// Firmware is a parsed OVMF image: its pages, the SEV-ES AP reset vector, the
// SEV metadata sections and the SEV hash table's address.
type Firmware struct {
	data         []byte
	apResetEIP   uint32
	sections     []Section
	hashTableGPA uint32
	hasHashTable bool
}

// ParseFirmware parses an OVMF image for SEV-SNP measurement. It requires
// the SEV-ES AP reset block in the footer table (every OVMF that can run as
// an SEV-ES or SEV-SNP guest has it); the SEV metadata may be absent, in
// which case no metadata pages are measured, as in sev-snp-measure. The
// returned Firmware aliases fw.
func ParseFirmware(fw []byte) (*Firmware, error) {
	if err := checkImageSize(fw); err != nil {
		return nil, err
	}
	t, err := ovmf.ParseTable(fw)
	if err != nil {
		return nil, err
	}
	f := &Firmware{data: fw}
	f.apResetEIP, err = t.Uint32(ovmf.SEVESResetBlockGUID, "SEV-ES AP reset block")
	if err != nil {
		return nil, err
	}
	if _, ok := t.Lookup(ovmf.SEVHashTableGUID); ok {
		f.hashTableGPA, err = t.Uint32(ovmf.SEVHashTableGUID, "SEV hash table")
		if err != nil {
			return nil, err
		}
		f.hasHashTable = true
	}
	if _, ok := t.Lookup(ovmf.SEVMetadataGUID); ok {
		off, err := t.Uint32(ovmf.SEVMetadataGUID, "SEV metadata")
		if err != nil {
			return nil, err
		}
		f.sections, err = parseMetadata(fw, off)
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

// checkImageSize checks that fw is a whole number of pages that fits below
// 4 GiB and under ovmf.MaxFirmwareSize.
func checkImageSize(fw []byte) error {
	switch {
	case len(fw) == 0:
		return fmt.Errorf("%w: empty firmware image", ovmf.ErrMalformed)
	case len(fw) > ovmf.MaxFirmwareSize:
		return fmt.Errorf("%w: firmware image of %d bytes exceeds the %d-byte limit", ovmf.ErrMalformed, len(fw), ovmf.MaxFirmwareSize)
	case len(fw)%pageSize != 0:
		return fmt.Errorf("%w: firmware image of %d bytes is not a whole number of 4 KiB pages", ovmf.ErrMalformed, len(fw))
	}
	return nil
}

// The SEV metadata header ("ASEV"): signature, size, version, item count;
// then items of GPA, size and type (all 32-bit little-endian).
const (
	metadataHeaderSize = 16
	metadataItemSize   = 12
)

// parseMetadata parses the SEV metadata that starts offFromEnd bytes before
// the end of fw.
func parseMetadata(fw []byte, offFromEnd uint32) ([]Section, error) {
	if offFromEnd > uint32(len(fw)) || int(offFromEnd) < metadataHeaderSize {
		return nil, fmt.Errorf("%w: SEV metadata offset %#x from the end lies outside the %d-byte image", ovmf.ErrMalformed, offFromEnd, len(fw))
	}
	start := len(fw) - int(offFromEnd)
	h := fw[start:]
	if string(h[0:4]) != "ASEV" {
		return nil, fmt.Errorf("%w: SEV metadata signature %q, want \"ASEV\"", ovmf.ErrMalformed, h[0:4])
	}
	size := binary.LittleEndian.Uint32(h[4:])
	version := binary.LittleEndian.Uint32(h[8:])
	n := binary.LittleEndian.Uint32(h[12:])
	if version != 1 {
		return nil, fmt.Errorf("%w: SEV metadata version %d, want 1", ovmf.ErrMalformed, version)
	}
	if size < metadataHeaderSize || size > uint32(len(h)) {
		return nil, fmt.Errorf("%w: SEV metadata size %d does not fit the image", ovmf.ErrMalformed, size)
	}
	if uint64(n)*metadataItemSize > uint64(size-metadataHeaderSize) {
		return nil, fmt.Errorf("%w: SEV metadata declares %d sections but its %d bytes hold at most %d", ovmf.ErrMalformed, n, size, (size-metadataHeaderSize)/metadataItemSize)
	}
	items := h[metadataHeaderSize:size]
	sections := make([]Section, 0, n)
	var pages uint64
	for i := range int(n) {
		it := items[i*metadataItemSize:]
		s := Section{
			GPA:  binary.LittleEndian.Uint32(it[0:]),
			Size: binary.LittleEndian.Uint32(it[4:]),
			Type: SectionType(binary.LittleEndian.Uint32(it[8:])),
		}
		switch s.Type {
		case SectionSecMem, SectionSecrets, SectionCPUID, SectionSVSMCAA, SectionKernelHashes:
		default:
			return nil, fmt.Errorf("%w: SEV metadata section %d has unknown type %#x", ovmf.ErrMalformed, i, uint32(s.Type))
		}
		if s.GPA%pageSize != 0 {
			return nil, fmt.Errorf("%w: SEV metadata section %d (%v) at GPA %#x is not page aligned", ovmf.ErrMalformed, i, s.Type, s.GPA)
		}
		switch s.Type {
		case SectionSecMem, SectionSVSMCAA, SectionKernelHashes:
			if s.Size%pageSize != 0 {
				return nil, fmt.Errorf("%w: SEV metadata section %d (%v) size %#x is not a whole number of pages", ovmf.ErrMalformed, i, s.Type, s.Size)
			}
			pages += uint64(s.Size / pageSize)
		default:
			pages++
		}
		if pages > maxMetadataPages {
			return nil, fmt.Errorf("%w: SEV metadata asks for more than %d pages to be measured", ovmf.ErrMalformed, maxMetadataPages)
		}
		sections = append(sections, s)
	}
	return sections, nil
}

// GPA returns the guest physical address of the image's first byte: the
// image ends at 4 GiB.
func (f *Firmware) GPA() uint64 { return uint64(fourGiB - len(f.data)) }

// Size returns the image's size in bytes.
func (f *Firmware) Size() int { return len(f.data) }

// APResetEIP returns the SEV-ES AP reset vector from the footer table.
func (f *Firmware) APResetEIP() uint32 { return f.apResetEIP }

// Sections returns the SEV metadata sections, in the firmware's order.
func (f *Firmware) Sections() []Section { return append([]Section(nil), f.sections...) }

// HashTableGPA returns the GPA of the SEV hashes table and whether the
// firmware declares one.
func (f *Firmware) HashTableGPA() (uint32, bool) { return f.hashTableGPA, f.hasHashTable }

// SupportsDirectBoot reports whether the firmware can measure a kernel,
// initrd and command line (it has an SNP_KERNEL_HASHES section).
func (f *Firmware) SupportsDirectBoot() bool { return f.hasSection(SectionKernelHashes) }

func (f *Firmware) hasSection(t SectionType) bool {
	for _, s := range f.sections {
		if s.Type == t {
			return true
		}
	}
	return false
}
