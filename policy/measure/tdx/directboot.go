package tdx

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-eventlog/tcg"
)

// QEMU direct kernel boot (-kernel, -initrd, -append) of a TDVF guest, as
// measured into RTMR1 and RTMR2.
//
// QEMU's x86_load_linux (hw/i386/x86.c) patches the bzImage setup header
// (boot loader type, heap end, command line address and, with an initrd,
// the initrd's load address and size) and hands the patched image to TDVF
// through fw_cfg. TDVF's QemuKernelLoaderFsDxe loads it with LoadImage,
// which measures its Authenticode hash (EV_EFI_BOOT_SERVICES_APPLICATION,
// PCR 4 = RTMR1); it sets the image's LoadOptions to the command line, with
// " initrd=initrd" appended when there is an initrd, widened to UTF-16 and
// NUL-terminated (X86QemuLoadImageLib); signals ReadyToBoot ("Calling EFI
// Application from Boot Option" and the RTMR1 separator) and starts the
// kernel. The Linux EFI stub measures the LoadOptions and the initrd it
// reads through the LINUX_EFI_INITRD_MEDIA_GUID device path as
// EV_EVENT_TAG events into PCR 9 = RTMR2 (efi_convert_cmdline,
// efi_load_initrd), and ExitBootServices adds the two final RTMR1 actions.
// The stub measures through the CC measurement protocol, which a TD without
// a vTPM offers, only from Linux 6.9 (or kernels with that change
// backported); with older stubs RTMR2 stays zero.

// QEMUACPIDataSize is the room QEMU's pc and q35 machines reserve below the
// top of low memory for ACPI data (pcmc->acpi_data_size = 0x20000 + 0x8000);
// the initrd is placed below it.
const QEMUACPIDataSize = 0x28000

// Linux boot protocol setup header fields (Documentation/arch/x86/boot.rst).
const (
	setupHeaderMagic   = 0x202 // "HdrS"
	setupVersion       = 0x206
	setupKernelVersion = 0x20e
	setupLoaderType    = 0x210
	setupLoadFlags     = 0x211
	setupRamdiskImage  = 0x218
	setupRamdiskSize   = 0x21c
	setupHeapEndPtr    = 0x224
	setupCmdLinePtr    = 0x228
	setupInitrdAddrMax = 0x22c
	setupXLoadFlags    = 0x236
	setupHeaderEnd     = 0x268

	loadedHigh            = 0x01
	canUseHeap            = 0x80
	xlfCanBeLoadedAbove4G = 0x40
)

// ErrNotBzImage is wrapped by the errors for a kernel that is not a Linux
// bzImage QEMU can boot directly.
var ErrNotBzImage = errors.New("not a Linux bzImage")

// q35Below4G returns the guest RAM QEMU's q35 machine maps below 4 GiB for
// memorySize bytes of RAM (pc_q35_init without max-ram-below-4g): all of it
// up to 2.75 GiB, else 2 GiB.
func q35Below4G(memorySize uint64) uint64 {
	lowmem := uint64(0xb0000000)
	if memorySize >= 0xb0000000 {
		lowmem = 0x80000000
	}
	return min(memorySize, lowmem)
}

// PatchKernelSetup returns a copy of the bzImage kernel with its setup
// header patched as QEMU's x86_load_linux patches it for direct boot of a
// q35 guest with memorySize bytes of RAM. initrdSize < 0 means no -initrd;
// otherwise QEMU writes the initrd's size and the load address it picks
// (below the top of low memory less QEMUACPIDataSize, page aligned), so the
// result depends on memorySize only when there is an initrd.
func PatchKernelSetup(kernel []byte, initrdSize int64, memorySize uint64) ([]byte, error) {
	if len(kernel) > MaxKernelSize {
		return nil, fmt.Errorf("%w: kernel of %d bytes exceeds the %d-byte limit", ErrNotBzImage, len(kernel), MaxKernelSize)
	}
	if len(kernel) < setupHeaderEnd || string(kernel[setupHeaderMagic:setupHeaderMagic+4]) != "HdrS" {
		return nil, fmt.Errorf("%w: no \"HdrS\" setup header at offset %#x", ErrNotBzImage, setupHeaderMagic)
	}
	protocol := binary.LittleEndian.Uint16(kernel[setupVersion:])
	if protocol < 0x202 || kernel[setupLoadFlags]&loadedHigh == 0 {
		return nil, fmt.Errorf("%w: boot protocol %#x, loadflags %#x (want a bzImage with protocol 2.02 or later)", ErrNotBzImage, protocol, kernel[setupLoadFlags])
	}
	k := bytes.Clone(kernel)
	const realAddr, cmdlineAddr = 0x10000, 0x20000
	k[setupLoaderType] = 0xb0 // QEMU
	k[setupLoadFlags] |= canUseHeap
	binary.LittleEndian.PutUint16(k[setupHeapEndPtr:], cmdlineAddr-realAddr-0x200)
	binary.LittleEndian.PutUint32(k[setupCmdLinePtr:], cmdlineAddr)
	if initrdSize < 0 {
		return k, nil
	}
	var initrdMax uint64
	switch {
	case protocol >= 0x20c && binary.LittleEndian.Uint16(k[setupXLoadFlags:])&xlfCanBeLoadedAbove4G != 0:
		initrdMax = 0xffffffff
	case protocol >= 0x203:
		initrdMax = uint64(binary.LittleEndian.Uint32(k[setupInitrdAddrMax:]))
		if initrdMax == 0 {
			initrdMax = 0x37ffffff
		}
	default:
		initrdMax = 0x37ffffff
	}
	below4G := q35Below4G(memorySize)
	if below4G <= QEMUACPIDataSize {
		return nil, fmt.Errorf("guest memory of %d bytes leaves no room for an initrd below the ACPI data", memorySize)
	}
	if initrdMax >= below4G-QEMUACPIDataSize {
		initrdMax = below4G - QEMUACPIDataSize - 1
	}
	if uint64(initrdSize) >= initrdMax {
		return nil, fmt.Errorf("initrd of %d bytes does not fit below %#x in %d bytes of guest memory (QEMU refuses it)", initrdSize, initrdMax, memorySize)
	}
	binary.LittleEndian.PutUint32(k[setupRamdiskImage:], uint32((initrdMax-uint64(initrdSize))&^0xfff))
	binary.LittleEndian.PutUint32(k[setupRamdiskSize:], uint32(initrdSize))
	return k, nil
}

// KernelVersion returns the version string a bzImage carries (the setup
// header's kernel_version), or "" if it has none.
func KernelVersion(kernel []byte) string {
	if len(kernel) < setupHeaderEnd || string(kernel[setupHeaderMagic:setupHeaderMagic+4]) != "HdrS" {
		return ""
	}
	off := int(binary.LittleEndian.Uint16(kernel[setupKernelVersion:]))
	if off == 0 || off+0x200 >= len(kernel) {
		return ""
	}
	s := kernel[off+0x200 : min(len(kernel), off+0x200+256)]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(s)
}

// LoadOptions returns the bytes TDVF passes as the kernel's LoadOptions for
// the QEMU command line cmdline (X86QemuLoadImageLib): each byte widened to
// a UTF-16 code unit, " initrd=initrd" appended when there is a non-empty
// initrd, and a UTF-16 NUL. It returns nil (no LoadOptions, so nothing is
// measured) for an empty command line without an initrd.
func LoadOptions(cmdline string, initrd bool) []byte {
	s := cmdline
	if initrd {
		s += " initrd=initrd"
	}
	if s == "" {
		return nil
	}
	b := make([]byte, 0, 2*len(s)+2)
	for i := range len(s) {
		b = append(b, s[i], 0)
	}
	return append(b, 0, 0)
}

// A DirectBoot is a QEMU direct kernel boot of a TDVF guest.
type DirectBoot struct {
	// Kernel is the bzImage given to -kernel; it must have an EFI stub
	// (be a PE/COFF image) for TDVF to load and measure it.
	Kernel []byte
	// Initrd is the file given to -initrd; nil means none. An empty file
	// is patched into the setup header but neither appended to the command
	// line nor measured.
	Initrd []byte
	// Cmdline is the -append string.
	Cmdline string
	// MemorySize is the guest RAM (-m) in bytes. It matters only with an
	// initrd, whose load address QEMU derives from it.
	MemorySize uint64
}

// Events returns the RTMR1 and RTMR2 events of b, in the order TDVF and the
// Linux EFI stub extend them.
func (b DirectBoot) Events() ([]BootEvent, error) {
	initrdSize := int64(-1)
	if b.Initrd != nil {
		if len(b.Initrd) > MaxInitrdSize {
			return nil, fmt.Errorf("initrd of %d bytes exceeds the %d-byte limit", len(b.Initrd), MaxInitrdSize)
		}
		if b.MemorySize == 0 {
			return nil, errors.New("an initrd needs the guest memory size: QEMU writes the initrd's load address, derived from it, into the kernel's setup header before TDVF measures the kernel")
		}
		initrdSize = int64(len(b.Initrd))
	}
	k, err := PatchKernelSetup(b.Kernel, initrdSize, b.MemorySize)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	kd, err := AuthenticodeDigest(k, sha512.New384())
	if err != nil {
		return nil, fmt.Errorf("kernel (TDVF loads only kernels with an EFI stub): %w", err)
	}
	events := []BootEvent{
		{RTMR: 1, Type: uint32(tcg.EFIBootServicesApplication), Description: "kernel (Authenticode of the QEMU-patched image)", Digest: [DigestSize]byte(kd)},
		actionEvent(1, ActionCallingEFIApplication),
		separatorEvent(1),
	}
	hasInitrd := len(b.Initrd) > 0
	if opts := LoadOptions(b.Cmdline, hasInitrd); opts != nil {
		events = append(events, event(2, tcg.EventTag, "LOADED_IMAGE::LoadOptions", opts))
	}
	if hasInitrd {
		events = append(events, event(2, tcg.EventTag, "Linux initrd", b.Initrd))
	}
	return append(events,
		actionEvent(1, ActionExitBootServices),
		actionEvent(1, ActionExitBootServicesOK),
	), nil
}

// MaxInitrdSize bounds the initrds accepted (QEMU's limit is below 4 GiB).
const MaxInitrdSize = 1 << 32

// ParseMemorySize parses a size as QEMU's -m does: a bare number is MiB,
// suffixes K, M, G and T (optionally followed by B or iB) are powers of 1024.
func ParseMemorySize(s string) (uint64, error) {
	num := strings.TrimRight(s, "KMGTBkmgtbi")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i"))
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, errors.New("not a positive size (e.g. 4G, 4096M, 4096)")
	}
	shift := map[string]uint{"": 20, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (want K, M, G or T)", s[len(num):])
	}
	if n > (1<<44)>>sh { // 16 TiB
		return 0, errors.New("larger than 16 TiB")
	}
	return n << sh, nil
}
