// Package tlogtest is the one in-memory transparency log of the tests: a
// Merkle tree built with golang.org/x/mod/sumdb/tlog, checkpoints signed
// with a note key and cosigned by cosignature/v1 witnesses, and
// c2sp.org/tlog-proof proofs of its entries. It is a test kit: only tests
// import it (TestDependenciesPointOneWay keeps the binary free of it), and
// it imports only formats.
package tlogtest

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/log/tlogproof"
)

// Log is an in-memory log. It is safe for concurrent use.
type Log struct {
	t      testing.TB
	Origin string
	// Signer signs checkpoints; VKey is its verifier key.
	Signer note.Signer
	VKey   string
	// Witnesses cosign checkpoints (cosignature/v1); WVKeys are their
	// verifier keys, as a policy's witness lines name them.
	Witnesses []note.Signer
	WVKeys    []string

	mu      sync.Mutex
	entries [][]byte
	hashes  []tlog.Hash
}

// New returns an empty log of origin with nWitnesses witnesses.
func New(t testing.TB, origin string, nWitnesses int) *Log {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{t: t, Origin: origin, Signer: s, VKey: vkey}
	for i := range nWitnesses {
		wskey, wvkey, err := note.GenerateKey(rand.Reader, fmt.Sprintf("witness%d.test", i))
		if err != nil {
			t.Fatal(err)
		}
		ws, err := fnote.NewSignerForCosignatureV1(wskey)
		if err != nil {
			t.Fatal(err)
		}
		cv, err := fnote.VKeyToCosignatureV1(wvkey)
		if err != nil {
			t.Fatal(err)
		}
		l.Witnesses = append(l.Witnesses, ws)
		l.WVKeys = append(l.WVKeys, cv)
	}
	return l
}

// ReadHashes implements tlog.HashReader over the log's stored hashes.
func (l *Log) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("tlogtest: no stored hash %d", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// Add appends entry and returns its index.
func (l *Log) Add(entry []byte) uint64 {
	l.mu.Lock()
	n := int64(len(l.entries))
	l.mu.Unlock()
	hs, err := tlog.StoredHashes(n, entry, l)
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hashes = append(l.hashes, hs...)
	l.entries = append(l.entries, entry)
	return uint64(len(l.entries) - 1)
}

// Entry returns entry i.
func (l *Log) Entry(i uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[i]
}

// Entries returns the entries so far.
func (l *Log) Entries() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.entries...)
}

// TreeAt is the tree of the log's first n entries.
func (l *Log) TreeAt(n int64) tlog.Tree {
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return tlog.Tree{N: n, Hash: h}
}

// Fork returns a log with the same origin, key and witnesses holding the
// first n entries of l: a split view, when both grow apart.
func (l *Log) Fork(n int) *Log {
	g := &Log{t: l.t, Origin: l.Origin, Signer: l.Signer, VKey: l.VKey, Witnesses: l.Witnesses, WVKeys: l.WVKeys}
	for _, e := range l.Entries()[:n] {
		g.Add(e)
	}
	return g
}

// Tree is the log's current tree.
func (l *Log) Tree() tlog.Tree {
	l.mu.Lock()
	n := int64(len(l.entries))
	l.mu.Unlock()
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return tlog.Tree{N: n, Hash: h}
}

// Checkpoint signs a checkpoint of tree, cosigned by the first nCosign
// witnesses.
func (l *Log) Checkpoint(tree tlog.Tree, nCosign int) []byte {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, tree.N, tree.Hash)
	cp, err := note.Sign(&note.Note{Text: text}, append([]note.Signer{l.Signer}, l.Witnesses[:nCosign]...)...)
	if err != nil {
		l.t.Fatal(err)
	}
	return cp
}

// Proof returns the tlog-proof of entry i under a checkpoint of the
// current size cosigned by the first nCosign witnesses.
func (l *Log) Proof(i uint64, nCosign int) *tlogproof.Proof {
	tree := l.Tree()
	rp, err := tlog.ProveRecord(tree.N, int64(i), l)
	if err != nil {
		l.t.Fatal(err)
	}
	return &tlogproof.Proof{Extra: l.Entry(i), Index: i, Hashes: rp, Checkpoint: l.Checkpoint(tree, nCosign)}
}
