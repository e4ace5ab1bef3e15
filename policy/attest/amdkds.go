package attest

// AMD product lines, their TCB_VERSION layouts, and the KDS certificate
// extensions of struct version 1 (Turin), which go-sev-guest v0.15.0 does
// not read.
//
// Why this file exists: go-sev-guest v0.15.0 (the newest release; its
// Turin support is in open pull requests #193 and #198, not on any
// revision the module proxy serves) rejects a Turin VCEK — "not an AMD KDS
// OID: 1.3.6.1.4.1.3704.1.3.9" (fmcSPL) and its 8-byte hwID — and reads
// every TCB_VERSION with Milan's byte layout. So for a struct-version-1
// endorsement key, attestlog:
//
//   - parses the KDS extensions itself (parseKDSv1, strictly: every
//     extension known and given once, the reserved SPLs zero);
//   - verifies the chain with go-sev-guest's own pieces: the certificate
//     checks go-sev-guest makes of every V[CL]EK (version, RSASSA-PSS
//     SHA-384 signature, ECDSA P-384 key, AMD subject), the ARK and
//     AS[V]K of the trusted roots (trust.ProductCerts.X509Options) and
//     the report signature (verify.SnpReportSignature);
//   - hands go-sev-guest's validate package a struct-version-0 view of
//     the key (v0View): a certificate that only validate reads, never
//     verified by anyone, carrying the same TCB_VERSION value and the
//     hwID as the 64-byte CHIP_ID it must equal. validate compares TCB
//     values byte by byte (every byte is a component in both layouts) and
//     CHIP_ID bytewise, so its consistency, floor, policy, VMPL and
//     REPORT_DATA checks hold for Turin unchanged.
//
// Remove this once go-sev-guest reads struct version 1.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"

	"github.com/attestlog/attestlog/policy"
)

// tcbLayout is where a product line keeps each TCB component in the 8
// bytes of a TCB_VERSION (little-endian: byte 0 is the low byte). fmc is
// -1 where there is none.
type tcbLayout struct {
	fmc, bootloader, tee, snp, microcode int
}

var (
	// Milan and Genoa (SEV-SNP ABI table 3): bootloader, TEE, 4 reserved,
	// SNP, microcode.
	layoutMilan = tcbLayout{fmc: -1, bootloader: 0, tee: 1, snp: 6, microcode: 7}
	// Turin: FMC, bootloader, TEE, SNP, 3 reserved, microcode.
	layoutTurin = tcbLayout{fmc: 0, bootloader: 1, tee: 2, snp: 3, microcode: 7}
)

// layoutOf returns the TCB layout of a product line ("Milan", "Genoa",
// "Turin"; anything else reads as Milan, the layout of every report
// before Turin).
func layoutOf(line string) tcbLayout {
	if line == "Turin" {
		return layoutTurin
	}
	return layoutMilan
}

func tcbByte(v uint64, i int) uint8 { return uint8(v >> (8 * i)) }

// decode reads v with the layout.
func (l tcbLayout) decode(v uint64) TCB {
	t := TCB{Raw: fmt.Sprintf("%016x", v), Bootloader: tcbByte(v, l.bootloader), TEE: tcbByte(v, l.tee), SNP: tcbByte(v, l.snp), Microcode: tcbByte(v, l.microcode)}
	if l.fmc >= 0 {
		fmc := tcbByte(v, l.fmc)
		t.FMC = &fmc
	}
	return t
}

// compose writes a floor as a TCB_VERSION of the layout (an FMC floor
// has nowhere to go in a layout without FMC: the policy grammar allows it
// for Turin only).
func (l tcbLayout) compose(t policy.SNPTCB) uint64 {
	v := uint64(t.Bootloader)<<(8*l.bootloader) | uint64(t.TEE)<<(8*l.tee) | uint64(t.SNP)<<(8*l.snp) | uint64(t.Microcode)<<(8*l.microcode)
	if l.fmc >= 0 {
		v |= uint64(t.FMC) << (8 * l.fmc)
	}
	return v
}

// below names the components of v lower than floor's, e.g. "snp 24 < 27".
func (l tcbLayout) below(v uint64, floor policy.SNPTCB) []string {
	var out []string
	have := l.decode(v)
	for _, c := range []struct {
		name       string
		got, floor uint8
	}{{"bootloader", have.Bootloader, floor.Bootloader}, {"tee", have.TEE, floor.TEE}, {"snp", have.SNP, floor.SNP}, {"microcode", have.Microcode, floor.Microcode}} {
		if c.got < c.floor {
			out = append(out, fmt.Sprintf("%s %d < %d", c.name, c.got, c.floor))
		}
	}
	if have.FMC != nil && *have.FMC < floor.FMC {
		out = append(out, fmt.Sprintf("fmc %d < %d", *have.FMC, floor.FMC))
	}
	return out
}

// KDS extension OIDs go-sev-guest v0.15.0 does not name.
var (
	oidFmcSpl = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 9}
	oidAKI    = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidKDS    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704}
)

// TurinHWIDSize is the size of a Turin VCEK's hwID: the first 8 bytes
// of the report's CHIP_ID, the rest of which is zero.
const TurinHWIDSize = 8

// kdsV1 are the KDS extensions of a struct-version-1 V[CL]EK certificate
// (AMD 57230: Turin and later).
type kdsV1 struct {
	ProductName string
	ProductLine string
	TCB         uint64 // TCB_VERSION in the product line's layout
	HWID        []byte // VCEK: 8 bytes
	CSPID       string // VLEK
}

// kdsStructVersion returns the struct version a V[CL]EK declares, or -1
// when it declares none that parses.
func kdsStructVersion(cert *x509.Certificate) int {
	for _, e := range cert.Extensions {
		if e.Id.Equal(kds.OidStructVersion) {
			var v int
			if rest, err := asn1.Unmarshal(e.Value, &v); err == nil && len(rest) == 0 && v >= 0 && v <= 255 {
				return v
			}
			return -1
		}
	}
	return -1
}

// parseKDSv1 reads the KDS extensions of a struct-version-1 V[CL]EK of
// kind key. Every extension must be a KDS one (or the authority key
// identifier, as go-sev-guest allows), none twice; fmcSPL, blSPL,
// teeSPL, snpSPL and ucodeSPL are required; spl4–spl7, reserved, must be
// zero when present; a VCEK carries an 8-byte hwID and no CSP_ID, a VLEK
// the reverse.
func parseKDSv1(cert *x509.Certificate, key abi.ReportSigner) (*kdsV1, error) {
	seen := map[string]pkix.Extension{}
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidAKI) {
			continue
		}
		if !strings.HasPrefix(e.Id.String()+".", oidKDS.String()+".") {
			return nil, fmt.Errorf("%v certificate: unexpected extension %v", key, e.Id)
		}
		if _, dup := seen[e.Id.String()]; dup {
			return nil, fmt.Errorf("%v certificate: extension %v given twice", key, e.Id)
		}
		seen[e.Id.String()] = e
	}
	take := func(id asn1.ObjectIdentifier) (pkix.Extension, bool) {
		e, ok := seen[id.String()]
		delete(seen, id.String())
		return e, ok
	}
	u8 := func(id asn1.ObjectIdentifier, name string, required bool) (uint8, error) {
		e, ok := take(id)
		if !ok {
			if required {
				return 0, fmt.Errorf("%v certificate: no %s extension", key, name)
			}
			return 0, nil
		}
		var v int
		rest, err := asn1.Unmarshal(e.Value, &v)
		if err != nil || len(rest) != 0 || v < 0 || v > 255 {
			return 0, fmt.Errorf("%v certificate: %s is not an INTEGER 0-255", key, name)
		}
		return uint8(v), nil
	}
	ia5 := func(e pkix.Extension, name string) (string, error) {
		var s string
		if len(e.Value) == 0 || e.Value[0] != asn1.TagIA5String {
			return "", fmt.Errorf("%v certificate: %s is not an IA5String", key, name)
		}
		rest, err := asn1.UnmarshalWithParams(e.Value, &s, "ia5")
		if err != nil || len(rest) != 0 {
			return "", fmt.Errorf("%v certificate: %s is not an IA5String", key, name)
		}
		return s, nil
	}

	version, err := u8(kds.OidStructVersion, "structVersion", true)
	if err != nil {
		return nil, err
	}
	if version != 1 {
		return nil, fmt.Errorf("%v certificate: structVersion %d, want 1", key, version)
	}
	out := &kdsV1{}
	pn, ok := take(kds.OidProductName1)
	if !ok {
		return nil, fmt.Errorf("%v certificate: no productName extension", key)
	}
	if out.ProductName, err = ia5(pn, "productName"); err != nil {
		return nil, err
	}
	// "Turin", or with a stepping ("Turin-B0").
	line, _, _ := strings.Cut(out.ProductName, "-")
	if line != "Turin" {
		return nil, fmt.Errorf("%v certificate: productName %q with structVersion 1: only Turin's layout is known", key, out.ProductName)
	}
	out.ProductLine = line
	var t struct{ fmc, bl, tee, snp, ucode uint8 }
	for _, f := range []struct {
		id   asn1.ObjectIdentifier
		name string
		dst  *uint8
	}{{oidFmcSpl, "fmcSPL", &t.fmc}, {kds.OidBlSpl, "blSPL", &t.bl}, {kds.OidTeeSpl, "teeSPL", &t.tee}, {kds.OidSnpSpl, "snpSPL", &t.snp}, {kds.OidUcodeSpl, "ucodeSPL", &t.ucode}} {
		if *f.dst, err = u8(f.id, f.name, true); err != nil {
			return nil, err
		}
	}
	for i, id := range []asn1.ObjectIdentifier{kds.OidSpl4, kds.OidSpl5, kds.OidSpl6, kds.OidSpl7} {
		v, err := u8(id, fmt.Sprintf("spl%d", i+4), false)
		if err != nil {
			return nil, err
		}
		if v != 0 {
			return nil, fmt.Errorf("%v certificate: reserved spl%d is %d, not 0: a TCB layout attestlog does not know", key, i+4, v)
		}
	}
	out.TCB = layoutTurin.compose(policy.SNPTCB{FMC: t.fmc, Bootloader: t.bl, TEE: t.tee, SNP: t.snp, Microcode: t.ucode})

	hw, hasHW := take(kds.OidHwid)
	csp, hasCSP := take(kds.OidCspID)
	switch key {
	case abi.VcekReportSigner:
		if hasCSP || !hasHW {
			return nil, fmt.Errorf("VCEK certificate: want an hwID and no CSP_ID")
		}
		out.HWID = hw.Value
		// As go-sev-guest: KDS writes the hwID untagged; accept it
		// wrapped in an OCTET STRING too.
		if len(out.HWID) != TurinHWIDSize {
			var octets []byte
			if rest, err := asn1.Unmarshal(hw.Value, &octets); err != nil || len(rest) != 0 || len(octets) != TurinHWIDSize {
				return nil, fmt.Errorf("VCEK certificate: hwID is not %d bytes", TurinHWIDSize)
			}
			out.HWID = octets
		}
	case abi.VlekReportSigner:
		if hasHW || !hasCSP {
			return nil, fmt.Errorf("VLEK certificate: want a CSP_ID and no hwID")
		}
		if out.CSPID, err = ia5(csp, "CSP_ID"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no KDS certificate for a report signed by %v", key)
	}
	for id := range seen {
		return nil, fmt.Errorf("%v certificate: unknown AMD KDS extension %s", key, id)
	}
	return out, nil
}

// checkKDSCert makes the checks go-sev-guest's verify makes of every
// V[CL]EK before its chain (validateKDSCertificateProductNonspecific).
func checkKDSCert(cert *x509.Certificate, key abi.ReportSigner) error {
	if cert.Version != 3 {
		return fmt.Errorf("%v certificate version is %v, expected 3", key, cert.Version)
	}
	if cert.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return fmt.Errorf("%v certificate signature algorithm is %v, expected SHA-384 with RSASSA-PSS", key, cert.SignatureAlgorithm)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return fmt.Errorf("%v certificate public key is not ECDSA P-384", key)
	}
	s := cert.Subject
	want := "SEV-" + key.String()
	if s.CommonName != want || !equalOne(s.Organization, "Advanced Micro Devices") || !equalOne(s.OrganizationalUnit, "Engineering") ||
		!equalOne(s.Country, "US") || !equalOne(s.Locality, "Santa Clara") || !equalOne(s.Province, "CA") {
		return fmt.Errorf("%v certificate subject %q is not AMD's %s", key, s, want)
	}
	return nil
}

func equalOne(got []string, want string) bool { return len(got) == 1 && got[0] == want }

// verifyKDSv1Chain verifies a struct-version-1 endorsement key (whose
// extensions are ext) to one of the roots of its product line, and the
// report's signature with it, as verify.SnpAttestation does for the keys
// it reads.
func verifyKDSv1Chain(att *spb.Attestation, ek *x509.Certificate, ext *kdsV1, key abi.ReportSigner, roots map[string][]*snpRoot, now time.Time) error {
	if err := checkKDSCert(ek, key); err != nil {
		return err
	}
	if fms := att.GetReport().GetCpuid1EaxFms(); fms != 0 {
		if line := kds.ProductLineFromFms(fms); line != ext.ProductLine {
			return fmt.Errorf("the report is from a %s CPU (CPUID %08x) but its %v is for %s", line, fms, key, ext.ProductLine)
		}
	}
	var lastErr error = fmt.Errorf("no trusted %s root", ext.ProductLine)
	ok := false
	for _, r := range roots[ext.ProductLine] {
		opts := r.certs.X509Options(now, key)
		if opts == nil {
			lastErr = fmt.Errorf("root of trust missing the intermediate for key %v", key)
			continue
		}
		if _, err := ek.Verify(*opts); err != nil {
			lastErr = fmt.Errorf("error verifying %v certificate: %v", key, err)
			continue
		}
		ok = true
		break
	}
	if !ok {
		return fmt.Errorf("%v could not be verified by any trusted roots. Last error: %v", key, lastErr)
	}
	raw, err := abi.ReportToAbiBytes(att.GetReport())
	if err != nil {
		return err
	}
	return verify.SnpReportSignature(raw, ek)
}

// v0Signer signs v0 views: validate parses them and never checks their
// signature, but x509.CreateCertificate signs whatever it makes (and
// checks the signature it made). Ed25519: a third of P-256's cost for
// that, paid on every Turin decision; validate reads no view's key.
var v0Signer = sync.OnceValues(func() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
})

// v0View returns a copy of att whose endorsement key certificate is a
// struct-version-0 stand-in for ext, for go-sev-guest's validate only:
// its SPL extensions spell ext.TCB's bytes in Milan's positions (so that
// validate, which composes them back into the same 8 bytes and compares
// byte by byte, sees ext.TCB exactly), its hwID is the Turin hwID
// followed by zeros — the 64-byte CHIP_ID a Turin report must carry —
// and its CSP_ID is ext's.
func v0View(att *spb.Attestation, ext *kdsV1, key abi.ReportSigner) (*spb.Attestation, error) {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(ext.TCB))
	var exts []pkix.Extension
	add := func(id asn1.ObjectIdentifier, v any, params string) {
		b, err := asn1.MarshalWithParams(v, params)
		if err != nil {
			panic(err) // ints and strings always marshal
		}
		exts = append(exts, pkix.Extension{Id: id, Value: b})
	}
	add(kds.OidStructVersion, 0, "")
	add(kds.OidProductName1, ext.ProductName, "ia5")
	for _, s := range []struct {
		id asn1.ObjectIdentifier
		v  uint8
	}{{kds.OidBlSpl, p.BlSpl}, {kds.OidTeeSpl, p.TeeSpl}, {kds.OidSpl4, p.Spl4}, {kds.OidSpl5, p.Spl5}, {kds.OidSpl6, p.Spl6}, {kds.OidSpl7, p.Spl7}, {kds.OidSnpSpl, p.SnpSpl}, {kds.OidUcodeSpl, p.UcodeSpl}} {
		add(s.id, int(s.v), "")
	}
	switch key {
	case abi.VcekReportSigner:
		hwid := make([]byte, abi.ChipIDSize)
		copy(hwid, ext.HWID)
		exts = append(exts, pkix.Extension{Id: kds.OidHwid, Value: hwid})
	case abi.VlekReportSigner:
		add(kds.OidCspID, ext.CSPID, "ia5")
	}
	k, err := v0Signer()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attestlog struct-version-0 view, never verified"}, ExtraExtensions: exts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, fmt.Errorf("struct-version-0 view: %v", err)
	}
	chain := &spb.CertificateChain{Extras: att.GetCertificateChain().GetExtras()}
	if key == abi.VlekReportSigner {
		chain.VlekCert = der
	} else {
		chain.VcekCert = der
	}
	return &spb.Attestation{Report: att.GetReport(), CertificateChain: chain}, nil
}
