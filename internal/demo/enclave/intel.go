package enclave

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	tpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/attestlog/attestlog/policy/evidence"
)

// TDX 1.5: quotes v5, and Intel PCS collateral for the demo platform,
// all under the enclave's own test root.

// TDX15 are the fields a TDX 1.5 TD report body adds to a TDX 1.0 one.
type TDX15 struct {
	// TEETCBSVN2 is the TDX module's SVN after a TD-preserving update
	// (16 bytes; nil: the same as TEE_TCB_SVN).
	TEETCBSVN2 []byte
	// MRServiceTD measures the service TDs bound to the TD (48 bytes; nil:
	// zeros, none bound).
	MRServiceTD []byte
}

type tdx15Body struct{ svn2, mrServiceTD []byte }

// descriptor is a v5 quote's body descriptor: type 3, the TDX 1.5 body.
func (t *tdx15Body) descriptor(b *tpb.TDQuoteBody) *tpb.TDQuoteBodyDescriptor {
	return &tpb.TDQuoteBodyDescriptor{TdQuoteBodyType: 3, TdQuoteBodySize: 648, TdQuoteBodyV5: &tpb.TDQuoteBodyV5{
		TeeTcbSvn: b.TeeTcbSvn, MrSeam: b.MrSeam, MrSignerSeam: b.MrSignerSeam, SeamAttributes: b.SeamAttributes,
		TdAttributes: b.TdAttributes, Xfam: b.Xfam, MrTd: b.MrTd, MrConfigId: b.MrConfigId, MrOwner: b.MrOwner,
		MrOwnerConfig: b.MrOwnerConfig, Rtmrs: b.Rtmrs, ReportData: b.ReportData,
		TeeTcbSvn2: t.svn2, MrServiceTd: t.mrServiceTD,
	}}
}

// NewTDX15 returns a fake TDX 1.5 enclave: its quotes are version 5 with a
// TDX 1.5 body (body descriptor type 3, 648 bytes), as Emerald and
// Granite Rapids produce.
func NewTDX15(mrtd []byte, body TDX15, opts ...Option) (*Enclave, error) {
	e, err := NewTDX(mrtd, opts...)
	if err != nil {
		return nil, err
	}
	t := &tdx15Body{}
	if body.TEETCBSVN2 == nil {
		body.TEETCBSVN2 = e.o.teeTCBSVN
	}
	if t.svn2, err = sized("TEE_TCB_SVN2", body.TEETCBSVN2, 16); err != nil {
		return nil, err
	}
	if t.mrServiceTD, err = sized("MRSERVICETD", body.MRServiceTD, 48); err != nil {
		return nil, err
	}
	e.tdx15 = t
	return e, nil
}

// TCBStatuses are the Intel TCB statuses the demo collateral gives the
// enclave's platform (its TCB level and, when TEE_TCB_SVN names a module
// version, its TDX module level) and its quoting enclave.
type TCBStatuses struct {
	Platform, QE string
	// Advisories are listed on every level that is not UpToDate.
	Advisories []string
	// QEMRSigner is the QE identity's MRSIGNER (32 bytes; nil: the demo
	// QE's), for tests of the QE identity check.
	QEMRSigner []byte
}

// UpToDate is the collateral of a platform with nothing to do.
var UpToDate = TCBStatuses{Platform: "UpToDate", QE: "UpToDate"}

// The demo platform's TCB as its PCK certificate and QE report state it.
var (
	demoCPUSVN = []byte{3, 3, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}
	demoFMSPC  = "00906ed50000"
)

const (
	demoPCESVN = 13
	demoQESVN  = 8
)

// TDXCollateral returns Intel PCS collateral for the enclave, as Intel
// would serve it, signed under the enclave's test root: TCB info and QE
// identity issued at issued and current for 30 days, signed by an "Intel
// SGX TCB Signing" certificate; the PCK CRL (signed by the PCK Platform
// CA) and the root CA CRL, empty. A status other than UpToDate is given
// to the matching level, below a better UpToDate level, as Intel lists
// them. TDX enclaves (and Azure TDX VMs) only.
func (e *Enclave) TDXCollateral(issued time.Time, st TCBStatuses) (*evidence.TDXCollateral, error) {
	if e.platform != evidence.TDX && e.platform != evidence.AzureTDX {
		return nil, fmt.Errorf("enclave: TDX collateral for a %s enclave", e.platform)
	}
	signKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := newCert(&x509.Certificate{
		SerialNumber: big.NewInt(4), Subject: testName("Intel SGX TCB Signing"),
		NotBefore: e.tdxRoot.NotBefore, NotAfter: e.tdxRoot.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, e.tdxRoot, &signKey.PublicKey, e.tdxRootKey)
	if err != nil {
		return nil, err
	}
	next := issued.Add(30 * 24 * time.Hour)
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	svn := e.o.teeTCBSVN
	levels := func(status string, mk func(bump byte) map[string]any) []any {
		date := stamp(issued.Add(-24 * time.Hour))
		level := func(bump byte, status string, adv []string) map[string]any {
			l := map[string]any{"tcb": mk(bump), "tcbDate": date, "tcbStatus": status}
			if len(adv) > 0 {
				l["advisoryIDs"] = adv
			}
			return l
		}
		if status == "UpToDate" {
			return []any{level(0, status, nil)}
		}
		return []any{level(1, "UpToDate", nil), level(0, status, st.Advisories)}
	}
	platform := levels(st.Platform, func(bump byte) map[string]any {
		var sgx, tdx []map[string]any
		for i := range 16 {
			sgx = append(sgx, map[string]any{"svn": demoCPUSVN[i] + bump})
			tdx = append(tdx, map[string]any{"svn": svn[i] + bump})
		}
		return map[string]any{"sgxtcbcomponents": sgx, "pcesvn": demoPCESVN, "tdxtcbcomponents": tdx}
	})
	info := map[string]any{
		"id": "TDX", "version": 3, "issueDate": stamp(issued), "nextUpdate": stamp(next),
		"fmspc": demoFMSPC, "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
		"tdxModule": map[string]any{"mrsigner": strings.Repeat("00", 48), "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
		"tcbLevels": platform,
	}
	if svn[1] > 0 {
		info["tdxModuleIdentities"] = []any{map[string]any{
			"id": fmt.Sprintf("TDX_%02x", svn[1]), "mrsigner": strings.Repeat("00", 48),
			"attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
			"tcbLevels": levels(st.Platform, func(bump byte) map[string]any { return map[string]any{"isvsvn": int(svn[0] + bump)} }),
		}}
	}
	qeSigner := st.QEMRSigner
	if qeSigner == nil {
		qeSigner = make([]byte, 32)
	}
	qe := map[string]any{
		"id": "TD_QE", "version": 2, "issueDate": stamp(issued), "nextUpdate": stamp(next), "tcbEvaluationDataNumber": 17,
		"miscselect": "00000000", "miscselectMask": "FFFFFFFF",
		"attributes": strings.Repeat("00", 16), "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
		"mrsigner": hex.EncodeToString(qeSigner), "isvprodid": 2,
		"tcbLevels": levels(st.QE, func(bump byte) map[string]any { return map[string]any{"isvsvn": demoQESVN + int(bump)} }),
	}
	signedBody := func(name string, v any) ([]byte, error) {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		sig, err := signRaw(signKey, raw)
		if err != nil {
			return nil, err
		}
		return []byte(fmt.Sprintf(`{"%s":%s,"signature":"%s"}`, name, raw, hex.EncodeToString(sig))), nil
	}
	c := &evidence.TDXCollateral{}
	if c.TCBInfo, err = signedBody("tcbInfo", info); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = signedBody("enclaveIdentity", qe); err != nil {
		return nil, err
	}
	pemOf := func(cs ...*x509.Certificate) string {
		var b strings.Builder
		for _, c := range cs {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		return b.String()
	}
	c.TCBInfoIssuerChain = pemOf(signer, e.tdxRoot)
	c.QEIdentityIssuerChain = c.TCBInfoIssuerChain
	c.PCKCRLIssuerChain = pemOf(e.tdxInter, e.tdxRoot)
	crl := func(issuer *x509.Certificate, key *ecdsa.PrivateKey) ([]byte, error) {
		return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: issued, NextUpdate: next}, issuer, key)
	}
	if c.PCKCRL, err = crl(e.tdxInter, e.tdxInterKey); err != nil {
		return nil, err
	}
	if c.RootCACRL, err = crl(e.tdxRoot, e.tdxRootKey); err != nil {
		return nil, err
	}
	return c, nil
}

// SetTDXCollateral staples c to all later evidence (nil: none).
func (e *Enclave) SetTDXCollateral(c *evidence.TDXCollateral) {
	e.mu.Lock()
	e.staples.collateral = c
	e.mu.Unlock()
}
