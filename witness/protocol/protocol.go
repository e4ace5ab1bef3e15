// Package protocol is the wire format of [c2sp.org/tlog-witness]: the
// add-checkpoint request body, the 409 Conflict size body, and a small client
// for both endpoints (add-checkpoint and the monitor checkpoint read).
//
// It is importable by logs and monitors; the witness server lives in the
// parent package.
//
// [c2sp.org/tlog-witness]: https://c2sp.org/tlog-witness
package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

const (
	// ContentTypeTreeSize is the Content-Type of a 409 Conflict response.
	//
	// > The response MUST have a `Content-Type` of `text/x.tlog.size`.
	ContentTypeTreeSize = "text/x.tlog.size"

	// MaxProofLines is the most consistency proof lines a request may carry.
	//
	// > The client MUST NOT send more than 63 consistency proof lines.
	MaxProofLines = 63

	// DefaultMaxRequestBytes is the default limit on an add-checkpoint body.
	// A 63-line proof is under 3 KiB; the rest is room for a checkpoint
	// carrying many (possibly ML-DSA) signatures.
	DefaultMaxRequestBytes = 64 << 10

	// HashSize is the size of a Merkle tree hash (SHA-256).
	HashSize = 32
)

// ErrMalformedRequest is returned (wrapped) by ParseAddCheckpointRequest for
// a body that does not follow the format; a witness answers 400.
var ErrMalformedRequest = errors.New("malformed add-checkpoint request")

// AddCheckpointRequest is the body of POST <submission prefix>/add-checkpoint.
type AddCheckpointRequest struct {
	// OldSize is the tree size of the latest checkpoint the client believes
	// the witness cosigned (0 if none).
	OldSize uint64
	// Proof is the consistency proof from OldSize to the checkpoint size,
	// one 32-byte hash per element.
	Proof [][HashSize]byte
	// Checkpoint is the signed note, verbatim.
	Checkpoint []byte
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedRequest, fmt.Sprintf(format, args...))
}

// ParseAddCheckpointRequest parses an add-checkpoint request body. It checks
// the framing only; the checkpoint is returned verbatim for the caller to
// verify as a signed note. The caller limits the body size before reading.
//
// > The request body MUST be a sequence of
// >   - an old size line,
// >   - zero or more consistency proof lines,
// >   - and an empty line,
// >   - followed by a [checkpoint][].
// >
// > Each line MUST terminate in a newline character (U+000A).
func ParseAddCheckpointRequest(body []byte) (*AddCheckpointRequest, error) {
	// Proof lines are never empty, so the first empty line is the separator.
	header, checkpoint, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, malformed("no empty line before the checkpoint")
	}
	if len(checkpoint) == 0 {
		return nil, malformed("no checkpoint after the empty line")
	}
	lines := bytes.Split(header, []byte("\n"))
	oldLine, ok := bytes.CutPrefix(lines[0], []byte("old "))
	if !ok {
		return nil, malformed("first line is not \"old <size>\"")
	}
	// > The old size line MUST consist of the string `old`, a single space
	// > (0x20), and the tree size of the previous checkpoint encoded as an
	// > ASCII decimal with no leading zeroes (unless the size is zero, in
	// > which case the encoding MUST be `0`).
	old, err := ParseTreeSize(string(oldLine))
	if err != nil {
		return nil, malformed("old size: %v", err)
	}
	proofLines := lines[1:]
	if len(proofLines) > MaxProofLines {
		return nil, malformed("%d consistency proof lines, more than %d", len(proofLines), MaxProofLines)
	}
	req := &AddCheckpointRequest{OldSize: old, Checkpoint: checkpoint}
	if len(proofLines) > 0 {
		req.Proof = make([][HashSize]byte, len(proofLines))
	}
	for i, l := range proofLines {
		// > Each consistency proof line MUST encode a single hash in base64.
		h, err := parseHash(l)
		if err != nil {
			return nil, malformed("consistency proof line %d: %v", i+1, err)
		}
		req.Proof[i] = h
	}
	return req, nil
}

// parseHash decodes a canonical standard base64 encoding of a 32-byte hash.
// Canonical means re-encoding gives the same string, which rejects the
// carriage returns and non-zero padding bits the decoder would let through.
func parseHash(b []byte) ([HashSize]byte, error) {
	var h [HashSize]byte
	if len(b) != base64.StdEncoding.EncodedLen(HashSize) {
		return h, errors.New("not a base64 32-byte hash")
	}
	// Decode into a buffer of DecodedLen: 44 characters without padding
	// decode to 33 bytes.
	var buf [HashSize + 1]byte
	n, err := base64.StdEncoding.Decode(buf[:], b)
	if err != nil || n != HashSize {
		return h, errors.New("not a base64 32-byte hash")
	}
	copy(h[:], buf[:HashSize])
	if base64.StdEncoding.EncodeToString(h[:]) != string(b) {
		return h, errors.New("not a canonical base64 32-byte hash")
	}
	return h, nil
}

// ParseTreeSize parses an ASCII decimal tree size with no leading zeroes
// (the encoding of "0" is "0"), at most 2^63-1 so that it fits the int64
// sizes of golang.org/x/mod/sumdb/tlog.
func ParseTreeSize(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a decimal tree size without leading zeroes", s)
	}
	return n, nil
}

// Marshal encodes r as a request body.
func (r *AddCheckpointRequest) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(16 + len(r.Proof)*45 + len(r.Checkpoint))
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseConflictBody parses the body of a 409 Conflict response: the size of
// the latest cosigned checkpoint followed by a newline.
//
// > The response body MUST consist of the tree size of the latest cosigned
// > checkpoint in decimal, followed by a newline (U+000A).
func ParseConflictBody(body []byte) (uint64, error) {
	s, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok {
		return 0, errors.New("409 body does not end in a newline")
	}
	return ParseTreeSize(string(s))
}

// OriginHash returns the lowercase hex SHA-256 of origin, the path element of
// the monitor retrieval endpoint GET <monitoring prefix>/<origin hash>/checkpoint.
func OriginHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}
