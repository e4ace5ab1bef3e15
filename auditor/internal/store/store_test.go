package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "auditor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAlertsDedupPageAndClose: an alert is raised once per key (with one
// outbox row per webhook), pages list the newest first with totals, one
// alert reads by ID, a closed alert stays closed and is not raised again.
func TestAlertsDedupPageAndClose(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ids []int64
	for i := range 150 {
		a := &Alert{Key: fmt.Sprintf("k%d", i), Kind: "rebuild-failed", Subject: fmt.Sprintf("log/x/entry/%d", i),
			Time: t0.Add(time.Duration(i) * time.Second), Summary: "s", Evidence: json.RawMessage(`{"i":1}`)}
		isNew, err := s.RaiseAlert(ctx, a, []string{"https://hooks.example/a", "https://hooks.example/b"})
		if err != nil || !isNew || a.ID == 0 {
			t.Fatalf("RaiseAlert %d = %v, %v (id %d)", i, isNew, err, a.ID)
		}
		ids = append(ids, a.ID)
	}
	// The same key again: not new, nothing added.
	if isNew, err := s.RaiseAlert(ctx, &Alert{Key: "k3", Kind: "rebuild-failed", Time: t0}, nil); err != nil || isNew {
		t.Errorf("re-raising k3 = %v, %v; want not new", isNew, err)
	}
	page, total, err := s.AlertsPage(ctx, true, 100)
	if err != nil || total != 150 || len(page) != 100 || page[0].ID != ids[149] || len(page[0].Webhooks) != 2 {
		t.Fatalf("AlertsPage(open, 100) = %d of %d, first %+v, %v", len(page), total, page[0], err)
	}
	if err := s.CloseAlert(ctx, ids[0], "known"); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseAlert(ctx, ids[0], "again"); !errors.Is(err, ErrAlreadyClosed) {
		t.Errorf("closing twice = %v, want ErrAlreadyClosed", err)
	}
	if _, total, _ := s.AlertsPage(ctx, true, 1); total != 149 {
		t.Errorf("open alerts after closing one = %d, want 149", total)
	}
	past, total, err := s.AlertsPage(ctx, false, 10)
	if err != nil || total != 1 || len(past) != 1 || past[0].CloseNote != "known" || past[0].Open {
		t.Errorf("past alerts = %+v (%d), %v", past, total, err)
	}
	if isNew, _ := s.RaiseAlert(ctx, &Alert{Key: "k0", Kind: "rebuild-failed", Time: t0}, nil); isNew {
		t.Error("a closed alert was raised again")
	}
	a, err := s.AlertByID(ctx, ids[7])
	if err != nil || a.Key != "k7" || string(a.Evidence) != `{"i":1}` {
		t.Errorf("AlertByID = %+v, %v", a, err)
	}
	if _, err := s.AlertByID(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Errorf("AlertByID(missing) = %v, want ErrNotFound", err)
	}
	all, err := s.Alerts(ctx)
	if err != nil || len(all) != 150 || all[0].ID != ids[0] || len(all[149].Webhooks) != 2 {
		t.Errorf("Alerts = %d, %v", len(all), err)
	}
	recent, err := s.RecentAlerts(ctx, 5)
	if err != nil || len(recent) != 5 || recent[0].ID != ids[149] {
		t.Errorf("RecentAlerts = %d, %v", len(recent), err)
	}
}

// TestOpenAddsColumns: a database made before alerts could be closed and
// before releases recorded an authority's co-signature opens, gains both,
// and keeps its rows.
func TestOpenAddsColumns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.NewReplacer(
		"\tauthority    TEXT NOT NULL DEFAULT '', -- an authority co-signed it (a reinstatement)\n", "",
		"\tclosed   TEXT NOT NULL DEFAULT '',  -- when it was closed (RFC 3339)\n", "",
		"\tclose_note TEXT NOT NULL DEFAULT '' -- why, as the closer said\n", "",
		"\topen     INTEGER NOT NULL DEFAULT 1,\n", "\topen     INTEGER NOT NULL DEFAULT 1\n",
	).Replace(schema)
	if old == schema {
		t.Fatal("the old schema is the current one: the test no longer tests an upgrade")
	}
	if _, err := db.ExecContext(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO releases (origin, idx, entry_sha256, platform, version, measurement, signer, rebuild) VALUES ('o', 3, 'h', 'sev-snp', '1', 'm', 's', 'off')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Release(ctx, "o", 3); err != nil || r.Authority != "" || r.Measurement != "m" {
		t.Fatalf("the old release after the upgrade: %+v, %v", r, err)
	}
	if err := s.Apply(ctx, "o", &Batch{Releases: []Release{{Origin: "o", Index: 4, Measurement: "m", Rebuild: RebuildOff, Authority: "sec+1234"}}}, 5); err != nil {
		t.Fatal(err)
	}
	rels, err := s.ReleasesByMeasurement(ctx, "o", "m")
	if err != nil || len(rels) != 2 || rels[1].Authority != "sec+1234" {
		t.Fatalf("releases after the upgrade: %+v, %v", rels, err)
	}
	if _, err := s.RaiseAlert(ctx, &Alert{Key: "k", Kind: "x", Subject: "s", Time: time.Now(), Summary: "s"}, nil); err != nil {
		t.Fatalf("raising an alert after the upgrade: %v", err)
	}
}
