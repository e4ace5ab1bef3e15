package tlogproof

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memTree is a tlog.HashReader over an in-memory tree built with x/mod's
// own functions, so proofs come from an independent implementation.
type memTree []tlog.Hash

func (m memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(m)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

func buildTree(t testing.TB, entries [][]byte) memTree {
	var m memTree
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	return m
}

func TestRoundTripAndVerify(t *testing.T) {
	var entries [][]byte
	for i := range 13 {
		entries = append(entries, []byte(fmt.Sprintf("entry %d", i)))
	}
	m := buildTree(t, entries)
	size := int64(len(entries))
	root, err := tlog.TreeHash(size, m)
	if err != nil {
		t.Fatal(err)
	}
	for idx := range entries {
		rp, err := tlog.ProveRecord(size, int64(idx), m)
		if err != nil {
			t.Fatal(err)
		}
		p := &Proof{Extra: entries[idx], Index: uint64(idx), Hashes: rp, Checkpoint: []byte("origin\n13\nAAAA\n\n— origin sig\n")}
		got, err := Parse(p.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal(index %d)) = %v", idx, err)
		}
		if !bytes.Equal(got.Marshal(), p.Marshal()) {
			t.Errorf("index %d: Marshal(Parse(x)) != x", idx)
		}
		if err := got.VerifyInclusion(got.Extra, size, root); err != nil {
			t.Errorf("VerifyInclusion(index %d) = %v, want nil", idx, err)
		}
		other := entries[(idx+1)%len(entries)]
		if err := got.VerifyInclusion(other, size, root); !errors.Is(err, ErrInclusion) {
			t.Errorf("VerifyInclusion(wrong entry at %d) = %v, want ErrInclusion", idx, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := "c2sp.org/tlog-proof@v1\nextra ZXh0cmE=\nindex 3\n" +
		"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\norigin\n4\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n— origin AAAA\n"
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("Parse(good) = %v", err)
	}
	for name, in := range map[string]string{
		"header":        "c2sp.org/tlog-proof@v2\nindex 3\n\ncp\n",
		"no blank line": "c2sp.org/tlog-proof@v1\nindex 3\n",
		"leading zero":  "c2sp.org/tlog-proof@v1\nindex 03\n\ncp\n",
		"no index":      "c2sp.org/tlog-proof@v1\n\ncp\n",
		"bad extra":     "c2sp.org/tlog-proof@v1\nextra !!\nindex 3\n\ncp\n",
		"short hash":    "c2sp.org/tlog-proof@v1\nindex 3\nAAAA\n\ncp\n",
		"no checkpoint": "c2sp.org/tlog-proof@v1\nindex 3\n\n",
		"huge":          "c2sp.org/tlog-proof@v1\nextra " + string(bytes.Repeat([]byte("A"), MaxSize)) + "\nindex 0\n\ncp\n",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("c2sp.org/tlog-proof@v1\nextra ZXh0cmE=\nindex 3\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\norigin\n4\nAAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses must round-trip.
		q, err := Parse(p.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))) = %v", err)
		}
		if !bytes.Equal(q.Marshal(), p.Marshal()) {
			t.Fatalf("round trip changed the proof")
		}
	})
}
