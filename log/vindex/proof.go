package vindex

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
)

// ProofHeader is the first line of an index proof.
const ProofHeader = "attestlog.dev/vindex-proof/v1"

// MaxProofSize bounds the index proofs Parse accepts: the index
// checkpoint's tlog-proof is small (the entry is a short note), a map
// proof at most 256 siblings, and a key of a few thousand entries.
const MaxProofSize = 256 << 10

// MaxItems bounds the entries one proof may list.
const MaxItems = 10000

// ErrMalformed is wrapped by every ParseProof error.
var ErrMalformed = errors.New("malformed index proof")

// Proof is the answer to a lookup: the entries about a digest (none: a
// proof of absence), the map proof of them under an index root, and the
// index checkpoint committing that root with its inclusion proof under a
// signed, cosigned checkpoint of the log.
//
// Text form:
//
//	attestlog.dev/vindex-proof/v1
//	key <hex digest>
//	entry <index> <kind>          (one per entry, ascending)
//	map <base64 MapProof>
//
//	<c2sp.org/tlog-proof of the index checkpoint entry>
type Proof struct {
	Digest []byte
	Items  []Item
	Map    *MapProof
	// Commit proves the index checkpoint entry (its Extra) in the log.
	Commit *tlogproof.Proof
}

// Marshal returns the text form of p.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	b.WriteString("key " + hex.EncodeToString(p.Digest) + "\n")
	for _, it := range p.Items {
		fmt.Fprintf(&b, "entry %d %s\n", it.Index, KindName(it.Kind))
	}
	b.WriteString("map " + base64.StdEncoding.EncodeToString(p.Map.Marshal()) + "\n\n")
	b.Write(p.Commit.Marshal())
	return b.Bytes()
}

func kindByte(name string) (byte, bool) {
	for _, k := range []byte{KindRelease, KindReproduction, KindRevocation} {
		if KindName(k) == name {
			return k, true
		}
	}
	return 0, false
}

// ParseProof parses an index proof strictly.
func ParseProof(b []byte) (*Proof, error) {
	if len(b) > MaxProofSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(b), MaxProofSize)
	}
	head, rest, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no blank line before the tlog-proof", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 3 || lines[0] != ProofHeader {
		return nil, fmt.Errorf("%w: want %q, key, entries, map", ErrMalformed, ProofHeader)
	}
	p := &Proof{}
	key, ok := strings.CutPrefix(lines[1], "key ")
	if !ok {
		return nil, fmt.Errorf("%w: second line must be 'key HEX'", ErrMalformed)
	}
	d, err := hex.DecodeString(key)
	if err != nil || len(d) == 0 || len(d) > 64 || hex.EncodeToString(d) != key {
		return nil, fmt.Errorf("%w: key %q is not lowercase hex of 1 to 64 bytes", ErrMalformed, short(key))
	}
	p.Digest = d
	for _, l := range lines[2 : len(lines)-1] {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[0] != "entry" {
			return nil, fmt.Errorf("%w: line %q is not 'entry INDEX KIND'", ErrMalformed, short(l))
		}
		i, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || strconv.FormatUint(i, 10) != f[1] {
			return nil, fmt.Errorf("%w: entry index %q", ErrMalformed, short(f[1]))
		}
		k, ok := kindByte(f[2])
		if !ok {
			return nil, fmt.Errorf("%w: entry kind %q", ErrMalformed, short(f[2]))
		}
		if n := len(p.Items); n > 0 && p.Items[n-1].Index >= i {
			return nil, fmt.Errorf("%w: entries not in ascending order", ErrMalformed)
		}
		if len(p.Items) == MaxItems {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformed, MaxItems)
		}
		p.Items = append(p.Items, Item{Index: i, Kind: k})
	}
	mp, ok := strings.CutPrefix(lines[len(lines)-1], "map ")
	if !ok {
		return nil, fmt.Errorf("%w: the last line before the blank one must be 'map BASE64'", ErrMalformed)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(mp)
	if err != nil {
		return nil, fmt.Errorf("%w: map proof: %v", ErrMalformed, err)
	}
	if p.Map, err = ParseMapProof(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.Commit, err = tlogproof.Parse(rest); err != nil {
		return nil, fmt.Errorf("%w: index checkpoint: %v", ErrMalformed, err)
	}
	return p, nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Verified is what a verified proof shows.
type Verified struct {
	// Checkpoint is the index checkpoint: the index over the log's first
	// Checkpoint.Size entries.
	Checkpoint *statement.IndexCheckpoint
	// LogSize and LogRoot are the log checkpoint the index checkpoint is
	// proven under (its signature and cosignatures are the caller's to
	// check: see VerifyProof).
	LogSize int64
	Items   []Item
}

// VerifyProof checks p for a log whose note key is logKey, under the
// log checkpoint of size logSize and root logRoot that the caller has
// verified (signature, witness quorum, freshness) from p.Commit.Checkpoint:
// the index checkpoint is the log's, is in that tree, and commits a root
// under which the digest's entries are p.Items — all of them, so none
// listed means none exists among the index checkpoint's entries.
func (p *Proof) VerifyProof(logKey note.Verifier, logSize int64, logRoot [32]byte) (*Verified, error) {
	ic, err := statement.VerifyIndexCheckpoint(p.Commit.Extra, logKey)
	if err != nil {
		return nil, err
	}
	if err := p.Commit.VerifyInclusion(p.Commit.Extra, logSize, logRoot); err != nil {
		return nil, fmt.Errorf("index checkpoint not in the log: %w", err)
	}
	if ic.Size > p.Commit.Index {
		return nil, fmt.Errorf("index checkpoint at entry %d claims to cover %d entries", p.Commit.Index, ic.Size)
	}
	for _, it := range p.Items {
		if it.Index >= ic.Size {
			return nil, fmt.Errorf("entry %d is past the index checkpoint's %d entries", it.Index, ic.Size)
		}
	}
	if err := p.Map.Verify(ic.Root, Key(p.Digest), p.Items); err != nil {
		return nil, err
	}
	return &Verified{Checkpoint: ic, LogSize: logSize, Items: p.Items}, nil
}
