package vindex

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// refRoot computes the root from scratch, straight from the definition.
func refRoot(keys [][32]byte, vals map[[32]byte][]Item, d int) [32]byte {
	switch len(keys) {
	case 0:
		return emptyHash
	case 1:
		return leafHash(keys[0], ValueHash(vals[keys[0]]))
	}
	var l, r [][32]byte
	for _, k := range keys {
		if bit(k, d) == 0 {
			l = append(l, k)
		} else {
			r = append(r, k)
		}
	}
	return nodeHash(refRoot(l, vals, d+1), refRoot(r, vals, d+1))
}

func randKey() [32]byte {
	var k [32]byte
	rand.Read(k[:])
	return k
}

// TestMapMatchesDefinition: the incremental root equals the root from
// the definition after every insertion, whatever the order.
func TestMapMatchesDefinition(t *testing.T) {
	var m Map
	vals := map[[32]byte][]Item{}
	var keys [][32]byte
	// Keys sharing long prefixes exercise the splits.
	base := randKey()
	for i := range 200 {
		k := randKey()
		if i%4 == 0 {
			k = base
			k[31] ^= byte(i)
			k[30] ^= byte(i >> 8)
		}
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		it := Item{Index: uint64(i), Kind: KindRelease}
		vals[k] = append(vals[k], it)
		m.Add(k, it)
		if i%7 == 0 || i == 199 {
			if got, want := m.Root(), refRoot(keys, vals, 0); got != want {
				t.Fatalf("after %d insertions: root %x, definition %x", i+1, got, want)
			}
		}
	}
	if m.Len() != len(keys) {
		t.Errorf("Len = %d, want %d", m.Len(), len(keys))
	}
	// Another order, same root.
	var m2 Map
	perm := mrand.Perm(len(keys))
	for _, i := range perm {
		for _, it := range vals[keys[i]] {
			m2.Add(keys[i], it)
		}
	}
	if m2.Root() != m.Root() {
		t.Error("insertion order changed the root")
	}
	var empty Map
	if empty.Root() != EmptyRoot() {
		t.Error("the empty map's root is not EmptyRoot")
	}
}

// TestMapProofs: every key proves present with its items, every other
// key proves absent, and no proof survives tampering.
func TestMapProofs(t *testing.T) {
	var m Map
	var keys [][32]byte
	for i := range 300 {
		k := randKey()
		keys = append(keys, k)
		m.Add(k, Item{Index: uint64(2 * i), Kind: KindRelease})
		if i%3 == 0 {
			m.Add(k, Item{Index: uint64(2*i + 1), Kind: KindRevocation})
		}
	}
	root := m.Root()
	for _, k := range keys {
		items, pr := m.Prove(k)
		if len(items) == 0 {
			t.Fatal("a present key has no items")
		}
		if err := pr.Verify(root, k, items); err != nil {
			t.Fatalf("presence: %v", err)
		}
		q, err := ParseMapProof(pr.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Verify(root, k, items); err != nil {
			t.Fatalf("presence after a round trip: %v", err)
		}
		// Dropping a revocation, or claiming absence, fails.
		if err := pr.Verify(root, k, items[:len(items)-1]); err == nil && len(items) > 1 {
			t.Fatal("a proof verified with an entry left out")
		}
		if err := pr.Verify(root, k, nil); err == nil {
			t.Fatal("a presence proof verified as absence")
		}
	}
	for range 300 {
		k := randKey()
		items, pr := m.Prove(k)
		if len(items) != 0 {
			t.Fatal("a random key is present")
		}
		if err := pr.Verify(root, k, nil); err != nil {
			t.Fatalf("absence: %v", err)
		}
		if err := pr.Verify(root, k, []Item{{Index: 1, Kind: KindRelease}}); err == nil {
			t.Fatal("an absence proof verified with entries")
		}
		if len(pr.Siblings) > 0 {
			pr.Siblings[0][0] ^= 1
			if err := pr.Verify(root, k, nil); err == nil {
				t.Fatal("a tampered sibling verified")
			}
		}
	}
	// An absence proof that ends at another key's leaf cannot be used for
	// that key, nor moved off the path.
	k := randKey()
	_, pr := m.Prove(k)
	if pr.Terminal == TerminalOther {
		if err := pr.Verify(root, pr.OtherKey, nil); err == nil {
			t.Error("an absence proof verified for the key it ends at")
		}
	}
}

func TestParseMapProofStrict(t *testing.T) {
	var m Map
	for range 50 {
		m.Add(randKey(), Item{Index: 1, Kind: KindRelease})
	}
	_, pr := m.Prove(randKey())
	good := pr.Marshal()
	if _, err := ParseMapProof(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"trailing":   append(bytes.Clone(good), 0),
		"truncated":  good[:len(good)-1],
		"depth 300":  {0x01, 0x2c, 0},
		"terminal 9": func() []byte { b := bytes.Clone(good); b[2] = 9; return b }(),
	} {
		if _, err := ParseMapProof(b); err == nil {
			t.Errorf("%s: ParseMapProof accepted it", name)
		}
	}
	// The empty hash spelled out is refused: one encoding per proof.
	e := EmptyRoot()
	spelled := append([]byte{0, 1, TerminalEmpty, 0x80}, e[:]...)
	if _, err := ParseMapProof(spelled); err == nil {
		t.Error("a spelled-out empty sibling was accepted")
	}
}

func FuzzParseMapProof(f *testing.F) {
	var m Map
	for range 20 {
		m.Add(randKey(), Item{Index: 1, Kind: KindRelease})
	}
	for range 3 {
		_, pr := m.Prove(randKey())
		f.Add(pr.Marshal())
	}
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 16<<10 {
			return
		}
		p, err := ParseMapProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("a parsed proof re-encodes differently")
		}
		p.Verify(sha256.Sum256(b), sha256.Sum256(nil), nil)
	})
}

// TestSnapshot: a snapshot keeps its root and proofs while the map grows.
func TestSnapshot(t *testing.T) {
	var m Map
	var keys [][32]byte
	for i := range 100 {
		k := randKey()
		keys = append(keys, k)
		m.Add(k, Item{Index: uint64(i), Kind: KindRelease})
	}
	snap := m.Snapshot()
	root := snap.Root()
	for i := range 100 {
		m.Add(keys[i], Item{Index: uint64(100 + i), Kind: KindRevocation})
		m.Add(randKey(), Item{Index: uint64(200 + i), Kind: KindRelease})
	}
	if snap.Root() != root || m.Root() == root {
		t.Fatal("the snapshot's root moved, or the map's did not")
	}
	for _, k := range keys {
		items, pr := snap.Prove(k)
		if len(items) != 1 {
			t.Fatalf("the snapshot sees %d items, want 1 (the revocations came later)", len(items))
		}
		if err := pr.Verify(root, k, items); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotItemsRuns: keys with many items (runs of every size class
// up to 64) keep each snapshot's items while later ones are added, in
// place and by copying.
func TestSnapshotItemsRuns(t *testing.T) {
	var m Map
	k := randKey()
	other := randKey()
	m.Add(other, Item{Index: 0, Kind: KindRelease})
	var want [][]Item
	var snaps []*Map
	var items []Item
	for i := range 64 {
		it := Item{Index: uint64(1000 - i), Kind: KindReproduction} // descending: each goes first
		m.Add(k, it)
		m.Add(k, it) // twice: once
		items = append([]Item{it}, items...)
		if i%3 == 0 {
			snaps = append(snaps, m.Snapshot())
			want = append(want, append([]Item(nil), items...))
		}
	}
	if got := m.Get(k); !equalItems(got, items) {
		t.Fatalf("Get = %v, want %v", got, items)
	}
	vals := map[[32]byte][]Item{k: items, other: {{Index: 0, Kind: KindRelease}}}
	if got, def := m.Root(), refRoot([][32]byte{k, other}, vals, 0); got != def {
		t.Fatal("the root of a many-item key is not the definition's")
	}
	for i, s := range snaps {
		got, pr := s.Prove(k)
		if !equalItems(got, want[i]) {
			t.Fatalf("snapshot %d: %d items, want %d", i, len(got), len(want[i]))
		}
		if err := pr.Verify(s.Root(), k, got); err != nil {
			t.Fatal(err)
		}
	}
	// What Get returns is a copy.
	g := m.Get(k)
	g[0].Index = 7
	if m.Get(k)[0].Index == 7 {
		t.Fatal("Get returned the map's own memory")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a snapshot accepted Add")
		}
	}()
	snaps[0].Add(k, Item{Index: 1})
}

// TestSnapshotsReclaimed: the slots that path copying retires are reused
// once the snapshots that share them are gone, so a map that keeps
// taking (and dropping) snapshots does not grow without bound.
func TestSnapshotsReclaimed(t *testing.T) {
	var m Map
	var keys [][32]byte
	for i := range 2000 {
		k := randKey()
		keys = append(keys, k)
		m.Add(k, Item{Index: uint64(i), Kind: KindRelease})
	}
	var slots []uint32
	for round := range 40 {
		s := m.Snapshot()
		for i := range 200 {
			m.Add(keys[(round*200+i)%len(keys)], Item{Index: uint64(10000 + round*200 + i), Kind: KindReproduction})
		}
		s.Root()
		s = nil
		runtime.GC()
		// The cleanup runs on its own goroutine after the collection.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			m.s.mu.Lock()
			gone := len(m.s.live) > 0 && m.s.live[len(m.s.live)-1].n == 0
			m.s.mu.Unlock()
			if gone {
				break
			}
			time.Sleep(time.Millisecond)
		}
		m.s.reclaim()
		slots = append(slots, m.s.nInner)
	}
	// 2,000 keys need 1,999 inner nodes; each round copies at most its
	// 200 paths (11 levels), and reuses what the round before retired.
	if first, last := slots[1], slots[len(slots)-1]; last > first+first/4 {
		t.Fatalf("inner slots grew from %d to %d over 40 rounds of snapshots: retired slots are not reused", first, last)
	}
	if len(m.s.freeInner) == 0 {
		t.Fatal("nothing was reclaimed")
	}
	// And the map is still the definition's.
	vals := map[[32]byte][]Item{}
	for i, k := range keys {
		vals[k] = []Item{{Index: uint64(i), Kind: KindRelease}}
	}
	for round := range 40 {
		for i := range 200 {
			k := keys[(round*200+i)%len(keys)]
			vals[k] = append(vals[k], Item{Index: uint64(10000 + round*200 + i), Kind: KindReproduction})
		}
	}
	if m.Root() != refRoot(keys, vals, 0) {
		t.Fatal("after reclaiming, the root is not the definition's")
	}
}

// TestSnapshotsConcurrent: proofs from live snapshots verify while the
// map grows, older snapshots are dropped and their slots reused (run
// with -race).
func TestSnapshotsConcurrent(t *testing.T) {
	var m Map
	var keys [][32]byte
	for i := range 500 {
		k := randKey()
		keys = append(keys, k)
		m.Add(k, Item{Index: uint64(i), Kind: KindRelease})
	}
	snaps := make(chan *Map, 1)
	snaps <- m.Snapshot()
	done := make(chan struct{})
	errs := make(chan error, 4)
	for w := range 3 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				s := <-snaps
				snaps <- s
				// Yield: under WebAssembly nothing preempts a goroutine
				// that never blocks, and the writer would never run.
				runtime.Gosched()
				k := keys[(i*7+w)%len(keys)]
				items, pr := s.Prove(k)
				if err := pr.Verify(s.Root(), k, items); err != nil {
					errs <- err
					return
				}
				if len(items) == 0 {
					errs <- fmt.Errorf("a key of the snapshot proves absent")
					return
				}
			}
		}()
	}
	for round := range 200 {
		for i := range 20 {
			m.Add(keys[(round*20+i)%len(keys)], Item{Index: uint64(1000 + round*20 + i), Kind: KindReproduction})
			m.Add(randKey(), Item{Index: uint64(1000 + round*20 + i), Kind: KindRelease})
		}
		<-snaps
		snaps <- m.Snapshot()
		if round%20 == 0 {
			runtime.GC()
		}
	}
	close(done)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotUnhashed: snapshots taken without hashing, one after every
// insertion as a follower of several frontends takes them, have the
// root from the definition at their size when asked for it later, in
// any order and with the map grown meanwhile (also past hashed
// snapshots and the map's own roots), and prove their keys; proofs from
// a hashed snapshot go on verifying concurrently while later unhashed
// ones are hashed under the lock the log holds for it (run with -race).
func TestSnapshotUnhashed(t *testing.T) {
	var m Map
	var mu sync.Mutex // the log's v.mu: every Root of m and first Root of an unhashed snapshot
	var keys [][32]byte
	vals := map[[32]byte][]Item{}
	want := map[int][32]byte{}
	snaps := map[int]*Map{}
	add := func(i int) {
		k := randKey()
		if i%5 == 0 && len(keys) > 0 {
			k = keys[i%len(keys)] // a second item under a key
		} else {
			keys = append(keys, k)
		}
		it := Item{Index: uint64(i), Kind: KindRelease}
		mu.Lock()
		m.Add(k, it)
		snaps[i+1] = m.SnapshotUnhashed()
		mu.Unlock()
		vals[k] = append(vals[k], it)
		if i%37 == 0 {
			sorted := append([][32]byte(nil), keys...)
			want[i+1] = refRoot(sorted, vals, 0)
		}
	}
	for i := range 300 {
		add(i)
	}
	// A hashed snapshot, proved from other goroutines from now on.
	mu.Lock()
	hashed := m.Snapshot()
	mu.Unlock()
	hroot := hashed.Root()
	hkeys := append([][32]byte(nil), keys...)
	done := make(chan struct{})
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				k := hkeys[(i*3+w)%len(hkeys)]
				items, pr := hashed.Prove(k)
				if err := pr.Verify(hroot, k, items); err != nil || len(items) == 0 {
					errs <- fmt.Errorf("a proof from the hashed snapshot: %v (%d items)", err, len(items))
					return
				}
				runtime.Gosched()
			}
		}()
	}
	for i := 300; i < 600; i++ {
		add(i)
		if i%50 == 0 {
			mu.Lock()
			m.Root()
			mu.Unlock()
		}
	}
	// Ask for the roots in shuffled order, the newest and oldest mixed.
	sizes := make([]int, 0, len(want))
	for n := range want {
		sizes = append(sizes, n)
	}
	mrand.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	for _, n := range sizes {
		mu.Lock()
		got := snaps[n].Root()
		mu.Unlock()
		if w := want[n]; got != w {
			t.Fatalf("unhashed snapshot at size %d: root %x, the definition's %x", n, got[:8], w[:8])
		}
		k := keys[0]
		items, pr := snaps[n].Prove(k)
		if err := pr.Verify(got, k, items); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if hashed.Root() != hroot {
		t.Fatal("the hashed snapshot's root moved")
	}
}
