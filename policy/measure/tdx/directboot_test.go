package tdx

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bzHeader returns a minimal bzImage setup header: boot protocol 2.15,
// LOADED_HIGH, XLF_CAN_BE_LOADED_ABOVE_4G as the xloadflags given, and
// initrd_addr_max 0x7fffffff.
func bzHeader(xlf uint16) []byte {
	k := make([]byte, 0x1000)
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x206:], 0x020f)
	k[0x211] = 0x01
	binary.LittleEndian.PutUint32(k[0x22c:], 0x7fffffff)
	binary.LittleEndian.PutUint16(k[0x236:], xlf)
	return k
}

// The expected fields are worked out by hand from QEMU's x86_load_linux:
// heap_end_ptr = 0x20000 - 0x10000 - 0x200; below-4G RAM is all of it up to
// 2.75 GiB, else 2 GiB; initrd_max = min(header limit, below4G - 0x28000 - 1);
// address = (initrd_max - size) rounded down to 4 KiB.
func TestPatchKernelSetup(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name             string
		xlf              uint16
		initrd           int64
		mem              uint64
		wantAddr, wantSz uint32
	}{
		{"no initrd", 0x7f, -1, 0, 0, 0},
		{"2 GiB, above-4G kernel", 0x7f, 0x100000, 2048 * mib, 0x7fed7000, 0x100000},
		{"8 GiB, above-4G kernel", 0x7f, 0x100000, 8192 * mib, 0x7fed7000, 0x100000},
		{"1 GiB, above-4G kernel", 0x7f, 12345, 1024 * mib, 0x3ffd4000, 12345},
		{"2.5 GiB, above-4G kernel", 0x7f, 0x100000, 2560 * mib, 0x9fed7000, 0x100000},
		{"8 GiB, initrd_addr_max 0x7fffffff", 0, 0x100000, 8192 * mib, 0x7fed7000, 0x100000},
		{"4 GiB (2 GiB low), initrd_addr_max", 0, 0x2000, 4096 * mib, 0x7ffd5000, 0x2000},
		{"empty initrd", 0x7f, 0, 2048 * mib, 0x7ffd7000, 0},
	} {
		k := bzHeader(tc.xlf)
		got, err := PatchKernelSetup(k, tc.initrd, tc.mem)
		if err != nil {
			t.Errorf("%s: PatchKernelSetup error: %v", tc.name, err)
			continue
		}
		le16, le32 := binary.LittleEndian.Uint16, binary.LittleEndian.Uint32
		if got[0x210] != 0xb0 || got[0x211] != 0x81 || le16(got[0x224:]) != 0xfe00 || le32(got[0x228:]) != 0x20000 {
			t.Errorf("%s: loader type %#x, loadflags %#x, heap_end_ptr %#x, cmd_line_ptr %#x; want 0xb0, 0x81, 0xfe00, 0x20000",
				tc.name, got[0x210], got[0x211], le16(got[0x224:]), le32(got[0x228:]))
		}
		if a, s := le32(got[0x218:]), le32(got[0x21c:]); a != tc.wantAddr || s != tc.wantSz {
			t.Errorf("%s: ramdisk_image %#x, ramdisk_size %#x; want %#x, %#x", tc.name, a, s, tc.wantAddr, tc.wantSz)
		}
		if k[0x210] != 0 || k[0x218] != 0 {
			t.Errorf("%s: PatchKernelSetup modified its input", tc.name)
		}
	}
}

func TestPatchKernelSetupErrors(t *testing.T) {
	old := bzHeader(0)
	binary.LittleEndian.PutUint16(old[0x206:], 0x0201)
	for _, tc := range []struct {
		name   string
		kernel []byte
		initrd int64
		mem    uint64
		want   string
	}{
		{"empty", nil, -1, 0, "no \"HdrS\" setup header"},
		{"ELF", append([]byte("\x7fELF"), make([]byte, 0x1000)...), -1, 0, "no \"HdrS\" setup header"},
		{"old protocol", old, -1, 0, "boot protocol 0x201"},
		{"initrd too large", bzHeader(0x7f), 0x3ffd7fff, 1 << 30, "does not fit below"},
		{"no memory", bzHeader(0x7f), 10, 0x1000, "no room"},
	} {
		_, err := PatchKernelSetup(tc.kernel, tc.initrd, tc.mem)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PatchKernelSetup(%s) error = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadOptions(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		initrd  bool
		want    string // hex
	}{
		{"", false, ""},
		{"", true, "20006900" + "6e0069007400720064003d0069006e0069007400720064000000"},
		{"ro", false, "72006f000000"},
		{"ro", true, "72006f00" + "20006900" + "6e0069007400720064003d0069006e0069007400720064000000"},
		{"é", false, "c300a9000000"}, // bytes widened, not decoded: X86QemuLoadImageLib's %a
	} {
		if got := hex.EncodeToString(LoadOptions(tc.cmdline, tc.initrd)); got != tc.want {
			t.Errorf("LoadOptions(%q, %v) = %s, want %s", tc.cmdline, tc.initrd, got, tc.want)
		}
	}
}

// The fixed event digests must equal those in a real TDVF event log (COS 113
// on TDX, testdata/ccel_cos113_tdx.bin).
func TestFixedEventsMatchCCEL(t *testing.T) {
	r, _ := replayCOS(t)
	want := map[string]BootEvent{
		"Action/" + ActionCallingEFIApplication: actionEvent(1, ActionCallingEFIApplication),
		"Action/" + ActionExitBootServices:      actionEvent(1, ActionExitBootServices),
		"Action/" + ActionExitBootServicesOK:    actionEvent(1, ActionExitBootServicesOK),
		"Separator/1":                           separatorEvent(1),
		"Separator/0":                           separatorEvent(0),
	}
	seen := map[string]bool{}
	for _, e := range r.Events {
		var key string
		switch e.TypeName() {
		case "EFI Action":
			key = "Action/" + e.Description()
		case "Separator":
			key = "Separator/" + string(rune('0'+e.RTMR()))
		default:
			continue
		}
		w, ok := want[key]
		if !ok {
			continue
		}
		seen[key] = true
		if w.RTMR != e.RTMR() || !bytes.Equal(w.Digest[:], e.Digest) {
			t.Errorf("event %d (%s): RTMR%d digest %x; we compute RTMR%d %x", e.Seq, key, e.RTMR(), e.Digest, w.RTMR, w.Digest)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("event %s not found in the COS log", k)
		}
	}
}

// simpleRTMRs folds digests into a register as the TDX module does, written
// out plainly: r = SHA-384(r || d), from zero.
func simpleRTMR(digests ...[]byte) string {
	r := make([]byte, 48)
	for _, d := range digests {
		s := sha512.Sum384(append(append([]byte{}, r...), d...))
		r = s[:]
	}
	return hex.EncodeToString(r)
}

func sum384(b []byte) []byte { s := sha512.Sum384(b); return s[:] }

func utf16z(s string) []byte {
	var b []byte
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return append(b, 0, 0)
}

// RTMR1 and RTMR2 of a real Debian kernel, against the event sequence built
// explicitly from the TDVF and Linux sources (see directboot.go), with the
// kernel's digest from our Authenticode code: the patched image's SHA-256
// Authenticode is checked against osslsigncode's computation, so the byte
// ranges hashed with SHA-384 are those of an independent implementation.
func TestDirectBootDebianKernel(t *testing.T) {
	path := signedKernels(t)[0]
	kernel, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	initrd := bytes.Repeat([]byte("initrd"), 100000)
	const mem = 4 << 30
	b := DirectBoot{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0 root=/dev/vda1", MemorySize: mem}
	events, err := b.Events()
	if err != nil {
		t.Fatal(err)
	}
	rtmrs := FoldRTMRs(events)

	// QEMU's patch, by hand: 4 GiB of RAM leaves 2 GiB below 4 GiB.
	patched := bytes.Clone(kernel)
	patched[0x210] = 0xb0
	patched[0x211] |= 0x80
	binary.LittleEndian.PutUint16(patched[0x224:], 0xfe00)
	binary.LittleEndian.PutUint32(patched[0x228:], 0x20000)
	binary.LittleEndian.PutUint32(patched[0x218:], uint32((0x80000000-0x28000-1-len(initrd))&^0xfff))
	binary.LittleEndian.PutUint32(patched[0x21c:], uint32(len(initrd)))
	pp := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(pp, patched, 0o644); err != nil {
		t.Fatal(err)
	}
	if want := osslsigncodeDigest(t, pp); want != "" {
		got, err := AuthenticodeDigest(patched, sha256.New())
		if err != nil || hex.EncodeToString(got) != want {
			t.Fatalf("Authenticode SHA-256 of the patched kernel = %x, %v; osslsigncode computes %s", got, err, want)
		}
	}
	kd, err := AuthenticodeDigest(patched, sha512.New384())
	if err != nil {
		t.Fatal(err)
	}
	wantR1 := simpleRTMR(kd,
		sum384([]byte("Calling EFI Application from Boot Option")),
		sum384([]byte{0, 0, 0, 0}),
		sum384([]byte("Exit Boot Services Invocation")),
		sum384([]byte("Exit Boot Services Returned with Success")))
	wantR2 := simpleRTMR(sum384(utf16z("console=ttyS0 root=/dev/vda1 initrd=initrd")), sum384(initrd))
	if got := hex.EncodeToString(rtmrs[1][:]); got != wantR1 {
		t.Errorf("%s: RTMR1 = %s, want %s", path, got, wantR1)
	}
	if got := hex.EncodeToString(rtmrs[2][:]); got != wantR2 {
		t.Errorf("%s: RTMR2 = %s, want %s", path, got, wantR2)
	}
	if rtmrs[0] != ([DigestSize]byte{}) || rtmrs[3] != ([DigestSize]byte{}) {
		t.Errorf("DirectBoot.Events extended RTMR0 or RTMR3")
	}

	// Without an initrd the header keeps its ramdisk fields and the
	// command line has no initrd= and RTMR2 only the command line.
	events, err = DirectBoot{Kernel: kernel, Cmdline: "quiet"}.Events()
	if err != nil {
		t.Fatal(err)
	}
	r := FoldRTMRs(events)
	if got, want := hex.EncodeToString(r[2][:]), simpleRTMR(sum384(utf16z("quiet"))); got != want {
		t.Errorf("%s without initrd: RTMR2 = %s, want %s", path, got, want)
	}
	// An empty command line without an initrd gives no LoadOptions at all.
	events, err = DirectBoot{Kernel: kernel}.Events()
	if err != nil {
		t.Fatal(err)
	}
	if got := FoldRTMRs(events)[2]; got != ([DigestSize]byte{}) {
		t.Errorf("%s with no command line and no initrd: RTMR2 = %x, want zero", path, got)
	}
	if v := KernelVersion(kernel); !strings.HasPrefix(v, strings.TrimPrefix(filepath.Base(path), "vmlinuz-")) {
		t.Errorf("KernelVersion(%s) = %q, want it to start with the file's version", path, v)
	}
}

func TestDirectBootErrors(t *testing.T) {
	notPE := bzHeader(0x7f) // a setup header but no MZ/PE headers
	for _, tc := range []struct {
		name string
		b    DirectBoot
		want error
		msg  string
	}{
		{"empty kernel", DirectBoot{}, ErrNotBzImage, "no \"HdrS\""},
		{"ELF kernel", DirectBoot{Kernel: append([]byte("\x7fELF"), make([]byte, 0x1000)...)}, ErrNotBzImage, "no \"HdrS\""},
		{"bzImage without EFI stub", DirectBoot{Kernel: notPE}, ErrNotPE, "EFI stub"},
		{"truncated PE", DirectBoot{Kernel: append(synthPE([][3]int{{'a', 0x200, 0x2000}}, 0, 0), make([]byte, 0x200)...)[:0x300]}, nil, "HdrS"},
		{"initrd without memory", DirectBoot{Kernel: notPE, Initrd: []byte("x")}, nil, "needs the guest memory size"},
	} {
		_, err := tc.b.Events()
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("DirectBoot{%s}.Events() error = %v, want %v mentioning %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

// FuzzDirectBootEvents feeds arbitrary kernels (setup header and PE/COFF
// parsing) through the whole RTMR1/RTMR2 computation: errors, never panics.
func FuzzDirectBootEvents(f *testing.F) {
	pe := synthPE([][3]int{{'a', 0x200, 0x1000}}, 0, 8)
	copy(pe[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(pe[0x206:], 0x020f)
	pe[0x211] = 1
	f.Add(pe, int64(-1), uint64(0))
	f.Add(pe, int64(4096), uint64(1<<30))
	f.Add(bzHeader(0x7f), int64(10), uint64(3<<30))
	f.Fuzz(func(t *testing.T, kernel []byte, initrdSize int64, mem uint64) {
		if _, err := PatchKernelSetup(kernel, initrdSize%(1<<33), mem); err != nil {
			return
		}
		var initrd []byte
		if initrdSize >= 0 {
			initrd = make([]byte, initrdSize%4096)
		}
		DirectBoot{Kernel: kernel, Initrd: initrd, Cmdline: "x", MemorySize: mem}.Events() //nolint:errcheck
		KernelVersion(kernel)
	})
}

func TestParseMemorySize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"4096", 4 << 30}, {"4G", 4 << 30}, {"4g", 4 << 30}, {"4GiB", 4 << 30}, {"2048M", 2 << 30},
		{"512K", 512 << 10}, {"1T", 1 << 40}, {"", 0}, {"0", 0}, {"4X", 0}, {"-1G", 0}, {"G", 0}, {"17T", 0},
	} {
		got, err := ParseMemorySize(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseMemorySize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
