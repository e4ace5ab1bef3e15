package vindex

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/tlogtest"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
)

// testLog is the tests' in-memory log (internal/tlogtest), with no
// witnesses, its entries kept beside it.
type testLog struct {
	*tlogtest.Log
	t       *testing.T
	entries [][]byte
	signer  note.Signer
	vkey    string
}

func newTestLog(t *testing.T) *testLog {
	l := tlogtest.New(t, "vindex.test/log", 0)
	return &testLog{Log: l, t: t, signer: l.Signer, vkey: l.VKey}
}

func (l *testLog) add(e []byte) uint64 {
	i := l.Add(e)
	l.entries = append(l.entries, e)
	return i
}

// prove returns the tlog-proof of entry i under a checkpoint of the
// current size, and that size and root.
func (l *testLog) prove(i uint64) (*tlogproof.Proof, int64, tlog.Hash) {
	p := l.Proof(i, 0)
	tree := l.Tree()
	return p, tree.N, tree.Hash
}

func testRelease(t *testing.T, s *statement.Signer, m, artifact string) []byte {
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: artifact}}}, &statement.Release{
		Version: "1.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: m}},
		Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(p, s)
	return e
}

func revoke(t *testing.T, s *statement.Signer, ref statement.EntryRef) []byte {
	p, _ := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "r", Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
	e, _ := statement.Sign(p, s)
	return e
}

func TestBuilderAndProofs(t *testing.T) {
	op, _ := statement.GenerateSigner(statement.AlgEd25519)
	l := newTestLog(t)
	m1, m2 := strings.Repeat("a1", 48), strings.Repeat("b2", 48)
	d1, d2 := strings.Repeat("d1", 32), strings.Repeat("d2", 32)
	a := l.add(testRelease(t, op, m1, d1))                                              // 0
	b := l.add(testRelease(t, op, m1, d2))                                              // 1
	l.add([]byte("garbage"))                                                            // 2
	ra := l.add(revoke(t, op, statement.RefOf(a, l.entries[a])))                        // 3
	l.add(revoke(t, op, statement.EntryRef{Index: b, SHA256: strings.Repeat("0", 64)})) // 4: wrong hash
	c := l.add(testRelease(t, op, m2, d2))                                              // 5

	bld := NewBuilder()
	for i, e := range l.entries {
		if _, err := bld.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bld.Add(99, nil); err == nil {
		t.Error("Add out of order accepted")
	}
	typed := func(kt KeyType, h string) [32]byte { b, _ := hex.DecodeString(h); return Key(kt, b) }
	ident := func(m string) [32]byte { return typed(KeyIdentity, hex.EncodeToString([]byte("sev-snp\x00"))+m) }
	for _, tc := range []struct {
		name string
		key  [32]byte
		want []Item
	}{
		{"identity of m1", ident(m1), []Item{{a, KindRelease}, {b, KindRelease}, {ra, KindRevocation}}},
		{"launch digest m1", typed(KeySNPLaunchDigest, m1), []Item{{a, KindRelease}, {b, KindRelease}}},
		{"artifact d1", typed(KeyArtifactSHA256, d1), []Item{{a, KindRelease}}},
		{"artifact d2", typed(KeyArtifactSHA256, d2), []Item{{b, KindRelease}, {c, KindRelease}}},
		{"identity of m2", ident(m2), []Item{{c, KindRelease}}},
		{"launch digest m2", typed(KeySNPLaunchDigest, m2), []Item{{c, KindRelease}}},
		{"m1 as an artifact", typed(KeyArtifactSHA384, m1), nil},
		{"absent", typed(KeySNPLaunchDigest, strings.Repeat("ee", 48)), nil},
	} {
		if got := bld.Map().Get(tc.key); !equalItems(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// The log commits the index and proves lookups, present and absent.
	signed := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ic := statement.IndexCheckpoint{Origin: "vindex.test/log", Size: bld.Size(), Root: bld.Root(), Time: signed}
	ice, err := statement.SignIndexCheckpoint(ic, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := statement.ParseEntry(ice); err != nil || p.Kind != statement.KindIndexCheckpoint || p.IndexCheckpoint.Size != ic.Size || !p.IndexCheckpoint.Time.Equal(signed) {
		t.Fatalf("ParseEntry(index checkpoint) = %+v, %v", p, err)
	}
	ici := l.add(ice)
	v, _ := note.NewVerifier(l.vkey)
	for _, tc := range []struct {
		kt KeyType
		d  string
	}{
		{KeyIdentity, hex.EncodeToString([]byte("sev-snp\x00")) + m1},
		{KeySNPLaunchDigest, strings.Repeat("ee", 48)},
	} {
		d, _ := hex.DecodeString(tc.d)
		items, mp := bld.Map().Prove(Key(tc.kt, d))
		commit, size, root := l.prove(ici)
		p := &Proof{Type: tc.kt, Digest: d, Items: items, Map: mp, Commit: commit}
		q, err := ParseProof(p.Marshal())
		if err != nil {
			t.Fatalf("ParseProof(Marshal) = %v\n%s", err, p.Marshal())
		}
		if !bytes.Equal(q.Marshal(), p.Marshal()) {
			t.Fatal("round trip changed the proof")
		}
		got, err := q.VerifyProof(v, size, root)
		if err != nil {
			t.Fatalf("%s: VerifyProof = %v", tc.kt, err)
		}
		if !equalItems(got.Items, items) || got.Checkpoint.Size != ic.Size || !got.Complete() {
			t.Errorf("verified %+v", got)
		}
		// The same digest under another type does not verify.
		if len(items) > 0 {
			q.Type = KeyArtifactSHA384
			if _, err := q.VerifyProof(v, size, root); err == nil {
				t.Errorf("%s: the proof verified as one of %s", tc.kt, q.Type)
			}
			q.Type = tc.kt
		}
		// Leaving an entry out (hiding the revocation) fails.
		if len(q.Items) > 0 {
			q.Items = q.Items[:len(q.Items)-1]
			if _, err := q.VerifyProof(v, size, root); err == nil {
				t.Error("a proof with the revocation left out verified")
			}
		}
	}
	// An index checkpoint signed by another key is not the log's.
	skey2, _, _ := note.GenerateKey(rand.Reader, "vindex.test/log")
	s2, _ := note.NewSigner(skey2)
	forged, _ := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: "vindex.test/log", Size: 6, Root: EmptyRoot()}, s2)
	if _, err := statement.VerifyIndexCheckpoint(forged, v); err == nil {
		t.Error("an index checkpoint signed by another key verified")
	}
}

// TestRevocationStaysWithItsIdentity is the second security review's
// item 2 at the map: a revocation reaches no release of another identity,
// whatever digests the two share.
func TestRevocationStaysWithItsIdentity(t *testing.T) {
	op, _ := statement.GenerateSigner(statement.AlgEd25519)
	l := newTestLog(t)
	victim := strings.Repeat("5a", 48)
	// Release X lists, as an artifact's SHA-384, the bytes of the
	// victim's launch digest.
	px, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA384: victim}}}, &statement.Release{
		Version: "1.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("07", 48)}},
		Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := statement.Sign(px, op)
	y := l.add(testRelease(t, op, victim, strings.Repeat("d1", 32)))
	x := l.add(ex)
	// Two TDX releases on one TDVF (same MRTD), different RTMRs.
	mrtd := strings.Repeat("1d", 48)
	t1 := l.add(tdxRelease(t, op, mrtd, strings.Repeat("01", 48)))
	t2 := l.add(tdxRelease(t, op, mrtd, strings.Repeat("02", 48)))
	rx := l.add(revoke(t, op, statement.RefOf(x, l.entries[x])))
	rt := l.add(revoke(t, op, statement.RefOf(t1, l.entries[t1])))
	bld := NewBuilder()
	for i, e := range l.entries {
		if _, err := bld.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	idOf := func(i uint64) [32]byte {
		p, err := statement.ParseEntry(l.entries[i])
		if err != nil {
			t.Fatal(err)
		}
		k, ok := IdentityKey(p.Release)
		if !ok {
			t.Fatalf("entry %d has no identity", i)
		}
		return k
	}
	for _, tc := range []struct {
		name string
		key  [32]byte
		want []Item
	}{
		{"the victim's identity", idOf(y), []Item{{y, KindRelease}}},
		{"X's identity", idOf(x), []Item{{x, KindRelease}, {rx, KindRevocation}}},
		{"the revoked TDX release's identity", idOf(t1), []Item{{t1, KindRelease}, {rt, KindRevocation}}},
		{"the other TDX release on the same TDVF", idOf(t2), []Item{{t2, KindRelease}}},
		{"the shared MRTD (a lookup key)", Key(KeyTDXMRTD, mustHex(mrtd)), []Item{{t1, KindRelease}, {t2, KindRelease}}},
	} {
		if got := bld.Map().Get(tc.key); !equalItems(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func mustHex(h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	return b
}

func tdxRelease(t *testing.T, s *statement.Signer, mrtd, rtmr0 string) []byte {
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d9", 32)}}}, &statement.Release{
		Version: "1.0.0-" + rtmr0[:4], Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformTDX,
		Measurements: statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: mrtd, RTMR0: rtmr0}},
		Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(p, s)
	return e
}

// TestKeyVectors checks the typed key and identity encodings against
// values computed independently of this package (Python's hashlib:
// hashlib.sha256(b"attestlog vindex v2 key\x00" + type + b"\x00" +
// digest).hexdigest()).
func TestKeyVectors(t *testing.T) {
	ld := strings.Repeat("ab", 48)
	rel := &statement.Release{Platform: statement.PlatformSNP, Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: ld, GuestPolicy: "0000000000030000"}}}
	if got, want := hex.EncodeToString(Identity(rel)), "7365762d736e7000"+ld; got != want {
		t.Errorf("Identity(snp) = %s, want %s", got, want)
	}
	tdx := &statement.Release{Platform: statement.PlatformTDX, Measurements: statement.Measurements{TDX: &statement.TDXMeasurements{
		MRTD: strings.Repeat("11", 48), RTMR2: strings.Repeat("00", 48)}}}
	if got, want := hex.EncodeToString(Identity(tdx)), "74647800"+"01"+strings.Repeat("11", 48)+"00"+"00"+"01"+strings.Repeat("00", 48)+"00"+"00"; got != want {
		t.Errorf("Identity(tdx) = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		kt   KeyType
		d    string
		want string
	}{
		{KeySNPLaunchDigest, ld, "b087e3a1c87de777eb0b8209c253b4c1023e720b07d7a142af3a6b9f0eec9515"},
		{KeyArtifactSHA384, ld, "32312dc0862f9420319a1fe98c2bc72dd8f52d396c15a80235598c49da2abb48"},
		{KeyIdentity, "7365762d736e7000" + ld, "cb14df0e582acfd68160092017f33ed5d69922f0a444c87a87d5a05027083c18"},
	} {
		k := Key(tc.kt, mustHex(tc.d))
		if got := hex.EncodeToString(k[:]); got != tc.want {
			t.Errorf("Key(%s, %s…) = %s, want %s", tc.kt, tc.d[:8], got, tc.want)
		}
	}
	if got, want := hex.EncodeToString(emptyHash[:]), "f7fc8124aa0171e0cb2c6b8e982fd7a9ac4250077ee029e957c7562629eb0fa3"; got != want {
		t.Errorf("empty = %s, want %s", got, want)
	}
}

func equalItems(a, b []Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte(ProofHeader + "\nkey identity 00\nmap AAAA\n\nc2sp.org/tlog-proof@v1\nindex 0\n\nx\n\n— x AAAA\n"))
	f.Add([]byte(ProofHeader + "\nkey artifact/sha256 " + strings.Repeat("ab", 32) + "\nentry 1 release\nentry 2 revocation\nmap AAAB\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxProofSize+1 {
			return
		}
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		q, err := ParseProof(p.Marshal())
		if err != nil {
			t.Fatalf("a parsed proof does not parse once re-encoded: %v", err)
		}
		if !bytes.Equal(q.Marshal(), p.Marshal()) {
			t.Fatal("re-encoding is not stable")
		}
	})
}

// TestReplayedIndexCheckpoint is the second security review's item 1 at
// the proof: an index checkpoint signed before a revocation, proven under
// a later checkpoint with the map rebuilt at its size from public
// entries, verifies as a proof — and Current refuses it, while the
// honest, newer proof shows the revocation.
func TestReplayedIndexCheckpoint(t *testing.T) {
	op, _ := statement.GenerateSigner(statement.AlgEd25519)
	l := newTestLog(t)
	m := strings.Repeat("a1", 48)
	rel := l.add(testRelease(t, op, m, strings.Repeat("d1", 32)))
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	commit := func(at time.Time) uint64 {
		b := NewBuilder()
		for i, e := range l.entries {
			b.Add(uint64(i), e)
		}
		e, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: "vindex.test/log", Size: b.Size(), Root: b.Root(), Time: at}, l.signer)
		if err != nil {
			t.Fatal(err)
		}
		return l.add(e)
	}
	old := commit(t0)
	l.add(revoke(t, op, statement.RefOf(rel, l.entries[rel])))
	t1 := t0.Add(time.Hour)
	fresh := commit(t1)
	l.add(testRelease(t, op, strings.Repeat("b2", 48), strings.Repeat("d2", 32))) // after it: neither is the tree's last entry
	id := Identity(mustParse(t, l.entries[rel]).Release)
	v, _ := note.NewVerifier(l.vkey)
	prove := func(ici uint64) *Verified {
		ic, err := statement.ParseIndexCheckpoint(l.entries[ici])
		if err != nil {
			t.Fatal(err)
		}
		b := NewBuilder() // anyone can rebuild the map at that size
		for i := range ic.Size {
			b.Add(i, l.entries[i])
		}
		items, mp := b.Map().Prove(Key(KeyIdentity, id))
		c, size, root := l.prove(ici)
		got, err := (&Proof{Type: KeyIdentity, Digest: id, Items: items, Map: mp, Commit: c}).VerifyProof(v, size, root)
		if err != nil {
			t.Fatalf("VerifyProof(index checkpoint %d) = %v", ici, err)
		}
		return got
	}
	now := t1.Add(10 * time.Second)
	stale := prove(old)
	if len(stale.Items) != 1 || stale.Complete() {
		t.Fatalf("the replayed proof: %+v", stale)
	}
	if err := stale.Current(now, 20*time.Second, now); !errors.Is(err, ErrStale) {
		t.Errorf("Current(replayed index checkpoint signed 1h ago, max 20s) = %v, want ErrStale", err)
	}
	honest := prove(fresh)
	if err := honest.Current(now, 20*time.Second, now); err != nil || len(honest.Items) != 2 || honest.Items[1].Kind != KindRevocation {
		t.Errorf("the honest proof: Current = %v, items %v", err, honest.Items)
	}
	if err := honest.Current(now.Add(time.Minute), 20*time.Second, now.Add(time.Minute)); !errors.Is(err, ErrStale) {
		t.Errorf("Current(a minute later) = %v, want ErrStale", err)
	}
	if err := honest.Current(t1.Add(-10*time.Minute), 20*time.Second, now); !errors.Is(err, ErrStale) {
		t.Errorf("Current(10 minutes before it was signed) = %v, want ErrStale (from the future)", err)
	}
	if err := honest.Current(now, 0, now); !errors.Is(err, ErrStale) {
		t.Errorf("Current(no bound) = %v, want ErrStale", err)
	}
	// The tree's last entry, covering everything before it, is current
	// however old, as long as the witnesses cosigned that tree recently.
	tip := commit(t1)
	last := prove(tip)
	if !last.Complete() {
		t.Fatalf("the last index checkpoint is not complete: %+v", last)
	}
	later := t1.Add(48 * time.Hour)
	if err := last.Current(later, 20*time.Second, later.Add(-5*time.Second)); err != nil {
		t.Errorf("Current(complete, 2 days on, cosigned 5s ago) = %v", err)
	}
	for _, cosigned := range []time.Time{{}, later.Add(-time.Minute)} {
		if err := last.Current(later, 20*time.Second, cosigned); !errors.Is(err, ErrStale) {
			t.Errorf("Current(complete, cosigned at %v) = %v, want ErrStale", cosigned, err)
		}
	}
}

func mustParse(t *testing.T, e []byte) *statement.Parsed {
	p, err := statement.ParseEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMapVectors checks the map's root against values computed by a
// second implementation of the specification (docs/spec/vindex.md), in
// Python (hashlib), not by this package's helpers: one key, and three
// keys two of which share their first six bits.
func TestMapVectors(t *testing.T) {
	ld := mustHex(strings.Repeat("ab", 48))
	k1 := Key(KeySNPLaunchDigest, ld)
	k2 := Key(KeyIdentity, append([]byte("sev-snp\x00"), ld...))
	k3 := Key(KeyArtifactSHA256, mustHex(strings.Repeat("d1", 32)))
	var m Map
	m.Add(k1, Item{Index: 0, Kind: KindRelease})
	if got, want := m.Root(), mustHex("4374a1cedc804e020b4193073bbe44a8dfd76fa24b3a43d36dc9610917027666"); !bytes.Equal(got[:], want) {
		t.Errorf("root of one key = %x, want %x", got, want)
	}
	m.Add(k2, Item{Index: 0, Kind: KindRelease})
	m.Add(k3, Item{Index: 0, Kind: KindRelease})
	m.Add(k3, Item{Index: 2, Kind: KindReproduction})
	m.Add(k2, Item{Index: 5, Kind: KindRevocation})
	root := m.Root()
	if want := mustHex("6d28b45a7943542c0b7803ba1241085190a5cf92a659a404c26fdb8fa8153fc2"); !bytes.Equal(root[:], want) {
		t.Errorf("root of three keys = %x, want %x", root, want)
	}
	for _, k := range [][32]byte{k1, k2, k3, Key(KeyTDXMRTD, ld)} {
		items, p := m.Prove(k)
		if err := p.Verify(root, k, items); err != nil {
			t.Errorf("proof of %x: %v", k[:4], err)
		}
		q, err := ParseMapProof(p.Marshal())
		if err != nil || q.Verify(root, k, items) != nil {
			t.Errorf("proof of %x after a round trip: %v", k[:4], err)
		}
	}
}

// TestMisbehaviourExample: testdata/index-misbehaviour.json (the example
// docs/spec/misbehaviour.md names, written by testdata/gen.go) proves on
// its own that the log's index checkpoint hides the revocation; with the
// revocation left out of the entries, it proves nothing.
func TestMisbehaviourExample(t *testing.T) {
	b, err := os.ReadFile("testdata/index-misbehaviour.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMisbehaviour(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(); err != nil {
		t.Fatalf("the example does not prove index misbehaviour: %v", err)
	}
	m.Entries = m.Entries[:2]
	if err := m.Verify(); !errors.Is(err, ErrNotProven) {
		t.Errorf("with an entry left out: Verify = %v, want ErrNotProven", err)
	}
}
