package misbehaviour

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/tlogtest"
)

// newTree is an in-memory log (internal/tlogtest) of n records
// "prefix-i", and its tree.
func newTree(t testing.TB, prefix string, n int) (*tlogtest.Log, tlog.Tree) {
	l := tlogtest.New(t, "example.com/log", 0)
	for i := range n {
		l.Add([]byte(fmt.Sprintf("%s-%d", prefix, i)))
	}
	return l, l.Tree()
}

func sign(t testing.TB, s note.Signer, origin string, tr tlog.Tree) string {
	b, err := note.Sign(&note.Note{Text: torchwood.Checkpoint{Origin: origin, Tree: tr}.String()}, s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProveAndVerify(t *testing.T) {
	const origin = "example.com/log"
	skey, vkey, _ := note.GenerateKey(rand.Reader, origin)
	s, _ := note.NewSigner(skey)
	aTree, a5 := newTree(t, "a", 5)
	_, a3 := newTree(t, "a", 3)
	bTree, b3 := newTree(t, "b", 3)
	_ = bTree
	_, b5 := newTree(t, "b", 5)

	for _, tc := range []struct {
		name           string
		older, newer   tlog.Tree
		hr             tlog.HashReader
		wantMisbehaves bool
	}{
		{"prefix", a3, a5, aTree, false},
		{"same tree", a5, a5, aTree, false},
		{"fork, different sizes", b3, a5, aTree, true},
		{"fork, same size", b5, a5, aTree, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Prove(tc.older, tc.newer, tc.hr)
			if err != nil {
				t.Fatal(err)
			}
			if (ev != nil) != tc.wantMisbehaves {
				t.Fatalf("Prove(%d, %d) = %v, want misbehaviour %v", tc.older.N, tc.newer.N, ev, tc.wantMisbehaves)
			}
			if ev == nil {
				return
			}
			ev.Origin, ev.VKey = origin, vkey
			ev.Checkpoints = [2]string{sign(t, s, origin, tc.older), sign(t, s, origin, tc.newer)}
			p, err := ev.Verify()
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Smaller != tc.older || p.Larger != tc.newer {
				t.Errorf("Verify = %v", p)
			}
			// Round trip through the file format.
			b, _ := ev.Marshal()
			ev2, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ev2.Verify(); err != nil {
				t.Errorf("after Marshal/Parse: %v", err)
			}
			// Tampering.
			if len(ev.Proof) > 0 {
				bad := *ev
				bad.Proof = append([]tlog.Hash(nil), ev.Proof...)
				bad.Proof[0][0] ^= 1
				if _, err := bad.Verify(); !errors.Is(err, ErrNotProven) {
					t.Errorf("tampered proof: Verify = %v, want ErrNotProven", err)
				}
				honest := *ev
				root := tc.older.Hash
				honest.PrefixRoot = &root
				if _, err := honest.Verify(); !errors.Is(err, ErrNotProven) {
					t.Errorf("prefix_root replaced by the older root: Verify = %v, want ErrNotProven", err)
				}
			}
			_, otherV, _ := note.GenerateKey(rand.Reader, origin)
			other := *ev
			other.VKey = otherV
			if _, err := other.Verify(); !errors.Is(err, ErrNotProven) {
				t.Errorf("another key: Verify = %v, want ErrNotProven", err)
			}
		})
	}
}

func FuzzParseVerify(f *testing.F) {
	f.Add([]byte(`{"format":"attestlog-misbehaviour/v1","origin":"a","vkey":"a+01234567+AQ","checkpoints":["",""]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			return
		}
		if _, err := ev.Verify(); err == nil {
			t.Fatalf("fuzzed input proves misbehaviour: %s", b)
		}
	})
}
