package attest

import (
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	tvalidate "github.com/google/go-tdx-guest/validate"
	tverify "github.com/google/go-tdx-guest/verify"
	"google.golang.org/protobuf/proto"

	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// TDXFields are the fields of a TDX quote v4 or v5, byte strings as
// lowercase hex. The release-measurement names match log/statement's:
// mrtd, rtmr0-3, mrconfigid.
type TDXFields struct {
	// Version is the quote version, 4 or 5; BodyType is a v5 quote's body
	// descriptor type: 2 for a TDX 1.0 body, 3 for a TDX 1.5 body.
	Version       int    `json:"version"`
	BodyType      int    `json:"body_type,omitempty"`
	MRTD          string `json:"mrtd"` // 48 bytes
	RTMR0         string `json:"rtmr0"`
	RTMR1         string `json:"rtmr1"`
	RTMR2         string `json:"rtmr2"`
	RTMR3         string `json:"rtmr3"`
	MRConfigID    string `json:"mrconfigid"`
	MROwner       string `json:"mrowner"`
	MROwnerConfig string `json:"mrownerconfig"`
	MRSeam        string `json:"mrseam"`
	MRSignerSeam  string `json:"mrsignerseam"`
	TEETCBSVN     string `json:"tee_tcb_svn"` // 16 bytes
	// TEETCBSVN2 and MRServiceTD are in a TDX 1.5 body only: the TDX
	// module's SVN after a TD-preserving update, and the measurement of
	// the service TDs bound to this TD.
	TEETCBSVN2     string `json:"tee_tcb_svn2,omitempty"`
	MRServiceTD    string `json:"mrservicetd,omitempty"`
	TDAttributes   string `json:"td_attributes"`
	XFAM           string `json:"xfam"`
	SeamAttributes string `json:"seam_attributes"`
	ReportData     string `json:"report_data"`
	QESVN          uint16 `json:"qe_svn"`
	PCESVN         uint16 `json:"pce_svn"`
	QEVendorID     string `json:"qe_vendor_id"`
	// FMSPC is the platform's family-model-stepping-platform-custom SKU
	// from the PCK certificate, when it parses.
	FMSPC string `json:"fmspc,omitempty"`
	// Debug is TD_ATTRIBUTES.DEBUG (bit 0).
	Debug bool `json:"debug"`
	// TCB is what Intel's collateral says of this platform, when there
	// was collateral and it verified.
	TCB *TDXTCB `json:"tcb,omitempty"`
	// EventLog summarises the stapled CC event log, when it replayed to
	// the RTMRs.
	EventLog *EventLogSummary `json:"event_log,omitempty"`
}

// tdxQuote is a parsed quote, v4 or v5.
type tdxQuote struct {
	// proto is the *tpb.QuoteV4 or *tpb.QuoteV5 go-tdx-guest's verify and
	// our fields read.
	proto any
	// v4 is the quote as go-tdx-guest's validate package reads it, which
	// knows only QuoteV4: for a v5 quote, its header (version 4) and its
	// body's TDX 1.0 fields. validate checks fields, never signatures;
	// verify checks the v5 quote itself.
	v4 *tpb.QuoteV4

	extsOnce sync.Once
	exts     *pcs.PckExtensions // of the PCK certificate, nil if it does not parse
}

// extensions returns the PCK certificate's SGX extensions (FMSPC, TCB),
// parsed once, or nil.
func (q *tdxQuote) extensions() *pcs.PckExtensions {
	q.extsOnce.Do(func() {
		if pck := q.pckCert(); pck != nil {
			if exts, err := pcs.PckCertificateExtensions(pck); err == nil {
				q.exts = exts
			}
		}
	})
	return q.exts
}

func parseTDXQuote(raw []byte) (*tdxQuote, error) {
	a, err := tabi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("TDX quote: %v", err)
	}
	if err := tabi.CheckQuote(a); err != nil {
		return nil, fmt.Errorf("TDX quote: %v", err)
	}
	switch q := a.(type) {
	case *tpb.QuoteV4:
		return &tdxQuote{proto: q, v4: q}, nil
	case *tpb.QuoteV5:
		b := q.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5()
		h := proto.Clone(q.GetHeader()).(*tpb.Header)
		h.Version = 4
		return &tdxQuote{proto: q, v4: &tpb.QuoteV4{
			Header: h,
			TdQuoteBody: &tpb.TDQuoteBody{
				TeeTcbSvn: b.GetTeeTcbSvn(), MrSeam: b.GetMrSeam(), MrSignerSeam: b.GetMrSignerSeam(),
				SeamAttributes: b.GetSeamAttributes(), TdAttributes: b.GetTdAttributes(), Xfam: b.GetXfam(),
				MrTd: b.GetMrTd(), MrConfigId: b.GetMrConfigId(), MrOwner: b.GetMrOwner(), MrOwnerConfig: b.GetMrOwnerConfig(),
				Rtmrs: b.GetRtmrs(), ReportData: b.GetReportData(),
			},
			SignedDataSize: uint32(q.GetSignedDataSize()),
			SignedData:     q.GetSignedData(),
		}}, nil
	}
	return nil, fmt.Errorf("TDX quote: unsupported format %T", a)
}

func (q *tdxQuote) fields() *TDXFields {
	h := hex.EncodeToString
	body := q.v4.GetTdQuoteBody()
	hdr := q.v4.GetHeader()
	rt := body.GetRtmrs()
	f := &TDXFields{
		Version:        4,
		MRTD:           h(body.GetMrTd()),
		RTMR0:          h(rt[0]),
		RTMR1:          h(rt[1]),
		RTMR2:          h(rt[2]),
		RTMR3:          h(rt[3]),
		MRConfigID:     h(body.GetMrConfigId()),
		MROwner:        h(body.GetMrOwner()),
		MROwnerConfig:  h(body.GetMrOwnerConfig()),
		MRSeam:         h(body.GetMrSeam()),
		MRSignerSeam:   h(body.GetMrSignerSeam()),
		TEETCBSVN:      h(body.GetTeeTcbSvn()),
		TDAttributes:   h(body.GetTdAttributes()),
		XFAM:           h(body.GetXfam()),
		SeamAttributes: h(body.GetSeamAttributes()),
		ReportData:     h(body.GetReportData()),
		QESVN:          binary.LittleEndian.Uint16(hdr.GetQeSvn()),
		PCESVN:         binary.LittleEndian.Uint16(hdr.GetPceSvn()),
		QEVendorID:     h(hdr.GetQeVendorId()),
		Debug:          body.GetTdAttributes()[0]&1 != 0,
	}
	if v5, ok := q.proto.(*tpb.QuoteV5); ok {
		d := v5.GetTdQuoteBodyDescriptor()
		f.Version, f.BodyType = 5, int(d.GetTdQuoteBodyType())
		if f.BodyType == tdx15BodyType {
			f.TEETCBSVN2 = h(d.GetTdQuoteBodyV5().GetTeeTcbSvn2())
			f.MRServiceTD = h(d.GetTdQuoteBodyV5().GetMrServiceTd())
		}
	}
	if exts := q.extensions(); exts != nil {
		f.FMSPC = exts.FMSPC
	}
	return f
}

// tdx15BodyType is a v5 quote's body descriptor type for a TDX 1.5 body.
const tdx15BodyType = 3

// format describes the quote for the evidence-format check.
func (f *TDXFields) format() string {
	switch {
	case f.Version == 5 && f.BodyType == tdx15BodyType:
		return "TDX DCAP quote v5 (TDX 1.5 body)"
	case f.Version == 5:
		return "TDX DCAP quote v5 (TDX 1.0 body)"
	}
	return "TDX DCAP quote v4"
}

// pckCert returns the leaf of the quote's PCK chain, or nil.
func (q *tdxQuote) pckCert() *x509.Certificate {
	chain := q.v4.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	// The PCK certificate comes first; the rest of the chain is verified
	// by go-tdx-guest and not needed here.
	blk, _ := pem.Decode(chain)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// timeSet is go-tdx-guest's verification time for every item.
func timeSet(t time.Time) *tverify.TimeSet {
	return &tverify.TimeSet{PckCertChain: t, TcbInfo: t, QeIdentity: t, PckCrl: t, RootCaCrl: t}
}

func (v *Verifier) verifyTDX(r *Result, b *evidence.Bundle, nonce []byte, full bool) {
	var q *tdxQuote
	err := safely("TDX quote", func() error {
		var err error
		if q, err = parseTDXQuote(b.Quote); err != nil {
			return err
		}
		r.TDX = q.fields()
		return nil
	})
	if err != nil {
		r.add(check.Fail(check.EvidenceFormat, "%v", err))
		return
	}
	r.add(check.Pass(check.EvidenceFormat, "%s with an ECDSA-P256 attestation key and its PCK certificate chain", r.TDX.format()))
	if full {
		r.add(v.platformCheck(evidence.TDX))
	}

	now := v.now()
	roots := "Intel SGX Root CA (embedded)"
	if v.tdxTest {
		roots = "the Intel SGX Root CA or a trust-root tdx certificate"
	}
	// The collateral checks come first: go-tdx-guest verifies the PCK
	// chain and the quote's signatures with the collateral too, so when
	// that verification got past them the chain-only run is not repeated
	// (it costs as much again).
	tcb, chainDone := v.tdxTCBCheck(r, q, b, now)
	err = nil
	if !chainDone {
		// Our own root pool, always: go-tdx-guest's embedded-root path
		// logs to stdout.
		err = safely("TDX verification", func() error {
			return tverify.TdxQuote(q.proto, &tverify.Options{TrustedRoots: v.tdxRoots, Now: timeSet(now), Getter: tdxOffline{}})
		})
	}
	r.add(check.From(check.HardwareChain, err, fmt.Sprintf("quote signed by the attestation key that the QE report certifies; QE report signed by the PCK; PCK chained to %s at %s", roots, now.UTC().Format("2006-01-02"))))
	r.add(tcb)
	if len(b.EventLog) > 0 {
		r.add(v.eventLogCheck(r.TDX, b.EventLog))
	}

	// go-tdx-guest's validate: first its fixed-bit rules, then once per
	// policy concern.
	base := &tvalidate.Options{}
	baseErr := safely("TDX validation", func() error { return tvalidate.TdxQuote(q.v4, base) })
	r.add(check.From(check.ReportConsistency, baseErr, "XFAM and TD_ATTRIBUTES have only bits a TD may set"))
	if !full {
		return
	}
	concern := func(name string, opts *tvalidate.Options, ok string) check.Check {
		if baseErr != nil {
			return check.Fail(name, "not evaluated: the quote is not internally consistent (%v)", baseErr)
		}
		err := safely("TDX validation", func() error { return tvalidate.TdxQuote(q.v4, opts) })
		return check.From(name, err, ok)
	}
	floor := v.pol.TDX.MinTeeTCBSVN
	ok := fmt.Sprintf("TEE_TCB_SVN %s meets the policy floor %x component-wise", r.TDX.TEETCBSVN, floor)
	if floor == nil {
		ok = fmt.Sprintf("policy sets no TDX TCB floor (TEE_TCB_SVN %s); add tdx-min-tee-tcb-svn to require one", r.TDX.TEETCBSVN)
	}
	r.add(concern(check.TCBFloors, &tvalidate.Options{TdQuoteBodyOptions: tvalidate.TdQuoteBodyOptions{MinimumTeeTcbSvn: floor}}, ok))

	switch {
	case r.TDX.Debug && !v.pol.TDX.AllowDebug:
		r.add(check.Fail(check.GuestPolicy, "TD_ATTRIBUTES %s has DEBUG set: the host can read the TD's memory; never trusted unless the policy says tdx-allow-debug", r.TDX.TDAttributes))
	default:
		r.add(check.Pass(check.GuestPolicy, "TD_ATTRIBUTES %s: debug %s", r.TDX.TDAttributes, onOff(r.TDX.Debug)))
	}

	rd, what, err := v.nonceReportData(b, nonce)
	if err != nil {
		r.add(check.Fail(check.NonceBinding, "%v", err))
		return
	}
	c := concern(check.NonceBinding, &tvalidate.Options{TdQuoteBodyOptions: tvalidate.TdQuoteBodyOptions{ReportData: rd}}, "REPORT_DATA binds "+what)
	if !c.OK && baseErr == nil {
		c.Reason = "REPORT_DATA does not bind " + what + ": the evidence was not produced for this request (" + c.Reason + ")"
	}
	r.add(c)
}

// tdxOffline is the getter handed to go-tdx-guest when no collateral is
// configured: attestlog never fetches.
type tdxOffline struct{}

func (tdxOffline) Get(url string) (map[string][]string, []byte, error) {
	return nil, nil, fmt.Errorf("attestlog verifies offline and does not fetch %s", url)
}

// Collateral directory layout: what Intel PCS serves, saved as files.
//
//	tcbinfo.json                 body of GET /tdx/certification/v4/tcb?fmspc=…
//	tcbinfo.issuer-chain         its TCB-Info-Issuer-Chain header (URL-encoded or plain PEM)
//	qeidentity.json              body of GET /tdx/certification/v4/qe/identity
//	qeidentity.issuer-chain      its SGX-Enclave-Identity-Issuer-Chain header
//	pckcrl.der                   optional: GET /sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
//	pckcrl.issuer-chain          its SGX-PCK-CRL-Issuer-Chain header
//	rootcrl.der                  optional: the Intel SGX Root CA CRL
//
// With both CRLs present, revocation is checked too.
const (
	CollateralTCBInfo           = "tcbinfo.json"
	CollateralTCBInfoChain      = "tcbinfo.issuer-chain"
	CollateralQEIdentity        = "qeidentity.json"
	CollateralQEIdentityChain   = "qeidentity.issuer-chain"
	CollateralPCKCRL            = "pckcrl.der"
	CollateralPCKCRLChain       = "pckcrl.issuer-chain"
	CollateralRootCRL           = "rootcrl.der"
	maxCollateralFile           = 1 << 20
	pcsTDXBase                  = "https://api.trustedservices.intel.com/tdx/certification/v4/"
	pcsSGXBase                  = "https://api.trustedservices.intel.com/sgx/certification/v4/"
	headerTCBInfoIssuerChain    = "Tcb-Info-Issuer-Chain"
	headerQEIdentityIssuerChain = "Sgx-Enclave-Identity-Issuer-Chain"
	headerPCKCRLIssuerChain     = "Sgx-Pck-Crl-Issuer-Chain"
)

// collateral serves go-tdx-guest's PCS requests from a directory.
type collateral struct {
	dir        string
	files      map[string][]byte
	revocation bool

	once     sync.Once // parses info and id
	info     *pcs.TdxTcbInfo
	id       *pcs.QeIdentity
	parseErr error
}

func loadCollateral(readFile func(string) ([]byte, error), dir string) (*collateral, error) {
	c := &collateral{dir: dir, files: map[string][]byte{}}
	for _, name := range []string{CollateralTCBInfo, CollateralTCBInfoChain, CollateralQEIdentity, CollateralQEIdentityChain, CollateralPCKCRL, CollateralPCKCRLChain, CollateralRootCRL} {
		b, err := readFile(filepath.ToSlash(filepath.Join(dir, name)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(b) > maxCollateralFile {
			return nil, fmt.Errorf("%s is larger than %d bytes", name, maxCollateralFile)
		}
		c.files[name] = b
	}
	for _, need := range []string{CollateralTCBInfo, CollateralTCBInfoChain, CollateralQEIdentity, CollateralQEIdentityChain} {
		if c.files[need] == nil {
			return nil, fmt.Errorf("missing %s", need)
		}
	}
	c.revocation = c.files[CollateralPCKCRL] != nil && c.files[CollateralPCKCRLChain] != nil && c.files[CollateralRootCRL] != nil
	return c, nil
}

// chainHeader returns an issuer-chain file as the URL-encoded header value
// PCS sends.
func chainHeader(b []byte) []string {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "-----BEGIN ") { // plain PEM, not the URL-encoded header
		s = url.QueryEscape(s + "\n")
	}
	return []string{s}
}

// Get implements go-tdx-guest's trust.HTTPSGetter from the directory.
func (c *collateral) Get(u string) (map[string][]string, []byte, error) {
	serve := func(body, chain, header string) (map[string][]string, []byte, error) {
		if c.files[body] == nil || c.files[chain] == nil {
			return nil, nil, fmt.Errorf("%s has no %s and %s (needed for %s)", c.dir, body, chain, u)
		}
		return map[string][]string{header: chainHeader(c.files[chain])}, c.files[body], nil
	}
	switch {
	case strings.HasPrefix(u, pcsTDXBase+"tcb?"):
		return serve(CollateralTCBInfo, CollateralTCBInfoChain, headerTCBInfoIssuerChain)
	case u == pcs.QeIdentityURL():
		return serve(CollateralQEIdentity, CollateralQEIdentityChain, headerQEIdentityIssuerChain)
	case strings.HasPrefix(u, pcsSGXBase+"pckcrl?"):
		return serve(CollateralPCKCRL, CollateralPCKCRLChain, headerPCKCRLIssuerChain)
	case c.files[CollateralRootCRL] != nil && strings.HasSuffix(u, ".der"):
		// The root CA CRL, at the distribution point the QE identity's
		// issuer chain names.
		return nil, c.files[CollateralRootCRL], nil
	}
	return nil, nil, fmt.Errorf("attestlog verifies offline; %s has nothing for %s", c.dir, u)
}

// tdxTimes judges every piece of TDX evidence (PCK chain, TCB info, QE
// identity, CRLs) as of now: go-tdx-guest takes one time per piece since
// its 2025-08 revision (which go-tpm-tools v0.4.10 requires).
func tdxTimes(now time.Time) *tverify.TimeSet {
	return &tverify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now}
}
