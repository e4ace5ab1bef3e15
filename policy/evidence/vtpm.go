package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
)

// Platforms of confidential VMs measured by a vTPM behind a paravisor
// (Azure's SEV-SNP and TDX confidential VMs). Their evidence carries a
// VTPM part; see package policy/vtpm for how it binds.
const (
	// AzureSEVSNP: the SEV-SNP report is inside the HCL report; the bundle's
	// vcek (and optionally cert_table) carry its VCEK, from Azure's THIM.
	AzureSEVSNP = "azure-sev-snp"
	// AzureTDX: the HCL report holds a TDREPORT, which only the TD quote in
	// the bundle's quote field authenticates.
	AzureTDX = "azure-tdx"
)

// IsVTPMPlatform reports whether platform's evidence carries a VTPM part.
func IsVTPMPlatform(platform string) bool { return platform == AzureSEVSNP || platform == AzureTDX }

// VTPMVersion is the version of the vtpm object this package reads.
const VTPMVersion = 1

// Size limits of the vtpm object. Check rejects anything larger.
const (
	MaxHCLReportSize    = 16 << 10
	MaxTPMQuoteSize     = 1 << 10
	MaxTPMSignatureSize = 1 << 10
	MaxPCRs             = 24
	PCRSize             = 32
	MaxVTPMEventLogSize = 256 << 10 // policy/vtpm's own bound on a TCG event log
)

// VTPM is the vTPM half of a vTPM-based confidential VM's evidence:
//
//	"vtpm": {
//	  "version":    1,
//	  "hcl_report": base64,   // NV index 0x01400001 as read (report, then padding)
//	  "quote":      base64,   // the TPMS_ATTEST of a TPM2_Quote; extraData = the client's nonce
//	  "signature":  base64,   // its TPMT_SIGNATURE, by the attestation key HCLAkPub
//	  "pcrs":       [base64], // the SHA-256 values of the PCRs the quote selects, ascending
//	  "event_log":  base64    // optional: the TCG event log (crypto-agile)
//	}
type VTPM struct {
	Version   int      `json:"version"`
	HCLReport []byte   `json:"hcl_report"`
	Quote     []byte   `json:"quote"`
	Signature []byte   `json:"signature"`
	PCRs      [][]byte `json:"pcrs"`
	EventLog  []byte   `json:"event_log,omitempty"`
}

// checkVTPMPlatform checks the fields of a vTPM platform's bundle: the
// vtpm object is required, and the hardware evidence is in it (SNP) or in
// quote (TDX).
func (b *Bundle) checkVTPMPlatform() error {
	bad := func(format string, args ...any) error { return malformedf(format, args...) }
	v := b.VTPM
	if v == nil {
		return bad("%s evidence without its vtpm object", b.Platform)
	}
	switch {
	case v.Version != VTPMVersion:
		return bad("vtpm version %d, want %d", v.Version, VTPMVersion)
	case len(v.HCLReport) == 0 || len(v.HCLReport) > MaxHCLReportSize:
		return bad("vtpm hcl_report of %d bytes; want 1 to %d", len(v.HCLReport), MaxHCLReportSize)
	case len(v.Quote) == 0 || len(v.Quote) > MaxTPMQuoteSize:
		return bad("vtpm quote of %d bytes; want 1 to %d", len(v.Quote), MaxTPMQuoteSize)
	case len(v.Signature) == 0 || len(v.Signature) > MaxTPMSignatureSize:
		return bad("vtpm signature of %d bytes; want 1 to %d", len(v.Signature), MaxTPMSignatureSize)
	case len(v.PCRs) == 0 || len(v.PCRs) > MaxPCRs:
		return bad("vtpm pcrs has %d values; want 1 to %d", len(v.PCRs), MaxPCRs)
	case len(v.EventLog) > MaxVTPMEventLogSize:
		return bad("vtpm event_log of %d bytes; the limit is %d", len(v.EventLog), MaxVTPMEventLogSize)
	}
	for i, p := range v.PCRs {
		if len(p) != PCRSize {
			return bad("vtpm pcrs[%d] is %d bytes, want %d (SHA-256)", i, len(p), PCRSize)
		}
	}
	switch b.Platform {
	case AzureSEVSNP:
		if len(b.Report) != 0 || len(b.Quote) != 0 {
			return bad("%s evidence with a report or quote field: its SEV-SNP report is in the HCL report", b.Platform)
		}
		if err := b.checkSNPCerts(); err != nil {
			return err
		}
	case AzureTDX:
		if !isTDXQuote(b.Quote) || len(b.Quote) > MaxQuoteSize {
			return bad("%s evidence needs its TD quote (a TDX quote of at most %d bytes) in quote", b.Platform, MaxQuoteSize)
		}
		if len(b.Report) != 0 || len(b.CertTable) != 0 || len(b.VCEK) != 0 {
			return bad("%s evidence with SEV-SNP fields", b.Platform)
		}
		if b.TDXCollateral != nil {
			if err := b.TDXCollateral.check(); err != nil {
				return bad("%v", err)
			}
		}
	}
	if b.Platform == AzureSEVSNP && b.TDXCollateral != nil {
		return bad("%s evidence with tdx_collateral", b.Platform)
	}
	return nil
}

// KeySetQuoteData is the extraData of the TPM quote in an attestation
// document's vTPM evidence (format FormatKeySet): SHA-256 of the
// document's REPORT_DATA (KeySetReportData of its key set, and of the
// nonce for a challenge). The quote is then as fresh as the key set the
// hardware report binds; a quote of an earlier key set (an earlier boot's
// PCRs) does not answer it. A TPM's qualifying data holds at most a
// digest, hence the hash.
func KeySetQuoteData(rd [64]byte) []byte {
	h := sha256.Sum256(rd[:])
	return h[:]
}

// KindAzureTrustee is evidence recorded in the JSON of the Confidential
// Containers trustee's az-snp-vtpm and az-tdx-vtpm verifiers.
const KindAzureTrustee Kind = "Azure vTPM evidence (trustee JSON)"

// trusteeQuote is trustee's tpm_quote: hex strings (version 1 and 2) or
// byte lists (the earlier layout).
type trusteeQuote struct {
	Signature json.RawMessage   `json:"signature"`
	Message   json.RawMessage   `json:"message"`
	PCRs      []json.RawMessage `json:"pcrs"`
}

type trusteeEvidence struct {
	Version  *int            `json:"version"`
	TPMQuote *trusteeQuote   `json:"tpm_quote"`
	Quote    *trusteeQuote   `json:"quote"`
	HCL      json.RawMessage `json:"hcl_report"`
	Report   json.RawMessage `json:"report"`
	VCEK     json.RawMessage `json:"vcek"`
	TDQuote  json.RawMessage `json:"td_quote"`
}

// parseTrustee reads trustee's Azure evidence JSON: version 2
// ({"version":2,"tpm_quote":{signature,message,pcrs as hex},
// "hcl_report":base64,"vcek":base64 DER}), version 1 of TDX
// ({…,"td_quote":base64url}) and the earlier layout ({"quote":{…byte
// lists},"report":byte list,"vcek":PEM}). ok is false when b is not in
// any of them (it may be a bundle). trustee keeps only the RSA
// signature's bytes; like trustee's verifier, the bundle takes them as
// RSASSA-PKCS1-v1_5 with SHA-256 (the only scheme of Azure's vTPM AK).
func parseTrustee(b []byte) (bu *Bundle, ok bool, err error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(b, &probe) != nil || probe["format"] != nil {
		return nil, false, nil
	}
	_, tq := probe["tpm_quote"]
	_, old := probe["report"]
	if !tq && !old {
		return nil, false, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var t trusteeEvidence
	if err := d.Decode(&t); err != nil {
		return nil, true, malformedf("trustee evidence: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, true, malformedf("trustee evidence: trailing data after the JSON object")
	}
	q := t.TPMQuote
	hcl := t.HCL
	if t.TPMQuote == nil {
		q, hcl = t.Quote, t.Report
	}
	if q == nil || hcl == nil || (t.TPMQuote != nil && (t.Quote != nil || t.Report != nil)) {
		return nil, true, malformedf("trustee evidence: want tpm_quote and hcl_report (or, in the earlier layout, quote and report)")
	}
	v := &VTPM{Version: VTPMVersion}
	if v.HCLReport, err = trusteeBytes(hcl, false); err != nil {
		return nil, true, malformedf("trustee evidence: hcl_report: %v", err)
	}
	if v.Quote, err = trusteeBytes(q.Message, true); err != nil {
		return nil, true, malformedf("trustee evidence: quote message: %v", err)
	}
	sig, err := trusteeBytes(q.Signature, true)
	if err != nil || len(sig) == 0 || len(sig) > 512 {
		return nil, true, malformedf("trustee evidence: quote signature: want 1 to 512 bytes (%v)", err)
	}
	v.Signature = binary.BigEndian.AppendUint16([]byte{0x00, 0x14, 0x00, 0x0b}, uint16(len(sig))) // TPM_ALG_RSASSA, TPM_ALG_SHA256, size
	v.Signature = append(v.Signature, sig...)
	if len(q.PCRs) > MaxPCRs {
		return nil, true, malformedf("trustee evidence: %d PCRs; the limit is %d", len(q.PCRs), MaxPCRs)
	}
	for i, p := range q.PCRs {
		pb, err := trusteeBytes(p, true)
		if err != nil {
			return nil, true, malformedf("trustee evidence: pcrs[%d]: %v", i, err)
		}
		v.PCRs = append(v.PCRs, pb)
	}
	bu = &Bundle{Format: Format, VTPM: v}
	if len(v.HCLReport) >= 1228 && binary.LittleEndian.Uint32(v.HCLReport[1224:]) == 4 { // IGVM report type TDX
		bu.Platform = AzureTDX
		if bu.Quote, err = trusteeBytes(t.TDQuote, false); err != nil {
			return nil, true, malformedf("trustee evidence: td_quote: %v", err)
		}
	} else {
		bu.Platform = AzureSEVSNP
		if t.VCEK != nil {
			if bu.VCEK, err = trusteeBytes(t.VCEK, false); err != nil {
				return nil, true, malformedf("trustee evidence: vcek: %v", err)
			}
			if blk, _ := pem.Decode(bu.VCEK); blk != nil {
				bu.VCEK = blk.Bytes
			}
		}
	}
	if err := bu.Check(); err != nil {
		return nil, true, err
	}
	return bu, true, nil
}

// trusteeBytes decodes a trustee byte field: a list of byte values, or a
// string — hex where asHex (the quote's fields), else base64 (standard or
// URL alphabet, padded or not) or PEM (returned as given).
func trusteeBytes(raw json.RawMessage, asHex bool) ([]byte, error) {
	var list []byte
	if len(raw) > 0 && raw[0] == '[' {
		var ints []uint8
		if err := json.Unmarshal(raw, &ints); err != nil {
			return nil, err
		}
		return append(list, ints...), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	if asHex {
		return hex.DecodeString(s)
	}
	if bytes.HasPrefix([]byte(s), []byte("-----BEGIN ")) {
		return []byte(s), nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			return d, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// checkSNPCerts bounds the SEV-SNP certificate fields (cert_table, vcek)
// of sev-snp and azure-sev-snp evidence.
func (b *Bundle) checkSNPCerts() error {
	if len(b.CertTable) > MaxCertTableSize {
		return malformedf("certificate table is %d bytes; the limit is %d", len(b.CertTable), MaxCertTableSize)
	}
	if err := checkCertTable(b.CertTable); err != nil {
		return malformedf("certificate table: %v", err)
	}
	if len(b.VCEK) > MaxCertSize {
		return malformedf("vcek is %d bytes; the limit is %d", len(b.VCEK), MaxCertSize)
	}
	return nil
}
