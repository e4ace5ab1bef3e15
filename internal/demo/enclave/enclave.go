// Package enclave produces signed attestation evidence from DEMO roots:
// the demo enclave of `attestlog up`, and the enclaves of end-to-end tests.
//
// SEV-SNP evidence is signed by a VCEK under an ARK → ASK chain shaped as
// AMD's KDS issues it (AMD's subject names, CRL links and VCEK
// extensions, which go-sev-guest's verifier checks) but made of keys this
// process generated. TDX evidence is signed under a PCK chain this
// package builds (root "Intel SGX Root CA" → "Intel SGX PCK Platform CA"
// → "Intel SGX PCK Certificate", organization "attestlog TEST ONLY - not
// Intel"). Both verify only against the enclave's own root, which no
// verifier trusts unless its policy names the file with a trust-root line:
//
//	trust-root sev-snp snp-demo-root.pem   # e.RootPEM() of an SNP enclave
//	trust-root tdx tdx-demo-root.pem       # e.RootPEM() of a TDX enclave
//
// The keys live only in this process's memory and die with it, but
// whoever runs the process holds them: never name a demo root in a
// production policy.
package enclave

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	tdxabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/attestlog/attestlog/policy/evidence"
)

// MeasurementSize is the size of an SNP launch digest and of a TDX MRTD.
const MeasurementSize = 48

// Enclave is a fake enclave of one platform. It implements
// evidence.Source and is safe for concurrent use.
type Enclave struct {
	platform string
	o        options

	snp *amdChain

	tdxRootKey, tdxPCKKey, tdxAttKey *ecdsa.PrivateKey
	tdxRoot, tdxInter, tdxPCK        *x509.Certificate
	tdxInterKey                      *ecdsa.PrivateKey
	// tdx15 makes quotes v5 with a TDX 1.5 body (see NewTDX15).
	tdx15 *tdx15Body
	// gceRoot is the test root of a Google Cloud enclave's firmware
	// endorsement (see NewGCPTDX).
	gceRoot *x509.Certificate

	gpus *gpuSet

	vtpm *softVTPM // Azure demo VMs (azure.go)

	mu         sync.Mutex
	proof      string
	indexProof string
	// staples are stapled to every bundle: the TDX collateral, the event
	// log and the firmware endorsement (see SetTDXCollateral, NewGCPTDX).
	staples staples
}

type staples struct {
	collateral  *evidence.TDXCollateral
	eventLog    []byte
	endorsement []byte
}

// SNPTCB is an SEV-SNP TCB version. FMC exists on Turin only.
type SNPTCB struct{ Bootloader, TEE, SNP, Microcode, FMC uint8 }

type options struct {
	measurement []byte
	created     time.Time
	productLine string
	tcb         SNPTCB
	guestPolicy uint64
	familyID    []byte
	imageID     []byte
	hostData    []byte
	vmpl        uint32
	channelKey  []byte

	rtmr       [4][]byte
	mrConfigID []byte
	teeTCBSVN  []byte
	debug      bool
	chipID     []byte
	gpus       int
	gpuSwap    map[int]map[int][]byte
	gpuRevoked map[int]bool
	gpuPPCIe   bool
	gpuCloned  bool
	bootEvents []BootEvent

	// SEV-SNP as the clouds do it (aws.go, turin.go).
	signer                       sevabi.ReportSigner // VCEK (default) or VLEK
	cspID                        string              // a VLEK's CSP_ID
	reported, committed, current *SNPTCB             // report fields; default: tcb
	chipIDOverride               []byte
}

// Option configures NewSNP and NewTDX.
type Option func(*options)

// WithCreationTime sets when the test certificates start to be valid
// (default: an hour ago). The VCEK and PCK expire 7 years later, the roots
// 25 years later.
func WithCreationTime(t time.Time) Option { return func(o *options) { o.created = t } }

// WithSNPProductLine sets the SEV-SNP product line: Milan (default),
// Genoa or Turin.
func WithSNPProductLine(line string) Option { return func(o *options) { o.productLine = line } }

// WithSNPTCB sets the TCB the VCEK certifies and the report carries
// (default bootloader=3 tee=0 snp=20 microcode=209).
func WithSNPTCB(t SNPTCB) Option { return func(o *options) { o.tcb = t } }

// WithSNPGuestPolicy sets the report's POLICY (default 0x30000: SMT
// allowed, no debug, no migration agent).
func WithSNPGuestPolicy(p uint64) Option { return func(o *options) { o.guestPolicy = p } }

// WithSNPIDs sets FAMILY_ID and IMAGE_ID (16 bytes each; nil keeps zeros).
func WithSNPIDs(familyID, imageID []byte) Option {
	return func(o *options) { o.familyID, o.imageID = familyID, imageID }
}

// WithSNPHostData sets HOST_DATA (32 bytes).
func WithSNPHostData(h []byte) Option { return func(o *options) { o.hostData = h } }

// WithDebug marks the guest debuggable: POLICY.DEBUG for SEV-SNP,
// TD_ATTRIBUTES.DEBUG for TDX.
func WithDebug() Option { return func(o *options) { o.debug = true } }

// WithChannelKey binds key into every report (see evidence.ReportData).
func WithChannelKey(key []byte) Option { return func(o *options) { o.channelKey = key } }

// WithRTMR sets TDX RTMR i (0-3, 48 bytes).
func WithRTMR(i int, v []byte) Option { return func(o *options) { o.rtmr[i&3] = v } }

// WithMRConfigID sets TDX MRCONFIGID (48 bytes).
func WithMRConfigID(v []byte) Option { return func(o *options) { o.mrConfigID = v } }

// WithTEETCBSVN sets TDX TEE_TCB_SVN (16 bytes; default 03 00 05 00 …).
func WithTEETCBSVN(v []byte) Option { return func(o *options) { o.teeTCBSVN = v } }

func defaults(opts []Option) options {
	o := options{
		created:     time.Now().Add(-time.Hour).Truncate(time.Second),
		productLine: "Milan",
		tcb:         SNPTCB{Bootloader: 3, TEE: 0, SNP: 20, Microcode: 209},
		guestPolicy: 0x30000,
		teeTCBSVN:   []byte{3, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func sized(name string, b []byte, n int) ([]byte, error) {
	if b == nil {
		return make([]byte, n), nil
	}
	if len(b) != n {
		return nil, fmt.Errorf("enclave: %s is %d bytes, want %d", name, len(b), n)
	}
	return append([]byte(nil), b...), nil
}

// Platform returns evidence.SEVSNP, evidence.TDX, or for the Azure VMs
// of azure.go evidence.AzureSEVSNP or evidence.AzureTDX.
func (e *Enclave) Platform() string { return e.platform }

// SetIndexProof staples the log's index proof for the enclave's
// measurement to all later evidence.
func (e *Enclave) SetIndexProof(p string) {
	e.mu.Lock()
	e.indexProof = p
	e.mu.Unlock()
}

// SetProof staples a tlog-proof to all later evidence.
func (e *Enclave) SetProof(p string) {
	e.mu.Lock()
	e.proof = p
	e.mu.Unlock()
}

// Evidence returns a bundle bound to nonce (and the channel key, if any).
func (e *Enclave) Evidence(_ context.Context, nonce []byte) (*evidence.Bundle, error) {
	var gpus []evidence.GPU
	if e.gpus != nil {
		var err error
		if gpus, err = e.gpus.evidence(nonce); err != nil {
			return nil, err
		}
	}
	probe := &evidence.Bundle{ChannelKey: e.o.channelKey, GPUs: gpus}
	rd, err := probe.ExpectedReportData(nonce)
	if err != nil {
		return nil, err
	}
	if e.vtpm != nil {
		b, err := e.AzureEvidence(nonce, rd)
		if err == nil && len(gpus) > 0 {
			b.Format, b.GPUs = evidence.FormatGPU, gpus
		}
		return b, err
	}
	b, err := e.EvidenceWithReportData(rd)
	if err != nil {
		return nil, err
	}
	if len(gpus) > 0 {
		b.Format, b.GPUs = evidence.FormatGPU, gpus
	}
	return b, nil
}

// EvidenceWithReportData returns a bundle whose REPORT_DATA is rd exactly
// (for tests of the binding).
func (e *Enclave) EvidenceWithReportData(rd [64]byte) (*evidence.Bundle, error) {
	e.mu.Lock()
	proof, indexProof, st := e.proof, e.indexProof, e.staples
	e.mu.Unlock()
	b := &evidence.Bundle{Format: evidence.Format, Platform: e.platform, ChannelKey: e.o.channelKey, Proof: proof, IndexProof: indexProof,
		TDXCollateral: st.collateral, EventLog: st.eventLog, FirmwareEndorsement: st.endorsement}
	var err error
	switch e.platform {
	case evidence.SEVSNP:
		b.Report, err = e.snpReport(rd)
		if err == nil {
			b.CertTable, err = e.snp.certTable()
		}
	case evidence.TDX:
		b.Quote, err = e.tdxQuote(rd)
	case evidence.AzureSEVSNP, evidence.AzureTDX:
		return e.AzureEvidence(nil, rd) // user-data rd, a quote of no nonce
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// RootPEM returns the test root to name in a trust-root line: for SEV-SNP
// the ASK (a VLEK enclave's: the ASVK) and ARK in AMD KDS cert_chain
// order, for TDX the root CA.
func (e *Enclave) RootPEM() []byte {
	var out []byte
	add := func(c *x509.Certificate) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	switch e.platform {
	case evidence.SEVSNP, evidence.AzureSEVSNP:
		add(e.snp.ask)
		add(e.snp.ark)
	case evidence.TDX, evidence.AzureTDX:
		add(e.tdxRoot)
	}
	return out
}

// EndorsementKeyCert returns the SEV-SNP VCEK (or VLEK) or the TDX PCK
// certificate.
func (e *Enclave) EndorsementKeyCert() *x509.Certificate {
	if e.snp != nil {
		return e.snp.vcek
	}
	return e.tdxPCK
}

// --- SEV-SNP

func snpProduct(line string) (*spb.SevProduct, error) {
	names := map[string]spb.SevProduct_SevProductName{
		"Milan": spb.SevProduct_SEV_PRODUCT_MILAN,
		"Genoa": spb.SevProduct_SEV_PRODUCT_GENOA,
		"Turin": spb.SevProduct_SEV_PRODUCT_TURIN,
	}
	n, ok := names[line]
	if !ok {
		return nil, fmt.Errorf("enclave: unknown SEV-SNP product line %q (want Milan, Genoa or Turin)", line)
	}
	return &spb.SevProduct{Name: n, MachineStepping: wrapperspb.UInt32(1)}, nil
}

// NewSNP returns a fake SEV-SNP enclave whose reports carry measurement
// (48 bytes) as MEASUREMENT.
func NewSNP(measurement []byte, opts ...Option) (*Enclave, error) {
	o := defaults(opts)
	if len(measurement) != MeasurementSize {
		return nil, fmt.Errorf("enclave: measurement is %d bytes, want %d", len(measurement), MeasurementSize)
	}
	var err error
	if o.familyID, err = sized("family id", o.familyID, 16); err != nil {
		return nil, err
	}
	if o.imageID, err = sized("image id", o.imageID, 16); err != nil {
		return nil, err
	}
	if o.hostData, err = sized("host data", o.hostData, 32); err != nil {
		return nil, err
	}
	if o.debug {
		o.guestPolicy |= 1 << 19
	}
	product, err := snpProduct(o.productLine)
	if err != nil {
		return nil, err
	}
	for _, t := range []*SNPTCB{&o.tcb, o.reported, o.committed, o.current} {
		if t == nil {
			continue
		}
		if _, err := snpTCBValue(o.productLine, *t); err != nil {
			return nil, err
		}
	}
	spec, err := snpEKSpec(&o, product)
	if err != nil {
		return nil, err
	}
	signer, err := newAMDChain(spec, o.created)
	if err != nil {
		return nil, err
	}
	o.measurement = append([]byte(nil), measurement...)
	e := &Enclave{platform: evidence.SEVSNP, o: o, snp: signer}
	if err := e.attachGPUs(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Enclave) snpReport(rd [64]byte) ([]byte, error) {
	o := e.o
	product, _ := snpProduct(o.productLine)
	tcbOf := func(t *SNPTCB) uint64 {
		if t == nil {
			t = &o.tcb
		}
		v, _ := snpTCBValue(o.productLine, *t) // checked by NewSNP
		return v
	}
	tcb := tcbOf(nil)
	reportID := sha256.Sum256(rd[:])
	ff := make([]byte, 32)
	for i := range ff {
		ff[i] = 0xff
	}
	r := &spb.Report{
		Version:         3,
		Policy:          o.guestPolicy,
		FamilyId:        o.familyID,
		ImageId:         o.imageID,
		Vmpl:            o.vmpl,
		SignatureAlgo:   sevabi.SignEcdsaP384Sha384,
		SignerInfo:      sevabi.ComposeSignerInfo(sevabi.SignerInfo{SigningKey: e.snp.signer}),
		CurrentTcb:      tcbOf(o.current),
		PlatformInfo:    1, // SMT enabled
		ReportData:      rd[:],
		Measurement:     o.measurement,
		HostData:        o.hostData,
		IdKeyDigest:     make([]byte, 48),
		AuthorKeyDigest: make([]byte, 48),
		ReportId:        reportID[:],
		ReportIdMa:      ff,
		ReportedTcb:     tcbOf(o.reported),
		Cpuid1EaxFms:    sevabi.MaskedCpuid1EaxFromSevProduct(product),
		ChipId:          o.chipID,
		CommittedTcb:    tcbOf(o.committed),
		CurrentMajor:    1, CurrentMinor: 55, CurrentBuild: 21,
		CommittedMajor: 1, CommittedMinor: 55, CommittedBuild: 21,
		LaunchTcb: tcb,
		Signature: make([]byte, sevabi.SignatureSize),
	}
	raw, err := sevabi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("enclave: %v", err)
	}
	R, S, err := e.snp.sign(sevabi.SignedComponent(raw))
	if err != nil {
		return nil, fmt.Errorf("enclave: signing: %v", err)
	}
	if err := sevabi.SetSignature(R, S, raw); err != nil {
		return nil, fmt.Errorf("enclave: %v", err)
	}
	return raw, nil
}

// SNPCRL returns a DER CRL signed by the test ARK, valid from thisUpdate
// to nextUpdate, revoking the test VCEK (a VLEK enclave's VLEK, in what
// stands for AMD's VLEK CRL) when revokeVCEK is set.
func (e *Enclave) SNPCRL(thisUpdate, nextUpdate time.Time, revokeVCEK bool) ([]byte, error) {
	if e.platform != evidence.SEVSNP {
		return nil, errors.New("enclave: not an SEV-SNP enclave")
	}
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, SignatureAlgorithm: x509.SHA384WithRSAPSS}
	if revokeVCEK {
		tmpl.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: e.snp.vcek.SerialNumber, RevocationTime: thisUpdate}}
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, e.snp.ark, e.snp.arkKey)
}

// --- TDX

var (
	oidSGX     = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidSGXType = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
	// intelQEVendorID is the QE_VENDOR_ID of Intel's quoting enclave.
	intelQEVendorID = []byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}
)

func testName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"attestlog TEST ONLY - not Intel"}, Locality: []string{"Santa Clara"}, Province: []string{"CA"}, Country: []string{"US"}}
}

type oidValue struct {
	Type  asn1.ObjectIdentifier
	Value any
}

// sgxExtension builds the PCK certificate's SGX extension (PPID, TCB with
// 16 component SVNs, PCESVN and CPUSVN, PCE-ID, FMSPC, SGX type) in the
// layout go-tdx-guest's pcs package reads.
func sgxExtension(cpuSVN []byte, pceSVN int) ([]byte, error) {
	var tcb []asn1.RawValue
	for i := 1; i <= 16; i++ {
		b, err := asn1.Marshal(oidValue{append(append(asn1.ObjectIdentifier{}, pcs.OidTCB...), i), int(cpuSVN[i-1])})
		if err != nil {
			return nil, err
		}
		tcb = append(tcb, asn1.RawValue{FullBytes: b})
	}
	pce, err := asn1.Marshal(oidValue{pcs.OidPCESvn, pceSVN})
	if err != nil {
		return nil, err
	}
	cpu, err := asn1.Marshal(oidValue{pcs.OidCPUSvn, cpuSVN})
	if err != nil {
		return nil, err
	}
	tcb = append(tcb, asn1.RawValue{FullBytes: pce}, asn1.RawValue{FullBytes: cpu})
	tcbSeq, err := asn1.Marshal(tcb)
	if err != nil {
		return nil, err
	}
	var items []asn1.RawValue
	for _, it := range []struct {
		oid asn1.ObjectIdentifier
		v   any
	}{
		{pcs.OidPPID, make([]byte, 16)},
		{pcs.OidTCB, asn1.RawValue{FullBytes: tcbSeq}},
		{pcs.OidPCEID, []byte{0, 0}},
		{pcs.OidFMSPC, []byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00}},
		{oidSGXType, asn1.Enumerated(0)},
	} {
		b, err := asn1.Marshal(oidValue{it.oid, it.v})
		if err != nil {
			return nil, err
		}
		items = append(items, asn1.RawValue{FullBytes: b})
	}
	return asn1.Marshal(items)
}

func newCert(tmpl, parent *x509.Certificate, pub, priv any) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// NewTDX returns a fake TDX enclave whose quotes carry mrtd (48 bytes) as
// MRTD.
func NewTDX(mrtd []byte, opts ...Option) (*Enclave, error) {
	o := defaults(opts)
	if len(mrtd) != MeasurementSize {
		return nil, fmt.Errorf("enclave: MRTD is %d bytes, want %d", len(mrtd), MeasurementSize)
	}
	var err error
	for i := range o.rtmr {
		if o.rtmr[i], err = sized(fmt.Sprintf("RTMR%d", i), o.rtmr[i], 48); err != nil {
			return nil, err
		}
	}
	if o.mrConfigID, err = sized("MRCONFIGID", o.mrConfigID, 48); err != nil {
		return nil, err
	}
	if o.teeTCBSVN, err = sized("TEE_TCB_SVN", o.teeTCBSVN, 16); err != nil {
		return nil, err
	}
	e := &Enclave{platform: evidence.TDX, o: o}
	if err := e.attachGPUs(); err != nil {
		return nil, err
	}
	e.o.measurement = append([]byte(nil), mrtd...)
	keys := make([]*ecdsa.PrivateKey, 4)
	for i := range keys {
		if keys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	e.tdxRootKey, e.tdxPCKKey, e.tdxAttKey = keys[0], keys[2], keys[3]
	interKey := keys[1]
	e.tdxInterKey = interKey
	nb := o.created
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: testName("Intel SGX Root CA"),
		NotBefore: nb, NotAfter: nb.AddDate(25, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		// Where go-tdx-guest looks for the root CA CRL (TDXCollateral).
		CRLDistributionPoints: []string{"https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"},
	}
	if e.tdxRoot, err = newCert(root, root, &keys[0].PublicKey, keys[0]); err != nil {
		return nil, err
	}
	inter := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: testName("Intel SGX PCK Platform CA"),
		NotBefore: nb, NotAfter: nb.AddDate(25, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	if e.tdxInter, err = newCert(inter, e.tdxRoot, &interKey.PublicKey, keys[0]); err != nil {
		return nil, err
	}
	ext, err := sgxExtension(demoCPUSVN, demoPCESVN)
	if err != nil {
		return nil, err
	}
	pck := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: testName("Intel SGX PCK Certificate"),
		NotBefore: nb, NotAfter: nb.AddDate(7, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		SubjectKeyId:          []byte{0x50, 0x43, 0x4b}, // "PCK"
		CRLDistributionPoints: []string{"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"},
		ExtraExtensions:       []pkix.Extension{{Id: oidSGX, Value: ext}},
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	if e.tdxPCK, err = newCert(pck, e.tdxInter, &keys[2].PublicKey, interKey); err != nil {
		return nil, err
	}
	return e, nil
}

// signRaw signs sha256(msg) and returns r||s, 32 bytes each.
func signRaw(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func (e *Enclave) tdxQuote(rd [64]byte) ([]byte, error) {
	o := e.o
	attributes := make([]byte, 8)
	binary.LittleEndian.PutUint64(attributes, 1<<28) // SEPT_VE_DISABLE
	if o.debug {
		attributes[0] |= 1
	}
	header := &tpb.Header{
		Version: 4, AttestationKeyType: 2, TeeType: tdxabi.TeeTDX,
		QeSvn: []byte{demoQESVN, 0}, PceSvn: []byte{demoPCESVN, 0}, QeVendorId: intelQEVendorID, UserData: make([]byte, 20),
	}
	mrSeam := sha256.Sum256([]byte("attestlog fake TDX module"))
	body := &tpb.TDQuoteBody{
		TeeTcbSvn:      o.teeTCBSVN,
		MrSeam:         append(mrSeam[:], make([]byte, 16)...),
		MrSignerSeam:   make([]byte, 48),
		SeamAttributes: make([]byte, 8),
		TdAttributes:   attributes,
		Xfam:           []byte{0xe7, 0x1a, 0x06, 0, 0, 0, 0, 0},
		MrTd:           o.measurement,
		MrConfigId:     o.mrConfigID,
		MrOwner:        make([]byte, 48),
		MrOwnerConfig:  make([]byte, 48),
		Rtmrs:          [][]byte{o.rtmr[0], o.rtmr[1], o.rtmr[2], o.rtmr[3]},
		ReportData:     rd[:],
	}
	var v5 *tpb.TDQuoteBodyDescriptor
	if e.tdx15 != nil {
		header.Version = 5
		v5 = e.tdx15.descriptor(body)
	}
	hb, err := tdxabi.HeaderToAbiBytes(header)
	if err != nil {
		return nil, err
	}
	var bb []byte
	if v5 != nil {
		bb, err = tdxabi.TdQuoteBodyDescriptorToAbiBytes(v5)
	} else {
		bb, err = tdxabi.TdQuoteBodyToAbiBytes(body)
	}
	if err != nil {
		return nil, err
	}
	sig, err := signRaw(e.tdxAttKey, append(hb, bb...))
	if err != nil {
		return nil, err
	}
	attKey := make([]byte, 64)
	e.tdxAttKey.PublicKey.X.FillBytes(attKey[:32])
	e.tdxAttKey.PublicKey.Y.FillBytes(attKey[32:])
	authData := make([]byte, 32)
	for i := range authData {
		authData[i] = byte(i)
	}
	qeRD := sha256.Sum256(append(append([]byte(nil), attKey...), authData...))
	qeReport := &tpb.EnclaveReport{
		CpuSvn: make([]byte, 16), Reserved1: make([]byte, 28), Attributes: make([]byte, 16),
		MrEnclave: make([]byte, 32), Reserved2: make([]byte, 32), MrSigner: make([]byte, 32),
		Reserved3: make([]byte, 96), IsvProdId: 2, IsvSvn: demoQESVN, Reserved4: make([]byte, 60),
		ReportData: append(qeRD[:], make([]byte, 32)...),
	}
	qeRaw, err := tdxabi.EnclaveReportToAbiBytes(qeReport)
	if err != nil {
		return nil, err
	}
	qeSig, err := signRaw(e.tdxPCKKey, qeRaw)
	if err != nil {
		return nil, err
	}
	var chain []byte
	for _, c := range []*x509.Certificate{e.tdxPCK, e.tdxInter, e.tdxRoot} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	certData := &tpb.QEReportCertificationData{
		QeReport:          qeReport,
		QeReportSignature: qeSig,
		QeAuthData:        &tpb.QeAuthData{ParsedDataSize: uint32(len(authData)), Data: authData},
		PckCertificateChainData: &tpb.PCKCertificateChainData{
			CertificateDataType: 5, Size: uint32(len(chain)), PckCertChain: chain,
		},
	}
	certSize := uint32(len(qeRaw) + 64 + 2 + len(authData) + 6 + len(chain))
	signed := &tpb.Ecdsa256BitQuoteV4AuthData{
		Signature:           sig,
		EcdsaAttestationKey: attKey,
		CertificationData:   &tpb.CertificationData{CertificateDataType: 6, Size: certSize, QeReportCertificationData: certData},
	}
	if v5 != nil {
		return tdxabi.QuoteToAbiBytes(&tpb.QuoteV5{Header: header, TdQuoteBodyDescriptor: v5, SignedDataSize: int32(64 + 64 + 6 + certSize), SignedData: signed})
	}
	return tdxabi.QuoteToAbiBytes(&tpb.QuoteV4{Header: header, TdQuoteBody: body, SignedDataSize: 64 + 64 + 6 + certSize, SignedData: signed})
}

func (e *Enclave) attachGPUs() error {
	if e.o.gpus == 0 {
		return nil
	}
	if e.o.gpus < 0 || e.o.gpus > evidence.MaxGPUs {
		return fmt.Errorf("enclave: %d GPUs, want 1 to %d", e.o.gpus, evidence.MaxGPUs)
	}
	g, err := newGPUs(e.o.gpus, e.o.created, e.o.gpuSwap, e.o.gpuRevoked, e.o.gpuPPCIe)
	if err != nil {
		return err
	}
	if e.o.gpuCloned {
		for i := range g.devs {
			g.devs[i] = g.devs[0]
		}
	}
	e.gpus = g
	return nil
}

// --- As an enclave agent's report source (agent/reportsrc)

// Name says what signs this enclave's reports.
func (e *Enclave) Name() string {
	return "demo signer (" + e.platform + " evidence under a test root generated in this process: never trust it in production)"
}

// Report returns evidence whose REPORT_DATA is rd, with nothing stapled
// and no channel key: the demo signer as the report source of an
// enclave agent.
func (e *Enclave) Report(_ context.Context, rd [64]byte) (*evidence.Bundle, error) {
	var b *evidence.Bundle
	var err error
	if e.vtpm != nil {
		// A key set's vTPM quote answers SHA-256 of its REPORT_DATA
		// (evidence.KeySetQuoteData): as fresh as the key set.
		b, err = e.AzureEvidence(evidence.KeySetQuoteData(rd), rd)
	} else {
		b, err = e.EvidenceWithReportData(rd)
	}
	if err != nil {
		return nil, err
	}
	b.ChannelKey, b.Proof, b.IndexProof = nil, "", ""
	return b, nil
}

// RTMRs returns the TDX RTMR0-3 the enclave's quotes carry (nil for an
// SEV-SNP enclave).
func (e *Enclave) RTMRs() [][]byte {
	if e.platform != evidence.TDX && e.platform != evidence.AzureTDX {
		return nil
	}
	return [][]byte{e.o.rtmr[0], e.o.rtmr[1], e.o.rtmr[2], e.o.rtmr[3]}
}

// GPUCount is how many demo GPUs the enclave attaches.
func (e *Enclave) GPUCount() int {
	if e.gpus == nil {
		return 0
	}
	return len(e.gpus.devs)
}

// GPUEvidence returns the demo GPUs' evidence, GPU i answering
// evidence.GPUNonce(seed, i) (nil without GPUs).
func (e *Enclave) GPUEvidence(_ context.Context, seed []byte) ([]evidence.GPU, error) {
	if e.gpus == nil {
		return nil, nil
	}
	return e.gpus.evidence(seed)
}
