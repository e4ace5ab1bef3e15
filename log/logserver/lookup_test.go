package logserver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
)

// TestLookupAnswersTheDefinition holds /lookup, answered by the verifiable
// index's map since the entry index dropped its lookup table, to what it
// means: the releases that name the value, untyped, as a measurement
// register (SNP, TDX, vTPM) or a subject's digest (sha256, sha384,
// sha512), oldest first. The expected answers are computed here from the
// statements the test logged, not by the code under test. Values are
// shared across types on purpose (an RTMR equal to another release's
// launch digest and to a third's artifact SHA-384), and a reproduction of
// a release, filed under its keys in the map, is not a release.
func TestLookupAnswersTheDefinition(t *testing.T) {
	tl := newTestLog(t, nil)
	ctx := t.Context()
	h := func(b byte, n int) string { return strings.Repeat(fmt.Sprintf("%02x", b), n) }
	shared48 := h(0x5a, 48)
	zero48 := h(0, 48)
	type rel struct {
		platform string
		m        statement.Measurements
		subj     statement.Digest
	}
	rels := []rel{
		{statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: shared48}}, statement.Digest{SHA256: h(0x01, 32)}},
		{statement.PlatformTDX, statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: h(0x11, 48), RTMR0: h(0x12, 48), RTMR1: shared48, RTMR2: zero48, MRConfigID: h(0x13, 48)}},
			statement.Digest{SHA384: h(0x02, 48), SHA512: h(0x03, 64)}},
		{statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: h(0x21, 48)}}, statement.Digest{SHA384: shared48, SHA256: h(0x01, 32)}},
		{statement.PlatformAzureSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: h(0x31, 48)},
			VTPM: &statement.VTPMMeasurements{PCRs: map[string]string{"4": h(0x44, 32), "11": h(0x01, 32)}}}, statement.Digest{SHA512: h(0x03, 64)}},
		{statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: shared48}}, statement.Digest{SHA256: h(0x05, 32)}},
	}
	want := map[string][]uint64{}
	var first uint64
	var firstBody []byte
	for i, r := range rels {
		body := releaseOf(t, tl.operator, r.platform, r.m, r.subj)
		idx := tl.add(t, body)
		if i == 0 {
			first, firstBody = idx, body
		}
		if i == 1 {
			// A reproduction of release 0, filed under its lookup keys.
			rp, err := statement.EncodeReproduction(statement.RefOf(first, mustEntry(t, firstBody)), &statement.Reproduction{
				Outcome: statement.OutcomeMatch, Time: time.Now().UTC().Truncate(time.Second),
				Measurements: rels[0].m,
			})
			if err != nil {
				t.Fatal(err)
			}
			e, _ := statement.Sign(rp, tl.auditor)
			tl.add(t, e)
		}
		vals := r.m.Values()
		for _, v := range []string{r.subj.SHA256, r.subj.SHA384, r.subj.SHA512} {
			if v != "" {
				vals = append(vals, v)
			}
		}
		for _, v := range vals {
			if b, _ := hex.DecodeString(v); strings.Trim(v, "0") == "" || len(b) == 0 {
				continue // an all-zero register measures nothing
			}
			if !slices.Contains(want[v], idx) {
				want[v] = append(want[v], idx)
			}
		}
	}
	size, err := tl.reader.IntegratedSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.waitIndexed(ctx, size-1); err != nil {
		t.Fatal(err)
	}
	if got := want[shared48]; len(got) != 4 {
		t.Fatalf("the test's own definition finds %d releases with the shared value, want 4 (releases 0, 1, 2, 4)", len(got))
	}
	queries := slices.Sorted(maps.Keys(want))
	queries = append(queries, zero48, h(0x77, 48), h(0x77, 32), h(0x77, 20), strings.ToUpper(shared48))
	for _, q := range queries {
		es, err := tl.Lookup(ctx, strings.ToLower(q))
		if err != nil {
			t.Fatalf("Lookup(%.12s…): %v", q, err)
		}
		var got []uint64
		for _, e := range es {
			if e.Kind != string(statement.KindRelease) {
				t.Errorf("Lookup(%.12s…) lists entry %d of kind %s", q, e.Index, e.Kind)
			}
			got = append(got, e.Index)
		}
		if w := want[strings.ToLower(q)]; !slices.Equal(got, w) {
			t.Errorf("Lookup(%.12s…) = %v, want %v", q, got, w)
		}
		// The HTTP API answers the same, by either parameter and case.
		lr, err := tl.client.Lookup(ctx, q)
		if err != nil || len(lr.Entries) != len(got) {
			t.Errorf("GET /lookup %.12s… = %+v, %v; want %d entries", q, lr, err, len(got))
		}
	}
	// The proof by measurement is of the newest release with it, once a
	// published checkpoint covers it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		p, _, err := tl.client.ProofByMeasurement(ctx, shared48)
		if err != nil && strings.Contains(err.Error(), "not yet covered") && time.Now().Before(deadline) {
			continue
		}
		if err != nil || p.Index != want[shared48][3] {
			t.Errorf("ProofByMeasurement(shared) = %v, %v; want index %d", p, err, want[shared48][3])
		}
		break
	}
}

// A lookup while the map is behind the entry index (its replay after a
// start) waits for it rather than answering from part of the log, and
// answers 503 when the map does not catch up in time.
func TestLookupWaitsForTheReplay(t *testing.T) {
	operator, _ := statement.GenerateSigner(statement.AlgEd25519)
	met := newMetrics()
	v := &vindexState{b: vindex.NewBuilder(), size: met.vindexSize, committedSize: met.vindexCommitted}
	var parsed []*statement.Parsed
	var bodies [][]byte
	m := strings.Repeat("ab", 48)
	for range 3 {
		body := releaseOf(t, operator, statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: m}}, statement.Digest{SHA256: strings.Repeat("cd", 32)})
		p, err := statement.ParseEntry(body)
		if err != nil {
			t.Fatal(err)
		}
		parsed, bodies = append(parsed, p), append(bodies, body)
	}
	d, _ := hex.DecodeString(m)
	v.mapEntry(0, bodies[0], parsed[0], false)
	go func() {
		time.Sleep(300 * time.Millisecond)
		v.mapEntry(1, bodies[1], parsed[1], false)
		v.mapEntry(2, bodies[2], parsed[2], false)
	}()
	got, err := v.releasesWith(t.Context(), d, 3)
	if err != nil || !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Errorf("releasesWith while replaying = %v, %v; want [0 1 2] once mapped", got, err)
	}
	// Below end only: the map is ahead of the entry index in steady state.
	if got, err := v.releasesWith(t.Context(), d, 2); err != nil || !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("releasesWith(end 2) = %v, %v; want [0 1]", got, err)
	}
	old := lookupWait
	lookupWait = 200 * time.Millisecond
	t.Cleanup(func() { lookupWait = old })
	if _, err := v.releasesWith(t.Context(), d, 4); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "3 of 4") {
		t.Errorf("releasesWith(end past the map) = %v; want ErrUnavailable naming 3 of 4", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := v.releasesWith(ctx, d, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("releasesWith(cancelled) = %v; want context.Canceled", err)
	}
}

// leaderLog is an indexLog whose lock is held or not as the test says,
// and whose appends are numbered from 1000.
type leaderLog struct {
	leader  bool
	next    uint64
	appends int
}

func (f *leaderLog) appendIndexCheckpoint(context.Context, []byte) (uint64, error) {
	f.appends++
	f.next++
	return 1000 + f.next, nil
}
func (f *leaderLog) indexLeader(context.Context) bool { return f.leader }
func (f *leaderLog) proveEntry(context.Context, uint64, []byte) (*tlogproof.Proof, error) {
	return nil, errors.New("not here")
}

// With several frontends a follower keeps a snapshot of the map at each
// recent size, to recover the index checkpoints another frontend
// appends; the frontend that holds the lock commits itself and keeps
// none, and keeps them again once it has lost the lock.
func TestLeaderKeepsNoRecentSnapshots(t *testing.T) {
	skey, _, err := note.GenerateKey(nil, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	met := newMetrics()
	fl := &leaderLog{}
	v := &vindexState{b: vindex.NewBuilder(), size: met.vindexSize, committedSize: met.vindexCommitted,
		keepRecent: true, enabled: true, log: fl, signer: signer, origin: testOrigin, logger: slog.New(slog.DiscardHandler)}
	operator, _ := statement.GenerateSigner(statement.AlgEd25519)
	n := uint64(0)
	mapN := func(k int) {
		for range k {
			body := releaseOf(t, operator, statement.PlatformSNP, statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", 7000+n)}}, statement.Digest{SHA256: fmt.Sprintf("%064x", 7000+n)})
			p, err := statement.ParseEntry(body)
			if err != nil {
				t.Fatal(err)
			}
			v.mapEntry(n, body, p, false)
			n++
		}
	}
	recent := func() int { v.mu.Lock(); defer v.mu.Unlock(); return len(v.recent) }
	mapN(3)
	if err := v.commit(t.Context()); err != nil || fl.appends != 0 {
		t.Fatalf("commit without the lock: %v, %d appends; want none", err, fl.appends)
	}
	mapN(2)
	if got := recent(); got != 5 {
		t.Errorf("not the leader: %d recent snapshots after 5 entries, want 5", got)
	}
	fl.leader = true
	if err := v.commit(t.Context()); err != nil || fl.appends != 1 {
		t.Fatalf("commit with the lock: %v, %d appends; want 1", err, fl.appends)
	}
	mapN(4)
	if got := recent(); got != 0 {
		t.Errorf("the leader keeps %d recent snapshots, want none", got)
	}
	fl.leader = false
	if err := v.commit(t.Context()); err != nil || fl.appends != 1 {
		t.Fatalf("commit after losing the lock: %v, %d appends; want still 1", err, fl.appends)
	}
	mapN(3)
	if got := recent(); got != 3 {
		t.Errorf("after losing the lock: %d recent snapshots after 3 entries, want 3", got)
	}
}
