// Package attest verifies hardware attestation evidence (AMD SEV-SNP and
// Intel TDX) against the attestation section of a trust policy and
// extracts the measurements a verifier compares with the logged release.
//
// All cryptography is go-sev-guest's and go-tdx-guest's: their verify
// packages check the hardware signature chain against the roots this
// package hands them (never the embedded-by-default path, never the
// network), their validate packages check the report fields. This package
// only decides which checks to run, with which options, and spells out
// each outcome as a [check.Check].
//
// Roots: the AMD ARK, ASK (VCEK issuer) and ASVK (VLEK issuer,
// "SEV-VLEK-<line>") of Milan, Genoa and Turin — go-sev-guest v0.15.0's
// verify/trust/*.pem, its copies of AMD KDS's /vcek/v1/<line>/cert_chain
// and /vlek/v1/<line>/cert_chain, their SHA-256 fingerprints pinned by
// TestEmbeddedAMDRoots and the Milan and Turin ones equal to what the
// public Google Cloud and Turin samples ship (testdata/cloud) — and the
// Intel SGX Root CA (the certificate go-tdx-guest embeds, copied here as
// intel_sgx_root_ca.pem, SHA-256 fingerprint
// 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3).
// A policy's trust-root lines add roots; test roots are trusted only so.
//
// Google's firmware-endorsement root is not embedded: a stapled
// endorsement verifies only against a trust-root gce-tcb line's root.
//
// Nothing is fetched: a SEV-SNP report needs its VCEK/VLEK in the
// evidence; CRLs and TDX collateral come from the files the policy names
// or are stapled to the evidence.
package attest

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/attestlog/attestlog/internal/pemcert"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

//go:embed intel_sgx_root_ca.pem
var intelSGXRootCA []byte

// Verifier checks evidence against an attestation policy. It is safe for
// concurrent use.
type Verifier struct {
	pol      policy.AttestationPolicy
	now      func() time.Time
	snpRoots map[string][]*snpRoot // by product line
	crls     []*crlFile
	tdxRoots *x509.CertPool
	tdxTest  bool     // a trust-root tdx line added roots
	gpuRoots [][]byte // PEM, from trust-root gpu lines
	tdxColl  *collateral
	gceRoots *x509.CertPool // from trust-root gce-tcb lines; nil: none
}

type snpRoot struct {
	certs  *trust.ProductCerts
	line   string
	source string // "embedded AMD root" or the trust-root file
}

type crlFile struct {
	path string
	key  abi.ReportSigner // whose CRL: the VCEK's or the VLEK's
	crl  *x509.RevocationList
}

type options struct {
	baseDir string
	fsys    fs.FS
	now     func() time.Time
}

// Option configures New.
type Option func(*options)

// WithBaseDir resolves the relative file names of the policy (trust-root,
// crl, tdx-collateral) against dir, normally the policy file's directory.
func WithBaseDir(dir string) Option { return func(o *options) { o.baseDir = dir } }

// WithFS reads the policy's files (trust-root, crl, tdx-collateral) from
// fsys, by the names the policy gives (slash-separated, relative), instead
// of from the file system: for a verifier with no file system (the
// WebAssembly client) or with the files in memory.
func WithFS(fsys fs.FS) Option { return func(o *options) { o.fsys = fsys } }

// WithTime verifies certificates, CRLs and collateral as of t instead of
// the current time (for saved evidence and tests).
func WithTime(t time.Time) Option { return func(o *options) { o.now = func() time.Time { return t } } }

// WithClock reads the verification time from now at each decision
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a verifier for the attestation policy, loading the files it
// names. An error names the directive and file that could not be used.
func New(ap policy.AttestationPolicy, opts ...Option) (*Verifier, error) {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	resolve := func(p string) string {
		if o.fsys != nil {
			return path.Clean(strings.TrimPrefix(p, "./"))
		}
		if filepath.IsAbs(p) || o.baseDir == "" {
			return p
		}
		return filepath.Join(o.baseDir, p)
	}
	readFile := func(p string) ([]byte, error) {
		if o.fsys != nil {
			return fs.ReadFile(o.fsys, p)
		}
		return os.ReadFile(p)
	}
	v := &Verifier{pol: ap, now: o.now, snpRoots: embeddedSNPRoots(), tdxRoots: x509.NewCertPool()}
	if !v.tdxRoots.AppendCertsFromPEM(intelSGXRootCA) {
		return nil, errors.New("internal error: embedded Intel SGX root does not parse")
	}
	for _, r := range ap.TrustRoots {
		b, err := readFile(resolve(r.File))
		if err != nil {
			return nil, fmt.Errorf("trust-root %s %s: %w", r.Platform, r.File, err)
		}
		switch r.Platform {
		case policy.PlatformSEVSNP:
			root, err := parseSNPRoot(b)
			if err != nil {
				return nil, fmt.Errorf("trust-root %s %s: %w", r.Platform, r.File, err)
			}
			root.source = "trust-root " + r.File
			v.snpRoots[root.line] = append(v.snpRoots[root.line], root)
		case policy.PlatformTDX:
			certs, err := pemcert.Parse(b)
			if err != nil {
				return nil, fmt.Errorf("trust-root %s %s: %w", r.Platform, r.File, err)
			}
			for _, c := range certs {
				v.tdxRoots.AddCert(c)
			}
			v.tdxTest = true
		case policy.PlatformGPU:
			if _, err := pemcert.Parse(b); err != nil {
				return nil, fmt.Errorf("trust-root %s %s: %w", r.Platform, r.File, err)
			}
			v.gpuRoots = append(v.gpuRoots, b)
		case policy.PlatformGCETCB:
			if err := v.addGCERoot(b); err != nil {
				return nil, fmt.Errorf("trust-root %s %s: %w", r.Platform, r.File, err)
			}
		}
	}
	for i, p := range append(append([]string(nil), ap.CRLs...), ap.VLEKCRLs...) {
		b, err := readFile(resolve(p))
		if err != nil {
			return nil, fmt.Errorf("crl %s: %w", p, err)
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		crl, err := x509.ParseRevocationList(b)
		if err != nil {
			return nil, fmt.Errorf("crl %s: %w", p, err)
		}
		key := abi.VcekReportSigner
		if i >= len(ap.CRLs) {
			key = abi.VlekReportSigner
		}
		v.crls = append(v.crls, &crlFile{path: p, key: key, crl: crl})
	}
	if ap.TDXCollateral != "" {
		c, err := loadCollateral(readFile, resolve(ap.TDXCollateral))
		if err != nil {
			return nil, fmt.Errorf("tdx-collateral %s: %w", ap.TDXCollateral, err)
		}
		v.tdxColl = c
	}
	return v, nil
}

// Result is the outcome of verifying evidence.
type Result struct {
	Platform string     `json:"platform"`
	Checks   check.List `json:"checks"`
	// SNP or TDX holds the report fields, set whenever the evidence
	// parsed, even if a check failed (look at Checks before trusting
	// them).
	SNP *SNPFields `json:"snp,omitempty"`
	TDX *TDXFields `json:"tdx,omitempty"`
	// VTPM holds the vTPM facts of azure-sev-snp and azure-tdx evidence
	// (beside SNP or TDX: the paravisor's report).
	VTPM *VTPMFields `json:"vtpm,omitempty"`
	// Endorsement is the firmware endorsement stapled to the evidence,
	// set when it verified and endorses the evidence's measurement.
	Endorsement *FirmwareEndorsement `json:"firmware_endorsement,omitempty"`
}

// OK reports whether every check passed.
func (r *Result) OK() bool { return r.Checks.OK() }

// GPURoots are the PEM GPU device roots the policy's trust-root gpu lines
// name (test roots: NVIDIA's is built in).
func (v *Verifier) GPURoots() [][]byte { return v.gpuRoots }

// Measurement returns the measurement that identifies a release: the SNP
// launch digest or the TDX MRTD (lowercase hex), or "" when the evidence
// did not parse.
func (r *Result) Measurement() string {
	switch {
	case r.SNP != nil:
		return r.SNP.LaunchDigest
	case r.TDX != nil:
		return r.TDX.MRTD
	}
	return ""
}

func (r *Result) add(c check.Check) { r.Checks = append(r.Checks, c) }

// Verify checks evidence against the policy: format, platform allowed,
// hardware signature chain, revocation and TCB status when the policy
// names CRLs or collateral, report consistency, TCB floors, guest policy,
// and that REPORT_DATA binds nonce and the bundle's channel key (see
// evidence.ReportData). It does not look at the stapled proof.
func (v *Verifier) Verify(b *evidence.Bundle, nonce []byte) *Result {
	return v.run(b, nonce, true)
}

// Inspect checks only what needs no policy and no nonce: the format, the
// hardware signature chain (plus revocation and TCB status when
// configured) and the report's internal consistency; and extracts the
// fields. `attestlog inspect` uses it.
func (v *Verifier) Inspect(b *evidence.Bundle) *Result {
	return v.run(b, nil, false)
}

func (v *Verifier) run(b *evidence.Bundle, nonce []byte, full bool) *Result {
	r := &Result{}
	if b == nil {
		r.add(check.Fail(check.EvidenceFormat, "no evidence"))
		return r
	}
	r.Platform = b.Platform
	if err := b.Check(); err != nil {
		r.add(check.Fail(check.EvidenceFormat, "%v", err))
		return r
	}
	switch b.Platform {
	case evidence.SEVSNP:
		v.verifySNP(r, b, nonce, full)
	case evidence.TDX:
		v.verifyTDX(r, b, nonce, full)
	case evidence.AzureSEVSNP, evidence.AzureTDX:
		v.verifyAzure(r, b, nonce, full)
	}
	if len(b.FirmwareEndorsement) > 0 && (r.SNP != nil || r.TDX != nil) {
		r.add(v.endorsementCheck(r, b.FirmwareEndorsement, v.now()))
	}
	return r
}

func (v *Verifier) platformCheck(platform string) check.Check {
	if v.pol.AllowsPlatform(platform) {
		return check.Pass(check.PlatformAllowed, "policy allows %s", platform)
	}
	return check.Fail(check.PlatformAllowed, "policy allows only %v, not %s; add a 'platform %s' line to accept it", v.pol.Platforms, platform, platform)
}

func (v *Verifier) nonceReportData(b *evidence.Bundle, nonce []byte) ([]byte, string, error) {
	if b.Format == evidence.FormatKeySet {
		return v.keySetReportData(b, nonce)
	}
	if nonce == nil {
		return nil, "", errors.New("no nonce given: without one, stale or replayed evidence cannot be told apart")
	}
	rd, err := b.ExpectedReportData(nonce)
	if err != nil {
		return nil, "", err
	}
	what := "the nonce"
	if len(b.ChannelKey) > 0 {
		what = fmt.Sprintf("the nonce and the %d-byte channel key", len(b.ChannelKey))
	}
	if len(b.GPUs) > 0 {
		what += fmt.Sprintf(" and the evidence of its %d GPU(s)", len(b.GPUs))
	}
	return rd[:], what, nil
}

// keySetReportData is the binding of an attestation document (format
// v3): REPORT_DATA commits to its key set (and to the nonce, for a
// challenge), and the key set, which stands in for a nonce's freshness,
// must be valid now.
func (v *Verifier) keySetReportData(b *evidence.Bundle, nonce []byte) ([]byte, string, error) {
	ks, err := b.ParsedKeySet()
	if err != nil {
		return nil, "", err
	}
	if err := ks.ValidAt(v.now(), keySetSkew); err != nil {
		return nil, "", err
	}
	rd, err := b.ExpectedReportData(nonce)
	if err != nil {
		return nil, "", err
	}
	what := fmt.Sprintf("the key set (TLS key sha256:%x…, %d HPKE keys, valid until %s)", ks.TLSSPKIHash[:8], len(ks.HPKE), ks.NotAfter.Format(time.RFC3339))
	if len(nonce) > 0 {
		what = "the nonce and " + what
	}
	if len(b.GPUs) > 0 {
		what += fmt.Sprintf(", which commits to the evidence of its %d GPU(s)", len(b.GPUs))
	}
	return rd[:], what, nil
}

// keySetSkew is how far ahead of the verifier's clock a key set may
// start.
const keySetSkew = 5 * time.Minute

// multiErrors splits an error combined by go.uber.org/multierr (or
// errors.Join) into its messages.
func multiErrors(err error) []string {
	if err == nil {
		return nil
	}
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range m.Unwrap() {
			out = append(out, multiErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// beyond returns the messages of err that are not in base: the failures a
// validate call adds to those of the baseline call.
func beyond(err error, base []string) error {
	seen := map[string]bool{}
	for _, m := range base {
		seen[m] = true
	}
	var extra []error
	for _, m := range multiErrors(err) {
		if !seen[m] {
			extra = append(extra, errors.New(m))
		}
	}
	return errors.Join(extra...)
}

// safely runs f, turning a panic in a third-party parser into an error:
// evidence is untrusted input.
func safely(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: malformed input (%v)", what, p)
		}
	}()
	return f()
}
