//go:build ignore

// gen writes tdvf_synthetic.fd: a small, deterministic TDVF image whose
// metadata exercises every case of the MRTD computation (a measured BFV of
// several pages, an unmeasured CFV, TD_HOB and TempMem sections that are only
// added, and a PAGE.AUG section that is neither). Run with
// `go run gen.go` in this directory.
package main

import (
	"encoding/binary"
	"log"
	"os"
)

func guid(b ...byte) []byte { return b }

func main() {
	const size = 64 << 10
	fw := make([]byte, size)
	// BFV data: pages 0x1000..0x4000 filled with a pattern; CFV at 0x0000.
	for i := 0; i < 0x3000; i++ {
		fw[0x1000+i] = byte(i*7 + i>>8)
	}
	for i := 0; i < 0x1000; i++ {
		fw[i] = byte(0xc0 ^ i)
	}
	type sec struct {
		off, raw     uint32
		addr, memsz  uint64
		typ, attribs uint32
	}
	secs := []sec{
		{0x1000, 0x3000, 0xfffc1000, 0x3000, 0, 1}, // BFV, MR.EXTEND
		{0x0000, 0x1000, 0xfffc0000, 0x1000, 1, 0}, // CFV
		{0, 0, 0x810000, 0x3000, 3, 0},             // TempMem
		{0, 0, 0x809000, 0x2000, 2, 0},             // TD_HOB
		{0, 0, 0x900000, 0x2000, 4, 2},             // PermMem, PAGE.AUG
	}
	// Metadata at 0x8000: GUID, "TDVF" descriptor, sections.
	const meta = 0x8000
	copy(fw[meta:], guid(0xf3, 0xf9, 0xea, 0xe9, 0x8e, 0x16, 0xd5, 0x44, 0xa8, 0xeb, 0x7f, 0x4d, 0x87, 0x38, 0xf6, 0xae))
	d := fw[meta+16:]
	copy(d, "TDVF")
	binary.LittleEndian.PutUint32(d[4:], uint32(16+32*len(secs)))
	binary.LittleEndian.PutUint32(d[8:], 1)
	binary.LittleEndian.PutUint32(d[12:], uint32(len(secs)))
	for i, s := range secs {
		r := d[16+32*i:]
		binary.LittleEndian.PutUint32(r[0:], s.off)
		binary.LittleEndian.PutUint32(r[4:], s.raw)
		binary.LittleEndian.PutUint64(r[8:], s.addr)
		binary.LittleEndian.PutUint64(r[16:], s.memsz)
		binary.LittleEndian.PutUint32(r[24:], s.typ)
		binary.LittleEndian.PutUint32(r[28:], s.attribs)
	}
	// Footer table: [TDX metadata entry][footer entry][32 bytes].
	footer := size - 32 - 18
	tdxEntry := footer - 22
	binary.LittleEndian.PutUint32(fw[tdxEntry:], uint32(size-(meta+16)))
	binary.LittleEndian.PutUint16(fw[tdxEntry+4:], 22)
	copy(fw[tdxEntry+6:], guid(0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47, 0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2))
	binary.LittleEndian.PutUint16(fw[footer:], 22+18)
	copy(fw[footer+2:], guid(0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d))
	if err := os.WriteFile("tdvf_synthetic.fd", fw, 0o644); err != nil {
		log.Fatal(err)
	}
}
