package reportsrc

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	sevverify "github.com/google/go-sev-guest/verify"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"

	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// An Azure confidential VM (SEV-SNP or TDX, behind Microsoft's paravisor)
// gives its guest no hardware report device: the paravisor asks the
// hardware for the report and hands it out through the vTPM. How Azure's
// own guest tooling does it, which this source follows:
//
//   - the guest writes its 64 bytes of user data to vTPM NV index
//     0x01400002, defining it (owner read and write, SHA-256 name, 64
//     bytes) when it is absent or of another size; the paravisor then
//     regenerates the HCL report at NV index 0x01400001, whose runtime
//     claims carry the user data ("user-data", hex) and the vTPM's
//     attestation key (HCLAkPub), and whose hardware report's REPORT_DATA
//     is SHA-256 of those claims (kinvolk/azure-cvm-tooling,
//     az-cvm-vtpm/src/vtpm/mod.rs: get_report_with_report_data, which
//     sleeps 3 s before reading; this source polls until the user data
//     appears instead);
//   - the attestation key is the persistent key 0x81000003, and signs a
//     TPM2_Quote over the 24 SHA-256 PCRs (same file: VTPM_AK_HANDLE,
//     get_quote);
//   - for SEV-SNP, the VCEK comes from the Instance Metadata Service's
//     THIM cache: GET http://169.254.169.254/metadata/THIM/amd/certification
//     with "Metadata: true", answering JSON {"vcekCert": PEM,
//     "certificateChain": PEM, …} (az-cvm-vtpm/az-snp-vtpm/src/imds.rs);
//   - for TDX, the TD quote comes from IMDS too: POST the TDREPORT (the
//     first 1024 bytes of the HCL report's hardware area) to
//     http://169.254.169.254/acc/tdquote as JSON {"report": base64url},
//     answered {"quote": base64url} (az-cvm-vtpm/az-tdx-vtpm/src/imds.rs);
//   - the TCG event log is Linux's
//     /sys/kernel/security/tpm0/binary_bios_measurements.
//
// The evidence is the layout policy/attest verifies (policy/vtpm; the
// software Azure VM of internal/demo/enclave makes the same).

// Azure's vTPM handles and the paths the Azure source reads.
const (
	// TPMPath is the kernel's TPM resource manager.
	TPMPath = "/dev/tpmrm0"
	// AzureHCLReportIndex is the NV index of the paravisor's HCL report.
	AzureHCLReportIndex = 0x01400001
	// AzureUserDataIndex is the NV index the guest writes its user data
	// (REPORT_DATA) to.
	AzureUserDataIndex = 0x01400002
	// AzureAKHandle is the persistent handle of the vTPM's attestation key
	// (HCLAkPub).
	AzureAKHandle = 0x81000003
	// EventLogPath is where Linux exposes the TCG event log.
	EventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"
	// DefaultIMDS is Azure's Instance Metadata Service (link-local).
	DefaultIMDS = "http://169.254.169.254"
	// IMDSVCEKPath and IMDSTDQuotePath are the IMDS endpoints of the VCEK
	// (THIM) and of TD quotes.
	IMDSVCEKPath    = "/metadata/THIM/amd/certification"
	IMDSTDQuotePath = "/acc/tdquote"
	// MaxIMDSAnswer bounds an IMDS answer (a VCEK and its chain, or a TD
	// quote, as JSON: a few KiB).
	MaxIMDSAnswer = 64 << 10
	// DefaultIMDSTimeout bounds an IMDS request.
	DefaultIMDSTimeout = 10 * time.Second
	// DefaultReportWait is how long the source waits for the paravisor
	// to refresh the HCL report after the user data is written.
	DefaultReportWait = 5 * time.Second
)

// AzureOptions configure the Azure vTPM source. The zero value is
// Azure's.
type AzureOptions struct {
	// IMDS is the Instance Metadata Service's base URL (default
	// DefaultIMDS).
	IMDS string
	// HTTPClient makes the IMDS requests (default: no proxy, no
	// redirects, a DefaultIMDSTimeout timeout; Azure's IMDS refuses
	// proxied requests).
	HTTPClient *http.Client
	// ReportWait is how long to wait for the HCL report to carry the
	// user data written (default DefaultReportWait).
	ReportWait time.Duration
	// EventLogPath is the TCG event log's file (default EventLogPath);
	// a missing file means evidence without an event log.
	EventLogPath string
}

type azureVTPM struct {
	tpm  io.ReadWriter
	name string
	o    AzureOptions
	imds *url.URL
}

// OpenAzureVTPM opens TPMPath and returns the Azure vTPM source on it. It
// fails when the TPM has no HCL report (not an Azure confidential VM).
func OpenAzureVTPM(o AzureOptions) (Source, error) {
	rw, err := tpm2.OpenTPM(TPMPath)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %s: %w", TPMPath, err)
	}
	if err := probeAzure(rw); err != nil {
		rw.Close()
		return nil, fmt.Errorf("azure-vtpm: %s: %w", TPMPath, err)
	}
	s, err := azureSource(rw, TPMPath, o)
	if err != nil {
		rw.Close()
	}
	return s, err
}

// AzureVTPM is the source of an Azure confidential VM on its vTPM (the
// device opened, or a simulator in tests), which it uses alone: for each
// report it writes rd to NV index 0x01400002, waits for the HCL report at
// 0x01400001 to carry it, has the attestation key quote the SHA-256 PCRs
// with extraData evidence.KeySetQuoteData(rd), reads the PCRs and the
// event log, and gets the VCEK (SEV-SNP) or the TD quote (TDX) from IMDS.
// The evidence's hardware REPORT_DATA is the paravisor's (SHA-256 of the
// runtime claims); rd is bound through the claims' user-data.
func AzureVTPM(tpm io.ReadWriter, o AzureOptions) (Source, error) {
	return azureSource(tpm, "a TPM given", o)
}

func azureSource(rw io.ReadWriter, what string, o AzureOptions) (Source, error) {
	if o.IMDS == "" {
		o.IMDS = DefaultIMDS
	}
	u, err := url.Parse(o.IMDS)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("azure-vtpm: IMDS %q: want a base URL such as %s", o.IMDS, DefaultIMDS)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Timeout:   DefaultIMDSTimeout,
			Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: DefaultIMDSTimeout},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.ReportWait <= 0 {
		o.ReportWait = DefaultReportWait
	}
	if o.EventLogPath == "" {
		o.EventLogPath = EventLogPath
	}
	return &azureVTPM{tpm: rw, name: "Azure vTPM (" + what + ", IMDS " + u.Redacted() + ")", o: o, imds: u}, nil
}

func (s *azureVTPM) Name() string { return s.name }

// probeAzure says why rw is not an Azure vTPM (nil when it is): NV index
// 0x01400001 must be readable and hold an HCL report.
func probeAzure(rw io.ReadWriter) error {
	b, err := readNV(rw, AzureHCLReportIndex, vtpm.MaxHCLReportSize)
	if err != nil {
		return fmt.Errorf("no HCL report: %w (not an Azure confidential VM's vTPM)", err)
	}
	if !bytes.HasPrefix(b, []byte(vtpm.HCLMagic)) {
		return fmt.Errorf("NV index 0x%08x does not hold an HCL report (no %q magic): not an Azure confidential VM's vTPM", AzureHCLReportIndex, vtpm.HCLMagic)
	}
	return nil
}

// readNV reads NV index idx whole, with owner authorisation (an empty
// password, as on Azure), refusing an index larger than limit.
func readNV(rw io.ReadWriter, idx uint32, limit int) ([]byte, error) {
	pub, err := tpm2.NVReadPublic(rw, tpmutil.Handle(idx))
	if err != nil {
		return nil, fmt.Errorf("reading the public area of NV index 0x%08x: %w", idx, err)
	}
	if pub.DataSize == 0 || int(pub.DataSize) > limit {
		return nil, fmt.Errorf("NV index 0x%08x holds %d bytes; want 1 to %d", idx, pub.DataSize, limit)
	}
	b, err := tpm2.NVReadEx(rw, tpmutil.Handle(idx), tpm2.HandleOwner, "", 0)
	if err != nil {
		return nil, fmt.Errorf("reading NV index 0x%08x: %w", idx, err)
	}
	return b, nil
}

// writeUserData writes rd to NV index 0x01400002, (re)defining it first
// when it is absent or not 64 bytes, as Azure's guest library does.
func writeUserData(rw io.ReadWriter, rd [64]byte) error {
	h := tpmutil.Handle(AzureUserDataIndex)
	pub, err := tpm2.NVReadPublic(rw, h)
	if err == nil && int(pub.DataSize) != len(rd) {
		if err := tpm2.NVUndefineSpace(rw, "", tpm2.HandleOwner, h); err != nil {
			return fmt.Errorf("NV index 0x%08x holds %d bytes, not %d, and undefining it failed: %w", AzureUserDataIndex, pub.DataSize, len(rd), err)
		}
	}
	if err != nil || int(pub.DataSize) != len(rd) {
		def := tpm2.NVPublic{NVIndex: h, NameAlg: tpm2.AlgSHA256, Attributes: tpm2.AttrOwnerWrite | tpm2.AttrOwnerRead, DataSize: uint16(len(rd))}
		if derr := tpm2.NVDefineSpaceEx(rw, tpm2.HandleOwner, "", def, ownerAuth); derr != nil {
			return fmt.Errorf("defining NV index 0x%08x (64 bytes, owner read and write): %w", AzureUserDataIndex, derr)
		}
	}
	if err := tpm2.NVWrite(rw, tpm2.HandleOwner, h, "", rd[:], 0); err != nil {
		return fmt.Errorf("writing the user data to NV index 0x%08x: %w", AzureUserDataIndex, err)
	}
	return nil
}

var ownerAuth = tpm2.AuthCommand{Session: tpm2.HandlePasswordSession, Attributes: tpm2.AttrContinueSession}

// ErrStaleHCLReport means the paravisor did not put the user data written
// into its HCL report in time.
var ErrStaleHCLReport = errors.New("the HCL report does not carry the user data written")

// hclReport waits (within ReportWait, or ctx) for the HCL report whose
// runtime claims carry rd as user-data, and returns it as read, parsed.
func (s *azureVTPM) hclReport(ctx context.Context, rd [64]byte) ([]byte, *vtpm.HCLReport, *vtpm.RuntimeClaims, error) {
	deadline := time.Now().Add(s.o.ReportWait)
	wait := 20 * time.Millisecond
	var last error
	for {
		raw, err := readNV(s.tpm, AzureHCLReportIndex, vtpm.MaxHCLReportSize)
		if err != nil {
			return nil, nil, nil, err
		}
		h, err := vtpm.ParseHCLReport(raw)
		var c *vtpm.RuntimeClaims
		if err == nil {
			c, err = vtpm.ParseRuntimeClaims(h.Claims)
		}
		switch {
		case err != nil:
			last = err
		case !bindsClaims(h):
			// Read while the paravisor rewrote it, or not its own.
			last = errors.New("the HCL report's hardware REPORT_DATA is not SHA-256 of its runtime claims")
		case !bytes.Equal(c.UserData, rd[:]):
			last = fmt.Errorf("%w: its user-data is %s, not %x…", ErrStaleHCLReport, shortHex(c.UserData), rd[:8])
		default:
			return raw, h, c, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil, nil, fmt.Errorf("the paravisor's HCL report (NV index 0x%08x), %v after the user data was written to 0x%08x: %w", AzureHCLReportIndex, s.o.ReportWait, AzureUserDataIndex, last)
		}
		select {
		case <-ctx.Done():
			return nil, nil, nil, fmt.Errorf("waiting for the HCL report to carry the user data: %w (last: %v)", ctx.Err(), last)
		case <-time.After(min(wait, left)):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// bindsClaims says whether the HCL report's hardware REPORT_DATA is
// SHA-256 of its runtime claims (the TDREPORT's for TDX, which the quote
// will carry).
func bindsClaims(h *vtpm.HCLReport) bool {
	want := h.ExpectedReportData()
	return bytes.Equal(h.ReportData(), want[:])
}

func shortHex(b []byte) string {
	if len(b) == 0 {
		return "absent"
	}
	return hex.EncodeToString(b[:min(8, len(b))]) + "…"
}

// quotePCRs makes the attestation key quote all 24 SHA-256 PCRs with
// extraData, then reads them. A PCR extended between the two (Linux's IMA
// extends PCR 10 at run time) makes the values disagree with the quote's
// digest: the pair is made again, up to three times.
func (s *azureVTPM) quotePCRs(ak *rsa.PublicKey, extra []byte) (attest, sig []byte, pcrs [][]byte, err error) {
	sel := tpm2.PCRSelection{Hash: tpm2.AlgSHA256}
	for i := range vtpm.PCRCount {
		sel.PCRs = append(sel.PCRs, i)
	}
	for try := 1; ; try++ {
		attest, sig, err = tpm2.QuoteRaw(s.tpm, AzureAKHandle, "", "", extra, sel, tpm2.AlgNull)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("TPM2_Quote by the attestation key 0x%08x: %w", AzureAKHandle, err)
		}
		pcrs = pcrs[:0]
		for i := 0; i < vtpm.PCRCount; i += 8 {
			m, err := tpm2.ReadPCRs(s.tpm, tpm2.PCRSelection{Hash: tpm2.AlgSHA256, PCRs: sel.PCRs[i : i+8]})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("reading SHA-256 PCRs %d to %d: %w", i, i+7, err)
			}
			for j := i; j < i+8; j++ {
				if len(m[j]) != vtpm.PCRSize {
					return nil, nil, nil, fmt.Errorf("the TPM gave no SHA-256 value for PCR %d", j)
				}
				pcrs = append(pcrs, m[j])
			}
		}
		q, err := vtpm.ParseQuote(attest, sig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("the TPM's quote: %w", err)
		}
		if err := q.VerifySignature(ak); err != nil {
			return nil, nil, nil, fmt.Errorf("the TPM's quote: %w (HCLAkPub)", err)
		}
		if !bytes.Equal(q.ExtraData, extra) {
			return nil, nil, nil, errors.New("the TPM's quote does not carry the extraData asked for")
		}
		err = q.CheckPCRs(pcrs)
		if err == nil {
			return attest, sig, pcrs, nil
		}
		if try == 3 {
			return nil, nil, nil, fmt.Errorf("the PCRs changed between the quote and their reading, %d times: %w", try, err)
		}
	}
}

func (s *azureVTPM) Report(ctx context.Context, rd [64]byte) (*evidence.Bundle, error) {
	if err := writeUserData(s.tpm, rd); err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	raw, hcl, claims, err := s.hclReport(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	// The key at 0x81000003 must be the one the claims vouch for, or
	// no verifier accepts its quote.
	pub, _, _, err := tpm2.ReadPublic(s.tpm, AzureAKHandle)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: reading the attestation key 0x%08x: %w", AzureAKHandle, err)
	}
	k, err := pub.Key()
	if ak, ok := k.(*rsa.PublicKey); err != nil || !ok || !ak.Equal(claims.AK) {
		return nil, fmt.Errorf("azure-vtpm: the key at 0x%08x is not the attestation key HCLAkPub of the runtime claims (%v)", AzureAKHandle, err)
	}
	attest, sig, pcrs, err := s.quotePCRs(claims.AK, evidence.KeySetQuoteData(rd))
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	el, err := readBounded(s.o.EventLogPath, evidence.MaxVTPMEventLogSize)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: the TCG event log: %w", err)
	}
	b := &evidence.Bundle{Format: evidence.Format,
		VTPM: &evidence.VTPM{Version: evidence.VTPMVersion, HCLReport: raw, Quote: attest, Signature: sig, PCRs: pcrs, EventLog: el}}
	switch hcl.Type {
	case vtpm.ReportSNP:
		b.Platform = evidence.AzureSEVSNP
		if b.VCEK, err = s.vcek(ctx, hcl.Hardware); err != nil {
			return nil, fmt.Errorf("azure-vtpm: %w", err)
		}
	case vtpm.ReportTDX:
		b.Platform = evidence.AzureTDX
		if b.Quote, err = s.tdQuote(ctx, hcl); err != nil {
			return nil, fmt.Errorf("azure-vtpm: %w", err)
		}
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("azure-vtpm: the evidence assembled: %w", err)
	}
	return b, nil
}

// readBounded reads path, refusing more than limit bytes; a missing file
// reads as nothing.
func readBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return b, nil
}

// imdsCall makes an IMDS request and returns its body, refusing an
// answer other than 200 or over MaxIMDSAnswer.
func (s *azureVTPM) imdsCall(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u := s.imds.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IMDS %s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxIMDSAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("IMDS %s %s: reading the answer: %w", method, u.Redacted(), err)
	}
	if len(out) > MaxIMDSAnswer {
		return nil, fmt.Errorf("IMDS %s %s answered over %d bytes: refused", method, u.Redacted(), MaxIMDSAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IMDS %s %s answered %s: %q", method, u.Redacted(), resp.Status, strings.ToValidUTF8(string(out[:min(len(out), 200)]), "?"))
	}
	return out, nil
}

// vcek gets the VCEK from THIM and checks that it signed report (the HCL
// report's SEV-SNP report): a VCEK of another chip or TCB would make
// evidence no verifier accepts. Its DER is returned; the AMD chain THIM
// sends beside it is not (verifiers anchor the VCEK at their own roots).
func (s *azureVTPM) vcek(ctx context.Context, report []byte) ([]byte, error) {
	body, err := s.imdsCall(ctx, http.MethodGet, IMDSVCEKPath, nil)
	if err != nil {
		return nil, err
	}
	return vcekOf(body, report)
}

// vcekOf reads THIM's answer body (JSON: vcekCert, a PEM certificate) and
// returns the VCEK's DER if it signed report.
func vcekOf(body, report []byte) ([]byte, error) {
	var ans struct {
		VCEK string `json:"vcekCert"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("IMDS THIM answer: %w", err)
	}
	blk, _ := pem.Decode([]byte(ans.VCEK))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("IMDS THIM answer: vcekCert is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("IMDS THIM answer: vcekCert: %w", err)
	}
	if err := sevverify.SnpReportSignature(report, cert); err != nil {
		return nil, fmt.Errorf("the VCEK IMDS served (%s) does not sign the HCL report's SEV-SNP report (another chip's or another TCB's?): %w", cert.Subject, err)
	}
	return blk.Bytes, nil
}

// tdQuote has IMDS quote the HCL report's TDREPORT and checks that the
// quote is of that TDREPORT (its REPORT_DATA and MRTD).
func (s *azureVTPM) tdQuote(ctx context.Context, hcl *vtpm.HCLReport) ([]byte, error) {
	req, _ := json.Marshal(map[string]string{"report": base64.RawURLEncoding.EncodeToString(hcl.Hardware[:vtpm.TDReportSize])})
	body, err := s.imdsCall(ctx, http.MethodPost, IMDSTDQuotePath, req)
	if err != nil {
		return nil, err
	}
	return tdQuoteOf(body, hcl)
}

// tdQuoteOf reads IMDS's TD quote answer body (JSON: quote, base64url)
// and returns the quote if it is of hcl's TDREPORT.
func tdQuoteOf(body []byte, hcl *vtpm.HCLReport) ([]byte, error) {
	var ans struct {
		Quote string `json:"quote"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("IMDS TD quote answer: %w", err)
	}
	q, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(ans.Quote, "="))
	if err != nil {
		return nil, fmt.Errorf("IMDS TD quote answer: quote is not base64url: %w", err)
	}
	p, err := tdxabi.QuoteToProto(q)
	if err != nil {
		return nil, fmt.Errorf("IMDS TD quote answer: %w", err)
	}
	var reportData, mrtd []byte
	switch p := p.(type) {
	case *tpb.QuoteV4:
		reportData, mrtd = p.GetTdQuoteBody().GetReportData(), p.GetTdQuoteBody().GetMrTd()
	case *tpb.QuoteV5:
		b := p.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5()
		reportData, mrtd = b.GetReportData(), b.GetMrTd()
	}
	if !bytes.Equal(reportData, hcl.ReportData()) || !bytes.Equal(mrtd, hcl.TDReportMRTD()) {
		return nil, errors.New("IMDS answered a TD quote of another TDREPORT (its REPORT_DATA or MRTD differs)")
	}
	return q, nil
}
