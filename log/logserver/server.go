// Package logserver is attestlog's log: the personality on Tessera that
// admits signed statements (release, reproduction, revocation), appends
// them, keeps the measurement index, and serves the c2sp.org/tlog-tiles
// read API, proofs (c2sp.org/tlog-proof) and lookups.
//
// Checkpoints are published only once the witness quorum of the log's
// witness policy has cosigned them (Tessera's witnessing), so every proof
// the log hands out is under a witnessed checkpoint.
package logserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/mysql"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/internal/index"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"

	_ "github.com/go-sql-driver/mysql"
)

// Log is a running log.
type Log struct {
	indexMu  sync.Mutex // one indexing pass at a time (follower, catch-up, reindex)
	cfg      *Config
	logger   *slog.Logger
	add      tessera.AddFn
	reader   tessera.LogReader
	shutdown func(context.Context) error
	idx      *index.DB
	db       *sql.DB // MySQL, when used
	verifier note.Verifier
	vkey     string

	mu     sync.RWMutex
	policy *policy.Policy

	// pending maps the payload hash of statements added but not yet
	// indexed to their index future, so that a resubmission before the
	// indexer catches up still returns the original index.
	pendingMu sync.Mutex
	pending   map[[32]byte]*pendingAdd
	indexGen  uint64 // advanced under pendingMu each time entries leave pending
	// slots bounds the appends in progress (Pushback of them): what
	// pushback bounds. Entries appended but not yet indexed stay in
	// pending, bounded by backlogFactor times as much.
	slots *fairSlots
	// wake tells the follower that an append finished.
	wake chan struct{}
	// parsed maps the SHA-256 of entries in pending to their parse.
	parsed map[[32]byte]admitted
	// appended maps the index of each entry this process appended and
	// the follower has not taken yet to its SHA-256, a key of parsed
	// (under pendingMu): the follower takes a run of them from memory
	// instead of reading their entry bundle back from storage (entries
	// another frontend appended it still reads).
	appended map[uint64][32]byte

	indexed chan struct{} // closed and replaced whenever the index advances
	stop    context.CancelFunc
	done    chan struct{}

	metrics *metrics
	vidx    *vindexState
	// witnesses are those of the witness policy, for the cosignature
	// metrics; published is when the follower last saw the published
	// checkpoint change (unix nanoseconds), and its size.
	witnesses     []*policy.Witness
	publishedAt   atomic.Int64
	publishedSize atomic.Uint64

	// claims are duplicate detection across frontends, and lock is the
	// named lock whose holder signs index checkpoints: both on the
	// shared database (nil on POSIX).
	claims *claims
	lock   *indexLock
	// fromMemory counts the entries the follower took from memory (what
	// this process appended) instead of reading them back.
	fromMemory atomic.Uint64
	// appends are the appends running on their own (an admission may
	// give up waiting for one, ErrSlow): Close waits for them.
	appends sync.WaitGroup

	tesseraCancel context.CancelFunc
	closeOnce     sync.Once
	closeErr      error

	// now is this frontend's clock (time.Now): admission reads it for
	// certificate validity. Claims never do: the database's clock times
	// them, one clock for every frontend.
	now func() time.Time
	// claimStale is how long, with MySQL storage, a claim on a statement
	// may go unrefreshed before another frontend takes it over
	// (defaultClaimStale).
	claimStale time.Duration
	// appendHook, when set, runs in the append path between the claim
	// and Tessera's Add (a test's fault injection: a slow or failing
	// append); its error fails the append.
	appendHook func(ctx context.Context, h [32]byte) error
	// admitWait bounds Admit (admitWait; tests shorten it).
	admitWait time.Duration
}

// option sets what Open takes beyond Config: the seams tests inject
// through (a clock, a claim lifetime, fault injection).
type option func(*Log)

// pushbackWait is how long a statement waits for an append slot before
// POST /add answers 503.
const pushbackWait = time.Second

// backlogFactor bounds the entries appended but not yet indexed, as a
// multiple of the pushback limit (the indexer is far behind beyond it).
const backlogFactor = 8

// startupWitnessWait bounds how long Open waits for the witness quorum to
// cosign the checkpoint Tessera publishes when it starts.
const startupWitnessWait = 2 * time.Minute

// Open starts the log described by cfg. cfg must have passed Validate.
// The log signs and witnesses checkpoints in the background until Close.
func Open(ctx context.Context, cfg *Config, logger *slog.Logger, with ...option) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("origin", cfg.Origin)
	signer, vkey, err := keyfile.LoadNoteSigner(cfg.Key)
	if err != nil {
		return nil, err
	}
	if signer.Name() != cfg.Origin {
		return nil, fmt.Errorf("log key %s is named %q but the origin is %q; they must be equal", cfg.Key, signer.Name(), cfg.Origin)
	}
	pol, err := policy.Load(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	wpText, err := os.ReadFile(cfg.WitnessPolicy)
	if err != nil {
		return nil, fmt.Errorf("witness_policy: %w", err)
	}
	// Parse with our parser first for line-numbered errors, then with
	// Tessera's, which drives the witnessing.
	wpol, err := policy.Parse(wpText)
	if err != nil {
		return nil, fmt.Errorf("witness_policy %s: %w", cfg.WitnessPolicy, err)
	}
	wg, err := tessera.NewWitnessGroupFromPolicy(wpText)
	if err != nil {
		return nil, fmt.Errorf("witness_policy %s: %w", cfg.WitnessPolicy, err)
	}

	b := vindex.NewBuilder()
	if cfg.IndexMap == "file" {
		if b, err = vindex.NewBuilderFile(filepath.Dir(cfg.Index)); err != nil {
			return nil, fmt.Errorf("index_map file: %w", err)
		}
	}

	// Tessera runs on a context of its own, cancelled by Close after a
	// clean shutdown: cancelling it first would leave shutdown waiting for
	// an integration that can no longer happen.
	ctx, l0cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Log{
		tesseraCancel: l0cancel,
		cfg:           cfg, logger: logger, policy: pol,
		pending:  map[[32]byte]*pendingAdd{},
		parsed:   map[[32]byte]admitted{},
		appended: map[uint64][32]byte{},
		indexed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		slots:    newFairSlots(int(cfg.Pushback)),
		done:     make(chan struct{}),
		metrics:  newMetrics(),
		now:      time.Now, claimStale: defaultClaimStale, admitWait: admitWait,
	}
	for _, o := range with {
		o(l)
	}
	opened := false
	defer func() {
		if !opened {
			l0cancel()
		}
	}()
	l.vkey = vkey
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		return nil, err
	}
	l.vidx = &vindexState{b: b, signer: signer, log: l, verifier: l.verifier, logger: logger, origin: cfg.Origin,
		enabled: *cfg.IndexCheckpoints, interval: cfg.CheckpointInterval, size: l.metrics.vindexSize, committedSize: l.metrics.vindexCommitted}
	l.witnesses = wpol.Witnesses

	if cfg.Storage.Legacy() {
		logger.Warn("storage: Tessera's MySQL driver is legacy: Tessera removed it from its main branch (commit bd4c40ed, March 2026) and maintains S3-compatible storage with a MySQL-compatible database instead (storage: {s3: …, mysql: …}); move this log with 'attestlog log migrate' (docs/storage.md)")
	}
	hc := &http.Client{Timeout: cfg.WitnessTimeout}
	newDriver := func() (tessera.Driver, error) {
		switch {
		case cfg.Storage.POSIX != nil:
			if err := os.MkdirAll(cfg.Storage.POSIX.Dir, 0o755); err != nil {
				return nil, err
			}
			return posix.New(ctx, posix.Config{Path: cfg.Storage.POSIX.Dir, HTTPClient: hc})
		case cfg.Storage.S3 != nil:
			if l.db == nil {
				db, err := openClaimsDB(ctx, cfg.Storage.MySQL.DSN)
				if err != nil {
					return nil, err
				}
				l.db = db
			}
			return newS3Driver(ctx, cfg, hc)
		case cfg.Storage.MySQL != nil:
			if l.db == nil {
				db, err := openMySQL(ctx, cfg.Storage.MySQL.DSN)
				if err != nil {
					return nil, err
				}
				l.db = db
			}
			return mysql.New(ctx, l.db)
		}
		return nil, errors.New("no storage configured")
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithCheckpointRepublishInterval(cfg.CheckpointRepublishInterval).
		WithPushback(cfg.Pushback).
		WithWitnesses(wg, &tessera.WitnessOptions{Timeout: cfg.WitnessTimeout})
	// Tessera publishes a first checkpoint when it starts, and that needs
	// the witness quorum: a witness starting at the same time, or down for
	// a moment, must not stop the log from starting. Retry for a while,
	// saying so.
	var (
		app      *tessera.Appender
		shutdown func(context.Context) error
		reader   tessera.LogReader
	)
	deadline := time.Now().Add(startupWitnessWait)
	for attempt := 1; ; attempt++ {
		driver, err := newDriver()
		if err != nil {
			l.closeDB()
			return nil, fmt.Errorf("storage: %w", err)
		}
		app, shutdown, reader, err = tessera.NewAppender(ctx, driver, opts)
		if err == nil {
			break
		}
		// Tessera's witness.ErrPolicyNotSatisfied is internal: match its
		// text. Frontends starting together on an empty database race to
		// initialise the tree, and MySQL answers all but one with a
		// deadlock (1213) or lock wait timeout (1205), which Tessera
		// wraps as text: those are retried too.
		msg := err.Error()
		retry := strings.Contains(msg, "witness policy was not satisfied") || strings.Contains(msg, "Error 1213") || strings.Contains(msg, "Error 1205")
		if !retry || time.Now().After(deadline) {
			l.closeDB()
			return nil, fmt.Errorf("starting Tessera: %w", err)
		}
		logger.Warn("retrying to start Tessera: waiting for the witness quorum to cosign the log's checkpoint, or for another frontend to initialise the database", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			l.closeDB()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	l.add, l.reader, l.shutdown = app.Add, reader, shutdown
	l.vidx.keepRecent = l.db != nil
	if l.db != nil {
		l.claims = &claims{db: l.db, stale: l.claimStale, tree: l, logger: logger}
		l.lock = newIndexLock(l.db, cfg.Origin, logger)
	}

	l.idx, err = index.Open(cfg.Index)
	if err != nil {
		shutdown(ctx)
		l.closeDB()
		return nil, err
	}
	// Catch the index up with what is already integrated before admitting
	// anything, so that duplicate detection sees every earlier entry.
	next, nerr := l.idx.Next(ctx)
	size, serr := l.reader.IntegratedSize(ctx)
	behind := nerr == nil && serr == nil && size > next
	if behind {
		l.logger.Info("indexing entries before serving", "from", next, "to", size)
	}
	if err := l.indexOnce(ctx); err != nil {
		l.Close(ctx)
		return nil, fmt.Errorf("catching up the index: %w", err)
	}
	if behind {
		l.logger.Info("index caught up", "entries", size)
	}
	fctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go l.follow(fctx)
	l.registerGauges()
	opened = true
	return l, nil
}

func (l *Log) closeDB() {
	if l.db != nil {
		l.db.Close()
	}
}

// Close stops the log, flushing what Tessera has accepted. Later calls
// return the first call's result.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { l.closeErr = l.close(ctx) })
	return l.closeErr
}

func (l *Log) close(ctx context.Context) error {
	// Appends an admission gave up waiting for finish first (or ctx
	// ends), so that they record their claims and Tessera integrates
	// what it sequenced before it shuts down.
	appended := make(chan struct{})
	go func() { l.appends.Wait(); close(appended) }()
	select {
	case <-appended:
	case <-ctx.Done():
	}
	if l.stop != nil {
		l.stop()
		<-l.done
	}
	var errs []error
	if l.shutdown != nil {
		errs = append(errs, l.shutdown(ctx))
	}
	l.tesseraCancel()
	if l.lock != nil {
		l.lock.drop()
	}
	if l.idx != nil {
		errs = append(errs, l.idx.Close())
	}
	l.closeDB()
	return errors.Join(errs...)
}

// Verifier returns the log's checkpoint verifier.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// VKey returns the log's note verifier key.
func (l *Log) VKey() string { return l.vkey }

// Reader returns the Tessera reader of the log's storage.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Policy returns the policy admission uses now.
func (l *Log) Policy() *policy.Policy {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.policy
}

// SetPolicy replaces the admission policy (for a reload).
func (l *Log) SetPolicy(p *policy.Policy) {
	l.mu.Lock()
	l.policy = p
	l.mu.Unlock()
}

type metrics struct {
	reg      *prometheus.Registry
	adds     *prometheus.CounterVec
	addTime  prometheus.Histogram
	requests *prometheus.CounterVec
	indexed  prometheus.Gauge
	// unreadable counts entries the indexer could not parse and
	// recorded as unreadable (each is also logged with its index).
	unreadable prometheus.Counter
	pushback   prometheus.Counter
	// cosigned counts published checkpoints by witness and whether they
	// carry its valid cosignature.
	cosigned *prometheus.CounterVec
	// storageErrors counts failures of the storage (the bucket, the
	// database or the disk) by operation: append (POST /add answered
	// 503), follow (the indexer could not read the tree),
	// index_checkpoint (appending an index checkpoint failed).
	storageErrors *prometheus.CounterVec
	// vindexSize is how many entries the verifiable index has mapped;
	// vindexCommitted the size its newest index checkpoint covers.
	vindexSize, vindexCommitted prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.adds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attestlog_log_add_total", Help: "Statements submitted to POST /add, by result.",
	}, []string{"kind", "result"})
	m.addTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "attestlog_log_add_seconds", Help: "Time to admit and sequence one statement.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attestlog_log_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	m.indexed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "attestlog_log_indexed_entries", Help: "Entries in the measurement index.",
	})
	m.unreadable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "attestlog_log_unreadable_entries_total", Help: "Entries the indexer could not parse and recorded as unreadable (listed by GET /unreadable).",
	})
	m.pushback = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "attestlog_log_pushback_total", Help: "POST /add answered 503 because too many entries await integration.",
	})
	m.cosigned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attestlog_log_checkpoint_cosignatures_total", Help: "Published checkpoints by witness of the witness policy, and whether each carried that witness's valid cosignature (result=present|missing).",
	}, []string{"witness", "result"})
	m.storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attestlog_log_storage_errors_total", Help: "Failures of the storage (bucket, database or disk), by operation: append, follow, index_checkpoint.",
	}, []string{"op"})
	for _, op := range []string{"append", "follow", "index_checkpoint"} {
		m.storageErrors.WithLabelValues(op) // a series from the start, for rate()
	}
	m.vindexSize = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "attestlog_log_vindex_mapped_entries", Help: "Entries the verifiable index has mapped.",
	})
	m.vindexCommitted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "attestlog_log_vindex_committed_entries", Help: "Entries the newest index checkpoint covers.",
	})
	m.reg.MustRegister(m.adds, m.addTime, m.requests, m.indexed, m.unreadable, m.pushback, m.cosigned, m.storageErrors, m.vindexSize, m.vindexCommitted,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// registerGauges adds the gauges read at scrape time: sizes, lags and the
// age of the published checkpoint.
func (l *Log) registerGauges() {
	read := func(f func(ctx context.Context) (uint64, error)) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := f(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}
	integrated := func() float64 { return read(l.reader.IntegratedSize) }
	indexed := func() float64 { return read(l.idx.Next) }
	published := func() float64 {
		if l.publishedAt.Load() == 0 {
			return math.NaN()
		}
		return float64(l.publishedSize.Load())
	}
	gauge := func(name, help string, f func() float64) {
		l.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("attestlog_log_sequenced_entries", "Entries sequenced (accepted, maybe not yet integrated).", func() float64 { return read(l.reader.NextIndex) })
	gauge("attestlog_log_integrated_size", "Size of the integrated tree.", integrated)
	gauge("attestlog_log_tree_size", "Size of the published (witnessed) checkpoint.", published)
	gauge("attestlog_log_checkpoint_age_seconds", "Seconds since the published checkpoint last changed.", func() float64 {
		at := l.publishedAt.Load()
		if at == 0 {
			return math.NaN()
		}
		return time.Since(time.Unix(0, at)).Seconds()
	})
	gauge("attestlog_log_quorum_lag_entries", "Integrated entries no published (witnessed) checkpoint covers yet.", func() float64 { return integrated() - published() })
	gauge("attestlog_log_index_lag_entries", "Integrated entries the measurement index does not cover yet.", func() float64 { return integrated() - indexed() })
}

// countCosignatures records, for a newly published checkpoint, which
// witnesses of the policy cosigned it.
func (l *Log) countCosignatures(cp []byte) {
	vs := []note.Verifier{l.verifier}
	for _, w := range l.witnesses {
		vs = append(vs, w.Verifier)
	}
	n, err := note.Open(cp, note.VerifierList(vs...))
	if err != nil {
		return
	}
	for _, w := range l.witnesses {
		result := "missing"
		for _, s := range n.Sigs {
			if s.Name == w.Verifier.Name() && s.Hash == w.Verifier.KeyHash() {
				result = "present"
			}
		}
		l.metrics.cosigned.WithLabelValues(w.Name, result).Inc()
	}
}

// waitIndexed blocks until the index covers idx or ctx ends.
func (l *Log) waitIndexed(ctx context.Context, idx uint64) error {
	for {
		l.pendingMu.Lock()
		ch := l.indexed
		l.pendingMu.Unlock()
		next, err := l.idx.Next(ctx)
		if err != nil {
			return err
		}
		if next > idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
