// Package evidence is attestlog's attestation evidence bundle: what an
// enclave serves at
//
//	GET /.well-known/attestlog/evidence?nonce=HEX
//
// so that a client can decide, offline, whether to trust it. A bundle
// carries the raw hardware evidence (an AMD SEV-SNP report with its
// certificates, or an Intel TDX DCAP quote v4 or v5), the channel key the
// enclave binds into the report (optional), and a stapled
// [c2sp.org/tlog-proof] for the release the enclave runs, so the client
// needs no lookup that would reveal which enclave it talks to.
//
// # JSON format
//
//	{
//	  "format":      "attestlog-evidence/v1",
//	  "platform":    "sev-snp" | "tdx",
//	  "report":      base64,  // sev-snp: the 1184-byte ATTESTATION_REPORT
//	  "cert_table":  base64,  // sev-snp, optional: the GHCB extended-report certificate table
//	  "vcek":        base64,  // sev-snp, optional: the VCEK or VLEK certificate, DER
//	  "quote":       base64,  // tdx: the DCAP quote v4 or v5 (PCK chain inside)
//	  "channel_key": base64,  // optional: e.g. the server's TLS key as DER SubjectPublicKeyInfo
//	  "proof":       string,  // optional: c2sp.org/tlog-proof text for the running release
//	  "vtpm":        object,  // azure-sev-snp and azure-tdx: the vTPM evidence (see VTPM)
//	  "tdx_collateral": {…},  // tdx, optional: Intel PCS collateral, stapled (see TDXCollateral)
//	  "event_log":   base64,  // tdx, optional: the CC event log (CCEL log area) behind RTMR0-3
//	  "firmware_endorsement": base64 // optional: Google's signed VMLaunchEndorsement of the firmware
//	}
//
// Unknown fields are rejected; bytes are standard base64 (encoding/json's
// []byte). An SNP bundle needs the endorsement key certificate either in
// the certificate table or in "vcek"; the ASK/ARK come from the
// verifier's roots, never from the bundle.
//
// Platforms azure-sev-snp and azure-tdx are confidential VMs whose guest
// a vTPM measures behind Microsoft's paravisor: the hardware report is
// inside the vtpm object's HCL report (SNP; its VCEK in "vcek") or
// authenticated by the TD quote in "quote" (TDX).
//
// The last three fields are signed or bound by others than the enclave, so
// anyone may staple them and REPORT_DATA does not cover them: Intel signs
// the collateral (a verifier checks it to Intel's root exactly as the
// policy's tdx-collateral directory, and it must be current at the
// verification time), the event log must replay to the quote's signed
// RTMRs, and Google signs the endorsement (checked against the policy's
// trust-root gce-tcb roots). Each is bounded: MaxCollateralItemSize per
// collateral piece, MaxEventLogSize, MaxEndorsementSize.
//
// # REPORT_DATA binding
//
// The enclave asks its hardware for evidence whose 64-byte REPORT_DATA is
//
//	REPORT_DATA = SHA-512( "attestlog-evidence-v1" || 0x00 ||
//	                       len(nonce) as one byte || nonce || channel_key )
//
// where nonce is the client's nonce (16 to 64 bytes) and channel_key is
// the bundle's channel_key (empty when absent). See [ReportData]. A
// client checks it with the nonce it sent; a match proves the evidence is
// fresh and, when there is a channel key, that the key belongs to the
// attested enclave.
//
// On azure-sev-snp and azure-tdx the guest cannot choose REPORT_DATA (the
// paravisor puts SHA-256 of its runtime claims there). The guest writes
// the same 64 bytes (Bundle.ExpectedReportData) to vTPM NV index
// 0x01400002 before reading its HCL report, so they appear as the runtime
// claims' "user-data", and asks its vTPM for a TPM2_Quote with the nonce
// as extraData.
//
// [c2sp.org/tlog-proof]: https://c2sp.org/tlog-proof
package evidence

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
)

// Format is the value of a bundle's "format" field.
const Format = "attestlog-evidence/v1"

// FormatGPU is the format of a bundle that also carries GPU evidence
// (GPUs): its REPORT_DATA binds the GPUs too (Bundle.ExpectedReportData).
const FormatGPU = "attestlog-evidence/v2"

// MaxGPUs bounds the GPUs of one bundle.
const MaxGPUs = 16

// Platforms.
const (
	SEVSNP = "sev-snp"
	TDX    = "tdx"
)

// Size limits. Parse rejects anything larger.
const (
	// MaxBundleSize bounds a whole JSON bundle.
	MaxBundleSize = 512 << 10
	// SNPReportSize is the size of an SEV-SNP ATTESTATION_REPORT.
	SNPReportSize = 1184
	// MaxCertTableSize bounds an SNP certificate table.
	MaxCertTableSize = 64 << 10
	// MaxCertSize bounds a VCEK/VLEK certificate.
	MaxCertSize = 16 << 10
	// MaxQuoteSize bounds a TDX quote, v4 or v5 (a quote with its PCK
	// chain is ~5 KiB; Google Cloud's come zero-padded to 8000 bytes).
	MaxQuoteSize = 64 << 10
	// MaxCollateralItemSize bounds each piece of stapled TDX collateral
	// (Intel's TCB info is ~4 KiB, a PCK CRL a few KiB).
	MaxCollateralItemSize = 64 << 10
	// MaxEventLogSize bounds a stapled CC event log, trailing padding
	// trimmed (a Container-Optimized OS boot logs ~18 KiB).
	MaxEventLogSize = 128 << 10
	// MaxEndorsementSize bounds a stapled firmware endorsement (Google's
	// are ~5 KiB: the golden measurement, a certificate and CA bundle).
	MaxEndorsementSize = 64 << 10
	// MaxChannelKeySize bounds a channel key.
	MaxChannelKeySize = 8 << 10
	// MaxProofSize bounds a stapled tlog-proof (the proof parser's own limit).
	MaxProofSize = tlogproof.MaxSize
	// MaxIndexProofSize bounds a stapled index proof (log/vindex's limit).
	MaxIndexProofSize = vindex.MaxProofSize
	// MaxRelated bounds the related entries' proofs stapled beside the
	// release's.
	MaxRelated = 16
	// MinNonceSize and MaxNonceSize bound a client nonce.
	MinNonceSize = 16
	MaxNonceSize = 64
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed evidence")

// Bundle is attestation evidence.
type Bundle struct {
	Format   string `json:"format"`
	Platform string `json:"platform"`
	// Report is the raw SEV-SNP ATTESTATION_REPORT (sev-snp).
	Report []byte `json:"report,omitempty"`
	// CertTable is the SEV-SNP extended report certificate table
	// (sev-snp, optional).
	CertTable []byte `json:"cert_table,omitempty"`
	// VCEK is the VCEK or VLEK certificate, DER (sev-snp, optional).
	VCEK []byte `json:"vcek,omitempty"`
	// Quote is the TDX DCAP quote v4 or v5 (tdx).
	Quote []byte `json:"quote,omitempty"`
	// ChannelKey is bound into REPORT_DATA along with the nonce.
	ChannelKey []byte `json:"channel_key,omitempty"`
	// Proof is the c2sp.org/tlog-proof text for the release the enclave
	// runs (opaque here; see log/tlogproof).
	Proof string `json:"proof,omitempty"`
	// IndexProof is the log's attestlog.dev/vindex-proof/v2 for the
	// release's identity: every release with it and every revocation of
	// one of them, under a fresh witnessed checkpoint (opaque here; see
	// log/vindex).
	IndexProof string `json:"index_proof,omitempty"`
	// Related are c2sp.org/tlog-proofs of entries about the release that
	// a client cannot decide without: a revocation in the index proof
	// whose signer may not revoke this release (another operator's)
	// counts against it unless its entry is here to show so.
	Related []string `json:"related,omitempty"`
	// GPUs is the evidence of the enclave's GPUs (format v2): GPU i's
	// report answers GPUNonce(nonce, i), and REPORT_DATA commits to all of
	// them, so the CPU's hardware vouches for which GPUs it talks to.
	// In format v3 GPU i answers GPUNonce(the key set's GPU nonce seed, i)
	// and the key set commits to them (see Bundle.GPUNonce).
	GPUs []GPU `json:"gpus,omitempty"`
	// VTPM is the vTPM half of a vTPM-based confidential VM's evidence
	// (platforms azure-sev-snp and azure-tdx only; see vtpm.go).
	VTPM *VTPM `json:"vtpm,omitempty"`
	// KeySet is the attested key set (format v3, see channel/keyset):
	// REPORT_DATA commits to it (KeySetReportData), and it commits to
	// the GPUs' evidence.
	KeySet []byte `json:"key_set,omitempty"`
	// TDXCollateral is Intel PCS collateral for the quote, stapled (tdx,
	// optional): what the policy's tdx-collateral directory holds, so a
	// client needs no directory and no network.
	TDXCollateral *TDXCollateral `json:"tdx_collateral,omitempty"`
	// EventLog is the TD's CC event log (tdx, optional): the log area the
	// ACPI CCEL table points to, trailing padding trimmed. A verifier
	// replays it and refuses the evidence unless it ends in the quote's
	// RTMRs.
	EventLog []byte `json:"event_log,omitempty"`
	// FirmwareEndorsement is a serialized VMLaunchEndorsement
	// (github.com/google/gce-tcb-verifier) of the firmware that the
	// MEASUREMENT or MRTD covers (optional).
	FirmwareEndorsement []byte `json:"firmware_endorsement,omitempty"`
}

// TDXCollateral is Intel PCS collateral for one quote: the bodies and
// issuer-chain headers of PCS's answers, as the tdx-collateral directory
// (policy/attest) keeps them. The PCK CRL and root CA CRL are required
// in a bundle: without them a stapler could hide a revoked PCK.
type TDXCollateral struct {
	// TCBInfo is the body of GET /tdx/certification/v4/tcb?fmspc=…
	// ({"tcbInfo":…,"signature":…}), byte for byte.
	TCBInfo []byte `json:"tcb_info"`
	// TCBInfoIssuerChain is its TCB-Info-Issuer-Chain, PEM.
	TCBInfoIssuerChain string `json:"tcb_info_issuer_chain"`
	// QEIdentity is the body of GET /tdx/certification/v4/qe/identity.
	QEIdentity []byte `json:"qe_identity"`
	// QEIdentityIssuerChain is its SGX-Enclave-Identity-Issuer-Chain, PEM.
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	// PCKCRL is the DER CRL of the CA that issued the quote's PCK
	// certificate (platform or processor).
	PCKCRL []byte `json:"pck_crl"`
	// PCKCRLIssuerChain is its SGX-PCK-CRL-Issuer-Chain, PEM.
	PCKCRLIssuerChain string `json:"pck_crl_issuer_chain"`
	// RootCACRL is the DER CRL of the Intel SGX Root CA.
	RootCACRL []byte `json:"root_ca_crl"`
}

func (c *TDXCollateral) check() error {
	for _, f := range []struct {
		name string
		n    int
	}{
		{"tcb_info", len(c.TCBInfo)}, {"tcb_info_issuer_chain", len(c.TCBInfoIssuerChain)},
		{"qe_identity", len(c.QEIdentity)}, {"qe_identity_issuer_chain", len(c.QEIdentityIssuerChain)},
		{"pck_crl", len(c.PCKCRL)}, {"pck_crl_issuer_chain", len(c.PCKCRLIssuerChain)},
		{"root_ca_crl", len(c.RootCACRL)},
	} {
		if f.n == 0 || f.n > MaxCollateralItemSize {
			return fmt.Errorf("tdx_collateral.%s is %d bytes; want 1 to %d (a stapled collateral carries all seven pieces)", f.name, f.n, MaxCollateralItemSize)
		}
	}
	return nil
}

// GPU is one GPU's evidence.
type GPU struct {
	Arch string `json:"arch"` // e.g. HOPPER
	// Report is the SPDM GET_MEASUREMENTS request and signed response
	// (see policy/gpu/spdm).
	Report []byte `json:"report"`
	// CertChain is the GPU's device certificate chain, PEM, leaf first.
	CertChain string `json:"cert_chain"`
	// RIMs are NVIDIA's signed RIMs for its driver and VBIOS, stapled
	// (optional; they are NVIDIA-signed, so anyone may staple them).
	RIMs [][]byte `json:"rims,omitempty"`
	// OCSP are DER OCSP responses, stapled, for the device chain's
	// certificates after the leaf and the RIMs' signing chains (signed
	// by their issuers, so anyone may staple them; not in GPUDigest).
	OCSP [][]byte `json:"ocsp,omitempty"`
}

// Size limits of GPU evidence.
const (
	MaxGPUReportSize = 64 << 10
	MaxGPUChainSize  = 32 << 10
	MaxRIMSize       = 128 << 10
	MaxGPUOCSP       = 16
	MaxOCSPSize      = 16 << 10
)

// GPUNonce is the SPDM nonce GPU i must answer for the client's nonce.
func GPUNonce(nonce []byte, i int) [32]byte {
	h := sha256.New()
	h.Write([]byte("attestlog-gpu-nonce-v1\x00"))
	h.Write([]byte{byte(i)})
	h.Write(nonce)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// GPUDigest commits to the GPUs' evidence (arch, report and chain of
// each, in order; RIMs are not evidence of the device and are excluded).
func GPUDigest(gpus []GPU) [48]byte {
	h := sha512.New384()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	for _, g := range gpus {
		field([]byte(g.Arch))
		field(g.Report)
		field([]byte(g.CertChain))
	}
	var out [48]byte
	h.Sum(out[:0])
	return out
}

// ExpectedReportData is the REPORT_DATA the CPU evidence must carry for
// nonce: ReportData for a v1 bundle; for a v2 bundle SHA-512 of
// "attestlog-evidence-v2" ‖ 0x00 ‖ len(nonce) ‖ nonce ‖ GPUDigest ‖
// channel key.
func (b *Bundle) ExpectedReportData(nonce []byte) ([64]byte, error) {
	if b.Format == FormatKeySet {
		return KeySetReportData(b.KeySet, nonce)
	}
	if len(b.GPUs) == 0 {
		return ReportData(nonce, b.ChannelKey)
	}
	if err := CheckNonce(nonce); err != nil {
		return [64]byte{}, err
	}
	d := GPUDigest(b.GPUs)
	h := sha512.New()
	h.Write([]byte("attestlog-evidence-v2\x00"))
	h.Write([]byte{byte(len(nonce))})
	h.Write(nonce)
	h.Write(d[:])
	h.Write(b.ChannelKey)
	var rd [64]byte
	h.Sum(rd[:0])
	return rd, nil
}

// Kind says what raw input Parse recognised.
type Kind string

const (
	KindBundle       Kind = "attestlog evidence bundle"
	KindSNPReport    Kind = "SEV-SNP report"
	KindSNPExtReport Kind = "SEV-SNP report with certificate table"
	KindTDXQuote     Kind = "TDX quote v4"
	KindTDXQuoteV5   Kind = "TDX quote v5"
)

// Parse reads evidence in any of the forms attestlog accepts and returns
// it as a bundle: a JSON bundle; a raw SEV-SNP report (exactly 1184
// bytes); an SEV-SNP report followed by its certificate table (what
// snpguest and the extended guest request produce); or a raw TDX quote v4
// or v5.
// Raw forms carry no channel key and no proof.
func Parse(b []byte) (*Bundle, Kind, error) {
	if len(b) > MaxBundleSize {
		return nil, "", fmt.Errorf("%w: %d bytes; the limit is %d", ErrMalformed, len(b), MaxBundleSize)
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		if bu, ok, err := parseTrustee(b); ok {
			return bu, KindAzureTrustee, err
		}
		bu, err := ParseBundle(b)
		return bu, KindBundle, err
	case isTDXQuote(b):
		if len(b) > MaxQuoteSize {
			return nil, "", fmt.Errorf("%w: TDX quote of %d bytes; the limit is %d", ErrMalformed, len(b), MaxQuoteSize)
		}
		kind := KindTDXQuote
		if binary.LittleEndian.Uint16(b) == 5 {
			kind = KindTDXQuoteV5
		}
		return &Bundle{Format: Format, Platform: TDX, Quote: clone(b)}, kind, nil
	case len(b) == SNPReportSize && isSNPReport(b):
		return &Bundle{Format: Format, Platform: SEVSNP, Report: clone(b)}, KindSNPReport, nil
	case len(b) > SNPReportSize && isSNPReport(b):
		bu := &Bundle{Format: Format, Platform: SEVSNP, Report: clone(b[:SNPReportSize]), CertTable: clone(b[SNPReportSize:])}
		if err := bu.Check(); err != nil {
			return nil, "", err
		}
		return bu, KindSNPExtReport, nil
	}
	return nil, "", fmt.Errorf("%w: not a JSON evidence bundle, an SEV-SNP report (%d bytes, optionally followed by its certificate table) or a TDX quote v4 or v5 (%d bytes given)", ErrMalformed, SNPReportSize, len(b))
}

// ParseBundle parses a JSON bundle strictly: size limits, no unknown
// members, no member twice in one object, member names exactly as
// documented (not in another case), no trailing data, fields consistent
// with the platform (docs/spec/evidence.md).
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes; the limit is %d", ErrMalformed, len(b), MaxBundleSize)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var bu Bundle
	if err := d.Decode(&bu); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	if err := checkMembers(b, reflect.TypeFor[Bundle]()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := bu.Check(); err != nil {
		return nil, err
	}
	return &bu, nil
}

// Check reports whether b is well formed: known format and platform,
// fields of that platform only, sizes within limits. It does not verify
// anything cryptographic.
func (b *Bundle) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if err := b.checkKeySet(); err != nil {
		return err
	}
	switch {
	case b.Format == Format && len(b.GPUs) == 0:
	case b.Format == FormatKeySet && len(b.GPUs) == 0:
	case (b.Format == FormatGPU || b.Format == FormatKeySet) && len(b.GPUs) > 0:
		if len(b.GPUs) > MaxGPUs {
			return bad("%d GPUs; the limit is %d", len(b.GPUs), MaxGPUs)
		}
		for i, g := range b.GPUs {
			if len(g.Report) == 0 || len(g.Report) > MaxGPUReportSize || g.CertChain == "" || len(g.CertChain) > MaxGPUChainSize || len(g.Arch) > 32 || len(g.RIMs) > 4 {
				return bad("gpus[%d]: a report (at most %d bytes), a certificate chain (at most %d), an arch and at most 4 RIMs are required", i, MaxGPUReportSize, MaxGPUChainSize)
			}
			for _, r := range g.RIMs {
				if len(r) > MaxRIMSize {
					return bad("gpus[%d]: a RIM of %d bytes; the limit is %d", i, len(r), MaxRIMSize)
				}
			}
			if len(g.OCSP) > MaxGPUOCSP {
				return bad("gpus[%d]: %d OCSP responses; the limit is %d", i, len(g.OCSP), MaxGPUOCSP)
			}
			for _, r := range g.OCSP {
				if len(r) == 0 || len(r) > MaxOCSPSize {
					return bad("gpus[%d]: an OCSP response of %d bytes; want 1 to %d", i, len(r), MaxOCSPSize)
				}
			}
		}
	case b.Format == FormatGPU:
		return bad("format %q without GPUs", b.Format)
	case len(b.GPUs) > 0:
		return bad("GPUs need format %q or %q", FormatGPU, FormatKeySet)
	default:
		return bad("format %q, want %q, %q or %q", b.Format, Format, FormatGPU, FormatKeySet)
	}
	if b.VTPM != nil && !IsVTPMPlatform(b.Platform) {
		return bad("a vtpm object belongs to %s or %s evidence, not %q", AzureSEVSNP, AzureTDX, b.Platform)
	}
	switch b.Platform {
	case AzureSEVSNP, AzureTDX:
		if err := b.checkVTPMPlatform(); err != nil {
			return err
		}
	case SEVSNP:
		if len(b.Report) != SNPReportSize {
			return bad("sev-snp report is %d bytes, want %d", len(b.Report), SNPReportSize)
		}
		if !isSNPReport(b.Report) {
			return bad("sev-snp report has an unknown version %d", binary.LittleEndian.Uint32(b.Report))
		}
		if len(b.Quote) != 0 || b.TDXCollateral != nil || len(b.EventLog) != 0 {
			return bad("sev-snp evidence with TDX fields (quote, tdx_collateral or event_log)")
		}
		if err := b.checkSNPCerts(); err != nil {
			return err
		}
	case TDX:
		if !isTDXQuote(b.Quote) {
			return bad("tdx quote is not a TDX quote v4 or v5 (TDX 1.0 or 1.5 body)")
		}
		if len(b.Quote) > MaxQuoteSize {
			return bad("tdx quote is %d bytes; the limit is %d", len(b.Quote), MaxQuoteSize)
		}
		if len(b.Report) != 0 || len(b.CertTable) != 0 || len(b.VCEK) != 0 {
			return bad("tdx evidence with SEV-SNP fields")
		}
		if b.TDXCollateral != nil {
			if err := b.TDXCollateral.check(); err != nil {
				return bad("%v", err)
			}
		}
		if len(b.EventLog) > MaxEventLogSize {
			return bad("event log is %d bytes; the limit is %d (trim the CCEL area's trailing padding)", len(b.EventLog), MaxEventLogSize)
		}
	default:
		return bad("platform %q, want sev-snp, tdx, %s or %s", b.Platform, AzureSEVSNP, AzureTDX)
	}
	if len(b.FirmwareEndorsement) > MaxEndorsementSize {
		return bad("firmware endorsement is %d bytes; the limit is %d", len(b.FirmwareEndorsement), MaxEndorsementSize)
	}
	if len(b.ChannelKey) > MaxChannelKeySize {
		return bad("channel key is %d bytes; the limit is %d", len(b.ChannelKey), MaxChannelKeySize)
	}
	if len(b.Proof) > MaxProofSize {
		return bad("proof is %d bytes; the limit is %d", len(b.Proof), MaxProofSize)
	}
	if len(b.IndexProof) > MaxIndexProofSize {
		return bad("index proof is %d bytes; the limit is %d", len(b.IndexProof), MaxIndexProofSize)
	}
	if len(b.Related) > MaxRelated {
		return bad("%d related proofs; the limit is %d", len(b.Related), MaxRelated)
	}
	for i, r := range b.Related {
		if len(r) == 0 || len(r) > MaxProofSize {
			return bad("related proof %d is %d bytes; want 1 to %d", i, len(r), MaxProofSize)
		}
	}
	return nil
}

// Marshal returns the JSON form of b.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(b, "", "  ")
}

// ReportData returns the REPORT_DATA that binds nonce and channelKey:
// SHA-512("attestlog-evidence-v1" || 0x00 || byte(len(nonce)) || nonce ||
// channelKey). The nonce must be MinNonceSize to MaxNonceSize bytes.
func ReportData(nonce, channelKey []byte) ([64]byte, error) {
	if err := CheckNonce(nonce); err != nil {
		return [64]byte{}, err
	}
	h := sha512.New()
	h.Write([]byte("attestlog-evidence-v1\x00"))
	h.Write([]byte{byte(len(nonce))})
	h.Write(nonce)
	h.Write(channelKey)
	var rd [64]byte
	h.Sum(rd[:0])
	return rd, nil
}

// ErrNonce is returned for a nonce of the wrong size or encoding.
var ErrNonce = fmt.Errorf("nonce must be %d to %d bytes (%d to %d hex characters)", MinNonceSize, MaxNonceSize, 2*MinNonceSize, 2*MaxNonceSize)

// CheckNonce reports whether nonce has an acceptable size.
func CheckNonce(nonce []byte) error {
	if len(nonce) < MinNonceSize || len(nonce) > MaxNonceSize {
		return ErrNonce
	}
	return nil
}

// ParseNonce decodes a hex nonce, as in the nonce query parameter.
func ParseNonce(s string) ([]byte, error) {
	if len(s) > 2*MaxNonceSize {
		return nil, ErrNonce
	}
	n, err := hex.DecodeString(s)
	if err != nil {
		return nil, ErrNonce
	}
	return n, CheckNonce(n)
}

// isSNPReport reports whether b starts like an SEV-SNP report: a known
// report version (2 to 5) and the reserved policy bit 17 set.
func isSNPReport(b []byte) bool {
	if len(b) < SNPReportSize {
		return false
	}
	v := binary.LittleEndian.Uint32(b[0:4])
	policy := binary.LittleEndian.Uint64(b[8:16])
	return v >= 2 && v <= 5 && policy&(1<<17) != 0
}

// isTDXQuote reports whether b starts like a TDX DCAP quote with an
// ECDSA-P256 attestation key (type 2) and TEE type 0x81: version 4, or
// version 5 whose body descriptor (at offset 48) names a TDX 1.0 body
// (type 2, 584 bytes) or a TDX 1.5 body (type 3, 648 bytes: the v4 body
// plus TEE_TCB_SVN2 and MRSERVICETD).
func isTDXQuote(b []byte) bool {
	const (
		minQuoteV4 = 0x3FC // go-tdx-guest abi.QuoteMinSize
		minQuoteV5 = 1026  // go-tdx-guest abi.QuoteMinSizeV5
	)
	if len(b) < minQuoteV4 || binary.LittleEndian.Uint16(b[2:4]) != 2 || binary.LittleEndian.Uint32(b[4:8]) != 0x81 {
		return false
	}
	switch binary.LittleEndian.Uint16(b[0:2]) {
	case 4:
		return true
	case 5:
		if len(b) < minQuoteV5 {
			return false
		}
		typ, size := binary.LittleEndian.Uint16(b[48:50]), binary.LittleEndian.Uint32(b[50:54])
		return (typ == 2 && size == 584) || (typ == 3 && size == 648)
	}
	return false
}

// checkCertTable checks the GHCB certificate table layout: 24-byte entries
// (GUID, offset, length) ending with an all-zero entry, every blob inside
// the table. go-sev-guest's parser trusts offset+length not to overflow;
// this check runs first so that it never sees a table that does.
func checkCertTable(t []byte) error {
	if len(t) == 0 {
		return nil
	}
	const entry = 24
	for i := 0; ; i++ {
		off := i * entry
		if off+entry > len(t) {
			return errors.New("no terminating entry")
		}
		e := t[off : off+entry]
		o := uint64(binary.LittleEndian.Uint32(e[16:20]))
		l := uint64(binary.LittleEndian.Uint32(e[20:24]))
		if bytes.Equal(e, make([]byte, entry)) {
			return nil
		}
		if o+l > uint64(len(t)) || o < uint64(off+entry) {
			return fmt.Errorf("entry %d (offset %d, length %d) is outside the table of %d bytes", i, o, l, len(t))
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
