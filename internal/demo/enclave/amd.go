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
	"strings"
	"sync"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/uuid"
)

// amdChain is an ARK → ASK → VCEK chain (or ARK → ASVK → VLEK) shaped as
// AMD's KDS issues it (the subject fields, CRL links, key usages and
// V[CL]EK extensions that go-sev-guest's verifier checks), but made of
// keys this process generated: it verifies only against its own root.
type amdChain struct {
	arkKey, askKey *rsa.PrivateKey
	vcekKey        *ecdsa.PrivateKey
	ark, ask, vcek *x509.Certificate // ask is the ASVK and vcek the VLEK of a VLEK chain
	signer         sevabi.ReportSigner
}

// ekSpec is what the endorsement key certifies and how (KDS 57230).
type ekSpec struct {
	productName string // e.g. "Milan-B1"; a VLEK's and a Turin VCEK's: the line
	signer      sevabi.ReportSigner
	// structVersion 0 (Milan, Genoa): blSPL, teeSPL, spl4-7, snpSPL,
	// ucodeSPL, 64-byte hwID. 1 (Turin): fmcSPL too, no spl4, 8-byte hwID.
	structVersion int
	hwid          []byte // VCEK
	cspID         string // VLEK
	tcb           SNPTCB
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

// oidFmcSpl is the Turin VCEK's fmcSPL extension (KDS 57230, table 13),
// which go-sev-guest v0.15.0 does not name.
var oidFmcSpl = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 9}

// ekExtensions are the KDS V[CL]EK extensions: struct version, product
// name, the TCB's security patch levels and the chip ID (VCEK) or the
// cloud provider (VLEK).
func ekExtensions(e ekSpec) ([]pkix.Extension, error) {
	var exts []pkix.Extension
	add := func(id asn1.ObjectIdentifier, v any, params string) error {
		b, err := asn1.MarshalWithParams(v, params)
		if err != nil {
			return err
		}
		exts = append(exts, pkix.Extension{Id: id, Value: b})
		return nil
	}
	type ext struct {
		id     asn1.ObjectIdentifier
		v      any
		params string
	}
	t := e.tcb
	list := []ext{{kds.OidStructVersion, e.structVersion, ""}, {kds.OidProductName1, e.productName, "ia5"}}
	switch e.structVersion {
	case 0:
		list = append(list, ext{kds.OidBlSpl, int(t.Bootloader), ""}, ext{kds.OidTeeSpl, int(t.TEE), ""}, ext{kds.OidSnpSpl, int(t.SNP), ""},
			ext{kds.OidSpl4, 0, ""}, ext{kds.OidSpl5, 0, ""}, ext{kds.OidSpl6, 0, ""}, ext{kds.OidSpl7, 0, ""}, ext{kds.OidUcodeSpl, int(t.Microcode), ""})
	case 1:
		// As AMD's Turin VCEK (virtee/sev tests/certs_data/vcek_turin.der):
		// fmcSPL first, no spl4.
		list = append(list, ext{oidFmcSpl, int(t.FMC), ""}, ext{kds.OidBlSpl, int(t.Bootloader), ""}, ext{kds.OidTeeSpl, int(t.TEE), ""}, ext{kds.OidSnpSpl, int(t.SNP), ""},
			ext{kds.OidSpl5, 0, ""}, ext{kds.OidSpl6, 0, ""}, ext{kds.OidSpl7, 0, ""}, ext{kds.OidUcodeSpl, int(t.Microcode), ""})
	default:
		return nil, fmt.Errorf("enclave: KDS struct version %d", e.structVersion)
	}
	for _, x := range list {
		if err := add(x.id, x.v, x.params); err != nil {
			return nil, err
		}
	}
	if e.signer == sevabi.VlekReportSigner {
		if err := add(kds.OidCspID, e.cspID, "ia5"); err != nil {
			return nil, err
		}
		return exts, nil
	}
	// KDS writes the hwID untagged.
	return append(exts, pkix.Extension{Id: kds.OidHwid, Value: e.hwid}), nil
}

// newAMDChain certifies a fresh VCEK or VLEK under this process's ARK
// and ASK (or ASVK, with the same key) as e says.
func newAMDChain(e ekSpec, created time.Time) (*amdChain, error) {
	ark, ask, err := rootKeys()
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(e.productName, "-")
	c := &amdChain{arkKey: ark, askKey: ask, signer: e.signer}
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
	ica := "SEV-" + line
	if e.signer == sevabi.VlekReportSigner {
		ica = "SEV-VLEK-" + line
		crl = kds.CrlLinkByKey(line, sevabi.VlekReportSigner)
	}
	if c.ask, err = newCert(root(amdName(ica, serial), crl, x509.KeyUsageCertSign), c.ark, &ask.PublicKey, ark); err != nil {
		return nil, fmt.Errorf("enclave: %s: %v", ica, err)
	}
	exts, err := ekExtensions(e)
	if err != nil {
		return nil, err
	}
	vcek := &x509.Certificate{
		Version:            3,
		SerialNumber:       big.NewInt(0),
		Subject:            amdName("SEV-"+e.signer.String(), big.NewInt(0)),
		NotBefore:          created,
		NotAfter:           created.Add(7 * 365 * 24 * time.Hour),
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		ExtraExtensions:    exts,
	}
	if c.vcek, err = newCert(vcek, c.ask, &c.vcekKey.PublicKey, ask); err != nil {
		return nil, fmt.Errorf("enclave: %v: %v", e.signer, err)
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
	ica, ek := sevabi.AskGUID, sevabi.VcekGUID
	if c.signer == sevabi.VlekReportSigner {
		ica, ek = sevabi.AsvkGUID, sevabi.VlekGUID
	}
	blobs := []struct {
		guid string
		der  []byte
	}{{sevabi.ArkGUID, c.ark.Raw}, {ica, c.ask.Raw}, {ek, c.vcek.Raw}}
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
