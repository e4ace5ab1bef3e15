//go:build linux

package vindex

import (
	"os"
	"syscall"
)

// chunkFile is a scratch file the map's chunks are mapped from (shared,
// read-write): the Go heap holds none of them, and the kernel keeps the
// pages it has room for resident and writes the others back to the file.
// The map is derived data, rebuilt from the log on every start, so the
// file is removed as soon as it is made and never read back.
type chunkFile struct {
	f    *os.File
	size int64
	maps [][]byte
}

func openChunkFile(dir string) (*chunkFile, error) {
	f, err := os.CreateTemp(dir, ".vindex-map-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return &chunkFile{f: f}, nil
}

// chunk maps n more bytes of the file (n a multiple of the page size).
// When the file cannot grow (the disk is full) it returns nil, and the
// caller takes the chunk from the heap: the space is reserved before it
// is mapped, so a full disk is never a SIGBUS later.
func (c *chunkFile) chunk(n int) []byte {
	if c == nil || n%os.Getpagesize() != 0 {
		return nil
	}
	fd := int(c.f.Fd())
	if err := syscall.Fallocate(fd, 0, c.size, int64(n)); err != nil {
		// A file system without fallocate grows the file sparse: there a
		// disk that fills later can still fault the process.
		if err != syscall.EOPNOTSUPP && err != syscall.ENOSYS {
			return nil
		}
		if err := c.f.Truncate(c.size + int64(n)); err != nil {
			return nil
		}
	}
	b, err := syscall.Mmap(fd, c.size, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	c.size += int64(n)
	c.maps = append(c.maps, b)
	return b
}

// release unmaps the chunks and closes the file: the cleanup of the map
// that owns it, once neither it nor a snapshot of it is reachable.
func (c *chunkFile) release() {
	for _, b := range c.maps {
		syscall.Munmap(b)
	}
	c.f.Close()
}
