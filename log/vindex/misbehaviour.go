package vindex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/log/statement"
)

// MisbehaviourFormat is the "format" of a Misbehaviour file.
const MisbehaviourFormat = "attestlog-vindex-misbehaviour/v1"

// ErrNotProven is wrapped by Misbehaviour.Verify errors.
var ErrNotProven = errors.New("evidence does not prove index misbehaviour")

// Misbehaviour is self-contained evidence that a log signed an index
// checkpoint whose root is not the map of its own entries: a signed
// checkpoint of the log, every entry of that tree (so anyone can rebuild
// its root and the map), and which of them is the index checkpoint.
type Misbehaviour struct {
	Format     string   `json:"format"`
	Origin     string   `json:"origin"`
	VKey       string   `json:"vkey"`
	Checkpoint string   `json:"checkpoint"`
	Entries    [][]byte `json:"entries"`
	IndexEntry uint64   `json:"index_entry"`
	// Recomputed is the root the entries map to (informational: Verify
	// recomputes it).
	Recomputed []byte `json:"recomputed_root"`
}

// Marshal encodes the evidence as JSON.
func (m *Misbehaviour) Marshal() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// ParseMisbehaviour decodes an evidence file (without verifying it).
func ParseMisbehaviour(b []byte) (*Misbehaviour, error) {
	var m Misbehaviour
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotProven, err)
	}
	if m.Format != MisbehaviourFormat {
		return nil, fmt.Errorf("%w: format %q", ErrNotProven, m.Format)
	}
	return &m, nil
}

// Verify checks the evidence with nothing but its contents: the
// checkpoint is signed by VKey, the entries are exactly its tree, entry
// IndexEntry is an index checkpoint signed by the same key, and the map of
// the entries it covers has another root.
func (m *Misbehaviour) Verify() error {
	v, err := note.NewVerifier(m.VKey)
	if err != nil || v.Name() != m.Origin {
		return fmt.Errorf("%w: vkey %q is not the key of %q", ErrNotProven, m.VKey, m.Origin)
	}
	n, err := note.Open([]byte(m.Checkpoint), note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %v", ErrNotProven, err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || cp.Origin != m.Origin {
		return fmt.Errorf("%w: checkpoint: %v", ErrNotProven, err)
	}
	if int64(len(m.Entries)) != cp.N {
		return fmt.Errorf("%w: %d entries for a tree of %d", ErrNotProven, len(m.Entries), cp.N)
	}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range m.Entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotProven, err)
		}
		hashes = append(hashes, hs...)
	}
	if root, err := tlog.TreeHash(cp.N, hr); err != nil || root != cp.Hash {
		return fmt.Errorf("%w: the entries are not the checkpoint's tree", ErrNotProven)
	}
	if m.IndexEntry >= uint64(len(m.Entries)) {
		return fmt.Errorf("%w: index entry %d is past the tree", ErrNotProven, m.IndexEntry)
	}
	ic, err := statement.VerifyIndexCheckpoint(m.Entries[m.IndexEntry], v)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %v", ErrNotProven, m.IndexEntry, err)
	}
	if ic.Version != MapVersion {
		return fmt.Errorf("%w: the index checkpoint at entry %d is of map version %d; this program builds version %d", ErrNotProven, m.IndexEntry, ic.Version, MapVersion)
	}
	if ic.Size > m.IndexEntry {
		return fmt.Errorf("%w: the index checkpoint at entry %d covers %d entries", ErrNotProven, m.IndexEntry, ic.Size)
	}
	b := NewBuilder()
	for i := range ic.Size {
		b.Add(i, m.Entries[i])
	}
	if b.Root() == ic.Root {
		return fmt.Errorf("%w: the index checkpoint's root is the map of the log's first %d entries", ErrNotProven, ic.Size)
	}
	return nil
}
