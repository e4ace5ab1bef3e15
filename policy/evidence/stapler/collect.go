package stapler

import (
	"context"
	"fmt"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
)

// Log is where a staple's proofs come from: a log in this process, or a
// log's HTTP API (LogClient).
type Log interface {
	// Proof returns the proof of entry idx under the newest witnessed
	// checkpoint.
	Proof(ctx context.Context, idx uint64) (*tlogproof.Proof, error)
	// IdentityProof returns the log's index proof for the identity of
	// release idx.
	IdentityProof(ctx context.Context, idx uint64) (*vindex.Proof, error)
}

// Collect gathers the staple of release idx: its inclusion proof, the
// index proof of its identity (which must cover it), and the proofs of
// the revocations that index proof lists (up to evidence.MaxRelated).
func Collect(ctx context.Context, l Log, idx uint64) (Staple, error) {
	p, err := l.Proof(ctx, idx)
	if err != nil {
		return Staple{}, err
	}
	ip, err := l.IdentityProof(ctx, idx)
	if err != nil {
		return Staple{}, err
	}
	ic, err := statement.ParseIndexCheckpoint(ip.Commit.Extra)
	if err != nil {
		return Staple{}, err
	}
	if ic.Size <= idx {
		return Staple{}, fmt.Errorf("the newest index checkpoint covers %d entries, not yet release %d", ic.Size, idx)
	}
	st := Staple{Proof: string(p.Marshal()), IndexProof: string(ip.Marshal())}
	for _, it := range ip.Items {
		if it.Kind != vindex.KindRevocation || len(st.Related) == evidence.MaxRelated {
			continue
		}
		rp, err := l.Proof(ctx, it.Index)
		if err != nil {
			return Staple{}, err
		}
		st.Related = append(st.Related, string(rp.Marshal()))
	}
	return st, nil
}
