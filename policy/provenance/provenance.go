// Package provenance verifies a release's build provenance — a Sigstore
// bundle (https://github.com/sigstore/protobuf-specs, bundle v0.1–v0.3)
// whose DSSE payload is an in-toto Statement v1 with a SLSA provenance v1
// predicate (https://slsa.dev/spec/v1.0/provenance) — and keyless release
// statements (our release statement signed as a Sigstore bundle by a CI
// identity), against the provenance section of a policy.
//
// All Sigstore cryptography is github.com/sigstore/sigstore-go's
// (verify.Verifier.Verify), fully offline against the trusted-root JSON the
// policy names: certificate chain to a Fulcio CA, DSSE signature,
// transparency-log entry (signed entry timestamp or inclusion proof with
// signed checkpoint), RFC 3161 timestamps and embedded SCTs. This package
// adds the consistency checks between a release and its provenance, each
// a named [check.Check]:
//
//   - [CheckSignature]: sigstore-go verification of the bundle.
//   - [CheckBuilder]: the certificate's OIDC issuer, subject and source
//     repository / ref / build config extensions match a builder line.
//   - [CheckDigests]: every release artifact's digest is a subject of the
//     provenance statement (matched by digest, not name; every algorithm
//     both carry must agree).
//   - [CheckCommit]: the release's source commit equals the digest of the
//     provenance's resolved dependency for the release's repository and the
//     certificate's source repository digest, and the release's repository
//     equals the certificate's source repository URI.
//   - [CheckRecipe]: the release recipe's entry point matches the
//     provenance's externalParameters; see [BuildTypeRecipe] and
//     [BuildTypeGitHubWorkflow] for what is compared.
//   - [CheckBuilderID]: runDetails.builder.id and buildDefinition.buildType
//     are among the builder line's builder-id= and build-type= values.
//
// A release without provenance yields the single check [CheckPresent],
// passed or failed as the policy's provenance line says.
package provenance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
)

// Names of the checks [Verifier.Check] returns, in the order it returns
// them.
const (
	CheckPresent   = "provenance present"
	CheckSignature = "provenance signature"
	CheckBuilder   = "builder identity"
	CheckDigests   = "artifact digests in provenance subject"
	CheckCommit    = "source commit"
	CheckRecipe    = "recipe entry point"
	CheckBuilderID = "builder id and build type"
)

// Predicate and build types this package understands.
const (
	// PredicateSLSAv1 is the only provenance predicate accepted.
	PredicateSLSAv1 = "https://slsa.dev/provenance/v1"

	// BuildTypeRecipe is attestlog's own build type: externalParameters
	// are exactly {"repository": Source.Repo, "argv": Recipe.Argv,
	// "env": Recipe.Env (optional), "outputs": Recipe.Outputs (optional)}.
	// The recipe check requires every one of them to equal the release's,
	// and no other key: the build had no input the recipe does not record.
	BuildTypeRecipe = "https://attestlog.dev/buildtypes/recipe/v1"

	// BuildTypeGitHubWorkflow is GitHub Actions' build type
	// (actions/attest-build-provenance); BuildTypeGitHubWorkflowSLSA is the
	// slsa-github-generator / npm one. Their externalParameters.workflow
	// is {repository, path, ref}: the recipe check requires repository to
	// equal the release's Source.Repo and, when the certificate has a
	// build config URI, that URI to be exactly REPOSITORY/PATH@REF (the
	// workflow that ran is the one that signed). These build types record
	// the workflow, not the command it ran: Recipe.Argv is not compared
	// (auditors replay it), and the check's reason says so.
	BuildTypeGitHubWorkflow     = "https://actions.github.io/buildtypes/workflow/v1"
	BuildTypeGitHubWorkflowSLSA = "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"
)

// Limits on what is parsed at admission.
const (
	// MaxBundleSize bounds a provenance bundle (the log's own limit on
	// Release.Provenance is 48 KiB); a keyless release bundle is bounded
	// by statement.MaxEntrySize.
	MaxBundleSize = 48 << 10
	// MaxTLogEntries, MaxTimestamps and MaxChainCerts bound the
	// verification material of a bundle, so that one entry cannot make
	// the log verify hundreds of signatures.
	MaxTLogEntries = 4
	MaxTimestamps  = 4
	MaxChainCerts  = 6
	// MaxSubjects bounds the provenance statement's subjects.
	MaxSubjects = 1024
)

// Errors. Admission maps them to HTTP statuses in one place:
// ErrMalformed → 400, ErrRejected and ErrUnauthorized → 403 (or 422),
// ErrConfig → 500 (the server's policy is broken, not the request).
var (
	// ErrMalformed: the bundle is not a Sigstore bundle we can parse, or
	// exceeds a limit.
	ErrMalformed = errors.New("malformed Sigstore bundle")
	// ErrRejected: a check failed; the message names it.
	ErrRejected = errors.New("provenance rejected")
	// ErrUnauthorized: a keyless statement verifies but its signer is no
	// keyless-operator of the policy.
	ErrUnauthorized = errors.New("not a keyless operator of the policy")
	// ErrConfig: the policy's provenance section cannot be used (no or
	// unreadable sigstore-root, builders without a root, …).
	ErrConfig = errors.New("provenance policy")
)

// Identity is who signed a bundle, as verified: the policy entry it
// matched and what the Fulcio certificate says.
type Identity struct {
	// Name is the policy's builder or keyless-operator name.
	Name    string `json:"name"`
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Certificate extensions; empty when the certificate has none.
	Repo        string `json:"repo,omitempty"`
	Ref         string `json:"ref,omitempty"`
	Commit      string `json:"commit,omitempty"`
	BuildConfig string `json:"build_config,omitempty"`
	// BuilderID and BuildType are from the SLSA predicate (provenance only).
	BuilderID string `json:"builder_id,omitempty"`
	BuildType string `json:"build_type,omitempty"`
	// SignedAt is the earliest verified observer timestamp (zero when
	// verified at the current time).
	SignedAt time.Time `json:"signed_at,omitzero"`
}

// Verifier checks bundles against one provenance policy. It is safe for
// concurrent use. Build it once per policy: loading the trusted root is
// the expensive part.
type Verifier struct {
	pp       *policy.ProvenancePolicy
	rootPath string
	root     *root.TrustedRoot
	sv       *verify.Verifier
	// configErr is returned by every check when the policy has no usable
	// root but may still accept releases without provenance.
	configErr error
}

// New returns a verifier for pp, reading its sigstore-root file (a path
// made absolute by policy.Load; a relative one is relative to the
// working directory). A policy without sigstore-root and without builders
// or keyless operators gives a verifier that accepts only releases without
// provenance (when the policy allows those).
func New(pp *policy.ProvenancePolicy) (*Verifier, error) {
	v := &Verifier{pp: pp, rootPath: pp.SigstoreRoot}
	if pp.SigstoreRoot == "" {
		if len(pp.Builders) > 0 || len(pp.KeylessOperators) > 0 || pp.Requirement == policy.ProvenanceRequired {
			return nil, fmt.Errorf("%w: builder, keyless-operator or 'provenance required' lines need a sigstore-root line naming the trusted-root JSON", ErrConfig)
		}
		v.configErr = errors.New("the policy has no sigstore-root line, so provenance cannot be verified (add 'sigstore-root FILE' and a builder line to the policy, or publish without provenance)")
		return v, nil
	}
	if pp.Requirement == policy.ProvenanceRequired && len(pp.Builders) == 0 {
		return nil, fmt.Errorf("%w: 'provenance required' but no builder line: no provenance could ever be accepted", ErrConfig)
	}
	b, err := os.ReadFile(pp.SigstoreRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: sigstore-root: %v", ErrConfig, err)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: sigstore-root %s: not a Sigstore trusted root: %v", ErrConfig, pp.SigstoreRoot, err)
	}
	var opts []verify.VerifierOption
	if pp.TLogEntries > 0 {
		opts = append(opts, verify.WithTransparencyLog(pp.TLogEntries))
	}
	if pp.Timestamps > 0 {
		opts = append(opts, verify.WithObserverTimestamps(pp.Timestamps))
	} else {
		opts = append(opts, verify.WithCurrentTime())
	}
	switch pp.SCT {
	case policy.SCTYes:
		if len(tr.CTLogs()) == 0 {
			return nil, fmt.Errorf("%w: sigstore-require sct=yes but the trusted root %s lists no CT logs", ErrConfig, pp.SigstoreRoot)
		}
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	case policy.SCTAuto, "":
		if len(tr.CTLogs()) > 0 {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
	}
	sv, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	v.root, v.sv = tr, sv
	return v, nil
}

var cache struct {
	sync.Mutex
	pp *policy.ProvenancePolicy
	v  *Verifier
}

// verifierFor returns the verifier of pp, reusing the last one built: a
// log or client uses one policy at a time, and a reloaded policy is a new
// pointer.
func verifierFor(pp *policy.ProvenancePolicy) (*Verifier, error) {
	cache.Lock()
	defer cache.Unlock()
	if cache.pp == pp && cache.v != nil {
		return cache.v, nil
	}
	v, err := New(pp)
	if err != nil {
		return nil, err
	}
	cache.pp, cache.v = pp, v
	return v, nil
}

// Check is [Verifier.Check] with the verifier of pp (built on first use and
// kept until Check is called with another policy).
func Check(rel *statement.Release, subjects []statement.Subject, pp *policy.ProvenancePolicy, now time.Time) (check.List, *Identity, error) {
	v, err := verifierFor(pp)
	if err != nil {
		return nil, nil, err
	}
	return v.Check(rel, subjects, now)
}

// VerifyKeylessStatement is [Verifier.VerifyKeylessStatement] with the
// verifier of pp.
func VerifyKeylessStatement(b []byte, pp *policy.ProvenancePolicy, now time.Time) ([]byte, *Identity, error) {
	v, err := verifierFor(pp)
	if err != nil {
		return nil, nil, err
	}
	return v.VerifyKeylessStatement(b, now)
}

// Rejection returns nil when every check passed, else an error wrapping
// ErrRejected that names each failed check and its reason — the 4xx
// message for POST /add.
func Rejection(cs check.List) error {
	f := cs.Failed()
	if len(f) == 0 && len(cs) > 0 {
		return nil
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w: no provenance checks ran", ErrRejected)
	}
	var msgs []string
	for _, c := range f {
		msgs = append(msgs, c.Name+": "+c.Reason)
	}
	return fmt.Errorf("%w: %s", ErrRejected, strings.Join(msgs, "; "))
}

// Check verifies rel's provenance against the policy and the release
// (whose artifacts are subjects). It returns the named checks — all of
// them passed means the provenance is accepted — and, when the signature
// verified and the identity matched a builder, who built it.
//
// A release without provenance yields one check, CheckPresent, failed
// when the policy requires provenance and passed (saying it is absent)
// otherwise; the Identity is then nil, which is how callers mark a
// release "without provenance".
//
// The error is non-nil only for a bundle that cannot be parsed
// (ErrMalformed; the checks then hold a failed CheckSignature too). A
// policy without sigstore-root rejects any provenance with a failed
// CheckSignature saying so. now is used to explain certificate expiry;
// sigstore-go verifies at the bundle's verified timestamps (or at the
// current time under 'sigstore-require timestamps=0').
func (v *Verifier) Check(rel *statement.Release, subjects []statement.Subject, now time.Time) (check.List, *Identity, error) {
	if len(rel.Provenance) == 0 {
		if v.pp.Required() {
			return check.List{check.Fail(CheckPresent, "the release has no provenance and the policy requires it (attach a Sigstore bundle with SLSA v1 provenance from a builder the policy names, e.g. 'provenance: build.sigstore.json' in the release file)")}, nil, nil
		}
		return check.List{check.Pass(CheckPresent, "no provenance attached; the policy allows releases without provenance (this release is unverified as to how it was built)")}, nil, nil
	}
	if v.configErr != nil {
		// Not a broken server: this policy simply cannot accept provenance.
		return check.List{check.Fail(CheckSignature, "%v", v.configErr)}, nil, nil
	}
	b, err := parseBundle(rel.Provenance, MaxBundleSize)
	if err != nil {
		return check.List{check.Fail(CheckSignature, "%v", err)}, nil, err
	}
	res, err := v.verify(b, now)
	if err != nil {
		return check.List{check.Fail(CheckSignature, "%v", err)}, nil, nil
	}
	cert := res.Signature.Certificate
	cs := check.List{check.Pass(CheckSignature, "Sigstore bundle verifies offline against %s: certificate chain, DSSE signature, %s", v.rootPath, v.evidence(res))}

	id := identityOf(cert, res)
	builder, err := matchAny(v.pp.Builders, cert, "builder")
	if err != nil {
		cs = append(cs, check.Fail(CheckBuilder, "%v", err))
	} else {
		id.Name = builder.Name
		cs = append(cs, check.Pass(CheckBuilder, "builder %s: issuer %s, subject %s%s", builder.Name, cert.Issuer, cert.SubjectAlternativeName, extSummary(cert)))
	}

	st := res.Statement
	cs = append(cs, checkDigests(subjects, st))

	prov, perr := predicate(st)
	if prov != nil {
		id.BuilderID = prov.GetRunDetails().GetBuilder().GetId()
		id.BuildType = prov.GetBuildDefinition().GetBuildType()
	}
	if perr != nil {
		cs = append(cs,
			check.Fail(CheckCommit, "%v", perr),
			check.Fail(CheckRecipe, "%v", perr),
			check.Fail(CheckBuilderID, "%v", perr))
	} else {
		cs = append(cs, checkCommit(rel.Source, prov, cert), checkRecipe(rel, prov, cert), checkBuilderID(builder, prov))
	}
	if builder == nil {
		id = nil
	}
	return cs, id, nil
}

// VerifyKeylessStatement verifies b, a Sigstore bundle whose DSSE payload
// (payloadType application/vnd.in-toto+json) is one of our statements,
// signed by a keyless-operator of the policy. It returns the payload —
// still to be parsed strictly with statement.ParseStatement — and the
// operator's identity. Errors: ErrMalformed (not a bundle, over
// statement.MaxEntrySize, not DSSE), ErrRejected (the bundle does not
// verify), ErrUnauthorized (it verifies but the signer is no
// keyless-operator), ErrConfig.
func (v *Verifier) VerifyKeylessStatement(b []byte, now time.Time) ([]byte, *Identity, error) {
	if v.configErr != nil {
		return nil, nil, fmt.Errorf("%w: the policy names no keyless-operator (and no sigstore-root)", ErrUnauthorized)
	}
	bn, err := parseBundle(b, statement.MaxEntrySize)
	if err != nil {
		return nil, nil, err
	}
	env, err := bn.Envelope()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: a keyless statement must be a DSSE envelope bundle", ErrMalformed)
	}
	if env.PayloadType != statement.PayloadType {
		return nil, nil, fmt.Errorf("%w: DSSE payloadType is %q, want %q", ErrMalformed, env.PayloadType, statement.PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: DSSE payload: %v", ErrMalformed, err)
	}
	res, err := v.verify(bn, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: keyless signature: %v", ErrRejected, err)
	}
	cert := res.Signature.Certificate
	op, err := matchAny(v.pp.KeylessOperators, cert, "keyless-operator")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	id := identityOf(cert, res)
	id.Name = op.Name
	return payload, id, nil
}

// VerifyKeylessEntry parses a keyless log entry with statement.ParseEntry
// — the one parser of entries, so what admission accepts every reader
// reads back — and verifies the canonical bundle it yields
// (Parsed.Bundle) as VerifyKeylessStatement does: signed by a keyless
// operator of the policy, carrying a release. On success KeylessSigner is
// set to the operator's policy name. The log stores Parsed.Bundle, not
// the submitted bytes.
func VerifyKeylessEntry(entry []byte, pp *policy.ProvenancePolicy, now time.Time) (*statement.Parsed, *Identity, error) {
	v, err := verifierFor(pp)
	if err != nil {
		return nil, nil, err
	}
	return v.VerifyKeylessEntry(entry, now)
}

// VerifyKeylessEntry is VerifyKeylessEntry with v's policy.
func (v *Verifier) VerifyKeylessEntry(entry []byte, now time.Time) (*statement.Parsed, *Identity, error) {
	if !statement.IsBundle(entry) {
		return nil, nil, fmt.Errorf("%w: not a Sigstore bundle", ErrMalformed)
	}
	p, err := statement.ParseEntry(entry)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if p.Envelope != nil {
		return nil, nil, fmt.Errorf("%w: not a Sigstore bundle", ErrMalformed)
	}
	if p.Kind != statement.KindRelease {
		return p, nil, fmt.Errorf("%w: a keyless (Sigstore bundle) entry must be a release; a %s must be key-signed", ErrUnauthorized, p.Kind)
	}
	payload, id, err := v.VerifyKeylessStatement(p.Bundle, now)
	if err != nil {
		return p, nil, err
	}
	if sha256.Sum256(payload) != p.PayloadHash {
		// Cannot happen while both decode the same protobuf message; a
		// check that costs nothing and would catch a parser divergence.
		return p, nil, fmt.Errorf("%w: the verified payload is not the statement parsed from the bundle", ErrMalformed)
	}
	p.KeylessSigner = id.Name
	return p, id, nil
}

// IsBundle reports whether b looks like a Sigstore bundle (a JSON object
// whose mediaType is application/vnd.dev.sigstore.bundle…) rather than
// our DSSE envelope (which has no mediaType). It does not validate b.
func IsBundle(b []byte) bool {
	return len(b) <= statement.MaxEntrySize && statement.IsBundle(b)
}

// parseBundle parses and bounds a bundle before any verification.
func parseBundle(b []byte, limit int) (*bundle.Bundle, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(b), limit)
	}
	var bn bundle.Bundle
	if err := bn.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	vm := bn.GetVerificationMaterial()
	if n := len(vm.GetTlogEntries()); n > MaxTLogEntries {
		return nil, fmt.Errorf("%w: %d transparency-log entries, the limit is %d", ErrMalformed, n, MaxTLogEntries)
	}
	if n := len(vm.GetTimestampVerificationData().GetRfc3161Timestamps()); n > MaxTimestamps {
		return nil, fmt.Errorf("%w: %d RFC 3161 timestamps, the limit is %d", ErrMalformed, n, MaxTimestamps)
	}
	if n := len(vm.GetX509CertificateChain().GetCertificates()); n > MaxChainCerts {
		return nil, fmt.Errorf("%w: %d certificates in the chain, the limit is %d", ErrMalformed, n, MaxChainCerts)
	}
	if vm.GetPublicKey() != nil {
		return nil, fmt.Errorf("%w: the bundle is signed with a public key; provenance must be signed keylessly with a Fulcio certificate", ErrMalformed)
	}
	if bn.GetDsseEnvelope() == nil {
		return nil, fmt.Errorf("%w: the bundle holds a message signature, not a DSSE envelope with an in-toto statement", ErrMalformed)
	}
	return &bn, nil
}

var anyArtifact = verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithoutIdentitiesUnsafe())

// verify runs sigstore-go's verification. Artifacts and identities are
// checked by the callers (CheckDigests, CheckBuilder), so that each
// failure has its own named check.
func (v *Verifier) verify(b *bundle.Bundle, now time.Time) (*verify.VerificationResult, error) {
	res, err := v.sv.Verify(b, anyArtifact)
	if err != nil {
		return nil, v.explain(b, err, now)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return nil, errors.New("the bundle is not signed with a Fulcio certificate")
	}
	if res.Statement == nil {
		return nil, errors.New("the DSSE payload is not an in-toto statement")
	}
	return res, nil
}

// explain turns sigstore-go's error into one that says what was wrong;
// for a certificate that fails path validation it says whether it had
// expired at every verified time (and whether there was any timestamp).
func (v *Verifier) explain(b *bundle.Bundle, err error, now time.Time) error {
	msg := err.Error()
	raw, _ := b.Timestamps()
	entries, _ := b.TlogEntries()
	switch {
	case strings.Contains(msg, "does not match envelope payload hash"):
		return fmt.Errorf("the DSSE payload is not the one that was signed and logged (modified after signing): %v", err)
	case strings.Contains(msg, "log inclusion") && len(entries) == 0:
		return fmt.Errorf("the bundle has no transparency-log entry and the policy requires %d ('sigstore-require tlog=N'): %v", v.pp.TLogEntries, err)
	case strings.Contains(msg, "log inclusion"):
		for _, e := range b.GetVerificationMaterial().GetTlogEntries() {
			id := hex.EncodeToString(e.GetLogId().GetKeyId())
			if _, ok := v.root.RekorLogs()[id]; !ok {
				return fmt.Errorf("the bundle's transparency-log entry is from log %s, which the trusted root %s does not list: the bundle was made by another Sigstore instance than the policy trusts: %v", id, v.rootPath, err)
			}
		}
	case strings.Contains(msg, "unable to verify signed timestamps"):
		return fmt.Errorf("the bundle's RFC 3161 timestamp does not verify against a timestamp authority of the trusted root %s: %v", v.rootPath, err)
	case strings.Contains(msg, "failed to verify timestamps") && len(entries) == 0 && len(raw) == 0:
		return fmt.Errorf("the bundle has no timestamp (no transparency-log entry, no RFC 3161 timestamp) and the policy requires %d ('sigstore-require timestamps=N')", v.pp.Timestamps)
	}
	if !strings.Contains(msg, "leaf certificate") && !strings.Contains(msg, "outside certificate validity") {
		return fmt.Errorf("sigstore verification failed: %v", err)
	}
	vc, cerr := b.VerificationContent()
	if cerr != nil || vc.Certificate() == nil {
		return fmt.Errorf("sigstore verification failed: %v", err)
	}
	c := vc.Certificate()
	if len(entries) == 0 && len(raw) == 0 && now.After(c.NotAfter) {
		return fmt.Errorf("signing certificate expired at %s (valid from %s) and the bundle carries no timestamp — no transparency-log entry, no RFC 3161 timestamp — proving it was signed while the certificate was valid", c.NotAfter.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))
	}
	// The times the bundle claims: log integration times and the RFC 3161
	// timestamps that verify. Only used to explain the failure.
	var times []string
	inside := false
	add := func(kind string, t time.Time) {
		times = append(times, kind+" "+t.UTC().Format(time.RFC3339))
		inside = inside || (!t.Before(c.NotBefore) && !t.After(c.NotAfter))
	}
	for _, e := range entries {
		add("log entry", e.IntegratedTime())
	}
	if ts, err := v.sv.VerifyObserverTimestamps(b, nil); err == nil {
		for _, t := range ts {
			if t.Type != "Tlog" {
				add("RFC 3161 timestamp", t.Timestamp)
			}
		}
	}
	if len(times) > 0 && !inside {
		return fmt.Errorf("signing certificate was not valid at any verified time: it is valid from %s to %s, but the bundle's times are %s (it expired before it was logged or timestamped)", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), strings.Join(times, ", "))
	}
	return fmt.Errorf("signing certificate (issuer %q) does not chain to a Fulcio CA of the trusted root %s: %v", c.Issuer.String(), v.rootPath, err)
}

func (v *Verifier) evidence(res *verify.VerificationResult) string {
	var tlog, tsa int
	for _, t := range res.VerifiedTimestamps {
		switch t.Type {
		case "Tlog":
			tlog++
		default:
			tsa++
		}
	}
	s := fmt.Sprintf("%d transparency-log entr%s", tlog, plural(tlog, "y", "ies"))
	s += fmt.Sprintf(", %d RFC 3161 timestamp%s", tsa, plural(tsa, "", "s"))
	if tlog+tsa == 0 {
		s += " (certificate verified at the current time)"
	}
	if v.sctRequired() {
		s += ", embedded SCT"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (v *Verifier) sctRequired() bool {
	return v.pp.SCT == policy.SCTYes || ((v.pp.SCT == policy.SCTAuto || v.pp.SCT == "") && len(v.root.CTLogs()) > 0)
}

func identityOf(c *certificate.Summary, res *verify.VerificationResult) *Identity {
	id := &Identity{
		Issuer: c.Issuer, Subject: c.SubjectAlternativeName,
		Repo: c.SourceRepositoryURI, Ref: c.SourceRepositoryRef,
		Commit: c.SourceRepositoryDigest, BuildConfig: c.BuildConfigURI,
	}
	for _, t := range res.VerifiedTimestamps {
		if id.SignedAt.IsZero() || t.Timestamp.Before(id.SignedAt) {
			id.SignedAt = t.Timestamp.UTC()
		}
	}
	return id
}

// matchAny returns the first identity of the policy that the certificate
// matches, or an error explaining each mismatch.
func matchAny(ids []policy.BuildIdentity, c *certificate.Summary, kind string) (*policy.BuildIdentity, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("the policy names no %s (signed by issuer %s, subject %s%s; add a '%s NAME issuer=… subject=…' line to trust it)", kind, c.Issuer, c.SubjectAlternativeName, extSummary(c), kind)
	}
	var why []string
	for i := range ids {
		err := matchIdentity(&ids[i], c)
		if err == nil {
			return &ids[i], nil
		}
		why = append(why, fmt.Sprintf("%s %s: %v", kind, ids[i].Name, err))
	}
	return nil, fmt.Errorf("the certificate matches no %s of the policy: %s", kind, strings.Join(why, "; "))
}

// matchIdentity compares the certificate with one policy identity, field
// by field, so that the error names the field that differs.
func matchIdentity(id *policy.BuildIdentity, c *certificate.Summary) error {
	if c.Issuer != id.Issuer {
		return fmt.Errorf("wrong OIDC issuer: certificate has %q, policy wants %q", c.Issuer, id.Issuer)
	}
	if id.SubjectRegex != nil {
		if !id.SubjectRegex.MatchString(c.SubjectAlternativeName) {
			return fmt.Errorf("wrong subject: certificate has %q, policy wants one matching %s", c.SubjectAlternativeName, id.SubjectRegex)
		}
	} else if c.SubjectAlternativeName != id.Subject {
		return fmt.Errorf("wrong subject: certificate has %q, policy wants %q", c.SubjectAlternativeName, id.Subject)
	}
	if id.Repo != "" && c.SourceRepositoryURI != id.Repo {
		return fmt.Errorf("wrong source repository: certificate has %q, policy wants %q", c.SourceRepositoryURI, id.Repo)
	}
	if id.Ref != nil && !id.Ref.MatchString(c.SourceRepositoryRef) {
		return fmt.Errorf("wrong source ref: certificate has %q, policy wants one matching %s", c.SourceRepositoryRef, id.Ref)
	}
	if id.BuildConfig != nil && !id.BuildConfig.MatchString(c.BuildConfigURI) {
		return fmt.Errorf("wrong build config: certificate has %q, policy wants one matching %s", c.BuildConfigURI, id.BuildConfig)
	}
	return nil
}

func extSummary(c *certificate.Summary) string {
	var b strings.Builder
	if c.SourceRepositoryURI != "" {
		fmt.Fprintf(&b, ", repo %s", c.SourceRepositoryURI)
	}
	if c.SourceRepositoryRef != "" {
		fmt.Fprintf(&b, ", ref %s", c.SourceRepositoryRef)
	}
	if c.BuildConfigURI != "" {
		fmt.Fprintf(&b, ", build config %s", c.BuildConfigURI)
	}
	return b.String()
}

// checkDigests requires every artifact of the release to be a subject of
// the provenance, matched by digest.
func checkDigests(artifacts []statement.Subject, st *intoto.Statement) check.Check {
	subj := st.GetSubject()
	if len(subj) > MaxSubjects {
		return check.Fail(CheckDigests, "the provenance has %d subjects, the limit is %d", len(subj), MaxSubjects)
	}
	if len(artifacts) == 0 {
		return check.Fail(CheckDigests, "the release lists no artifacts")
	}
	byDigest := make(map[string]*intoto.ResourceDescriptor, len(subj))
	for _, s := range subj {
		for alg, d := range s.GetDigest() {
			byDigest[alg+":"+strings.ToLower(d)] = s
		}
	}
	var missing []string
	for _, a := range artifacts {
		// A subject matches by any algorithm both sides have; then
		// every algorithm both have must agree.
		want := a.Digest.Set()
		var found *intoto.ResourceDescriptor
		for _, alg := range statement.DigestAlgs {
			if d, ok := want[alg]; ok && found == nil {
				found = byDigest[alg+":"+d]
			}
		}
		if found == nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", a.Name, digestString(a.Digest)))
			continue
		}
		for alg, d := range want {
			if pd, ok := found.GetDigest()[alg]; ok && !strings.EqualFold(pd, d) {
				return check.Fail(CheckDigests, "artifact %s: provenance subject %q has %s %s but the release says %s", a.Name, found.GetName(), alg, pd, d)
			}
		}
	}
	if len(missing) > 0 {
		var have []string
		for _, s := range subj {
			algs := slices.Sorted(func(yield func(string) bool) {
				for alg := range s.GetDigest() {
					if !yield(alg) {
						return
					}
				}
			})
			have = append(have, fmt.Sprintf("%s [%s]", s.GetName(), strings.Join(algs, ",")))
		}
		return check.Fail(CheckDigests, "artifact digest not in the provenance subject: %s; the provenance covers %s", strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return check.Pass(CheckDigests, "all %d artifacts are subjects of the provenance (%d subjects)", len(artifacts), len(subj))
}

func digestString(d statement.Digest) string {
	for _, alg := range statement.DigestAlgs {
		if v := d.Get(alg); v != "" {
			return alg + ":" + v
		}
	}
	return "no digest"
}

// predicate parses the SLSA v1 predicate of a verified statement.
func predicate(st *intoto.Statement) (*slsa.Provenance, error) {
	if st.GetPredicateType() != PredicateSLSAv1 {
		return nil, fmt.Errorf("the provenance predicate is %q; attestlog accepts SLSA provenance v1 (%s) only", st.GetPredicateType(), PredicateSLSAv1)
	}
	pb, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("SLSA v1 predicate: %v", err)
	}
	var p slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(pb, &p); err != nil {
		return nil, fmt.Errorf("SLSA v1 predicate: %v", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("SLSA v1 predicate: %v", err)
	}
	return &p, nil
}

// normalizeRepo reduces a repository reference ("git+https://host/o/r@refs/…",
// "https://host/o/r.git", "https://host/o/r/") to "https://host/o/r" in
// lower case, so the release, the provenance and the certificate compare.
func normalizeRepo(s string) string {
	s = strings.TrimPrefix(s, "git+")
	if i := strings.LastIndexByte(s, '@'); i > strings.Index(s, "://")+3 && strings.Contains(s, "://") {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	return strings.ToLower(s)
}

func checkCommit(src statement.Source, p *slsa.Provenance, c *certificate.Summary) check.Check {
	want := strings.ToLower(src.Commit)
	repo := normalizeRepo(src.Repo)
	var dep string
	var seen []string
	for _, rd := range p.GetBuildDefinition().GetResolvedDependencies() {
		seen = append(seen, rd.GetUri())
		if normalizeRepo(rd.GetUri()) != repo {
			continue
		}
		for _, alg := range []string{"gitCommit", "sha1", "sha256"} {
			if d := rd.GetDigest()[alg]; d != "" {
				dep = strings.ToLower(d)
				break
			}
		}
		if dep != "" {
			break
		}
	}
	if dep == "" {
		return check.Fail(CheckCommit, "the provenance has no resolved dependency with a commit for the release's repository %s (it lists %q)", src.Repo, seen)
	}
	if dep != want {
		return check.Fail(CheckCommit, "commit mismatch: the release says %s but the provenance's resolved source dependency is %s", want, dep)
	}
	if c.SourceRepositoryDigest == "" {
		return check.Fail(CheckCommit, "the certificate has no source repository digest (Fulcio extension 1.3.6.1.4.1.57264.1.13): the provenance must be signed by a CI workflow identity")
	}
	if strings.ToLower(c.SourceRepositoryDigest) != want {
		return check.Fail(CheckCommit, "commit mismatch: the release says %s but the certificate's source repository digest is %s", want, c.SourceRepositoryDigest)
	}
	if normalizeRepo(c.SourceRepositoryURI) != repo {
		return check.Fail(CheckCommit, "repository mismatch: the release's source is %s but the certificate's source repository is %q", src.Repo, c.SourceRepositoryURI)
	}
	return check.Pass(CheckCommit, "%s@%s in the release, the provenance's resolved dependency and the certificate", src.Repo, want)
}

func checkRecipe(rel *statement.Release, p *slsa.Provenance, c *certificate.Summary) check.Check {
	bt := p.GetBuildDefinition().GetBuildType()
	ext := p.GetBuildDefinition().GetExternalParameters().AsMap()
	switch bt {
	case BuildTypeRecipe:
		return checkRecipeParams(rel, ext)
	case BuildTypeGitHubWorkflow, BuildTypeGitHubWorkflowSLSA:
		w, _ := ext["workflow"].(map[string]any)
		repo, _ := w["repository"].(string)
		path, _ := w["path"].(string)
		ref, _ := w["ref"].(string)
		if repo == "" || path == "" || ref == "" {
			return check.Fail(CheckRecipe, "build type %s: externalParameters.workflow needs repository, path and ref", bt)
		}
		if normalizeRepo(repo) != normalizeRepo(rel.Source.Repo) {
			return check.Fail(CheckRecipe, "the provenance's workflow ran in %s but the release's source is %s", repo, rel.Source.Repo)
		}
		entry := strings.TrimSuffix(repo, "/") + "/" + strings.TrimPrefix(path, "/") + "@" + ref
		if c.BuildConfigURI != "" && c.BuildConfigURI != entry {
			return check.Fail(CheckRecipe, "the provenance's workflow is %s but the certificate's build config is %s", entry, c.BuildConfigURI)
		}
		return check.Pass(CheckRecipe, "entry point workflow %s (also the certificate's build config); build type %s records the workflow, not the command, so argv %q is replayed by auditors, not compared", entry, bt, rel.Recipe.Argv)
	}
	return check.Fail(CheckRecipe, "build type %q: attestlog cannot match its externalParameters to the recipe (known: %s, %s, %s)", bt, BuildTypeRecipe, BuildTypeGitHubWorkflow, BuildTypeGitHubWorkflowSLSA)
}

func checkRecipeParams(rel *statement.Release, ext map[string]any) check.Check {
	for k := range ext {
		switch k {
		case "repository", "argv", "env", "outputs":
		default:
			return check.Fail(CheckRecipe, "externalParameters has %q, which the release recipe does not record (build type %s allows repository, argv, env, outputs)", k, BuildTypeRecipe)
		}
	}
	repo, _ := ext["repository"].(string)
	if normalizeRepo(repo) != normalizeRepo(rel.Source.Repo) {
		return check.Fail(CheckRecipe, "externalParameters.repository is %q but the release's source is %s", repo, rel.Source.Repo)
	}
	argv, ok := stringList(ext["argv"])
	if !ok || !slices.Equal(argv, rel.Recipe.Argv) {
		return check.Fail(CheckRecipe, "argv mismatch: the provenance ran %q but the release recipe says %q", ext["argv"], rel.Recipe.Argv)
	}
	env := map[string]string{}
	if e, present := ext["env"]; present {
		m, ok := e.(map[string]any)
		if !ok {
			return check.Fail(CheckRecipe, "externalParameters.env must be an object of strings")
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return check.Fail(CheckRecipe, "externalParameters.env.%s must be a string", k)
			}
			env[k] = s
		}
	}
	if len(env) != len(rel.Recipe.Env) {
		return check.Fail(CheckRecipe, "env mismatch: the provenance's build environment has %d variables, the release recipe %d", len(env), len(rel.Recipe.Env))
	}
	for k, v := range rel.Recipe.Env {
		if pv, ok := env[k]; !ok || pv != v {
			return check.Fail(CheckRecipe, "env mismatch: %s is %q in the release recipe but %q in the provenance", k, v, pv)
		}
	}
	if o, present := ext["outputs"]; present {
		outs, ok := stringList(o)
		if !ok || !slices.Equal(outs, rel.Recipe.Outputs) {
			return check.Fail(CheckRecipe, "outputs mismatch: the provenance has %q, the release recipe %q", o, rel.Recipe.Outputs)
		}
	}
	return check.Pass(CheckRecipe, "argv %q and env (%d variables) equal the provenance's externalParameters", rel.Recipe.Argv, len(env))
}

func stringList(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

func checkBuilderID(b *policy.BuildIdentity, p *slsa.Provenance) check.Check {
	id := p.GetRunDetails().GetBuilder().GetId()
	bt := p.GetBuildDefinition().GetBuildType()
	if b == nil {
		return check.Fail(CheckBuilderID, "builder id %s, build type %s: no builder of the policy matched the signer, so none allows them", id, bt)
	}
	if len(b.BuilderIDs) > 0 && !slices.Contains(b.BuilderIDs, id) {
		return check.Fail(CheckBuilderID, "builder id %q is not allowed for builder %s (builder-id= %q)", id, b.Name, b.BuilderIDs)
	}
	if len(b.BuildTypes) > 0 && !slices.Contains(b.BuildTypes, bt) {
		return check.Fail(CheckBuilderID, "build type %q is not allowed for builder %s (build-type= %q)", bt, b.Name, b.BuildTypes)
	}
	var open []string
	if len(b.BuilderIDs) == 0 {
		open = append(open, "builder id")
	}
	if len(b.BuildTypes) == 0 {
		open = append(open, "build type")
	}
	note := ""
	if len(open) > 0 {
		note = fmt.Sprintf(" (builder %s does not restrict the %s)", b.Name, strings.Join(open, " or "))
	}
	return check.Pass(CheckBuilderID, "builder id %s, build type %s%s", id, bt, note)
}
