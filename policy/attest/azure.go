package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// Names of the checks of vTPM evidence (azure-sev-snp, azure-tdx), beside
// the hardware ones of the SNP report or TD quote it carries.
const (
	// VTPMFormat: the HCL report, runtime claims and TPM quote parse.
	VTPMFormat = "vTPM evidence format"
	// ClaimsBinding: the verified hardware report's REPORT_DATA is
	// SHA-256 of the runtime claims (then 32 zero bytes).
	ClaimsBinding = "runtime claims binding"
	// QuoteSignature: the attestation key the runtime claims carry
	// (HCLAkPub) signed the TPM quote.
	QuoteSignature = "vTPM quote signature"
	// QuoteFresh: the quote's extraData is the client's nonce.
	QuoteFresh = "vTPM quote freshness"
	// PCRValues: the PCR values given are those the quote covers.
	PCRValues = "vTPM PCR values"
	// EventLogReplay: the TCG event log, when given, replays to them.
	EventLogReplay = "vTPM event log"
	// QuoteLibrary: go-tpm-tools' own verdict on the quote, shown only
	// when it disagrees with the checks above.
	QuoteLibrary = "vTPM quote (go-tpm-tools)"
)

// VTPMFields are the facts of vTPM evidence, byte strings as lowercase
// hex.
type VTPMFields struct {
	HCLVersion uint32 `json:"hcl_version"`
	// HardwareReport is what the HCL report holds: "SEV-SNP" or "TDX".
	HardwareReport string `json:"hardware_report"`
	// RuntimeClaims is the SHA-256 of the runtime claims.
	RuntimeClaims string `json:"runtime_claims_sha256"`
	// AK names the attestation key HCLAkPub: SHA-256 of its DER
	// SubjectPublicKeyInfo.
	AK     string `json:"ak"`
	AKBits int    `json:"ak_bits"`
	// UserData is the runtime claims' user-data (NV index 0x01400002).
	UserData       string `json:"user_data"`
	VMUniqueID     string `json:"vm_unique_id,omitempty"`
	SecureBoot     *bool  `json:"secure_boot,omitempty"`
	TPMEnabled     *bool  `json:"tpm_enabled,omitempty"`
	ConsoleEnabled *bool  `json:"console_enabled,omitempty"`
	// QuoteExtraData is the quote's qualifying data (the nonce it
	// answers); QuoteSignature its scheme, e.g. RSASSA-SHA256.
	QuoteExtraData string `json:"quote_extra_data"`
	QuoteSignature string `json:"quote_signature"`
	// PCRs are the quoted SHA-256 PCR values by index ("0" to "23").
	PCRs map[string]string `json:"pcrs"`
	// EventLog says whether an event log was given and what it replayed.
	EventLog string `json:"event_log"`
}

// azure is the vTPM half of evidence, parsed.
type azure struct {
	hcl    *vtpm.HCLReport
	claims *vtpm.RuntimeClaims
	quote  *vtpm.Quote
}

// InspectNonce is InspectAs plus, for vTPM evidence, the freshness check
// of its TPM quote: its extraData must be nonce (any length; the samples
// recorded on Azure used nonces of their own).
func (v *Verifier) InspectNonce(b *evidence.Bundle, kind evidence.Kind, nonce []byte) Inspection {
	in := v.InspectAs(b, kind)
	if b != nil && b.VTPM != nil && in.VTPM != nil {
		in.add(quoteFresh(in.VTPM.QuoteExtraData, nonce))
	}
	return in
}

func quoteFresh(extraHex string, nonce []byte) check.Check {
	if nonce == nil {
		return check.Fail(QuoteFresh, "no nonce given: without one, a replayed quote (and the PCRs of an earlier boot) cannot be told apart")
	}
	if extraHex != hex.EncodeToString(nonce) {
		return check.Fail(QuoteFresh, "the TPM quote answers extraData %s, not the nonce %x: it was not made for this request", short(extraHex), nonce)
	}
	return check.Pass(QuoteFresh, "the TPM quote's extraData is the nonce")
}

// keySetQuoteFresh is the quote freshness check of an attestation
// document: its extraData must be evidence.KeySetQuoteData of the
// document's REPORT_DATA (its key set, valid now, and the nonce of a
// challenge). want is that value (nil when it cannot be computed).
func (v *Verifier) keySetQuoteFresh(b *evidence.Bundle, nonce []byte, extraHex string) (want []byte, c check.Check) {
	rd, what, err := v.keySetReportData(b, nonce)
	if err != nil {
		return nil, check.Fail(QuoteFresh, "not evaluated: %v", err)
	}
	want = evidence.KeySetQuoteData([64]byte(rd))
	if extraHex != hex.EncodeToString(want) {
		return want, check.Fail(QuoteFresh, "the TPM quote answers extraData %s, not SHA-256 of the REPORT_DATA that binds %s: it was not made for this key set", short(extraHex), what)
	}
	return want, check.Pass(QuoteFresh, "the TPM quote's extraData is SHA-256 of the REPORT_DATA that binds %s: as fresh as the key set", what)
}

// verifyAzure checks vTPM evidence: the hardware report (the SNP report
// inside the HCL report, or the TD quote) with every check of its
// platform, then that its REPORT_DATA binds the runtime claims, that the
// attestation key they carry signed the TPM quote, that the quote answers
// the nonce and covers the PCR values given, that the event log (if any)
// replays to them, and that the runtime claims' user-data binds the nonce
// and channel key.
func (v *Verifier) verifyAzure(r *Result, b *evidence.Bundle, nonce []byte, full bool) {
	a, err := parseAzure(b)
	if err != nil {
		r.add(check.Fail(VTPMFormat, "%v", err))
		return
	}
	q := a.quote
	el := "no event log"
	if len(b.VTPM.EventLog) > 0 {
		el = fmt.Sprintf("a %d-byte event log", len(b.VTPM.EventLog))
	}
	r.add(check.Pass(VTPMFormat, "HCL report version %d holding a %v report and %d bytes of runtime claims with the attestation key %s; TPM2_Quote over SHA-256 PCRs %s (%s); %s",
		a.hcl.Version, a.hcl.Type, len(a.hcl.Claims), AKKeyName, pcrList(q.PCRs), q.SignatureAlg(), el))
	r.VTPM = a.fields(b)

	// The hardware report, with every check its platform has; the
	// platform and REPORT_DATA checks are this platform's own.
	hw := &evidence.Bundle{Format: evidence.Format}
	var rd []byte
	switch b.Platform {
	case evidence.AzureSEVSNP:
		hw.Platform, hw.Report, hw.VCEK, hw.CertTable = evidence.SEVSNP, a.hcl.Hardware, b.VCEK, b.CertTable
		v.verifySNP(r, hw, nil, full)
		if r.SNP != nil {
			rd, _ = hex.DecodeString(r.SNP.ReportData)
		}
	case evidence.AzureTDX:
		hw.Platform, hw.Quote, hw.TDXCollateral = evidence.TDX, b.Quote, b.TDXCollateral
		v.verifyTDX(r, hw, nil, full)
		if r.TDX != nil {
			rd, _ = hex.DecodeString(r.TDX.ReportData)
		}
	}
	r.Checks = without(r.Checks, check.NonceBinding)
	if full {
		for i, c := range r.Checks {
			if c.Name == check.PlatformAllowed {
				r.Checks[i] = v.azurePlatformCheck(b.Platform)
			}
		}
	}
	r.add(a.claimsBinding(rd, r))

	// The vTPM: its quote, by the key the (now hardware-bound) claims
	// carry.
	ak := a.claims.AK
	pcrs := b.VTPM.PCRs
	sigErr := q.VerifySignature(ak)
	r.add(check.From(QuoteSignature, sigErr, fmt.Sprintf("the TPM quote is signed (%s) by the attestation key %s that the runtime claims carry (RSA-%d, SPKI SHA-256 %s)", q.SignatureAlg(), AKKeyName, ak.N.BitLen(), short(r.VTPM.AK))))
	// The quote's extraData: the nonce, or for an attestation document
	// SHA-256 of its REPORT_DATA (evidence.KeySetQuoteData).
	want := q.ExtraData
	if full {
		want = nonce
		fresh := quoteFresh(r.VTPM.QuoteExtraData, nonce)
		if b.Format == evidence.FormatKeySet {
			want, fresh = v.keySetQuoteFresh(b, nonce, r.VTPM.QuoteExtraData)
		}
		r.add(fresh)
	}
	pcrErr := q.CheckPCRs(pcrs)
	r.add(check.From(PCRValues, pcrErr, fmt.Sprintf("the quote's PCR digest covers the %d SHA-256 PCR values given (PCRs %s)", len(pcrs), pcrList(q.PCRs))))
	// go-tpm-tools decides the quote too; it must agree.
	if libErr := q.VerifyLibrary(ak, want, pcrs); libErr != nil && sigErr == nil && pcrErr == nil && (!full || bytes.Equal(q.ExtraData, want)) {
		r.add(check.Fail(QuoteLibrary, "go-tpm-tools refuses the quote: %v", libErr))
	}
	switch {
	case len(b.VTPM.EventLog) == 0:
		r.add(check.Pass(EventLogReplay, "none given: the PCR values stand on the quote alone"))
	case pcrErr != nil:
		r.add(check.Fail(EventLogReplay, "not evaluated: the PCR values given are not the quoted ones"))
	default:
		rep, err := vtpm.ReplayEventLog(b.VTPM.EventLog, q, pcrs)
		if err != nil {
			r.add(check.Fail(EventLogReplay, "%v", err))
		} else {
			r.VTPM.EventLog = fmt.Sprintf("%d events replayed to PCRs %s", rep.Events, pcrList(rep.PCRs))
			r.add(check.Pass(EventLogReplay, "%d events replay to the quoted values of PCRs %s (the log describes no other PCR)", rep.Events, pcrList(rep.PCRs)))
		}
	}
	if !full {
		return
	}

	// The client's binding, through the user data the guest wrote.
	want, what, err := v.nonceReportData(b, nonce)
	switch {
	case err != nil:
		r.add(check.Fail(check.NonceBinding, "%v", err))
	case a.claims.UserData == nil:
		r.add(check.Fail(check.NonceBinding, "the runtime claims carry no user-data: the guest must write REPORT_DATA (see evidence.ReportData) to vTPM NV index 0x01400002 before reading its HCL report"))
	case !bytes.Equal(a.claims.UserData, want):
		r.add(check.Fail(check.NonceBinding, "the runtime claims' user-data %s does not bind %s: the evidence was not produced for this request", short(r.VTPM.UserData), what))
	default:
		r.add(check.Pass(check.NonceBinding, "the runtime claims' user-data (vTPM NV index 0x01400002) binds %s", what))
	}
}

// AKKeyName is how checks name the vTPM's attestation key.
const AKKeyName = "HCLAkPub"

func parseAzure(b *evidence.Bundle) (*azure, error) {
	hcl, err := vtpm.ParseHCLReport(b.VTPM.HCLReport)
	if err != nil {
		return nil, err
	}
	wantType := vtpm.ReportSNP
	if b.Platform == evidence.AzureTDX {
		wantType = vtpm.ReportTDX
	}
	if hcl.Type != wantType {
		return nil, fmt.Errorf("%s evidence whose HCL report holds a %v report", b.Platform, hcl.Type)
	}
	claims, err := vtpm.ParseRuntimeClaims(hcl.Claims)
	if err != nil {
		return nil, err
	}
	q, err := vtpm.ParseQuote(b.VTPM.Quote, b.VTPM.Signature)
	if err != nil {
		return nil, err
	}
	if len(b.VTPM.PCRs) != len(q.PCRs) {
		return nil, fmt.Errorf("%d PCR values for the %d PCRs the TPM quote selects (%s)", len(b.VTPM.PCRs), len(q.PCRs), pcrList(q.PCRs))
	}
	return &azure{hcl: hcl, claims: claims, quote: q}, nil
}

func (a *azure) fields(b *evidence.Bundle) *VTPMFields {
	cd := sha256.Sum256(a.hcl.Claims)
	f := &VTPMFields{
		HCLVersion: a.hcl.Version, HardwareReport: a.hcl.Type.String(), RuntimeClaims: hex.EncodeToString(cd[:]),
		AK: vtpm.KeyID(a.claims.AK), AKBits: a.claims.AK.N.BitLen(), UserData: hex.EncodeToString(a.claims.UserData),
		VMUniqueID: a.claims.VM.VMUniqueID, SecureBoot: a.claims.VM.SecureBoot, TPMEnabled: a.claims.VM.TPMEnabled, ConsoleEnabled: a.claims.VM.ConsoleEnabled,
		QuoteExtraData: hex.EncodeToString(a.quote.ExtraData), QuoteSignature: a.quote.SignatureAlg(),
		PCRs: map[string]string{}, EventLog: "none",
	}
	for i, p := range a.quote.PCRs {
		f.PCRs[strconv.Itoa(p)] = hex.EncodeToString(b.VTPM.PCRs[i])
	}
	if len(b.VTPM.EventLog) > 0 {
		f.EventLog = "given, not replayed"
	}
	return f
}

// claimsBinding checks the verified hardware report's REPORT_DATA (rd)
// against the runtime claims; for TDX, the HCL report's TDREPORT must
// also be the quoted TD's.
func (a *azure) claimsBinding(rd []byte, r *Result) check.Check {
	want := a.hcl.ExpectedReportData()
	if rd == nil {
		return check.Fail(ClaimsBinding, "not evaluated: the hardware report did not parse")
	}
	if !bytes.Equal(rd, want[:]) {
		return check.Fail(ClaimsBinding, "REPORT_DATA %s is not SHA-256 of the runtime claims (%s) followed by zeros: the claims, and the attestation key in them, are not the ones the hardware vouches for", short(hex.EncodeToString(rd)), short(hex.EncodeToString(want[:32])))
	}
	what := "the SEV-SNP report's"
	if a.hcl.Type == vtpm.ReportTDX {
		what = "the TD quote's"
		if !bytes.Equal(a.hcl.ReportData(), rd) || r.TDX == nil || hex.EncodeToString(a.hcl.TDReportMRTD()) != r.TDX.MRTD {
			return check.Fail(ClaimsBinding, "the HCL report's TDREPORT (REPORT_DATA %s, MRTD %s) is not the quoted TD's: the evidence mixes two TDs", short(hex.EncodeToString(a.hcl.ReportData())), short(hex.EncodeToString(a.hcl.TDReportMRTD())))
		}
	}
	return check.Pass(ClaimsBinding, "%s REPORT_DATA is SHA-256 of the runtime claims (%s…) and 32 zero bytes: the hardware vouches for the attestation key and user data they carry", what, hex.EncodeToString(want[:8]))
}

func (v *Verifier) azurePlatformCheck(platform string) check.Check {
	if v.pol.AllowsPlatform(platform) {
		return check.Pass(check.PlatformAllowed, "policy allows %s (Microsoft's paravisor reports the vTPM's key and the guest's user data; the release names its launch digest)", platform)
	}
	return check.Fail(check.PlatformAllowed, "policy allows only %v, not %s; add a 'platform %s' line to accept it: that trusts the paravisor whose launch digest the release names to run the vTPM and report its key honestly", v.pol.Platforms, platform, platform)
}

func without(l check.List, name string) check.List {
	out := l[:0]
	for _, c := range l {
		if c.Name != name {
			out = append(out, c)
		}
	}
	return out
}

func pcrList(pcrs []int) string {
	var s []string
	for _, p := range pcrs {
		s = append(s, strconv.Itoa(p))
	}
	return strings.Join(s, ",")
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// writeText writes the facts one "vtpm.name<TAB>value" line each, the
// PCRs in index order.
func (f *VTPMFields) writeText(w io.Writer) {
	b := func(p *bool) string {
		if p == nil {
			return "(not stated)"
		}
		return strconv.FormatBool(*p)
	}
	for _, l := range [][2]string{
		{"hcl_version", strconv.Itoa(int(f.HCLVersion))}, {"hardware_report", f.HardwareReport},
		{"runtime_claims_sha256", f.RuntimeClaims}, {"ak", f.AK}, {"ak_bits", strconv.Itoa(f.AKBits)},
		{"user_data", f.UserData}, {"vm_unique_id", f.VMUniqueID}, {"secure_boot", b(f.SecureBoot)},
		{"tpm_enabled", b(f.TPMEnabled)}, {"console_enabled", b(f.ConsoleEnabled)},
		{"quote_extra_data", f.QuoteExtraData}, {"quote_signature", f.QuoteSignature},
	} {
		fmt.Fprintf(w, "vtpm.%s\t%s\n", l[0], l[1])
	}
	for i := range vtpm.PCRCount {
		if v, ok := f.PCRs[strconv.Itoa(i)]; ok {
			fmt.Fprintf(w, "vtpm.pcr%d\t%s\n", i, v)
		}
	}
	fmt.Fprintf(w, "vtpm.event_log\t%s\n", f.EventLog)
}
