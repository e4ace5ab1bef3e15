// Package tdx computes Intel TDX measurements of a TDVF (OVMF) guest from its
// build outputs.
//
// MRTD is the SHA-384 the TDX module accumulates while the VMM builds the TD
// (Intel TDX Module Base Architecture Specification, "TD Measurement";
// TDH.MEM.PAGE.ADD and TDH.MR.EXTEND leaf functions). The VMM adds and
// measures the pages that the firmware's TDVF metadata describes (Intel TDX
// Virtual Firmware Design Guide, section "TDVF Metadata"):
//
//   - every page of a section without the PAGE.AUG attribute is added with
//     TDH.MEM.PAGE.ADD, which extends MRTD with one 128-byte block: the ASCII
//     "MEM.PAGE.ADD", zero padding to byte 16, the page's GPA (8 bytes,
//     little-endian) and zeros;
//   - every page of a section with the MR.EXTEND attribute is then measured
//     with TDH.MR.EXTEND in 256-byte chunks, each extending MRTD with a
//     128-byte block ("MR.EXTEND", zero padding, the chunk's GPA, zeros)
//     followed by the chunk's 256 bytes.
//
// VMMs differ in how they interleave the two (see PageOrder). MRTD is the
// SHA-384 of the concatenated blocks, finalized by TDH.MR.FINALIZE.
//
// The RTMRs are extended by the firmware and the OS during boot; see
// DirectBoot (RTMR1 and RTMR2 of a QEMU direct kernel boot), Extend and
// ReplayEventLog.
package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
)

// DigestSize is the size of MRTD and of each RTMR (SHA-384).
const DigestSize = sha512.Size384

const (
	pageSize            = 0x1000
	mrExtendGranularity = 0x100
	extensionBlockSize  = 0x80 // the 128-byte buffer TDH.MEM.PAGE.ADD and TDH.MR.EXTEND hash
)

// A PageOrder is the order in which the VMM adds and measures a section's
// pages; both occur in deployed QEMU/KVM versions.
type PageOrder int

const (
	// SinglePass adds each page and immediately measures it (TDH.MEM.PAGE.ADD,
	// then its 16 TDH.MR.EXTENDs), page after page. This is what upstream
	// KVM's KVM_TDX_INIT_MEM_REGION does for each page it populates.
	SinglePass PageOrder = iota
	// TwoPass adds all pages of a section first and then measures them all,
	// section by section, as earlier TDX QEMU/KVM trees did.
	TwoPass
)

// DefaultPageOrder is the order used when none is chosen.
const DefaultPageOrder = SinglePass

// String returns the flag name of o.
func (o PageOrder) String() string {
	switch o {
	case SinglePass:
		return "single-pass"
	case TwoPass:
		return "two-pass"
	}
	return fmt.Sprintf("PageOrder(%d)", int(o))
}

// ParsePageOrder parses "single-pass" or "two-pass".
func ParsePageOrder(s string) (PageOrder, error) {
	switch s {
	case "single-pass":
		return SinglePass, nil
	case "two-pass":
		return TwoPass, nil
	}
	return 0, fmt.Errorf("unknown page order %q (want single-pass or two-pass)", s)
}

// MRTD returns the MRTD of fw built with the given page order.
func MRTD(fw *Firmware, order PageOrder) ([DigestSize]byte, error) {
	var out [DigestSize]byte
	if order != SinglePass && order != TwoPass {
		return out, fmt.Errorf("unknown page order %d", int(order))
	}
	m := mrtd{h: sha512.New384()}
	for _, s := range fw.sections {
		n := s.MemorySize / pageSize
		switch order {
		case SinglePass:
			for p := uint64(0); p < n; p++ {
				m.pageAdd(fw, s, p)
				m.mrExtend(fw, s, p)
			}
		case TwoPass:
			for p := uint64(0); p < n; p++ {
				m.pageAdd(fw, s, p)
			}
			for p := uint64(0); p < n; p++ {
				m.mrExtend(fw, s, p)
			}
		}
	}
	m.h.Sum(out[:0])
	return out, nil
}

type mrtd struct {
	h   hash.Hash
	buf [extensionBlockSize]byte
}

func (m *mrtd) block(op string, gpa uint64) {
	clear(m.buf[:])
	copy(m.buf[:], op)
	binary.LittleEndian.PutUint64(m.buf[16:], gpa)
	m.h.Write(m.buf[:])
}

// pageAdd extends MRTD as TDH.MEM.PAGE.ADD of page p of s does.
func (m *mrtd) pageAdd(fw *Firmware, s Section, p uint64) {
	if s.Attributes&AttrPageAug != 0 {
		return
	}
	m.block("MEM.PAGE.ADD", s.MemoryAddress+p*pageSize)
}

// mrExtend extends MRTD as the TDH.MR.EXTENDs of page p of s do. Parse has
// checked that the section's measured bytes lie inside the image.
func (m *mrtd) mrExtend(fw *Firmware, s Section, p uint64) {
	if s.Attributes&AttrMRExtend == 0 {
		return
	}
	for c := uint64(0); c < pageSize; c += mrExtendGranularity {
		m.block("MR.EXTEND", s.MemoryAddress+p*pageSize+c)
		off := uint64(s.DataOffset) + p*pageSize + c
		m.h.Write(fw.data[off : off+mrExtendGranularity])
	}
}
