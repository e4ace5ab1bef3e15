package vindex

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
)

// ProofHeader is the first line of an index proof.
const ProofHeader = "attestlog.dev/vindex-proof/v2"

// MaxProofSize bounds the index proofs Parse accepts: the index
// checkpoint's tlog-proof is small (the entry is a short note), a map
// proof at most 256 siblings, and a key of a few thousand entries.
const MaxProofSize = 256 << 10

// MaxItems bounds the entries one proof may list.
const MaxItems = 10000

// ErrMalformed is wrapped by every ParseProof error.
var ErrMalformed = errors.New("malformed index proof")

// Proof is the answer to a lookup: the entries about a typed digest
// (none: a proof of absence), the map proof of them under an index root,
// and the index checkpoint committing that root with its inclusion proof
// under a signed, cosigned checkpoint of the log.
//
// Text form:
//
//	attestlog.dev/vindex-proof/v2
//	key <type> <hex digest>
//	entry <index> <kind>          (one per entry, ascending)
//	map <base64 MapProof>
//
//	<c2sp.org/tlog-proof of the index checkpoint entry>
type Proof struct {
	Type   KeyType
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
	b.WriteString("key " + string(p.Type) + " " + hex.EncodeToString(p.Digest) + "\n")
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
	f := strings.Split(lines[1], " ")
	if len(f) != 3 || f[0] != "key" {
		return nil, fmt.Errorf("%w: second line must be 'key TYPE HEX'", ErrMalformed)
	}
	t, err := ParseKeyType(f[1])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d, err := hex.DecodeString(f[2])
	if err != nil || hex.EncodeToString(d) != f[2] {
		return nil, fmt.Errorf("%w: key %q is not lowercase hex", ErrMalformed, short(f[2]))
	}
	if err := t.CheckDigest(d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p.Type, p.Digest = t, d
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
	// Checkpoint.Size entries, as of Checkpoint.Time.
	Checkpoint *statement.IndexCheckpoint
	// Entry is the index checkpoint's own index in the log.
	Entry uint64
	// LogSize and LogRoot are the log checkpoint the index checkpoint is
	// proven under (its signature and cosignatures are the caller's to
	// check: see VerifyProof).
	LogSize int64
	Items   []Item
}

// ErrStale is wrapped by Verified.Current errors: the index could miss
// entries (a revocation among them) that the client must not miss.
var ErrStale = errors.New("index proof too stale to decide on")

// MaxClockSkew is how far in the client's future an index checkpoint's
// time may lie. Beyond it the log's clock (or the client's) is wrong, and
// the checkpoint does not say how stale it is.
const MaxClockSkew = 5 * time.Minute

// Complete reports whether the index checkpoint is the last entry of the
// log checkpoint it is proven under and covers every entry before it:
// then it misses nothing of that tree, however long ago it was signed. (A
// log at rest ends with one: it commits when anything but an index
// checkpoint arrived.)
func (v *Verified) Complete() bool {
	return v.LogSize > 0 && v.Entry == uint64(v.LogSize)-1 && v.Checkpoint.Size == v.Entry
}

// Current decides whether the index is current enough to prove an absence
// (that nothing revoked a release, say) at time now, for a client that
// tolerates missing what was logged in the last maxAge: either the log
// signed the index checkpoint within maxAge of now, or it is Complete
// under a log checkpoint whose witness quorum cosigned it within maxAge of
// now (cosigned: the quorum's time, zero when no quorum dated it).
//
// Why it is needed: an index checkpoint signed before a revocation stays
// in the log for ever, and anyone can rebuild the map at its size and
// prove it under today's checkpoint. Only its time, or its being the last
// word of a tree the witnesses saw recently, says that nothing came
// after it.
func (v *Verified) Current(now time.Time, maxAge time.Duration, cosigned time.Time) error {
	if v.Checkpoint.Version != 2 {
		return fmt.Errorf("%w: an index checkpoint of map version %d is not dated", ErrStale, v.Checkpoint.Version)
	}
	if maxAge <= 0 {
		return fmt.Errorf("%w: no bound on its age is configured", ErrStale)
	}
	age := now.Sub(v.Checkpoint.Time)
	if age < -MaxClockSkew {
		return fmt.Errorf("%w: the index checkpoint is dated %s, %v in the future (the log's clock or this one is wrong)",
			ErrStale, v.Checkpoint.Time.Format(time.RFC3339), (-age).Round(time.Second))
	}
	if age <= maxAge {
		return nil
	}
	if v.Complete() {
		if !cosigned.IsZero() && now.Sub(cosigned) <= maxAge {
			return nil
		}
		return fmt.Errorf("%w: the index checkpoint ends the tree of %d, but no witness quorum cosigned that tree within %v", ErrStale, v.LogSize, maxAge)
	}
	return fmt.Errorf("%w: the index over the log's first %d entries was signed %v ago (at %s), and %d entries follow it in the tree of %d; the policy allows %v (fetch a fresh proof)",
		ErrStale, v.Checkpoint.Size, age.Round(time.Second), v.Checkpoint.Time.Format(time.RFC3339), uint64(v.LogSize)-v.Entry-1, v.LogSize, maxAge)
}

// VerifyProof checks p for a log whose note key is logKey, under the
// log checkpoint of size logSize and root logRoot that the caller has
// verified (signature, witness quorum, freshness) from p.Commit.Checkpoint:
// the index checkpoint is the log's, of map version 2, is in that tree,
// and commits a root under which the typed digest's entries are p.Items
// — all of them, so none listed means none exists among the index
// checkpoint's entries. Whether that index is recent enough to decide on
// is Verified.Current's question.
func (p *Proof) VerifyProof(logKey note.Verifier, logSize int64, logRoot [32]byte) (*Verified, error) {
	ic, err := statement.VerifyIndexCheckpoint(p.Commit.Extra, logKey)
	if err != nil {
		return nil, err
	}
	if ic.Version != MapVersion {
		return nil, fmt.Errorf("index checkpoint of map version %d; this client reads version %d", ic.Version, MapVersion)
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
	if err := p.Map.Verify(ic.Root, Key(p.Type, p.Digest), p.Items); err != nil {
		return nil, err
	}
	return &Verified{Checkpoint: ic, Entry: p.Commit.Index, LogSize: logSize, Items: p.Items}, nil
}
