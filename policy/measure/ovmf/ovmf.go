// Package ovmf reads the GUIDed footer table at the end of an OVMF (edk2)
// firmware image: the table through which the reset vector publishes the SEV
// metadata, the SEV-ES AP reset block, the SEV kernel-hashes table and the
// TDX (TDVF) metadata offset.
//
// The layout is the one edk2 builds in OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm
// and QEMU reads in hw/i386/pc_sysfw_ovmf.c: the image ends with 32 bytes
// (the reset vector), preceded by the footer entry (a 2-byte little-endian
// length, then the 16-byte footer GUID) whose length covers the whole table.
// Each entry before it has the same shape, data first: the entry's data, its
// 2-byte length (data + 18) and its GUID; entries are read backwards from the
// footer.
package ovmf

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxFirmwareSize is the largest firmware image accepted. OVMF images are 1 to
// 4 MiB; the SEV-SNP and TDX reset vectors put the image just below 4 GiB, and
// no real image comes near this bound.
const MaxFirmwareSize = 64 << 20

// ErrMalformed is wrapped by every error that reports a firmware image whose
// footer table or metadata cannot be parsed.
var ErrMalformed = errors.New("malformed firmware")

// A GUID is a UEFI GUID in its in-memory (mixed-endian) byte order, the order
// in which it appears in a firmware image.
type GUID [16]byte

// ParseGUID parses the canonical text form
// "96b582de-1fb2-45f7-baea-a366c55a082d" into the in-memory byte order (the
// first three groups little-endian), as Python's uuid.UUID(...).bytes_le.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("GUID %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("GUID %q: %w", s, err)
	}
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants; it panics on a malformed string.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the canonical text form of g.
func (g GUID) String() string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:])
}

// GUIDs of the footer table entries used by the measurement code.
var (
	// FooterGUID marks the footer entry, whose length covers the table.
	FooterGUID = MustParseGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
	// SEVHashTableGUID: the entry's first 4 bytes are the GPA of the SEV
	// kernel-hashes table (then its 4-byte size).
	SEVHashTableGUID = MustParseGUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
	// SEVESResetBlockGUID: the entry's first 4 bytes are the SEV-ES AP reset
	// vector (CS base in the upper 16 bits, IP in the lower 16).
	SEVESResetBlockGUID = MustParseGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
	// SEVMetadataGUID: the entry's first 4 bytes are the offset, from the
	// end of the image, of the "ASEV" SEV metadata header.
	SEVMetadataGUID = MustParseGUID("dc886566-984a-4798-a75e-5585a7bf67cc")
	// TDXMetadataGUID: the entry's first 4 bytes are the offset, from the
	// end of the image, of the "TDVF" descriptor.
	TDXMetadataGUID = MustParseGUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
)

// bytesAfterFooter is the number of bytes between the footer entry and the
// end of the image (the 16-byte reset vector and 16 bytes of padding).
const bytesAfterFooter = 32

// entryHeaderSize is the size of an entry's length and GUID.
const entryHeaderSize = 2 + 16

// A Table is the parsed footer table of one image.
type Table struct {
	entries map[GUID][]byte
	order   []GUID
}

// ParseTable parses the GUIDed footer table of fw. An image without the
// footer GUID has an empty table and no error, as in QEMU and
// sev-snp-measure; a footer that is present but inconsistent is an error
// wrapping ErrMalformed. A GUID that appears twice is an error too: the
// reference tools disagree on which copy wins.
func ParseTable(fw []byte) (*Table, error) {
	t := &Table{entries: map[GUID][]byte{}}
	if len(fw) > MaxFirmwareSize {
		return nil, fmt.Errorf("%w: image of %d bytes exceeds the %d-byte limit", ErrMalformed, len(fw), MaxFirmwareSize)
	}
	if len(fw) < bytesAfterFooter+entryHeaderSize {
		return t, nil
	}
	footer := len(fw) - bytesAfterFooter - entryHeaderSize
	if GUID(fw[footer+2:footer+18]) != FooterGUID {
		return t, nil
	}
	size := int(binary.LittleEndian.Uint16(fw[footer:]))
	if size < entryHeaderSize {
		return nil, fmt.Errorf("%w: footer table length %d is shorter than its own %d-byte header", ErrMalformed, size, entryHeaderSize)
	}
	tableLen := size - entryHeaderSize
	if tableLen > footer {
		return nil, fmt.Errorf("%w: footer table length %d runs past the start of the image", ErrMalformed, size)
	}
	table := fw[footer-tableLen : footer]
	// Like QEMU and sev-snp-measure, ignore fewer than entryHeaderSize
	// bytes left at the start of the table.
	for len(table) >= entryHeaderSize {
		h := len(table) - entryHeaderSize
		n := int(binary.LittleEndian.Uint16(table[h:]))
		g := GUID(table[h+2 : h+18])
		if n < entryHeaderSize || n > len(table) {
			return nil, fmt.Errorf("%w: footer table entry %v has length %d (want %d to %d)", ErrMalformed, g, n, entryHeaderSize, len(table))
		}
		if _, dup := t.entries[g]; dup {
			return nil, fmt.Errorf("%w: footer table has two entries with GUID %v", ErrMalformed, g)
		}
		t.entries[g] = table[len(table)-n : h : h]
		t.order = append(t.order, g)
		table = table[:len(table)-n]
	}
	return t, nil
}

// Lookup returns the data of the entry with GUID g (without its length and
// GUID), and whether there is one. The slice aliases the image.
func (t *Table) Lookup(g GUID) ([]byte, bool) {
	d, ok := t.entries[g]
	return d, ok
}

// Uint32 returns the first 4 bytes of entry g as a little-endian integer.
// It returns an error if the entry is absent or shorter than 4 bytes; what
// names the entry in that error.
func (t *Table) Uint32(g GUID, what string) (uint32, error) {
	d, ok := t.entries[g]
	if !ok {
		return 0, fmt.Errorf("firmware has no %s (footer table entry %v)", what, g)
	}
	if len(d) < 4 {
		return 0, fmt.Errorf("%w: footer table entry %v (%s) has %d bytes of data, want at least 4", ErrMalformed, g, what, len(d))
	}
	return binary.LittleEndian.Uint32(d), nil
}

// GUIDs returns the GUIDs of the table's entries, from the footer backwards.
func (t *Table) GUIDs() []GUID { return append([]GUID(nil), t.order...) }

// ReadFile reads a firmware image, refusing files larger than
// MaxFirmwareSize before reading them whole.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, name)
}

// ReadAll reads a firmware image from r, refusing more than MaxFirmwareSize
// bytes; name is used in the error.
func ReadAll(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFirmwareSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFirmwareSize {
		return nil, fmt.Errorf("%s: firmware larger than %d bytes", name, MaxFirmwareSize)
	}
	return b, nil
}
