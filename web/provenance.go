package web

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// ProvenanceView is what a release's provenance bundle says, decoded but
// not verified: the explorer shows the claims, and 'attestlog verify' and
// the auditor check them against a policy's Sigstore trusted root and
// builder lines.
type ProvenanceView struct {
	// Size is the bundle's size in bytes.
	Size int `json:"size"`
	// MediaType is the bundle's media type.
	MediaType string `json:"media_type,omitempty"`
	// Certificate identity (Fulcio): OIDC issuer and subject (a URI or an
	// email address), and the source repository extensions.
	Issuer      string `json:"issuer,omitempty"`
	Subject     string `json:"subject,omitempty"`
	Repo        string `json:"repo,omitempty"`
	Commit      string `json:"commit,omitempty"`
	Ref         string `json:"ref,omitempty"`
	BuildConfig string `json:"build_config,omitempty"`
	// BuilderID and BuildType are from the SLSA v1 predicate.
	BuilderID     string `json:"builder_id,omitempty"`
	BuildType     string `json:"build_type,omitempty"`
	PredicateType string `json:"predicate_type,omitempty"`
	// Subjects counts the artifacts the provenance statement names.
	Subjects int `json:"subjects"`
	// Problems lists what could not be decoded.
	Problems []string `json:"problems,omitempty"`
	// Bundle is the Sigstore bundle as logged.
	Bundle json.RawMessage `json:"bundle"`
}

// Fulcio certificate extension OIDs
// (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
var (
	oidIssuerV1     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidRepoURI      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
	oidRepoDigest   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}
	oidRepoRef      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}
	oidBuildConfURI = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 18}
)

// decodeProvenance reads the claims of a Sigstore bundle carrying an
// in-toto statement with SLSA v1 provenance. It never fails: what cannot
// be decoded is listed in Problems.
func decodeProvenance(b []byte) *ProvenanceView {
	v := &ProvenanceView{Size: len(b), Bundle: json.RawMessage(b)}
	if !json.Valid(b) {
		v.Bundle = nil
		v.Problems = append(v.Problems, "the bundle is not valid JSON")
		return v
	}
	// The Sigstore protobuf message, as sigstore-go reads it: any JSON
	// spelling protojson accepts (snake_case keys, unpadded base64).
	var bundle protobundle.Bundle
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &bundle); err != nil {
		v.Problems = append(v.Problems, fmt.Sprintf("not a Sigstore bundle: %v", err))
		return v
	}
	v.MediaType = bundle.GetMediaType()
	var der []byte
	switch vm := bundle.GetVerificationMaterial(); {
	case vm.GetCertificate() != nil:
		der = vm.GetCertificate().GetRawBytes()
	case len(vm.GetX509CertificateChain().GetCertificates()) > 0:
		der = vm.GetX509CertificateChain().GetCertificates()[0].GetRawBytes()
	}
	if len(der) == 0 {
		v.Problems = append(v.Problems, "no signing certificate (a bundle signed with a public key names no identity)")
	} else if cert, err := x509.ParseCertificate(der); err != nil {
		v.Problems = append(v.Problems, fmt.Sprintf("the certificate does not parse: %v", err))
	} else {
		v.readCertificate(cert)
	}
	env := bundle.GetDsseEnvelope()
	if env == nil {
		v.Problems = append(v.Problems, "no DSSE envelope (a message-signature bundle carries no provenance statement)")
		return v
	}
	payload := env.GetPayload()
	var st struct {
		Subject       []json.RawMessage `json:"subject"`
		PredicateType string            `json:"predicateType"`
		Predicate     struct {
			BuildDefinition struct {
				BuildType string `json:"buildType"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		v.Problems = append(v.Problems, fmt.Sprintf("the DSSE payload is not an in-toto statement: %v", err))
		return v
	}
	v.PredicateType = st.PredicateType
	v.Subjects = len(st.Subject)
	v.BuildType = st.Predicate.BuildDefinition.BuildType
	v.BuilderID = st.Predicate.RunDetails.Builder.ID
	return v
}

func (v *ProvenanceView) readCertificate(c *x509.Certificate) {
	switch {
	case len(c.URIs) > 0:
		v.Subject = c.URIs[0].String()
	case len(c.EmailAddresses) > 0:
		v.Subject = c.EmailAddresses[0]
	}
	for _, e := range c.Extensions {
		var dst *string
		switch {
		case e.Id.Equal(oidIssuerV1):
			if v.Issuer == "" {
				v.Issuer = string(bytes.ToValidUTF8(e.Value, []byte("?"))) // a raw string, not DER
			}
			continue
		case e.Id.Equal(oidIssuerV2):
			dst = &v.Issuer
		case e.Id.Equal(oidRepoURI):
			dst = &v.Repo
		case e.Id.Equal(oidRepoDigest):
			dst = &v.Commit
		case e.Id.Equal(oidRepoRef):
			dst = &v.Ref
		case e.Id.Equal(oidBuildConfURI):
			dst = &v.BuildConfig
		default:
			continue
		}
		var s string
		if _, err := asn1.UnmarshalWithParams(e.Value, &s, "utf8"); err == nil {
			*dst = s
		}
	}
}
