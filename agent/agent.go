// Package agent is the enclave agent (`attestlog enclave`): the program
// an operator runs inside a confidential VM, in front of the service it
// protects (for instance an OpenAI-compatible model server on the VM's
// loopback).
//
// At start and at each rotation it makes a key set in memory — a TLS key
// and HPKE keys (MLKEM768-X25519 and X25519), never written anywhere —
// asks the GPUs for evidence answering a nonce derived from those keys,
// and asks the hardware for ONE report whose REPORT_DATA commits to the
// key set (evidence.KeySetReportData). It staples the log's proofs to
// that report, refreshed every few seconds, and serves:
//
//   - TLS with the key set's key, so that a client that verified the
//     attestation document pins it on every connection;
//   - the attestation document at evidence.DocumentPath: the report for
//     the key set of the connection it is asked over, with fresh staples
//     (no hardware report per request: clients, auditors and `verify`
//     all read this one);
//   - nonce challenges at evidence.Path?nonce=HEX: one hardware report
//     each, within a budget (429 or 503 with Retry-After past it), so no
//     client load exhausts the hardware;
//   - Oblivious HTTP (RFC 9458) at GatewayPath: GET gives the key set's
//     HPKE key configurations (application/ohttp-keys, exactly those
//     REPORT_DATA commits to), POST takes encapsulated requests (from a
//     relay), sends them to the upstream and encapsulates the answers,
//     chunked as they stream;
//   - everything else reverse-proxied to the upstream, streamed (server-
//     sent events and chunked bodies pass through unbuffered), 502 with
//     a clear message when the upstream does not answer.
//
// Key sets live Lifetime (default 24 h) and are rotated at half-life: the
// previous key set stays served to the connections made with it until it
// expires, so clients re-verify and re-pin at their next connection
// instead of failing.
package agent

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestlog/attestlog/agent/reportsrc"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/evidence/stapler"
)

// Defaults.
const (
	DefaultLifetime       = 24 * time.Hour
	DefaultStapleInterval = stapler.DefaultStapleInterval
	// MaxHandshakeDocument is the largest attestation document the
	// agent sends inside the TLS handshake (evidence.DocumentALPN): a
	// TLS 1.3 CertificateEntry's extensions are at most 2^16-1 bytes in
	// all (RFC 8446 §4.4.2), the status_request extension's own header
	// included. About four GPUs' evidence fits; a larger document is
	// read at evidence.DocumentPath.
	MaxHandshakeDocument = 60 << 10
	// DefaultMaxConnections bounds the client connections an agent
	// holds open (see Options.MaxConnections).
	DefaultMaxConnections = 10000
)

// Options configure New.
type Options struct {
	// Source gives the CPU's hardware evidence (required). New wraps it
	// in reportsrc.Serialize.
	Source reportsrc.Source
	// GPUs gives the GPUs' evidence (nil: the enclave has no GPU).
	GPUs reportsrc.GPUSource
	// Staple returns the log's proofs for the release the enclave runs
	// (the inclusion proof, the index proof of its identity and the
	// revocations it lists), given the first report made (to read the
	// measurement from). Nil: nothing is stapled, and clients whose
	// policy requires proofs refuse the enclave.
	Staple func(ctx context.Context, first *evidence.Bundle) (stapler.Staple, error)
	// StapleInterval is how often the staple is refreshed (default
	// DefaultStapleInterval): a revocation reaches the document within
	// one interval of the log's index covering it.
	StapleInterval time.Duration
	// Lifetime is how long a key set is valid (default DefaultLifetime,
	// at most keyset.MaxLifetime); it is rotated at half of it.
	Lifetime time.Duration
	// Challenges is the budget of nonce challenges.
	Challenges ChallengeBudget
	// MaxConnections is how many client connections the agent holds
	// open at most (default DefaultMaxConnections; each costs memory,
	// measured by `attestlog bench channel`). A connection beyond it is
	// answered 503 with Retry-After and closed.
	MaxConnections int
	// Logger gets the agent's log (rotations, staple failures).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Agent is a running enclave agent. Its methods are safe for concurrent
// use.
type Agent struct {
	o       Options
	src     reportsrc.Source
	logger  *slog.Logger
	st      *stapler.Stapler
	limiter *limiter

	mu      sync.RWMutex
	current *generation
	prev    *generation
	// unexpired are all generations whose key set has not expired: a
	// connection made before several rotations is still answered with
	// its own key set's document and keys, so the OHTTP gateway opens
	// requests to any of them.
	unexpired []*generation

	reports atomic.Int64 // hardware reports asked for, ever
	conns   atomic.Int64 // client connections open
	gens    atomic.Int64 // generations made, ever (numbers the HPKE key identifiers)
	metrics *metrics
}

// generation is one key set with what was made for it.
type generation struct {
	ks      *keyset.KeySet
	raw     []byte
	digest  [32]byte
	cert    tls.Certificate
	gateway *ohttp.Gateway   // the HPKE private keys, for Oblivious HTTP; never leave memory
	bundle  *evidence.Bundle // the report, no staple
	created time.Time

	doc atomic.Pointer[cachedDoc]
}

type cachedDoc struct {
	fetched time.Time
	body    []byte
}

// New makes the first key set (one hardware report) and returns the
// agent. It fails, and the agent does not start, when the source gives
// no report.
func New(ctx context.Context, o Options) (*Agent, error) {
	if o.Source == nil {
		return nil, reportsrc.ErrNoSource
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Lifetime < 2*time.Second || o.Lifetime > keyset.MaxLifetime {
		return nil, fmt.Errorf("key lifetime %v: want 2s to %v", o.Lifetime, keyset.MaxLifetime)
	}
	if o.StapleInterval <= 0 {
		o.StapleInterval = DefaultStapleInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := o.Challenges.check(); err != nil {
		return nil, err
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxConnections < 0 {
		return nil, fmt.Errorf("max connections %d: want at least 1", o.MaxConnections)
	}
	a := &Agent{o: o, src: reportsrc.Serialize(o.Source, reportsrc.Retry{}), logger: o.Logger, metrics: newMetrics()}
	a.limiter = newLimiter(o.Challenges, o.Now)
	// Key identifiers start anywhere, so that a restarted agent's first
	// key set rarely reuses the identifiers clients hold.
	var r [1]byte
	rand.Read(r[:])
	a.gens.Store(int64(r[0] % 128))
	if err := a.Rotate(ctx); err != nil {
		return nil, fmt.Errorf("the first key set: %w", err)
	}
	if o.Staple != nil {
		first := a.generations()[0].bundle
		a.st = &stapler.Stapler{Interval: o.StapleInterval, Logger: o.Logger, Fetch: func(ctx context.Context) (stapler.Staple, error) {
			return o.Staple(ctx, first)
		}}
		a.metrics.extra = a.st.Collectors()
	}
	return a, nil
}

// Source is the name of the report source in use.
func (a *Agent) Source() string { return a.src.Name() }

// RefreshStaple fetches the staple once (Run does so every
// StapleInterval).
func (a *Agent) RefreshStaple(ctx context.Context) error {
	if a.st == nil {
		return nil
	}
	return a.st.Refresh(ctx)
}

// Run rotates key sets at half their lifetime and refreshes the staple
// until ctx ends. A failed rotation is retried with backoff (1 s, doubling
// to a minute) while the current key set lasts; once it expired the agent
// serves no attestation document until a rotation succeeds.
func (a *Agent) Run(ctx context.Context) {
	if a.st != nil {
		go a.st.Run(ctx)
	}
	backoff := time.Second
	for {
		g := a.generations()[0]
		wait := g.ks.NotBefore.Add(a.o.Lifetime / 2).Sub(a.o.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		if err := a.Rotate(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.logger.Error("rotating the key set; the current one stays in use until it expires", "err", err, "expires", g.ks.NotAfter, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
	}
}

// Rotate makes a new key set now and serves it to new connections; the
// previous one stays served to the connections made with it until it
// expires.
func (a *Agent) Rotate(ctx context.Context) error {
	g, err := a.makeGeneration(ctx)
	if err != nil {
		a.metrics.rotations.WithLabelValues("error").Inc()
		return err
	}
	a.mu.Lock()
	a.prev, a.current = a.current, g
	now := a.o.Now()
	keep := []*generation{g}
	for _, old := range a.unexpired {
		if now.Before(old.ks.NotAfter) {
			keep = append(keep, old)
		}
	}
	a.unexpired = keep
	a.mu.Unlock()
	a.metrics.rotations.WithLabelValues("ok").Inc()
	a.logger.Info("new key set", "key_set", hex.EncodeToString(g.digest[:8]), "not_after", g.ks.NotAfter, "tls_spki_sha256", hex.EncodeToString(g.ks.TLSSPKIHash[:]), "hpke_keys", len(g.ks.HPKE), "gpus", len(g.bundle.GPUs))
	return nil
}

// makeGeneration makes the keys, asks the GPUs and then the CPU for
// evidence committing to them.
func (a *Agent) makeGeneration(ctx context.Context) (*generation, error) {
	now := a.o.Now().Truncate(time.Second)
	g := &generation{created: now}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ks := &keyset.KeySet{NotBefore: now, NotAfter: now.Add(a.o.Lifetime)}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.Unix()),
		Subject:      pkix.Name{CommonName: "attestlog enclave (attested key set)"},
		NotBefore:    ks.NotBefore, NotAfter: ks.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	g.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: leaf}
	ks.TLSSPKIHash = keyset.SPKIHash(leaf)
	// HPKE: the post-quantum hybrid first, X25519 for clients without it.
	// Key identifiers differ from the previous generation's, so that
	// the gateway finds the key of a request made just before a
	// rotation.
	base := uint8(2 * (a.gens.Add(1) % 128))
	var keys []ohttp.Key
	for i, kem := range []hpke.KEM{hpke.MLKEM768X25519(), hpke.DHKEM(ecdh.X25519())} {
		sk, err := kem.GenerateKey()
		if err != nil {
			return nil, err
		}
		c := keyset.KeyConfig{ID: base + uint8(i), KEM: kem.ID(), PublicKey: sk.PublicKey().Bytes(),
			Symmetric: []keyset.Symmetric{{KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}, {KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADChaCha20Poly1305}}}
		ks.HPKE = append(ks.HPKE, c)
		keys = append(keys, ohttp.Key{Config: c, Private: sk})
	}
	if g.gateway, err = ohttp.NewGateway(keys...); err != nil {
		return nil, err
	}
	var gpus []evidence.GPU
	if a.o.GPUs != nil {
		seed, err := ks.GPUNonceSeed()
		if err != nil {
			return nil, err
		}
		if gpus, err = a.o.GPUs.GPUEvidence(ctx, seed[:]); err != nil {
			return nil, fmt.Errorf("GPU evidence (%s): %w", a.o.GPUs.Name(), err)
		}
		if len(gpus) > 0 {
			d := evidence.GPUDigest(gpus)
			ks.GPUDigest = d[:]
		}
	}
	if g.raw, err = ks.Marshal(); err != nil {
		return nil, err
	}
	g.ks, g.digest = ks, keyset.Digest(g.raw)
	b, err := a.report(ctx, g, nil)
	if err != nil {
		return nil, err
	}
	b.GPUs = gpus
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("the report source's evidence with the key set: %w", err)
	}
	g.bundle = b
	return g, nil
}

// report asks the hardware for evidence binding g's key set (and nonce,
// for a challenge). The GPUs are g's.
func (a *Agent) report(ctx context.Context, g *generation, nonce []byte) (*evidence.Bundle, error) {
	rd, err := evidence.KeySetReportData(g.raw, nonce)
	if err != nil {
		return nil, err
	}
	a.reports.Add(1)
	a.metrics.reports.Inc()
	b, err := a.src.Report(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("hardware report (%s): %w", a.src.Name(), err)
	}
	// The hardware's evidence and what verifies it offline: a vTPM's
	// quote and HCL report, a CC event log, Intel collateral, a firmware
	// endorsement (as the report source gives them).
	out := &evidence.Bundle{Format: evidence.FormatKeySet, Platform: b.Platform, Report: b.Report, CertTable: b.CertTable, VCEK: b.VCEK, Quote: b.Quote,
		VTPM: b.VTPM, EventLog: b.EventLog, TDXCollateral: b.TDXCollateral, FirmwareEndorsement: b.FirmwareEndorsement, KeySet: g.raw}
	if g.bundle != nil {
		out.GPUs = g.bundle.GPUs
	}
	return out, nil
}

// generations returns the current generation and, while it lasts, the
// previous one.
func (a *Agent) generations() []*generation {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := []*generation{a.current}
	if a.prev != nil && a.o.Now().Before(a.prev.ks.NotAfter) {
		out = append(out, a.prev)
	}
	return out
}

// Reports is how many hardware reports the agent has asked for.
func (a *Agent) Reports() int64 { return a.reports.Load() }

// Status is what the agent serves now.
type Status struct {
	KeySet    string    `json:"key_set"` // hex SHA-256 of the key set's encoding
	NotAfter  time.Time `json:"not_after"`
	Previous  string    `json:"previous_key_set,omitempty"`
	Reports   int64     `json:"hardware_reports"`
	StapledAt time.Time `json:"stapled_at,omitzero"`
	Source    string    `json:"source"`
}

// Status returns what the agent serves now.
func (a *Agent) Status() Status {
	gs := a.generations()
	s := Status{KeySet: hex.EncodeToString(gs[0].digest[:]), NotAfter: gs[0].ks.NotAfter, Reports: a.Reports(), Source: a.src.Name()}
	if len(gs) > 1 {
		s.Previous = hex.EncodeToString(gs[1].digest[:])
	}
	if a.st != nil {
		_, s.StapledAt = a.st.Current()
	}
	return s
}

// document returns the attestation document of g with the current
// staple, marshalled once per staple.
func (a *Agent) document(g *generation) ([]byte, error) {
	var st stapler.Staple
	var fetched time.Time
	if a.st != nil {
		st, fetched = a.st.Current()
	}
	if d := g.doc.Load(); d != nil && d.fetched.Equal(fetched) {
		return d.body, nil
	}
	b := *g.bundle
	b.Proof, b.IndexProof, b.Related = st.Proof, st.IndexProof, st.Related
	body, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	g.doc.Store(&cachedDoc{fetched: fetched, body: body})
	return body, nil
}

// TLSConfig is the agent's server configuration: TLS 1.3, the current
// key set's certificate for each new connection.
func (a *Agent) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			g := a.generations()[0]
			if !a.o.Now().Before(g.ks.NotAfter) {
				return nil, errors.New("the key set expired and no rotation succeeded")
			}
			if h, ok := hello.Context().Value(connKey{}).(*connGen); ok {
				h.g.Store(g)
			}
			// A channel client asks for the document in the handshake
			// (evidence.DocumentALPN): one round trip fewer.
			if slices.Contains(hello.SupportedProtos, evidence.DocumentALPN) {
				if doc, err := a.document(g); err == nil && len(doc) <= MaxHandshakeDocument {
					c := g.cert
					c.OCSPStaple = doc
					return &c, nil
				}
			}
			return &g.cert, nil
		},
	}
}

// connGen records which generation a connection's handshake used, and
// whether the connection is one too many.
type connGen struct {
	g    atomic.Pointer[generation]
	over bool
}

type connKey struct{}

// generationOf is the generation of the connection r arrived on: the one
// its TLS handshake used, or the current one over plain HTTP.
func (a *Agent) generationOf(ctx context.Context) (*generation, bool) {
	if h, ok := ctx.Value(connKey{}).(*connGen); ok {
		if g := h.g.Load(); g != nil {
			return g, a.o.Now().Before(g.ks.NotAfter)
		}
	}
	g := a.generations()[0]
	return g, a.o.Now().Before(g.ks.NotAfter)
}

// metrics are the agent's Prometheus metrics.
type metrics struct {
	reports    prometheus.Counter
	rotations  *prometheus.CounterVec
	challenges *prometheus.CounterVec
	ohttp      *prometheus.CounterVec
	extra      []prometheus.Collector
}

func newMetrics() *metrics {
	return &metrics{
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "attestlog_enclave_hardware_reports_total", Help: "Hardware reports asked for (rotations and challenges)."}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attestlog_enclave_rotations_total", Help: "Key set rotations, by result."},
			[]string{"result"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attestlog_enclave_challenges_total", Help: "Nonce challenges, by answer status."},
			[]string{"status"}),
		ohttp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "attestlog_enclave_ohttp_requests_total", Help: "Oblivious HTTP requests at the gateway, by result."},
			[]string{"result"}),
	}
}

// Collectors returns the agent's metrics.
func (a *Agent) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{a.metrics.reports, a.metrics.rotations, a.metrics.challenges, a.metrics.ohttp}, a.metrics.extra...)
}
