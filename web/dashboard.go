package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/attestlog/attestlog/auditor/auditview"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// The audit dashboard renders the auditor's state through
// auditview.Source; these are its names here.
type (
	AuditSource     = auditview.Source
	AuditAlert      = auditview.Alert
	AuditRelease    = auditview.Release
	AuditDeployment = auditview.Deployment
	AuditLog        = auditview.Log
	AuditWitness    = auditview.Witness
)

// Reproducibility states of an AuditRelease.
const (
	ReproQueued     = auditview.ReproQueued
	ReproRunning    = auditview.ReproRunning
	ReproReproduced = auditview.ReproReproduced
	ReproMismatch   = auditview.ReproMismatch
	ReproFailed     = auditview.ReproFailed
	ReproOff        = auditview.ReproOff
)

const appDashboard = "Audit dashboard"

// Dashboard is the audit dashboard. Pages, under the prefix (default
// [DefaultDashboardPrefix], "/audit/"):
//
//	GET /audit/            open alerts, deployments, releases, logs and witnesses
//	GET /audit/alert/ID    one alert with its evidence
//	GET /audit/alerts      every alert, open and past
//	GET /audit/static/…    embedded CSS and JavaScript
//
// Each page's JSON twin is the same URL with ?format=json.
type Dashboard struct {
	src AuditSource
	o   *options
	rd  *renderer
}

// NewDashboard returns the dashboard of src.
func NewDashboard(src AuditSource, opts ...Option) (*Dashboard, error) {
	o, err := buildOptions(DefaultDashboardPrefix, opts)
	if err != nil {
		return nil, err
	}
	rd, err := newRenderer(o, appDashboard, "dashboard", "alert", "alerts")
	if err != nil {
		return nil, err
	}
	return &Dashboard{src: src, o: o, rd: rd}, nil
}

// Prefix returns the path prefix the dashboard serves under.
func (d *Dashboard) Prefix() string { return d.o.prefix }

// Handler returns the dashboard's HTTP handler, to be mounted at Prefix.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	p := d.o.prefix
	mux.HandleFunc("GET "+p+"{$}", d.handleHome)
	mux.HandleFunc("GET "+p+"alerts", d.handleAlerts)
	mux.HandleFunc("GET "+p+"alert/{id}", d.handleAlert)
	mux.Handle("GET "+p+"static/", staticHandler(d.rd.static))
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		d.rd.fail(w, r, fmt.Errorf("%w: there is no page %s", errNotFound, short(r.URL.Path)), "Start from the dashboard's overview.", d.nav(""))
	})
	return mux
}

func (d *Dashboard) nav(current string) []navLink {
	n := []navLink{
		{Name: "Overview", URL: d.o.prefix, Current: current == "home"},
		{Name: "All alerts", URL: d.o.prefix + "alerts", Current: current == "alerts"},
	}
	if d.o.explorerURL != "" {
		n = append(n, navLink{Name: "Log explorer", URL: d.o.explorerURL})
	}
	return n
}

// DashboardView is the data of the dashboard's overview.
type DashboardView struct {
	// OpenAlerts are the newest MaxAlertsListed open alerts, newest
	// first, of OpenTotal; PastAlerts counts the others (listed on the
	// alerts page).
	OpenAlerts  []AuditAlert      `json:"open_alerts"`
	OpenTotal   int               `json:"open_total"`
	PastAlerts  int               `json:"past_alerts"`
	Deployments []AuditDeployment `json:"deployments"`
	// Releases are the newest MaxDashboardReleases releases.
	Releases []AuditRelease `json:"releases"`
	// ReleaseCounts counts every release by status; ReleaseTotal is
	// their sum.
	ReleaseCounts map[string]int `json:"release_counts"`
	ReleaseTotal  int            `json:"release_total"`
	Logs          []AuditLog     `json:"logs"`
	// Explorers maps log origins to their explorer URL.
	Explorers map[string]string `json:"-"`
	Now       time.Time         `json:"now"`
}

func (d *Dashboard) handleHome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := DashboardView{OpenAlerts: []AuditAlert{}, ReleaseCounts: map[string]int{}, Explorers: map[string]string{}, Now: d.o.now().UTC()}
	var err error
	v.OpenAlerts, v.OpenTotal, err = d.src.Alerts(ctx, true, MaxAlertsListed)
	if err == nil {
		_, v.PastAlerts, err = d.src.Alerts(ctx, false, 0)
	}
	if err == nil {
		v.Deployments, err = d.src.Deployments(ctx)
	}
	if err == nil {
		// The newest only: the page must not grow with the log.
		v.Releases, v.ReleaseCounts, err = d.src.Releases(ctx, MaxDashboardReleases)
	}
	if err == nil {
		v.Logs, err = d.src.Logs(ctx)
	}
	if err != nil {
		d.rd.fail(w, r, err, "", d.nav("home"))
		return
	}
	if v.OpenAlerts == nil {
		v.OpenAlerts = []AuditAlert{}
	}
	sortAlerts(v.OpenAlerts)
	if v.ReleaseCounts == nil {
		v.ReleaseCounts = map[string]int{}
	}
	for _, n := range v.ReleaseCounts {
		v.ReleaseTotal += n
	}
	for _, l := range v.Logs {
		v.Explorers[l.Origin] = l.ExplorerURL
	}
	if len(v.Logs) == 1 {
		v.Explorers[""] = v.Logs[0].ExplorerURL
	}
	if v.Deployments == nil {
		v.Deployments = []AuditDeployment{}
	}
	if v.Releases == nil {
		v.Releases = []AuditRelease{}
	}
	if v.Logs == nil {
		v.Logs = []AuditLog{}
	}
	d.rd.render(w, r, http.StatusOK, "dashboard", "Audit dashboard", v, d.nav("home"), "")
}

// MaxAlertsListed is how many open (and past) alerts a page lists.
const MaxAlertsListed = 100

// MaxDashboardReleases is how many releases the overview lists.
const MaxDashboardReleases = 50

func sortAlerts(a []AuditAlert) {
	sort.SliceStable(a, func(i, j int) bool { return a[i].Time.After(a[j].Time) })
}

// AlertsView is the data of the alerts page.
type AlertsView struct {
	// Open and Past are the newest MaxAlertsListed of each, of OpenTotal
	// and PastTotal.
	Open      []AuditAlert `json:"open"`
	Past      []AuditAlert `json:"past"`
	OpenTotal int          `json:"open_total"`
	PastTotal int          `json:"past_total"`
	// Explorers maps log origins to their explorer URL.
	Explorers map[string]string `json:"-"`
}

func (d *Dashboard) handleAlerts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := AlertsView{Explorers: d.explorers(ctx)}
	var err error
	v.Open, v.OpenTotal, err = d.src.Alerts(ctx, true, MaxAlertsListed)
	if err == nil {
		v.Past, v.PastTotal, err = d.src.Alerts(ctx, false, MaxAlertsListed)
	}
	if err != nil {
		d.rd.fail(w, r, err, "", d.nav("alerts"))
		return
	}
	if v.Open == nil {
		v.Open = []AuditAlert{}
	}
	if v.Past == nil {
		v.Past = []AuditAlert{}
	}
	sortAlerts(v.Open)
	sortAlerts(v.Past)
	d.rd.render(w, r, http.StatusOK, "alerts", "Alerts", v, d.nav("alerts"), "")
}

// explorers maps log origins to their explorer URL; an alert without an
// origin uses the only log's.
func (d *Dashboard) explorers(ctx context.Context) map[string]string {
	m := map[string]string{}
	logs, err := d.src.Logs(ctx)
	if err != nil {
		return m
	}
	for _, l := range logs {
		m[l.Origin] = l.ExplorerURL
	}
	if len(logs) == 1 {
		m[""] = logs[0].ExplorerURL
	}
	return m
}

// AlertView is the data of an alert page.
type AlertView struct {
	Alert AuditAlert `json:"alert"`
	// EvidenceText is the evidence, indented (HTML page only).
	EvidenceText string `json:"-"`
	// ExplorerURL is the explorer of the alert's log, if known.
	ExplorerURL string `json:"-"`
}

func (d *Dashboard) handleAlert(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		d.rd.fail(w, r, fmt.Errorf("%w: %s is not an alert id", errBadRequest, quote(s)), "Alert pages are "+d.o.prefix+"alert/ID; the overview links every open alert.", d.nav(""))
		return
	}
	a, err := d.src.Alert(r.Context(), id)
	if err != nil {
		d.rd.fail(w, r, err, "", d.nav(""))
		return
	}
	if a != nil {
		v := AlertView{Alert: *a}
		if len(a.Evidence) > 0 {
			var b bytes.Buffer
			if json.Indent(&b, a.Evidence, "", "  ") == nil {
				v.EvidenceText = b.String()
			} else {
				v.EvidenceText = string(a.Evidence)
			}
		}
		v.ExplorerURL = d.explorers(r.Context())[a.Origin]
		d.rd.render(w, r, http.StatusOK, "alert", fmt.Sprintf("Alert %d: %s", a.ID, a.Kind), v, d.nav(""), "")
		return
	}
	d.rd.fail(w, r, fmt.Errorf("%w: no alert %d", errNotFound, id), "The overview lists open alerts; All alerts lists past ones too.", d.nav(""))
}
