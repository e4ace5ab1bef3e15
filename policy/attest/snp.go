package attest

import (
	"bytes"
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
	Signer       string `json:"signer"`
	ProductLine  string `json:"product_line,omitempty"`
	PlatformInfo string `json:"platform_info"` // 8 bytes big-endian hex
	ReportedTCB  TCB    `json:"reported_tcb"`
	CurrentTCB   TCB    `json:"current_tcb"`
	CommittedTCB TCB    `json:"committed_tcb"`
	LaunchTCB    TCB    `json:"launch_tcb"`
	// CurrentFirmware and CommittedFirmware are MAJOR.MINOR.BUILD.
	CurrentFirmware   string `json:"current_firmware"`
	CommittedFirmware string `json:"committed_firmware"`
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

// TCB is an SEV-SNP TCB_VERSION.
type TCB struct {
	Raw        string `json:"raw"` // 8 bytes big-endian hex
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
}

func (t TCB) String() string {
	return fmt.Sprintf("bootloader=%d tee=%d snp=%d microcode=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
}

func tcb(v uint64) TCB {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(v))
	return TCB{Raw: fmt.Sprintf("%016x", v), Bootloader: p.BlSpl, TEE: p.TeeSpl, SNP: p.SnpSpl, Microcode: p.UcodeSpl}
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
		pv := &trust.ProductCerts{}
		if err := pv.FromKDSCertBytes(e.vlek); err == nil && pv.Ark != nil && pv.Ark.Equal(pc.Ark) {
			pc.Asvk = pv.Asvk
		}
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

func snpFields(att *spb.Attestation) *SNPFields {
	r := att.GetReport()
	h := hex.EncodeToString
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
		PlatformInfo:      fmt.Sprintf("%016x", r.GetPlatformInfo()),
		ReportedTCB:       tcb(r.GetReportedTcb()),
		CurrentTCB:        tcb(r.GetCurrentTcb()),
		CommittedTCB:      tcb(r.GetCommittedTcb()),
		LaunchTCB:         tcb(r.GetLaunchTcb()),
		CurrentFirmware:   fmt.Sprintf("%d.%d.%d", r.GetCurrentMajor(), r.GetCurrentMinor(), r.GetCurrentBuild()),
		CommittedFirmware: fmt.Sprintf("%d.%d.%d", r.GetCommittedMajor(), r.GetCommittedMinor(), r.GetCommittedBuild()),
	}
	if p, err := abi.ParseSnpPolicy(r.GetPolicy()); err == nil {
		f.Policy = SNPGuestPolicy{ABI: fmt.Sprintf("%d.%d", p.ABIMajor, p.ABIMinor), SMT: p.SMT, MigrateMA: p.MigrateMA, Debug: p.Debug, SingleSocket: p.SingleSocket, CXL: p.CXLAllowed}
	}
	if fms := r.GetCpuid1EaxFms(); fms != 0 {
		f.ProductLine = kds.ProductLineFromFms(fms)
	} else if ek := endorsementKey(att); ek != nil {
		if exts, err := kds.CertificateExtensions(ek, snpSigner(r)); err == nil {
			if p, err := kds.ParseProductName(exts.ProductName, snpSigner(r)); err == nil {
				f.ProductLine = kds.ProductLine(p)
			}
		}
	}
	return f
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
	r.SNP = snpFields(att)
	signer := snpSigner(att.GetReport())
	r.add(check.Pass(check.EvidenceFormat, "SEV-SNP report version %d signed by its %v; endorsement key certificate: %s", r.SNP.Version, signer, certSource))
	if full {
		r.add(v.platformCheck(evidence.SEVSNP))
	}

	// The hardware signature chain: go-sev-guest checks the V[CL]EK
	// against our roots and the report signature against the V[CL]EK.
	now := v.now()
	ek := endorsementKey(att)
	var root *snpRoot
	switch {
	case signer != abi.VcekReportSigner && signer != abi.VlekReportSigner:
		r.add(check.Fail(check.HardwareChain, "report signed by %v, not by a VCEK or VLEK", signer))
	case ek == nil:
		r.add(check.Fail(check.HardwareChain, "no %v certificate: include the extended report's certificate table, or the certificate in the bundle's vcek field (attestlog inspect --vcek FILE)", signer))
	default:
		err := safely("SEV-SNP verification", func() error {
			return verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, Now: now, TrustedRoots: v.amdRoots(), Getter: offline{}})
		})
		if err != nil {
			r.add(check.Fail(check.HardwareChain, "%v", err))
			break
		}
		root = v.snpRootOf(ek)
		src := "a trusted root"
		if root != nil {
			src = fmt.Sprintf("ARK-%s (%s)", root.line, root.source)
		}
		r.add(check.Pass(check.HardwareChain, "report signature verified with the %v; %v certified by %s at %s", signer, signer, src, now.UTC().Format("2006-01-02")))
	}
	if len(v.crls) > 0 {
		r.add(v.snpRevocation(ek, root, now))
	}

	// Report fields: go-sev-guest's validate, first with nothing but its
	// internal consistency rules, then once per policy concern.
	base := &validate.Options{GuestPolicy: abi.SnpPolicy{SMT: true, MigrateMA: true, Debug: true, CXLAllowed: true}}
	var baseErr error
	if ek == nil {
		baseErr = fmt.Errorf("not evaluated: needs the %v certificate (its TCB and chip id)", signer)
	} else {
		baseErr = safely("SEV-SNP validation", func() error { return validate.SnpAttestation(att, base) })
	}
	r.add(check.From(check.ReportConsistency, baseErr,
		fmt.Sprintf("REPORTED_TCB (%s) matches the %v certificate and CURRENT_TCB; committed firmware equals current (%s)", r.SNP.ReportedTCB, signer, r.SNP.CurrentFirmware)))
	if !full {
		return
	}
	concern := func(name string, opts *validate.Options, ok string) check.Check {
		if baseErr != nil {
			return check.Fail(name, "not evaluated: the report is not internally consistent (%v)", baseErr)
		}
		err := safely("SEV-SNP validation", func() error { return validate.SnpAttestation(att, opts) })
		return check.From(name, err, ok)
	}

	sp := v.pol.SNP
	tcbOpts := *base
	tcbOpts.MinimumTCB = kds.TCBParts{BlSpl: sp.MinTCB.Bootloader, TeeSpl: sp.MinTCB.TEE, SnpSpl: sp.MinTCB.SNP, UcodeSpl: sp.MinTCB.Microcode}
	tcbOK := fmt.Sprintf("REPORTED_TCB %s meets the policy floor %s", r.SNP.ReportedTCB, sp.MinTCB)
	if sp.MinTCB.IsZero() {
		tcbOK = fmt.Sprintf("policy sets no SEV-SNP TCB floor (REPORTED_TCB %s); add snp-min-tcb to require one", r.SNP.ReportedTCB)
	}
	r.add(concern(check.TCBFloors, &tcbOpts, tcbOK))

	polOpts := *base
	polOpts.GuestPolicy = abi.SnpPolicy{
		ABIMajor: sp.MinABIMajor, ABIMinor: sp.MinABIMinor,
		SMT: sp.AllowSMT, MigrateMA: sp.AllowMigrationAgent, Debug: sp.AllowDebug,
		SingleSocket: sp.RequireSingleSocket, CXLAllowed: sp.AllowCXL,
	}
	polOpts.VMPL = sp.VMPL
	polOpts.MinimumGuestSvn = sp.MinGuestSVN
	p := r.SNP.Policy
	c := concern(check.GuestPolicy, &polOpts, fmt.Sprintf("POLICY %s (debug %s, SMT %s, migration agent %s, ABI %s) and VMPL %d are within the policy",
		r.SNP.GuestPolicy, onOff(p.Debug), onOff(p.SMT), onOff(p.MigrateMA), p.ABI, r.SNP.VMPL))
	if !c.OK && p.Debug && !sp.AllowDebug && baseErr == nil {
		c.Reason += "; a debug guest's memory is readable by the host: never trusted unless the policy says snp-allow-debug"
	}
	r.add(c)

	rd, what, err := v.nonceReportData(b, nonce)
	if err != nil {
		r.add(check.Fail(check.NonceBinding, "%v", err))
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

func (v *Verifier) snpRevocation(ek *x509.Certificate, root *snpRoot, now time.Time) check.Check {
	if root == nil || ek == nil {
		return check.Fail(check.Revocation, "not evaluated: the hardware signature chain did not verify")
	}
	for _, f := range v.crls {
		if !bytes.Equal(f.crl.RawIssuer, root.certs.Ark.RawSubject) {
			continue
		}
		dp := kds.CrlLinkByRole(root.line, "ASK")
		if now.After(f.crl.NextUpdate) {
			return check.Fail(check.Revocation, "CRL %s expired at %s; fetch a fresh one from %s", f.path, f.crl.NextUpdate.UTC().Format("2006-01-02 15:04"), dp)
		}
		ar := &trust.AMDRootCerts{ProductLine: root.line, ProductCerts: root.certs, CRL: f.crl}
		if _, err := verify.GetCrlAndCheckRoot(ar, &verify.Options{Now: now, Getter: offline{}}); err != nil {
			return check.Fail(check.Revocation, "CRL %s: %v", f.path, err)
		}
		for _, c := range []*x509.Certificate{root.certs.Asvk, ek} {
			if c == nil {
				continue
			}
			for _, e := range f.crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return check.Fail(check.Revocation, "CRL %s revokes %s (serial %x) as of %s", f.path, c.Subject.CommonName, c.SerialNumber, e.RevocationTime.UTC().Format("2006-01-02"))
				}
			}
		}
		return check.Pass(check.Revocation, "CRL %s (signed by ARK-%s, next update %s) revokes neither the intermediate nor the %s", f.path, root.line, f.crl.NextUpdate.UTC().Format("2006-01-02"), ek.Subject.CommonName)
	}
	return check.Fail(check.Revocation, "the policy names no CRL issued by ARK-%s; add 'crl FILE' with the CRL from %s", root.line, kds.CrlLinkByRole(root.line, "ASK"))
}
