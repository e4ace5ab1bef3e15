package auditor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/auditor/misbehaviour"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/provenance"
)

// entryBatch is how many entries are verified and committed together.
const entryBatch = 1024

// follower follows the logs: it reads each log's checkpoint and those its
// witnesses and peers saw, proves them consistent with the tree followed
// so far, and verifies the entries up to the followed tree, in order,
// committing them batch by batch; it replays each log's verifiable index
// (index.go) as it goes. It reaches the state database only through
// followStore, and the rest of the auditor only through the fields below.
type follower struct {
	st     followStore
	alerts *alerter
	// metrics counts checkpoints and entries.
	metrics *metrics
	// hc reads witnesses' and peers' checkpoints.
	hc         *http.Client
	provenance ProvenanceCheck
	// rebuild is rebuild.enabled: releases are stored queued for
	// rebuilding, and poke wakes the rebuild worker after a batch with
	// releases is committed.
	rebuild bool
	poke    func()
	// evidenceDir is where misbehaviour evidence is written; indexDir
	// where the index replay keeps its map ("" keeps it in memory).
	evidenceDir, indexDir string
	// batch is how many entries are verified and committed together
	// (entryBatch).
	batch int
}

// followStore is what the follower asks of the state database (the
// auditor's *store.Store implements it). The follower calls it with the
// followed log's mu held: no method may call back into the auditor, and
// none takes a lock of the auditor's. Every write is one SQLite
// statement or transaction on the store's one writer connection, durable
// (synchronous=FULL) when it returns; none is retried beyond SQLite's
// busy timeout: on an error the follower returns it and the next pass
// starts again from what is committed.
type followStore interface {
	alertStore
	// Log returns how far origin is followed: the followed tree and
	// NextEntry, the entries below which are verified and committed. It
	// returns store.ErrNotFound before the log's first tree is recorded.
	Log(ctx context.Context, origin string) (*store.LogState, error)
	// SetTree records a tree of origin as the followed tree, keeping
	// NextEntry (0 for a log's first tree). It is idempotent. It must be
	// called only for a tree the follower trusts on first use or has
	// proven consistent with the followed tree, and only after the
	// checkpoint is recorded checked (AddCheckpoint, MarkChecked): a
	// crash between the two leaves the old tree followed.
	SetTree(ctx context.Context, origin string, size int64, hash, checkpoint []byte) error
	// AddCheckpoint records a checkpoint seen from a source, checked or
	// not (to check once the followed tree reaches it). It is idempotent
	// by (origin, size, hash): a checkpoint recorded before is left as it
	// is (use MarkChecked), and the result says whether it was new.
	AddCheckpoint(ctx context.Context, c store.SeenCheckpoint, checked bool) (bool, error)
	// UncheckedCheckpoints returns origin's checkpoints of at most size
	// entries not yet marked checked, smallest first.
	UncheckedCheckpoints(ctx context.Context, origin string, size int64) ([]store.SeenCheckpoint, error)
	// MarkChecked records that a checkpoint was compared with the
	// followed tree (consistent or not). It is idempotent. The follower
	// calls it only once what the comparison found is recorded (an
	// inconsistency's alert): until then the checkpoint is compared again
	// at every pass.
	MarkChecked(ctx context.Context, origin string, size int64, hash []byte) error
	// Release returns the valid release at idx of origin among the
	// committed batches (not the one being committed), or
	// store.ErrNotFound.
	Release(ctx context.Context, origin string, idx int64) (*store.Release, error)
	// Apply commits a verified batch: its releases, its revocations and
	// origin's NextEntry = next, in one transaction, all or nothing. On an
	// error nothing of the batch is recorded and NextEntry stays where it
	// was, so the batch is verified again; applying a batch again is
	// harmless (releases are inserted once, a release keeps its first
	// revocation).
	Apply(ctx context.Context, origin string, b *store.Batch, next int64) error
}

// follow brings the log up to date: its checkpoint, the checkpoints of its
// witnesses and peers, and the entries up to the verified tree.
func (f *follower) follow(ctx context.Context, l *followedLog) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, err := l.client.Checkpoint(ctx)
	if err != nil {
		f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "log", "unreachable").Inc()
		return fmt.Errorf("fetching checkpoint: %w", err)
	}
	if err := f.checkpoint(ctx, l, raw, l.cfg.URL+"/checkpoint", true); err != nil {
		return err
	}
	// Witnesses' and peers' views of the same log.
	var sources []string
	for _, w := range l.pol.Witnesses {
		if w.URL != "" {
			sources = append(sources, strings.TrimSuffix(w.URL, "/")+"/"+l.originHash+"/checkpoint")
		}
	}
	for _, p := range l.cfg.Peers {
		sources = append(sources, strings.TrimSuffix(p, "/")+"/logs/"+l.originHash+"/checkpoint")
	}
	for _, src := range sources {
		b, err := f.get(ctx, src)
		if err != nil {
			if !errors.Is(err, errNotFound) {
				l.logger.Warn("reading checkpoint", "source", src, "err", err)
				f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "other", "unreachable").Inc()
			}
			continue
		}
		if err := f.checkpoint(ctx, l, b, src, false); err != nil {
			l.logger.Warn("checkpoint", "source", src, "err", err)
		}
	}
	// Checkpoints seen earlier that were ahead of the log's tree.
	cur, err := f.st.Log(ctx, l.cfg.Origin)
	if err != nil {
		return err
	}
	pending, err := f.st.UncheckedCheckpoints(ctx, l.cfg.Origin, cur.Size)
	if err != nil {
		return err
	}
	for _, c := range pending {
		if err := f.compare(ctx, l, cur, c.Note, c.Source); err != nil {
			l.logger.Warn("checkpoint", "source", c.Source, "err", err)
		}
	}
	return f.followEntries(ctx, l)
}

var errNotFound = errors.New("404 not found")

func (f *follower) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, 64<<10)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, nil
}

// checkpoint verifies a signed checkpoint of l from src and checks it
// against the tree followed so far. fromLog says whether it is the log's
// own checkpoint, which advances the followed tree.
func (f *follower) checkpoint(ctx context.Context, l *followedLog, raw []byte, src string, fromLog bool) error {
	kind := "other"
	if fromLog {
		kind = "log"
	}
	cp, err := l.pol.InspectCheckpoint(raw)
	if err != nil {
		f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, kind, "bad-signature").Inc()
		return fmt.Errorf("checkpoint from %s: %w", src, err)
	}
	if cp.Origin != l.cfg.Origin {
		return fmt.Errorf("checkpoint from %s is of log %q", src, cp.Origin)
	}
	if fromLog && !cp.QuorumMet {
		if err := f.alerts.raise(ctx, f.st, AlertQuorumMissing, fmt.Sprintf("%s|%d|%x", l.cfg.Origin, cp.N, cp.Hash[:8]),
			"log/"+l.cfg.Origin, fmt.Sprintf("checkpoint of size %d from %s is cosigned by %v; the witness policy needs %s", cp.N, src, cp.CosignerNames(), l.pol.Quorum),
			map[string]any{"checkpoint": string(raw), "source": src, "cosigned": cp.CosignerNames(), "quorum": l.pol.Quorum.String()}); err != nil {
			return err
		}
	}
	cur, err := f.st.Log(ctx, l.cfg.Origin)
	if errors.Is(err, store.ErrNotFound) {
		if !fromLog {
			_, err := f.st.AddCheckpoint(ctx, store.SeenCheckpoint{Origin: l.cfg.Origin, Size: cp.N, Hash: cp.Hash[:], Source: src, Note: raw}, false)
			return err
		}
		// The first tree: trust on first use, like every log client.
		if err := f.st.SetTree(ctx, l.cfg.Origin, cp.N, cp.Hash[:], raw); err != nil {
			return err
		}
		_, err := f.st.AddCheckpoint(ctx, store.SeenCheckpoint{Origin: l.cfg.Origin, Size: cp.N, Hash: cp.Hash[:], Source: src, Note: raw}, true)
		f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, kind, "ok").Inc()
		return err
	}
	if err != nil {
		return err
	}
	if cp.N > cur.Size && !fromLog {
		// Ahead of the log's tree as we know it: check once the log's
		// tree has grown past it.
		_, err := f.st.AddCheckpoint(ctx, store.SeenCheckpoint{Origin: l.cfg.Origin, Size: cp.N, Hash: cp.Hash[:], Source: src, Note: raw}, false)
		return err
	}
	return f.compare(ctx, l, cur, raw, src)
}

// compare checks a verified checkpoint against the followed tree cur,
// advancing the tree when the checkpoint is the log's and extends it.
func (f *follower) compare(ctx context.Context, l *followedLog, cur *store.LogState, raw []byte, src string) error {
	cp, err := l.pol.InspectCheckpoint(raw)
	if err != nil {
		return err
	}
	seen := store.SeenCheckpoint{Origin: l.cfg.Origin, Size: cp.N, Hash: cp.Hash[:], Source: src, Note: raw}
	curTree := tlog.Tree{N: cur.Size, Hash: tlog.Hash(cur.Hash)}
	newTree := tlog.Tree{N: cp.N, Hash: cp.Hash}
	older, newer := curTree, newTree
	olderNote, newerNote := cur.Checkpoint, raw
	olderSrc, newerSrc := "the followed tree", src
	if newTree.N < curTree.N {
		older, newer = newTree, curTree
		olderNote, newerNote = raw, cur.Checkpoint
		olderSrc, newerSrc = src, "the followed tree"
	}
	ev, err := misbehaviour.Prove(older, newer, torchwood.TileHashReaderWithContext(ctx, newer, l.fetcher))
	if err != nil {
		f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "any", "unprovable").Inc()
		return fmt.Errorf("checking consistency of tree %d (%s) with tree %d (%s): %w", older.N, olderSrc, newer.N, newerSrc, err)
	}
	if ev != nil {
		ev.Origin, ev.VKey = l.cfg.Origin, l.cfg.VKey
		ev.Checkpoints = [2]string{string(olderNote), string(newerNote)}
		ev.Sources = [2]string{olderSrc, newerSrc}
		// Recorded unchecked until its alert is: when the evidence or the
		// alert fails to record, the next pass compares it again, even if
		// no source serves it any more (one of at most the followed
		// tree's size at once; a larger one once the tree reaches it).
		if _, err := f.st.AddCheckpoint(ctx, seen, false); err != nil {
			return err
		}
		f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "any", "inconsistent").Inc()
		if err := f.misbehaved(ctx, l, ev, older, newer); err != nil {
			return err
		}
		return f.st.MarkChecked(ctx, seen.Origin, seen.Size, seen.Hash)
	}
	if _, err := f.st.AddCheckpoint(ctx, seen, true); err != nil {
		return err
	}
	if err := f.st.MarkChecked(ctx, seen.Origin, seen.Size, seen.Hash); err != nil {
		return err
	}
	f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "any", "ok").Inc()
	if src == l.cfg.URL+"/checkpoint" && newTree.N > curTree.N {
		return f.st.SetTree(ctx, l.cfg.Origin, cp.N, cp.Hash[:], raw)
	}
	return nil
}

// MisbehaviourAlert is the evidence of a log-inconsistent alert.
type MisbehaviourAlert struct {
	// File is the evidence file, checkable with `attestlog
	// verify-misbehaviour FILE`.
	File string `json:"file"`
	// Misbehaviour is the file's content.
	Misbehaviour *misbehaviour.Evidence `json:"misbehaviour"`
}

func (f *follower) misbehaved(ctx context.Context, l *followedLog, ev *misbehaviour.Evidence, older, newer tlog.Tree) error {
	if _, err := ev.Verify(); err != nil {
		return fmt.Errorf("internal error: evidence does not verify: %w", err)
	}
	b, err := ev.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.evidenceDir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%d-%x-%d-%x.json", l.originHash[:16], older.N, older.Hash[:6], newer.N, newer.Hash[:6])
	path := filepath.Join(f.evidenceDir, name)
	if err := writeFileSync(path, b); err != nil {
		return err
	}
	return f.alerts.raise(ctx, f.st, AlertLogInconsistent, fmt.Sprintf("%s|%d|%x|%d|%x", l.cfg.Origin, older.N, older.Hash, newer.N, newer.Hash),
		"log/"+l.cfg.Origin, fmt.Sprintf("the log signed inconsistent checkpoints (size %d from %s, size %d from %s); evidence in %s", older.N, ev.Sources[0], newer.N, ev.Sources[1], path),
		MisbehaviourAlert{File: path, Misbehaviour: ev})
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// followEntries verifies the entries of the followed tree not verified yet,
// in order, committing progress every batch.
func (f *follower) followEntries(ctx context.Context, l *followedLog) error {
	cur, err := f.st.Log(ctx, l.cfg.Origin)
	if err != nil {
		return err
	}
	tree := tlog.Tree{N: cur.Size, Hash: tlog.Hash(cur.Hash)}
	next := cur.NextEntry
	// The replay of the index exists even when nothing is left to
	// verify (after a restart): the deployment watch decides "logged" and
	// "revoked" on it.
	if err := f.ensureIndex(ctx, l, tree, next); err != nil {
		return err
	}
	if next >= tree.N {
		return nil
	}
	// Fetching (and authenticating) tiles runs ahead of verification by a
	// few batches, so the network and the CPU work overlap.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []rawEntry, 4)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(batches)
		from := next
		for stalls := 0; from < tree.N && stalls < 3; {
			start := from
			batch := make([]rawEntry, 0, f.batch)
			for idx, e := range l.tiles.Entries(ctx, tree, from) {
				if idx != from {
					fetchErr <- fmt.Errorf("tile client yielded entry %d, want %d", idx, from)
					return
				}
				batch = append(batch, rawEntry{idx: idx, data: e})
				from++
				if len(batch) == f.batch {
					select {
					case batches <- batch:
					case <-ctx.Done():
						return
					}
					batch = make([]rawEntry, 0, f.batch)
				}
			}
			if err := l.tiles.Err(); err != nil {
				fetchErr <- fmt.Errorf("reading entries from %d: %w", from, err)
				return
			}
			if len(batch) > 0 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					return
				}
			}
			if from == start {
				stalls++
			}
		}
	}()
	// Checking (parsing and signatures, in parallel) runs one batch ahead
	// of committing (references, the store, the index replay, in order),
	// so both cores stay busy.
	type checkedBatch struct {
		raw     []rawEntry
		checked []checkedEntry
	}
	checkedBatches := make(chan checkedBatch, 1)
	go func() {
		defer close(checkedBatches)
		for batch := range batches {
			select {
			case checkedBatches <- checkedBatch{batch, f.checkBatch(ctx, l, batch)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for cb := range checkedBatches {
		next = cb.raw[len(cb.raw)-1].idx + 1
		if err := f.commitBatch(ctx, l, tree, cb.raw, cb.checked, next); err != nil {
			l.index = nil // rebuilt from the committed position next time
			return err
		}
	}
	select {
	case err := <-fetchErr:
		return err
	default:
	}
	if next < tree.N {
		return fmt.Errorf("read entries up to %d of %d", next, tree.N)
	}
	return nil
}

type rawEntry struct {
	idx  int64
	data []byte
}

type checkedEntry struct {
	rawEntry
	p       *statement.Parsed
	signer  statement.PublicKey
	invalid string
}

// A batch of entries is verified in two parts: checkBatch (in parallel:
// parsing, canonical form, signature, provenance) and commitBatch (in
// order: references, alerts for invalid entries, the releases,
// revocations and progress committed).

// checkBatch checks each entry on its own: nothing that depends on the
// entries before it.
func (f *follower) checkBatch(ctx context.Context, l *followedLog, raw []rawEntry) []checkedEntry {
	checked := make([]checkedEntry, len(raw))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raw); i += workers {
				checked[i] = f.checkEntry(ctx, l, raw[i])
			}
		}()
	}
	wg.Wait()
	return checked
}

// commitBatch is the ordered part: references, alerts, the store and the
// index replay.
func (f *follower) commitBatch(ctx context.Context, l *followedLog, tree tlog.Tree, raw []rawEntry, checked []checkedEntry, next int64) error {
	b := &store.Batch{Revocations: map[int64]int64{}}
	inBatch := map[int64]*store.Release{}
	// release returns the release ref names, or why the reference is
	// invalid, or a store error.
	release := func(ref statement.EntryRef, at int64) (*store.Release, string, error) {
		if int64(ref.Index) >= at {
			return nil, fmt.Sprintf("names entry %d, which is not before it", ref.Index), nil
		}
		r := inBatch[int64(ref.Index)]
		if r == nil {
			var err error
			r, err = f.st.Release(ctx, l.cfg.Origin, int64(ref.Index))
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Sprintf("names entry %d, which is not a valid release", ref.Index), nil
			}
			if err != nil {
				return nil, "", err
			}
		}
		if r.EntrySHA256 != ref.SHA256 {
			return nil, fmt.Sprintf("names entry %d with SHA-256 %s, but that entry's SHA-256 is %s", ref.Index, ref.SHA256, r.EntrySHA256), nil
		}
		return r, "", nil
	}
	for i := range checked {
		c := &checked[i]
		// The map is of the log's entries as they are, valid or not.
		// c.p is ParseEntry's reading when the entry parsed (nil when
		// it did not, or when a keyless bundle failed verification first).
		if err := f.indexEntry(ctx, l, tree, uint64(c.idx), c.data, c.p); err != nil {
			return err
		}
		if c.invalid == "" {
			switch c.p.Kind {
			case statement.KindRelease:
				ref := statement.RefOf(uint64(c.idx), c.data)
				// Every operator key that signed it may revoke it;
				// keyless, only an authority (as the log decides).
				signer := strings.Join(l.pol.Signers(c.p.Envelope), ",")
				rel := store.Release{Origin: l.cfg.Origin, Index: c.idx, EntrySHA256: ref.SHA256, Platform: c.p.Release.Platform,
					Version: c.p.Release.Version, Measurement: c.p.Release.Measurements.Primary(), Signer: signer, Rebuild: store.RebuildOff}
				if c.p.Envelope != nil { // keyless releases are Sigstore bundles
					if k, ok := c.p.Envelope.VerifiedBy(policy.Keys(l.pol.Authorities)); ok {
						rel.Authority = k.ID()
					}
				}
				if f.rebuild {
					rel.Rebuild, rel.Entry = store.RebuildQueued, c.data
				}
				b.Releases = append(b.Releases, rel)
				inBatch[c.idx] = &rel
			case statement.KindReproduction:
				_, why, err := release(c.p.Ref, c.idx)
				if err != nil {
					return err
				}
				if why != "" {
					c.invalid = "reproduction " + why
				}
			case statement.KindRevocation:
				r, why, err := release(c.p.Ref, c.idx)
				switch {
				case err != nil:
					return err
				case why != "":
					c.invalid = "revocation " + why
				case !revokerOK(l.pol, c.p.Envelope, r.Signer):
					c.invalid = fmt.Sprintf("revocation of entry %d is signed by operator key %s, not by the release's operator or an authority", c.p.Ref.Index, c.signer.ID())
				default:
					if _, dup := b.Revocations[r.Index]; !dup && r.Revoked == "" {
						b.Revocations[r.Index] = c.idx
					}
				}
			}
		}
		kind := "unparsed"
		if c.p != nil {
			kind = string(c.p.Kind)
		}
		if c.invalid != "" {
			f.metrics.entries.WithLabelValues(l.cfg.Origin, kind, "invalid").Inc()
			if err := f.alerts.raise(ctx, f.st, AlertInvalidEntry, fmt.Sprintf("%s|%d", l.cfg.Origin, c.idx), fmt.Sprintf("log/%s/entry/%d", l.cfg.Origin, c.idx),
				fmt.Sprintf("entry %d of %s is invalid: %s", c.idx, l.cfg.Origin, c.invalid),
				map[string]any{"index": c.idx, "reason": c.invalid, "entry": c.data}); err != nil {
				return err
			}
			continue
		}
		f.metrics.entries.WithLabelValues(l.cfg.Origin, kind, "ok").Inc()
	}
	if err := f.st.Apply(ctx, l.cfg.Origin, b, next); err != nil {
		return err
	}
	if len(b.Releases) > 0 && f.rebuild {
		f.poke()
	}
	return nil
}

// checkEntry does the checks of one entry that need no other entry.
func (f *follower) checkEntry(ctx context.Context, l *followedLog, e rawEntry) checkedEntry {
	c := checkedEntry{rawEntry: e}
	pol := l.pol
	if statement.IsIndexCheckpoint(e.data) {
		// The log's own commitment to its index: valid if the log signed
		// it (its root is checked in order, against the replay).
		ic, err := statement.VerifyIndexCheckpoint(e.data, l.verifier)
		if err != nil {
			c.invalid = "index checkpoint: " + err.Error()
			return c
		}
		c.p = &statement.Parsed{Kind: statement.KindIndexCheckpoint, IndexCheckpoint: ic}
		return c
	}
	if statement.IsBundle(e.data) {
		// A keyless release: a Sigstore bundle signed by a CI identity
		// the policy names as a keyless operator.
		p, _, err := provenance.VerifyKeylessEntry(e.data, &pol.Provenance, time.Now())
		c.p = p
		if err != nil {
			c.invalid = "keyless release: " + err.Error()
			return c
		}
		if err := f.checkProvenance(ctx, pol, p); err != nil {
			c.invalid = "provenance: " + err.Error()
		}
		return c
	}
	p, err := statement.Parse(e.data)
	if err != nil {
		c.invalid = err.Error()
		return c
	}
	c.p = p
	canon, err := p.Entry()
	if err != nil || !bytes.Equal(canon, e.data) {
		c.invalid = "the logged envelope is not in canonical form"
		return c
	}
	switch p.Kind {
	case statement.KindRelease:
		k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Operators))
		if !ok {
			c.invalid = "release not signed by an operator key of the auditor's policy"
			return c
		}
		c.signer = k
		// Whether or not it carries provenance: under 'provenance
		// required' a release without it is no more admissible here than
		// at the log or to a client (provenance.Admit, the one rule).
		if err := f.checkProvenance(ctx, pol, p); err != nil {
			c.invalid = "provenance: " + err.Error()
			return c
		}
	case statement.KindReproduction:
		k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Auditors))
		if !ok {
			c.invalid = "reproduction not signed by an auditor key of the auditor's policy"
			return c
		}
		c.signer = k
	case statement.KindRevocation:
		if k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Authorities)); ok {
			c.signer = k
			return c
		}
		k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Operators))
		if !ok {
			c.invalid = "revocation not signed by an operator or authority key of the auditor's policy"
			return c
		}
		c.signer = k
	}
	return c
}

// revokerOK applies the policy's one rule of who may revoke a release
// (releaseSigners: the store's comma-separated key IDs).
func revokerOK(pol *policy.Policy, env *statement.Envelope, releaseSigners string) bool {
	for _, s := range strings.Split(releaseSigners, ",") {
		if _, ok := pol.Revoker(env, s); ok {
			return true
		}
	}
	return false
}

// checkProvenance checks a release's provenance with the hook, or by
// default with policy/provenance under the log's policy.
func (f *follower) checkProvenance(ctx context.Context, pol *policy.Policy, p *statement.Parsed) error {
	if f.provenance != nil {
		return f.provenance(ctx, pol, p)
	}
	return provenance.Admit(p.Release, p.Statement.Subject, &pol.Provenance, time.Now())
}
