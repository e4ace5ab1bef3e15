package auditor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/attestlog/attestlog/auditor/auditview"
	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/log/api"
)

// DashboardSource returns the auditor's state as the audit dashboard
// (web.NewDashboard) reads it.
func (a *Auditor) DashboardSource() auditview.Source { return dashboardSource{a} }

type dashboardSource struct{ a *Auditor }

// Alerts returns the n newest open (or past) alerts and how many there
// are.
func (d dashboardSource) Alerts(ctx context.Context, open bool, n int) ([]auditview.Alert, int, error) {
	als, total, err := d.a.st.AlertsPage(ctx, open, n)
	if err != nil {
		return nil, 0, err
	}
	out := make([]auditview.Alert, 0, len(als))
	for _, al := range als {
		out = append(out, d.a.webAlert(al))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, total, nil
}

// Alert returns one alert, or nil if there is none with that ID.
func (d dashboardSource) Alert(ctx context.Context, id int64) (*auditview.Alert, error) {
	al, err := d.a.st.AlertByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	wa := d.a.webAlert(*al)
	return &wa, nil
}

func (a *Auditor) webAlert(al Alert) auditview.Alert {
	wa := auditview.Alert{ID: al.ID, Kind: al.Kind, Subject: al.Subject, Time: al.Time,
		Summary: al.Summary, Evidence: al.Evidence, Open: al.Open, Closed: al.Closed, CloseNote: al.CloseNote}
	// The evidence of deployment and rebuild alerts names the
	// measurement and the log; the dashboard links them.
	var ev struct {
		Measurement string `json:"measurement"`
		Origin      string `json:"origin"`
		Log         string `json:"log"`
	}
	if json.Unmarshal(al.Evidence, &ev) == nil {
		wa.Measurement = ev.Measurement
		wa.Origin = ev.Origin
		if wa.Origin == "" {
			wa.Origin = ev.Log
		}
	}
	if wa.Origin == "" && len(a.logs) == 1 {
		wa.Origin = a.logs[0].cfg.Origin
	}
	return wa
}

// signerName names the operator whose key keyID signed a release of the
// log origin, as that log's policy calls it.
func (a *Auditor) signerName(origin, keyIDs string) string {
	keyID, _, _ := strings.Cut(keyIDs, ",") // the first operator that signed it
	if keyID == "" || keyID == "keyless" {
		return "keyless operator (Sigstore)"
	}
	for _, l := range a.logs {
		if l.cfg.Origin != origin {
			continue
		}
		for _, p := range l.pol.Operators {
			if p.Key.ID() == keyID {
				return p.Name
			}
		}
	}
	return "key " + keyID
}

// Releases returns every release with its reproducibility status.
func (d dashboardSource) Releases(ctx context.Context, n int) ([]auditview.Release, map[string]int, error) {
	a := d.a
	rs, err := a.st.RecentReleases(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	counts, err := a.st.ReleaseCounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]auditview.Release, 0, len(rs))
	for _, r := range rs {
		wr := auditview.Release{Origin: r.Origin, Index: uint64(r.Index), Version: r.Version, Platform: r.Platform,
			Measurement: r.Measurement, Signer: a.signerName(r.Origin, r.Signer), Status: r.Rebuild, Detail: r.Detail, Rebuilt: r.Rebuilt}
		if r.ReproIndex >= 0 {
			i := uint64(r.ReproIndex)
			wr.Reproduction = &i
		}
		if r.Revoked != "" {
			if i, err := strconv.ParseUint(r.Revoked, 10, 64); err == nil {
				wr.Revocation = &i
			}
		}
		out = append(out, wr)
	}
	// Newest first.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index > out[j].Index })
	return out, counts, nil
}

// Deployments returns the latest observation of each watched deployment.
func (d dashboardSource) Deployments(ctx context.Context) ([]auditview.Deployment, error) {
	a := d.a
	st, err := a.Status(ctx)
	if err != nil {
		return nil, err
	}
	origins := map[string]string{}
	for _, dep := range a.deps {
		origins[dep.cfg.Name] = dep.log.cfg.Origin
	}
	out := make([]auditview.Deployment, 0, len(st.Deployments))
	for _, ds := range st.Deployments {
		wd := auditview.Deployment{Name: ds.Name, URL: ds.URL, Origin: origins[ds.Name], Polled: ds.Polled,
			Measurement: ds.Measurement, Verdict: ds.Verdict, Error: ds.Error,
			KeySet: ds.KeySet, KeySetNotAfter: ds.KeySetNotAfter, StapledAt: ds.StapledAt}
		for _, r := range ds.Releases {
			wd.Releases = append(wd.Releases, uint64(r))
		}
		for _, g := range ds.GPUs {
			wd.GPUs = append(wd.GPUs, fmt.Sprintf("%s driver %s VBIOS %s", g.Arch, g.Driver, g.VBIOS))
		}
		out = append(out, wd)
	}
	return out, nil
}

// Logs returns how far each log is followed, and what its witnesses
// cosigned in the latest verified checkpoint.
func (d dashboardSource) Logs(ctx context.Context) ([]auditview.Log, error) {
	a := d.a
	st, err := a.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]auditview.Log, 0, len(a.logs))
	for i, l := range a.logs {
		wl := auditview.Log{Origin: l.cfg.Origin, URL: l.cfg.URL, ExplorerURL: strings.TrimSuffix(l.cfg.URL, "/") + api.ExplorerPath}
		if i < len(st.Logs) {
			wl.TreeSize, wl.Verified, wl.Updated = uint64(st.Logs[i].TreeSize), uint64(st.Logs[i].Verified), st.Logs[i].Updated
		}
		if l.pol.Quorum != nil {
			wl.Quorum = l.pol.Quorum.String()
		}
		var cosigned map[string]auditview.Witness
		if ls, err := a.st.Log(ctx, l.cfg.Origin); err == nil && len(ls.Checkpoint) > 0 {
			if cp, err := l.pol.InspectCheckpoint(ls.Checkpoint); err == nil {
				cosigned = map[string]auditview.Witness{}
				for name, t := range cp.Cosigned {
					cosigned[name] = auditview.Witness{CosignedSize: uint64(cp.N), CosignedAt: t}
				}
			}
		}
		for _, w := range l.pol.Witnesses {
			aw := cosigned[w.Name]
			aw.Name, aw.URL = w.Name, w.URL
			wl.Witnesses = append(wl.Witnesses, aw)
		}
		out = append(out, wl)
	}
	return out, nil
}
