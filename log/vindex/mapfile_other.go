//go:build !linux

package vindex

import "errors"

// chunkFile is not available here: maps live on the Go heap.
type chunkFile struct{}

func openChunkFile(string) (*chunkFile, error) {
	return nil, errors.New("vindex: a map file needs Linux")
}

func (*chunkFile) chunk(int) []byte { return nil }

func (*chunkFile) release() {}
