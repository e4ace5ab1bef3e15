package policy

// The provenance section of a policy: which Sigstore trusted root, which CI
// build identities and which keyless operators a verifier accepts for
// build provenance (a Sigstore bundle carrying SLSA v1 provenance) and for
// release statements signed keylessly. The checks themselves are in
// policy/provenance; this file only parses.
//
//	sigstore-root FILE                   # trusted-root JSON (public-good, private or test root);
//	                                     # relative to the policy file's directory
//	builder NAME issuer=URL subject=EXACT|subject-regex=RE [repo=URL] [ref=RE]
//	        [build-config=RE] [builder-id=URI]... [build-type=URI]...
//	                                     # a CI identity whose provenance is accepted
//	keyless-operator NAME issuer=URL subject=EXACT|subject-regex=RE [repo=URL] [ref=RE]
//	        [build-config=RE]            # may publish releases as a Sigstore bundle
//	provenance required|optional         # default: required when a builder line exists
//	sigstore-require [tlog=N] [timestamps=N] [sct=yes|no|auto]
//	                                     # defaults: tlog=1 timestamps=1 sct=auto
//
// A builder or keyless-operator line is one line; the wrapped lines above
// are only for reading. Regular expressions (subject-regex, ref,
// build-config) are Go RE2 syntax and must match the whole value; they
// cannot contain '#' or spaces (the line syntax), use \x23 and \x20.
// builder-id and build-type may be repeated to allow several values;
// when a builder line gives none, that builder's provenance may name any
// builder id or build type (the recipe check still only knows the build
// types documented in policy/provenance).
//
// repo= is compared with the certificate's source repository URI (Fulcio
// OID 1.3.6.1.4.1.57264.1.12), ref= with its source repository ref
// (…1.14, e.g. refs/tags/v1.2.0) and build-config= with its build config
// URI (…1.18, e.g. https://github.com/acme/enclave/.github/workflows/release.yml@refs/tags/v1.2.0).
//
// sct=auto requires an embedded SCT when the trusted root lists CT logs.
// timestamps=0 verifies the certificate at the current time, which only
// long-lived certificates pass; tlog=0 accepts bundles without a
// transparency-log entry.

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Provenance requirement values.
const (
	ProvenanceRequired = "required"
	ProvenanceOptional = "optional"
)

// SCT requirement values of sigstore-require.
const (
	SCTAuto = "auto"
	SCTYes  = "yes"
	SCTNo   = "no"
)

// MaxBuildIdentities bounds the builder and keyless-operator lines.
const MaxBuildIdentities = 64

// ProvenancePolicy holds the policy's requirements on build provenance and
// keyless release signatures. Its directives are registered in this file.
type ProvenancePolicy struct {
	// SigstoreRoot is the trusted-root JSON file named by sigstore-root.
	// Load makes a relative name relative to the policy file's directory;
	// after Parse alone it is as written. Empty when the policy has no
	// sigstore-root line: then no provenance can be verified.
	SigstoreRoot string

	// Requirement is ProvenanceRequired, ProvenanceOptional or "" when
	// the policy has no provenance line; see Required.
	Requirement string

	// Builders are the CI identities whose provenance is accepted.
	Builders []BuildIdentity

	// KeylessOperators are the CI identities that may sign release
	// statements as Sigstore bundles instead of with an operator key.
	// Their BuilderIDs and BuildTypes are empty.
	KeylessOperators []BuildIdentity

	// TLogEntries is how many verified transparency-log entries a bundle
	// needs (default 1); Timestamps how many observer timestamps (signed
	// RFC 3161 timestamps or log integration times; default 1; 0 means
	// verify the certificate at the current time); SCT is SCTAuto, SCTYes
	// or SCTNo.
	TLogEntries int
	Timestamps  int
	SCT         string

	seen map[string]bool
}

// BuildIdentity is a Sigstore (Fulcio) certificate identity named in the
// policy: OIDC issuer and subject plus optional certificate extensions,
// and for builders the SLSA builder ids and build types allowed.
type BuildIdentity struct {
	Name   string
	Issuer string // exact match on the certificate's OIDC issuer
	// Exactly one of Subject and SubjectRegex is set. SubjectRegex is
	// anchored: it must match the whole subject alternative name.
	Subject      string
	SubjectRegex *regexp.Regexp
	// Repo, when set, must equal the source repository URI extension.
	Repo string
	// Ref and BuildConfig, when set, are anchored regular expressions
	// matched against the source repository ref and build config URI.
	Ref         *regexp.Regexp
	BuildConfig *regexp.Regexp
	// BuilderIDs and BuildTypes, when not empty, list the allowed SLSA
	// runDetails.builder.id and buildDefinition.buildType values.
	BuilderIDs []string
	BuildTypes []string
}

// Required reports whether a release must carry provenance: as the
// provenance line says, else whenever the policy names a builder.
func (pp *ProvenancePolicy) Required() bool {
	switch pp.Requirement {
	case ProvenanceRequired:
		return true
	case ProvenanceOptional:
		return false
	}
	return len(pp.Builders) > 0
}

// Builder returns the builder with the given name, or nil.
func (pp *ProvenancePolicy) Builder(name string) *BuildIdentity {
	for i := range pp.Builders {
		if pp.Builders[i].Name == name {
			return &pp.Builders[i]
		}
	}
	return nil
}

func defaultProvenance() ProvenancePolicy {
	return ProvenancePolicy{TLogEntries: 1, Timestamps: 1, SCT: SCTAuto}
}

// resolvePaths makes a relative sigstore-root relative to the directory of
// the policy file at policyPath. Load calls it.
func (pp *ProvenancePolicy) resolvePaths(policyPath string) {
	if pp.SigstoreRoot != "" && !filepath.IsAbs(pp.SigstoreRoot) {
		pp.SigstoreRoot = filepath.Join(filepath.Dir(policyPath), pp.SigstoreRoot)
	}
}

func init() {
	registerDirective("sigstore-root", provOnce(parseSigstoreRoot))
	registerDirective("builder", parseBuilder)
	registerDirective("keyless-operator", parseKeylessOperator)
	registerDirective("provenance", provOnce(parseProvenanceRequirement))
	registerDirective("sigstore-require", provOnce(parseSigstoreRequire))
}

// provOnce wraps a provenance directive that may be given at most once.
func provOnce(d func(pp *ProvenancePolicy, f []string) error) Directive {
	return func(p *Policy, f []string) error {
		pp := &p.Provenance
		if pp.seen[f[0]] {
			return fmt.Errorf("%s given twice", f[0])
		}
		if err := d(pp, f); err != nil {
			return err
		}
		if pp.seen == nil {
			pp.seen = map[string]bool{}
		}
		pp.seen[f[0]] = true
		return nil
	}
}

func parseSigstoreRoot(pp *ProvenancePolicy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: sigstore-root FILE")
	}
	pp.SigstoreRoot = f[1]
	return nil
}

func parseProvenanceRequirement(pp *ProvenancePolicy, f []string) error {
	if len(f) != 2 || (f[1] != ProvenanceRequired && f[1] != ProvenanceOptional) {
		return errors.New("want: provenance required|optional")
	}
	pp.Requirement = f[1]
	return nil
}

func parseSigstoreRequire(pp *ProvenancePolicy, f []string) error {
	if len(f) < 2 {
		return errors.New("want: sigstore-require [tlog=N] [timestamps=N] [sct=yes|no|auto]")
	}
	kv, err := keyValues(f[1:], "tlog", "timestamps", "sct")
	if err != nil {
		return err
	}
	count := func(k string, dst *int) error {
		v, ok := kv[k]
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 8 {
			return fmt.Errorf("%s=%s: want a number from 0 to 8", k, v)
		}
		*dst = n
		return nil
	}
	if err := count("tlog", &pp.TLogEntries); err != nil {
		return err
	}
	if err := count("timestamps", &pp.Timestamps); err != nil {
		return err
	}
	if v, ok := kv["sct"]; ok {
		if v != SCTYes && v != SCTNo && v != SCTAuto {
			return fmt.Errorf("sct=%s: want yes, no or auto", v)
		}
		pp.SCT = v
	}
	return nil
}

func parseBuilder(p *Policy, f []string) error {
	id, err := parseBuildIdentity(p, f, true)
	if err != nil {
		return err
	}
	p.Provenance.Builders = append(p.Provenance.Builders, *id)
	return nil
}

func parseKeylessOperator(p *Policy, f []string) error {
	id, err := parseBuildIdentity(p, f, false)
	if err != nil {
		return err
	}
	for _, o := range p.Operators {
		if o.Name == id.Name {
			return fmt.Errorf("keyless-operator %q: an operator of that name is already defined", id.Name)
		}
	}
	p.Provenance.KeylessOperators = append(p.Provenance.KeylessOperators, *id)
	return nil
}

func parseBuildIdentity(p *Policy, f []string, builder bool) (*BuildIdentity, error) {
	usage := "want: keyless-operator NAME issuer=URL subject=EXACT|subject-regex=RE [repo=URL] [ref=RE] [build-config=RE]"
	if builder {
		usage = "want: builder NAME issuer=URL subject=EXACT|subject-regex=RE [repo=URL] [ref=RE] [build-config=RE] [builder-id=URI]... [build-type=URI]..."
	}
	if len(f) < 4 || strings.Contains(f[1], "=") {
		return nil, errors.New(usage)
	}
	pp := &p.Provenance
	list := pp.KeylessOperators
	if builder {
		list = pp.Builders
	}
	if len(list) >= MaxBuildIdentities {
		return nil, fmt.Errorf("at most %d %s lines", MaxBuildIdentities, f[0])
	}
	for _, b := range list {
		if b.Name == f[1] {
			return nil, fmt.Errorf("%s %q listed twice", f[0], f[1])
		}
	}
	id := &BuildIdentity{Name: f[1]}
	single := []string{"issuer", "subject", "subject-regex", "repo", "ref", "build-config"}
	seen := map[string]bool{}
	for _, field := range f[2:] {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", field)
		}
		repeatable := builder && (k == "builder-id" || k == "build-type")
		known := repeatable
		for _, s := range single {
			known = known || k == s
		}
		if !known {
			keys := strings.Join(single, ", ")
			if builder {
				keys += ", builder-id, build-type"
			}
			return nil, fmt.Errorf("unknown key %q; known keys: %s", k, keys)
		}
		if seen[k] && !repeatable {
			return nil, fmt.Errorf("key %s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "issuer":
			err = checkIdentityURL(k, v)
			id.Issuer = v
		case "subject":
			id.Subject = v
		case "subject-regex":
			id.SubjectRegex, err = anchored(k, v)
		case "repo":
			err = checkIdentityURL(k, v)
			id.Repo = v
		case "ref":
			id.Ref, err = anchored(k, v)
		case "build-config":
			id.BuildConfig, err = anchored(k, v)
		case "builder-id":
			id.BuilderIDs, err = appendUnique(id.BuilderIDs, k, v)
		case "build-type":
			id.BuildTypes, err = appendUnique(id.BuildTypes, k, v)
		}
		if err != nil {
			return nil, err
		}
	}
	if id.Issuer == "" {
		return nil, fmt.Errorf("%s %s: issuer= is required (the OIDC issuer, e.g. https://token.actions.githubusercontent.com)", f[0], id.Name)
	}
	if (id.Subject == "") == (id.SubjectRegex == nil) {
		return nil, fmt.Errorf("%s %s: exactly one of subject= and subject-regex= is required", f[0], id.Name)
	}
	return id, nil
}

// checkIdentityURL checks an issuer or repository URL. Issuers are URLs
// for every CI provider Fulcio supports; an email-style identity has an
// issuer URL too.
func checkIdentityURL(k, v string) error {
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		return fmt.Errorf("%s=%s: want an http(s) URL", k, v)
	}
	return nil
}

func anchored(k, re string) (*regexp.Regexp, error) {
	r, err := regexp.Compile("^(?:" + re + ")$")
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %v", k, re, err)
	}
	return r, nil
}

func appendUnique(l []string, k, v string) ([]string, error) {
	for _, have := range l {
		if have == v {
			return nil, fmt.Errorf("%s=%s listed twice", k, v)
		}
	}
	if len(l) >= 16 {
		return nil, fmt.Errorf("at most 16 %s values", k)
	}
	return append(l, v), nil
}
