package snp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/attestlog/attestlog/policy/measure/ovmf"
)

// KernelHashes are the SHA-256 digests of a measured direct boot's inputs, as
// QEMU puts them in the SEV hashes table (target/i386/sev.c,
// sev_add_kernel_loader_hashes) and OVMF's BlobVerifierLibSevHashes checks
// them.
type KernelHashes struct {
	Kernel  [sha256.Size]byte // SHA-256 of the kernel file as given to QEMU's -kernel
	Initrd  [sha256.Size]byte // SHA-256 of the initrd file (of nothing when there is none)
	Cmdline [sha256.Size]byte // SHA-256 of the command line and its NUL terminator
}

// HashKernel hashes the inputs of a measured direct boot. initrd may be nil
// (no -initrd: the hash of zero bytes). The command line is hashed with its
// terminating NUL, and an empty one as a lone NUL, as QEMU does.
func HashKernel(kernel, initrd io.Reader, cmdline string) (*KernelHashes, error) {
	var k KernelHashes
	h := sha256.New()
	if _, err := io.Copy(h, kernel); err != nil {
		return nil, fmt.Errorf("hashing kernel: %w", err)
	}
	h.Sum(k.Kernel[:0])
	h.Reset()
	if initrd != nil {
		if _, err := io.Copy(h, initrd); err != nil {
			return nil, fmt.Errorf("hashing initrd: %w", err)
		}
	}
	h.Sum(k.Initrd[:0])
	k.Cmdline = sha256.Sum256(append([]byte(cmdline), 0))
	return &k, nil
}

// GUIDs of the SEV hashes table (QEMU target/i386/sev.c).
var (
	hashTableHeaderGUID = ovmf.MustParseGUID("9438d606-4f22-4cc9-b479-a793d411fd21")
	kernelEntryGUID     = ovmf.MustParseGUID("4de79437-abd2-427f-b835-d5b172d2045b")
	initrdEntryGUID     = ovmf.MustParseGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
	cmdlineEntryGUID    = ovmf.MustParseGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
)

const (
	hashEntrySize       = 16 + 2 + sha256.Size       // GUID, length, hash
	hashTableSize       = 16 + 2 + 3*hashEntrySize   // GUID, length, three entries
	paddedHashTableSize = (hashTableSize + 15) &^ 15 // QEMU pads the table to 16 bytes
)

// Table returns the SEV hashes table QEMU writes for k, padded to a multiple
// of 16 bytes: a header (GUID and length), then the command line, initrd and
// kernel entries (each a GUID, a length and the SHA-256).
func (k *KernelHashes) Table() []byte {
	t := make([]byte, paddedHashTableSize)
	copy(t[0:16], hashTableHeaderGUID[:])
	binary.LittleEndian.PutUint16(t[16:], hashTableSize)
	off := 18
	for _, e := range []struct {
		guid ovmf.GUID
		hash *[sha256.Size]byte
	}{{cmdlineEntryGUID, &k.Cmdline}, {initrdEntryGUID, &k.Initrd}, {kernelEntryGUID, &k.Kernel}} {
		copy(t[off:], e.guid[:])
		binary.LittleEndian.PutUint16(t[off+16:], hashEntrySize)
		copy(t[off+18:], e.hash[:])
		off += hashEntrySize
	}
	return t
}

// page returns the kernel-hashes page: zeros with the table at offset.
func (k *KernelHashes) page(offset int) (*[pageSize]byte, error) {
	if offset+paddedHashTableSize > pageSize {
		return nil, fmt.Errorf("%w: SEV hash table at page offset %#x would cross the page", ovmf.ErrMalformed, offset)
	}
	var p [pageSize]byte
	copy(p[offset:], k.Table())
	return &p, nil
}
