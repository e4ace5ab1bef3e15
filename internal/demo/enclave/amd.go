package enclave

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/uuid"
)

// amdChain is an ARK → ASK → VCEK chain shaped as AMD's KDS issues it
// (the subject fields, CRL links, key usages and VCEK extensions that
// go-sev-guest's verifier checks), but made of keys this process
// generated: it verifies only against its own root.
type amdChain struct {
	arkKey, askKey *rsa.PrivateKey
	vcekKey        *ecdsa.PrivateKey
	ark, ask, vcek *x509.Certificate
}

var (
	rootKeysOnce   sync.Once
	arkKey, askKey *rsa.PrivateKey
	rootKeysErr    error
)

// rootKeys returns this process's ARK and ASK keys, generated once:
// RSA key generation is the slow part of a new enclave.
func rootKeys() (*rsa.PrivateKey, *rsa.PrivateKey, error) {
	rootKeysOnce.Do(func() {
		if arkKey, rootKeysErr = rsa.GenerateKey(rand.Reader, 3072); rootKeysErr != nil {
			return
		}
		askKey, rootKeysErr = rsa.GenerateKey(rand.Reader, 3072)
	})
	return arkKey, askKey, rootKeysErr
}

func amdName(cn string, serial *big.Int) pkix.Name {
	return pkix.Name{
		Organization:       []string{"Advanced Micro Devices"},
		Country:            []string{"US"},
		OrganizationalUnit: []string{"Engineering"},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"CA"},
		SerialNumber:       fmt.Sprintf("%x", serial),
		CommonName:         cn,
	}
}

// vcekExtensions are the KDS VCEK extensions: struct version, product
// name, the TCB's security patch levels and the chip ID.
func vcekExtensions(tcb kds.TCBParts, hwid []byte, productName string) ([]pkix.Extension, error) {
	var exts []pkix.Extension
	add := func(id asn1.ObjectIdentifier, v any, params string) error {
		b, err := asn1.MarshalWithParams(v, params)
		if err != nil {
			return err
		}
		exts = append(exts, pkix.Extension{Id: id, Value: b})
		return nil
	}
	for _, e := range []struct {
		id     asn1.ObjectIdentifier
		v      any
		params string
	}{
		{kds.OidStructVersion, 0, ""},
		{kds.OidProductName1, productName, "ia5"},
		{kds.OidBlSpl, int(tcb.BlSpl), ""},
		{kds.OidTeeSpl, int(tcb.TeeSpl), ""},
		{kds.OidSnpSpl, int(tcb.SnpSpl), ""},
		{kds.OidSpl4, int(tcb.Spl4), ""},
		{kds.OidSpl5, int(tcb.Spl5), ""},
		{kds.OidSpl6, int(tcb.Spl6), ""},
		{kds.OidSpl7, int(tcb.Spl7), ""},
		{kds.OidUcodeSpl, int(tcb.UcodeSpl), ""},
		{kds.OidHwid, hwid, ""},
	} {
		if err := add(e.id, e.v, e.params); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

// newAMDChain certifies a fresh VCEK for chip hwid at tcb under this
// process's ARK and ASK for productName (e.g. "Milan-B0").
func newAMDChain(productName string, hwid []byte, tcb kds.TCBParts, created time.Time) (*amdChain, error) {
	ark, ask, err := rootKeys()
	if err != nil {
		return nil, err
	}
	line := kds.ProductLineOfProductName(productName)
	c := &amdChain{arkKey: ark, askKey: ask}
	if c.vcekKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	serial := big.NewInt(0xa77e57)
	root := func(subject pkix.Name, crl string, usage x509.KeyUsage) *x509.Certificate {
		return &x509.Certificate{
			Version:               3,
			SerialNumber:          serial,
			Subject:               subject,
			NotBefore:             created,
			NotAfter:              created.Add(25 * 365 * 24 * time.Hour),
			SignatureAlgorithm:    x509.SHA384WithRSAPSS,
			KeyUsage:              usage,
			CRLDistributionPoints: []string{crl},
			IsCA:                  true,
			BasicConstraintsValid: true,
		}
	}
	crl := kds.CrlLinkByKey(line, sevabi.VcekReportSigner)
	arkTmpl := root(amdName("ARK-"+line, serial), crl, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	if c.ark, err = newCert(arkTmpl, arkTmpl, &ark.PublicKey, ark); err != nil {
		return nil, fmt.Errorf("enclave: ARK: %v", err)
	}
	if c.ask, err = newCert(root(amdName("SEV-"+line, serial), crl, x509.KeyUsageCertSign), c.ark, &ask.PublicKey, ark); err != nil {
		return nil, fmt.Errorf("enclave: ASK: %v", err)
	}
	exts, err := vcekExtensions(tcb, hwid, productName)
	if err != nil {
		return nil, err
	}
	vcek := &x509.Certificate{
		Version:            3,
		SerialNumber:       big.NewInt(0),
		Subject:            amdName("SEV-VCEK", big.NewInt(0)),
		NotBefore:          created,
		NotAfter:           created.Add(7 * 365 * 24 * time.Hour),
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		ExtraExtensions:    exts,
	}
	if c.vcek, err = newCert(vcek, c.ask, &c.vcekKey.PublicKey, ask); err != nil {
		return nil, fmt.Errorf("enclave: VCEK: %v", err)
	}
	return c, nil
}

// sign signs an attestation report's signed component with the VCEK.
func (c *amdChain) sign(component []byte) (*big.Int, *big.Int, error) {
	h := sha512.Sum384(component)
	return ecdsa.Sign(rand.Reader, c.vcekKey, h[:])
}

// certTable is the extended report's certificate table (AMD GHCB spec):
// GUID-tagged ARK, ASK and VCEK, then a zero entry.
func (c *amdChain) certTable() ([]byte, error) {
	blobs := []struct {
		guid string
		der  []byte
	}{{sevabi.ArkGUID, c.ark.Raw}, {sevabi.AskGUID, c.ask.Raw}, {sevabi.VcekGUID, c.vcek.Raw}}
	off := uint32((len(blobs) + 1) * sevabi.CertTableEntrySize)
	size := off
	for _, b := range blobs {
		size += uint32(len(b.der))
	}
	out := make([]byte, size)
	for i, b := range blobs {
		h := sevabi.CertTableHeaderEntry{GUID: uuid.MustParse(b.guid), Offset: off, Length: uint32(len(b.der))}
		if err := h.Write(out[i*sevabi.CertTableEntrySize:]); err != nil {
			return nil, err
		}
		copy(out[off:], b.der)
		off += uint32(len(b.der))
	}
	return out, nil
}
