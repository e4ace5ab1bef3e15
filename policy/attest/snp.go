package attest

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/attestlog/attestlog/internal/pemcert"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// SNPFields are the fields of an SEV-SNP report, byte strings as
// lowercase hex. The names of the release-measurement fields match
// log/statement's: launch_digest, guest_policy, family_id, image_id.
type SNPFields struct {
	Version      uint32 `json:"version"`
	LaunchDigest string `json:"launch_digest"` // MEASUREMENT, 48 bytes
	// GuestPolicy is POLICY as 8 bytes big-endian hex (the uint64 value).
	GuestPolicy     string `json:"guest_policy"`
	FamilyID        string `json:"family_id"` // 16 bytes
	ImageID         string `json:"image_id"`  // 16 bytes
	HostData        string `json:"host_data"` // 32 bytes
	ReportData      string `json:"report_data"`
	IDKeyDigest     string `json:"id_key_digest"`
	AuthorKeyDigest string `json:"author_key_digest"`
	ReportID        string `json:"report_id"`
	ReportIDMA      string `json:"report_id_ma"`
	ChipID          string `json:"chip_id"`
	VMPL            uint32 `json:"vmpl"`
	GuestSVN        uint32 `json:"guest_svn"`
	// Signer is the endorsement key: "vcek", "vlek" or "none".
	Signer string `json:"signer"`
	// CSPID names the cloud provider a VLEK was issued to (its CSP_ID,
	// e.g. "CN=cc-us-east-2.amazonaws.com").
	CSPID string `json:"csp_id,omitempty"`
	// ProductLine is Milan, Genoa or Turin: from the report's CPUID
	// (version 3 and later), else from the endorsement key. It decides
	// the layout the TCB fields are read with.
	ProductLine  string `json:"product_line,omitempty"`
	PlatformInfo string `json:"platform_info"` // 8 bytes big-endian hex
	ReportedTCB  TCB    `json:"reported_tcb"`
	CurrentTCB   TCB    `json:"current_tcb"`
	CommittedTCB TCB    `json:"committed_tcb"`
	LaunchTCB    TCB    `json:"launch_tcb"`
	// CurrentFirmware and CommittedFirmware are MAJOR.MINOR.BUILD.
	CurrentFirmware   string `json:"current_firmware"`
	CommittedFirmware string `json:"committed_firmware"`
	// ProvisionalFirmware is set when COMMITTED_TCB or the committed
	// firmware differs from the current one: firmware installed but not
	// committed, which the host may still roll back.
	ProvisionalFirmware bool `json:"provisional_firmware"`
	// Policy is POLICY decoded.
	Policy SNPGuestPolicy `json:"policy"`
}

// SNPGuestPolicy is an SEV-SNP POLICY decoded.
type SNPGuestPolicy struct {
	ABI          string `json:"abi"` // MAJOR.MINOR
	SMT          bool   `json:"smt"`
	MigrateMA    bool   `json:"migrate_ma"`
	Debug        bool   `json:"debug"`
	SingleSocket bool   `json:"single_socket"`
	CXL          bool   `json:"cxl"`
}

// TCB is an SEV-SNP TCB_VERSION, read with its product line's layout
// (Milan and Genoa: byte 0 bootloader, 1 TEE, 6 SNP, 7 microcode; Turin:
// 0 FMC, 1 bootloader, 2 TEE, 3 SNP, 7 microcode).
type TCB struct {
	Raw        string `json:"raw"`           // 8 bytes big-endian hex
	FMC        *uint8 `json:"fmc,omitempty"` // Turin only
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
}

func (t TCB) String() string {
	s := fmt.Sprintf("bootloader=%d tee=%d snp=%d microcode=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
	if t.FMC != nil {
		s = fmt.Sprintf("fmc=%d %s", *t.FMC, s)
	}
	return s
}

func embeddedSNPRoots() map[string][]*snpRoot {
	out := map[string][]*snpRoot{}
	for _, e := range []struct {
		line       string
		vcek, vlek []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	} {
		pc := &trust.ProductCerts{}
		if err := pc.FromKDSCertBytes(e.vcek); err != nil || pc.Ark == nil || pc.Ask == nil {
			panic(fmt.Sprintf("attest: go-sev-guest's embedded %s root does not parse: %v", e.line, err))
		}
		// Not FromKDSCertBytes: go-sev-guest v0.15.0's Turin VLEK bundle
		// ends in two stray bytes it refuses, which silently left Turin
		// without its ASVK.
		pv, err := parseSNPRoot(e.vlek)
		if err != nil || pv.line != e.line || pv.certs.Asvk == nil || !pv.certs.Ark.Equal(pc.Ark) {
			panic(fmt.Sprintf("attest: go-sev-guest's embedded %s VLEK root does not parse as SEV-VLEK-%s under its ARK: %v", e.line, e.line, err))
		}
		pc.Asvk = pv.certs.Asvk
		out[e.line] = []*snpRoot{{certs: pc, line: e.line, source: "embedded AMD root"}}
	}
	return out
}

// parseSNPRoot reads a trust-root file: an ARK ("ARK-<line>") and its ASK
// ("SEV-<line>") and/or ASVK ("SEV-VLEK-<line>"), PEM.
func parseSNPRoot(b []byte) (*snpRoot, error) {
	certs, err := pemcert.Parse(b)
	if err != nil {
		return nil, err
	}
	pc := &trust.ProductCerts{}
	line := ""
	for _, c := range certs {
		cn := c.Subject.CommonName
		switch {
		case strings.HasPrefix(cn, "ARK-"):
			pc.Ark, line = c, strings.TrimPrefix(cn, "ARK-")
		case strings.HasPrefix(cn, "SEV-VLEK-"):
			pc.Asvk = c
		case strings.HasPrefix(cn, "SEV-"):
			pc.Ask = c
		}
	}
	if pc.Ark == nil || (pc.Ask == nil && pc.Asvk == nil) {
		return nil, errors.New(`want an ARK ("ARK-<product line>") and its ASK ("SEV-<line>") or ASVK ("SEV-VLEK-<line>") as PEM certificates`)
	}
	for _, ica := range []*x509.Certificate{pc.Ask, pc.Asvk} {
		if ica != nil && !strings.HasSuffix(ica.Subject.CommonName, "-"+line) {
			return nil, fmt.Errorf("%s is not of product line %s", ica.Subject.CommonName, line)
		}
	}
	return &snpRoot{certs: pc, line: line}, nil
}

// snpAttestation assembles go-sev-guest's attestation from a bundle, and
// says where the endorsement key certificate came from.
func snpAttestation(b *evidence.Bundle) (att *spb.Attestation, certSource string, err error) {
	err = safely("SEV-SNP report", func() error {
		report, err := abi.ReportToProto(b.Report)
		if err != nil {
			return fmt.Errorf("SEV-SNP report: %v", err)
		}
		chain := &spb.CertificateChain{Extras: map[string][]byte{}}
		certSource = "none: not included"
		if len(b.CertTable) > 0 {
			var t abi.CertTable
			if err := t.Unmarshal(b.CertTable); err != nil {
				return fmt.Errorf("certificate table: %v", err)
			}
			chain = t.Proto()
			certSource = "from the certificate table"
		}
		info, err := abi.ParseSignerInfo(report.GetSignerInfo())
		if err != nil {
			return fmt.Errorf("SEV-SNP report: %v", err)
		}
		if len(b.VCEK) > 0 {
			der := b.VCEK
			if blk, _ := pem.Decode(der); blk != nil {
				der = blk.Bytes
			}
			if _, err := x509.ParseCertificate(der); err != nil {
				return fmt.Errorf("vcek: %v", err)
			}
			switch info.SigningKey {
			case abi.VcekReportSigner:
				chain.VcekCert = der
			case abi.VlekReportSigner:
				chain.VlekCert = der
			}
			certSource = "from the vcek field"
		}
		att = &spb.Attestation{Report: report, CertificateChain: chain}
		return nil
	})
	return att, certSource, err
}

func snpSigner(r *spb.Report) abi.ReportSigner {
	info, _ := abi.ParseSignerInfo(r.GetSignerInfo())
	return info.SigningKey
}

// snpFields reads att's fields; ek is its endorsement key certificate,
// or nil.
func snpFields(att *spb.Attestation, ek *x509.Certificate) *SNPFields {
	r := att.GetReport()
	h := hex.EncodeToString
	line, cspID := snpProductLine(att, ek)
	l := layoutOf(line)
	f := &SNPFields{
		Version:           r.GetVersion(),
		LaunchDigest:      h(r.GetMeasurement()),
		GuestPolicy:       fmt.Sprintf("%016x", r.GetPolicy()),
		FamilyID:          h(r.GetFamilyId()),
		ImageID:           h(r.GetImageId()),
		HostData:          h(r.GetHostData()),
		ReportData:        h(r.GetReportData()),
		IDKeyDigest:       h(r.GetIdKeyDigest()),
		AuthorKeyDigest:   h(r.GetAuthorKeyDigest()),
		ReportID:          h(r.GetReportId()),
		ReportIDMA:        h(r.GetReportIdMa()),
		ChipID:            h(r.GetChipId()),
		VMPL:              r.GetVmpl(),
		GuestSVN:          r.GetGuestSvn(),
		Signer:            strings.ToLower(snpSigner(r).String()),
		CSPID:             cspID,
		ProductLine:       line,
		PlatformInfo:      fmt.Sprintf("%016x", r.GetPlatformInfo()),
		ReportedTCB:       l.decode(r.GetReportedTcb()),
		CurrentTCB:        l.decode(r.GetCurrentTcb()),
		CommittedTCB:      l.decode(r.GetCommittedTcb()),
		LaunchTCB:         l.decode(r.GetLaunchTcb()),
		CurrentFirmware:   fmt.Sprintf("%d.%d.%d", r.GetCurrentMajor(), r.GetCurrentMinor(), r.GetCurrentBuild()),
		CommittedFirmware: fmt.Sprintf("%d.%d.%d", r.GetCommittedMajor(), r.GetCommittedMinor(), r.GetCommittedBuild()),
		ProvisionalFirmware: r.GetCommittedTcb() != r.GetCurrentTcb() || r.GetCommittedMajor() != r.GetCurrentMajor() ||
			r.GetCommittedMinor() != r.GetCurrentMinor() || r.GetCommittedBuild() != r.GetCurrentBuild(),
	}
	if p, err := abi.ParseSnpPolicy(r.GetPolicy()); err == nil {
		f.Policy = SNPGuestPolicy{ABI: fmt.Sprintf("%d.%d", p.ABIMajor, p.ABIMinor), SMT: p.SMT, MigrateMA: p.MigrateMA, Debug: p.Debug, SingleSocket: p.SingleSocket, CXL: p.CXLAllowed}
	}
	return f
}

// snpProductLine returns the report's product line — from its CPUID
// (report version 3 and later), else from its endorsement key — and the
// endorsement key's CSP_ID (VLEKs). Nothing here is verified yet.
func snpProductLine(att *spb.Attestation, ek *x509.Certificate) (line, cspID string) {
	if fms := att.GetReport().GetCpuid1EaxFms(); fms != 0 {
		line = kds.ProductLineFromFms(fms)
	}
	if ek == nil {
		return line, ""
	}
	signer := snpSigner(att.GetReport())
	if kdsStructVersion(ek) == 1 {
		if ext, err := parseKDSv1(ek, signer); err == nil {
			return cmp.Or(line, ext.ProductLine), ext.CSPID
		}
		return line, ""
	}
	exts, err := kds.CertificateExtensions(ek, signer)
	if err != nil {
		return line, ""
	}
	if line == "" {
		if p, err := kds.ParseProductName(exts.ProductName, signer); err == nil {
			line = kds.ProductLine(p)
		}
	}
	return line, exts.CspID
}

func endorsementKey(att *spb.Attestation) *x509.Certificate {
	var der []byte
	switch snpSigner(att.GetReport()) {
	case abi.VcekReportSigner:
		der = att.GetCertificateChain().GetVcekCert()
	case abi.VlekReportSigner:
		der = att.GetCertificateChain().GetVlekCert()
	}
	if len(der) == 0 {
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return c
}

// offline is the getter handed to go-sev-guest: attestlog never fetches.
type offline struct{}

func (offline) Get(url string) ([]byte, error) {
	return nil, fmt.Errorf("attestlog verifies offline and does not fetch %s", url)
}

func (v *Verifier) amdRoots() map[string][]*trust.AMDRootCerts {
	m := map[string][]*trust.AMDRootCerts{}
	for line, rs := range v.snpRoots {
		for _, r := range rs {
			m[line] = append(m[line], &trust.AMDRootCerts{ProductLine: line, ProductCerts: r.certs})
		}
	}
	return m
}

func (v *Verifier) verifySNP(r *Result, b *evidence.Bundle, nonce []byte, full bool) {
	att, certSource, err := snpAttestation(b)
	if err != nil {
		r.add(check.Fail(check.EvidenceFormat, "%v", err))
		return
	}
	ek := endorsementKey(att)
	r.SNP = snpFields(att, ek)
	signer := snpSigner(att.GetReport())
	r.add(check.Pass(check.EvidenceFormat, "SEV-SNP report version %d signed by its %v; endorsement key certificate: %s", r.SNP.Version, signer, certSource))
	if full {
		r.add(v.platformCheck(evidence.SEVSNP))
	}

	// The hardware signature chain: go-sev-guest checks the V[CL]EK
	// against our roots and the report signature against the V[CL]EK. A
	// key of KDS struct version 1 (Turin), which go-sev-guest cannot
	// read, is checked with go-sev-guest's pieces by amdkds.go, and
	// validate reads its struct-version-0 view (vatt).
	now := v.now()
	vatt := att
	var ext *kdsV1
	var extErr error
	if ek != nil && kdsStructVersion(ek) == 1 {
		extErr = safely("SEV-SNP endorsement key", func() (err error) {
			if ext, err = parseKDSv1(ek, signer); err != nil {
				return err
			}
			vatt, err = v0View(att, ext, signer)
			return err
		})
	}
	var root *snpRoot
	switch {
	case signer != abi.VcekReportSigner && signer != abi.VlekReportSigner:
		r.add(check.Fail(check.HardwareChain, "report signed by %v, not by a VCEK or VLEK", signer))
	case ek == nil:
		r.add(check.Fail(check.HardwareChain, "no %v certificate: include the extended report's certificate table, or the certificate in the bundle's vcek field (attestlog inspect --vcek FILE)", signer))
	default:
		err := extErr
		if err == nil {
			err = safely("SEV-SNP verification", func() error {
				if ext != nil {
					return verifyKDSv1Chain(att, ek, ext, signer, v.snpRoots, now)
				}
				return verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, Now: now, TrustedRoots: v.amdRoots(), Getter: offline{}})
			})
		}
		if err != nil {
			r.add(check.Fail(check.HardwareChain, "%v", err))
			break
		}
		root = v.snpRootOf(ek)
		src := "a trusted root"
		if root != nil {
			src = fmt.Sprintf("ARK-%s (%s)", root.line, root.source)
		}
		what := ""
		if ext != nil {
			what = fmt.Sprintf(" (KDS struct version 1: %s, TCB %s)", ext.ProductName, layoutTurin.decode(ext.TCB))
		}
		r.add(check.Pass(check.HardwareChain, "report signature verified with the %v; %v%s certified by %s at %s", signer, signer, what, src, now.UTC().Format("2006-01-02")))
	}
	if len(v.crls) > 0 {
		r.add(v.snpRevocation(ek, root, signer, now))
	}

	// Report fields: go-sev-guest's validate, with nothing but its
	// internal consistency rules (base), and with each policy concern's
	// options. Its consistency rules let COMMITTED_TCB be at most
	// CURRENT_TCB (and the committed firmware at most the current one):
	// whether provisional firmware is acceptable is the policy's question,
	// asked next.
	base := &validate.Options{GuestPolicy: abi.SnpPolicy{SMT: true, MigrateMA: true, Debug: true, CXLAllowed: true}, PermitProvisionalFirmware: true}
	sp := v.pol.SNP
	floor, _, _ := sp.Floor(r.SNP.ProductLine)
	floorTCB := kds.DecomposeTCBVersion(kds.TCBVersion(layoutOf(r.SNP.ProductLine).compose(floor)))
	polOpts := *base
	polOpts.GuestPolicy = abi.SnpPolicy{
		ABIMajor: sp.MinABIMajor, ABIMinor: sp.MinABIMinor,
		SMT: sp.AllowSMT, MigrateMA: sp.AllowMigrationAgent, Debug: sp.AllowDebug,
		SingleSocket: sp.RequireSingleSocket, CXLAllowed: sp.AllowCXL,
	}
	polOpts.VMPL = sp.VMPL
	polOpts.MinimumGuestSvn = sp.MinGuestSVN
	var rd []byte
	var what string
	var nerr error
	if full {
		rd, what, nerr = v.nonceReportData(b, nonce)
	}

	// Each concern adds constraints of its own to base's, so the options
	// of all of them together pass only when base's and each concern's
	// would: one validate call decides the common case, and only a
	// failure is asked again, for consistency and concern by concern, to
	// say which.
	var baseErr error
	allOK := false
	switch {
	case ek == nil:
		baseErr = fmt.Errorf("not evaluated: needs the %v certificate (its TCB and chip id)", signer)
	case extErr != nil:
		baseErr = fmt.Errorf("not evaluated: the %v certificate does not parse (%v)", signer, extErr)
	default:
		if full && nerr == nil {
			all := polOpts
			all.MinimumTCB, all.ReportData = floorTCB, rd
			allOK = safely("SEV-SNP validation", func() error { return validate.SnpAttestation(vatt, &all) }) == nil
		}
		if !allOK {
			baseErr = safely("SEV-SNP validation", func() error { return validate.SnpAttestation(vatt, base) })
		}
		if ext != nil && baseErr == nil && att.GetReport().GetReportedTcb() != ext.TCB {
			// validate compared the same bytes; say it in Turin's terms.
			baseErr = fmt.Errorf("REPORTED_TCB (%s) is not the TCB of the %v certificate (%s)", r.SNP.ReportedTCB, signer, layoutTurin.decode(ext.TCB))
			allOK = false
		}
	}
	r.add(check.From(check.ReportConsistency, baseErr,
		fmt.Sprintf("REPORTED_TCB (%s) matches the %v certificate and is at most CURRENT_TCB; committed TCB and firmware are at most the current ones", r.SNP.ReportedTCB, signer)))
	r.add(v.snpFirmwareCommitted(r.SNP, signer, baseErr))
	if !full {
		return
	}
	concern := func(name string, opts *validate.Options, ok string) check.Check {
		switch {
		case baseErr != nil:
			return check.Fail(name, "not evaluated: the report is not internally consistent (%v)", baseErr)
		case allOK:
			return check.Pass(name, "%s", ok)
		}
		err := safely("SEV-SNP validation", func() error { return validate.SnpAttestation(vatt, opts) })
		return check.From(name, err, ok)
	}

	r.add(v.snpFloors(r.SNP, att.GetReport().GetReportedTcb(), floorTCB, base, concern))

	p := r.SNP.Policy
	c := concern(check.GuestPolicy, &polOpts, fmt.Sprintf("POLICY %s (debug %s, SMT %s, migration agent %s, ABI %s) and VMPL %d are within the policy",
		r.SNP.GuestPolicy, onOff(p.Debug), onOff(p.SMT), onOff(p.MigrateMA), p.ABI, r.SNP.VMPL))
	if !c.OK && p.Debug && !sp.AllowDebug && baseErr == nil {
		c.Reason += "; a debug guest's memory is readable by the host: never trusted unless the policy says snp-allow-debug"
	}
	r.add(c)

	if nerr != nil {
		r.add(check.Fail(check.NonceBinding, "%v", nerr))
		return
	}
	ndOpts := *base
	ndOpts.ReportData = rd
	c = concern(check.NonceBinding, &ndOpts, "REPORT_DATA binds "+what)
	if !c.OK && baseErr == nil {
		c.Reason = "REPORT_DATA does not bind " + what + ": the evidence was not produced for this request (" + c.Reason + ")"
	}
	r.add(c)
}

// snpFirmwareCommitted is the policy's answer to provisional firmware:
// COMMITTED_TCB (or the committed firmware version) below the current
// one. AMD allows it — the host installed firmware and may still roll
// back to the committed one, which is why the VCEK/VLEK is issued for
// REPORTED_TCB, not CURRENT_TCB — but a policy must say it accepts it.
func (v *Verifier) snpFirmwareCommitted(f *SNPFields, signer abi.ReportSigner, baseErr error) check.Check {
	switch {
	case baseErr != nil:
		return check.Fail(check.FirmwareCommitted, "not evaluated: the report is not internally consistent")
	case !f.ProvisionalFirmware:
		return check.Pass(check.FirmwareCommitted, "COMMITTED_TCB equals CURRENT_TCB (%s) and firmware %s is committed", f.CurrentTCB, f.CurrentFirmware)
	}
	state := fmt.Sprintf("provisional firmware: COMMITTED_TCB (%s) is below CURRENT_TCB (%s)", f.CommittedTCB, f.CurrentTCB)
	if f.CommittedFirmware != f.CurrentFirmware {
		state += fmt.Sprintf(", firmware %s committed, %s current", f.CommittedFirmware, f.CurrentFirmware)
	}
	if v.pol.SNP.AllowProvisionalFirmware {
		return check.Pass(check.FirmwareCommitted, "%s; accepted by snp-allow-provisional-firmware (REPORTED_TCB %s is what the floors and the %v are checked against)", state, f.ReportedTCB, signer)
	}
	return check.Fail(check.FirmwareCommitted, "%s: the host may still roll back to the committed firmware. AMD allows this state (REPORTED_TCB %s is what the %v certifies), but the policy does not accept it; add 'snp-allow-provisional-firmware' to accept it", state, f.ReportedTCB, signer)
}

// snpFloors checks REPORTED_TCB against the policy's floor for the
// report's product line, floorTCB: that floor composed in the line's TCB
// layout and cut into go-sev-guest's (Milan's) parts. validate compares
// byte by byte, which is component by component in every layout.
func (v *Verifier) snpFloors(f *SNPFields, reported uint64, floorTCB kds.TCBParts, base *validate.Options, concern func(string, *validate.Options, string) check.Check) check.Check {
	floor, source, ok := v.pol.SNP.Floor(f.ProductLine)
	line := cmp.Or(f.ProductLine, "an unknown product line")
	if !ok {
		return check.Fail(check.TCBFloors, "the policy sets TCB floors for other product lines but none for %s (REPORTED_TCB %s); add 'snp-min-tcb %s ...' or a floor for every line", line, f.ReportedTCB, strings.ToLower(f.ProductLine))
	}
	if floor.IsZero() {
		return check.Pass(check.TCBFloors, "policy sets no SEV-SNP TCB floor for %s (REPORTED_TCB %s); add snp-min-tcb to require one", line, f.ReportedTCB)
	}
	l := layoutOf(f.ProductLine)
	opts := *base
	opts.MinimumTCB = floorTCB
	c := concern(check.TCBFloors, &opts, fmt.Sprintf("REPORTED_TCB %s meets the policy floor %s (%s)", f.ReportedTCB, floor, source))
	if below := l.below(reported, floor); !c.OK && len(below) > 0 && !strings.HasPrefix(c.Reason, "not evaluated") {
		c.Reason = fmt.Sprintf("REPORTED_TCB %s is lower than the policy floor %s (%s) for %s: %s", f.ReportedTCB, floor, source, line, strings.Join(below, ", "))
	}
	return c
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// snpRootOf finds the trusted root whose ASK/ASVK issued ek.
func (v *Verifier) snpRootOf(ek *x509.Certificate) *snpRoot {
	var cands []*snpRoot
	for _, rs := range v.snpRoots {
		for _, r := range rs {
			for _, ica := range []*x509.Certificate{r.certs.Ask, r.certs.Asvk} {
				if ica != nil && bytes.Equal(ek.RawIssuer, ica.RawSubject) {
					cands = append(cands, r)
				}
			}
		}
	}
	if len(cands) == 1 {
		return cands[0]
	}
	for _, r := range cands {
		for _, ica := range []*x509.Certificate{r.certs.Ask, r.certs.Asvk} {
			if ica != nil && ek.CheckSignatureFrom(ica) == nil {
				return r
			}
		}
	}
	return nil
}

func (v *Verifier) snpRevocation(ek *x509.Certificate, root *snpRoot, signer abi.ReportSigner, now time.Time) check.Check {
	if root == nil || ek == nil {
		return check.Fail(check.Revocation, "not evaluated: the hardware signature chain did not verify")
	}
	// AMD publishes a VCEK CRL (revoking ASKs) and a VLEK CRL (revoking
	// ASVKs and VLEKs), both signed by the ARK: use the one of the key
	// that signed the report, with the intermediate that issued it.
	ica, kind := root.certs.Ask, "VCEK"
	if signer == abi.VlekReportSigner {
		ica, kind = root.certs.Asvk, "VLEK"
	}
	dp := kds.CrlLinkByKey(root.line, signer)
	for _, f := range v.crls {
		if f.key != signer || !bytes.Equal(f.crl.RawIssuer, root.certs.Ark.RawSubject) {
			continue
		}
		if now.After(f.crl.NextUpdate) {
			return check.Fail(check.Revocation, "%s CRL %s expired at %s; fetch a fresh one from %s", kind, f.path, f.crl.NextUpdate.UTC().Format("2006-01-02 15:04"), dp)
		}
		// go-sev-guest checks the CRL's signature by the ARK and that
		// it does not revoke the intermediate it is handed.
		ar := &trust.AMDRootCerts{ProductLine: root.line, ProductCerts: &trust.ProductCerts{Ark: root.certs.Ark, Ask: ica}, CRL: f.crl}
		if _, err := verify.GetCrlAndCheckRoot(ar, &verify.Options{Now: now, Getter: offline{}}); err != nil {
			return check.Fail(check.Revocation, "%s CRL %s: %v", kind, f.path, err)
		}
		for _, c := range []*x509.Certificate{ica, ek} {
			if c == nil {
				continue
			}
			for _, e := range f.crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return check.Fail(check.Revocation, "%s CRL %s revokes %s (serial %x) as of %s", kind, f.path, c.Subject.CommonName, c.SerialNumber, e.RevocationTime.UTC().Format("2006-01-02"))
				}
			}
		}
		return check.Pass(check.Revocation, "%s CRL %s (signed by ARK-%s, next update %s) revokes neither the intermediate nor the %s", kind, f.path, root.line, f.crl.NextUpdate.UTC().Format("2006-01-02"), ek.Subject.CommonName)
	}
	line := "crl FILE"
	if signer == abi.VlekReportSigner {
		line = "crl vlek FILE"
	}
	return check.Fail(check.Revocation, "the policy names no %s CRL issued by ARK-%s; add '%s' with the CRL from %s", kind, root.line, line, dp)
}
