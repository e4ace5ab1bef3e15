// Package tlogproof implements [c2sp.org/tlog-proof]: an offline-verifiable
// proof that an entry is in a transparency log, under a checkpoint that
// witnesses cosigned.
//
// attestlog puts the logged entry itself (the DSSE envelope) in the extra
// data, so a proof is everything a client needs to check a release
// without asking the log anything.
//
// [c2sp.org/tlog-proof]: https://c2sp.org/tlog-proof
package tlogproof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Header is the first line of a proof.
const Header = "c2sp.org/tlog-proof@v1"

// MaxSize bounds the size of a proof accepted by Parse: a 64 KiB entry
// (base64 grows it by a third), 64 hashes and a checkpoint with many
// cosignatures fit with room to spare.
const MaxSize = 128 << 10

// maxHashes is the longest inclusion proof for a tree of 2^63 entries.
const maxHashes = 63

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed tlog-proof")

// Proof is a parsed tlog-proof.
type Proof struct {
	// Extra is the opaque extra data: for attestlog, the entry.
	Extra []byte
	// Index is the zero-based index of the entry.
	Index uint64
	// Hashes is the RFC 6962 inclusion proof, leaf's sibling first.
	Hashes []tlog.Hash
	// Checkpoint is the signed checkpoint note, verbatim, with its
	// cosignatures.
	Checkpoint []byte
}

// Marshal returns the text form of p.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	if len(p.Extra) > 0 {
		// > The second line MAY start with the string `extra` followed by a
		// > space (U+0020) and base64-encoded opaque extra data.
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// Parse parses the text form of a proof. It checks the syntax only; use
// [Proof.VerifyInclusion] and a policy to verify it.
func Parse(b []byte) (*Proof, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(b), MaxSize)
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	// > The first line MUST be the string `c2sp.org/tlog-proof@v1`.
	if lines[0] != Header {
		return nil, fmt.Errorf("%w: first line must be %q", ErrMalformed, Header)
	}
	lines = lines[1:]
	p := &Proof{Checkpoint: cp}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		e, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return nil, fmt.Errorf("%w: extra: %v", ErrMalformed, err)
		}
		p.Extra = e
		lines = lines[1:]
	}
	// > The next line MUST start with the string `index` followed by a space
	// > (U+0020) and the zero-based index of the entry in the log,
	// > represented as an ASCII decimal with no leading zeroes (unless the
	// > index is `0`).
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return nil, fmt.Errorf("%w: missing index line", ErrMalformed)
	}
	is := strings.TrimPrefix(lines[0], "index ")
	idx, err := strconv.ParseUint(is, 10, 64)
	if err != nil || strconv.FormatUint(idx, 10) != is || idx >= 1<<63 {
		return nil, fmt.Errorf("%w: bad index %q", ErrMalformed, is)
	}
	p.Index = idx
	lines = lines[1:]
	if len(lines) > maxHashes {
		return nil, fmt.Errorf("%w: %d proof hashes, at most %d", ErrMalformed, len(lines), maxHashes)
	}
	for i, l := range lines {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 SHA-256 hash", ErrMalformed, i+1)
		}
		p.Hashes = append(p.Hashes, tlog.Hash(h))
	}
	if len(cp) == 0 {
		return nil, fmt.Errorf("%w: missing checkpoint", ErrMalformed)
	}
	return p, nil
}

// ErrInclusion means the inclusion proof does not lead to the checkpoint's
// root hash.
var ErrInclusion = errors.New("inclusion proof does not verify")

// VerifyInclusion checks that entry is at p.Index in the tree of the given
// size and root hash (those of p.Checkpoint, once the caller verified its
// signatures).
func (p *Proof) VerifyInclusion(entry []byte, size int64, root tlog.Hash) error {
	if p.Index >= uint64(size) {
		return fmt.Errorf("%w: index %d is not below tree size %d", ErrInclusion, p.Index, size)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(p.Hashes), size, root, int64(p.Index), tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("%w: %v", ErrInclusion, err)
	}
	return nil
}
