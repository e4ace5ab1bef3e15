package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/attestlog/attestlog/log/vindex"
)

// VerifyIndexProof checks a log's index proof (log/vindex) under p, the one
// way every caller does — the client's NotRevoked check, `attestlog
// search`, the auditor's absence proofs: its checkpoint is signed by a log
// of the policy and cosigned by the witness quorum (VerifyCheckpoint), and
// the proof verifies under it (the index checkpoint is that log's, in the
// tree, and commits the listed entries for the key). Whether the index is
// current enough to decide an absence on is IndexCurrent.
func (p *Policy) VerifyIndexProof(ip *vindex.Proof) (*vindex.Verified, *Checkpoint, error) {
	cp, err := p.VerifyCheckpoint(ip.Commit.Checkpoint)
	if err != nil {
		return nil, cp, fmt.Errorf("index proof: %w", err)
	}
	v, err := p.IndexProofUnder(ip, cp)
	return v, cp, err
}

// IndexProofUnder is VerifyIndexProof for a checkpoint the caller has
// already opened (InspectCheckpoint): it requires the quorum, then
// verifies the proof under it.
func (p *Policy) IndexProofUnder(ip *vindex.Proof, cp *Checkpoint) (*vindex.Verified, error) {
	if p.Quorum == nil || !cp.QuorumMet {
		return nil, fmt.Errorf("index proof: its checkpoint is cosigned by %v, short of the quorum %v", cp.CosignerNames(), p.Quorum)
	}
	v, err := ip.VerifyProof(cp.Log.Verifier, cp.N, cp.Hash)
	if err != nil {
		return nil, fmt.Errorf("index proof: %w", err)
	}
	return v, nil
}

// IndexCurrent decides whether a verified index proof (under checkpoint cp)
// is current enough at now to prove an absence — that nothing revoked a
// release — under the policy's bound (AttestationPolicy.RevocationBound):
// vindex.Verified.Current, with the quorum's cosignature time of cp.
func (p *Policy) IndexCurrent(v *vindex.Verified, cp *Checkpoint, now time.Time) error {
	since, dated := p.QuorumTime(cp)
	if !dated {
		since = time.Time{}
	}
	if err := v.Current(now, p.Attestation.RevocationBound(), since); err != nil {
		return fmt.Errorf("index proof: %w", err)
	}
	return nil
}

// ErrStaleCheckpoint is wrapped by CheckpointFresh errors.
var ErrStaleCheckpoint = errors.New("checkpoint too old")

// CheckpointFresh is the one rule of a checkpoint's freshness: with a
// max-checkpoint-age, the witnesses making up the quorum must all have
// cosigned it (QuorumTime) within it. It returns how long ago they did
// (zero when the policy sets no age and nothing dates it).
func (p *Policy) CheckpointFresh(cp *Checkpoint, now time.Time) (time.Duration, error) {
	maxAge := p.Attestation.MaxCheckpointAge
	since, dated := p.QuorumTime(cp)
	switch {
	case maxAge == 0:
		if !dated {
			return 0, nil
		}
		return now.Sub(since), nil
	case !dated:
		return 0, fmt.Errorf("%w: no quorum of dated witness cosignatures dates the checkpoint; policy requires one newer than %v", ErrStaleCheckpoint, maxAge)
	case now.Sub(since) > maxAge:
		return now.Sub(since), fmt.Errorf("%w: the quorum %s last cosigned at %s, %v ago; policy allows %v (fetch a fresh proof)", ErrStaleCheckpoint, p.Quorum, since.UTC().Format(time.RFC3339), now.Sub(since).Round(time.Second), maxAge)
	}
	return now.Sub(since), nil
}
