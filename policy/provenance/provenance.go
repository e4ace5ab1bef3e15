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
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

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
	fsys     fs.FS // where rootPath is read from; nil: the file system
	sigstoreState
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
	return NewFS(pp, nil)
}

// NewFS is New reading the sigstore-root file from fsys (by the name the
// policy gives, slash-separated) when fsys is not nil: for a verifier
// with its policy's files in memory (the WebAssembly client).
func NewFS(pp *policy.ProvenancePolicy, fsys fs.FS) (*Verifier, error) {
	v := &Verifier{pp: pp, rootPath: pp.SigstoreRoot, fsys: fsys}
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
	if err := v.loadRoot(); err != nil {
		return nil, err
	}
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

// Admit is the one rule of whether a release's provenance admits it under
// pp — what a log's admission, an auditor's verification of every entry
// and a client's decision all require: every check of Check passed. A
// release without provenance is admitted only when pp does not require
// it. Errors wrap ErrConfig when pp itself is broken, ErrRejected
// otherwise.
func Admit(rel *statement.Release, subjects []statement.Subject, pp *policy.ProvenancePolicy, now time.Time) error {
	cs, _, err := Check(rel, subjects, pp, now)
	if err != nil {
		return err
	}
	return Rejection(cs)
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
	return v.checkBundle(rel, subjects, now)
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
	return v.verifyKeyless(b, now)
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

// PrefilterKeyless is a cheap first look at a keyless entry, before
// VerifyKeylessEntry's cryptography: it fails unless the leaf certificate
// the bundle carries names an identity of one of the policy's keyless
// operators. The certificate is not verified here — a match proves
// nothing, and the entry must still pass VerifyKeylessEntry — but a
// mismatch is final: a log turns away a flood of bundles from identities
// its policy does not name for the cost of parsing them.
func PrefilterKeyless(entry []byte, pp *policy.ProvenancePolicy) error {
	v, err := verifierFor(pp)
	if err != nil {
		return err
	}
	if v.configErr != nil {
		return fmt.Errorf("%w: the policy names no keyless-operator (and no sigstore-root)", ErrUnauthorized)
	}
	return v.prefilterKeyless(entry)
}

// IsBundle reports whether b looks like a Sigstore bundle (a JSON object
// whose mediaType is application/vnd.dev.sigstore.bundle…) rather than
// our DSSE envelope (which has no mediaType). It does not validate b.
func IsBundle(b []byte) bool {
	return len(b) <= statement.MaxEntrySize && statement.IsBundle(b)
}
