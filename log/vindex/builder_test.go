package vindex

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
)

type testLog struct {
	t       *testing.T
	entries [][]byte
	hashes  []tlog.Hash
	signer  note.Signer
	vkey    string
}

func newTestLog(t *testing.T) *testLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, "vindex.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	return &testLog{t: t, signer: s, vkey: vkey}
}

func (l *testLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *testLog) add(e []byte) uint64 {
	hs, err := tlog.StoredHashes(int64(len(l.entries)), e, l)
	if err != nil {
		l.t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.entries = append(l.entries, e)
	return uint64(len(l.entries) - 1)
}

// prove returns the tlog-proof of entry i under a checkpoint of the
// current size, and that size and root.
func (l *testLog) prove(i uint64) (*tlogproof.Proof, int64, tlog.Hash) {
	n := int64(len(l.entries))
	root, _ := tlog.TreeHash(n, l)
	rp, err := tlog.ProveRecord(n, int64(i), l)
	if err != nil {
		l.t.Fatal(err)
	}
	cp, _ := note.Sign(&note.Note{Text: "vindex.test/log\n" + itoa(n) + "\n" + root.String() + "\n"}, l.signer)
	return &tlogproof.Proof{Extra: l.entries[i], Index: i, Hashes: rp, Checkpoint: cp}, n, root
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

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
	raw := func(h string) [32]byte { b, _ := hex.DecodeString(h); return Key(b) }
	for _, tc := range []struct {
		key  string
		want []Item
	}{
		{m1, []Item{{a, KindRelease}, {b, KindRelease}, {ra, KindRevocation}}},
		{d1, []Item{{a, KindRelease}, {ra, KindRevocation}}},
		{d2, []Item{{b, KindRelease}, {c, KindRelease}}},
		{m2, []Item{{c, KindRelease}}},
		{strings.Repeat("ee", 48), nil},
	} {
		if got := bld.Map().Get(raw(tc.key)); !equalItems(got, tc.want) {
			t.Errorf("%s…: %v, want %v", tc.key[:8], got, tc.want)
		}
	}

	// The log commits the index and proves lookups, present and absent.
	ic := statement.IndexCheckpoint{Origin: "vindex.test/log", Size: bld.Size(), Root: bld.Root()}
	ice, err := statement.SignIndexCheckpoint(ic, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := statement.ParseEntry(ice); err != nil || p.Kind != statement.KindIndexCheckpoint || p.IndexCheckpoint.Size != ic.Size {
		t.Fatalf("ParseEntry(index checkpoint) = %+v, %v", p, err)
	}
	ici := l.add(ice)
	v, _ := note.NewVerifier(l.vkey)
	for _, h := range []string{m1, strings.Repeat("ee", 48)} {
		d, _ := hex.DecodeString(h)
		items, mp := bld.Map().Prove(Key(d))
		commit, size, root := l.prove(ici)
		p := &Proof{Digest: d, Items: items, Map: mp, Commit: commit}
		q, err := ParseProof(p.Marshal())
		if err != nil {
			t.Fatalf("ParseProof(Marshal) = %v\n%s", err, p.Marshal())
		}
		if !bytes.Equal(q.Marshal(), p.Marshal()) {
			t.Fatal("round trip changed the proof")
		}
		got, err := q.VerifyProof(v, size, root)
		if err != nil {
			t.Fatalf("%s…: VerifyProof = %v", h[:8], err)
		}
		if !equalItems(got.Items, items) || got.Checkpoint.Size != ic.Size {
			t.Errorf("verified %+v", got)
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
	f.Add([]byte(ProofHeader + "\nkey 00\nmap AAAA\n\nc2sp.org/tlog-proof@v1\nindex 0\n\nx\n\n— x AAAA\n"))
	f.Add([]byte(ProofHeader + "\nkey ab\nentry 1 release\nentry 2 revocation\nmap AAAB\n\n"))
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
