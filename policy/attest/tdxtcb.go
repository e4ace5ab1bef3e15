package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/pcs"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	tverify "github.com/google/go-tdx-guest/verify"

	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// TDXTCB is what Intel's collateral says of the platform that produced a
// quote: the matching level of each of its three parts, each with Intel's
// status and advisories.
type TDXTCB struct {
	// Status is the worst of the three statuses (see tcbStatusRank).
	Status string `json:"status"`
	// Platform is the matching TCB level of the TCB info (CPU SVNs from
	// the PCK certificate, PCESVN, TEE_TCB_SVN): "DATE STATUS".
	Platform string `json:"platform"`
	// Module is the matching level of the TDX module identity
	// ("TDX_NN isvsvn N STATUS"), when TEE_TCB_SVN names a module version.
	Module string `json:"module,omitempty"`
	// QE is the quoting enclave's matching QE identity level
	// ("isvsvn N STATUS").
	QE string `json:"qe"`
	// AdvisoryIDs are the Intel security advisories of every level that
	// is not UpToDate.
	AdvisoryIDs []string `json:"advisory_ids,omitempty"`
	// EvaluationDataNumber is the TCB info's tcbEvaluationDataNumber.
	EvaluationDataNumber int `json:"evaluation_data_number"`
	// Source is where the collateral came from: "stapled" or the policy's
	// tdx-collateral directory.
	Source string `json:"source"`

	parts []tcbPart // the levels, for the policy decision
}

// tcbPart is one matching level: "platform 2024-03-13", its status.
type tcbPart struct{ what, status string }

// tcbStatusRank orders Intel's TCB statuses from best to worst; a status
// Intel adds later ranks worst.
var tcbStatusRank = map[string]int{
	"UpToDate": 0, "SWHardeningNeeded": 1, "ConfigurationNeeded": 2, "ConfigurationAndSWHardeningNeeded": 3,
	"OutOfDate": 4, "OutOfDateConfigurationNeeded": 5, "Revoked": 6,
}

func rank(s string) int {
	if r, ok := tcbStatusRank[s]; ok {
		return r
	}
	return len(tcbStatusRank)
}

// tdxTCBCheck is the TCB status check: the quote against each collateral
// at hand (the stapled one and the policy's directory; both must pass
// when both are there). Without collateral it fails, unless the policy
// says 'tdx-tcb-status unchecked': then it passes as a warning saying it
// was not evaluated.
// chainDone reports that go-tdx-guest verified the PCK chain and the
// quote's and QE report's signatures on the way (it does so before it
// reads the collateral's verdict on them).
func (v *Verifier) tdxTCBCheck(r *Result, q *tdxQuote, b *evidence.Bundle, now time.Time) (c check.Check, chainDone bool) {
	type source struct {
		c    *collateral
		name string
	}
	var srcs []source
	if b.TDXCollateral != nil {
		srcs = append(srcs, source{stapledCollateral(b.TDXCollateral), "the stapled collateral"})
	}
	if v.tdxColl != nil {
		srcs = append(srcs, source{v.tdxColl, v.tdxColl.dir})
	}
	if len(srcs) == 0 {
		if v.pol.TDX.TCBStatusUnchecked {
			return check.Warn(check.TCBStatus, "not evaluated: no Intel collateral stapled or named; accepted without a TCB status by 'tdx-tcb-status unchecked' (the platform may run firmware or microcode Intel has found vulnerable)"), false
		}
		return check.Fail(check.TCBStatus, "no Intel collateral, so no TCB status: staple it to the evidence (tdx_collateral), name a tdx-collateral directory, or accept TDX evidence without one with 'tdx-tcb-status unchecked'"), false
	}
	var reasons []string
	for _, s := range srcs {
		tcb, err := v.evaluateTCB(q, s.c, now)
		if err != nil {
			return check.Fail(check.TCBStatus, "%s: %v", s.name, err), chainDone
		}
		chainDone = true
		tcb.Source = "stapled"
		if s.c == v.tdxColl {
			tcb.Source = "tdx-collateral " + s.c.dir
		}
		if r.TDX.TCB == nil {
			r.TDX.TCB = tcb
		}
		if bad := v.disallowed(tcb); bad != "" {
			return check.Fail(check.TCBStatus, "%s: %s", s.name, bad), true
		}
		crl := "no CRLs in it: PCK revocation not checked"
		if s.c.revocation {
			crl = "PCK and root CA CRLs checked"
		}
		reasons = append(reasons, fmt.Sprintf("%s (TCB evaluation %d) verifies to Intel's root at %s and says: platform %s; %sQE %s%s; %s",
			s.name, tcb.EvaluationDataNumber, now.UTC().Format("2006-01-02"), tcb.Platform, moduleText(tcb), tcb.QE, v.allowedText(tcb), crl))
	}
	return check.Pass(check.TCBStatus, "%s", strings.Join(reasons, "; and ")), true
}

func moduleText(t *TDXTCB) string {
	if t.Module == "" {
		return ""
	}
	return "TDX module " + t.Module + "; "
}

// allowedText says why a status other than UpToDate passed.
func (v *Verifier) allowedText(t *TDXTCB) string {
	if t.Status == "UpToDate" {
		return ""
	}
	return fmt.Sprintf(" (advisories %s; allowed by tdx-allow-tcb-status %s)", strings.Join(t.AdvisoryIDs, ", "), strings.Join(v.pol.TDX.AllowTCBStatus, " "))
}

// disallowed returns why t's statuses are not acceptable, or "".
func (v *Verifier) disallowed(t *TDXTCB) string {
	var bad []string
	revoked := false
	for _, p := range t.parts {
		if p.status == "Revoked" || !v.pol.TDX.AllowsTCBStatus(p.status) {
			bad = append(bad, p.what+" "+p.status)
			revoked = revoked || p.status == "Revoked"
		}
	}
	if bad == nil {
		return ""
	}
	adv := ""
	if len(t.AdvisoryIDs) > 0 {
		adv = " (advisories " + strings.Join(t.AdvisoryIDs, ", ") + ")"
	}
	if revoked {
		return fmt.Sprintf("Intel's collateral says %s%s: a revoked TCB is never trusted", strings.Join(bad, ", "), adv)
	}
	allowed := "only UpToDate"
	if len(v.pol.TDX.AllowTCBStatus) > 0 {
		allowed = "UpToDate and " + strings.Join(v.pol.TDX.AllowTCBStatus, ", ")
	}
	return fmt.Sprintf("Intel's collateral says %s%s; the policy allows %s (after reading the advisories, a 'tdx-allow-tcb-status %s' line accepts it; updating the platform is the fix)",
		strings.Join(bad, ", "), adv, allowed, t.Status)
}

// statusErrorPhrase is how go-tdx-guest (at the revision go.mod names)
// words a TCB status that is not UpToDate, both for the TDX TCB level and
// for the QE identity level; everything else it checks comes first
// except, for a TDX status failure, the QE report's identity, which
// qeIdentityMatches then checks. TestTDXStatusErrorPhrase pins it.
const statusErrorPhrase = "failed TCB status check"

// evaluateTCB verifies the quote with collateral c (signatures to Intel's
// root, currency at now, revocation when c has the CRLs, the quote body
// against the TCB info and the QE report against the QE identity) and
// returns the matching levels. A status other than UpToDate is not an
// error here: the policy decides. A nil error means go-tdx-guest verified
// the quote's chain and signatures too.
func (v *Verifier) evaluateTCB(q *tdxQuote, c *collateral, now time.Time) (*TDXTCB, error) {
	opts := &tverify.Options{TrustedRoots: v.tdxRoots, Now: timeSet(now), Getter: c, GetCollateral: true, CheckRevocations: c.revocation}
	verr := safely("TDX collateral", func() error { return tverify.TdxQuote(q.proto, opts) })
	if verr != nil && !strings.Contains(verr.Error(), statusErrorPhrase) {
		return nil, verr
	}
	var module, qe pcs.TcbLevel
	if err := safely("TDX collateral", func() error {
		var err error
		module, qe, err = tverify.SupportedTcbLevelsFromCollateral(q.proto, opts)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%v (%v)", verr, err)
	}
	info, id, err := c.parsed()
	if err != nil {
		return nil, err
	}
	// go-tdx-guest checks nextUpdate; a collateral issued after the
	// verification time is not current at it either (saved evidence
	// verified --at an earlier time, or a clock far behind Intel's).
	for _, d := range []struct {
		what   string
		issued time.Time
	}{{"TCB info", info.TcbInfo.IssueDate}, {"QE identity", id.EnclaveIdentity.IssueDate}} {
		if d.issued.After(now.Add(maxCollateralSkew)) {
			return nil, fmt.Errorf("the %s was issued at %s, after the verification time %s: it is not current then", d.what, d.issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	exts := q.extensions()
	if exts == nil {
		return nil, errors.New("the quote's PCK certificate or its SGX extensions do not parse")
	}
	body := q.v4.GetTdQuoteBody()
	svn := body.GetTeeTcbSvn()
	platform, ok := matchPlatformLevel(info.TcbInfo.TcbLevels, exts.TCB.CPUSvnComponents, exts.TCB.PCESvn, svn)
	if !ok {
		return nil, errors.New("no TCB level of the TCB info matches the platform's CPU SVNs, PCESVN and TEE_TCB_SVN")
	}
	if verr != nil {
		// go-tdx-guest stopped at the TDX status: check what it skipped.
		if err := qeIdentityMatches(q.v4.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport(), &id.EnclaveIdentity); err != nil {
			return nil, err
		}
	}
	date := platform.TcbDate
	if len(date) > 10 {
		date = date[:10] // 2024-03-13T00:00:00Z
	}
	qeSVN := q.v4.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport().GetIsvSvn()
	t := &TDXTCB{
		Platform:             date + " " + string(platform.TcbStatus),
		QE:                   fmt.Sprintf("isvsvn %d %s", qeSVN, qe.TcbStatus),
		EvaluationDataNumber: info.TcbInfo.TcbEvaluationDataNumber,
	}
	levels := []pcs.TcbLevel{platform, qe}
	t.parts = []tcbPart{{"platform TCB level " + date, string(platform.TcbStatus)}, {fmt.Sprintf("QE isvsvn %d", qeSVN), string(qe.TcbStatus)}}
	if svn[1] > 0 {
		// go-tdx-guest returns the module's level for a module version
		// above 0 (and the platform's otherwise, which we match ourselves).
		t.Module = fmt.Sprintf("TDX_%02x isvsvn %d %s", svn[1], svn[0], module.TcbStatus)
		levels = append(levels, module)
		t.parts = append(t.parts, tcbPart{fmt.Sprintf("TDX module TDX_%02x isvsvn %d", svn[1], svn[0]), string(module.TcbStatus)})
	} else if module.TcbDate != platform.TcbDate || module.TcbStatus != platform.TcbStatus {
		return nil, fmt.Errorf("internal error: go-tdx-guest matched TCB level %s %s, attestlog %s %s", module.TcbDate, module.TcbStatus, platform.TcbDate, platform.TcbStatus)
	}
	t.Status = "UpToDate"
	seen := map[string]bool{}
	for _, l := range levels {
		if rank(string(l.TcbStatus)) > rank(t.Status) {
			t.Status = string(l.TcbStatus)
		}
		if l.TcbStatus == pcs.TcbComponentStatusUpToDate {
			continue
		}
		for _, a := range l.AdvisoryIDs {
			if !seen[a] {
				seen[a] = true
				t.AdvisoryIDs = append(t.AdvisoryIDs, a)
			}
		}
	}
	return t, nil
}

// matchPlatformLevel returns the first TCB level (Intel lists them best
// first) whose SGX component SVNs and PCESVN the PCK certificate meets and
// whose TDX component SVNs TEE_TCB_SVN meets; with a TDX module version
// (TEE_TCB_SVN[1] > 0), its first two bytes belong to the module identity
// and are not compared. This is Intel's TDX TCB level matching (as in
// go-tdx-guest, which keeps it unexported).
func matchPlatformLevel(levels []pcs.TcbLevel, cpuSVN []byte, pceSVN uint16, teeTCBSVN []byte) (pcs.TcbLevel, bool) {
	for _, l := range levels {
		if len(l.Tcb.SgxTcbcomponents) != len(cpuSVN) || len(l.Tcb.TdxTcbcomponents) != len(teeTCBSVN) || len(teeTCBSVN) < 2 || pceSVN < l.Tcb.Pcesvn {
			continue
		}
		ok := true
		for i, c := range l.Tcb.SgxTcbcomponents {
			ok = ok && cpuSVN[i] >= c.Svn
		}
		start := 0
		if teeTCBSVN[1] > 0 {
			start = 2
		}
		for i := start; i < len(teeTCBSVN); i++ {
			ok = ok && teeTCBSVN[i] >= l.Tcb.TdxTcbcomponents[i].Svn
		}
		if ok {
			return l, true
		}
	}
	return pcs.TcbLevel{}, false
}

// qeIdentityMatches checks the QE report against Intel's QE identity:
// MISCSELECT and ATTRIBUTES under their masks, MRSIGNER and ISVPRODID
// (Intel's QE identity checks, in the order go-tdx-guest makes them).
func qeIdentityMatches(r *tpb.EnclaveReport, id *pcs.EnclaveIdentity) error {
	if len(id.MiscselectMask.Bytes) != 4 || len(id.Miscselect.Bytes) != 4 {
		return errors.New("QE identity: MISCSELECT and its mask must be 4 bytes")
	}
	if r.GetMiscSelect()&binary.LittleEndian.Uint32(id.MiscselectMask.Bytes) != binary.LittleEndian.Uint32(id.Miscselect.Bytes) {
		return fmt.Errorf("QE report MISCSELECT %#x does not match the QE identity's", r.GetMiscSelect())
	}
	attr := r.GetAttributes()
	if len(id.AttributesMask.Bytes) != len(attr) || len(id.Attributes.Bytes) != len(attr) {
		return errors.New("QE identity: ATTRIBUTES and its mask must be as long as the QE report's")
	}
	for i := range attr {
		if attr[i]&id.AttributesMask.Bytes[i] != id.Attributes.Bytes[i] {
			return fmt.Errorf("QE report ATTRIBUTES %s do not match the QE identity's", hex.EncodeToString(attr))
		}
	}
	if !bytes.Equal(r.GetMrSigner(), id.Mrsigner.Bytes) {
		return fmt.Errorf("QE report MRSIGNER %x is not the QE identity's", r.GetMrSigner())
	}
	if r.GetIsvProdId() != uint32(id.IsvProdID) {
		return fmt.Errorf("QE report ISVPRODID %d is not the QE identity's %d", r.GetIsvProdId(), id.IsvProdID)
	}
	return nil
}

// maxCollateralSkew is how far in the future of the verification time a
// collateral's issueDate may be: the verifier's clock behind Intel's.
const maxCollateralSkew = time.Hour

// parsed returns the collateral's TCB info and QE identity, parsed once
// (go-tdx-guest has checked their signatures before evaluateTCB reads
// them).
func (c *collateral) parsed() (*pcs.TdxTcbInfo, *pcs.QeIdentity, error) {
	c.once.Do(func() {
		var info pcs.TdxTcbInfo
		var id pcs.QeIdentity
		if err := json.Unmarshal(c.files[CollateralTCBInfo], &info); err != nil {
			c.parseErr = fmt.Errorf("TCB info: %v", err)
			return
		}
		if err := json.Unmarshal(c.files[CollateralQEIdentity], &id); err != nil {
			c.parseErr = fmt.Errorf("QE identity: %v", err)
			return
		}
		c.info, c.id = &info, &id
	})
	return c.info, c.id, c.parseErr
}

// stapledCollateral is a bundle's collateral in the directory's form, so
// that it is verified by the same code.
func stapledCollateral(t *evidence.TDXCollateral) *collateral {
	c := &collateral{dir: "the stapled collateral", revocation: true, files: map[string][]byte{
		CollateralTCBInfo:         t.TCBInfo,
		CollateralTCBInfoChain:    []byte(t.TCBInfoIssuerChain),
		CollateralQEIdentity:      t.QEIdentity,
		CollateralQEIdentityChain: []byte(t.QEIdentityIssuerChain),
		CollateralPCKCRL:          t.PCKCRL,
		CollateralPCKCRLChain:     []byte(t.PCKCRLIssuerChain),
		CollateralRootCRL:         t.RootCACRL,
	}}
	return c
}
