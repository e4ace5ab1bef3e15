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
// # The map (version 1)
//
// Keys are SHA-256(raw digest bytes): a release adds its SNP launch
// digest, its TDX MRTD, RTMR0-3 and MRCONFIGID (those set), and the
// SHA-256, SHA-384 and SHA-512 digests of its subjects (artifacts), except
// all-zero values (an unused register measures nothing). A
// reproduction or revocation adds itself under every key of the release
// it names, when that entry is a release and the SHA-256 matches. Entries
// that do not parse and index checkpoints add nothing. Values are the
// entries' (index, kind) pairs, ascending by index.
//
// # Hashing
//
// A binary trie over the 256 key bits, collapsed so that a subtree with
// one key is that key's leaf and a subtree with none is empty:
//
//	empty    = SHA-256("attestlog vindex v1 empty")
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

var emptyHash = sha256.Sum256([]byte("attestlog vindex v1 empty"))

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

// Key is the map key of a raw digest.
func Key(digest []byte) [32]byte { return sha256.Sum256(digest) }

type node struct {
	gen   uint64 // the map generation that made it: mutable until a Snapshot
	child [2]*node
	leaf  bool
	key   [32]byte
	items []Item
	hash  [32]byte
	dirty bool
}

// Map is the index in memory. Add copies the path it changes and never
// modifies a node a Snapshot shares, so a snapshot stays valid (and
// provable, concurrently) while the map grows. A Map itself is not safe
// for concurrent use.
type Map struct {
	root *node
	keys int
	gen  uint64 // advanced by Snapshot: older nodes are shared, copied on write
}

// Len is the number of keys.
func (m *Map) Len() int { return m.keys }

// Snapshot returns the map as it is now, with its hashes computed: safe
// to Prove from any number of goroutines while m changes.
func (m *Map) Snapshot() *Map {
	m.Root()
	m.gen++
	return &Map{root: m.root, keys: m.keys, gen: m.gen}
}

// own returns n if this generation of m made it (nobody shares it), else
// a copy to change.
func (m *Map) own(n *node) *node {
	if n.gen == m.gen {
		n.dirty = true
		return n
	}
	c := *n
	c.gen, c.dirty = m.gen, true
	return &c
}

// Add records item under key. An item already present is not added twice.
func (m *Map) Add(key [32]byte, it Item) {
	p := &m.root
	for d := 0; ; d++ {
		n := *p
		switch {
		case n == nil:
			*p = &node{gen: m.gen, leaf: true, key: key, items: []Item{it}, dirty: true}
			m.keys++
			return
		case n.leaf && n.key == key:
			for _, x := range n.items {
				if x == it {
					return
				}
			}
			shared := n.gen != m.gen
			c := m.own(n)
			if shared {
				c.items = append(make([]Item, 0, len(n.items)+1), n.items...)
			}
			c.items = append(c.items, it)
			sort.Slice(c.items, func(i, j int) bool { return c.items[i].Index < c.items[j].Index })
			*p = c
			return
		case n.leaf:
			// Split: push the old leaf down until the keys part.
			inner := &node{gen: m.gen, dirty: true}
			inner.child[bit(n.key, d)] = n
			*p = inner
			p = &inner.child[bit(key, d)]
		default:
			c := m.own(n)
			*p = c
			p = &c.child[bit(key, d)]
		}
	}
}

// Get returns the items of key (nil if absent).
func (m *Map) Get(key [32]byte) []Item {
	n := m.root
	for d := 0; n != nil; d++ {
		if n.leaf {
			if n.key == key {
				return n.items
			}
			return nil
		}
		n = n.child[bit(key, d)]
	}
	return nil
}

func (n *node) sum() [32]byte {
	if n == nil {
		return emptyHash
	}
	if n.dirty {
		if n.leaf {
			n.hash = leafHash(n.key, ValueHash(n.items))
		} else {
			n.hash = nodeHash(n.child[0].sum(), n.child[1].sum())
		}
		n.dirty = false
	}
	return n.hash
}

// Root returns the map's root hash (recomputing only what changed).
func (m *Map) Root() [32]byte { return m.root.sum() }

// Prove returns the items of key and the proof of them (of absence when
// there are none) under Root.
func (m *Map) Prove(key [32]byte) ([]Item, *MapProof) {
	m.Root()
	pr := &MapProof{}
	n := m.root
	for d := 0; ; d++ {
		switch {
		case n == nil:
			pr.Terminal = TerminalEmpty
			return nil, pr
		case n.leaf && n.key == key:
			pr.Terminal = TerminalKey
			return n.items, pr
		case n.leaf:
			pr.Terminal, pr.OtherKey, pr.OtherValue = TerminalOther, n.key, ValueHash(n.items)
			return nil, pr
		}
		b := bit(key, d)
		pr.Siblings = append(pr.Siblings, n.child[1-b].sum())
		n = n.child[b]
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
