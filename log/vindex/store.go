package vindex

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"unsafe"
)

// The map's nodes live in arenas of fixed-size chunks holding no Go
// pointers: the garbage collector neither scans nor frees them one by
// one, so a map of millions of keys costs it nothing per cycle (the
// pointer-linked trie this replaced was most of a growing log's GC work).
// A node is named by a ref, its slot in its arena.
//
// Path copying still keeps snapshots valid while the map grows. A node a
// snapshot may share is never changed: Add copies it and retires the
// original to the generation that copied it. A retired slot is reused
// once no snapshot that can reach it is alive; snapshots are counted by
// generation, and a snapshot's count drops when the garbage collector
// finds it unreachable (runtime.AddCleanup).

// ref names a node: 0 is the empty subtree, a ref with leafFlag a leaf,
// any other an inner node.
type ref uint32

const leafFlag ref = 1 << 31

// dirtyBit, in an inner node's gen, marks its hash as stale.
const dirtyBit = 1 << 63

// inner is a trie node with two subtrees (48 bytes).
type inner struct {
	hash  [32]byte
	child [2]ref
	gen   uint64 // the generation that made it, and dirtyBit
}

// leaf is a key and its items (64 bytes): one item inline, more in a run
// of the items arena.
type leaf struct {
	key   [32]byte
	first [1]Item
	gen   uint64
	off   uint32 // with n > 1: the run, in the arena of class(n)
	n     uint32
}

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
	// runChunk is the least number of items in a chunk of runs.
	runChunk = 4096
	// maxClass is the largest run class: a run of class c holds 1<<c items.
	maxClass = 32
)

// view is the chunk directories of a store. A snapshot keeps a copy of
// them as they were: chunks never move, and the writer appends to a
// directory only past the length a snapshot holds.
type view struct {
	inners [][]inner
	leaves [][]leaf
	runs   [maxClass + 1][][]Item
}

func (v *view) in(r ref) *inner { return &v.inners[r>>chunkBits][r&chunkMask] }

func (v *view) lf(r ref) *leaf {
	r &^= leafFlag
	return &v.leaves[r>>chunkBits][r&chunkMask]
}

// class is the run class holding n > 1 items.
func class(n uint32) int { return bits.Len32(n - 1) }

func runsPerChunk(c int) int { return max(1, runChunk>>c) }

func (v *view) run(c int, off uint32) []Item {
	per := runsPerChunk(c)
	ch, i := int(off)/per, int(off)%per
	return v.runs[c][ch][i<<c : (i+1)<<c]
}

// items are the items of l, in the store's memory (not to be kept).
func (v *view) items(l *leaf) []Item {
	if l.n == 1 {
		return l.first[:]
	}
	return v.run(class(l.n), l.off)[:l.n]
}

type runRef struct {
	class uint8
	off   uint32
}

// retired are the slots a generation copied away from: reusable once no
// snapshot of that generation or older is alive.
type retired struct {
	gen    uint64
	inners []ref
	leaves []ref
	runs   []runRef
}

type liveGen struct {
	gen uint64
	n   int
}

// store is the memory of one map and its snapshots.
type store struct {
	file         *chunkFile // nil: chunks on the heap
	v            view
	nInner       uint32 // fresh slots: slot 0 of inners is never used (ref 0 is empty)
	nLeaf        uint32
	nRun         [maxClass + 1]uint32
	freeInner    []ref
	freeLeaf     []ref
	freeRun      [maxClass + 1][]uint32
	retired      []retired // oldest first
	sinceReclaim int

	mu   sync.Mutex // guards live, which cleanups change
	live []liveGen  // snapshots not yet collected, by generation
}

func newStore(f *chunkFile) *store {
	return &store{file: f, nInner: 1, v: view{inners: [][]inner{newChunk[inner](f, chunkLen)}}}
}

// newChunk returns n zeroed Ts mapped from f, or from the heap without
// one (or when f cannot grow). T holds no pointers.
func newChunk[T any](f *chunkFile, n int) []T {
	var zero T
	if b := f.chunk(n * int(unsafe.Sizeof(zero))); b != nil {
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
	}
	return make([]T, n)
}

// slot takes a free slot of an arena, or its next fresh one (adding a
// chunk to its directory when the last is full).
func slot[T any](free *[]ref, next *uint32, dir *[][]T, f *chunkFile) ref {
	if n := len(*free); n > 0 {
		r := (*free)[n-1]
		*free = (*free)[:n-1]
		return r
	}
	if *next == uint32(leafFlag) {
		panic("vindex: the map is full")
	}
	r := ref(*next)
	*next++
	if int(r>>chunkBits) == len(*dir) {
		*dir = append(*dir, newChunk[T](f, chunkLen))
	}
	return r
}

func (s *store) newInner(gen uint64) ref {
	r := slot(&s.freeInner, &s.nInner, &s.v.inners, s.file)
	*s.v.in(r) = inner{gen: gen | dirtyBit}
	return r
}

// newLeaf is a leaf's slot, as a ref with leafFlag (retired leaves are
// freed as such refs).
func (s *store) newLeaf() ref { return slot(&s.freeLeaf, &s.nLeaf, &s.v.leaves, s.file) | leafFlag }

func (s *store) newRun(c int) uint32 {
	if n := len(s.freeRun[c]); n > 0 {
		off := s.freeRun[c][n-1]
		s.freeRun[c] = s.freeRun[c][:n-1]
		return off
	}
	off := s.nRun[c]
	s.nRun[c]++
	if per := runsPerChunk(c); int(off)/per == len(s.v.runs[c]) {
		s.v.runs[c] = append(s.v.runs[c], newChunk[Item](s.file, per<<c))
	}
	return off
}

// current is the retired set of generation gen (the newest).
func (s *store) current(gen uint64) *retired {
	if n := len(s.retired); n > 0 && s.retired[n-1].gen == gen {
		return &s.retired[n-1]
	}
	s.retired = append(s.retired, retired{gen: gen})
	return &s.retired[len(s.retired)-1]
}

// snapshotTaken counts a snapshot of generation gen alive.
func (s *store) snapshotTaken(gen uint64) {
	s.mu.Lock()
	s.live = append(s.live, liveGen{gen: gen, n: 1})
	s.mu.Unlock()
}

// snapshotGone is the cleanup of a snapshot of generation gen.
func (s *store) snapshotGone(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.live), func(i int) bool { return s.live[i].gen >= gen })
	if i < len(s.live) && s.live[i].gen == gen {
		s.live[i].n--
	}
}

// reclaim makes reusable the slots no live snapshot can reach.
func (s *store) reclaim() {
	s.sinceReclaim = 0
	if len(s.retired) == 0 {
		return
	}
	s.mu.Lock()
	i := 0
	for i < len(s.live) && s.live[i].n == 0 {
		i++
	}
	s.live = append(s.live[:0], s.live[i:]...)
	oldest := uint64(math.MaxUint64)
	if len(s.live) > 0 {
		oldest = s.live[0].gen
	}
	s.mu.Unlock()
	// A slot retired in generation g is reachable from the snapshots of
	// generations up to g.
	j := 0
	for ; j < len(s.retired) && s.retired[j].gen < oldest; j++ {
		r := &s.retired[j]
		s.freeInner = append(s.freeInner, r.inners...)
		s.freeLeaf = append(s.freeLeaf, r.leaves...)
		for _, rr := range r.runs {
			s.freeRun[rr.class] = append(s.freeRun[rr.class], rr.off)
		}
	}
	s.retired = append(s.retired[:0], s.retired[j:]...)
}
