package logserver

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
)

// The log's verifiable index (log/vindex). The follower feeds every
// integrated entry, in order, to the map function; when entries other
// than index checkpoints arrived since the last commit, and at most once
// per checkpoint interval, the log signs an index checkpoint over what it
// has and appends it to itself. Lookups are proven against the newest
// committed index whose checkpoint entry a published (witnessed)
// checkpoint covers.
//
// Staleness: an entry integrated at time t is in an index checkpoint
// appended by t + one checkpoint interval + one follower pass, which a
// witnessed checkpoint covers one checkpoint interval later.
//
// The map is derived data, in memory: on start the follower rebuilds it
// from the log's entries and then commits afresh.
type vindexState struct {
	mu sync.Mutex
	b  *vindex.Builder
	// contentEnd is one past the last entry that is not an index
	// checkpoint; committed the size the newest commit (or the one being
	// appended) covers. The map needs a commit while contentEnd > committed.
	contentEnd, committed uint64
	last                  time.Time
	commits               []indexCommit // newest last
	signer                note.Signer
	// recent are snapshots of the map at the latest sizes: an index
	// checkpoint read back from the log (after a restart, or appended by
	// another frontend) becomes a commit again when the map at its size
	// has its root. Kept while replaying, and always with MySQL storage,
	// where another frontend may be the one that commits.
	recent     map[uint64]*vindex.Map
	keepRecent bool
	// revoked are the keys with a revocation among their items: admission
	// asks it for every release without waiting for mu, which the
	// follower holds while it maps (revocations are rare; this is the
	// same answer as scanning the map's items for one).
	revokedMu sync.RWMutex
	revoked   map[[32]byte]bool
	// lockConn holds the MySQL named lock of the frontend that signs
	// index checkpoints (nil when this one does not hold it); lockErr is
	// the last error of the lock logged. Only the follower uses them,
	// and Close once it has stopped.
	lockConn *sql.Conn
	lockErr  string
}

type indexCommit struct {
	entry uint64 // index of the index checkpoint entry
	ic    statement.IndexCheckpoint
	snap  *vindex.Map
}

// maxCommits is how many committed snapshots are kept for proofs.
const maxCommits = 4

// trimCommits keeps the newest maxCommits commits, in a fresh array: a
// resliced one would keep the older snapshots reachable, and with them
// every map node they share (v.mu held).
func (v *vindexState) trimCommits() {
	if len(v.commits) > maxCommits {
		v.commits = append([]indexCommit(nil), v.commits[len(v.commits)-maxCommits:]...)
	}
}

// recentKept is how many recent map sizes keep a snapshot.
const recentKept = 4096

// recoverCommit makes the index checkpoint entry idx a commit again if the
// log signed it and the map at its size has its root (v.mu held). An
// index checkpoint this run appended is already one.
func (l *Log) recoverCommit(idx uint64, entry []byte) {
	v := l.vidx
	for _, c := range v.commits {
		if c.entry == idx {
			return
		}
	}
	ic, err := statement.VerifyIndexCheckpoint(entry, l.verifier)
	if err != nil {
		return
	}
	snap := v.recent[ic.Size]
	if ic.Size == 0 {
		snap = (&vindex.Map{}).Snapshot()
	}
	if snap == nil || snap.Root() != ic.Root {
		if snap != nil {
			l.logger.Error("an index checkpoint in the log does not match the log's entries", "entry", idx, "size", ic.Size)
		}
		return
	}
	v.commits = append(v.commits, indexCommit{entry: idx, ic: *ic, snap: snap})
	v.trimCommits()
	v.committed = max(v.committed, ic.Size)
}

// replayIndex maps the entries the index holds from before this start
// (reading them back), keeping a snapshot of the map at each size so that
// the index checkpoints among them become commits again.
func (l *Log) replayIndex(ctx context.Context) error {
	l.indexMu.Lock()
	defer l.indexMu.Unlock()
	end, err := l.idx.Next(ctx)
	if err != nil {
		return err
	}
	v := l.vidx
	v.mu.Lock()
	next := v.b.Size()
	v.mu.Unlock()
	if next >= end {
		return nil
	}
	start := time.Now()
	for next < end {
		bundleIdx := next / layout.EntryBundleWidth
		b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, bundleIdx, end)
		if err != nil {
			return fmt.Errorf("vindex: reading entry bundle %d: %w", bundleIdx, err)
		}
		first := bundleIdx * layout.EntryBundleWidth
		for i := next - first; i < uint64(len(b.Entries)) && first+i < end; i++ {
			p, err := statement.ParseEntry(b.Entries[i])
			if err != nil {
				p = nil
			}
			l.mapEntry(first+i, b.Entries[i], p, true)
		}
		v.mu.Lock()
		advanced := v.b.Size() > next
		next = v.b.Size()
		v.mu.Unlock()
		if !advanced {
			return fmt.Errorf("vindex: entry bundle %d holds no entry %d", bundleIdx, next)
		}
	}
	v.mu.Lock()
	if !v.keepRecent {
		v.recent = nil // only a replay needs them
	}
	v.mu.Unlock()
	l.logger.Info("verifiable index rebuilt", "entries", end, "seconds", time.Since(start).Seconds())
	return nil
}

// mapEntry feeds entry idx (parsed as p, nil if it does not parse) to the
// map, once and in order: an entry already mapped is skipped, and one past
// the map's size (a gap, which a replay fills) is not mapped. replaying
// keeps a snapshot per size for recoverCommit.
func (l *Log) mapEntry(idx uint64, entry []byte, p *statement.Parsed, replaying bool) {
	v := l.vidx
	v.mu.Lock()
	defer v.mu.Unlock()
	if idx != v.b.Size() {
		return
	}
	if statement.IsIndexCheckpoint(entry) {
		l.recoverCommit(idx, entry)
	} else {
		v.contentEnd = idx + 1
	}
	keys, _ := v.b.AddParsed(idx, entry, p)
	if p != nil && p.Kind == statement.KindRevocation && len(keys) > 0 {
		v.revokedMu.Lock()
		if v.revoked == nil {
			v.revoked = map[[32]byte]bool{}
		}
		for _, k := range keys {
			v.revoked[k] = true
		}
		v.revokedMu.Unlock()
	}
	if replaying || v.keepRecent {
		if v.recent == nil {
			v.recent = map[uint64]*vindex.Map{}
		}
		v.recent[v.b.Size()] = v.b.Map().Snapshot()
		delete(v.recent, v.b.Size()-recentKept)
	}
	l.metrics.vindexSize.Set(float64(v.b.Size()))
}

// commitIndex appends an index checkpoint over the map as it is, if
// entries arrived since the last one and a checkpoint interval has passed.
func (l *Log) commitIndex(ctx context.Context) error {
	v := l.vidx
	v.mu.Lock()
	if !*l.cfg.IndexCheckpoints || v.contentEnd <= v.committed || time.Since(v.last) < l.cfg.CheckpointInterval {
		v.mu.Unlock()
		return nil
	}
	if l.db != nil {
		// On MySQL one frontend at a time commits (the lock's holder);
		// asking may block on the database, so not under v.mu.
		v.mu.Unlock()
		if !l.indexLeader(ctx) {
			return nil
		}
		v.mu.Lock()
		if v.contentEnd <= v.committed {
			v.mu.Unlock()
			return nil
		}
	}
	ic := statement.IndexCheckpoint{Origin: l.cfg.Origin, Size: v.b.Size(), Root: v.b.Root()}
	snap := v.b.Map().Snapshot()
	prev := v.committed
	v.committed, v.last = ic.Size, time.Now()
	v.mu.Unlock()
	entry, err := statement.SignIndexCheckpoint(ic, v.signer)
	if err != nil {
		return err
	}
	idx, err := l.add(ctx, tessera.NewEntry(entry))()
	if err != nil {
		v.mu.Lock()
		v.committed = prev
		v.mu.Unlock()
		return fmt.Errorf("vindex: appending the index checkpoint: %w", err)
	}
	v.mu.Lock()
	v.commits = append(v.commits, indexCommit{entry: idx.Index, ic: ic, snap: snap})
	v.trimCommits()
	v.mu.Unlock()
	l.metrics.vindexCommitted.Set(float64(ic.Size))
	l.logger.Debug("index checkpoint", "size", ic.Size, "entry", idx.Index, "root", hex.EncodeToString(ic.Root[:8]))
	return nil
}

// IndexProof proves the entries about digest (none: a proof of absence)
// under the newest committed index that a published checkpoint covers.
func (l *Log) IndexProof(ctx context.Context, digest []byte) (*vindex.Proof, error) {
	published := l.publishedSize.Load()
	v := l.vidx
	v.mu.Lock()
	var c *indexCommit
	for i := len(v.commits) - 1; i >= 0; i-- {
		if v.commits[i].entry < published {
			c = &v.commits[i]
			break
		}
	}
	v.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: no index checkpoint is covered by a witnessed checkpoint yet; retry shortly", ErrNotWitnessed)
	}
	items, mp := c.snap.Prove(vindex.Key(digest))
	commit, err := l.Proof(ctx, c.entry)
	if err != nil {
		return nil, err
	}
	p := &vindex.Proof{Digest: digest, Items: items, Map: mp, Commit: commit}
	// Never hand out a proof that does not verify.
	body, _, _ := bytes.Cut(commit.Checkpoint, []byte("\n\n"))
	cp, err := torchwood.ParseCheckpoint(string(body) + "\n")
	if err != nil {
		return nil, fmt.Errorf("parsing our own checkpoint: %w", err)
	}
	if _, err := p.VerifyProof(l.verifier, cp.N, cp.Hash); err != nil {
		return nil, fmt.Errorf("self-check of the index proof: %w", err)
	}
	return p, nil
}

func (l *Log) handleIndexProof(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	k, err := hexParam(q.Get("key"))
	if err != nil {
		return err
	}
	d, _ := hex.DecodeString(k)
	p, err := l.IndexProof(r.Context(), d)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(p.Marshal())
	return nil
}
