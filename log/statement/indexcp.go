package statement

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// KindIndexCheckpoint is an entry the log appends itself: a signed note
// committing the root of its verifiable index (log/vindex) over its first
// Size entries. Nobody else may submit one.
const KindIndexCheckpoint Kind = "index-checkpoint"

// IndexCheckpointHeader is the first line of an index checkpoint note. It
// is not an origin, so an index checkpoint never passes for a checkpoint
// of the log (whose first line is the origin).
const IndexCheckpointHeader = "attestlog.dev/vindex/v1"

// MaxIndexCheckpointSize bounds an index checkpoint entry.
const MaxIndexCheckpointSize = 4 << 10

// IndexCheckpoint commits the verifiable index of log Origin over its
// first Size entries to Root.
type IndexCheckpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
	// Entry is the signed note it was parsed from (nil for one made to
	// be signed).
	Entry []byte
}

// Text is the note text the log signs:
//
//	attestlog.dev/vindex/v1
//	<origin>
//	<size, decimal>
//	<root, base64>
func (c IndexCheckpoint) Text() string {
	return fmt.Sprintf("%s\n%s\n%d\n%s\n", IndexCheckpointHeader, c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// IsIndexCheckpoint reports whether entry is meant as an index checkpoint.
func IsIndexCheckpoint(entry []byte) bool {
	return bytes.HasPrefix(entry, []byte(IndexCheckpointHeader+"\n"))
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
	if len(lines) != 4 || lines[0] != IndexCheckpointHeader || lines[1] == "" {
		return nil, fmt.Errorf("%w: index checkpoint text must be %q, origin, size, root", ErrMalformed, IndexCheckpointHeader)
	}
	n, err := strconv.ParseUint(lines[2], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != lines[2] {
		return nil, fmt.Errorf("%w: index checkpoint size %q", ErrMalformed, lines[2])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[3])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("%w: index checkpoint root %q is not 32 bytes of base64", ErrMalformed, lines[3])
	}
	c := &IndexCheckpoint{Origin: lines[1], Size: n, Entry: entry}
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

// SignIndexCheckpoint returns the entry of c signed by the log's signer.
func SignIndexCheckpoint(c IndexCheckpoint, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Text()}, s)
}
