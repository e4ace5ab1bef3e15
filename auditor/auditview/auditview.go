// Package auditview is the auditor's state as a dashboard reads it: the
// interface the auditor implements and the records it returns. It sits
// below both the auditor and the web pages, so neither service imports
// the other.
package auditview

import (
	"context"
	"encoding/json"
	"time"
)

// Source is the auditor's state as a dashboard shows it; the auditor
// implements it (Auditor.DashboardSource) and web's audit dashboard reads it. Every method reads a consistent snapshot of one
// kind of state and is safe for concurrent use; none is retried. The
// dashboard owns nothing: it renders what these return, on each request.
type Source interface {
	// Alerts returns the n newest open alerts (or, with open false, past
	// ones), newest first, and how many there are in all.
	Alerts(ctx context.Context, open bool, n int) ([]Alert, int, error)
	// Alert returns the alert with this ID, or nil if there is none.
	Alert(ctx context.Context, id int64) (*Alert, error)
	// Releases returns the newest n logged releases the auditor verified,
	// with their reproducibility status, newest first, and how many
	// releases it holds in each status (all of them, not only the n).
	Releases(ctx context.Context, n int) ([]Release, map[string]int, error)
	// Deployments returns the latest observation of every watched
	// deployment (one per deployment, observed or not yet).
	Deployments(ctx context.Context) ([]Deployment, error)
	// Logs returns how far each followed log is followed and the status
	// of its witnesses.
	Logs(ctx context.Context) ([]Log, error)
}

// Alert is one alert the auditor raised.
type Alert struct {
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

// Reproducibility states of an Release.
const (
	ReproQueued     = "queued"     // waiting for a rebuild
	ReproRunning    = "running"    // being rebuilt
	ReproReproduced = "reproduced" // the rebuild gave the logged measurement
	ReproMismatch   = "mismatch"   // the rebuild gave another measurement
	ReproFailed     = "failed"     // the rebuild did not complete
	ReproOff        = "off"        // rebuilding is disabled
)

// Release is a logged release and whether the auditor reproduced it.
type Release struct {
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

// Deployment is the latest observation of a watched deployment.
type Deployment struct {
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

// Log is how far a log is followed, and its witnesses.
type Log struct {
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
	Quorum    string    `json:"quorum,omitempty"`
	Witnesses []Witness `json:"witnesses"`
}

// Witness is what the auditor knows of one witness of a log.
type Witness struct {
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
