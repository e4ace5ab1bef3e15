package logserver

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"
)

// withClock gives the frontend its own clock.
func withClock(now func() time.Time) option { return func(l *Log) { l.now = now } }

// withClaimStale shortens how long a claim may go unrefreshed.
func withClaimStale(d time.Duration) option { return func(l *Log) { l.claimStale = d } }

// withAppendHook runs f in the append path, after the claim and before
// Tessera's Add.
func withAppendHook(f func(ctx context.Context, h [32]byte) error) option {
	return func(l *Log) { l.appendHook = f }
}

// gate is an append hook that holds the frontend's first append (once it
// has claimed the statement) until opened, then fails it with err (nil:
// lets it go on); later appends pass.
type gate struct {
	once    sync.Once
	arrived chan struct{} // closed when the first append reaches the hook
	open    chan struct{}
	err     error
}

func newGate(err error) *gate {
	return &gate{arrived: make(chan struct{}), open: make(chan struct{}), err: err}
}

func (g *gate) hook(ctx context.Context, h [32]byte) error {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return nil
	}
	close(g.arrived)
	<-g.open
	return g.err
}

func (g *gate) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no append reached the hook within 30 s", what)
	}
}

type addResult struct {
	r   api.AddResponse
	err error
}

// addAsync submits body to tl; the answer comes on the channel.
func (tl *testLog) addAsync(ctx context.Context, t *testing.T, body []byte) <-chan addResult {
	c := make(chan addResult, 1)
	go func() {
		r, err := tl.client.Add(ctx, body)
		c <- addResult{r, err}
	}()
	return c
}

// early returns the answer on c if it comes within d (nil otherwise):
// the time a wrong answer (an append that should wait) is given to come.
func early(c <-chan addResult, d time.Duration) *addResult {
	select {
	case r := <-c:
		return &r
	case <-time.After(d):
		return nil
	}
}

func answer(t *testing.T, early *addResult, c <-chan addResult) addResult {
	t.Helper()
	if early != nil {
		return *early
	}
	select {
	case r := <-c:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to POST /add within 60 s")
		return addResult{}
	}
}

// checkOnce checks that the two answers to one statement name one entry,
// one of them as the duplicate, and that the tree holds it once.
func (tl *testLog) checkOnce(t *testing.T, body []byte, x, y addResult) {
	t.Helper()
	if x.err != nil || y.err != nil {
		t.Fatalf("POST /add = %v, %v", x.err, y.err)
	}
	if x.r.Index != y.r.Index || x.r.Duplicate == y.r.Duplicate {
		t.Errorf("one statement sent to two frontends: answers %+v and %+v, want one index, one duplicate", x.r, y.r)
	}
	if n := tl.count(t, body); n != 1 {
		t.Errorf("the tree holds the statement %d times, want once", n)
	}
}

// count is how many entries of the tree carry body's payload.
func (tl *testLog) count(t *testing.T, body []byte) int {
	t.Helper()
	want, err := statement.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tl.treeEntries(t) {
		if p, err := statement.ParseEntry(e); err == nil && p.PayloadHash == want.PayloadHash {
			n++
		}
	}
	return n
}

// treeEntries reads every entry of the tree as it is now.
func (tl *testLog) treeEntries(t *testing.T) [][]byte {
	t.Helper()
	// Every entry sequenced so far, once integrated (Tessera's AWS driver
	// integrates a second or so after it sequences).
	size := tl.size(t)
	waitForCond(t, func() bool {
		n, err := tl.reader.IntegratedSize(t.Context())
		if err != nil || n < size {
			time.Sleep(50 * time.Millisecond)
			return false
		}
		return true
	}, "the tree to integrate every sequenced entry")
	var es [][]byte
	for i := uint64(0); i < size; i += layout.EntryBundleWidth {
		b, err := client.GetEntryBundle(t.Context(), tl.reader.ReadEntryBundle, i/layout.EntryBundleWidth, size)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, b.Entries...)
	}
	return es
}

// TestClaimsIgnoreFrontendClocks: a frontend whose clock is an hour ahead
// sees another's claim, made a moment ago, as an hour old. It must wait
// for that claim all the same (the database's clock times claims), not
// take it over and append the statement a second time.
func TestClaimsIgnoreFrontendClocks(t *testing.T) {
	dsn := mariadbtest.Start(t)
	g := newGate(nil)
	a := newTestLogOpts(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}}, nil, "quorum none\n", "", false, withAppendHook(g.hook))
	b := a.frontend(t, withClock(func() time.Time { return time.Now().Add(time.Hour) }))
	ctx := t.Context()
	e := release(t, a.operator, measurement(1))

	ca := a.addAsync(ctx, t, e)
	g.wait(t, "a")
	cb := b.addAsync(ctx, t, e)
	rb := early(cb, 2*time.Second)
	close(g.open)
	a.checkOnce(t, e, answer(t, nil, ca), answer(t, rb, cb))
}

// TestClaimHeldWhileAppending: a frontend whose append takes longer than
// a claim may go unrefreshed keeps its claim (it refreshes it while the
// append is pending), so another frontend sent the same statement waits
// and answers it as the duplicate instead of appending it again.
func TestClaimHeldWhileAppending(t *testing.T) {
	dsn := mariadbtest.Start(t)
	const stale = time.Second
	g := newGate(nil)
	a := newTestLogOpts(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}}, nil, "quorum none\n", "", false,
		withClaimStale(stale), withAppendHook(g.hook))
	b := a.frontend(t, withClaimStale(stale))
	ctx := t.Context()
	e := release(t, a.operator, measurement(1))

	ca := a.addAsync(ctx, t, e)
	g.wait(t, "a")
	cb := b.addAsync(ctx, t, e)
	rb := early(cb, 4*stale) // a's append is still pending all this time
	close(g.open)
	a.checkOnce(t, e, answer(t, nil, ca), answer(t, rb, cb))
}

// TestReleaseOnlyOwnClaim: frontend a stalls after claiming a statement
// (its claim lapses), b takes the claim over and is appending; then a's
// append fails. a must not drop b's claim: its client's retry (to a)
// waits for b's append and answers the duplicate, where dropping the
// claim let it append the statement a second time.
func TestReleaseOnlyOwnClaim(t *testing.T) {
	dsn := mariadbtest.Start(t)
	ga, gb := newGate(errors.New("injected: the append failed")), newGate(nil)
	b := newTestLogOpts(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}}, nil, "quorum none\n", "", false, withAppendHook(gb.hook))
	logs := &syncBuffer{}
	b.logger = slog.New(slog.NewTextHandler(logs, nil))
	a := b.frontend(t, withAppendHook(ga.hook))
	ctx := t.Context()
	e := release(t, a.operator, measurement(1))
	p, err := statement.Parse(e)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ca := a.addAsync(ctx, t, e)
	ga.wait(t, "a")
	// a stalls: its claim is as an hour-long stall leaves it, until b
	// has taken it over.
	cb := b.addAsync(ctx, t, e)
	deadline := time.After(30 * time.Second)
	for taken := false; !taken; {
		if _, err := db.ExecContext(ctx, "UPDATE `attestlog_payloads` SET `claimed` = `claimed` - 3600000 WHERE `payload_hash` = ? AND `idx` IS NULL", p.PayloadHash[:]); err != nil {
			t.Fatal(err)
		}
		select {
		case <-gb.arrived:
			taken = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("b did not take over the lapsed claim within 30 s")
		}
	}
	close(ga.open) // a's append fails; a's client retries on a after 1 s
	ra := early(ca, 4*time.Second)
	close(gb.open)
	a.checkOnce(t, e, answer(t, ra, ca), answer(t, nil, cb))
	if want := "the claim was no longer this frontend's"; !strings.Contains(logs.String(), want) {
		t.Errorf("a's log does not say %q:\n%s", want, logs)
	}
}

// TestIndexLockNameFits: the named lock of any origin is within MySQL 8's
// limit of 64 characters (MariaDB's is 192 bytes), and distinct origins
// get distinct locks.
func TestIndexLockNameFits(t *testing.T) {
	seen := map[string]string{}
	for _, origin := range []string{
		testOrigin,
		"log.example/" + strings.Repeat("a", 88), // 100 characters
		"log.example/" + strings.Repeat("a", 89),
		"log.example/" + strings.Repeat("ä", 188),
		strings.Repeat("x", 1000),
	} {
		name := indexLockName(origin)
		if n := utf8.RuneCountInString(name); n > 64 || len(name) > 64 {
			t.Errorf("lock name of a %d-character origin: %d characters, %d bytes; MySQL 8 refuses over 64", utf8.RuneCountInString(origin), n, len(name))
		}
		if o, ok := seen[name]; ok {
			t.Errorf("origins %q and %q share the lock %q", o, origin, name)
		}
		seen[name] = origin
	}
}

// TestIndexCheckpointsLongOrigin: a log on MariaDB whose origin is longer
// than a lock name may be still signs index checkpoints (MariaDB refuses
// lock names over 192 bytes, MySQL 8 over 64 characters).
func TestIndexCheckpointsLongOrigin(t *testing.T) {
	dsn := mariadbtest.Start(t)
	origin := "log.example/" + strings.Repeat("o", 188) // 200 characters
	keyPath := filepath.Join(t.TempDir(), "log.key")
	if _, err := keyfile.Generate(keyfile.KindLog, origin, keyPath, ""); err != nil {
		t.Fatal(err)
	}
	tl := newTestLogOpts(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}}, nil, "quorum none\n", keyPath, true)
	m := measurement(1)
	tl.add(t, release(t, tl.operator, m))
	tl.getIndexProof(t, snp(m), 1)
}

// TestClaimTableUpgrade: a claim table from before claims had owners gets
// the owner column when a frontend starts, and a claim without an owner
// (as an older frontend leaves it) is taken over once stale, its
// statement appended once.
func TestClaimTableUpgrade(t *testing.T) {
	dsn := mariadbtest.Start(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE `attestlog_payloads` (`payload_hash` BINARY(32) NOT NULL, `idx` BIGINT UNSIGNED NULL, `claimed` BIGINT NOT NULL, PRIMARY KEY (`payload_hash`))"); err != nil {
		t.Fatal(err)
	}
	tl := newTestLogOpts(t, &Storage{MySQL: &MySQLStorage{DSN: dsn}}, nil, "quorum none\n", "", false)
	e := release(t, tl.operator, measurement(1))
	p, err := statement.Parse(e)
	if err != nil {
		t.Fatal(err)
	}
	// The claim of an older frontend (its statement, its columns) that
	// stopped a minute ago without appending.
	if _, err := db.ExecContext(ctx, "INSERT INTO `attestlog_payloads` (`payload_hash`, `idx`, `claimed`) VALUES (?, NULL, ?)", p.PayloadHash[:], time.Now().Add(-time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	r, err := tl.client.Add(ctx, e)
	if err != nil || r.Duplicate {
		t.Fatalf("POST /add of a statement with a stale ownerless claim = %+v, %v; want it appended", r, err)
	}
	var idx sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT `idx` FROM `attestlog_payloads` WHERE `payload_hash` = ?", p.PayloadHash[:]).Scan(&idx); err != nil || !idx.Valid || uint64(idx.Int64) != r.Index {
		t.Errorf("the claim records index %v (%v), want %d", idx, err, r.Index)
	}
	if n := tl.count(t, e); n != 1 {
		t.Errorf("the tree holds the statement %d times, want once", n)
	}
	// A second start finds the column there.
	tl.Log.Close(ctx)
	tl.start(t)
	if r2, err := tl.client.Add(ctx, e); err != nil || !r2.Duplicate || r2.Index != r.Index {
		t.Errorf("after a restart, POST /add again = %+v, %v; want the duplicate of %d", r2, err, r.Index)
	}
}
