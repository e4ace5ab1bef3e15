package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"filippo.io/torchwood"
)

// Quorum decides whether a set of witnesses (by policy name) that cosigned
// a checkpoint is enough.
type Quorum interface {
	// Satisfied reports whether the witnesses named in cosigned meet the
	// quorum.
	Satisfied(cosigned map[string]bool) bool
	// String describes the quorum for people, e.g. "2 of {a, b, c}".
	String() string
}

type group struct {
	name    string
	k       int
	members []Quorum
}

func (g *group) Satisfied(c map[string]bool) bool {
	n := 0
	for _, m := range g.members {
		if m.Satisfied(c) {
			n++
		}
	}
	return n >= g.k
}

func (g *group) String() string {
	var s []string
	for _, m := range g.members {
		s = append(s, m.String())
	}
	return fmt.Sprintf("%d of {%s}", g.k, strings.Join(s, ", "))
}

type witnessQ struct{ name string }

func (w witnessQ) Satisfied(c map[string]bool) bool { return c[w.name] }
func (w witnessQ) String() string                   { return w.name }

type noQuorum struct{}

func (noQuorum) Satisfied(map[string]bool) bool { return true }
func (noQuorum) String() string                 { return "none" }

func asQuorum(v any) Quorum {
	switch v := v.(type) {
	case *Witness:
		return witnessQ{v.Name}
	case *group:
		return v
	}
	panic("unreachable")
}

// MaxCheckpointSize bounds a signed checkpoint (with its cosignatures).
const MaxCheckpointSize = 64 << 10

// Errors of VerifyCheckpoint.
var (
	ErrUnknownLog     = errors.New("checkpoint is from a log the policy does not trust")
	ErrLogSignature   = errors.New("checkpoint is not signed by the log's key")
	ErrQuorum         = errors.New("checkpoint is not cosigned by the witness quorum")
	ErrNoQuorumPolicy = errors.New("policy has no quorum line")
)

// Checkpoint is a checkpoint verified against a policy.
type Checkpoint struct {
	torchwood.Checkpoint
	Log  *Log
	Note *note.Note
	// Cosigned maps the policy name of each witness with a valid
	// cosignature to its timestamp.
	Cosigned map[string]time.Time
	// QuorumMet reports whether the policy's quorum is met.
	QuorumMet bool
}

// CosignerNames returns the sorted names of the witnesses that cosigned.
func (c *Checkpoint) CosignerNames() []string {
	var n []string
	for k := range c.Cosigned {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// InspectCheckpoint verifies the log signature of a signed checkpoint note
// and collects the valid cosignatures of the policy's witnesses, WITHOUT
// requiring the quorum: for pages and monitors that show partial
// cosignatures, and for callers that report a missing quorum themselves
// (QuorumMet says). A trust decision calls [Policy.VerifyCheckpoint],
// which fails unless the quorum holds.
func (p *Policy) InspectCheckpoint(signed []byte) (*Checkpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: checkpoint is %d bytes, the limit is %d", ErrLogSignature, len(signed), MaxCheckpointSize)
	}
	// Find the log by the origin line before verifying.
	origin, _, _ := strings.Cut(string(signed), "\n")
	l := p.Log(origin)
	if l == nil {
		return nil, fmt.Errorf("%w: origin %q", ErrUnknownLog, origin)
	}
	vs := []note.Verifier{l.Verifier}
	byKey := map[string]*Witness{}
	for _, w := range p.Witnesses {
		vs = append(vs, w.Verifier)
		byKey[fmt.Sprintf("%s+%08x", w.Verifier.Name(), w.Verifier.KeyHash())] = w
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLogSignature, err)
	}
	logSigned := false
	cos := map[string]time.Time{}
	for _, s := range n.Sigs {
		if s.Name == l.Verifier.Name() && s.Hash == l.Verifier.KeyHash() {
			logSigned = true
			continue
		}
		if w := byKey[fmt.Sprintf("%s+%08x", s.Name, s.Hash)]; w != nil {
			ts, err := fnote.CoSigV1Timestamp(s)
			if err != nil {
				continue
			}
			cos[w.Name] = ts
		}
	}
	if !logSigned {
		return nil, ErrLogSignature
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, fmt.Errorf("parsing checkpoint: %w", err)
	}
	c := &Checkpoint{Checkpoint: cp, Log: l, Note: n, Cosigned: cos}
	if p.Quorum != nil {
		c.QuorumMet = p.Quorum.Satisfied(map[string]bool(boolSet(cos)))
	}
	return c, nil
}

// QuorumTime returns when the policy's quorum last held for c: the
// latest time T such that the witnesses whose cosignatures are dated T or
// later make up the quorum. Only cosignatures that make up the quorum
// count: a fresh cosignature from one witness does not freshen a
// checkpoint the quorum cosigned long ago. It is false when the quorum is
// not met by dated cosignatures (a "quorum none" policy has none).
func (p *Policy) QuorumTime(c *Checkpoint) (time.Time, bool) {
	if p.Quorum == nil || len(c.Cosigned) == 0 {
		return time.Time{}, false
	}
	names := c.CosignerNames()
	sort.SliceStable(names, func(i, j int) bool { return c.Cosigned[names[i]].After(c.Cosigned[names[j]]) })
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
		if p.Quorum.Satisfied(set) {
			return c.Cosigned[n], true
		}
	}
	return time.Time{}, false
}

func boolSet(m map[string]time.Time) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// VerifyCheckpoint opens a checkpoint for a trust decision: the log's
// signature and the policy's witness quorum, or an error (ErrQuorum;
// ErrNoQuorumPolicy for a policy without a quorum line).
func (p *Policy) VerifyCheckpoint(signed []byte) (*Checkpoint, error) {
	c, err := p.InspectCheckpoint(signed)
	if err != nil {
		return nil, err
	}
	if p.Quorum == nil {
		return c, ErrNoQuorumPolicy
	}
	if !c.QuorumMet {
		return c, fmt.Errorf("%w: need %s, have %v", ErrQuorum, p.Quorum, c.CosignerNames())
	}
	return c, nil
}
