package policy

// The attestation section of a policy: what hardware evidence a verifier
// accepts. Every directive is one line; each single-valued directive may
// appear at most once. Parse errors name the line (Parse wraps them).
//
//	platform sev-snp|tdx ...             # allowed platforms; default: both
//	snp-min-tcb [milan|genoa|turin] bootloader=N tee=N snp=N microcode=N [fmc=N]
//	                                     # SEV-SNP TCB floors on REPORTED_TCB (any subset), read
//	                                     # with the report's product line's TCB layout; with a
//	                                     # product line, that line's floor (fmc=N: turin only);
//	                                     # once per line, once without one
//	snp-allow-debug                      # accept SEV-SNP guests with POLICY.DEBUG set
//	snp-allow-provisional-firmware       # accept SEV-SNP reports with COMMITTED_TCB < CURRENT_TCB
//	snp-policy KEY=VALUE ...             # SEV-SNP guest policy limits:
//	                                     #   smt=allow|deny          (default allow)
//	                                     #   migrate-ma=allow|deny   (default deny)
//	                                     #   cxl=allow|deny          (default deny)
//	                                     #   single-socket=require|any (default any)
//	                                     #   abi-min=MAJOR.MINOR     (default 0.0)
//	                                     #   vmpl=N                  (default: any VMPL)
//	                                     #   min-guest-svn=N         (default 0)
//	tdx-allow-debug                      # accept TDX TDs with TD_ATTRIBUTES.DEBUG set
//	tdx-min-tee-tcb-svn HEX              # TDX TEE_TCB_SVN floor, 16 bytes, component-wise
//	tdx-allow-tcb-status STATUS ...      # Intel TCB statuses accepted besides UpToDate:
//	                                     #   SWHardeningNeeded, ConfigurationNeeded,
//	                                     #   ConfigurationAndSWHardeningNeeded, OutOfDate,
//	                                     #   OutOfDateConfigurationNeeded (never Revoked);
//	tdx-tcb-status unchecked             # accept TDX evidence with no Intel collateral (stapled or
//	                                     # DIR): its TCB status is then not evaluated, shown as a
//	                                     # warning; without this line such evidence is refused
//	reproductions N                      # independent reproductions a release needs (default 0)
//	allow-unsandboxed-reproductions      # count reproductions an auditor made without a sandbox
//	reproduction-mismatch allow|deny     # a policy auditor's mismatch makes a release untrusted (default deny)
//	revocation-proof required|off [max-age=DURATION]
//	                                     # require the log's index proof that nothing revoked the
//	                                     # release's identity, current to within max-age (default 10m)
//	max-checkpoint-age DURATION          # e.g. 24h, 90m, 7d; default: not checked
//	trust-root sev-snp|tdx|gpu|gce-tcb FILE
//	                                     # also trust this root (test roots need this line);
//	                                     # gce-tcb: Google's firmware-endorsement root, none by default
//	gpu nvidia count=N [arch=A] [min-driver=V] [rims=required|optional] [ocsp=required|optional] [mode=cc|ppcie|any]
//	                                     # the enclave's GPUs: how many, which, and whether
//	                                     # their measurements must equal stapled NVIDIA RIMs
//	crl [vcek|vlek] FILE                 # cached AMD CRL (DER or PEM) for offline revocation:
//	                                     # the VCEK CRL (default) or the VLEK CRL, which AMD
//	                                     # publishes separately (kdsintf.amd.com/vlek/v1/LINE/crl)
//	tdx-collateral DIR                   # cached Intel PCS collateral for offline TCB status
//
// Debug is never allowed unless the policy says so, and no test root is
// ever trusted unless a trust-root line names its file. FILE and DIR are
// resolved by the verifier (policy/attest), relative to the policy file's
// directory when the verifier is told it.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Platform names as they appear in policies, evidence and statements.
const (
	PlatformSEVSNP = "sev-snp"
	PlatformTDX    = "tdx"
	// PlatformAzureSEVSNP and PlatformAzureTDX are confidential VMs
	// measured by a vTPM behind Microsoft's paravisor; allowed only when a
	// platform line names them.
	PlatformAzureSEVSNP = "azure-sev-snp"
	PlatformAzureTDX    = "azure-tdx"
)

// MaxReproductions bounds the reproductions directive.
const MaxReproductions = 100

// AttestationPolicy holds the policy's requirements on attestation
// evidence (platforms, TCB floors, guest policy, reproductions, checkpoint
// freshness). Its directives are registered in this file.
type AttestationPolicy struct {
	// Platforms lists the allowed platforms (PlatformSEVSNP, PlatformTDX)
	// in the order given. Empty means both are allowed.
	Platforms []string

	SNP SNPPolicy
	TDX TDXPolicy

	// Reproductions is how many reproduction statements from distinct
	// policy auditors, matching the release, a release needs. Default 0.
	Reproductions int

	// AllowUnsandboxedReproductions counts reproductions whose auditor
	// rebuilt without a sandbox (rebuild.sandbox: off) toward
	// Reproductions. Default false: the recipe ran on that auditor's host,
	// so the result is only as good as the recipe's good will.
	AllowUnsandboxedReproductions bool

	// RequireRevocationProof makes a release trusted only with the log's
	// index proof (log/vindex) for its measurement under a witnessed
	// checkpoint, listing no revocation. Off, a client sees only the
	// revocations it is handed, and says so.
	RequireRevocationProof bool

	// RevocationMaxAge bounds what a client may miss: the index proof
	// must show the log's index as of at most this long ago (the index
	// checkpoint's time, or, for an index checkpoint that ends the tree,
	// the witnesses' cosignature of that tree). A revocation logged
	// longer ago than this always reaches the client. Default
	// DefaultRevocationMaxAge.
	RevocationMaxAge time.Duration

	// GPU is the gpu line: the GPUs the enclave must attest.
	GPU GPUPolicy

	// AllowReproductionMismatch trusts a release that a policy auditor
	// reproduced with outcome "mismatch". Default false: the auditor the
	// policy trusts says the logged measurement is not what the source
	// builds to.
	AllowReproductionMismatch bool

	// MaxCheckpointAge bounds how old the checkpoint under which a release
	// is proven may be. Zero means freshness is not checked.
	MaxCheckpointAge time.Duration

	// TrustRoots are roots trusted in addition to the manufacturers'
	// embedded ones (AMD ARK/ASK for Milan, Genoa and Turin; the Intel SGX
	// root CA). A test root is trusted only when listed here.
	TrustRoots []TrustRoot

	// CRLs are cached AMD VCEK revocation lists (DER or PEM; 'crl FILE'
	// or 'crl vcek FILE'), one per product line at most. When CRLs or
	// VLEKCRLs is set, SEV-SNP evidence must pass the revocation check
	// against the list of its signing key's kind; nothing is fetched.
	CRLs []string

	// VLEKCRLs are cached AMD VLEK revocation lists ('crl vlek FILE'):
	// AMD publishes them apart from the VCEK's, signed by the same ARK,
	// listing revoked ASVKs and VLEKs.
	VLEKCRLs []string

	// TDXCollateral is a directory of cached Intel PCS collateral (see
	// policy/attest); when set, TDX evidence must have an UpToDate TCB
	// status according to it. Nothing is fetched.
	TDXCollateral string

	seen map[string]bool // single-valued directives already given
}

// SNPPolicy are the SEV-SNP requirements.
type SNPPolicy struct {
	// MinTCB are floors on the report's REPORTED_TCB (which must also equal
	// the VCEK's TCB), for every product line without its own entry in
	// MinTCBByLine. Zero components are no floor.
	MinTCB SNPTCB
	// MinTCBByLine are the floors of one product line each ("Milan",
	// "Genoa", "Turin"): TCB numbers of different lines are not
	// comparable, so a policy spanning lines can name each one's.
	MinTCBByLine map[string]SNPTCB
	// AllowProvisionalFirmware accepts a report whose COMMITTED_TCB (or
	// committed firmware version) is below the current one: firmware the
	// host installed but has not committed, so it may still roll back to
	// the committed one. REPORTED_TCB stays what floors and the VCEK/VLEK
	// are checked against. Default false.
	AllowProvisionalFirmware bool
	// AllowDebug accepts guests whose POLICY has DEBUG set.
	AllowDebug bool
	// AllowSMT accepts guests whose POLICY allows SMT. Default true.
	AllowSMT bool
	// AllowMigrationAgent accepts guests whose POLICY allows a migration
	// agent. Default false.
	AllowMigrationAgent bool
	// AllowCXL accepts guests whose POLICY allows CXL. Default false.
	AllowCXL bool
	// RequireSingleSocket requires POLICY.SINGLE_SOCKET.
	RequireSingleSocket bool
	// MinABIMajor and MinABIMinor are the lowest POLICY ABI version
	// accepted.
	MinABIMajor, MinABIMinor uint8
	// VMPL, when not nil, is the VMPL the report must come from.
	VMPL *int
	// MinGuestSVN is the lowest GUEST_SVN accepted.
	MinGuestSVN uint32
}

// SNPTCB are the SEV-SNP TCB components a policy can put floors on.
// FMC exists on Turin only.
type SNPTCB struct {
	Bootloader, TEE, SNP, Microcode uint8
	FMC                             uint8
}

// IsZero reports whether no floor is set.
func (t SNPTCB) IsZero() bool { return t == SNPTCB{} }

func (t SNPTCB) String() string {
	s := fmt.Sprintf("bootloader=%d tee=%d snp=%d microcode=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
	if t.FMC != 0 {
		s = fmt.Sprintf("fmc=%d %s", t.FMC, s)
	}
	return s
}

// snpProductLines are the AMD product lines a policy can name, as AMD
// spells them; policies write them in lower case.
var snpProductLines = []string{"Milan", "Genoa", "Turin"}

// Floor returns the TCB floor for reports of product line line (as AMD
// spells it): the line's own, else the floor for every line. ok is false
// when the policy names floors for other lines but neither this line's
// nor one for every line: such a policy fails closed on this line.
func (s SNPPolicy) Floor(line string) (floor SNPTCB, source string, ok bool) {
	if f, found := s.MinTCBByLine[line]; found {
		return f, "snp-min-tcb " + strings.ToLower(line), true
	}
	if len(s.MinTCBByLine) > 0 && s.MinTCB.IsZero() {
		return SNPTCB{}, "", false
	}
	return s.MinTCB, "snp-min-tcb", true
}

// TDXPolicy are the Intel TDX requirements.
type TDXPolicy struct {
	// AllowDebug accepts TDs whose TD_ATTRIBUTES has DEBUG set.
	AllowDebug bool
	// MinTeeTCBSVN is a component-wise floor on TEE_TCB_SVN (16 bytes), or
	// nil for none.
	MinTeeTCBSVN []byte
	// AllowTCBStatus are the Intel TCB statuses accepted besides
	// UpToDate (the tdx-allow-tcb-status line), each one of
	// TCBStatusesAllowable. RequireTCBStatus is set by that line (TDX
	// evidence always needs collateral, stapled or from TDXCollateral,
	// unless TCBStatusUnchecked).
	AllowTCBStatus   []string
	RequireTCBStatus bool
	// TCBStatusUnchecked accepts TDX evidence with no collateral, stapled
	// or from TDXCollateral ('tdx-tcb-status unchecked'): its TCB status
	// check then passes as a warning. Default false: without collateral
	// there is no TCB status, and the check fails.
	TCBStatusUnchecked bool
}

// TCBStatusesAllowable are the Intel TCB statuses a tdx-allow-tcb-status
// line may name. UpToDate is always accepted and Revoked never.
var TCBStatusesAllowable = []string{"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"}

// AllowsTCBStatus reports whether Intel TCB status s is acceptable:
// UpToDate, or one the policy names.
func (t *TDXPolicy) AllowsTCBStatus(s string) bool {
	if s == "UpToDate" {
		return true
	}
	for _, a := range t.AllowTCBStatus {
		if a == s {
			return true
		}
	}
	return false
}

// TrustRoot is a root named by a trust-root line.
type TrustRoot struct {
	Platform string // PlatformSEVSNP, PlatformTDX, PlatformGPU or PlatformGCETCB
	// File is a PEM file: for sev-snp an ARK and its ASK and/or ASVK (the
	// AMD KDS cert_chain format); for tdx one or more root certificates;
	// for gce-tcb Google's GCE confidential-computing TCB root (PEM or DER,
	// e.g. GCE-cc-tcb-root_1.crt), which signs firmware endorsements.
	File string
}

// AllowsPlatform reports whether evidence from platform is acceptable.
func (a *AttestationPolicy) AllowsPlatform(platform string) bool {
	if len(a.Platforms) == 0 {
		return platform == PlatformSEVSNP || platform == PlatformTDX
	}
	for _, p := range a.Platforms {
		if p == platform {
			return true
		}
	}
	return false
}

func defaultAttestation() AttestationPolicy {
	return AttestationPolicy{SNP: SNPPolicy{AllowSMT: true}}
}

func init() {
	registerDirective("platform", parsePlatform)
	registerDirective("snp-min-tcb", parseSNPMinTCB)
	registerDirective("snp-allow-debug", once(noArgs(func(a *AttestationPolicy) { a.SNP.AllowDebug = true })))
	registerDirective("snp-allow-provisional-firmware", once(noArgs(func(a *AttestationPolicy) { a.SNP.AllowProvisionalFirmware = true })))
	registerDirective("snp-policy", once(parseSNPPolicy))
	registerDirective("tdx-allow-debug", once(noArgs(func(a *AttestationPolicy) { a.TDX.AllowDebug = true })))
	registerDirective("tdx-min-tee-tcb-svn", once(parseTDXMinTeeTCBSVN))
	registerDirective("tdx-allow-tcb-status", once(parseTDXAllowTCBStatus))
	registerDirective("tdx-tcb-status", once(parseTDXTCBStatus))
	registerDirective("reproductions", once(parseReproductions))
	registerDirective("allow-unsandboxed-reproductions", once(noArgs(func(a *AttestationPolicy) { a.AllowUnsandboxedReproductions = true })))
	registerDirective("max-checkpoint-age", once(parseMaxCheckpointAge))
	registerDirective("reproduction-mismatch", once(parseReproductionMismatch))
	registerDirective("revocation-proof", once(parseRevocationProof))
	registerDirective("gpu", once(parseGPU))
	registerDirective("trust-root", parseTrustRoot)
	registerDirective("crl", parseCRL)
	registerDirective("tdx-collateral", once(parseTDXCollateral))
}

// once wraps a directive that may be given at most once.
func once(d func(a *AttestationPolicy, f []string) error) Directive {
	return func(p *Policy, f []string) error {
		a := &p.Attestation
		if a.seen[f[0]] {
			return fmt.Errorf("%s given twice", f[0])
		}
		if err := d(a, f); err != nil {
			return err
		}
		if a.seen == nil {
			a.seen = map[string]bool{}
		}
		a.seen[f[0]] = true
		return nil
	}
}

func noArgs(set func(a *AttestationPolicy)) func(a *AttestationPolicy, f []string) error {
	return func(a *AttestationPolicy, f []string) error {
		if len(f) != 1 {
			return fmt.Errorf("want: %s (no arguments)", f[0])
		}
		set(a)
		return nil
	}
}

func parsePlatform(p *Policy, f []string) error {
	if len(f) < 2 {
		return errors.New("want: platform sev-snp|tdx|azure-sev-snp|azure-tdx ...")
	}
	a := &p.Attestation
	for _, name := range f[1:] {
		if name != PlatformSEVSNP && name != PlatformTDX && name != PlatformAzureSEVSNP && name != PlatformAzureTDX {
			return fmt.Errorf("platform %q: want sev-snp, tdx, azure-sev-snp or azure-tdx", name)
		}
		for _, have := range a.Platforms {
			if have == name {
				return fmt.Errorf("platform %s listed twice", name)
			}
		}
		a.Platforms = append(a.Platforms, name)
	}
	return nil
}

// keyValues splits KEY=VALUE fields, rejecting unknown and repeated keys.
func keyValues(f []string, known ...string) (map[string]string, error) {
	kv := map[string]string{}
	for _, field := range f {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", field)
		}
		found := false
		for _, kk := range known {
			if k == kk {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown key %q; known keys: %s", k, strings.Join(known, ", "))
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("key %s given twice", k)
		}
		kv[k] = v
	}
	return kv, nil
}

func parseSNPMinTCB(p *Policy, f []string) error {
	a := &p.Attestation
	if len(f) < 2 {
		return errors.New("want: snp-min-tcb [milan|genoa|turin] bootloader=N tee=N snp=N microcode=N [fmc=N] (any of them)")
	}
	line, key := "", "snp-min-tcb"
	for _, l := range snpProductLines {
		if f[1] == strings.ToLower(l) {
			// One product line per line: "snp-min-tcb milan genoa …"
			// must not set Genoa's floor and drop Milan's.
			line, key = l, "snp-min-tcb "+f[1]
			f = f[1:]
			break
		}
	}
	if a.seen[key] {
		return fmt.Errorf("%s given twice", key)
	}
	if len(f) < 2 {
		return fmt.Errorf("want: %s KEY=N ... (bootloader, tee, snp, microcode, fmc)", key)
	}
	known := []string{"bootloader", "tee", "snp", "microcode"}
	if line == "Turin" {
		known = append(known, "fmc")
	}
	kv, err := keyValues(f[1:], known...)
	if err != nil {
		if hasKey(f[1:], "fmc") && line != "Turin" {
			return errors.New("fmc: only Turin has an FMC TCB component; write 'snp-min-tcb turin fmc=N ...'")
		}
		return err
	}
	var t SNPTCB
	for k, v := range kv {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return fmt.Errorf("%s=%s: want a number 0-255", k, v)
		}
		switch k {
		case "bootloader":
			t.Bootloader = uint8(n)
		case "tee":
			t.TEE = uint8(n)
		case "snp":
			t.SNP = uint8(n)
		case "microcode":
			t.Microcode = uint8(n)
		case "fmc":
			t.FMC = uint8(n)
		}
	}
	if line == "" {
		a.SNP.MinTCB = t
	} else {
		if a.SNP.MinTCBByLine == nil {
			a.SNP.MinTCBByLine = map[string]SNPTCB{}
		}
		a.SNP.MinTCBByLine[line] = t
	}
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	a.seen[key] = true
	return nil
}

// hasKey reports whether a KEY=VALUE field names key.
func hasKey(f []string, key string) bool {
	for _, field := range f {
		if k, _, _ := strings.Cut(field, "="); k == key {
			return true
		}
	}
	return false
}

func parseSNPPolicy(a *AttestationPolicy, f []string) error {
	if len(f) < 2 {
		return errors.New("want: snp-policy KEY=VALUE ... (smt, migrate-ma, cxl, single-socket, abi-min, vmpl, min-guest-svn)")
	}
	kv, err := keyValues(f[1:], "smt", "migrate-ma", "cxl", "single-socket", "abi-min", "vmpl", "min-guest-svn")
	if err != nil {
		return err
	}
	allow := func(k, v string) (bool, error) {
		switch v {
		case "allow":
			return true, nil
		case "deny":
			return false, nil
		}
		return false, fmt.Errorf("%s=%s: want allow or deny", k, v)
	}
	s := &a.SNP
	for k, v := range kv {
		switch k {
		case "smt":
			s.AllowSMT, err = allow(k, v)
		case "migrate-ma":
			s.AllowMigrationAgent, err = allow(k, v)
		case "cxl":
			s.AllowCXL, err = allow(k, v)
		case "single-socket":
			switch v {
			case "require":
				s.RequireSingleSocket = true
			case "any":
				s.RequireSingleSocket = false
			default:
				err = fmt.Errorf("single-socket=%s: want require or any", v)
			}
		case "abi-min":
			majS, minS, ok := strings.Cut(v, ".")
			maj, err1 := strconv.ParseUint(majS, 10, 8)
			mnr, err2 := strconv.ParseUint(minS, 10, 8)
			if !ok || err1 != nil || err2 != nil {
				err = fmt.Errorf("abi-min=%s: want MAJOR.MINOR, each 0-255", v)
			}
			s.MinABIMajor, s.MinABIMinor = uint8(maj), uint8(mnr)
		case "vmpl":
			n, err1 := strconv.ParseUint(v, 10, 8)
			if err1 != nil || n > 3 {
				err = fmt.Errorf("vmpl=%s: want 0-3", v)
			}
			vmpl := int(n)
			s.VMPL = &vmpl
		case "min-guest-svn":
			n, err1 := strconv.ParseUint(v, 10, 32)
			if err1 != nil {
				err = fmt.Errorf("min-guest-svn=%s: want a 32-bit number", v)
			}
			s.MinGuestSVN = uint32(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseTDXMinTeeTCBSVN(a *AttestationPolicy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: tdx-min-tee-tcb-svn HEX (16 bytes)")
	}
	b, err := hex.DecodeString(f[1])
	if err != nil || len(b) != 16 {
		return fmt.Errorf("tdx-min-tee-tcb-svn %q: want 32 hex characters (16 bytes)", f[1])
	}
	a.TDX.MinTeeTCBSVN = b
	return nil
}

func parseTDXAllowTCBStatus(a *AttestationPolicy, f []string) error {
	if len(f) < 2 {
		return fmt.Errorf("want: tdx-allow-tcb-status STATUS ... (of %s)", strings.Join(TCBStatusesAllowable, ", "))
	}
	for _, s := range f[1:] {
		if s == "Revoked" {
			return errors.New("tdx-allow-tcb-status: Revoked is never allowed")
		}
		known := false
		for _, k := range TCBStatusesAllowable {
			known = known || k == s
		}
		if !known {
			return fmt.Errorf("tdx-allow-tcb-status: unknown status %q; want one of %s", s, strings.Join(TCBStatusesAllowable, ", "))
		}
		for _, have := range a.TDX.AllowTCBStatus {
			if have == s {
				return fmt.Errorf("tdx-allow-tcb-status: %s listed twice", s)
			}
		}
		if s != "UpToDate" {
			a.TDX.AllowTCBStatus = append(a.TDX.AllowTCBStatus, s)
		}
	}
	if a.TDX.TCBStatusUnchecked {
		return errors.New("tdx-allow-tcb-status requires a TCB status, which tdx-tcb-status unchecked gives up")
	}
	a.TDX.RequireTCBStatus = true
	return nil
}

func parseTDXTCBStatus(a *AttestationPolicy, f []string) error {
	if len(f) != 2 || f[1] != "unchecked" {
		return errors.New("want: tdx-tcb-status unchecked (accept TDX evidence with no Intel collateral, its TCB status not evaluated)")
	}
	if a.TDX.RequireTCBStatus {
		return errors.New("tdx-tcb-status unchecked contradicts tdx-allow-tcb-status, which requires a TCB status")
	}
	a.TDX.TCBStatusUnchecked = true
	return nil
}

func parseReproductions(a *AttestationPolicy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: reproductions N")
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > MaxReproductions {
		return fmt.Errorf("reproductions %q: want a number 0-%d", f[1], MaxReproductions)
	}
	a.Reproductions = n
	return nil
}

// RevocationBound is how current an index proof must be for a client to
// decide "not revoked" on it: RevocationMaxAge (DefaultRevocationMaxAge
// when unset), and no more than MaxCheckpointAge when that is set — a
// client that wants a view of the log no older than that wants its
// revocations no older either.
func (a *AttestationPolicy) RevocationBound() time.Duration {
	d := a.RevocationMaxAge
	if d == 0 {
		d = DefaultRevocationMaxAge
	}
	if a.MaxCheckpointAge > 0 {
		d = min(d, a.MaxCheckpointAge)
	}
	return d
}

// DefaultRevocationMaxAge is a policy's revocation-proof max-age when
// the line names none: ten times the log's default republishing interval
// (a log at rest has its checkpoint cosigned again every minute), so an
// honest enclave re-stapling every few seconds always meets it.
const DefaultRevocationMaxAge = 10 * time.Minute

func parseRevocationProof(a *AttestationPolicy, f []string) error {
	if len(f) < 2 || len(f) > 3 || (f[1] != "required" && f[1] != "off") {
		return errors.New("want: revocation-proof required|off [max-age=DURATION]")
	}
	a.RequireRevocationProof = f[1] == "required"
	a.RevocationMaxAge = DefaultRevocationMaxAge
	if len(f) == 3 {
		v, ok := strings.CutPrefix(f[2], "max-age=")
		if !ok {
			return fmt.Errorf("revocation-proof: unknown option %q (want max-age=DURATION)", f[2])
		}
		d, err := parseDuration(v)
		if err != nil {
			return fmt.Errorf("revocation-proof max-age: %w", err)
		}
		a.RevocationMaxAge = d
	}
	return nil
}

func parseReproductionMismatch(a *AttestationPolicy, f []string) error {
	if len(f) != 2 || (f[1] != "allow" && f[1] != "deny") {
		return errors.New("want: reproduction-mismatch allow|deny")
	}
	a.AllowReproductionMismatch = f[1] == "allow"
	return nil
}

func parseMaxCheckpointAge(a *AttestationPolicy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: max-checkpoint-age DURATION (e.g. 24h, 7d)")
	}
	d, err := parseDuration(f[1])
	if err != nil {
		return err
	}
	a.MaxCheckpointAge = d
	return nil
}

// parseDuration is time.ParseDuration plus a whole-days form ("7d").
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("duration %q: want a positive duration such as 90m, 24h or 7d", s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, bad
	}
	return d, nil
}

// PlatformGPU names GPU device roots in trust-root lines.
const PlatformGPU = "gpu"

// PlatformGCETCB names Google's firmware-endorsement roots in trust-root
// lines: the root that signs Google Cloud's VMLaunchEndorsements.
const PlatformGCETCB = "gce-tcb"

// GPUPolicy is the gpu line.
type GPUPolicy struct {
	// Required is set by a gpu line: the enclave must attest Count GPUs.
	Required    bool
	Vendor      string // nvidia
	Count       int
	Arch        string // e.g. hopper; "" accepts any
	MinDriver   string // e.g. 550.144; "" accepts any
	RequireRIMs bool   // measurements must equal stapled, verified NVIDIA RIMs
	// RequireOCSP: every certificate of the device chain after the leaf,
	// and of each stapled RIM's signing chain, has a stapled, current,
	// good OCSP response from its issuer (ocsp=required, the default).
	RequireOCSP bool
	// Mode is the mode the GPUs' signed evidence must state: "cc",
	// "ppcie", or "" for any (reports before opaque data version 1 state
	// none).
	Mode string
}

// MaxGPUs bounds a gpu line's count.
const MaxGPUs = 16

func parseGPU(a *AttestationPolicy, f []string) error {
	if len(f) < 3 || f[1] != "nvidia" {
		return errors.New("want: gpu nvidia count=N [arch=A] [min-driver=V] [rims=required|optional] [ocsp=required|optional] [mode=cc|ppcie|any]")
	}
	g := GPUPolicy{Required: true, Vendor: f[1], RequireRIMs: true, RequireOCSP: true}
	seen := map[string]bool{}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || v == "":
			return fmt.Errorf("gpu: %q is not KEY=VALUE", kv)
		case seen[k]:
			// Not the last one wins: "count=8 … count=1" would accept one
			// GPU, "rims=required … rims=optional" none of NVIDIA's RIMs.
			return fmt.Errorf("gpu: key %s given twice", k)
		case k == "count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxGPUs {
				return fmt.Errorf("gpu count %q: want 1-%d", v, MaxGPUs)
			}
			g.Count = n
		case k == "arch":
			g.Arch = v
		case k == "min-driver":
			for _, p := range strings.Split(v, ".") {
				if _, err := strconv.Atoi(p); err != nil {
					return fmt.Errorf("gpu min-driver %q: want a dotted version", v)
				}
			}
			g.MinDriver = v
		case k == "mode" && (v == "cc" || v == "ppcie" || v == "any"):
			if v != "any" {
				g.Mode = v
			}
		case k == "rims" && (v == "required" || v == "optional"):
			g.RequireRIMs = v == "required"
		case k == "ocsp" && (v == "required" || v == "optional"):
			g.RequireOCSP = v == "required"
		default:
			return fmt.Errorf("gpu: unknown %q", kv)
		}
		seen[k] = true
	}
	if g.Count == 0 {
		return errors.New("gpu: count=N is required")
	}
	a.GPU = g
	return nil
}

func parseTrustRoot(p *Policy, f []string) error {
	if len(f) != 3 {
		return errors.New("want: trust-root sev-snp|tdx|gpu|gce-tcb FILE")
	}
	if f[1] != PlatformSEVSNP && f[1] != PlatformTDX && f[1] != PlatformGPU && f[1] != PlatformGCETCB {
		return fmt.Errorf("trust-root platform %q: want sev-snp, tdx, gpu or gce-tcb", f[1])
	}
	a := &p.Attestation
	for _, r := range a.TrustRoots {
		if r == (TrustRoot{f[1], f[2]}) {
			return fmt.Errorf("trust-root %s %s listed twice", f[1], f[2])
		}
	}
	a.TrustRoots = append(a.TrustRoots, TrustRoot{Platform: f[1], File: f[2]})
	return nil
}

func parseCRL(p *Policy, f []string) error {
	if len(f) != 2 && (len(f) != 3 || (f[1] != "vcek" && f[1] != "vlek")) {
		return errors.New("want: crl [vcek|vlek] FILE")
	}
	a := &p.Attestation
	file := f[len(f)-1]
	for _, c := range append(append([]string(nil), a.CRLs...), a.VLEKCRLs...) {
		if c == file {
			return fmt.Errorf("crl %s listed twice", file)
		}
	}
	if len(f) == 3 && f[1] == "vlek" {
		a.VLEKCRLs = append(a.VLEKCRLs, file)
		return nil
	}
	a.CRLs = append(a.CRLs, file)
	return nil
}

func parseTDXCollateral(a *AttestationPolicy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: tdx-collateral DIR")
	}
	a.TDXCollateral = f[1]
	return nil
}
