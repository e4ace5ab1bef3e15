package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"filippo.io/torchwood"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/witness/internal/store"
	"github.com/attestlog/attestlog/witness/protocol"
)

// reqInfo is what one add-checkpoint request learnt, for its log line.
type reqInfo struct {
	origin string
	old    uint64
	size   uint64
	hasCP  bool
}

// addCheckpoint runs the add-checkpoint checks of c2sp.org/tlog-witness on
// body, in the order the specification gives them, and on success returns
// the cosignature line after the new state is durable.
func (w *Witness) addCheckpoint(ctx context.Context, body []byte, info *reqInfo) ([]byte, error) {
	req, err := protocol.ParseAddCheckpointRequest(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	info.old = req.OldSize
	// The origin is the first line of the note; the note is verified below
	// with the keys of that origin only.
	origin, _, ok := bytes.Cut(req.Checkpoint, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint has no newline", ErrMalformed)
	}
	info.origin = string(origin)

	lg, err := w.store.Log(ctx, info.origin)
	if errors.Is(err, store.ErrUnknownLog) {
		// > If the checkpoint origin is unknown, the witness MUST respond
		// > with a "404 Not Found" HTTP status code.
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, info.origin)
	}
	if err != nil {
		return nil, err
	}
	verifiers := make([]note.Verifier, 0, len(lg.Keys))
	for _, k := range lg.Keys {
		v, err := fnote.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("stored key %q of %q: %v", k, info.origin, err)
		}
		verifiers = append(verifiers, v)
	}

	// > The witness MUST verify the checkpoint signature against the public
	// > key(s) it trusts for the checkpoint origin, and it MUST ignore
	// > signatures from unknown keys. [...] The witness MUST respond with a
	// > "403 Forbidden" HTTP status code if either no signature from a
	// > trusted key for the origin is present, or a signature line's key name
	// > and ID match a trusted key but the signature itself fails to verify.
	// note.Open ignores unknown keys, and reports the two 403 cases as
	// UnverifiedNoteError and InvalidSignatureError.
	n, err := note.Open(req.Checkpoint, note.VerifierList(verifiers...))
	var une *note.UnverifiedNoteError
	var ise *note.InvalidSignatureError
	switch {
	case errors.As(err, &une):
		return nil, fmt.Errorf("%w: no signature from a key of %q", ErrSignature, info.origin)
	case errors.As(err, &ise):
		return nil, fmt.Errorf("%w: signature by %s+%08x does not verify", ErrSignature, ise.Name, ise.Hash)
	case err != nil:
		return nil, fmt.Errorf("%w: checkpoint is not a signed note: %v", ErrMalformed, err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || cp.Origin == "" {
		return nil, fmt.Errorf("%w: not a c2sp.org/tlog-checkpoint", ErrMalformed)
	}
	size, hash := uint64(cp.N), cp.Hash
	info.size, info.hasCP = size, true

	// > The old size MUST be equal to or lower than the checkpoint size.
	// > Otherwise, the witness MUST respond with a "400 Bad Request" HTTP
	// > status code.
	if req.OldSize > size {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint size %d", ErrMalformed, req.OldSize, size)
	}

	// > The witness MUST check that the old size matches the size of the
	// > latest checkpoint it cosigned for the checkpoint's origin (or zero if
	// > it never cosigned a checkpoint for that origin). If it doesn't match,
	// > the witness MUST respond with a "409 Conflict" HTTP status code.
	if req.OldSize != lg.Size {
		return nil, &ConflictError{Size: lg.Size}
	}

	// > A checkpoint of size zero MUST have the root hash of the empty tree
	// > [...]. Otherwise, the witness MUST respond with a "422 Unprocessable
	// > Entity" HTTP status code.
	if size == 0 && hash != tlog.Hash(store.EmptyTreeHash) {
		return nil, fmt.Errorf("%w: a size-0 checkpoint must have the empty tree's root", ErrInconsistent)
	}

	switch {
	case req.OldSize == 0:
		// > If the old size is zero, the consistency proof MUST be empty
		// > [...]. If the proof is not empty when the old size is zero [...]
		// > the witness MUST respond with a "422 Unprocessable Entity".
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("%w: a consistency proof from size 0 must be empty", ErrInconsistent)
		}
		if size == 0 && hash != tlog.Hash(lg.Hash) {
			return nil, fmt.Errorf("%w: internal: recorded size-0 root is not the empty tree's", ErrInconsistent)
		}
	case req.OldSize == size:
		// > If the old size matches the checkpoint size, the witness MUST
		// > check that the root hashes are also identical. If they don't
		// > match, the witness MUST respond with a "422 Unprocessable Entity"
		// > HTTP status code.
		if hash != tlog.Hash(lg.Hash) {
			w.recordEvidence(ctx, "split-view", info.origin, body, lg.Checkpoint)
			return nil, fmt.Errorf("%w: size %d was cosigned with root %s, not %s",
				ErrInconsistent, size, b64(lg.Hash[:]), b64(hash[:]))
		}
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("%w: a consistency proof between equal sizes must be empty", ErrInconsistent)
		}
	default:
		// > Otherwise, the consistency proof lines MUST encode a Merkle
		// > Consistency Proof from the old size to the checkpoint size
		// > according to [RFC 6962], Section 2.1.2. [...] if a Merkle
		// > Consistency Proof doesn't verify, the witness MUST respond with a
		// > "422 Unprocessable Entity" HTTP status code.
		proof := make(tlog.TreeProof, len(req.Proof))
		for i, h := range req.Proof {
			proof[i] = h
		}
		if err := tlog.CheckTree(proof, int64(size), hash, int64(req.OldSize), tlog.Hash(lg.Hash)); err != nil {
			w.recordEvidence(ctx, "bad-proof", info.origin, body, lg.Checkpoint)
			return nil, fmt.Errorf("%w: consistency proof from %d to %d does not verify", ErrInconsistent, req.OldSize, size)
		}
	}

	// Cosign. The signature stays in this process unless the new state is
	// durable. The stored checkpoint carries the log signatures that
	// verified and the cosignature, for the monitor endpoint:
	// > it MUST include the cosignature(s) from the witness's key(s) that
	// > were returned from add-checkpoint and the cosignature from the log
	// > key(s) that the witness verified.
	// > The cosignature MUST NOT omit the timestamp, i.e. the timestamp MUST
	// > NOT be zero. (cosignature/v1 signers always stamp the current time.)
	signed, err := note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	cosig := signed[bytes.LastIndex(signed[:len(signed)-1], []byte("\n"))+1:]

	if hook := w.testHookBeforeUpdate.Load(); hook != nil {
		(*hook)(info.origin)
	}
	// > If all the checks above pass, the witness MUST update its record of
	// > the latest cosigned checkpoint [...]
	// > The witness MUST persist the new checkpoint before responding. Note
	// > that checking the old size against the latest checkpoint and
	// > persisting the new checkpoint must be performed atomically [...]
	// The compare-and-swap on the (size, hash) read above makes the check
	// and the update one step; Update returns once the change is fsynced.
	err = w.store.Update(ctx, store.Update{
		Origin:  info.origin,
		OldSize: lg.Size, OldHash: lg.Hash,
		NewSize: size, NewHash: hash,
		SignedCheckpoint: signed,
	})
	if errors.Is(err, store.ErrConflict) {
		// Another request moved the log on between our read and our
		// update. Our cosignature is dropped; the client retries from the
		// size that won.
		now, rerr := w.store.Log(ctx, info.origin)
		if rerr != nil {
			return nil, fmt.Errorf("re-reading after a conflict: %w", rerr)
		}
		if now.Size == req.OldSize {
			return nil, fmt.Errorf("tree head of %q changed during the request", info.origin)
		}
		return nil, &ConflictError{Size: now.Size}
	}
	if err != nil {
		return nil, fmt.Errorf("persisting tree head: %w", err)
	}
	w.metrics.cosignatures.Inc()
	return cosig, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// recordEvidence keeps a validly signed checkpoint that failed a consistency
// check, with the checkpoint the witness had cosigned, as possible proof of
// log misbehaviour:
//
// > If the origin is known, and the signature is valid, the witness MAY log
// > the request even if the checkpoint fails one of the consistency checks
// > above (but MUST NOT cosign the checkpoint), as it might be proof of log
// > misbehavior.
//
// A "split-view" record is self-contained: two checkpoints of one size with
// different roots, both signed by the log. A "bad-proof" one is not: it may
// be a fork, a log's bug, or anyone replaying a log's checkpoint with a bogus
// proof (the store bounds each kind per log). Failing to record only logs an
// error.
func (w *Witness) recordEvidence(ctx context.Context, kind, origin string, body, cosigned []byte) {
	w.metrics.inconsistent.WithLabelValues(kind).Inc()
	w.log.WarnContext(ctx, "log signed an inconsistent checkpoint", "origin", origin, "kind", kind)
	err := w.store.AddEvidence(ctx, store.Evidence{
		Origin: origin, Received: time.Now(), Kind: kind,
		Request: bytes.Clone(body), Cosigned: cosigned,
	})
	if err != nil {
		w.log.ErrorContext(ctx, "recording evidence", "origin", origin, "error", err)
	}
}
