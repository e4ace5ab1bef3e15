//go:build linux

package vindex

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// TestBuilderFile: a builder whose map lives in a scratch file gives the
// roots, items and proofs of one on the heap, at every size, and keeps
// its map off the Go heap.
func TestBuilderFile(t *testing.T) {
	entries := benchEntries(t, 6000)
	before := heapAlloc()
	heapB := NewBuilder()
	for i, e := range entries {
		heapB.Add(uint64(i), e)
	}
	heapBytes := heapAlloc() - before
	before = heapAlloc()
	fileB, err := NewBuilderFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var snaps []*Map
	var roots [][32]byte
	for i, e := range entries {
		if _, err := fileB.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			snaps = append(snaps, fileB.Map().Snapshot())
			roots = append(roots, fileB.Root())
		}
	}
	after := heapAlloc()
	fileBytes := after - min(before, after)
	if fileB.Root() != heapB.Root() {
		t.Fatal("the file map's root differs from the heap map's")
	}
	if fileB.file.size == 0 {
		t.Fatal("nothing was mapped from the file")
	}
	// A revocation is filed under the identity of the release it names
	// (the first of its keys), and under none of its lookup keys.
	p, _ := statement.ParseEntry(entries[8]) // revoked by entry 9
	for i, k := range ReleaseKeys(p.Release, p.Statement.Subject) {
		got, want := fileB.Map().Get(k), heapB.Map().Get(k)
		if n := map[bool]int{true: 2, false: 1}[i == 0]; !equalItems(got, want) || len(got) != n || (i == 0) != (got[n-1].Kind == KindRevocation) {
			t.Fatalf("items of the revoked release's key %d: file %v, heap %v", i, got, want)
		}
	}
	for i, s := range snaps {
		if s.Root() != roots[i] {
			t.Fatalf("snapshot %d's root moved", i)
		}
		k := ReleaseKeys(p.Release, p.Statement.Subject)[0]
		items, pr := s.Prove(k)
		if err := pr.Verify(roots[i], k, items); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Go heap: %d bytes with the map on the heap, %d with it in the file (%d bytes mapped)", heapBytes, fileBytes, fileB.file.size)
	if fileBytes*4 > heapBytes {
		t.Fatalf("with the map in a file the builder still holds %d of the heap's %d bytes", fileBytes, heapBytes)
	}
	runtime.KeepAlive(heapB)
	runtime.KeepAlive(snaps)
}

// TestChunkFileCannotGrow: where the file cannot grow, chunks come from
// the heap and the map goes on.
func TestChunkFileCannotGrow(t *testing.T) {
	b, err := NewBuilderFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b.file.f.Close() // every later Fallocate, Truncate and Mmap fails
	size := b.file.size
	for i, e := range benchEntries(t, 300) {
		if _, err := b.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	ref := NewBuilder()
	for i, e := range benchEntries(t, 300) {
		ref.Add(uint64(i), e)
	}
	if b.file.size != size {
		t.Fatal("the closed file grew")
	}
	if b.Map().Len() != ref.Map().Len() || b.Map().Len() == 0 {
		t.Fatalf("the map holds %d keys, want %d", b.Map().Len(), ref.Map().Len())
	}
}

// TestBuilderFileReleased: a dropped builder's file is unmapped once it
// is collected, so an auditor that rebuilds its replay again and again
// does not leak mappings (the descriptor alone os.File would close).
func TestBuilderFileReleased(t *testing.T) {
	mapped := func() int {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skip("no /proc/self/maps")
		}
		return strings.Count(string(b), ".vindex-map-")
	}
	entries := benchEntries(t, 50)
	dir := t.TempDir()
	before := mapped()
	var last *Builder
	for range 40 {
		b, err := NewBuilderFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries {
			b.Add(uint64(i), e)
		}
		_ = b.Map().Snapshot()
		last = b
	}
	if mapped() <= before {
		t.Fatal("a live builder maps nothing from its file")
	}
	alive := mapped() // the last builder's, at least
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if mapped()-before <= 8 {
			break
		}
	}
	if n := mapped() - before; n > 8 {
		t.Fatalf("%d mappings of map files remain (%d while building): the 39 dropped builders' files are not unmapped", n, alive-before)
	}
	if mapped() == before {
		t.Fatal("the live builder's mappings went too")
	}
	runtime.KeepAlive(last)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d map files left in the directory: each is unlinked when made", len(ents))
	}
}
