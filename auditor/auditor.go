// Package auditor is attestlog's independent auditor: it follows logs
// (checkpoint signatures, witness quorum, consistency with every
// checkpoint seen before — from the log, its witnesses and peer auditors),
// verifies every entry, rebuilds releases and recomputes their launch
// measurements, signs reproduction statements back into the log, watches
// deployments' attestation evidence, and raises typed, deduplicated,
// persisted alerts delivered to slog, webhooks and Prometheus.
//
// State is in SQLite (modernc.org/sqlite): a restart resumes where the
// previous process stopped and never re-raises an alert already raised.
package auditor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/auditor/internal/rebuild"
	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/internal/egress"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/gpu"
)

// Alert kinds, as the issue that defines the auditor lists them.
const (
	AlertUnloggedMeasurement = "unlogged-measurement"
	AlertRebuildMismatch     = "rebuild-mismatch"
	AlertRebuildFailed       = "rebuild-failed"
	// AlertRebuildUnsandboxed: a release was not rebuilt because no
	// sandbox works here (rebuild.sandbox: auto); nothing was signed.
	AlertRebuildUnsandboxed   = "rebuild-unsandboxed"
	AlertRevokedReleaseServed = "revoked-release-served"
	AlertLogInconsistent      = "log-inconsistent"
	AlertQuorumMissing        = "quorum-missing"
	AlertInvalidEntry         = "invalid-entry"
	AlertEvidenceInvalid      = "evidence-invalid"
	// AlertIndexInconsistent: an index checkpoint the log signed commits
	// a root other than the one its entries map to.
	AlertIndexInconsistent = "index-inconsistent"
	// AlertGPUUnlogged: a deployment's GPUs run a driver, VBIOS or
	// measurements that no release with its measurement names.
	AlertGPUUnlogged = "gpu-unlogged"
	// AlertGPUMode: a deployment's GPUs are not in the mode its policy
	// requires (e.g. confidential computing off, or protected PCIe where
	// CC is required), as their signed evidence states.
	AlertGPUMode = "gpu-mode"
	// AlertDeploymentUnreachable: a deployment gave the auditor no
	// evidence in unreachable_after polls in a row (no answer, a status
	// other than 200, a refused address or redirect, too large, too
	// slow); the category is in its evidence.
	AlertDeploymentUnreachable = "deployment-unreachable"
)

// AlertKinds lists every alert kind.
var AlertKinds = []string{AlertUnloggedMeasurement, AlertRebuildMismatch, AlertRebuildFailed, AlertRebuildUnsandboxed, AlertRevokedReleaseServed,
	AlertLogInconsistent, AlertQuorumMissing, AlertInvalidEntry, AlertEvidenceInvalid, AlertIndexInconsistent, AlertGPUUnlogged, AlertGPUMode, AlertDeploymentUnreachable}

// Alert is a raised alert: its kind, subject (what it is about, e.g.
// "deployment/chat" or "log/ORIGIN/entry/7"), time, a one-line summary and
// machine-readable evidence. Key identifies it for deduplication.
type Alert = store.Alert

// ProvenanceCheck verifies a release's build provenance (the Sigstore
// bundle in Release.Provenance) against the auditor's policy. Without
// one, policy/provenance.Check runs under the log's policy (its
// sigstore-root and builder lines).
type ProvenanceCheck func(ctx context.Context, pol *policy.Policy, p *statement.Parsed) error

// Option configures Open.
type Option func(*Auditor)

// WithProvenanceCheck sets the provenance check applied to every release
// that carries provenance.
func WithProvenanceCheck(f ProvenanceCheck) Option { return func(a *Auditor) { a.provenance = f } }

// WithHTTPClient sets the HTTP client for logs, witnesses, peers and
// webhooks. Deployments are polled with clients of their own
// (internal/egress: public addresses only unless allow_private, no
// redirect off the deployment's origin).
func WithHTTPClient(hc *http.Client) Option { return func(a *Auditor) { a.hc = hc } }

// Auditor audits logs and deployments. Open one, then call Run or RunOnce.
type Auditor struct {
	cfg        *Config
	logger     *slog.Logger
	st         *store.Store
	logs       []*followedLog
	deps       []*deployment
	builder    *rebuild.Builder
	signer     *statement.Signer
	hc         *http.Client
	provenance ProvenanceCheck
	metrics    *metrics

	// The parts, each reaching the store through an interface of its
	// own: the follower (follow.go, index.go), the deployment watch
	// (deploy.go), the rebuild worker (rebuild.go) and the webhook
	// delivery worker (http.go).
	follower *follower
	watch    *deploymentWatch
	rebuilds *rebuilder
	outbox   *outbox

	wake chan struct{}
}

type followedLog struct {
	cfg        LogConfig
	pol        *policy.Policy
	verifier   note.Verifier
	fetcher    *torchwood.TileFetcher
	tiles      *torchwood.Client
	client     *client.Client
	originHash string
	logger     *slog.Logger
	mu         sync.Mutex
	// index is the auditor's own replay of the log's verifiable index
	// over the entries it verified (nil until the first pass).
	index *indexReplay
	// gpuSpecs are the gpus sections of the releases replayed into index,
	// by entry index (what a deployment's GPUs must run).
	gpuSpecs map[uint64]*statement.GPUs
	// revocations are the envelopes of the revocations replayed into
	// index, by entry index (who signed one decides whom it revokes).
	revocations map[uint64]*statement.Envelope
	// vtpmSelections are the PCR selections (vindex.VTPMSelection) the
	// releases of vTPM-measured platforms replayed into index name, by
	// platform: a VM's identity under each is computed from its quoted
	// PCRs (vindex.VTPMIdentity).
	vtpmSelections map[string]map[[3]byte]bool
}

type deployment struct {
	cfg      DeploymentConfig
	log      *followedLog
	verifier *attest.Verifier
	gpus     *gpu.Verifier
	logger   *slog.Logger
	// hc fetches its evidence: public addresses only (unless
	// allow_private), no redirect off its origin; dialer makes the
	// attested channel's connections (https) under the same rule.
	hc     *http.Client
	dialer *net.Dialer

	mu   sync.Mutex
	last DeploymentStatus
}

// Open validates cfg (refusing to start on any problem), opens the state
// database and prepares every log and deployment. It does no network I/O.
func Open(ctx context.Context, cfg *Config, logger *slog.Logger, opts ...Option) (*Auditor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Auditor{cfg: cfg, logger: logger, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(a)
	}
	if a.hc == nil {
		a.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Key != "" {
		s, err := keyfile.LoadSigner(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("auditor key: %w", err)
		}
		a.signer = s
	}
	for _, lc := range cfg.Logs {
		l, err := a.openLog(lc)
		if err != nil {
			return nil, err
		}
		a.logs = append(a.logs, l)
	}
	for _, dc := range cfg.Deployments {
		eo := []egress.Option{egress.WithTimeout(dc.Timeout)}
		if dc.AllowPrivate {
			eo = append(eo, egress.AllowPrivate())
		}
		d := &deployment{cfg: dc, logger: logger.With("deployment", dc.Name), hc: egress.NewClient(eo...), dialer: egress.NewDialer(eo...)}
		for _, l := range a.logs {
			if l.cfg.Origin == dc.Log {
				d.log = l
			}
		}
		pol, polPath := d.log.pol, d.log.cfg.Policy
		if dc.Policy != "" {
			p, err := policy.Load(dc.Policy)
			if err != nil {
				return nil, fmt.Errorf("deployment %s: %w", dc.Name, err)
			}
			pol, polPath = p, dc.Policy
		}
		v, err := attest.New(pol.Attestation, attest.WithBaseDir(filepath.Dir(polPath)))
		if err != nil {
			return nil, fmt.Errorf("deployment %s: attestation policy %s: %w", dc.Name, polPath, err)
		}
		d.verifier = v
		d.gpus = gpu.NewVerifier(pol.Attestation.GPU, v.GPURoots()...)
		a.deps = append(a.deps, d)
	}
	// The state directory exists, with its mode, before the builder checks
	// that no build can reach it.
	if err := os.MkdirAll(filepath.Dir(cfg.DB), 0o700); err != nil {
		return nil, err
	}
	rc := cfg.Rebuild
	a.builder = &rebuild.Builder{Sandbox: rc.Sandbox, Bwrap: rc.Bwrap, Git: rc.Git, Timeout: rc.Timeout, MaxLog: int64(rc.MaxLog),
		MaxOutput: int64(rc.MaxOutput), WorkDir: rc.WorkDir, RepoSchemes: rc.RepoSchemes, Path: rc.Path, Keep: rc.Keep,
		Limits: rebuild.Limits{Memory: int64(rc.Limits.Memory), Processes: rc.Limits.Processes, Disk: int64(rc.Limits.Disk), CPUTime: rc.Limits.CPUTime}}
	if rc.User != "" {
		u, err := ParseUser(rc.User)
		if err != nil {
			return nil, err
		}
		a.builder.User = &u
	}
	a.builder.Private, a.builder.Guarded = cfg.buildReach()
	if *rc.Enabled {
		sandboxed, err := a.builder.CheckSandbox(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case sandboxed:
			logger.Info("rebuild sandbox", "sandbox", a.builder.Enforcement())
		case rc.Sandbox == rebuild.SandboxOff:
			logger.Warn("rebuilds run WITHOUT a sandbox (rebuild.sandbox: off): recipes run on the host, as another user than the auditor's; reproductions are marked unsandboxed", "limits", a.builder.Enforcement())
		default:
			logger.Warn("no working rebuild sandbox: releases are not rebuilt (alert rebuild-unsandboxed) until one works", "why", a.builder.Enforcement())
		}
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	a.st = st
	if err := st.RequeueRunning(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.RetryAllNow(ctx); err != nil {
		st.Close()
		return nil, err
	}
	a.metrics = newMetrics(a)
	urls := make([]string, 0, len(cfg.Webhooks))
	hooks := map[string]WebhookConfig{}
	for _, w := range cfg.Webhooks {
		urls = append(urls, w.URL)
		hooks[w.URL] = w
	}
	al := &alerter{webhooks: urls, logger: logger, raised: a.metrics.alerts}
	f := &follower{st: st, alerts: al, metrics: a.metrics, hc: a.hc, provenance: a.provenance, rebuild: *rc.Enabled, poke: a.poke,
		evidenceDir: cfg.EvidenceDir, batch: entryBatch}
	if cfg.IndexMap == "file" {
		f.indexDir = filepath.Dir(cfg.DB)
	}
	a.follower = f
	a.watch = &deploymentWatch{st: st, alerts: al, metrics: a.metrics}
	a.outbox = &outbox{st: st, hc: a.hc, webhooks: hooks, metrics: a.metrics, logger: logger}
	a.rebuilds = &rebuilder{st: st, alerts: al, metrics: a.metrics, logger: logger, enabled: *rc.Enabled, builder: a.builder, signer: a.signer, logs: a.logs}
	return a, nil
}

func (a *Auditor) openLog(lc LogConfig) (*followedLog, error) {
	pol, err := policy.Load(lc.Policy)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", lc.Origin, err)
	}
	if lc.WitnessPolicy != "" {
		wp, err := policy.Load(lc.WitnessPolicy)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", lc.Origin, err)
		}
		pol.Witnesses, pol.Quorum = wp.Witnesses, wp.Quorum
	}
	if pol.Quorum == nil {
		return nil, fmt.Errorf("log %s: the witness policy has no quorum line (add 'quorum NAME', or 'quorum none' to follow unwitnessed checkpoints)", lc.Origin)
	}
	v, err := note.NewVerifier(lc.VKey)
	if err != nil {
		return nil, err
	}
	if pl := pol.Log(lc.Origin); pl != nil {
		if pl.VKey != lc.VKey {
			return nil, fmt.Errorf("log %s: the policy %s names a different key for it", lc.Origin, lc.Policy)
		}
	} else {
		pol.Logs = append(pol.Logs, &policy.Log{Origin: lc.Origin, VKey: lc.VKey, Verifier: v, URL: lc.URL})
	}
	f, err := torchwood.NewTileFetcher(lc.URL, torchwood.WithHTTPClient(a.hc), torchwood.WithUserAgent("attestlog-auditor"))
	if err != nil {
		return nil, err
	}
	tc, err := torchwood.NewClient(f)
	if err != nil {
		return nil, err
	}
	c, err := client.New(lc.URL, a.hc)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(lc.Origin))
	return &followedLog{cfg: lc, pol: pol, verifier: v, fetcher: f, tiles: tc, client: c,
		originHash: hex.EncodeToString(h[:]), logger: a.logger.With("origin", lc.Origin)}, nil
}

// Close closes the state database.
func (a *Auditor) Close() error {
	if a.builder != nil {
		os.Remove(a.builder.WorkDir) // only when empty: no build left behind
	}
	return a.st.Close()
}

// RebuildSandbox says how releases are rebuilt here: in bubblewrap (as
// whom, limits by what), without a sandbox, or not at all, and why.
func (a *Auditor) RebuildSandbox() string {
	if !*a.cfg.Rebuild.Enabled {
		return "off (rebuild.enabled: false)"
	}
	return a.builder.Enforcement()
}

// RunOnce makes one pass: follows every log to its current checkpoint and
// verifies the new entries, rebuilds every queued release, submits
// reproductions, polls every deployment once and attempts every due
// webhook delivery once. The error joins the failures to reach logs and
// deployments; alerts are not errors (see OpenAlerts).
func (a *Auditor) RunOnce(ctx context.Context) error {
	var errs []error
	for _, l := range a.logs {
		if err := a.follower.follow(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("log %s: %w", l.cfg.Origin, err))
		}
	}
	if err := a.rebuilds.rebuildQueued(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.rebuilds.submitReproductions(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, d := range a.deps {
		if err := a.watch.pollDeployment(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("deployment %s: %w", d.cfg.Name, err))
		}
	}
	a.outbox.deliver(ctx)
	a.metrics.refresh(ctx)
	return errors.Join(errs...)
}

// Run audits until ctx ends: logs every poll_interval, rebuilds as
// releases arrive, each deployment at its interval, webhooks as alerts
// are raised and retries fall due.
func (a *Auditor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				f()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	every(a.cfg.PollInterval, func() {
		for _, l := range a.logs {
			if err := a.follower.follow(ctx, l); err != nil && ctx.Err() == nil {
				l.logger.Warn("following log", "err", err)
			}
		}
		if err := a.rebuilds.submitReproductions(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("submitting reproductions", "err", err)
		}
		a.metrics.refresh(ctx)
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if err := a.rebuilds.rebuildQueued(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("rebuilding", "err", err)
			}
			if err := a.rebuilds.submitReproductions(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("submitting reproductions", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			case <-time.After(a.cfg.PollInterval):
			}
		}
	}()
	for _, d := range a.deps {
		every(d.cfg.Interval, func() {
			if err := a.watch.pollDeployment(ctx, d); err != nil && ctx.Err() == nil {
				d.logger.Warn("polling deployment", "err", err)
			}
		})
	}
	every(time.Second, func() { a.outbox.deliver(ctx) })
	wg.Wait()
	return nil
}

// OpenAlerts returns the number of open alerts.
func (a *Auditor) OpenAlerts(ctx context.Context) (int64, error) {
	c, err := a.st.OpenAlertCounts(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range c {
		n += v
	}
	return n, nil
}

// Alerts returns every alert raised, oldest first.
func (a *Auditor) Alerts(ctx context.Context) ([]Alert, error) { return a.st.Alerts(ctx) }

// ListAlerts reads the alerts of the auditor database at path (for
// `attestlog alerts`); it may run while an auditor uses the database.
func ListAlerts(ctx context.Context, path string) ([]Alert, error) {
	var al []Alert
	err := withStore(ctx, path, func(st *store.Store) (err error) {
		al, err = st.Alerts(ctx)
		return err
	})
	return al, err
}

// CloseAlert closes open alert id of the auditor database at path with a
// note saying why (for `attestlog alerts --close`); it may run while an
// auditor uses the database. The same condition is not raised again.
func CloseAlert(ctx context.Context, path string, id int64, note string) error {
	return withStore(ctx, path, func(st *store.Store) error { return st.CloseAlert(ctx, id, note) })
}

// ErrAlreadyClosed is returned by CloseAlert for an alert closed before;
// ErrNoSuchAlert for an id with no alert.
var (
	ErrAlreadyClosed = store.ErrAlreadyClosed
	ErrNoSuchAlert   = store.ErrNotFound
)

// withStore runs f on the existing auditor database at path.
func withStore(ctx context.Context, path string, f func(*store.Store) error) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}

func (a *Auditor) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
