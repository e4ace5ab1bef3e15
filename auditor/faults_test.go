package auditor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/auditor/internal/store"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
)

// Fault injection: each part of the auditor reaches the state database
// through an interface of its own (followStore, watchStore, rebuildStore,
// outboxStore; alertStore within the first three), so a test can hand it the real SQLite store wrapped to fail
// one call, and show that what the store guarantees is enough for the
// part to lose nothing.

var errInjected = errors.New("injected fault")

// faultStore is the real store with one method failing: the nth call of
// method (counting from 1), and the times-1 calls after it, return
// errInjected without reaching the database, as when the process dies or
// the disk fails at that moment. Every other call goes to the database.
type faultStore struct {
	*store.Store
	method string
	n      int
	times  int // 0 is 1

	mu    sync.Mutex
	calls int
}

// fail counts a call of method and says whether it is the one to fail.
func (f *faultStore) fail(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if method != f.method {
		return false
	}
	f.calls++
	return f.calls >= f.n && f.calls < f.n+max(f.times, 1)
}

func (f *faultStore) Apply(ctx context.Context, origin string, b *store.Batch, next int64) error {
	if f.fail("Apply") {
		return errInjected
	}
	return f.Store.Apply(ctx, origin, b, next)
}

func (f *faultStore) RaiseAlert(ctx context.Context, al *Alert, webhooks []string) (bool, error) {
	if f.fail("RaiseAlert") {
		return false, errInjected
	}
	return f.Store.RaiseAlert(ctx, al, webhooks)
}

func (f *faultStore) SetReproIndex(ctx context.Context, origin string, idx, reproIdx int64) error {
	if f.fail("SetReproIndex") {
		return errInjected
	}
	return f.Store.SetReproIndex(ctx, origin, idx, reproIdx)
}

func (f *faultStore) FinishRebuild(ctx context.Context, origin string, idx int64, state, detail, rebuilt string, repro []byte) error {
	if f.fail("FinishRebuild") {
		return errInjected
	}
	return f.Store.FinishRebuild(ctx, origin, idx, state, detail, rebuilt, repro)
}

func (f *faultStore) Delivered(ctx context.Context, alertID int64, url string) error {
	if f.fail("Delivered") {
		return errInjected
	}
	return f.Store.Delivered(ctx, alertID, url)
}

// restart closes the fixture's auditor and opens it again on the same
// database, as a new process would.
func (fx *auditorFixture) restart(t *testing.T) {
	t.Helper()
	if err := fx.aud.Close(); err != nil {
		t.Fatal(err)
	}
	fx.open(t)
}

// TestFollowerCommitFault: a follower whose batch fails to commit
// (followStore.Apply) skips no entry: the next pass — in the same process
// or after a restart — verifies again from the last committed batch, so
// every release is stored, the revocation in a later batch applies, the
// invalid entry is alerted once, and the index replay matches the log's
// own index checkpoint over all of them.
func TestFollowerCommitFault(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			fx := newAuditorFixture(t, "w")
			fx.aud.follower.batch = 4
			rel := fx.release(t, fx.op, "1.0.0")
			entries := [][]byte{rel} // 0
			for i := 1; i < 10; i++ {
				switch i {
				case 5:
					entries = append(entries, []byte("not a statement")) // batch 4-7
				case 9:
					entries = append(entries, fx.revocation(t, fx.op, 0, rel)) // batch 8-
				default:
					entries = append(entries, fx.release(t, fx.op, fmt.Sprintf("1.0.%d", i)))
				}
			}
			b := vindex.NewBuilder()
			for i, e := range entries {
				b.Add(uint64(i), e)
			}
			ic, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: fx.log.Origin, Size: uint64(len(entries)), Root: b.Root(), Time: time.Now()}, fx.log.Signer)
			if err != nil {
				t.Fatal(err)
			}
			fx.log.add(append(entries, ic)...)

			// The second batch (entries 4-7) fails to commit.
			fx.aud.follower.st = &faultStore{Store: fx.aud.st, method: "Apply", n: 2}
			err, alerts := fx.runOnce(t)
			if !errors.Is(err, errInjected) {
				t.Fatalf("RunOnce = %v, want the injected fault", err)
			}
			if size, verified := fx.treeSize(t); size != 11 || verified != 4 {
				t.Fatalf("after the fault: followed %d, verified %d; want 11, 4 (the first batch only)", size, verified)
			}
			if _, err := fx.aud.st.Release(t.Context(), fx.log.Origin, 4); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("release 4 of the failed batch: %v, want not found", err)
			}
			if restart {
				fx.restart(t)
				fx.aud.follower.batch = 4
			}
			err, more := fx.runOnce(t)
			if err != nil {
				t.Fatal(err)
			}
			alerts = append(alerts, more...)
			wantKinds(t, "both passes", alerts, AlertInvalidEntry)
			if len(alerts) == 1 && !strings.HasPrefix(alerts[0].Summary, "entry 5 ") {
				t.Errorf("invalid-entry alert %q, want it of entry 5", alerts[0].Summary)
			}
			if size, verified := fx.treeSize(t); size != 11 || verified != 11 {
				t.Errorf("after the next pass: followed %d, verified %d; want 11, 11", size, verified)
			}
			for i := range int64(9) {
				r, err := fx.aud.st.Release(t.Context(), fx.log.Origin, i)
				switch {
				case i == 5 && !errors.Is(err, store.ErrNotFound):
					t.Errorf("entry 5 (invalid) stored as a release: %v", err)
				case i != 5 && err != nil:
					t.Errorf("release %d: %v", i, err)
				case i == 0 && r.Revoked != "9":
					t.Errorf("release 0 revoked by %q, want by entry 9", r.Revoked)
				}
			}
			all, err := fx.aud.Alerts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 {
				t.Errorf("%d alerts in the database (%q), want the one invalid entry (no index-inconsistent: the replay skipped nothing)", len(all), kinds(all))
			}
		})
	}
}

// TestDeploymentWatchAlertFault: a deployment watch that fails to record
// an alert (alertStore.RaiseAlert, through watchStore) returns the error
// and raises the alert at the next poll, once; nothing is lost and nothing
// doubled.
func TestDeploymentWatchAlertFault(t *testing.T) {
	served := strings.Repeat("5e", 48)
	enc, err := fakeenclave.NewSNP(mustHex(t, served))
	if err != nil {
		t.Fatal(err)
	}
	fx := newAuditorFixtureDeploy(t, "w", enc)
	fx.log.add(fx.release(t, fx.op, "1.0.0")) // another measurement: served is unlogged
	fx.aud.watch.st = &faultStore{Store: fx.aud.st, method: "RaiseAlert", n: 1}
	err, alerts := fx.runOnce(t)
	if !errors.Is(err, errInjected) {
		t.Fatalf("RunOnce = %v, want the injected fault", err)
	}
	wantKinds(t, "the poll whose alert failed", alerts)
	err, alerts = fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "the next poll", alerts, AlertUnloggedMeasurement)
	err, alerts = fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "the poll after", alerts)
	if all, err := fx.aud.Alerts(t.Context()); err != nil || len(all) != 1 {
		t.Errorf("alerts in the database: %q (%v), want the one unlogged-measurement", kinds(all), err)
	}
}

// TestRebuilderFaults: the rebuild worker loses nothing when the store
// fails it (rebuildStore). A reproduction the log accepted but whose
// index was not recorded (SetReproIndex) is submitted again after a
// restart — the same bytes, which the log answers as a duplicate — and
// recorded; a rebuild whose outcome was not recorded (FinishRebuild) is
// queued again and rebuilt at the next pass, not left running until a
// restart (as it was before).
func TestRebuilderFaults(t *testing.T) {
	ctx := t.Context()
	t.Run("SetReproIndex", func(t *testing.T) {
		fx := newAuditorFixture(t, "w")
		rel := fx.release(t, fx.op, "1.0.0")
		fx.log.add(rel)
		if err, _ := fx.runOnce(t); err != nil {
			t.Fatal(err)
		}
		signer, err := statement.GenerateSigner(statement.AlgEd25519)
		if err != nil {
			t.Fatal(err)
		}
		p, err := statement.EncodeReproduction(statement.RefOf(0, rel), &statement.Reproduction{Outcome: statement.OutcomeMatch, Time: time.Now().UTC().Truncate(time.Second),
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("ab", 48), GuestPolicy: "0000000000030000"}}})
		if err != nil {
			t.Fatal(err)
		}
		repro, err := statement.Sign(p, signer)
		if err != nil {
			t.Fatal(err)
		}
		// As rebuildOne leaves it: the signed reproduction stored with
		// the outcome, before it is submitted.
		if err := fx.aud.st.FinishRebuild(ctx, fx.log.Origin, 0, store.RebuildReproduced, "", "", repro); err != nil {
			t.Fatal(err)
		}
		fx.aud.rebuilds.signer = signer
		fx.aud.rebuilds.st = &faultStore{Store: fx.aud.st, method: "SetReproIndex", n: 1}
		if err := fx.aud.rebuilds.submitReproductions(ctx); !errors.Is(err, errInjected) {
			t.Fatalf("submitReproductions = %v, want the injected fault", err)
		}
		copies := func() (n int) {
			for _, e := range fx.log.Entries() {
				if bytes.Equal(e, repro) {
					n++
				}
			}
			return n
		}
		if n := copies(); n != 1 {
			t.Fatalf("the log holds %d copies of the reproduction, want 1", n)
		}
		fx.restart(t)
		fx.aud.rebuilds.signer = signer
		if err := fx.aud.rebuilds.submitReproductions(ctx); err != nil {
			t.Fatal(err)
		}
		if n := copies(); n != 1 {
			t.Errorf("after the resubmission the log holds %d copies of the reproduction, want 1", n)
		}
		r, err := fx.aud.st.Release(ctx, fx.log.Origin, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.ReproIndex != 1 {
			t.Errorf("reproduction recorded at index %d, want 1", r.ReproIndex)
		}
		if pending, err := fx.aud.st.PendingReproductions(ctx); err != nil || len(pending) != 0 {
			t.Errorf("pending reproductions %v (%v), want none", pending, err)
		}
	})
	t.Run("FinishRebuild", func(t *testing.T) {
		fx := newAuditorFixture(t, "w")
		fx.log.add(fx.release(t, fx.op, "1.0.0"))
		if err, _ := fx.runOnce(t); err != nil {
			t.Fatal(err)
		}
		// A queued release whose stored entry does not parse: rebuildOne
		// finishes it as failed without running a build.
		if err := fx.aud.st.Apply(ctx, fx.log.Origin, &store.Batch{Releases: []store.Release{{Index: 7, Rebuild: store.RebuildQueued, Entry: []byte("garbled")}}}, 1); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			r, err := fx.aud.st.Release(ctx, fx.log.Origin, 7)
			if err != nil {
				t.Fatal(err)
			}
			return r.Rebuild
		}
		fx.aud.rebuilds.enabled = true
		fx.aud.rebuilds.st = &faultStore{Store: fx.aud.st, method: "FinishRebuild", n: 1}
		if err := fx.aud.rebuilds.rebuildQueued(ctx); !errors.Is(err, errInjected) {
			t.Fatalf("rebuildQueued = %v, want the injected fault", err)
		}
		if s := state(); s != store.RebuildQueued {
			t.Fatalf("after the fault the release is %q, want %q (queued again)", s, store.RebuildQueued)
		}
		if err := fx.aud.rebuilds.rebuildQueued(ctx); err != nil {
			t.Fatal(err)
		}
		if s := state(); s != store.RebuildFailed {
			t.Errorf("after the rebuild the release is %q, want %q", s, store.RebuildFailed)
		}

		// A lasting fault: the release is queued again maxRequeues times,
		// then left running (until a restart), not rebuilt on every pass.
		if err := fx.aud.st.Apply(ctx, fx.log.Origin, &store.Batch{Releases: []store.Release{{Index: 8, Rebuild: store.RebuildQueued, Entry: []byte("garbled too")}}}, 1); err != nil {
			t.Fatal(err)
		}
		fs := &faultStore{Store: fx.aud.st, method: "FinishRebuild", n: 1, times: 1000}
		fx.aud.rebuilds.st = fs
		for range maxRequeues + 3 {
			fx.aud.rebuilds.rebuildQueued(ctx)
		}
		r, err := fx.aud.st.Release(ctx, fx.log.Origin, 8)
		if err != nil {
			t.Fatal(err)
		}
		if fs.calls != maxRequeues+1 || r.Rebuild != store.RebuildRunning {
			t.Errorf("a lasting store fault: %d rebuilds, the release %q; want %d, then left %q", fs.calls, r.Rebuild, maxRequeues+1, store.RebuildRunning)
		}
	})
}

// TestFollowerMisbehaviourAlertFault: a split view that a peer shows once
// is not lost when its alert fails to record (alertStore.RaiseAlert,
// through followStore): the checkpoint stays unchecked, and the next pass
// compares it again and raises log-inconsistent, though the peer no
// longer serves it. (Before the follower marked a checkpoint checked
// only after its alert was recorded, the evidence was lost.)
func TestFollowerMisbehaviourAlertFault(t *testing.T) {
	fx := newAuditorFixture(t, "w")
	for i := range 4 {
		fx.log.add(fx.release(t, fx.op, fmt.Sprintf("1.0.%d", i)))
	}
	if err, alerts := fx.runOnce(t); err != nil || len(alerts) != 0 {
		t.Fatalf("honest log: %v, alerts %q", err, kinds(alerts))
	}
	g := fx.log.fork(1)
	g.add(fx.release(t, fx.op, "evil"))
	fx.log.mu.Lock()
	fx.log.peerCP = g.checkpoint(2, false)
	fx.log.mu.Unlock()
	// Both attempts of the pass fail: the peer's checkpoint compared as
	// it is read, and again among the unchecked ones.
	fx.aud.follower.st = &faultStore{Store: fx.aud.st, method: "RaiseAlert", n: 1, times: 2}
	_, alerts := fx.runOnce(t) // the peer's checkpoint is a warning, not an error of the pass
	wantKinds(t, "the pass whose alert failed", alerts)
	fx.log.mu.Lock()
	fx.log.peerCP = nil
	fx.log.mu.Unlock()
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "the next pass, the peer silent", alerts, AlertLogInconsistent)
	if un, err := fx.aud.st.UncheckedCheckpoints(t.Context(), fx.log.Origin, 4); err != nil || len(un) != 0 {
		t.Errorf("unchecked checkpoints after the alert: %d (%v), want none", len(un), err)
	}
}

// TestOutboxDeliveredFault: an alert the webhook accepted but whose
// delivery was not recorded (outboxStore.Delivered) is posted again — after
// a restart too — and then recorded: delivery is at least once, never
// lost, and ends.
func TestOutboxDeliveredFault(t *testing.T) {
	var mu sync.Mutex
	posts := map[string]int{} // by alert key
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var al Alert
		if err := json.NewDecoder(r.Body).Decode(&al); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts[al.Key]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	count := func() (n int, keys int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range posts {
			n += c
		}
		return n, len(posts)
	}
	fx := newAuditorFixture(t, "w")
	fx.config = append(fx.config, fmt.Sprintf("webhooks:\n  - {url: %q}\n", hook.URL)...)
	fx.restart(t)
	fx.log.add([]byte("not a statement"))
	fx.aud.outbox.st = &faultStore{Store: fx.aud.st, method: "Delivered", n: 1}
	err, alerts := fx.runOnce(t)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "first pass", alerts, AlertInvalidEntry)
	if n, keys := count(); n != 1 || keys != 1 {
		t.Fatalf("first pass: %d posts of %d alerts, want 1 of 1", n, keys)
	}
	fx.restart(t)
	if err, _ := fx.runOnce(t); err != nil {
		t.Fatal(err)
	}
	if n, keys := count(); n != 2 || keys != 1 {
		t.Errorf("after a restart: %d posts of %d alerts, want 2 of 1 (posted again)", n, keys)
	}
	all, err := fx.aud.Alerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(all[0].Webhooks) != 1 || all[0].Webhooks[0].Delivered == "" {
		t.Fatalf("alerts %+v, want one, delivered", all)
	}
	if err, _ := fx.runOnce(t); err != nil {
		t.Fatal(err)
	}
	if n, _ := count(); n != 2 {
		t.Errorf("after delivery was recorded: %d posts, want still 2", n)
	}
}
