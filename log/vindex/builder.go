package vindex

//go:generate sh -c "cd testdata && go run gen.go"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"

	"github.com/attestlog/attestlog/log/statement"
)

// MapVersion names the map function below; an index checkpoint's header
// (statement.IndexCheckpointHeader) carries it.
const MapVersion = 2

// Builder applies the map function to a log's entries, in order. The map
// is derived data: anyone who reads the log can build it, and must get the
// same root at every size.
type Builder struct {
	m    Map
	size uint64
	// releases remembers, for each entry that is a release, its SHA-256
	// and keys: reproductions and revocations are filed under the keys of
	// the release they name. Neither holds a Go pointer, so the garbage
	// collector does not scan them, and with a map file neither is on the
	// heap.
	releases releaseArena
	keys     keyArena
	file     *chunkFile
}

type release struct {
	sha256 [32]byte
	off    uint64 // its keys are keys[off:off+n]
	n      uint32
	ok     uint8 // 1: the entry is a release
	id     uint8 // 1: keys[off] is its identity key (ReleaseKeys)
}

// releaseArena is a release slot per entry index, in fixed-size chunks.
type releaseArena struct{ chunks [][]release }

func (a *releaseArena) set(f *chunkFile, i uint64, r release) {
	for i>>chunkBits >= uint64(len(a.chunks)) {
		a.chunks = append(a.chunks, newChunk[release](f, chunkLen))
	}
	a.chunks[i>>chunkBits][i&chunkMask] = r
}

func (a *releaseArena) get(i uint64) (release, bool) {
	if i>>chunkBits >= uint64(len(a.chunks)) {
		return release{}, false
	}
	r := a.chunks[i>>chunkBits][i&chunkMask]
	return r, r.ok == 1
}

// keyArena is a sequence of keys in fixed-size chunks.
type keyArena struct {
	chunks [][][32]byte
	n      uint64
}

func (a *keyArena) add(f *chunkFile, k [32]byte) {
	if a.n>>chunkBits == uint64(len(a.chunks)) {
		a.chunks = append(a.chunks, newChunk[[32]byte](f, chunkLen))
	}
	a.chunks[a.n>>chunkBits][a.n&chunkMask] = k
	a.n++
}

func (a *keyArena) at(i uint64) [32]byte { return a.chunks[i>>chunkBits][i&chunkMask] }

// NewBuilder returns a builder of the empty log, its map on the heap.
func NewBuilder() *Builder { return &Builder{} }

// NewBuilderFile returns a builder of the empty log whose map lives in a
// scratch file in dir, mapped into memory: the Go heap holds none of it,
// and the kernel keeps resident what it has room for (under a cgroup's
// memory limit, say) and writes the rest back to the file. The file is
// unlinked at once and unmapped when the builder, its map and every
// snapshot are unreachable. Where the file cannot grow, chunks come from
// the heap. Linux only (elsewhere an error).
func NewBuilderFile(dir string) (*Builder, error) {
	f, err := openChunkFile(dir)
	if err != nil {
		return nil, err
	}
	b := &Builder{file: f}
	b.m.s = newStore(f)
	runtime.AddCleanup(b.m.s, func(f *chunkFile) { f.release() }, f)
	return b, nil
}

// Size is the number of entries added.
func (b *Builder) Size() uint64 { return b.size }

// Map is the index of the entries added so far.
func (b *Builder) Map() *Map { return &b.m }

// Root is the index root over the entries added so far.
func (b *Builder) Root() [32]byte { return b.m.Root() }

// Add applies the map function to entry index, which must be Size().
// It returns the keys the entry was filed under.
func (b *Builder) Add(index uint64, entry []byte) ([][32]byte, error) {
	p, err := statement.ParseEntry(entry)
	if err != nil {
		p = nil // unreadable entries are about nothing
	}
	return b.AddParsed(index, entry, p)
}

// AddParsed is Add for an entry already parsed with statement.ParseEntry
// (p nil: it does not parse).
func (b *Builder) AddParsed(index uint64, entry []byte, p *statement.Parsed) ([][32]byte, error) {
	if p != nil && p.Kind == statement.KindRelease {
		return b.AddParsedSum(index, sha256.Sum256(entry), p)
	}
	return b.AddParsedSum(index, [32]byte{}, p)
}

// AddParsedSum is AddParsed for a caller that has the entry's SHA-256,
// sum, already (a release's is recorded; other kinds' is not read).
func (b *Builder) AddParsedSum(index uint64, sum [32]byte, p *statement.Parsed) ([][32]byte, error) {
	if index != b.size {
		return nil, fmt.Errorf("vindex: entry %d added at size %d", index, b.size)
	}
	b.size++
	if p == nil {
		return nil, nil
	}
	switch p.Kind {
	case statement.KindRelease:
		keys := ReleaseKeys(p.Release, p.Statement.Subject)
		r := release{sha256: sum, off: b.keys.n, n: uint32(len(keys)), ok: 1}
		if _, ok := IdentityKey(p.Release); ok {
			r.id = 1
		}
		for _, k := range keys {
			b.keys.add(b.file, k)
			b.m.Add(k, Item{Index: index, Kind: KindRelease})
		}
		b.releases.set(b.file, index, r)
		return keys, nil
	case statement.KindReproduction, statement.KindRevocation:
		r, ok := b.releases.get(p.Ref.Index)
		if !ok || hex.EncodeToString(r.sha256[:]) != p.Ref.SHA256 || p.Ref.Index >= index {
			return nil, nil
		}
		// A revocation under the release's identity only (what it
		// revokes); a reproduction under its lookup keys (what it
		// reproduced), never under the identity.
		lo, hi := r.off, r.off+uint64(r.n)
		item := Item{Index: index, Kind: KindReproduction}
		if p.Kind == statement.KindRevocation {
			if r.id == 0 {
				return nil, nil
			}
			hi, item.Kind = lo+1, KindRevocation
		} else if r.id == 1 {
			lo++
		}
		var keys [][32]byte
		for i := lo; i < hi; i++ {
			k := b.keys.at(i)
			keys = append(keys, k)
			b.m.Add(k, item)
		}
		return keys, nil
	}
	return nil, nil
}
