package logserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/attestlog/attestlog/log/internal/index"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/provenance"
)

// indexInterval is how often the follower looks for newly integrated
// entries. Until indexed, an entry is found by duplicate detection through
// the pending set, but not by lookups.
const indexInterval = 200 * time.Millisecond

// follow keeps the index up to date with the integrated tree until ctx
// ends.
func (l *Log) follow(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(indexInterval)
	defer t.Stop()
	var lastCP []byte
	// The map of the entries indexed before this start, then the indexer
	// feeds it what it indexes.
	for l.replayIndex(ctx) != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	for {
		if err := l.indexOnce(ctx); err != nil && ctx.Err() == nil {
			l.logger.Warn("indexing", "err", err)
			l.metrics.storageErrors.WithLabelValues("follow").Inc()
		}
		if err := l.vidx.commit(ctx); err != nil && ctx.Err() == nil {
			l.logger.Warn("verifiable index", "err", err)
			l.metrics.storageErrors.WithLabelValues("index_checkpoint").Inc()
		}
		if cp, err := l.reader.ReadCheckpoint(ctx); err == nil && !bytes.Equal(cp, lastCP) {
			if size, err := checkpointSize(cp); err == nil {
				if err := l.idx.AddCheckpoint(ctx, size, cp, time.Now()); err == nil {
					lastCP = cp
					l.vidx.noteTip(size, cp)
					l.publishedSize.Store(size)
					l.publishedAt.Store(time.Now().UnixNano())
					l.countCosignatures(cp)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
			// Let a batch of appends finish together.
			select {
			case <-ctx.Done():
				return
			case <-time.After(indexWakeDelay):
			}
		}
	}
}

// indexWakeDelay is how long the follower waits after an append finished
// before indexing, so that one pass takes a whole batch.
const indexWakeDelay = 20 * time.Millisecond

// indexOnce indexes every integrated entry not yet in the index.
func (l *Log) indexOnce(ctx context.Context) error {
	l.indexMu.Lock()
	defer l.indexMu.Unlock()
	return l.indexLocked(ctx)
}

// indexLocked is indexOnce with indexMu held.
func (l *Log) indexLocked(ctx context.Context) error {
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return err
	}
	next, err := l.idx.Next(ctx)
	if err != nil {
		return err
	}
	if next > size {
		return fmt.Errorf("index is ahead of the log (%d > %d): the index belongs to another log; run 'attestlog log reindex'", next, size)
	}
	// Commit in chunks of up to maxIndexBatch entries: each transaction
	// rewrites the B-tree pages its random keys land on, so fewer, larger
	// ones cost less per entry.
	var recs []index.Record
	var hashes [][32]byte
	// Long catch-ups (a rebuild, a restart far behind) report progress.
	start, lastReport, from := time.Now(), time.Now(), next
	long := size-next > 10*maxIndexBatch
	flush := func(end uint64) error {
		if len(recs) == 0 {
			return nil
		}
		if err := l.idx.Add(ctx, recs, end); err != nil {
			return err
		}
		if long && time.Since(lastReport) > 2*time.Second {
			lastReport = time.Now()
			l.logger.Info("indexing", "indexed", end, "of", size, "per_second", int(float64(end-from)/time.Since(start).Seconds()))
		}
		l.metrics.indexed.Set(float64(end))
		l.pendingMu.Lock()
		for _, h := range hashes {
			delete(l.pending, h)
		}
		l.indexGen++
		close(l.indexed)
		l.indexed = make(chan struct{})
		l.pendingMu.Unlock()
		recs, hashes = recs[:0], hashes[:0]
		return nil
	}
	for next < size {
		// A run of entries this process appended is taken from memory:
		// admission parsed and verified them, and Tessera stored them
		// at these indices, so reading their bundle back would only
		// cost the reads and the entries' hashes again.
		if run := l.takeAppended(next, size, maxIndexBatch-len(recs)); len(run) > 0 {
			l.fromMemory.Add(uint64(len(run)))
			for _, a := range run {
				key, name := a.signer.keyID, a.signer.name
				if key == "" {
					key, name = l.signerOf(a.p)
				}
				recs = append(recs, index.RecordOf(next, a.entryHash, a.p, key, name))
				hashes = append(hashes, a.p.PayloadHash)
				l.vidx.mapEntrySum(next, a.entry, a.entryHash, a.p, false)
				next++
			}
			if len(recs) >= maxIndexBatch {
				if err := flush(next); err != nil {
					return err
				}
			}
			continue
		}
		bundleIdx := next / layout.EntryBundleWidth
		b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, bundleIdx, size)
		if err != nil {
			return errors.Join(fmt.Errorf("reading entry bundle %d: %w", bundleIdx, err), flush(next))
		}
		first := bundleIdx * layout.EntryBundleWidth
		end := next
		for i := next - first; i < uint64(len(b.Entries)) && first+i < size; i++ {
			idx := first + i
			if i > next-first && l.hasAppended(idx) {
				break // the rest of this run from memory
			}
			rec, h, p, err := l.recordOf(idx, b.Entries[i])
			l.vidx.mapEntry(idx, b.Entries[i], p, false)
			if err != nil {
				// Admission parses with the same code, so this is a bug
				// or an entry another writer appended. Stopping here would
				// stop the index for good; record it as unreadable (shown
				// as such by /entry, the explorer and /unreadable) and
				// move on. The entry is still in the tree and its tiles.
				l.logger.Error("indexing: unreadable entry; recorded as unreadable, indexing goes on", "index", idx, "err", err)
				l.metrics.unreadable.Inc()
				rec = index.UnreadableRecord(idx, sha256.Sum256(b.Entries[i]), err.Error())
			}
			recs = append(recs, rec)
			if err == nil {
				hashes = append(hashes, h)
			}
			end = idx + 1
		}
		if end == next {
			return errors.Join(fmt.Errorf("entry bundle %d holds no entry %d", bundleIdx, next), flush(next))
		}
		next = end
		if len(recs) >= maxIndexBatch {
			if err := flush(next); err != nil {
				return err
			}
		}
	}
	return flush(next)
}

// maxIndexBatch is the most entries indexed in one transaction.
const maxIndexBatch = 4096

// takeAppended removes from memory and returns the entries this process
// appended at next, next+1, … (below size, at most n of them), for the
// follower; none if it did not append entry next (or admission has not
// yet noted its index: the follower then reads it back).
func (l *Log) takeAppended(next, size uint64, n int) []admitted {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	var run []admitted
	for idx := next; idx < size && len(run) < n; idx++ {
		h, ok := l.appended[idx]
		if !ok {
			break
		}
		delete(l.appended, idx)
		a, ok := l.parsed[h]
		if !ok {
			break
		}
		delete(l.parsed, h)
		run = append(run, a)
	}
	return run
}

// hasAppended reports whether admission noted entry idx as this
// process's (takeAppended would take it).
func (l *Log) hasAppended(idx uint64) bool {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	_, ok := l.appended[idx]
	return ok
}

func (l *Log) recordOf(idx uint64, entry []byte) (index.Record, [32]byte, *statement.Parsed, error) {
	h := sha256.Sum256(entry)
	l.pendingMu.Lock()
	a := l.parsed[h]
	delete(l.parsed, h)
	delete(l.appended, idx)
	l.pendingMu.Unlock()
	p := a.p
	if p == nil { // added before a restart, or by another process
		var err error
		if p, err = statement.ParseEntry(entry); err != nil {
			return index.Record{}, [32]byte{}, nil, err
		}
	}
	// Admission verified who signed it; a statement read back (a restart,
	// another frontend) is verified here, as admission would have.
	key, name := a.signer.keyID, a.signer.name
	if key == "" {
		key, name = l.signerOf(p)
	}
	return index.RecordOf(idx, h, p, key, name), p.PayloadHash, p, nil
}

// keylessSigner names the keyless operator of the policy that signed a
// keyless entry read back from the log (a reindex, a restart between
// append and indexing), verifying it as admission did, so the index
// derives the same name either way; "unknown" if the current policy no
// longer accepts it.
func (l *Log) keylessSigner(p *statement.Parsed) string {
	pol := l.Policy()
	q, _, err := provenance.VerifyKeylessEntry(p.Bundle, &pol.Provenance, time.Now())
	if err != nil || q.PayloadHash != p.PayloadHash {
		return "unknown"
	}
	return q.KeylessSigner
}

// signerOf names the policy principal whose signature on p verifies, as
// the current policy knows it: the key that signed, never the key ID a
// signature merely claims (anyone can add a junk signature under another
// operator's key ID). A statement no principal's key verifies is
// credited to nobody ("", "unknown").
func (l *Log) signerOf(p *statement.Parsed) (keyID, name string) {
	if p.Kind == statement.KindIndexCheckpoint {
		if _, err := statement.VerifyIndexCheckpoint(p.IndexCheckpoint.Entry, l.verifier); err == nil {
			return "log", "the log"
		}
		return "", "unknown"
	}
	if p.Envelope == nil { // keyless
		if p.KeylessSigner != "" {
			return "keyless", p.KeylessSigner
		}
		return "keyless", l.keylessSigner(p)
	}
	pol := l.Policy()
	var classes [][]policy.Principal
	switch p.Kind {
	case statement.KindRelease:
		classes = [][]policy.Principal{pol.Operators}
	case statement.KindReproduction:
		classes = [][]policy.Principal{pol.Auditors}
	case statement.KindRevocation:
		classes = [][]policy.Principal{pol.Authorities, pol.Operators}
	}
	for _, ps := range classes {
		if k, ok := p.Envelope.VerifiedBy(policy.Keys(ps)); ok {
			pr, _ := policy.Named(ps, k)
			return k.ID(), pr.Name
		}
	}
	return "", "unknown"
}

// Reindex rebuilds the index from the log.
func (l *Log) Reindex(ctx context.Context) (uint64, error) {
	// The follower waits meanwhile, rather than indexing the same entries.
	l.indexMu.Lock()
	defer l.indexMu.Unlock()
	if err := l.idx.Reset(ctx); err != nil {
		return 0, err
	}
	if err := l.indexLocked(ctx); err != nil {
		return 0, err
	}
	return l.idx.Next(ctx)
}

// checkpointSize reads the tree size line of a checkpoint note.
func checkpointSize(cp []byte) (uint64, error) {
	lines := bytes.SplitN(cp, []byte("\n"), 3)
	if len(lines) < 3 {
		return 0, errors.New("short checkpoint")
	}
	return strconv.ParseUint(string(lines[1]), 10, 64)
}
