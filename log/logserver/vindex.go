package logserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
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
// witnessed checkpoint covers one checkpoint interval later. Each index
// checkpoint is dated, and a client accepts one only if it was signed
// within its bound (revocation-proof max-age) or ends a tree the witnesses
// cosigned within it (vindex.Verified.Current): a log at rest ends with
// its last index checkpoint, and Tessera has it cosigned again every
// checkpoint_republish_interval.
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
	// leading is whether this frontend held the index-checkpoint lock
	// when it last asked (commit): the leader commits itself, so it keeps
	// no recent snapshots, which cost a copy of every path a later entry
	// changes (the map's CPU per entry on S3 was a third above POSIX's).
	// Should it lose the lock, it keeps them again from then on; a commit
	// of the next leader's at a size before that is not recovered, and a
	// later one is.
	leading bool
	// revoked are the identity keys with a revocation among their items:
	// admission asks it for every release without waiting for mu, which
	// the follower holds while it maps (revocations are rare; this is the
	// same answer as scanning the map's items for one).
	revokedMu sync.RWMutex
	revoked   map[[32]byte]bool
	// tip is the newest published checkpoint whose last entry is the
	// newest commit, covering every entry before it: proofs under it are
	// current whatever the commit's age (vindex.Verified.Complete). Kept
	// for the moment after a log at rest receives entries, when the
	// published tree has grown past the commit and the next commit is not
	// yet witnessed.
	tip []byte

	// log is the log this indexes; the rest is fixed at Open.
	log      indexLog
	verifier note.Verifier // the log's: index checkpoints read back are verified with it
	logger   *slog.Logger
	origin   string
	// enabled is index_checkpoints: whether this frontend commits at all,
	// at most once per interval.
	enabled  bool
	interval time.Duration
	// size and committedSize are the vindex_size and vindex_committed
	// gauges.
	size, committedSize prometheus.Gauge
}

// indexLog is what the verifiable index asks of the log it indexes (the
// Log implements it). The index calls it without v.mu held, and none of
// its methods may call back into the index.
type indexLog interface {
	// appendIndexCheckpoint appends entry (a signed index checkpoint) and returns
	// its index once sequenced. It is not retried: on an error the
	// commit is abandoned and the follower's next pass commits again. It
	// may wait on pushback, so it must not be called under v.mu.
	appendIndexCheckpoint(ctx context.Context, entry []byte) (uint64, error)
	// indexLeader reports whether this frontend signs index checkpoints
	// now. It retries nothing: a lost or unobtainable lock answers false
	// until a later call obtains it. It may block on the database, so it
	// must not be called under v.mu.
	indexLeader(ctx context.Context) bool
	// proveEntry returns the tlog-proof of entry idx under under, a
	// checkpoint the log published, or under the latest published
	// checkpoint when under is nil. It self-checks the proof and retries
	// nothing; ErrNotWitnessed means no published checkpoint covers idx
	// yet.
	proveEntry(ctx context.Context, idx uint64, under []byte) (*tlogproof.Proof, error)
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
func (v *vindexState) recoverCommit(idx uint64, entry []byte) {
	for _, c := range v.commits {
		if c.entry == idx {
			return
		}
	}
	ic, err := statement.VerifyIndexCheckpoint(entry, v.verifier)
	if err != nil || ic.Version != vindex.MapVersion {
		return // an older map's (the map is rebuilt; a new commit follows)
	}
	snap := v.recent[ic.Size]
	if ic.Size == 0 {
		snap = (&vindex.Map{}).Snapshot()
	}
	if snap == nil || snap.Root() != ic.Root {
		if snap != nil {
			v.logger.Error("an index checkpoint in the log does not match the log's entries", "entry", idx, "size", ic.Size)
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
	return l.vidx.replay(ctx, end, l.reader.ReadEntryBundle)
}

// replay maps the entries from the map's size up to end, reading their
// bundles with read (the follower's indexMu held: nothing else maps).
func (v *vindexState) replay(ctx context.Context, end uint64, read client.EntryBundleFetcherFunc) error {
	v.mu.Lock()
	next := v.b.Size()
	v.mu.Unlock()
	if next >= end {
		return nil
	}
	start := time.Now()
	for next < end {
		bundleIdx := next / layout.EntryBundleWidth
		b, err := client.GetEntryBundle(ctx, read, bundleIdx, end)
		if err != nil {
			return fmt.Errorf("vindex: reading entry bundle %d: %w", bundleIdx, err)
		}
		first := bundleIdx * layout.EntryBundleWidth
		for i := next - first; i < uint64(len(b.Entries)) && first+i < end; i++ {
			p, err := statement.ParseEntry(b.Entries[i])
			if err != nil {
				p = nil
			}
			v.mapEntry(first+i, b.Entries[i], p, true)
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
	v.logger.Info("verifiable index rebuilt", "entries", end, "seconds", time.Since(start).Seconds())
	return nil
}

// mapEntry feeds entry idx (parsed as p, nil if it does not parse) to the
// map, once and in order: an entry already mapped is skipped, and one past
// the map's size (a gap, which a replay fills) is not mapped. replaying
// keeps a snapshot per size for recoverCommit.
func (v *vindexState) mapEntry(idx uint64, entry []byte, p *statement.Parsed, replaying bool) {
	var sum [32]byte
	if p != nil && p.Kind == statement.KindRelease {
		sum = sha256.Sum256(entry) // the only kind whose hash the map records
	}
	v.mapEntrySum(idx, entry, sum, p, replaying)
}

// mapEntrySum is mapEntry of entry whose SHA-256 is sum.
func (v *vindexState) mapEntrySum(idx uint64, entry []byte, sum [32]byte, p *statement.Parsed, replaying bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if idx != v.b.Size() {
		return
	}
	if statement.IsIndexCheckpoint(entry) {
		v.recoverCommit(idx, entry)
	} else {
		v.contentEnd = idx + 1
	}
	keys, _ := v.b.AddParsedSum(idx, sum, p)
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
	if replaying || v.keepRecent && !v.leading {
		if v.recent == nil {
			v.recent = map[uint64]*vindex.Map{}
		}
		// Unhashed: of these, only those an index checkpoint names are
		// ever hashed (recoverCommit, under v.mu like every Root of the
		// live map), not one per entry.
		v.recent[v.b.Size()] = v.b.Map().SnapshotUnhashed()
		delete(v.recent, v.b.Size()-recentKept)
	}
	v.size.Set(float64(v.b.Size()))
}

// commit appends an index checkpoint over the map as it is, if entries
// arrived since the last one and a checkpoint interval has passed.
func (v *vindexState) commit(ctx context.Context) error {
	v.mu.Lock()
	if !v.enabled || v.contentEnd <= v.committed || time.Since(v.last) < v.interval {
		v.mu.Unlock()
		return nil
	}
	// With MySQL storage one frontend at a time commits (the lock's
	// holder); asking may block on the database, so not under v.mu.
	v.mu.Unlock()
	if !v.log.indexLeader(ctx) {
		v.mu.Lock()
		v.leading = false
		v.mu.Unlock()
		return nil
	}
	v.mu.Lock()
	if !v.leading {
		v.leading = true
		v.recent = nil // this frontend commits: no other's to recover
	}
	if v.contentEnd <= v.committed {
		v.mu.Unlock()
		return nil
	}
	ic := statement.IndexCheckpoint{Version: vindex.MapVersion, Origin: v.origin, Size: v.b.Size(), Root: v.b.Root(), Time: time.Now().Truncate(time.Second)}
	snap := v.b.Map().Snapshot()
	prev := v.committed
	v.committed, v.last = ic.Size, time.Now()
	v.mu.Unlock()
	entry, err := statement.SignIndexCheckpoint(ic, v.signer)
	if err != nil {
		return err
	}
	idx, err := v.log.appendIndexCheckpoint(ctx, entry)
	if err != nil {
		v.mu.Lock()
		v.committed = prev
		v.mu.Unlock()
		return fmt.Errorf("vindex: appending the index checkpoint: %w", err)
	}
	v.mu.Lock()
	v.commits = append(v.commits, indexCommit{entry: idx, ic: ic, snap: snap})
	v.trimCommits()
	v.mu.Unlock()
	v.committedSize.Set(float64(ic.Size))
	v.logger.Debug("index checkpoint", "size", ic.Size, "entry", idx, "root", hex.EncodeToString(ic.Root[:8]))
	return nil
}

// revocations returns the map's items under identity key, or nil without
// waiting for v.mu when no revocation was mapped under it.
func (v *vindexState) revocations(key [32]byte) []vindex.Item {
	v.revokedMu.RLock()
	revoked := v.revoked[key]
	v.revokedMu.RUnlock()
	if !revoked {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.b.Map().Get(key)
}

// lookupWait bounds how long a lookup waits for the map to catch up with
// the entry index after a start (a replay) before it answers 503.
var lookupWait = 10 * time.Second

// releasesWith returns the indices, ascending, of the releases below end
// that name digest d as a measurement register or an artifact digest of
// any type (vindex.LookupKeys). The map must have mapped every entry
// below end: while it has not (a replay after a start) this waits, up to
// lookupWait, and then answers ErrUnavailable. The follower maps an entry
// before the entry index records it, so past the replay the map is ahead.
func (v *vindexState) releasesWith(ctx context.Context, d []byte, end uint64) ([]uint64, error) {
	keys := vindex.LookupKeys(d)
	deadline := time.Now().Add(lookupWait)
	for {
		v.mu.Lock()
		if mapped := v.b.Size(); mapped < end {
			v.mu.Unlock()
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%w: the verifiable index is being rebuilt after a start (%d of %d entries mapped); retry shortly", ErrUnavailable, mapped, end)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		var out []uint64
		for _, k := range keys {
			for _, it := range v.b.Map().Get(k) {
				if it.Kind == vindex.KindRelease && it.Index < end {
					out = append(out, it.Index)
				}
			}
		}
		v.mu.Unlock()
		slices.Sort(out)
		return slices.Compact(out), nil
	}
}

// staleCommit is how old the newest commit may be before IndexProof
// prefers to prove it under the tree it ends (v.tip), if there is one.
const staleCommit = 10 * time.Second

// noteTip remembers cp, just published with size, as the tip if the newest
// commit ends its tree and covers every entry before it (v.mu not held).
func (v *vindexState) noteTip(size uint64, cp []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if n := len(v.commits); n > 0 {
		c := v.commits[n-1]
		if c.entry+1 == size && c.ic.Size == c.entry {
			v.tip = cp
		}
	}
}

// IndexProof proves the entries about a typed digest (none: a proof of
// absence) under the newest committed index that a published checkpoint
// covers: under that checkpoint, or under the tree the commit ends when
// the commit is older than staleCommit and other entries follow it in
// the published tree (clients accept an old index checkpoint only as the
// last word of a recently cosigned tree).
func (l *Log) IndexProof(ctx context.Context, t vindex.KeyType, digest []byte) (*vindex.Proof, error) {
	return l.vidx.prove(ctx, t, digest, l.publishedSize.Load())
}

// prove is IndexProof when the published tree has size published.
func (v *vindexState) prove(ctx context.Context, t vindex.KeyType, digest []byte, published uint64) (*vindex.Proof, error) {
	if err := t.CheckDigest(digest); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	v.mu.Lock()
	var c *indexCommit
	for i := len(v.commits) - 1; i >= 0; i-- {
		if v.commits[i].entry < published {
			c = &v.commits[i]
			break
		}
	}
	tip := v.tip
	v.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: no index checkpoint is covered by a witnessed checkpoint yet; retry shortly", ErrNotWitnessed)
	}
	items, mp := c.snap.Prove(vindex.Key(t, digest))
	var commit *tlogproof.Proof
	var err error
	if tip != nil && c.ic.Size == c.entry && c.entry+1 < published && time.Since(c.ic.Time) > staleCommit {
		if size, err := checkpointSize(tip); err == nil && size == c.entry+1 {
			commit, err = v.log.proveEntry(ctx, c.entry, tip)
			if err != nil {
				commit = nil
			}
		}
	}
	if commit == nil {
		if commit, err = v.log.proveEntry(ctx, c.entry, nil); err != nil {
			return nil, err
		}
	}
	p := &vindex.Proof{Type: t, Digest: digest, Items: items, Map: mp, Commit: commit}
	// Never hand out a proof that does not verify.
	body, _, _ := bytes.Cut(commit.Checkpoint, []byte("\n\n"))
	cp, err := torchwood.ParseCheckpoint(string(body) + "\n")
	if err != nil {
		return nil, fmt.Errorf("parsing our own checkpoint: %w", err)
	}
	if _, err := p.VerifyProof(v.verifier, cp.N, cp.Hash); err != nil {
		return nil, fmt.Errorf("self-check of the index proof: %w", err)
	}
	return p, nil
}

// IdentityProof is IndexProof for the identity of release idx (the key a
// client decides "not revoked" on).
func (l *Log) IdentityProof(ctx context.Context, idx uint64) (*vindex.Proof, error) {
	e, err := l.entry(ctx, idx)
	if err != nil {
		return nil, err
	}
	p, err := statement.ParseEntry(e)
	if err != nil || p.Kind != statement.KindRelease {
		return nil, fmt.Errorf("%w: entry %d is not a release", errBadRequest, idx)
	}
	id := vindex.Identity(p.Release)
	if id == nil {
		return nil, fmt.Errorf("%w: release %d has no identity", errBadRequest, idx)
	}
	return l.IndexProof(ctx, vindex.KeyIdentity, id)
}

// handleIndexProof answers GET /index/proof?type=T&digest=HEX, and
// ?release=N for the identity of release N.
func (l *Log) handleIndexProof(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var p *vindex.Proof
	var err error
	switch {
	case q.Has("release"):
		n, perr := strconv.ParseUint(q.Get("release"), 10, 63)
		if perr != nil {
			return fmt.Errorf("%w: release must be an entry index", errBadRequest)
		}
		p, err = l.IdentityProof(r.Context(), n)
	case q.Has("type") && q.Has("digest"):
		t, terr := vindex.ParseKeyType(q.Get("type"))
		if terr != nil {
			return fmt.Errorf("%w: %v", errBadRequest, terr)
		}
		d, derr := hex.DecodeString(q.Get("digest"))
		if derr != nil || len(q.Get("digest")) > 2*vindex.MaxIdentitySize {
			return fmt.Errorf("%w: digest must be hex", errBadRequest)
		}
		p, err = l.IndexProof(r.Context(), t, d)
	case q.Has("key"):
		return fmt.Errorf("%w: ?key= named an untyped digest (index map version 1); give ?type=TYPE&digest=HEX (types: %v) or ?release=N", errBadRequest, vindex.KeyTypes)
	default:
		return fmt.Errorf("%w: give ?type=TYPE&digest=HEX (types: %v) or ?release=N", errBadRequest, vindex.KeyTypes)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(p.Marshal())
	return nil
}

// appendIndexCheckpoint implements indexLog: Tessera's Add, waiting for the index.
func (l *Log) appendIndexCheckpoint(ctx context.Context, entry []byte) (uint64, error) {
	te := tessera.NewEntry(entry)
	h := [32]byte(te.Identity())
	// Handed to the follower as admission hands it statements, so that it
	// does not read the entry's bundle back (up to 256 entries) for it.
	p, perr := statement.ParseEntry(entry)
	if perr == nil {
		l.pendingMu.Lock()
		l.parsed[h] = admitted{p: p, entry: entry, entryHash: h}
		l.pendingMu.Unlock()
	}
	idx, err := l.add(ctx, te)()
	l.pendingMu.Lock()
	if perr == nil {
		if _, ok := l.parsed[h]; ok && err == nil && !idx.IsDup {
			l.appended[idx.Index] = h
		} else {
			delete(l.parsed, h) // not appended here (or taken already)
		}
	}
	l.pendingMu.Unlock()
	return idx.Index, err
}

// proveEntry implements indexLog with Proof, or proofUnder when under is
// given.
func (l *Log) proveEntry(ctx context.Context, idx uint64, under []byte) (*tlogproof.Proof, error) {
	if under == nil {
		return l.Proof(ctx, idx)
	}
	return l.proofUnder(ctx, idx, under)
}

// entry reads integrated entry idx from the log's storage.
func (l *Log) entry(ctx context.Context, idx uint64) ([]byte, error) {
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return nil, err
	}
	if idx >= size {
		return nil, fmt.Errorf("%w: entry %d is not integrated (the tree has %d)", ErrNotFound, idx, size)
	}
	b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, idx/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, fmt.Errorf("reading entry %d: %w", idx, err)
	}
	i := idx % layout.EntryBundleWidth
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("entry bundle %d holds no entry %d", idx/layout.EntryBundleWidth, idx)
	}
	return b.Entries[i], nil
}
