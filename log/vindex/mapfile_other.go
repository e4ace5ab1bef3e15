//go:build !unix

package vindex

import "errors"

// chunkFile is not available here: maps live on the Go heap.
type chunkFile struct{}

func openChunkFile(string) (*chunkFile, error) {
	return nil, errors.New("vindex: a map file needs a unix system")
}

func (*chunkFile) chunk(int) []byte { return nil }

func (*chunkFile) release() {}
