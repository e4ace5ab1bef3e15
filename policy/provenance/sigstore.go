//go:build !attestlog_nosigstore

package provenance

// The Sigstore verification itself (sigstore-go), left out of builds
// tagged attestlog_nosigstore (nosigstore.go).

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
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

// sigstoreState is the sigstore-go side of a Verifier.
type sigstoreState struct {
	root *root.TrustedRoot
	sv   *verify.Verifier
}

// loadRoot reads the policy's trusted-root JSON and makes the sigstore-go
// verifier for it.
func (v *Verifier) loadRoot() error {
	pp := v.pp
	var b []byte
	var err error
	if v.fsys != nil {
		b, err = fs.ReadFile(v.fsys, path.Clean(strings.TrimPrefix(pp.SigstoreRoot, "./")))
	} else {
		b, err = os.ReadFile(pp.SigstoreRoot)
	}
	if err != nil {
		return fmt.Errorf("%w: sigstore-root: %v", ErrConfig, err)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return fmt.Errorf("%w: sigstore-root %s: not a Sigstore trusted root: %v", ErrConfig, pp.SigstoreRoot, err)
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
			return fmt.Errorf("%w: sigstore-require sct=yes but the trusted root %s lists no CT logs", ErrConfig, pp.SigstoreRoot)
		}
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	case policy.SCTAuto, "":
		if len(tr.CTLogs()) > 0 {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
	}
	sv, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	v.root, v.sv = tr, sv
	return nil
}

// checkBundle is Check of a release with provenance, under a usable root.
func (v *Verifier) checkBundle(rel *statement.Release, subjects []statement.Subject, now time.Time) (check.List, *Identity, error) {
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

// verifyKeyless is VerifyKeylessStatement under a usable root.
func (v *Verifier) verifyKeyless(b []byte, now time.Time) ([]byte, *Identity, error) {
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

// prefilterKeyless matches a keyless bundle's leaf certificate, read but
// not verified, against the policy's keyless operators.
func (v *Verifier) prefilterKeyless(b []byte) error {
	bn, err := parseBundle(b, statement.MaxEntrySize)
	if err != nil {
		return err
	}
	vc, err := bn.VerificationContent()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return fmt.Errorf("%w: the bundle has no Fulcio certificate", ErrMalformed)
	}
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return fmt.Errorf("%w: the bundle's certificate: %v", ErrMalformed, err)
	}
	if _, err := matchAny(v.pp.KeylessOperators, &sum, "keyless-operator"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	return nil
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
