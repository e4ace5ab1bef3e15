// Package provenancetest makes real Sigstore bundles and trusted roots for
// tests, offline: a virtual Sigstore whose Rekor log is sigstore-go's
// pkg/testing/ca VirtualSigstore and whose Fulcio CA and timestamp
// authority are generated here (the virtual Sigstore's own Fulcio cannot
// issue certificates with the source repository extensions a CI identity
// has, and its TSA certificate lives only five minutes).
//
// Typical use in a test of admission or verify:
//
//	ss, _ := provenancetest.New()
//	ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json"))
//	id := provenancetest.GitHubWorkflow("https://github.com/acme/enclave", ".github/workflows/release.yml", "refs/tags/v1.0.0", commit)
//	policyText := "sigstore-root trusted_root.json\n" + id.PolicyLine("builder", "acme-release") + "\n"
//	bundleJSON, _ := ss.SignProvenance(id, provenancetest.RecipeProvenance(subjects, release), nil)
//	release.Provenance = bundleJSON
//
// Nothing here verifies anything: verification is policy/provenance's, with
// sigstore-go.
package provenancetest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/provenance"
)

// GitHubIssuer is GitHub Actions' OIDC issuer.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// GitHubHostedRunner is the SLSA builder id of GitHub-hosted runners.
const GitHubHostedRunner = "https://github.com/actions/runner/github-hosted"

// Sigstore is a virtual Sigstore instance: Fulcio CA, timestamp authority
// and Rekor log, all keys in memory. Its trusted root is valid from a day
// before New to a day after.
type Sigstore struct {
	vs *ca.VirtualSigstore

	fulcioRoot, fulcioInter *x509.Certificate
	fulcioKey               *ecdsa.PrivateKey

	tsaRoot, tsaInter, tsaLeaf *x509.Certificate
	tsaKey                     *ecdsa.PrivateKey

	start, end time.Time
}

// New makes a virtual Sigstore.
func New() (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	s := &Sigstore{vs: vs, start: now.Add(-24 * time.Hour), end: now.Add(24 * time.Hour)}
	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	s.fulcioRoot, err = s.caCert("virtual-fulcio-root", nil, rootKey, rootKey, nil)
	if err != nil {
		return nil, err
	}
	if s.fulcioKey, err = newKey(); err != nil {
		return nil, err
	}
	s.fulcioInter, err = s.caCert("virtual-fulcio-intermediate", s.fulcioRoot, s.fulcioKey, rootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning})
	if err != nil {
		return nil, err
	}
	tsaRootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	if s.tsaRoot, err = s.caCert("virtual-tsa-root", nil, tsaRootKey, tsaRootKey, nil); err != nil {
		return nil, err
	}
	tsaInterKey, err := newKey()
	if err != nil {
		return nil, err
	}
	if s.tsaInter, err = s.caCert("virtual-tsa-intermediate", s.tsaRoot, tsaInterKey, tsaRootKey, []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}); err != nil {
		return nil, err
	}
	if s.tsaKey, err = newKey(); err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "virtual-tsa"},
		NotBefore:    s.start, NotAfter: s.end,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	if s.tsaLeaf, err = create(tmpl, s.tsaInter, &s.tsaKey.PublicKey, tsaInterKey); err != nil {
		return nil, err
	}
	return s, nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func (s *Sigstore) caCert(cn string, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey, eku []x509.ExtKeyUsage) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"attestlog test"}},
		NotBefore:    s.start, NotAfter: s.end,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent = tmpl
	}
	return create(tmpl, parent, &key.PublicKey, parentKey)
}

func create(tmpl, parent *x509.Certificate, pub any, priv crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// TrustedRoot returns the trusted-root JSON
// (application/vnd.dev.sigstore.trustedroot+json;version=0.1) of s: its
// Fulcio CA, timestamp authority and Rekor log, and no CT log (so
// 'sigstore-require sct=auto' requires no SCT).
func (s *Sigstore) TrustedRoot() ([]byte, error) {
	fulcio := &root.FulcioCertificateAuthority{
		Root: s.fulcioRoot, Intermediates: []*x509.Certificate{s.fulcioInter},
		ValidityPeriodStart: s.start, ValidityPeriodEnd: s.end,
		URI: "https://fulcio.virtual.attestlog.test",
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root: s.tsaRoot, Intermediates: []*x509.Certificate{s.tsaInter}, Leaf: s.tsaLeaf,
		ValidityPeriodStart: s.start, ValidityPeriodEnd: s.end,
		URI: "https://tsa.virtual.attestlog.test",
	}
	rekor := map[string]*root.TransparencyLog{}
	for id, l := range s.vs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			return nil, err
		}
		c := *l
		c.ID = raw // the virtual Sigstore keeps the hex string; the JSON holds the raw key id
		c.ValidityPeriodStart, c.ValidityPeriodEnd = s.start, s.end
		rekor[id] = &c
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{fulcio}, nil,
		[]root.TimestampingAuthority{tsa}, rekor)
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}

// WriteTrustedRoot writes TrustedRoot to path.
func (s *Sigstore) WriteTrustedRoot(path string) error {
	b, err := s.TrustedRoot()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Identity is what a Fulcio certificate says about its subject: OIDC
// issuer, subject (a URI or an email address) and the source repository
// extensions a CI token carries. Empty extensions are left out.
type Identity struct {
	Issuer      string
	Subject     string
	Repo        string // source repository URI (OID 1.3.6.1.4.1.57264.1.12)
	Commit      string // source repository digest (…1.13)
	Ref         string // source repository ref (…1.14)
	BuildConfig string // build config URI (…1.18)
}

// GitHubWorkflow is the identity GitHub Actions gives the workflow file
// workflowPath of repo running at ref on commit.
func GitHubWorkflow(repo, workflowPath, ref, commit string) Identity {
	cfg := strings.TrimSuffix(repo, "/") + "/" + strings.TrimPrefix(workflowPath, "/") + "@" + ref
	return Identity{Issuer: GitHubIssuer, Subject: cfg, Repo: repo, Commit: commit, Ref: ref, BuildConfig: cfg}
}

// PolicyLine returns a policy line (kind "builder" or "keyless-operator")
// that accepts exactly this identity: issuer, subject and, when set, repo.
func (id Identity) PolicyLine(kind, name string) string {
	l := fmt.Sprintf("%s %s issuer=%s subject=%s", kind, name, id.Issuer, id.Subject)
	if id.Repo != "" {
		l += " repo=" + id.Repo
	}
	return l
}

// SignOptions change how a bundle is made, for negative tests. The zero
// value (or nil) makes a normal bundle: certificate valid from a minute
// before now for ten minutes, logged and timestamped now.
type SignOptions struct {
	// CertNotBefore and CertLifetime set the certificate's validity.
	CertNotBefore time.Time
	CertLifetime  time.Duration
	// SignedAt is the transparency-log integration time and the RFC 3161
	// timestamp time (default now).
	SignedAt time.Time
	// NoTLog and NoTimestamp leave out the Rekor entry / the RFC 3161
	// timestamp.
	NoTLog, NoTimestamp bool
}

// SignDSSE signs payload in a DSSE envelope with a fresh Fulcio certificate
// for id and returns the Sigstore bundle v0.3 JSON.
func (s *Sigstore) SignDSSE(id Identity, payloadType string, payload []byte, o *SignOptions) ([]byte, error) {
	if o == nil {
		o = &SignOptions{}
	}
	now := time.Now()
	notBefore, life, signedAt := o.CertNotBefore, o.CertLifetime, o.SignedAt
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Minute)
	}
	if life == 0 {
		life = 10 * time.Minute
	}
	if signedAt.IsZero() {
		signedAt = now
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	leaf, err := s.leafCert(id, &key.PublicKey, notBefore, notBefore.Add(life))
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(dsse.PAE(payloadType, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
	}
	if !o.NoTLog {
		env := &dsse.Envelope{
			PayloadType: payloadType,
			Payload:     base64.StdEncoding.EncodeToString(payload),
			Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
		}
		tle, err := s.tlogEntry(leaf, env, sig, signedAt)
		if err != nil {
			return nil, fmt.Errorf("rekor entry: %w", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	if !o.NoTimestamp {
		tsr, err := s.timestamp(sig, signedAt)
		if err != nil {
			return nil, fmt.Errorf("timestamp: %w", err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}
	b := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: payloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return protojson.Marshal(b)
}

func (s *Sigstore) leafCert(id Identity, pub *ecdsa.PublicKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if strings.Contains(id.Subject, "://") {
		u, err := url.Parse(id.Subject)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{id.Subject}
	}
	for _, e := range []struct {
		oid asn1.ObjectIdentifier
		v   string
	}{
		{certificate.OIDIssuerV2, id.Issuer},
		{certificate.OIDSourceRepositoryURI, id.Repo},
		{certificate.OIDSourceRepositoryDigest, id.Commit},
		{certificate.OIDSourceRepositoryRef, id.Ref},
		{certificate.OIDBuildConfigURI, id.BuildConfig},
	} {
		if e.v == "" {
			continue
		}
		der, err := asn1.MarshalWithParams(e.v, "utf8")
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: e.oid, Value: der})
	}
	return create(tmpl, s.fulcioInter, pub, s.fulcioKey)
}

// tlogEntry logs the envelope in the virtual Rekor (dsse v0.0.1 entry,
// inclusion proof with signed checkpoint) and adds the signed entry
// timestamp, which tlog.NewEntry keeps out of the protobuf.
func (s *Sigstore) tlogEntry(leaf *x509.Certificate, env *dsse.Envelope, sig []byte, at time.Time) (*protorekor.TransparencyLogEntry, error) {
	e, err := s.vs.GenerateTlogEntry(leaf, env, sig, at.Unix(), true)
	if err != nil {
		return nil, err
	}
	tle := proto.Clone(e.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
	})
	if err != nil {
		return nil, err
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}

// timestamp returns an RFC 3161 response over sig at time at.
func (s *Sigstore) timestamp(sig []byte, at time.Time) ([]byte, error) {
	req, err := timestamp.CreateRequest(bytes.NewReader(sig), &timestamp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, err
	}
	r, err := timestamp.ParseRequest(req)
	if err != nil {
		return nil, err
	}
	ts := timestamp.Timestamp{
		HashAlgorithm: r.HashAlgorithm,
		HashedMessage: r.HashedMessage,
		Time:          at,
		Policy:        asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
	}
	return ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaKey, crypto.SHA256)
}

// Provenance is an SLSA v1 provenance statement to sign.
type Provenance struct {
	Subjects           []statement.Subject
	BuildType          string
	ExternalParameters map[string]any
	// Repo and Commit become the resolved dependency
	// git+REPO@REF {gitCommit: COMMIT}.
	Repo, Ref, Commit string
	BuilderID         string
}

// RecipeProvenance is the provenance of rel's artifacts (subjects) in
// attestlog's recipe build type, agreeing with rel in every checked field:
// subjects, repository, commit, argv, env and outputs.
func RecipeProvenance(subjects []statement.Subject, rel *statement.Release) Provenance {
	ext := map[string]any{"repository": rel.Source.Repo, "argv": toAny(rel.Recipe.Argv)}
	if len(rel.Recipe.Env) > 0 {
		env := map[string]any{}
		for k, v := range rel.Recipe.Env {
			env[k] = v
		}
		ext["env"] = env
	}
	if len(rel.Recipe.Outputs) > 0 {
		ext["outputs"] = toAny(rel.Recipe.Outputs)
	}
	return Provenance{
		Subjects: subjects, BuildType: provenance.BuildTypeRecipe, ExternalParameters: ext,
		Repo: rel.Source.Repo, Ref: "refs/heads/main", Commit: rel.Source.Commit, BuilderID: GitHubHostedRunner,
	}
}

// GitHubProvenance is what actions/attest-build-provenance records for a
// workflow run of id (made by GitHubWorkflow) building subjects.
func GitHubProvenance(subjects []statement.Subject, id Identity, workflowPath string) Provenance {
	return Provenance{
		Subjects:  subjects,
		BuildType: provenance.BuildTypeGitHubWorkflow,
		ExternalParameters: map[string]any{"workflow": map[string]any{
			"repository": id.Repo, "path": workflowPath, "ref": id.Ref,
		}},
		Repo: id.Repo, Ref: id.Ref, Commit: id.Commit, BuilderID: GitHubHostedRunner,
	}
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// Statement returns the in-toto Statement v1 JSON of p.
func (p Provenance) Statement() ([]byte, error) {
	type rd struct {
		Name   string            `json:"name,omitempty"`
		URI    string            `json:"uri,omitempty"`
		Digest map[string]string `json:"digest"`
	}
	var subj []rd
	for _, s := range p.Subjects {
		subj = append(subj, rd{Name: s.Name, Digest: s.Digest.Set()})
	}
	st := map[string]any{
		"_type":         statement.StatementType,
		"subject":       subj,
		"predicateType": provenance.PredicateSLSAv1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType":          p.BuildType,
				"externalParameters": p.ExternalParameters,
				"resolvedDependencies": []rd{{
					URI:    "git+" + p.Repo + "@" + p.Ref,
					Digest: map[string]string{"gitCommit": p.Commit},
				}},
			},
			"runDetails": map[string]any{
				"builder":  map[string]any{"id": p.BuilderID},
				"metadata": map[string]any{"invocationId": "https://ci.virtual.attestlog.test/run/1"},
			},
		},
	}
	return json.Marshal(st)
}

// SignProvenance signs p's statement as id and returns the bundle JSON, to
// be set as statement.Release.Provenance.
func (s *Sigstore) SignProvenance(id Identity, p Provenance, o *SignOptions) ([]byte, error) {
	st, err := p.Statement()
	if err != nil {
		return nil, err
	}
	return s.SignDSSE(id, statement.PayloadType, st, o)
}

// SignStatement signs a release (or any) statement payload — e.g. from
// statement.EncodeRelease — keylessly as id and returns the bundle JSON:
// the body of a keyless POST /add.
func (s *Sigstore) SignStatement(id Identity, payload []byte, o *SignOptions) ([]byte, error) {
	return s.SignDSSE(id, statement.PayloadType, payload, o)
}

// Respelling is a way of writing a bundle's JSON that sigstore-go's parser
// (protojson) accepts as the same message.
type Respelling int

const (
	// SnakeCaseDSSE spells the dsseEnvelope key dsse_envelope.
	SnakeCaseDSSE Respelling = iota
	// UnpaddedPayload drops the base64 '=' padding of the DSSE payload
	// and signatures.
	UnpaddedPayload
	// URLSafePayload writes the DSSE payload and signatures in URL-safe
	// base64.
	URLSafePayload
	// Indented indents the JSON (and sorts its keys).
	Indented
)

// Reencode respells a bundle without changing the message it encodes:
// what a submitter may send the log in place of the bundle a signer made.
func Reencode(b []byte, r Respelling) ([]byte, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	env, ok := m["dsseEnvelope"].(map[string]any)
	if !ok {
		env, ok = m["dsse_envelope"].(map[string]any)
	}
	if !ok {
		return nil, fmt.Errorf("the bundle has no dsseEnvelope")
	}
	rewrite := func(f func(string) (string, error)) error {
		var err error
		s, _ := env["payload"].(string)
		if env["payload"], err = f(s); err != nil {
			return err
		}
		sigs, _ := env["signatures"].([]any)
		for _, x := range sigs {
			sig, _ := x.(map[string]any)
			s, _ := sig["sig"].(string)
			if sig["sig"], err = f(s); err != nil {
				return err
			}
		}
		return nil
	}
	switch r {
	case SnakeCaseDSSE:
		delete(m, "dsseEnvelope")
		delete(m, "dsse_envelope")
		m["dsse_envelope"] = env
	case UnpaddedPayload:
		if err := rewrite(func(s string) (string, error) { return strings.TrimRight(s, "="), nil }); err != nil {
			return nil, err
		}
	case URLSafePayload:
		if err := rewrite(func(s string) (string, error) {
			raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
			if err != nil {
				raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
			}
			return base64.URLEncoding.EncodeToString(raw), err
		}); err != nil {
			return nil, err
		}
	case Indented:
		return json.MarshalIndent(m, "", "  ")
	}
	return json.Marshal(m)
}
