// Package tlogcheck checks a running log from the outside, for tests, with
// filippo.io/torchwood's tlog client: an implementation of the
// c2sp.org/tlog-tiles client that is not ours.
package tlogcheck

import (
	"bytes"
	"context"
	"fmt"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/policy"
)

// Log reads the log at url: its checkpoint (verified under pol, with the
// quorum) and every entry, comparing entries with want (nil items are not
// compared), and checks inclusion proofs of the first, middle and last
// entries. It returns the verified checkpoint.
func Log(ctx context.Context, url string, pol *policy.Policy, want [][]byte) (*policy.Checkpoint, error) {
	f, err := torchwood.NewTileFetcher(url)
	if err != nil {
		return nil, err
	}
	c, err := torchwood.NewClient(f)
	if err != nil {
		return nil, err
	}
	cpRaw, err := f.ReadEndpoint(ctx, "checkpoint")
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	cp, err := pol.VerifyCheckpoint(cpRaw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if int(cp.N) < len(want) {
		return nil, fmt.Errorf("checkpoint size %d < %d expected entries", cp.N, len(want))
	}
	tree := tlog.Tree{N: cp.N, Hash: cp.Hash}
	entries, err := entries(ctx, c, tree)
	if err != nil {
		return nil, err
	}
	for i, w := range want {
		if w != nil && !bytes.Equal(entries[i], w) {
			return nil, fmt.Errorf("entry %d differs from what was added", i)
		}
	}
	if cp.N == 0 {
		return cp, nil
	}
	for _, idx := range []int64{0, cp.N / 2, cp.N - 1} {
		e, rp, err := c.Entry(ctx, tree, idx)
		if err != nil {
			return nil, fmt.Errorf("torchwood Entry(%d): %w", idx, err)
		}
		if err := tlog.CheckRecord(rp, cp.N, cp.Hash, idx, tlog.RecordHash(e)); err != nil {
			return nil, fmt.Errorf("inclusion proof of %d: %w", idx, err)
		}
	}
	return cp, nil
}

// Entries reads every entry of tree from the log at url.
func Entries(ctx context.Context, url string, tree tlog.Tree) ([][]byte, error) {
	f, err := torchwood.NewTileFetcher(url)
	if err != nil {
		return nil, err
	}
	c, err := torchwood.NewClient(f)
	if err != nil {
		return nil, err
	}
	return entries(ctx, c, tree)
}

func entries(ctx context.Context, c *torchwood.Client, tree tlog.Tree) ([][]byte, error) {
	var out [][]byte
	for pass := 0; int64(len(out)) < tree.N && pass < 3; pass++ {
		for idx, e := range c.Entries(ctx, tree, int64(len(out))) {
			if idx != int64(len(out)) {
				return nil, fmt.Errorf("torchwood yielded entry %d, want %d", idx, len(out))
			}
			out = append(out, bytes.Clone(e))
		}
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("torchwood client: %w", err)
		}
	}
	if int64(len(out)) != tree.N {
		return nil, fmt.Errorf("read %d entries, the tree has %d", len(out), tree.N)
	}
	return out, nil
}

// Consistent checks that the tree of the log at url is consistent with
// the older tree, with a proof built from the log's tiles by x/mod's tlog.
func Consistent(ctx context.Context, url string, older, newer tlog.Tree) error {
	f, err := torchwood.NewTileFetcher(url)
	if err != nil {
		return err
	}
	hr := torchwood.TileHashReaderWithContext(ctx, newer, f)
	p, err := tlog.ProveTree(newer.N, older.N, hr)
	if err != nil {
		return fmt.Errorf("building consistency proof %d→%d: %w", older.N, newer.N, err)
	}
	if err := tlog.CheckTree(p, newer.N, newer.Hash, older.N, older.Hash); err != nil {
		return fmt.Errorf("tree %d is not consistent with tree %d: %w", newer.N, older.N, err)
	}
	return nil
}
