// Package rimtest signs RIMs with a test CA, for tests: NVIDIA's layout
// exactly — an enveloped XML-DSig over the SoftwareIdentity, ECDSA P-384
// with SHA-384, C14N 1.1, SignatureValue as raw r‖s, and a KeyInfo chain
// signer first and root last — so that what it makes is read by
// rim.Verify through the same path as NVIDIA's own RIMs; only the root
// differs (CA.Roots). Typical use: take one of NVIDIA's published RIMs,
// change what a test needs (the tag id of another board, a golden value,
// an index made inactive) and sign it again:
//
//	ca, _ := rimtest.NewCA()
//	forged, _ := ca.Remake(nvidiaVBIOSRIM, rimtest.TagID(otherBoard))
//	verifier.RIMRoots = ca.Roots()
//
// Nothing here verifies anything: verification is policy/gpu/rim's.
package rimtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// CA is a test RIM signing hierarchy: a root and a signer it certified
// (as NVIDIA's CoRIM root certifies, through intermediates, its "RIM
// signer").
type CA struct {
	Root   *x509.Certificate
	Signer *x509.Certificate
	key    *ecdsa.PrivateKey
}

// NewCA makes a root and a signer valid from 2020 to 2040 (NVIDIA's
// samples verify at 2025-06-01; tests may use any time in between).
func NewCA() (*CA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	from, to := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"attestlog TEST ONLY - not NVIDIA"}}
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name("attestlog test CoRIM signing Root CA"), NotBefore: from, NotAfter: to,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signerDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: name("attestlog test RIM Signer"),
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature}, root, &key.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	signer, err := x509.ParseCertificate(signerDER)
	if err != nil {
		return nil, err
	}
	return &CA{Root: root, Signer: signer, key: key}, nil
}

// Roots is a pool holding the CA's root only (a verifier that must
// accept NVIDIA's RIMs too adds Root to rim.Roots()).
func (ca *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// An Edit changes a RIM's SoftwareIdentity before it is signed.
type Edit func(root *etree.Element) error

// TagID sets the SoftwareIdentity's tagId (NVIDIA's: hex SHA-384 naming
// the chip and driver, or the chip, board and VBIOS version).
func TagID(id string) Edit {
	return func(root *etree.Element) error {
		root.CreateAttr("tagId", id)
		return nil
	}
}

// Version sets Meta's colloquialVersion (the driver or VBIOS version).
func Version(v string) Edit {
	return func(root *etree.Element) error {
		meta := child(root, "Meta")
		if meta == nil {
			return errors.New("rimtest: no Meta")
		}
		meta.CreateAttr("colloquialVersion", v)
		return nil
	}
}

// Golden makes measurement index (RIM index: SPDM block index-1) active
// with value as its only golden value.
func Golden(index int, value []byte) Edit {
	return func(root *etree.Element) error {
		m, err := measurement(root, index)
		if err != nil {
			return err
		}
		m.CreateAttr("active", "True")
		m.CreateAttr("alternatives", "1")
		for _, a := range append([]etree.Attr(nil), m.Attr...) {
			if a.Key != "Hash0" && len(a.Key) > 4 && a.Key[:4] == "Hash" {
				m.RemoveAttr(a.FullKey())
			}
		}
		hash := "Hash0"
		for _, a := range m.Attr {
			if a.Key == "Hash0" {
				hash = a.FullKey()
			}
		}
		m.CreateAttr(hash, hex.EncodeToString(value))
		return nil
	}
}

// Inactive makes measurement index inactive: no RIM then says what its
// SPDM block (index+1) must be.
func Inactive(index int) Edit {
	return func(root *etree.Element) error {
		m, err := measurement(root, index)
		if err != nil {
			return err
		}
		m.CreateAttr("active", "False")
		return nil
	}
}

// Remake removes the signature of rim (one of NVIDIA's, or one made
// here), applies the edits in order, and signs the result.
func (ca *CA) Remake(rim []byte, edits ...Edit) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(rim); err != nil {
		return nil, fmt.Errorf("rimtest: %v", err)
	}
	root := doc.Root()
	if root == nil {
		return nil, errors.New("rimtest: no document element")
	}
	if sig := child(root, "Signature"); sig != nil {
		root.RemoveChild(sig)
	}
	for _, e := range edits {
		if err := e(root); err != nil {
			return nil, err
		}
	}
	ctx, err := dsig.NewSigningContext(rawSigner{ca.key}, [][]byte{ca.Signer.Raw, ca.Root.Raw})
	if err != nil {
		return nil, err
	}
	if err := ctx.SetSignatureMethod(dsig.ECDSASHA384SignatureMethod); err != nil {
		return nil, err
	}
	signed, err := ctx.SignEnveloped(root)
	if err != nil {
		return nil, fmt.Errorf("rimtest: signing: %v", err)
	}
	doc.SetRoot(signed)
	return doc.WriteToBytes()
}

// rawSigner signs as NVIDIA's RIM signer does: ECDSA P-384 with the
// signature written as raw r‖s (48 bytes each), not ASN.1.
type rawSigner struct{ k *ecdsa.PrivateKey }

func (s rawSigner) Public() crypto.PublicKey { return &s.k.PublicKey }

func (s rawSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	der, err := s.k.Sign(r, digest, opts)
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	out := make([]byte, 96)
	sig.R.FillBytes(out[:48])
	sig.S.FillBytes(out[48:])
	return out, nil
}

func child(e *etree.Element, tag string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

func measurement(root *etree.Element, index int) (*etree.Element, error) {
	if p := child(root, "Payload"); p != nil {
		for _, r := range p.ChildElements() {
			if r.Tag == "Resource" && r.SelectAttrValue("type", "") == "Measurement" && r.SelectAttrValue("index", "") == strconv.Itoa(index) {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("rimtest: no measurement index %d", index)
}
