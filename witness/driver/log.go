// Package driver drives witnesses: an in-memory transparency log that
// makes signed checkpoints and consistency proofs to submit to a witness,
// and the peer witness implementations (litewitness, omniwitness) run as
// processes beside ours. `attestlog bench witness` uses both, and so do
// the tests that compare our witness with its peers.
package driver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/witness/protocol"
)

// Log is an in-memory Merkle tree (golang.org/x/mod/sumdb/tlog) with an
// Ed25519 note key. Its methods are safe for concurrent use.
type Log struct {
	Origin string
	// VKey is the log's note verifier key, to add the log to a witness.
	VKey string
	// SKey is the log's note private key.
	SKey   string
	signer note.Signer

	mu     sync.Mutex
	n      int64
	hashes []tlog.Hash
	salt   uint64
}

// NewLog returns an empty log whose key name is origin.
func NewLog(origin string) (*Log, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, err
	}
	return NewLogWithKey(origin, skey, vkey)
}

// NewLogWithKey returns an empty log signing with skey. Two logs with the
// same key and different salts are a split view.
func NewLogWithKey(origin, skey, vkey string) (*Log, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	var salt [8]byte
	rand.Read(salt[:])
	return &Log{Origin: origin, VKey: vkey, SKey: skey, signer: s, salt: binary.BigEndian.Uint64(salt[:])}, nil
}

// Fork returns a log with the same origin and key and the first n leaves of
// l, whose later leaves differ from l's: signing both is a split view.
func (l *Log) Fork(n uint64) *Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := &Log{Origin: l.Origin, VKey: l.VKey, SKey: l.SKey, signer: l.signer, salt: l.salt + 1}
	f.n = int64(n)
	f.hashes = append([]tlog.Hash(nil), l.hashes[:tlog.StoredHashCount(int64(n))]...)
	return f
}

func (l *Log) readHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// Append adds k leaves and returns the new size.
func (l *Log) Append(k int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range k {
		leaf := fmt.Appendf(nil, "%s leaf %d salt %d", l.Origin, l.n, l.salt)
		hs, err := tlog.StoredHashes(l.n, leaf, tlog.HashReaderFunc(l.readHashes))
		if err != nil {
			panic(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.n++
	}
	return uint64(l.n)
}

// Size is the number of leaves.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(l.n)
}

// Root returns the root hash at size.
func (l *Log) Root(size uint64) tlog.Hash {
	l.mu.Lock()
	defer l.mu.Unlock()
	if size == 0 {
		return tlog.Hash(emptyRoot())
	}
	h, err := tlog.TreeHash(int64(size), tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		panic(err)
	}
	return h
}

// Checkpoint returns the signed checkpoint at size.
func (l *Log) Checkpoint(size uint64) []byte {
	return l.SignCheckpoint(size, l.Root(size))
}

// SignCheckpoint signs a checkpoint with any size and root hash.
func (l *Log) SignCheckpoint(size uint64, root tlog.Hash) []byte {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, size, base64.StdEncoding.EncodeToString(root[:]))
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		panic(err)
	}
	return b
}

// Proof returns the consistency proof from old to size (empty if old is 0
// or equal to size).
func (l *Log) Proof(old, size uint64) [][protocol.HashSize]byte {
	if old == 0 || old == size {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := tlog.ProveTree(int64(size), int64(old), tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		panic(err)
	}
	out := make([][protocol.HashSize]byte, len(p))
	for i, h := range p {
		out[i] = h
	}
	return out
}

// Request returns the add-checkpoint request from old to the checkpoint at
// size.
func (l *Log) Request(old, size uint64) *protocol.AddCheckpointRequest {
	return &protocol.AddCheckpointRequest{OldSize: old, Proof: l.Proof(old, size), Checkpoint: l.Checkpoint(size)}
}

func emptyRoot() [32]byte { return sha256.Sum256(nil) }
