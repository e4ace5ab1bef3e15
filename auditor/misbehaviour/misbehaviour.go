// Package misbehaviour is the self-contained evidence that a transparency
// log signed two checkpoints that cannot both be true: the two signed
// checkpoint notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note) and,
// when their sizes differ, an RFC 6962 consistency proof from the smaller
// tree to the larger one together with the root hash of the smaller size
// that the larger tree commits to.
//
// Anyone holding the log's verifier key can check the file with
// [Evidence.Verify] (`attestlog verify-misbehaviour FILE`) and nothing
// else: not the log, not the auditor that wrote it.
//
// The file is JSON:
//
//	{
//	  "format": "attestlog-misbehaviour/v1",
//	  "origin": "example.com/log",
//	  "vkey": "example.com/log+1234abcd+AQ…",
//	  "checkpoints": ["<signed note>", "<signed note>"],
//	  "sources": ["https://log.example/checkpoint", "https://peer.example/…"],
//	  "proof": ["<base64 hash>", …],
//	  "prefix_root": "<base64 hash>",
//	  "found": "2026-11-26T12:00:00Z"
//	}
//
// Following the sumdb client's checkTrees, two checkpoints of one size
// with different root hashes need no proof; otherwise "proof" proves that
// the larger tree's first N entries have root "prefix_root", where N is
// the smaller size, and "prefix_root" differs from the smaller
// checkpoint's root hash.
package misbehaviour

//go:generate sh -c "cd testdata && go run gen.go"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Format is the value of the "format" field.
const Format = "attestlog-misbehaviour/v1"

// MaxSize bounds the size of an evidence file.
const MaxSize = 1 << 20

// Evidence is a misbehaviour evidence file.
type Evidence struct {
	Format      string      `json:"format"`
	Origin      string      `json:"origin"`
	VKey        string      `json:"vkey"`
	Checkpoints [2]string   `json:"checkpoints"`
	Sources     [2]string   `json:"sources,omitempty"`
	Proof       []tlog.Hash `json:"proof,omitempty"`
	PrefixRoot  *tlog.Hash  `json:"prefix_root,omitempty"`
	Found       time.Time   `json:"found"`
}

// ErrNotProven is wrapped by Verify errors: the file does not prove
// misbehaviour (it is malformed, a signature does not verify, or the
// checkpoints are consistent).
var ErrNotProven = errors.New("evidence does not prove misbehaviour")

// Proven describes verified misbehaviour.
type Proven struct {
	Origin string
	// Smaller and Larger are the two trees (equal sizes for a fork at one
	// size).
	Smaller, Larger tlog.Tree
	// PrefixRoot is the root of Smaller.N entries the larger tree commits
	// to (equal to Larger.Hash when the sizes are equal).
	PrefixRoot tlog.Hash
}

func (p *Proven) String() string {
	if p.Smaller.N == p.Larger.N {
		return fmt.Sprintf("log %q signed two different trees of size %d: root %v and root %v", p.Origin, p.Smaller.N, p.Smaller.Hash, p.Larger.Hash)
	}
	return fmt.Sprintf("log %q signed a tree of size %d with root %v, but its tree of size %d (root %v) commits to root %v for its first %d entries",
		p.Origin, p.Smaller.N, p.Smaller.Hash, p.Larger.N, p.Larger.Hash, p.PrefixRoot, p.Smaller.N)
}

// Parse parses an evidence file; it does not verify it.
func Parse(b []byte) (*Evidence, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: file is %d bytes, the limit is %d", ErrNotProven, len(b), MaxSize)
	}
	var e Evidence
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: parsing JSON: %v", ErrNotProven, err)
	}
	if e.Format != Format {
		return nil, fmt.Errorf("%w: format is %q, want %q", ErrNotProven, e.Format, Format)
	}
	return &e, nil
}

// Marshal returns the indented JSON form of e.
func (e *Evidence) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Open verifies a signed checkpoint with the log's key and parses it.
func Open(v note.Verifier, signed []byte) (tlog.Tree, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint signature: %v", err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("parsing checkpoint: %v", err)
	}
	if cp.Origin != v.Name() {
		return tlog.Tree{}, fmt.Errorf("checkpoint origin %q is not the key's name %q", cp.Origin, v.Name())
	}
	return tlog.Tree{N: cp.N, Hash: cp.Hash}, nil
}

// Verify checks that e proves misbehaviour of the log whose verifier key
// is e.VKey. Callers that trust a particular key compare it with e.VKey
// (or with Proven.Origin) themselves.
func (e *Evidence) Verify() (*Proven, error) {
	v, err := note.NewVerifier(e.VKey)
	if err != nil {
		return nil, fmt.Errorf("%w: vkey: %v", ErrNotProven, err)
	}
	if e.Origin != v.Name() {
		return nil, fmt.Errorf("%w: origin %q is not the key's name %q", ErrNotProven, e.Origin, v.Name())
	}
	var trees [2]tlog.Tree
	for i, c := range e.Checkpoints {
		t, err := Open(v, []byte(c))
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint %d: %v", ErrNotProven, i+1, err)
		}
		trees[i] = t
	}
	a, b := trees[0], trees[1]
	if a.N > b.N {
		a, b = b, a
	}
	p := &Proven{Origin: e.Origin, Smaller: a, Larger: b}
	if a.N == b.N {
		if a.Hash == b.Hash {
			return nil, fmt.Errorf("%w: both checkpoints are of the same tree (size %d, root %v)", ErrNotProven, a.N, a.Hash)
		}
		p.PrefixRoot = b.Hash
		return p, nil
	}
	if e.PrefixRoot == nil {
		return nil, fmt.Errorf("%w: checkpoints of sizes %d and %d need a consistency proof and prefix_root", ErrNotProven, a.N, b.N)
	}
	if err := tlog.CheckTree(e.Proof, b.N, b.Hash, a.N, *e.PrefixRoot); err != nil {
		return nil, fmt.Errorf("%w: the proof does not show that tree %d commits to prefix_root for its first %d entries: %v", ErrNotProven, b.N, a.N, err)
	}
	if *e.PrefixRoot == a.Hash {
		return nil, fmt.Errorf("%w: the trees are consistent (tree %d extends tree %d)", ErrNotProven, b.N, a.N)
	}
	p.PrefixRoot = *e.PrefixRoot
	return p, nil
}

// Prove checks whether the older tree is a prefix of the newer one, using
// hr, which reads hashes of the newer tree (and must authenticate them
// against it, as tlog.TileHashReader does). It returns nil, nil when they
// are consistent, and the evidence (without Origin, VKey, Checkpoints and
// Sources, which the caller fills in) when they are not.
func Prove(older, newer tlog.Tree, hr tlog.HashReader) (*Evidence, error) {
	if older.N > newer.N {
		return nil, fmt.Errorf("older tree (%d) is larger than newer tree (%d)", older.N, newer.N)
	}
	if older.N == newer.N {
		if older.Hash == newer.Hash {
			return nil, nil
		}
		return &Evidence{Format: Format, Found: time.Now().UTC().Truncate(time.Second)}, nil
	}
	if older.N == 0 {
		// Every tree extends the empty tree.
		return nil, nil
	}
	root, err := tlog.TreeHash(older.N, hr)
	if err != nil {
		return nil, fmt.Errorf("computing root of the first %d entries of tree %d: %w", older.N, newer.N, err)
	}
	if root == older.Hash {
		return nil, nil
	}
	proof, err := tlog.ProveTree(newer.N, older.N, hr)
	if err != nil {
		return nil, fmt.Errorf("building consistency proof %d→%d: %w", older.N, newer.N, err)
	}
	if err := tlog.CheckTree(proof, newer.N, newer.Hash, older.N, root); err != nil {
		return nil, fmt.Errorf("consistency proof from the log's tiles does not verify: %w", err)
	}
	return &Evidence{Format: Format, Proof: proof, PrefixRoot: &root, Found: time.Now().UTC().Truncate(time.Second)}, nil
}
