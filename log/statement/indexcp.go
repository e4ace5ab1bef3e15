package statement

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// KindIndexCheckpoint is an entry the log appends itself: a signed note
// committing the root of its verifiable index (log/vindex) over its first
// Size entries. Nobody else may submit one.
const KindIndexCheckpoint Kind = "index-checkpoint"

// IndexCheckpointHeader is the first line of the index checkpoints the
// log signs (map version 2, dated). It is not an origin, so an index
// checkpoint never passes for a checkpoint of the log (whose first line
// is the origin).
const IndexCheckpointHeader = "attestlog.dev/vindex/v2"

// IndexCheckpointHeaderV1 is the first line of the index checkpoints of
// map version 1 (undated, untyped keys), which logs signed before
// version 2. They still parse, so old logs stay readable, but no client
// decision rests on them: their map filed a revocation under every digest
// of the release, whatever its type, and nothing dated them.
const IndexCheckpointHeaderV1 = "attestlog.dev/vindex/v1"

// MaxIndexCheckpointSize bounds an index checkpoint entry.
const MaxIndexCheckpointSize = 4 << 10

// IndexCheckpoint commits the verifiable index of log Origin over its
// first Size entries to Root, as of Time.
type IndexCheckpoint struct {
	// Version is the map version: 2 for the checkpoints signed now, 1 for
	// those of old logs (no Time).
	Version int
	Origin  string
	Size    uint64
	Root    [32]byte
	// Time is when the log signed it (whole seconds; version 2). A client
	// bounds how stale an index it accepts by it: see log/vindex.
	Time time.Time
	// Entry is the signed note it was parsed from (nil for one made to
	// be signed).
	Entry []byte
}

// Text is the note text the log signs (version 2):
//
//	attestlog.dev/vindex/v2
//	<origin>
//	<size, decimal>
//	<root, base64>
//	time <unix seconds, decimal>
//
// and for version 1 the first four lines, with the version 1 header.
func (c IndexCheckpoint) Text() string {
	root := base64.StdEncoding.EncodeToString(c.Root[:])
	if c.Version == 1 {
		return fmt.Sprintf("%s\n%s\n%d\n%s\n", IndexCheckpointHeaderV1, c.Origin, c.Size, root)
	}
	return fmt.Sprintf("%s\n%s\n%d\n%s\ntime %d\n", IndexCheckpointHeader, c.Origin, c.Size, root, c.Time.Unix())
}

// IsIndexCheckpoint reports whether entry is meant as an index checkpoint
// (of either version).
func IsIndexCheckpoint(entry []byte) bool {
	return bytes.HasPrefix(entry, []byte(IndexCheckpointHeader+"\n")) || bytes.HasPrefix(entry, []byte(IndexCheckpointHeaderV1+"\n"))
}

// ParseIndexCheckpoint parses an index checkpoint entry's note text
// strictly, without checking its signature (VerifyIndexCheckpoint does).
func ParseIndexCheckpoint(entry []byte) (*IndexCheckpoint, error) {
	if len(entry) > MaxIndexCheckpointSize {
		return nil, fmt.Errorf("%w: index checkpoint is %d bytes, the limit is %d", ErrMalformed, len(entry), MaxIndexCheckpointSize)
	}
	text, sigs, ok := strings.Cut(string(entry), "\n\n")
	if !ok || sigs == "" || !strings.HasSuffix(sigs, "\n") {
		return nil, fmt.Errorf("%w: index checkpoint is not a signed note", ErrMalformed)
	}
	lines := strings.Split(text, "\n")
	c := &IndexCheckpoint{Entry: entry}
	switch {
	case len(lines) == 5 && lines[0] == IndexCheckpointHeader:
		c.Version = 2
		t, ok := strings.CutPrefix(lines[4], "time ")
		n, err := strconv.ParseInt(t, 10, 64)
		if !ok || err != nil || n < 0 || strconv.FormatInt(n, 10) != t {
			return nil, fmt.Errorf("%w: index checkpoint time line %q is not 'time SECONDS'", ErrMalformed, short(lines[4]))
		}
		c.Time = time.Unix(n, 0).UTC()
	case len(lines) == 4 && lines[0] == IndexCheckpointHeaderV1:
		c.Version = 1
	default:
		return nil, fmt.Errorf("%w: index checkpoint text must be %q, origin, size, root, time", ErrMalformed, IndexCheckpointHeader)
	}
	if lines[1] == "" {
		return nil, fmt.Errorf("%w: index checkpoint has an empty origin", ErrMalformed)
	}
	n, err := strconv.ParseUint(lines[2], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != lines[2] {
		return nil, fmt.Errorf("%w: index checkpoint size %q", ErrMalformed, short(lines[2]))
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[3])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("%w: index checkpoint root %q is not 32 bytes of base64", ErrMalformed, short(lines[3]))
	}
	c.Origin, c.Size = lines[1], n
	copy(c.Root[:], root)
	return c, nil
}

// VerifyIndexCheckpoint parses an index checkpoint entry and checks that
// the log (v, whose name is the origin) signed it.
func VerifyIndexCheckpoint(entry []byte, v note.Verifier) (*IndexCheckpoint, error) {
	c, err := ParseIndexCheckpoint(entry)
	if err != nil {
		return nil, err
	}
	if c.Origin != v.Name() {
		return nil, fmt.Errorf("index checkpoint of log %q, not %q", c.Origin, v.Name())
	}
	n, err := note.Open(entry, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("index checkpoint not signed by the log: %v", err)
	}
	if n.Text != c.Text() {
		return nil, fmt.Errorf("%w: index checkpoint text is not canonical", ErrMalformed)
	}
	return c, nil
}

// SignIndexCheckpoint returns the entry of c signed by the log's signer:
// a version 2 checkpoint (c.Version is ignored), its time c.Time to the
// second.
func SignIndexCheckpoint(c IndexCheckpoint, s note.Signer) ([]byte, error) {
	c.Version = 2
	return note.Sign(&note.Note{Text: c.Text()}, s)
}
