package tdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sort"
)

// MaxKernelSize bounds the kernel images accepted (QEMU's fw_cfg kernel blob
// is far smaller; distribution kernels are 8 to 16 MiB).
const MaxKernelSize = 256 << 20

// ErrNotPE is wrapped by the errors of AuthenticodeDigest for an image that
// is not a well-formed PE/COFF file.
var ErrNotPE = errors.New("not a PE/COFF image")

// maxPESections bounds the section table (the PE/COFF specification's
// Windows loader limit is 96).
const maxPESections = 96

const (
	peMagic32    = 0x10b
	peMagic32Pls = 0x20b
	// dirSecurity is IMAGE_DIRECTORY_ENTRY_SECURITY, the certificate table.
	dirSecurity = 4
)

// AuthenticodeDigest returns the Authenticode hash of the PE/COFF image img
// computed with h, as EDK2's MeasurePeImageAndExtend measures an EFI
// application into PCR 4 (RTMR1 in a TD) when it is loaded: the PE/COFF
// specification's "Calculating the PE Image Hash" (Appendix A of PE/COFF 8.0):
//
//  1. the headers up to SizeOfHeaders, without the CheckSum field and, when
//     the optional header has one, the certificate table directory entry;
//  2. every section with a non-zero SizeOfRawData, ordered by
//     PointerToRawData;
//  3. the bytes of the file after SUM_OF_BYTES_HASHED (the headers plus the
//     sections), minus the certificate table's size.
//
// Unlike some re-implementations, nothing is padded: EDK2 hashes exactly
// these bytes. img is untrusted: every offset is checked and a malformed
// image gives an error wrapping ErrNotPE.
func AuthenticodeDigest(img []byte, h hash.Hash) ([]byte, error) {
	if len(img) > MaxKernelSize {
		return nil, fmt.Errorf("%w: image of %d bytes exceeds the %d-byte limit", ErrNotPE, len(img), MaxKernelSize)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotPE}, a...)...)
	}
	if len(img) < 0x40 || img[0] != 'M' || img[1] != 'Z' {
		return nil, bad("no MZ DOS header")
	}
	peOff := uint64(binary.LittleEndian.Uint32(img[0x3c:]))
	const coffSize = 20
	if peOff+4+coffSize > uint64(len(img)) {
		return nil, bad("PE header offset %#x lies outside the %d-byte image", peOff, len(img))
	}
	if string(img[peOff:peOff+4]) != "PE\x00\x00" {
		return nil, bad("no PE signature at offset %#x", peOff)
	}
	coff := peOff + 4
	numSections := uint64(binary.LittleEndian.Uint16(img[coff+2:]))
	optSize := uint64(binary.LittleEndian.Uint16(img[coff+16:]))
	opt := coff + coffSize
	if opt+optSize > uint64(len(img)) || optSize < 2 {
		return nil, bad("optional header of %d bytes at %#x does not fit the image", optSize, opt)
	}
	var numDirsOff, dirsOff uint64
	switch magic := binary.LittleEndian.Uint16(img[opt:]); magic {
	case peMagic32:
		numDirsOff, dirsOff = 92, 96
	case peMagic32Pls:
		numDirsOff, dirsOff = 108, 112
	default:
		return nil, bad("optional header magic %#x (want PE32 %#x or PE32+ %#x)", magic, peMagic32, peMagic32Pls)
	}
	if dirsOff > optSize {
		return nil, bad("optional header of %d bytes is too short for its magic", optSize)
	}
	checksum := opt + 64
	sizeOfHeaders := uint64(binary.LittleEndian.Uint32(img[opt+60:]))
	numDirs := uint64(binary.LittleEndian.Uint32(img[opt+numDirsOff:]))
	hasCertDir := numDirs > dirSecurity
	certDir := opt + dirsOff + dirSecurity*8
	if hasCertDir && certDir+8 > opt+optSize {
		return nil, bad("%d data directories do not fit the %d-byte optional header", numDirs, optSize)
	}
	if sizeOfHeaders > uint64(len(img)) {
		return nil, bad("SizeOfHeaders %#x exceeds the %d-byte image", sizeOfHeaders, len(img))
	}
	end := checksum + 4
	if hasCertDir {
		end = certDir + 8
	}
	if sizeOfHeaders < end {
		return nil, bad("SizeOfHeaders %#x ends inside the optional header", sizeOfHeaders)
	}
	if numSections > maxPESections {
		return nil, bad("%d sections (at most %d)", numSections, maxPESections)
	}
	secTable := opt + optSize
	if secTable+numSections*40 > uint64(len(img)) {
		return nil, bad("section table of %d entries at %#x does not fit the image", numSections, secTable)
	}

	h.Reset()
	h.Write(img[:checksum])
	if hasCertDir {
		h.Write(img[checksum+4 : certDir])
		h.Write(img[certDir+8 : sizeOfHeaders])
	} else {
		h.Write(img[checksum+4 : sizeOfHeaders])
	}
	sum := sizeOfHeaders

	type span struct{ off, size uint64 }
	var sections []span
	for i := range numSections {
		s := img[secTable+i*40:]
		size := uint64(binary.LittleEndian.Uint32(s[16:]))
		off := uint64(binary.LittleEndian.Uint32(s[20:]))
		if size == 0 {
			continue
		}
		if off+size > uint64(len(img)) {
			return nil, bad("section %d (%q) data %#x+%#x lies outside the %d-byte image", i, sectionName(s[:8]), off, size, len(img))
		}
		sections = append(sections, span{off, size})
	}
	// EDK2 sorts with an insertion sort on PointerToRawData; a stable sort
	// keeps equal keys in table order as it does.
	sort.SliceStable(sections, func(i, j int) bool { return sections[i].off < sections[j].off })
	for _, s := range sections {
		h.Write(img[s.off : s.off+s.size])
		sum += s.size
	}

	if size := uint64(len(img)); size > sum {
		var certSize uint64
		if hasCertDir {
			certSize = uint64(binary.LittleEndian.Uint32(img[certDir+4:]))
		}
		switch {
		case size > sum+certSize:
			h.Write(img[sum : size-certSize])
		case size < sum+certSize:
			return nil, bad("certificate table of %d bytes does not fit after the %d hashed bytes of the %d-byte image", certSize, sum, size)
		}
	}
	return h.Sum(nil), nil
}

func sectionName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
