package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// AuditSource is the auditor's state as the dashboard shows it; the
// auditor implements it. Every method reads a consistent snapshot of one
// kind of state and is safe for concurrent use; none is retried. The
// dashboard owns nothing: it renders what these return, on each request.
type AuditSource interface {
	// Alerts returns the n newest open alerts (or, with open false, past
	// ones), newest first, and how many there are in all.
	Alerts(ctx context.Context, open bool, n int) ([]AuditAlert, int, error)
	// Alert returns the alert with this ID, or nil if there is none.
	Alert(ctx context.Context, id int64) (*AuditAlert, error)
	// Releases returns the newest n logged releases the auditor verified,
	// with their reproducibility status, newest first, and how many
	// releases it holds in each status (all of them, not only the n).
	Releases(ctx context.Context, n int) ([]AuditRelease, map[string]int, error)
	// Deployments returns the latest observation of every watched
	// deployment (one per deployment, observed or not yet).
	Deployments(ctx context.Context) ([]AuditDeployment, error)
	// Logs returns how far each followed log is followed and the status
	// of its witnesses.
	Logs(ctx context.Context) ([]AuditLog, error)
}

// AuditAlert is one alert the auditor raised.
type AuditAlert struct {
	// ID identifies the alert; the dashboard's alert page is
	// PREFIX/alert/ID.
	ID int64 `json:"id"`
	// Kind is the alert kind, e.g. "unlogged-measurement",
	// "rebuild-mismatch", "revoked-release-served", "log-inconsistent".
	Kind string `json:"kind"`
	// Subject is what the alert is about, e.g. "deployment/chat" or
	// "log/ORIGIN/entry/7".
	Subject string    `json:"subject"`
	Time    time.Time `json:"time"`
	Summary string    `json:"summary"`
	// Measurement is the measurement the alert is about, when there is
	// one (lowercase hex); the dashboard links it to the explorer.
	Measurement string `json:"measurement,omitempty"`
	// Origin is the log the alert concerns, when there is one.
	Origin string `json:"origin,omitempty"`
	// Evidence is the alert's machine-readable evidence (JSON), shown
	// verbatim on the alert page.
	Evidence json.RawMessage `json:"evidence,omitempty"`
	// Open is false once the alert was resolved or acknowledged.
	Open bool `json:"open"`
	// Closed is when it was closed (RFC 3339) and CloseNote why, when
	// someone closed it.
	Closed    string `json:"closed,omitempty"`
	CloseNote string `json:"close_note,omitempty"`
}

// Reproducibility states of an AuditRelease.
const (
	ReproQueued     = "queued"     // waiting for a rebuild
	ReproRunning    = "running"    // being rebuilt
	ReproReproduced = "reproduced" // the rebuild gave the logged measurement
	ReproMismatch   = "mismatch"   // the rebuild gave another measurement
	ReproFailed     = "failed"     // the rebuild did not complete
	ReproOff        = "off"        // rebuilding is disabled
)

// AuditRelease is a logged release and whether the auditor reproduced it.
type AuditRelease struct {
	Origin      string `json:"origin"`
	Index       uint64 `json:"index"`
	Version     string `json:"version"`
	Platform    string `json:"platform"`
	Measurement string `json:"measurement"`
	Signer      string `json:"signer"`
	// Status is one of the Repro* constants.
	Status string `json:"status"`
	// Detail explains a mismatch or a failure.
	Detail string `json:"detail,omitempty"`
	// Rebuilt is the measurement the rebuild computed, when it ran.
	Rebuilt string `json:"rebuilt,omitempty"`
	// Reproduction is the log index of the auditor's reproduction
	// statement, once logged.
	Reproduction *uint64 `json:"reproduction,omitempty"`
	// Revocation is the log index of the release's first revocation.
	Revocation *uint64 `json:"revocation,omitempty"`
}

// AuditDeployment is the latest observation of a watched deployment.
type AuditDeployment struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Origin is the log its releases are expected in.
	Origin string `json:"origin,omitempty"`
	// Polled is when it was last polled (zero: not yet).
	Polled time.Time `json:"polled,omitzero"`
	// Measurement is what it served at the last poll.
	Measurement string `json:"measurement,omitempty"`
	// Verdict is "ok", "unreachable", or the kind of the alert raised.
	Verdict string `json:"verdict,omitempty"`
	// Releases are the log indexes of the releases with Measurement;
	// empty means the measurement served is not logged.
	Releases []uint64 `json:"releases,omitempty"`
	// GPUs are its GPUs as they reported themselves ("HOPPER driver
	// 550.144.03 VBIOS 96.00.5E.00.01"), one per GPU.
	GPUs []string `json:"gpus,omitempty"`
	// Error is, when the last poll failed, its category
	// ("unreachable", "http-status", "redirect-refused", …); never the
	// error's text, which may hold what the deployment answered.
	Error string `json:"error,omitempty"`
	// KeySet is the hex SHA-256 of the attested key set it serves (an
	// enclave agent's), KeySetNotAfter its expiry, and StapledAt when
	// the index checkpoint of its stapled proof was signed.
	KeySet         string    `json:"key_set,omitempty"`
	KeySetNotAfter time.Time `json:"key_set_not_after,omitzero"`
	StapledAt      time.Time `json:"stapled_at,omitzero"`
}

// AuditLog is how far a log is followed, and its witnesses.
type AuditLog struct {
	Origin string `json:"origin"`
	URL    string `json:"url"`
	// ExplorerURL is the log's explorer (e.g. URL + "/ui/"), used to link
	// releases, entries and measurements; "" for no links.
	ExplorerURL string `json:"explorer_url,omitempty"`
	// TreeSize is the size of the latest verified, consistent checkpoint.
	TreeSize uint64 `json:"tree_size"`
	// Verified is how many entries (all those below it) are verified.
	Verified uint64 `json:"verified"`
	// Updated is when TreeSize last advanced.
	Updated time.Time `json:"updated,omitzero"`
	// Quorum describes the witness quorum the auditor requires.
	Quorum    string         `json:"quorum,omitempty"`
	Witnesses []AuditWitness `json:"witnesses"`
}

// AuditWitness is what the auditor knows of one witness of a log.
type AuditWitness struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
	// CosignedSize is the largest tree size of the log this witness has
	// been seen to cosign (0: none yet), and CosignedAt its cosignature
	// timestamp.
	CosignedSize uint64    `json:"cosigned_size"`
	CosignedAt   time.Time `json:"cosigned_at,omitzero"`
	// Error is the last error polling the witness, if any.
	Error string `json:"error,omitempty"`
}

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
