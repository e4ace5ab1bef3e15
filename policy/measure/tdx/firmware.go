package tdx

import (
	"encoding/binary"
	"fmt"

	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

// SectionType is the type of a TDVF metadata section (TDVF Design Guide,
// table "TDVF_SECTION.Type").
type SectionType uint32

// TDVF section types.
const (
	SectionBFV          SectionType = 0 // boot firmware volume: code, measured into MRTD
	SectionCFV          SectionType = 1 // configuration firmware volume (UEFI variables), measured into RTMR0 by TDVF
	SectionTDHOB        SectionType = 2 // the TD hand-off block the VMM writes
	SectionTempMem      SectionType = 3 // temporary memory, zero pages
	SectionPermMem      SectionType = 4 // permanent memory
	SectionPayload      SectionType = 5 // a payload (kernel) image
	SectionPayloadParam SectionType = 6 // the payload's parameters
	SectionTDInfo       SectionType = 7 // td-shim's TD_INFO
)

const maxSectionType = 8

// String returns the TDVF name of t.
func (t SectionType) String() string {
	switch t {
	case SectionBFV:
		return "BFV"
	case SectionCFV:
		return "CFV"
	case SectionTDHOB:
		return "TD_HOB"
	case SectionTempMem:
		return "TempMem"
	case SectionPermMem:
		return "PermMem"
	case SectionPayload:
		return "Payload"
	case SectionPayloadParam:
		return "PayloadParam"
	case SectionTDInfo:
		return "TD_INFO"
	}
	return fmt.Sprintf("SectionType(%d)", uint32(t))
}

// Section attributes (TDVF Design Guide, table "TDVF_SECTION.Attributes").
const (
	AttrMRExtend uint32 = 1 << 0 // the VMM measures the section with TDH.MR.EXTEND
	AttrPageAug  uint32 = 1 << 1 // the section is added after launch with TDH.MEM.PAGE.AUG, unmeasured
)

// A Section is one TDVF_SECTION of the metadata.
type Section struct {
	DataOffset    uint32 // offset of the section's data in the image
	RawDataSize   uint32 // bytes of data in the image
	MemoryAddress uint64 // GPA of the section
	MemorySize    uint64 // bytes of guest memory, a whole number of pages
	Type          SectionType
	Attributes    uint32
}

// Firmware is a TDVF image and its parsed metadata.
type Firmware struct {
	data     []byte
	sections []Section
}

// MaxSections bounds the sections accepted; OVMF declares six.
const MaxSections = 64

// maxPages bounds the pages the metadata may ask to be added (1 GiB); OVMF
// declares about five hundred.
const maxPages = 1 << 18

// metadataGUID precedes the "TDVF" descriptor.
var metadataGUID = ovmf.MustParseGUID("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae")

const (
	descriptorSize = 16
	sectionSize    = 32
)

// ParseFirmware parses the TDVF metadata of fw: the footer table's TDX
// metadata entry gives the offset from the end of the image of the "TDVF"
// descriptor (preceded by its GUID), followed by its sections. The returned
// Firmware aliases fw.
func ParseFirmware(fw []byte) (*Firmware, error) {
	if len(fw) > ovmf.MaxFirmwareSize {
		return nil, fmt.Errorf("%w: firmware image of %d bytes exceeds the %d-byte limit", ovmf.ErrMalformed, len(fw), ovmf.MaxFirmwareSize)
	}
	t, err := ovmf.ParseTable(fw)
	if err != nil {
		return nil, err
	}
	off, err := t.Uint32(ovmf.TDXMetadataGUID, "TDX metadata (it is not a TDVF/OVMF build with TDX support)")
	if err != nil {
		return nil, err
	}
	if off > uint32(len(fw)) || off < descriptorSize {
		return nil, fmt.Errorf("%w: TDVF descriptor offset %#x from the end lies outside the %d-byte image", ovmf.ErrMalformed, off, len(fw))
	}
	start := len(fw) - int(off)
	if start < 16 || ovmf.GUID(fw[start-16:start]) != metadataGUID {
		return nil, fmt.Errorf("%w: TDVF descriptor at offset %#x is not preceded by the TDX metadata GUID %v", ovmf.ErrMalformed, start, metadataGUID)
	}
	d := fw[start:]
	if string(d[0:4]) != "TDVF" {
		return nil, fmt.Errorf("%w: TDVF descriptor signature %q, want \"TDVF\"", ovmf.ErrMalformed, d[0:4])
	}
	length := binary.LittleEndian.Uint32(d[4:])
	version := binary.LittleEndian.Uint32(d[8:])
	n := binary.LittleEndian.Uint32(d[12:])
	if version != 1 {
		return nil, fmt.Errorf("%w: TDVF descriptor version %d, want 1", ovmf.ErrMalformed, version)
	}
	if n == 0 || n > MaxSections {
		return nil, fmt.Errorf("%w: TDVF descriptor declares %d sections (want 1 to %d)", ovmf.ErrMalformed, n, MaxSections)
	}
	if uint64(length) != descriptorSize+uint64(n)*sectionSize || uint64(length) > uint64(len(d)) {
		return nil, fmt.Errorf("%w: TDVF descriptor length %d does not match %d sections or does not fit the image", ovmf.ErrMalformed, length, n)
	}
	f := &Firmware{data: fw, sections: make([]Section, 0, n)}
	var pages uint64
	for i := range int(n) {
		r := d[descriptorSize+i*sectionSize:]
		s := Section{
			DataOffset:    binary.LittleEndian.Uint32(r[0:]),
			RawDataSize:   binary.LittleEndian.Uint32(r[4:]),
			MemoryAddress: binary.LittleEndian.Uint64(r[8:]),
			MemorySize:    binary.LittleEndian.Uint64(r[16:]),
			Type:          SectionType(binary.LittleEndian.Uint32(r[24:])),
			Attributes:    binary.LittleEndian.Uint32(r[28:]),
		}
		if err := s.check(len(fw)); err != nil {
			return nil, fmt.Errorf("%w: TDVF section %d (%v): %v", ovmf.ErrMalformed, i, s.Type, err)
		}
		pages += s.MemorySize / pageSize
		if pages > maxPages {
			return nil, fmt.Errorf("%w: TDVF metadata asks for more than %d pages", ovmf.ErrMalformed, maxPages)
		}
		f.sections = append(f.sections, s)
	}
	return f, nil
}

// check validates s against the TDVF Design Guide's rules and the image.
func (s Section) check(imageSize int) error {
	switch {
	case uint32(s.Type) >= maxSectionType:
		return fmt.Errorf("unknown type %d", uint32(s.Type))
	case s.Attributes&^(AttrMRExtend|AttrPageAug) != 0:
		return fmt.Errorf("unknown attributes %#x", s.Attributes)
	case s.Attributes&AttrMRExtend != 0 && s.Attributes&AttrPageAug != 0:
		return fmt.Errorf("attributes %#x: a PAGE.AUG section cannot be measured with MR.EXTEND", s.Attributes)
	case s.MemoryAddress%pageSize != 0:
		return fmt.Errorf("memory address %#x is not page aligned", s.MemoryAddress)
	case s.MemorySize%pageSize != 0:
		return fmt.Errorf("memory size %#x is not a whole number of pages", s.MemorySize)
	case s.MemoryAddress+s.MemorySize < s.MemoryAddress:
		return fmt.Errorf("memory range %#x+%#x wraps", s.MemoryAddress, s.MemorySize)
	case s.MemorySize < uint64(s.RawDataSize):
		return fmt.Errorf("memory size %#x is smaller than its raw data size %#x", s.MemorySize, s.RawDataSize)
	case uint64(s.DataOffset)+uint64(s.RawDataSize) > uint64(imageSize):
		return fmt.Errorf("data %#x+%#x lies outside the %d-byte image", s.DataOffset, s.RawDataSize, imageSize)
	}
	// TDH.MR.EXTEND measures MemorySize bytes, which the VMM maps from the
	// image starting at DataOffset.
	if s.Attributes&AttrMRExtend != 0 && uint64(s.DataOffset)+s.MemorySize > uint64(imageSize) {
		return fmt.Errorf("measured data %#x+%#x lies outside the %d-byte image", s.DataOffset, s.MemorySize, imageSize)
	}
	return nil
}

// Sections returns the TDVF sections in the metadata's order.
func (f *Firmware) Sections() []Section { return append([]Section(nil), f.sections...) }

// Section returns the first section of type t and whether there is one.
func (f *Firmware) Section(t SectionType) (Section, bool) {
	for _, s := range f.sections {
		if s.Type == t {
			return s, true
		}
	}
	return Section{}, false
}

// SectionData returns the image bytes of s (RawDataSize bytes from
// DataOffset), for example the CFV that TDVF measures into RTMR0.
func (f *Firmware) SectionData(s Section) []byte {
	return f.data[s.DataOffset : s.DataOffset+s.RawDataSize]
}
