package spdm

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/attestlog/attestlog/policy/check"
)

// Names of the GPU checks.
const (
	CheckReport    = "GPU report format"
	CheckChain     = "GPU certificate chain"
	CheckSignature = "GPU report signature"
	CheckNonce     = "GPU nonce binding"
)

// GPUEvidence is one GPU's evidence: its report and its device chain
// (PEM, leaf first), and what its collector says (not trusted).
type GPUEvidence struct {
	Arch        string `json:"arch"`
	Certificate []byte `json:"-"`
	Report      []byte `json:"-"`
	Nonce       string `json:"nonce,omitempty"`
}

// MaxEvidenceJSON bounds NVIDIA's serialized evidence (8 GPUs are 100 KiB).
const MaxEvidenceJSON = 2 << 20

// ParseEvidenceJSON reads evidence as NVIDIA's attestation SDK serializes
// it: a JSON list of {"arch","certificate","evidence","nonce"}, the
// certificate a base64 PEM chain and the evidence the base64 report.
func ParseEvidenceJSON(b []byte) ([]GPUEvidence, error) {
	if len(b) > MaxEvidenceJSON {
		return nil, fmt.Errorf("%w: evidence JSON of %d bytes, the limit is %d", ErrMalformed, len(b), MaxEvidenceJSON)
	}
	var raw []struct {
		Arch        string `json:"arch"`
		Certificate string `json:"certificate"`
		Evidence    string `json:"evidence"`
		Nonce       string `json:"nonce"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: evidence JSON: %v", ErrMalformed, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: evidence JSON lists no GPU", ErrMalformed)
	}
	var out []GPUEvidence
	for i, r := range raw {
		c, err := base64.StdEncoding.DecodeString(r.Certificate)
		if err != nil {
			return nil, fmt.Errorf("%w: GPU %d: certificate is not base64", ErrMalformed, i)
		}
		e, err := base64.StdEncoding.DecodeString(r.Evidence)
		if err != nil {
			return nil, fmt.Errorf("%w: GPU %d: evidence is not base64", ErrMalformed, i)
		}
		out = append(out, GPUEvidence{Arch: r.Arch, Certificate: c, Report: e, Nonce: r.Nonce})
	}
	return out, nil
}

// CertifiedArch is the architecture the GPU's device certificate names
// (its subject's chip: GH100 is HOPPER, GB1xx and GB2xx BLACKWELL), or ""
// when it names none of them. Unlike the evidence's "arch" field, which
// its collector writes, this is signed by the device CA.
func CertifiedArch(leaf *x509.Certificate) string {
	cn := leaf.Subject.CommonName
	switch {
	case strings.Contains(cn, "GH100"):
		return "HOPPER"
	case strings.Contains(cn, "GB1"), strings.Contains(cn, "GB2"):
		return "BLACKWELL"
	}
	return ""
}

// chipRE is a GPU chip name as NVIDIA's certificates and RIMs spell it
// (GH100, GB100, …).
var chipRE = regexp.MustCompile(`\bG[A-Z][0-9]{3}\b`)

// CertifiedChip is the chip the GPU's device certificate names (the first
// chip name in its subject's common name, e.g. GH100 in "GH100 A01 GSP
// FMC LF"), or "" when it names none. NVIDIA's RIMs name the same chip
// (their product, and the first part of their tag id).
func CertifiedChip(leaf *x509.Certificate) string {
	return chipRE.FindString(leaf.Subject.CommonName)
}

// CheckArch names the check that the architecture the evidence claims is
// the one its certificate names.
const CheckArch = "GPU architecture"

// Inspection is one GPU's evidence verified on its own.
type Inspection struct {
	// Arch is the architecture the device certificate names (CertifiedArch),
	// set once the chain verified; Claimed is what the evidence says.
	Arch         string     `json:"arch,omitempty"`
	Claimed      string     `json:"claimed_arch,omitempty"`
	Checks       check.List `json:"checks"`
	Driver       string     `json:"driver_version,omitempty"`
	VBIOS        string     `json:"vbios_version,omitempty"`
	Nonce        string     `json:"nonce,omitempty"`
	Board        string     `json:"board,omitempty"` // project_projectSKU_chipSKU, as VBIOS RIMs are named
	Measurements []string   `json:"measurements,omitempty"`
	report       *Report
	path         []*x509.Certificate
}

// OK reports whether every check passed.
func (in *Inspection) OK() bool { return in.Checks.OK() }

// Path is the verified device chain, leaf first and root last (nil if
// the chain did not verify).
func (in *Inspection) Path() []*x509.Certificate { return in.path }

// Report is the parsed report (nil if it did not parse).
func (in *Inspection) Report() *Report { return in.report }

// Inspect verifies one GPU's evidence against roots as of at: the
// report's format, the chain, the signature, and (when nonce is not nil)
// that the report answers that nonce.
func Inspect(e GPUEvidence, roots *x509.CertPool, at time.Time, nonce []byte) *Inspection {
	in := &Inspection{Claimed: e.Arch}
	r, err := ParseReport(e.Report)
	if err != nil {
		in.Checks = append(in.Checks, check.Fail(CheckReport, "%v", err))
		return in
	}
	in.report = r
	in.Checks = append(in.Checks, check.Pass(CheckReport, "SPDM 1.1 MEASUREMENTS with %d blocks, driver %s, VBIOS %s", len(r.Blocks), r.DriverVersion(), r.VBIOSVersion()))
	in.Driver, in.VBIOS, in.Nonce = r.DriverVersion(), r.VBIOSVersion(), hex.EncodeToString(r.Nonce[:])
	in.Board = fmt.Sprintf("%s_%s_%s", r.Project(), r.ProjectSKU(), r.ChipSKU())
	for _, b := range r.Blocks {
		in.Measurements = append(in.Measurements, hex.EncodeToString(b.Value))
	}
	chain, err := ParseChain(e.Certificate)
	var leaf *x509.Certificate
	if err == nil {
		in.path, err = VerifyPath(chain, roots, at)
	}
	if err == nil {
		leaf = in.path[0]
	}
	if err != nil {
		in.Checks = append(in.Checks, check.Fail(CheckChain, "GPU certificate chain: %v", err), check.Fail(CheckSignature, "not checked: no trusted GPU certificate"))
	} else {
		in.Checks = append(in.Checks, check.Pass(CheckChain, "%s certified by %s at %s", leaf.Subject.CommonName, chain[len(chain)-1].Subject.CommonName, at.UTC().Format(time.DateOnly)))
		in.Arch = CertifiedArch(leaf)
		if e.Arch != "" && !strings.EqualFold(e.Arch, in.Arch) {
			in.Checks = append(in.Checks, check.Fail(CheckArch, "the evidence says %s; its certificate names %s", e.Arch, orNone(in.Arch)))
		}
		if err := r.VerifySignature(leaf); err != nil {
			in.Checks = append(in.Checks, check.Fail(CheckSignature, "%v", err))
		} else {
			in.Checks = append(in.Checks, check.Pass(CheckSignature, "ECDSA P-384 signature by the GPU's device key"))
		}
	}
	if nonce != nil {
		if bytes.Equal(nonce, r.Nonce[:]) {
			in.Checks = append(in.Checks, check.Pass(CheckNonce, "the report answers the nonce"))
		} else {
			in.Checks = append(in.Checks, check.Fail(CheckNonce, "the report answers nonce %x, not %x", r.Nonce, nonce))
		}
	}
	return in
}

func orNone(s string) string {
	if s == "" {
		return "no known architecture"
	}
	return s
}
