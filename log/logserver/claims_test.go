package logserver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/internal/index"
)

// faultTree is a claimTree whose answers a test sets: the tree a stale
// claim is settled against, without a log around it.
type faultTree struct {
	catchUpErr error
	at         map[[32]byte]uint64
	caughtUp   int
}

func (f *faultTree) indexOnce(context.Context) error {
	f.caughtUp++
	return f.catchUpErr
}

func (f *faultTree) payloadIndex(_ context.Context, h [32]byte) (uint64, error) {
	if i, ok := f.at[h]; ok {
		return i, nil
	}
	return 0, index.ErrNotFound
}

// claimsDB is the claim table on a MariaDB of the test's own.
func claimsDB(t *testing.T) *sql.DB {
	db, err := openClaimsDB(t.Context(), mariadbtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestClaimsStaleClaimSettledByTheTree: claims reach the log only through
// claimTree, so what a stale claim's fate hangs on can be injected. A
// claim whose owner stopped (never refreshed, never recorded) is taken
// over only when the tree says the statement is not in it; if the tree
// holds it, the answer is the duplicate at the tree's index (and the
// claim row records it); if the tree cannot be read, nothing is taken
// over (ErrUnavailable: no second append on a guess). A live claim is
// never taken over, and a released one is claimed afresh.
func TestClaimsStaleClaimSettledByTheTree(t *testing.T) {
	ctx := t.Context()
	db := claimsDB(t)
	const stale = 300 * time.Millisecond
	tree := &faultTree{at: map[[32]byte]uint64{}}
	owner := &claims{db: db, stale: stale, tree: tree, logger: slog.New(slog.DiscardHandler)}
	other := &claims{db: db, stale: stale, tree: tree, logger: slog.New(slog.DiscardHandler)}
	claimOf := func(cs *claims, h [32]byte) (*claim, uint64, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cs.claim(ctx, h)
	}

	// The tree cannot be read: a stale claim stays its owner's.
	h1 := sha256.Sum256([]byte("statement 1"))
	if c, _, dup, err := claimOf(owner, h1); err != nil || dup || c == nil {
		t.Fatalf("first claim: %v %v %v", c, dup, err)
	}
	time.Sleep(2 * stale)
	tree.catchUpErr = errors.New("storage partitioned")
	if c, _, dup, err := claimOf(other, h1); !errors.Is(err, ErrUnavailable) || c != nil || dup {
		t.Fatalf("a stale claim with an unreadable tree: claim %v dup %v err %v; want ErrUnavailable and nothing taken", c, dup, err)
	}
	// The owner had appended it before it stopped: the tree says where.
	tree.catchUpErr = nil
	tree.at[h1] = 41
	if c, idx, dup, err := claimOf(other, h1); err != nil || !dup || idx != 41 || c != nil {
		t.Fatalf("a stale claim of a statement in the tree: claim %v idx %d dup %v err %v; want the duplicate at 41", c, idx, dup, err)
	}
	var recorded uint64
	if err := db.QueryRowContext(ctx, "SELECT `idx` FROM `attestlog_payloads` WHERE `payload_hash` = ?", h1[:]).Scan(&recorded); err != nil || recorded != 41 {
		t.Errorf("the claim row after settling: idx %d, %v; want 41", recorded, err)
	}

	// Not in the tree: the other frontend takes the stale claim over, and
	// the first owner can no longer record its index.
	h2 := sha256.Sum256([]byte("statement 2"))
	first, _, _, err := claimOf(owner, h2)
	if err != nil || first == nil {
		t.Fatal(err)
	}
	time.Sleep(2 * stale)
	took, _, dup, err := claimOf(other, h2)
	if err != nil || dup || took == nil {
		t.Fatalf("a stale claim of a statement not in the tree: claim %v dup %v err %v; want it taken over", took, dup, err)
	}
	if ok, err := owner.setIndex(ctx, h2, first.token[:], 7); err != nil || ok {
		t.Errorf("the first owner recorded its index on a claim taken over: %v %v", ok, err)
	}
	other.record(took, 8)
	if c, idx, dup, err := claimOf(owner, h2); err != nil || !dup || idx != 8 || c != nil {
		t.Errorf("after the new owner recorded it: claim %v idx %d dup %v err %v; want the duplicate at 8", c, idx, dup, err)
	}

	// A claim held fresh is waited for, never taken over, however long.
	h3 := sha256.Sum256([]byte("statement 3"))
	live, _, _, err := claimOf(owner, h3)
	if err != nil || live == nil {
		t.Fatal(err)
	}
	stop := owner.hold(live)
	caught := tree.caughtUp
	wctx, cancel := context.WithTimeout(ctx, 4*stale)
	c, _, dup, err := other.claim(wctx, h3)
	cancel()
	stop()
	if !errors.Is(err, context.DeadlineExceeded) || c != nil || dup {
		t.Errorf("a held claim: claim %v dup %v err %v; want to wait until the deadline", c, dup, err)
	}
	if tree.caughtUp != caught {
		t.Errorf("a held claim sent the other frontend to the tree %d times", tree.caughtUp-caught)
	}
	// Released after a failed append: claimed afresh at once.
	owner.release(ctx, live)
	if c, _, dup, err := claimOf(other, h3); err != nil || dup || c == nil {
		t.Errorf("a released claim: claim %v dup %v err %v; want a new claim", c, dup, err)
	}
}

// TestClaimsBatched: concurrent admissions claim and record in batches
// (one INSERT, one UPDATE for many), and batching changes no outcome.
// Two frontends claim the same 300 statements at once: each statement
// is claimed by exactly one, the other answers it as the duplicate at
// the index its owner recorded, and the database ran fewer INSERTs than
// claims. A batch of records in which one claim was taken over records
// the others and reports only that one as lost.
func TestClaimsBatched(t *testing.T) {
	ctx := t.Context()
	db := claimsDB(t)
	tree := &faultTree{at: map[[32]byte]uint64{}}
	var logs [2]testenv.Buffer
	fe := [2]*claims{
		{db: db, stale: 30 * time.Second, tree: tree, logger: slog.New(slog.NewTextHandler(&logs[0], nil))},
		{db: db, stale: 30 * time.Second, tree: tree, logger: slog.New(slog.NewTextHandler(&logs[1], nil))},
	}
	inserts := func() int64 {
		var name string
		var n int64
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Com_insert'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const n = 300
	before := inserts()
	type outcome struct {
		won bool
		idx uint64
		err error
	}
	var res [2][n]outcome
	var wg sync.WaitGroup
	for f := range fe {
		for i := range n {
			wg.Go(func() {
				h := sha256.Sum256([]byte(fmt.Sprint("statement ", i)))
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				c, idx, dup, err := fe[f].claim(cctx, h)
				switch {
				case err != nil:
					res[f][i] = outcome{err: err}
				case dup:
					res[f][i] = outcome{idx: idx}
				default:
					// The owner appends it at 1000+i and records that.
					fe[f].record(c, uint64(1000+i))
					res[f][i] = outcome{won: true, idx: uint64(1000 + i)}
				}
			})
		}
	}
	wg.Wait()
	for i := range n {
		a, b := res[0][i], res[1][i]
		if a.err != nil || b.err != nil {
			t.Fatalf("statement %d: %v, %v", i, a.err, b.err)
		}
		if a.won == b.won {
			t.Fatalf("statement %d: claimed by both or neither frontend (%v, %v)", i, a.won, b.won)
		}
		if a.idx != uint64(1000+i) || b.idx != uint64(1000+i) {
			t.Fatalf("statement %d: indices %d and %d, want %d", i, a.idx, b.idx, 1000+i)
		}
	}
	if got := inserts() - before; got >= 2*n {
		t.Errorf("%d INSERTs for %d claims: not batched", got, 2*n)
	} else {
		t.Logf("%d INSERT statements for %d claims", got, 2*n)
	}
	for f := range logs {
		if s := logs[f].String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("frontend %d logged an error:\n%s", f, s)
		}
	}

	// A record batch with one claim lost to a takeover: the rest are
	// recorded, and only the lost one is reported.
	var mine []*claim
	for i := range 20 {
		c, _, dup, err := fe[0].claim(ctx, sha256.Sum256([]byte(fmt.Sprint("batch ", i))))
		if err != nil || dup {
			t.Fatalf("claim %d: %v %v", i, dup, err)
		}
		mine = append(mine, c)
	}
	lost := mine[7]
	if _, err := db.ExecContext(ctx, "UPDATE `attestlog_payloads` SET `owner` = ? WHERE `payload_hash` = ?", make([]byte, 16), lost.h[:]); err != nil {
		t.Fatal(err)
	}
	errs, err := fe[0].recordBatch(func() []recorded {
		var rs []recorded
		for i, c := range mine {
			rs = append(rs, recorded{c, uint64(5000 + i)})
		}
		return rs
	}())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range mine {
		var idx sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT `idx` FROM `attestlog_payloads` WHERE `payload_hash` = ?", c.h[:]).Scan(&idx); err != nil {
			t.Fatal(err)
		}
		switch {
		case c == lost && (idx.Valid || !errors.Is(errs[i], errNotOurs)):
			t.Errorf("the claim taken over: index %v, answer %v; want none and errNotOurs", idx, errs[i])
		case c != lost && (!idx.Valid || idx.Int64 != int64(5000+i) || errs[i] != nil):
			t.Errorf("claim %d: index %v, answer %v; want %d and nil", i, idx, errs[i], 5000+i)
		}
	}
}
