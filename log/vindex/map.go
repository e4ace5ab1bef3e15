// Package vindex is the log's verifiable index: a map from every
// measurement and artifact digest to the entries about it, built from the
// log by one deterministic function (Builder), committed by index
// checkpoints the log appends to itself (statement.IndexCheckpoint), and
// answering every lookup — present or absent — with a proof (Proof).
//
// After the Verifiable Index design of transparency-dev (vindex), with
// these differences: the map's hashes are domain separated; a value lists
// the kind of each entry, so a client tells revocations from releases
// without fetching them; the map root is committed inside the same
// witnessed log as the entries, so one witnessed checkpoint covers both.
//
// # The map (version 2)
//
// Keys are typed (keys.go): Key(type, digest) = SHA-256("attestlog vindex
// v2 key" || 0x00 || type || 0x00 || digest). A release adds itself under
//   - its identity key (Identity: the platform and every measurement the
//     release fixes), and
//   - a lookup key per value it can be found by: its SNP launch digest;
//     its TDX MRTD, RTMR0-3 and MRCONFIGID (those set and not all zero);
//     the SHA-256, SHA-384 and SHA-512 digests of its subjects
//     (artifacts), each under its own type.
//
// A revocation adds itself under the identity key of the release it
// names, and nowhere else; a reproduction under that release's lookup
// keys, and not under its identity; both only when the named entry is a
// release whose SHA-256 matches. Entries that do not parse and index
// checkpoints add nothing. Values are the entries' (index, kind) pairs,
// ascending by index.
//
// So the value under an identity key lists every release with that
// identity and every revocation of one of them: what a client needs to
// decide "not revoked" (policy.Revokes decides which of them count). A
// digest of one type never reaches a key of another.
//
// # Hashing
//
// A binary trie over the 256 key bits, collapsed so that a subtree with
// one key is that key's leaf and a subtree with none is empty:
//
//	empty    = SHA-256("attestlog vindex v2 empty")
//	leaf     = SHA-256(0x00 || key || valueHash)
//	node     = SHA-256(0x01 || left || right)
//	value    = SHA-256(0x02 || (index uint64 BE || kind byte)...)
//
// Leaves, nodes and the empty hash are separated by their prefix, so a
// proof cannot pass one off as another.
package vindex

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
)

// Kind bytes of value items.
const (
	KindRelease      byte = 'l'
	KindReproduction byte = 'p'
	KindRevocation   byte = 'r'
)

// Item is one entry about a key.
type Item struct {
	Index uint64
	Kind  byte
}

// KindName is the statement kind of an item kind.
func KindName(k byte) string {
	switch k {
	case KindRelease:
		return "release"
	case KindReproduction:
		return "reproduction"
	case KindRevocation:
		return "revocation"
	}
	return fmt.Sprintf("kind-%02x", k)
}

var emptyHash = sha256.Sum256([]byte("attestlog vindex v2 empty"))

// EmptyRoot is the root of the map with no keys.
func EmptyRoot() [32]byte { return emptyHash }

// ValueHash is the hash of a value.
func ValueHash(items []Item) [32]byte {
	h := sha256.New()
	h.Write([]byte{0x02})
	var b [9]byte
	for _, it := range items {
		binary.BigEndian.PutUint64(b[:8], it.Index)
		b[8] = it.Kind
		h.Write(b[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func leafHash(key, vh [32]byte) [32]byte {
	var b [65]byte
	b[0] = 0x00
	copy(b[1:], key[:])
	copy(b[33:], vh[:])
	return sha256.Sum256(b[:])
}

func nodeHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 0x01
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

func bit(k [32]byte, d int) int { return int(k[d/8]>>(7-d%8)) & 1 }

// Map is the index in memory. Add copies the path it changes and never
// modifies a node a Snapshot shares, so a snapshot stays valid (and
// provable, concurrently) while the map grows. A Map itself is not safe
// for concurrent use; a snapshot is, and must not be changed.
type Map struct {
	s      *store
	v      view // a snapshot's: the store's chunks when it was taken
	root   ref
	keys   int
	gen    uint64 // advanced by Snapshot: older nodes are shared, copied on write
	frozen bool
}

// Len is the number of keys.
func (m *Map) Len() int { return m.keys }

func (m *Map) view() *view {
	if m.frozen || m.s == nil {
		return &m.v
	}
	return &m.s.v
}

// Snapshot returns the map as it is now, with its hashes computed: safe
// to Prove from any number of goroutines while m changes. A snapshot of
// a snapshot is itself.
func (m *Map) Snapshot() *Map {
	if m.frozen {
		return m
	}
	m.Root()
	return m.snapshot()
}

// SnapshotUnhashed is Snapshot without computing the hashes first: the
// snapshot's first Root computes them, so that of many snapshots only
// those whose Root is asked for cost a hashing. Until then the snapshot
// is not safe for concurrent use: its first Root must not run
// concurrently with any other use of it, another snapshot's first Root,
// or m's Root (they may share nodes whose hashes are not yet computed).
// After it, the snapshot is as one Snapshot returns.
func (m *Map) SnapshotUnhashed() *Map {
	if m.frozen {
		return m
	}
	return m.snapshot()
}

func (m *Map) snapshot() *Map {
	if m.s == nil {
		return &Map{frozen: true}
	}
	m.s.reclaim()
	m.gen++
	snap := &Map{s: m.s, v: m.s.v, root: m.root, keys: m.keys, gen: m.gen, frozen: true}
	m.s.snapshotTaken(m.gen)
	runtime.AddCleanup(snap, m.s.snapshotGone, m.gen)
	return snap
}

// own returns r if this generation of m made it (nobody shares it),
// marked dirty, else a dirty copy to change, retiring r.
func (m *Map) own(r ref) ref {
	s := m.s
	n := s.v.in(r)
	if n.gen&^dirtyBit == m.gen {
		n.gen |= dirtyBit
		return r
	}
	c := s.newInner(m.gen) // a chunk may be added; n stays where it is
	s.v.in(c).child = n.child
	s.current(m.gen).inners = append(s.current(m.gen).inners, r)
	return c
}

// Add records item under key. An item already present is not added twice.
func (m *Map) Add(key [32]byte, it Item) {
	if m.frozen {
		panic("vindex: Add to a snapshot")
	}
	if m.s == nil {
		m.s = newStore(nil)
	}
	s := m.s
	if s.sinceReclaim++; s.sinceReclaim >= 4096 {
		s.reclaim()
	}
	p := &m.root
	for d := 0; ; d++ {
		r := *p
		switch {
		case r == 0:
			l := s.newLeaf()
			*s.v.lf(l) = leaf{key: key, first: [1]Item{it}, gen: m.gen, n: 1}
			*p = l
			m.keys++
			return
		case r&leafFlag != 0:
			l := s.v.lf(r)
			if l.key == key {
				*p = m.addItem(r, it)
				return
			}
			// Split: push the old leaf down until the keys part.
			in := s.newInner(m.gen)
			s.v.in(in).child[bit(l.key, d)] = r
			*p = in
			p = &s.v.in(in).child[bit(key, d)]
		default:
			c := m.own(r)
			*p = c
			p = &s.v.in(c).child[bit(key, d)]
		}
	}
}

// addItem adds it to leaf r's items, in index order, returning the leaf
// now holding them (r itself when this generation made it).
func (m *Map) addItem(r ref, it Item) ref {
	s := m.s
	l := s.v.lf(r)
	old := s.v.items(l)
	for _, x := range old {
		if x == it {
			return r
		}
	}
	pos := sort.Search(len(old), func(i int) bool { return old[i].Index > it.Index })
	n := l.n + 1
	if n == 0 {
		panic("vindex: too many items under one key")
	}
	owned := l.gen == m.gen
	if owned && l.n > 1 && class(n) == class(l.n) {
		run := s.v.run(class(n), l.off)[:n]
		copy(run[pos+1:], run[pos:n-1])
		run[pos] = it
		l.n = n
		return r
	}
	off := s.newRun(class(n)) // a chunk of runs: l and old stay where they are
	run := s.v.run(class(n), off)[:n]
	copy(run, old[:pos])
	run[pos] = it
	copy(run[pos+1:], old[pos:])
	if l.n > 1 {
		rr := runRef{class: uint8(class(l.n)), off: l.off}
		if owned {
			s.freeRun[rr.class] = append(s.freeRun[rr.class], rr.off)
		} else {
			s.current(m.gen).runs = append(s.current(m.gen).runs, rr)
		}
	}
	if owned {
		l.off, l.n = off, n
		return r
	}
	nl := s.newLeaf()
	*s.v.lf(nl) = leaf{key: l.key, gen: m.gen, off: off, n: n}
	s.current(m.gen).leaves = append(s.current(m.gen).leaves, r)
	return nl
}

// Get returns a copy of the items of key (nil if absent).
func (m *Map) Get(key [32]byte) []Item {
	defer runtime.KeepAlive(m)
	v := m.view()
	r := m.root
	for d := 0; r != 0; d++ {
		if r&leafFlag != 0 {
			l := v.lf(r)
			if l.key == key {
				return append([]Item(nil), v.items(l)...)
			}
			return nil
		}
		r = v.in(r).child[bit(key, d)]
	}
	return nil
}

// sum is the hash of subtree r, computing (and, in the live map, caching)
// the stale ones; a snapshot has none, so its sums only read.
func (v *view) sum(r ref) [32]byte {
	switch {
	case r == 0:
		return emptyHash
	case r&leafFlag != 0:
		l := v.lf(r)
		return leafHash(l.key, ValueHash(v.items(l)))
	}
	n := v.in(r)
	if n.gen&dirtyBit != 0 {
		n.hash = nodeHash(v.sum(n.child[0]), v.sum(n.child[1]))
		n.gen &^= dirtyBit
	}
	return n.hash
}

// Root returns the map's root hash (recomputing only what changed).
func (m *Map) Root() [32]byte {
	defer runtime.KeepAlive(m)
	return m.view().sum(m.root)
}

// Prove returns the items of key and the proof of them (of absence when
// there are none) under Root.
func (m *Map) Prove(key [32]byte) ([]Item, *MapProof) {
	defer runtime.KeepAlive(m)
	m.Root()
	v := m.view()
	pr := &MapProof{}
	r := m.root
	for d := 0; ; d++ {
		switch {
		case r == 0:
			pr.Terminal = TerminalEmpty
			return nil, pr
		case r&leafFlag != 0:
			l := v.lf(r)
			if l.key == key {
				pr.Terminal = TerminalKey
				return append([]Item(nil), v.items(l)...), pr
			}
			pr.Terminal, pr.OtherKey, pr.OtherValue = TerminalOther, l.key, ValueHash(v.items(l))
			return nil, pr
		}
		n := v.in(r)
		b := bit(key, d)
		pr.Siblings = append(pr.Siblings, v.sum(n.child[1-b]))
		r = n.child[b]
	}
}

// Terminal kinds of a MapProof: where the path of the key ends.
const (
	TerminalEmpty byte = 0 // an empty subtree: the key is absent
	TerminalKey   byte = 1 // the key's own leaf: present
	TerminalOther byte = 2 // another key's leaf: the key is absent
)

// MapProof is the path from the root to where a key's path ends.
type MapProof struct {
	// Siblings are the hashes beside the path, from the root down.
	Siblings [][32]byte
	Terminal byte
	// OtherKey and OtherValue are the leaf met for TerminalOther.
	OtherKey, OtherValue [32]byte
}

// MaxDepth bounds a proof's length (the key bits).
const MaxDepth = 256

// Verify checks that under root the value of key is items (absent when
// items is empty).
func (p *MapProof) Verify(root, key [32]byte, items []Item) error {
	d := len(p.Siblings)
	if d > MaxDepth {
		return fmt.Errorf("map proof of depth %d", d)
	}
	var h [32]byte
	switch p.Terminal {
	case TerminalKey:
		if len(items) == 0 {
			return fmt.Errorf("map proof shows the key present, but no entries are claimed")
		}
		h = leafHash(key, ValueHash(items))
	case TerminalEmpty:
		if len(items) != 0 {
			return fmt.Errorf("map proof shows the key absent, but %d entries are claimed", len(items))
		}
		h = emptyHash
	case TerminalOther:
		if len(items) != 0 {
			return fmt.Errorf("map proof shows the key absent, but %d entries are claimed", len(items))
		}
		if p.OtherKey == key {
			return fmt.Errorf("map proof of absence ends at the key's own leaf")
		}
		for i := range d {
			if bit(p.OtherKey, i) != bit(key, i) {
				return fmt.Errorf("map proof of absence ends at a leaf off the key's path")
			}
		}
		h = leafHash(p.OtherKey, p.OtherValue)
	default:
		return fmt.Errorf("map proof terminal %d", p.Terminal)
	}
	for i := d - 1; i >= 0; i-- {
		if bit(key, i) == 0 {
			h = nodeHash(h, p.Siblings[i])
		} else {
			h = nodeHash(p.Siblings[i], h)
		}
	}
	if h != root {
		return fmt.Errorf("map proof does not lead to the index root")
	}
	return nil
}

// Marshal encodes the proof: depth (2 bytes), terminal (1), a bitmap of
// the siblings that are not the empty hash, those siblings, and for
// TerminalOther the other key and value hash.
func (p *MapProof) Marshal() []byte {
	d := len(p.Siblings)
	out := binary.BigEndian.AppendUint16(nil, uint16(d))
	out = append(out, p.Terminal)
	bm := make([]byte, (d+7)/8)
	var hs []byte
	for i, s := range p.Siblings {
		if s != emptyHash {
			bm[i/8] |= 1 << (7 - i%8)
			hs = append(hs, s[:]...)
		}
	}
	out = append(append(out, bm...), hs...)
	if p.Terminal == TerminalOther {
		out = append(append(out, p.OtherKey[:]...), p.OtherValue[:]...)
	}
	return out
}

// ParseMapProof decodes Marshal's encoding strictly.
func ParseMapProof(b []byte) (*MapProof, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("map proof too short")
	}
	d := int(binary.BigEndian.Uint16(b))
	if d > MaxDepth {
		return nil, fmt.Errorf("map proof of depth %d", d)
	}
	p := &MapProof{Terminal: b[2]}
	if p.Terminal > TerminalOther {
		return nil, fmt.Errorf("map proof terminal %d", p.Terminal)
	}
	b = b[3:]
	nb := (d + 7) / 8
	if len(b) < nb {
		return nil, fmt.Errorf("map proof truncated")
	}
	bm, b := b[:nb], b[nb:]
	if d%8 != 0 && bm[nb-1]&(0xff>>(d%8)) != 0 {
		return nil, fmt.Errorf("map proof bitmap has bits past its depth")
	}
	for i := range d {
		var s [32]byte
		if bm[i/8]&(1<<(7-i%8)) == 0 {
			s = emptyHash
		} else {
			if len(b) < 32 {
				return nil, fmt.Errorf("map proof truncated")
			}
			copy(s[:], b)
			b = b[32:]
			if s == emptyHash {
				return nil, fmt.Errorf("map proof spells the empty hash out")
			}
		}
		p.Siblings = append(p.Siblings, s)
	}
	if p.Terminal == TerminalOther {
		if len(b) < 64 {
			return nil, fmt.Errorf("map proof truncated")
		}
		copy(p.OtherKey[:], b)
		copy(p.OtherValue[:], b[32:])
		b = b[64:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("map proof has %d trailing bytes", len(b))
	}
	return p, nil
}
