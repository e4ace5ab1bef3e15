package auditor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
)

// indexReplay is the auditor's own build of a log's verifiable index,
// from the entries it reads, in order: every index checkpoint the log
// signs is checked against it.
type indexReplay struct {
	b *vindex.Builder
	// roots are the map's roots at recent sizes: an index checkpoint
	// covers a size a little below its own index.
	roots map[uint64][32]byte
}

// rootsKept bounds how far below its own index an index checkpoint may
// commit and still be checked (the log commits what it had mapped when
// it appended the checkpoint: a few batches back at most).
const rootsKept = 1 << 16

// newIndexReplay starts a replay, its map in a scratch file in dir when
// dir is not empty (Config.IndexMap "file").
func newIndexReplay(dir string) (*indexReplay, error) {
	b := vindex.NewBuilder()
	if dir != "" {
		var err error
		if b, err = vindex.NewBuilderFile(dir); err != nil {
			return nil, fmt.Errorf("index_map file: %w", err)
		}
	}
	return &indexReplay{b: b, roots: map[uint64][32]byte{0: vindex.EmptyRoot()}}, nil
}

func (r *indexReplay) add(idx uint64, entry []byte, p *statement.Parsed) error {
	if _, err := r.b.AddParsed(idx, entry, p); err != nil {
		return err
	}
	r.roots[r.b.Size()] = r.b.Root()
	delete(r.roots, r.b.Size()-rootsKept)
	return nil
}

// ensureIndex makes l.index a replay of the entries below next (after a
// restart it replays them from the log's tiles, which the followed tree
// authenticates).
func (f *follower) ensureIndex(ctx context.Context, l *followedLog, tree tlog.Tree, next int64) error {
	if l.index != nil && int64(l.index.b.Size()) == next {
		return nil
	}
	r, err := newIndexReplay(f.indexDir)
	if err != nil {
		return err
	}
	l.index = r
	l.gpuSpecs = map[uint64]*statement.GPUs{}
	l.revocations = map[uint64]*statement.Envelope{}
	l.vtpmSelections = map[string]map[[3]byte]bool{}
	if next == 0 {
		return nil
	}
	l.logger.Info("replaying the verifiable index", "entries", next)
	for idx, e := range l.tiles.Entries(ctx, tree, 0) {
		if idx >= next {
			break
		}
		if err := f.indexEntry(ctx, l, tree, uint64(idx), e, nil); err != nil {
			return err
		}
	}
	if err := l.tiles.Err(); err != nil {
		l.index = nil
		return fmt.Errorf("replaying the index: %w", err)
	}
	if int64(l.index.b.Size()) != next {
		n := l.index.b.Size()
		l.index = nil
		return fmt.Errorf("replaying the index: read %d of %d entries", n, next)
	}
	return nil
}

// indexEntry feeds entry idx to the replay, first checking it against the
// replay if it is an index checkpoint the log signed. p is the entry as
// statement.ParseEntry reads it, when the caller has it (nil: parsed here).
func (f *follower) indexEntry(ctx context.Context, l *followedLog, tree tlog.Tree, idx uint64, entry []byte, p *statement.Parsed) error {
	if statement.IsIndexCheckpoint(entry) {
		if ic, err := statement.VerifyIndexCheckpoint(entry, l.verifier); err == nil {
			want, known := l.index.roots[ic.Size]
			switch {
			case ic.Version != vindex.MapVersion:
				// An older map's, in a log from before it: no client
				// decides on it any more, and this auditor builds only
				// the current map.
				f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "index", "unchecked").Inc()
			case ic.Size > idx:
				if err := f.indexMisbehaved(ctx, l, tree, idx, ic, fmt.Sprintf("index checkpoint at entry %d claims to cover %d entries", idx, ic.Size)); err != nil {
					return err
				}
			case !known:
				l.logger.Warn("index checkpoint too far behind to check", "entry", idx, "covers", ic.Size)
				f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "index", "unchecked").Inc()
			case want != ic.Root:
				if err := f.indexMisbehaved(ctx, l, tree, idx, ic, fmt.Sprintf("index checkpoint at entry %d commits root %x for the log's first %d entries, which map to %x", idx, ic.Root[:8], ic.Size, want[:8])); err != nil {
					return err
				}
				f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "index", "inconsistent").Inc()
			default:
				f.metrics.checkpoints.WithLabelValues(l.cfg.Origin, "index", "ok").Inc()
			}
		}
	}
	if p == nil {
		if q, err := statement.ParseEntry(entry); err == nil {
			p = q
		}
	}
	if p != nil && p.Release != nil && p.Release.GPUs != nil {
		l.gpuSpecs[idx] = p.Release.GPUs
	}
	if p != nil && p.Release != nil && evidence.IsVTPMPlatform(p.Release.Platform) {
		if sel, ok := vindex.VTPMSelection(p.Release.Measurements.VTPM); ok {
			if l.vtpmSelections[p.Release.Platform] == nil {
				l.vtpmSelections[p.Release.Platform] = map[[3]byte]bool{}
			}
			l.vtpmSelections[p.Release.Platform][sel] = true
		}
	}
	if p != nil && p.Kind == statement.KindRevocation && p.Envelope != nil {
		l.revocations[idx] = p.Envelope
	}
	return l.index.add(idx, entry, p)
}

// indexMisbehaved writes the evidence (the followed checkpoint and every
// entry of its tree) and raises index-inconsistent.
func (f *follower) indexMisbehaved(ctx context.Context, l *followedLog, tree tlog.Tree, idx uint64, ic *statement.IndexCheckpoint, summary string) error {
	cur, err := f.st.Log(ctx, l.cfg.Origin)
	if err != nil {
		return err
	}
	ev := &vindex.Misbehaviour{Format: vindex.MisbehaviourFormat, Origin: l.cfg.Origin, VKey: l.cfg.VKey, Checkpoint: string(cur.Checkpoint), IndexEntry: idx}
	// A client of its own: l.tiles may be iterating in the follower.
	tc, err := torchwood.NewClient(l.fetcher)
	if err != nil {
		return err
	}
	for i, e := range tc.Entries(ctx, tree, 0) {
		if i >= tree.N {
			break
		}
		ev.Entries = append(ev.Entries, e)
	}
	if err := tc.Err(); err != nil {
		return fmt.Errorf("reading entries for the evidence: %w", err)
	}
	b := vindex.NewBuilder()
	for i := range ic.Size {
		b.Add(i, ev.Entries[i])
	}
	root := b.Root()
	ev.Recomputed = root[:]
	path := ""
	if ev.Verify() == nil {
		raw, err := ev.Marshal()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(f.evidenceDir, 0o755); err != nil {
			return err
		}
		path = filepath.Join(f.evidenceDir, fmt.Sprintf("%s-index-%d.json", l.originHash[:16], idx))
		if err := writeFileSync(path, raw); err != nil {
			return err
		}
		summary += "; evidence in " + path
	}
	return f.alerts.raise(ctx, f.st, AlertIndexInconsistent, fmt.Sprintf("%s|index|%d", l.cfg.Origin, idx), fmt.Sprintf("log/%s/entry/%d", l.cfg.Origin, idx),
		summary, map[string]any{"file": path, "index_entry": idx, "covers": ic.Size, "claimed_root": ic.Root[:], "recomputed_root": root[:]})
}
