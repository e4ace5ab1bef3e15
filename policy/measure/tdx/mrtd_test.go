package tdx

//go:generate go -C testdata run gen.go

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

// simpleMRTD is a second, deliberately plain implementation written straight
// from the TDX module specification's description of TDH.MEM.PAGE.ADD and
// TDH.MR.EXTEND: it reads the TDVF metadata by fixed offsets, builds the
// whole byte stream the TDX module hashes, and hashes it once. It shares no
// code with the package.
func simpleMRTD(t *testing.T, fw []byte, twoPass bool) string {
	t.Helper()
	le32 := func(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b)) }
	le64 := binary.LittleEndian.Uint64
	// The metadata offset is the first 4 bytes of the footer table entry
	// just before the footer: [u32 offset][u16 len][GUID][u16 len][footer GUID][32 bytes].
	n := len(fw)
	guidEntry := fw[n-32-18-16 : n-32-18]
	if hex.EncodeToString(guidEntry) != "35657ae44a989847865e4685a7bf8ec2" {
		// Not the last entry: walk the table the long way.
		tableEnd := n - 32 - 18
		for {
			l := int(binary.LittleEndian.Uint16(fw[tableEnd-18:]))
			if hex.EncodeToString(fw[tableEnd-16:tableEnd]) == "35657ae44a989847865e4685a7bf8ec2" {
				guidEntry = fw[tableEnd-16 : tableEnd]
				break
			}
			tableEnd -= l
		}
	}
	entryEnd := bytes.Index(fw[n-4096:], guidEntry) + n - 4096
	off := le32(fw[entryEnd-2-4:])
	desc := fw[uint64(n)-off:]
	if string(desc[:4]) != "TDVF" {
		t.Fatalf("simpleMRTD: no TDVF descriptor")
	}
	var stream bytes.Buffer
	block := func(op string, gpa uint64) {
		var b [128]byte
		copy(b[:], op)
		binary.LittleEndian.PutUint64(b[16:], gpa)
		stream.Write(b[:])
	}
	for i := uint64(0); i < le32(desc[12:]); i++ {
		s := desc[16+32*i:]
		dataOff, addr, size, attr := le32(s[0:]), le64(s[8:]), le64(s[16:]), le32(s[28:])
		add := func(p uint64) {
			if attr&2 == 0 {
				block("MEM.PAGE.ADD", addr+p*4096)
			}
		}
		extend := func(p uint64) {
			if attr&1 != 0 {
				for c := uint64(0); c < 4096; c += 256 {
					block("MR.EXTEND", addr+p*4096+c)
					stream.Write(fw[dataOff+p*4096+c : dataOff+p*4096+c+256])
				}
			}
		}
		if twoPass {
			for p := uint64(0); p < size/4096; p++ {
				add(p)
			}
			for p := uint64(0); p < size/4096; p++ {
				extend(p)
			}
		} else {
			for p := uint64(0); p < size/4096; p++ {
				add(p)
				extend(p)
			}
		}
	}
	h := sha512.Sum384(stream.Bytes())
	return hex.EncodeToString(h[:])
}

func mustMRTD(t *testing.T, fw []byte, order PageOrder) string {
	t.Helper()
	f, err := ParseFirmware(fw)
	if err != nil {
		t.Fatalf("ParseFirmware: %v", err)
	}
	m, err := MRTD(f, order)
	if err != nil {
		t.Fatalf("MRTD: %v", err)
	}
	return hex.EncodeToString(m[:])
}

// Computed by td-shim's td_shim_tee_info_hash.py (single pass only); the
// command is in testdata/README.md.
const (
	syntheticMRTDTdShim = "0872a724616aa6e8357b953e7d1ab70f75f183e2ff7e1f4d63fc3e3cd05f37681449f791f1b4aef8d4b87544bd4468b7"
	debianMRTDTdShim    = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"
)

func TestMRTDSynthetic(t *testing.T) {
	fw, err := os.ReadFile("testdata/tdvf_synthetic.fd")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustMRTD(t, fw, SinglePass); got != syntheticMRTDTdShim {
		t.Errorf("MRTD(tdvf_synthetic.fd, single-pass) = %s, want %s (td-shim)", got, syntheticMRTDTdShim)
	}
	if simple := simpleMRTD(t, fw, false); simple != syntheticMRTDTdShim {
		t.Errorf("simpleMRTD(single-pass) = %s disagrees with td-shim's %s: fix the test", simple, syntheticMRTDTdShim)
	}
	if got, want := mustMRTD(t, fw, TwoPass), simpleMRTD(t, fw, true); got != want {
		t.Errorf("MRTD(tdvf_synthetic.fd, two-pass) = %s, want %s (simple implementation)", got, want)
	}
	if mustMRTD(t, fw, TwoPass) == syntheticMRTDTdShim {
		t.Errorf("two-pass and single-pass MRTDs coincide; the fixture does not tell the orders apart")
	}
}

const (
	debianOVMFPath   = "/usr/share/ovmf/OVMF.fd"
	debianOVMFSHA256 = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773" // ovmf 2022.11-6+deb12u2
)

func TestMRTDDebianOVMF(t *testing.T) {
	fw := testenv.ReadDebianFile(t, "ovmf 2022.11-6+deb12u2", debianOVMFPath, debianOVMFSHA256)
	if got := mustMRTD(t, fw, SinglePass); got != debianMRTDTdShim {
		t.Errorf("MRTD(OVMF.fd, single-pass) = %s, want %s (td-shim)", got, debianMRTDTdShim)
	}
	if got, want := mustMRTD(t, fw, TwoPass), simpleMRTD(t, fw, true); got != want {
		t.Errorf("MRTD(OVMF.fd, two-pass) = %s, want %s (simple implementation)", got, want)
	}
	f, _ := ParseFirmware(fw)
	var types []string
	for _, s := range f.Sections() {
		types = append(types, s.Type.String())
	}
	if got := strings.Join(types, ","); got != "BFV,CFV,TempMem,TempMem,TD_HOB,TempMem" {
		t.Errorf("OVMF.fd TDVF sections = %s, want BFV,CFV,TempMem,TempMem,TD_HOB,TempMem", got)
	}
}

func TestDebianOVMFCode4MHasNoTDXMetadata(t *testing.T) {
	b, err := os.ReadFile("/usr/share/OVMF/OVMF_CODE_4M.fd")
	if err != nil {
		testenv.Missing(t, "Debian's ovmf package (OVMF_CODE_4M.fd)", err)
	}
	if _, err := ParseFirmware(b); err == nil || !strings.Contains(err.Error(), "no TDX metadata") {
		t.Errorf("ParseFirmware(OVMF_CODE_4M.fd) error = %v, want \"no TDX metadata\" (td-shim's tool rejects it too)", err)
	}
}

func TestParseErrors(t *testing.T) {
	fw, err := os.ReadFile("testdata/tdvf_synthetic.fd")
	if err != nil {
		t.Fatal(err)
	}
	const desc = 0x8000 + 16
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(fw)
		f(b)
		return b
	}
	sec := func(i int) int { return desc + 16 + 32*i }
	for _, tc := range []struct {
		name string
		fw   []byte
		want string
	}{
		{"no footer", make([]byte, 8192), "no TDX metadata"},
		{"bad signature", edit(func(b []byte) { b[desc] = 'X' }), "signature"},
		{"bad guid", edit(func(b []byte) { b[desc-1] ^= 1 }), "not preceded"},
		{"bad version", edit(func(b []byte) { b[desc+8] = 2 }), "version"},
		{"too many sections", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[desc+12:], 1000) }), "sections"},
		{"length mismatch", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[desc+4:], 17) }), "length"},
		{"unaligned address", edit(func(b []byte) { b[sec(0)+8] = 1 }), "aligned"},
		{"unaligned size", edit(func(b []byte) { b[sec(2)+16] = 1 }), "whole number"},
		{"data outside", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[sec(0):], 0xff000) }), "outside"},
		{"huge", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[sec(2)+16:], 1<<40) }), "pages"},
		{"wraps", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[sec(2)+8:], 1<<64-0x1000) }), "wraps"},
		{"unknown type", edit(func(b []byte) { b[sec(2)+24] = 9 }), "unknown type"},
		{"aug and extend", edit(func(b []byte) { b[sec(0)+28] = 3 }), "PAGE.AUG"},
		{"offset outside", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[len(b)-32-18-22:], 1<<30) }), "outside"},
	} {
		_, err := ParseFirmware(tc.fw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFirmware(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
		if tc.name != "no footer" && !errors.Is(err, ovmf.ErrMalformed) {
			t.Errorf("ParseFirmware(%s) error %v does not wrap ErrMalformed", tc.name, err)
		}
	}
}

func FuzzParseFirmware(f *testing.F) {
	fw, err := os.ReadFile("testdata/tdvf_synthetic.fd")
	if err != nil {
		f.Fatal(err)
	}
	// Fuzz the last 32 KiB (metadata and footer) over a fixed front.
	f.Add(fw[len(fw)-32<<10:])
	f.Fuzz(func(t *testing.T, tail []byte) {
		img := append(bytes.Clone(fw[:len(fw)-32<<10]), tail...)
		if len(img) > len(fw)+4096 {
			return
		}
		fwp, err := ParseFirmware(img)
		if err != nil {
			return
		}
		for _, o := range []PageOrder{SinglePass, TwoPass} {
			if _, err := MRTD(fwp, o); err != nil {
				t.Fatalf("MRTD after a successful parse: %v", err)
			}
		}
	})
}
