// Package vtpm reads the evidence of confidential VMs whose guest is
// measured by a virtual TPM behind a paravisor, as on Azure (SEV-SNP and
// TDX confidential VMs, including the H100 ones): the paravisor's HCL
// report with its runtime claims, a TPM2_Quote by the vTPM's attestation
// key, the PCR values it covers and, optionally, the TCG event log.
//
// How the pieces bind (README.md beside this file has the byte layouts
// and a worked example):
//
//   - The guest cannot choose REPORT_DATA. The paravisor (Microsoft's HCL)
//     asks the hardware for an SEV-SNP report or a TDREPORT whose
//     REPORT_DATA is SHA-256(runtime claims) followed by 32 zero bytes, and
//     writes the HCL report (header "HCLA", the hardware report, then the
//     runtime claims JSON) into vTPM NV index 0x01400001.
//   - The runtime claims carry the vTPM's attestation key (a JWK with
//     "kid":"HCLAkPub") and the 64 bytes the guest last wrote to NV index
//     0x01400002 ("user-data").
//   - The guest's own boot is measured into the vTPM's PCRs; a TPM2_Quote
//     signed by that attestation key binds the PCR values (pcrDigest) and
//     the verifier's nonce (extraData).
//
// Parsing is strict (sizes, versions, lengths, no duplicate JSON names);
// the cryptographic checks are go-tpm's and go-tpm-tools' (the quote) and
// go-eventlog's (the replay). Nothing here decides trust: policy/attest
// runs these checks beside the hardware chain and names each outcome.
package vtpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("malformed vTPM evidence")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Layout of an HCL report (all integers little-endian).
const (
	// HCLHeaderSize is the size of the header: "HCLA", version, report
	// size, request type, status, 12 reserved bytes.
	HCLHeaderSize = 32
	// HardwareReportSize is the size of the hardware report area: an
	// SEV-SNP ATTESTATION_REPORT, or a TDREPORT (1024 bytes) padded.
	HardwareReportSize = 1184
	// IGVMRequestDataOffset is where the IGVM request data starts: data
	// size, version, report type, hash type, variable data size.
	IGVMRequestDataOffset = HCLHeaderSize + HardwareReportSize
	// RuntimeClaimsOffset is where the variable data (the runtime claims)
	// starts.
	RuntimeClaimsOffset = IGVMRequestDataOffset + 20
	// MaxHCLReportSize bounds an HCL report (Azure's NV index holds 2600
	// bytes: the report, then zero padding).
	MaxHCLReportSize = 16 << 10
	// MaxRuntimeClaimsSize bounds the runtime claims.
	MaxRuntimeClaimsSize = 8 << 10
	// TDReportSize is the size of a TDREPORT_STRUCT.
	TDReportSize = 1024
)

// HCLMagic starts every HCL report.
const HCLMagic = "HCLA"

// ReportType is the IGVM report type: which hardware report the HCL
// report carries.
type ReportType uint32

// Report types (IGVM_ATTEST_REPORT_TYPE). attestlog reads SNP and TDX.
const (
	ReportSNP ReportType = 2
	ReportTDX ReportType = 4
)

func (t ReportType) String() string {
	switch t {
	case ReportSNP:
		return "SEV-SNP"
	case ReportTDX:
		return "TDX"
	}
	return fmt.Sprintf("report type %d", uint32(t))
}

// hashSHA256 is the IGVM hash type of SHA-256, the only one attestlog
// accepts (the paravisors seen in the field use it).
const hashSHA256 = 1

// HCLReport is a parsed HCL report.
type HCLReport struct {
	// Version is the header's version (1 and 2 are known).
	Version uint32
	// RequestType and Status are the header's, as given.
	RequestType, Status uint32
	// Type says what Hardware holds.
	Type ReportType
	// Hardware is the hardware report area, HardwareReportSize bytes: the
	// SEV-SNP report, or the TDREPORT followed by padding.
	Hardware []byte
	// Claims are the runtime claims exactly as hashed into REPORT_DATA.
	Claims []byte
}

// ParseHCLReport parses an HCL report as read from NV index 0x01400001:
// the report, then any padding (ignored: nothing covers it). It checks
// the magic, the versions, that every size field agrees with the others,
// the report type (SNP or TDX) and the hash type (SHA-256). It does not
// verify anything.
func ParseHCLReport(b []byte) (*HCLReport, error) {
	if len(b) > MaxHCLReportSize {
		return nil, malformed("HCL report of %d bytes; the limit is %d", len(b), MaxHCLReportSize)
	}
	if len(b) < RuntimeClaimsOffset {
		return nil, malformed("HCL report of %d bytes; at least %d are needed", len(b), RuntimeClaimsOffset)
	}
	if string(b[:4]) != HCLMagic {
		return nil, malformed("HCL report does not start with %q", HCLMagic)
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	h := &HCLReport{Version: u32(4), RequestType: u32(12), Status: u32(16), Type: ReportType(u32(IGVMRequestDataOffset + 8))}
	if h.Version != 1 && h.Version != 2 {
		return nil, malformed("HCL report version %d; attestlog reads versions 1 and 2", h.Version)
	}
	dataSize, igvmVersion, hashType, varSize := u32(IGVMRequestDataOffset), u32(IGVMRequestDataOffset+4), u32(IGVMRequestDataOffset+12), u32(IGVMRequestDataOffset+16)
	switch {
	case igvmVersion != 1:
		return nil, malformed("IGVM request data version %d; attestlog reads version 1", igvmVersion)
	case h.Type != ReportSNP && h.Type != ReportTDX:
		return nil, malformed("the HCL report holds a %v; attestlog reads SEV-SNP (2) and TDX (4)", h.Type)
	case hashType != hashSHA256:
		return nil, malformed("runtime claims hash type %d; attestlog reads SHA-256 (1)", hashType)
	case varSize == 0 || varSize > MaxRuntimeClaimsSize:
		return nil, malformed("runtime claims of %d bytes; want 1 to %d", varSize, MaxRuntimeClaimsSize)
	case int(varSize) > len(b)-RuntimeClaimsOffset:
		return nil, malformed("runtime claims of %d bytes run past the %d-byte HCL report", varSize, len(b))
	case dataSize != 20+varSize:
		return nil, malformed("IGVM request data size %d, want %d (20 + %d bytes of runtime claims)", dataSize, 20+varSize, varSize)
	case u32(8) != RuntimeClaimsOffset+varSize:
		return nil, malformed("HCL report size field %d, want %d (the header, hardware report, request data and claims)", u32(8), RuntimeClaimsOffset+varSize)
	}
	h.Hardware = bytes.Clone(b[HCLHeaderSize:IGVMRequestDataOffset])
	h.Claims = bytes.Clone(b[RuntimeClaimsOffset : RuntimeClaimsOffset+int(varSize)])
	if h.Type == ReportTDX && h.Hardware[0] != 0x81 {
		return nil, malformed("the TDREPORT's type is 0x%02x, not TDX (0x81)", h.Hardware[0])
	}
	return h, nil
}

// ExpectedReportData is the REPORT_DATA the paravisor puts in the
// hardware report: SHA-256 of the runtime claims, then 32 zero bytes.
func (h *HCLReport) ExpectedReportData() [64]byte {
	var rd [64]byte
	d := sha256.Sum256(h.Claims)
	copy(rd[:], d[:])
	return rd
}

// ReportData is the REPORT_DATA of the hardware report area (for TDX, the
// TDREPORT's, which only the TD quote authenticates).
func (h *HCLReport) ReportData() []byte {
	if h.Type == ReportTDX {
		return h.Hardware[128:192] // REPORTMACSTRUCT.REPORTDATA
	}
	return h.Hardware[0x50:0x90] // ATTESTATION_REPORT.REPORT_DATA
}

// TDReportMRTD is the MRTD of the TDREPORT (TDINFO at 512, MRTD after
// ATTRIBUTES and XFAM), or nil for an SNP report.
func (h *HCLReport) TDReportMRTD() []byte {
	if h.Type != ReportTDX {
		return nil
	}
	return h.Hardware[512+16 : 512+64]
}
