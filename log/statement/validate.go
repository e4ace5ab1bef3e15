package statement

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/policy/measure/snp"
	"github.com/attestlog/attestlog/policy/measure/tdx"
)

// Limits on free-form fields, so that one entry cannot hide megabytes in a
// version string.
const (
	maxNameLen     = 256
	maxTextLen     = 4096
	maxArtifacts   = 64
	maxArgv        = 256
	maxEnv         = 128
	maxOutputs     = 64
	maxVCPUs       = 512
	maxProvenance  = 48 << 10
	measurementLen = 48
)

func (p *Parsed) validate() error {
	st := p.Statement
	switch p.Kind {
	case KindRelease:
		if len(st.Subject) == 0 {
			return fieldErr("payload.subject", "a release lists at least one artifact")
		}
		if len(st.Subject) > maxArtifacts {
			return fieldErr("payload.subject", "at most %d artifacts, got %d", maxArtifacts, len(st.Subject))
		}
		seen := make(map[string]bool, len(st.Subject))
		for i, s := range st.Subject {
			if err := validateSubject(i, s); err != nil {
				return err
			}
			if seen[s.Name] {
				return fieldErr(fmt.Sprintf("payload.subject[%d].name", i), "duplicate artifact name %q", s.Name)
			}
			seen[s.Name] = true
		}
		return p.Release.validate("payload.predicate")
	case KindReproduction, KindRevocation:
		if len(st.Subject) != 1 {
			return fieldErr("payload.subject", "a %s has exactly one subject, the release entry; got %d", p.Kind, len(st.Subject))
		}
		s := st.Subject[0]
		idx, ok := strings.CutPrefix(s.Name, "entry/")
		n, err := strconv.ParseUint(idx, 10, 64)
		if !ok || err != nil || strconv.FormatUint(n, 10) != idx {
			return fieldErr("payload.subject[0].name", "must be entry/INDEX, got %q", s.Name)
		}
		if err := checkHex("payload.subject[0].digest.sha256", s.Digest.SHA256, 32); err != nil {
			return err
		}
		if s.Digest.SHA384 != "" || s.Digest.SHA512 != "" {
			return fieldErr("payload.subject[0].digest", "entry references use sha256 only")
		}
		p.Ref = EntryRef{Index: n, SHA256: s.Digest.SHA256}
		if p.Kind == KindReproduction {
			return p.Reproduction.validate("payload.predicate")
		}
		return p.Revocation.validate("payload.predicate")
	}
	return nil
}

// validateSubject checks artifact i. Field names are built only for an
// error: admission validates every subject of every submission.
func validateSubject(i int, s Subject) error {
	f := func(sub string) string { return fmt.Sprintf("payload.subject[%d]%s", i, sub) }
	if msg := textProblem(s.Name, maxNameLen, true); msg != "" {
		return fieldErr(f(".name"), "%s", msg)
	}
	if s.Digest.SHA256 == "" && s.Digest.SHA384 == "" && s.Digest.SHA512 == "" {
		return fieldErr(f(".digest"), "needs a sha256, sha384 or sha512 digest")
	}
	if s.Digest.SHA256 != "" {
		if msg := hexProblem(s.Digest.SHA256, 32); msg != "" {
			return fieldErr(f(".digest.sha256"), "%s", msg)
		}
	}
	if s.Digest.SHA384 != "" {
		if msg := hexProblem(s.Digest.SHA384, 48); msg != "" {
			return fieldErr(f(".digest.sha384"), "%s", msg)
		}
	}
	if s.Digest.SHA512 != "" {
		if msg := hexProblem(s.Digest.SHA512, 64); msg != "" {
			return fieldErr(f(".digest.sha512"), "%s", msg)
		}
	}
	return nil
}

var memoryRE = regexp.MustCompile(`^[1-9][0-9]{0,12}([KMGTkmgt](iB|B)?)?$`)

// isVersion reports whether s is 1-128 characters of letters, digits and
// ._+~- starting with a letter or digit (^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$,
// checked without a regular expression: every admission checks several).
func isVersion(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '~' && c != '-' {
			return false
		}
	}
	return true
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func (r *Release) validate(f string) error {
	if !isVersion(r.Version) {
		return fieldErr(f+".version", "must be 1-128 characters of letters, digits and ._+~- starting with a letter or digit, got %q", short(r.Version))
	}
	if err := checkTime(f+".time", r.Time); err != nil {
		return err
	}
	if err := r.Measurements.validate(f+".measurements", r.Platform, true); err != nil {
		return err
	}
	if err := r.Source.validate(f + ".source"); err != nil {
		return err
	}
	if err := r.Recipe.validate(f + ".recipe"); err != nil {
		return err
	}
	if len(r.Provenance) > maxProvenance {
		return fieldErr(f+".provenance", "at most %d bytes, got %d", maxProvenance, len(r.Provenance))
	}
	if len(r.Provenance) > 0 && r.Provenance[0] != '{' {
		return fieldErr(f+".provenance", "must be a Sigstore bundle JSON object")
	}
	if r.GPUs != nil {
		if err := r.GPUs.validate(f + ".gpus"); err != nil {
			return err
		}
	}
	return nil
}

// isGPUArch reports whether s is 1-32 letters, digits, _ or -
// (^[A-Za-z0-9_-]{1,32}$).
func isGPUArch(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func (g *GPUs) validate(f string) error {
	if g.Vendor != "nvidia" {
		return fieldErr(f+".vendor", "must be nvidia, got %q", short(g.Vendor))
	}
	if !isGPUArch(g.Arch) {
		return fieldErr(f+".arch", "must be 1-32 letters, digits, _ or - (e.g. HOPPER), got %q", short(g.Arch))
	}
	if g.Count < 1 || g.Count > 16 {
		return fieldErr(f+".count", "must be 1 to 16, got %d", g.Count)
	}
	for i, v := range append(append([]string{}, g.Drivers...), g.VBIOS...) {
		if !isVersion(v) {
			return fieldErr(fmt.Sprintf("%s.versions[%d]", f, i), "%q is not a version", short(v))
		}
	}
	if len(g.Drivers) > 16 || len(g.VBIOS) > 16 || len(g.RIMs) > 16 || len(g.Golden) > 255 {
		return fieldErr(f, "at most 16 drivers, VBIOS versions and RIMs and 255 golden values")
	}
	for i, d := range g.RIMs {
		if err := checkHex(fmt.Sprintf("%s.rims[%d]", f, i), d, 32); err != nil {
			return err
		}
	}
	for k, v := range g.Golden {
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 || n > 255 || strconv.Itoa(n) != k {
			return fieldErr(f+".golden", "key %q is not an SPDM block index 1-255", short(k))
		}
		if err := checkHex(f+".golden."+k, v, 48); err != nil {
			return err
		}
	}
	if len(g.RIMs) == 0 && len(g.Golden) == 0 {
		return fieldErr(f, "name the RIMs carrying the GPUs' golden measurements (rims) or give them (golden)")
	}
	return nil
}

func (m Measurements) validate(f, platform string, required bool) error {
	switch platform {
	case PlatformAzureSNP, PlatformAzureTDX:
		if err := (Measurements{SNP: m.SNP, TDX: m.TDX}).validate(f, HardwarePlatform(platform), true); err != nil {
			return err
		}
		return m.VTPM.validate(f + ".vtpm")
	}
	if m.VTPM != nil {
		return fieldErr(f+".vtpm", "only for platforms %s and %s", PlatformAzureSNP, PlatformAzureTDX)
	}
	switch platform {
	case PlatformSNP:
		if m.TDX != nil {
			return fieldErr(f+".tdx", "not allowed for platform %s", platform)
		}
		if m.SNP == nil {
			if required {
				return fieldErr(f+".snp", "required for platform %s", platform)
			}
			return nil
		}
		s := m.SNP
		if err := checkHex(f+".snp.launch_digest", s.LaunchDigest, measurementLen); err != nil {
			return err
		}
		if s.GuestPolicy != "" {
			if err := checkHex(f+".snp.guest_policy", s.GuestPolicy, 8); err != nil {
				return err
			}
		}
		if s.FamilyID != "" {
			if err := checkHex(f+".snp.family_id", s.FamilyID, 16); err != nil {
				return err
			}
		}
		if s.ImageID != "" {
			if err := checkHex(f+".snp.image_id", s.ImageID, 16); err != nil {
				return err
			}
		}
		if err := checkEndorser(f+".snp.firmware_endorsement", s.FirmwareEndorsement); err != nil {
			return err
		}
	case PlatformTDX:
		if m.SNP != nil {
			return fieldErr(f+".snp", "not allowed for platform %s", platform)
		}
		if m.TDX == nil {
			if required {
				return fieldErr(f+".tdx", "required for platform %s", platform)
			}
			return nil
		}
		t := m.TDX
		if err := checkHex(f+".tdx.mrtd", t.MRTD, measurementLen); err != nil {
			return err
		}
		for _, v := range []struct{ name, v string }{{"rtmr0", t.RTMR0}, {"rtmr1", t.RTMR1}, {"rtmr2", t.RTMR2}, {"rtmr3", t.RTMR3}, {"mrconfigid", t.MRConfigID}} {
			if v.v == "" {
				continue
			}
			if err := checkHex(f+".tdx."+v.name, v.v, measurementLen); err != nil {
				return err
			}
		}
		if err := checkEndorser(f+".tdx.firmware_endorsement", t.FirmwareEndorsement); err != nil {
			return err
		}
	default:
		return fieldErr(strings.TrimSuffix(f, ".measurements")+".platform", "must be %q, %q, %q or %q, got %q", PlatformSNP, PlatformTDX, PlatformAzureSNP, PlatformAzureTDX, short(platform))
	}
	return nil
}

// checkEndorser accepts no firmware endorsement or Google's.
func checkEndorser(f, v string) error {
	if v != "" && v != FirmwareEndorsedByGoogle {
		return fieldErr(f, "must be %q or absent, got %q", FirmwareEndorsedByGoogle, short(v))
	}
	return nil
}

func (s Source) validate(f string) error {
	u, err := url.Parse(s.Repo)
	ok := err == nil && len(s.Repo) <= maxNameLen && !strings.ContainsAny(s.Repo, " \t\n") && u.User == nil
	if ok {
		switch u.Scheme {
		case "https", "git+https":
			ok = u.Host != "" && u.Opaque == ""
		case "file":
			ok = u.Host == "" && strings.HasPrefix(u.Path, "/")
		default:
			ok = false
		}
	}
	if !ok {
		return fieldErr(f+".repo", "must be a repository URL (https://host/…, git+https://host/… or file:///path, without credentials), got %q", short(s.Repo))
	}
	if len(s.Commit) != 40 && len(s.Commit) != 64 {
		return fieldErr(f+".commit", "must be a full 40- or 64-character commit id, got %d characters", len(s.Commit))
	}
	return checkHex(f+".commit", s.Commit, len(s.Commit)/2)
}

func (r Recipe) validate(f string) error {
	if len(r.Argv) == 0 {
		return fieldErr(f+".argv", "the build command is required")
	}
	if len(r.Argv) > maxArgv {
		return fieldErr(f+".argv", "at most %d arguments", maxArgv)
	}
	for i, a := range r.Argv {
		if msg := textProblem(a, maxTextLen, i == 0); msg != "" {
			return fieldErr(fmt.Sprintf("%s.argv[%d]", f, i), "%s", msg)
		}
	}
	if err := CheckRecipeEnv(f+".env", r.Env); err != nil {
		return err
	}
	if len(r.Outputs) > maxOutputs {
		return fieldErr(f+".outputs", "at most %d outputs", maxOutputs)
	}
	for i, o := range r.Outputs {
		msg := textProblem(o, maxNameLen, true)
		if msg == "" && (strings.HasPrefix(o, "/") || o == ".." || strings.HasPrefix(o, "../") || strings.HasSuffix(o, "/..") || strings.Contains(o, "/../")) {
			msg = fmt.Sprintf("must be a relative path inside the build directory, got %q", short(o))
		}
		if msg != "" {
			return fieldErr(fmt.Sprintf("%s.outputs[%d]", f, i), "%s", msg)
		}
	}
	if m := r.Measure; m != nil {
		for _, v := range []struct{ name, v string }{{"firmware", m.Firmware}, {"kernel", m.Kernel}, {"initrd", m.Initrd}} {
			if v.v != "" && !slices.Contains(r.Outputs, v.v) {
				return fieldErr(f+".measure."+v.name, "%q is not one of the recipe's outputs", short(v.v))
			}
		}
		if err := checkText(f+".measure.cmdline", m.Cmdline, maxTextLen, false); err != nil {
			return err
		}
		if m.VCPUs < 0 || m.VCPUs > maxVCPUs {
			return fieldErr(f+".measure.vcpus", "must be 0 to %d, got %d", maxVCPUs, m.VCPUs)
		}
		// The values 'attestlog measure snp' and the auditor take, with
		// the same parsers: a release nobody can measure is refused here.
		for _, v := range []struct{ name, v string }{{"vcpu_type", m.VCPUType}, {"vmm_type", m.VMMType}} {
			if err := checkText(f+".measure."+v.name, v.v, 64, false); err != nil {
				return err
			}
		}
		if m.VCPUType != "" {
			if _, err := snp.ParseVCPUType(m.VCPUType); err != nil {
				return fieldErr(f+".measure.vcpu_type", "%v", err)
			}
		}
		if m.VMMType != "" {
			if _, err := snp.ParseVMMType(m.VMMType); err != nil {
				return fieldErr(f+".measure.vmm_type", "%v", err)
			}
		}
		if m.GuestFeatures != "" {
			if _, err := snp.ParseGuestFeatures(m.GuestFeatures); err != nil {
				return fieldErr(f+".measure.guest_features", "%v", err)
			}
		}
		if m.OVMFHash != "" {
			if err := checkHex(f+".measure.ovmf_hash", m.OVMFHash, 48); err != nil {
				return err
			}
		}
		if m.Memory != "" {
			if _, err := tdx.ParseMemorySize(m.Memory); err != nil || !memoryRE.MatchString(m.Memory) {
				return fieldErr(f+".measure.memory", "must be a size as QEMU's -m takes it (e.g. 4G, 4096M, 4096), got %q", short(m.Memory))
			}
		}
	}
	return nil
}

func (r *Reproduction) validate(f string) error {
	if r.Outcome != OutcomeMatch && r.Outcome != OutcomeMismatch {
		return fieldErr(f+".outcome", "must be %q or %q, got %q", OutcomeMatch, OutcomeMismatch, short(r.Outcome))
	}
	if err := checkTime(f+".time", r.Time); err != nil {
		return err
	}
	platform := ""
	switch {
	case r.Measurements.VTPM != nil && r.Measurements.SNP != nil:
		platform = PlatformAzureSNP
	case r.Measurements.VTPM != nil:
		platform = PlatformAzureTDX
	case r.Measurements.SNP != nil:
		platform = PlatformSNP
	case r.Measurements.TDX != nil:
		platform = PlatformTDX
	default:
		return fieldErr(f+".measurements", "the rebuilt measurement (snp or tdx) is required")
	}
	if err := r.Measurements.validate(f+".measurements", platform, true); err != nil {
		return err
	}
	return checkText(f+".detail", r.Detail, maxTextLen, false)
}

func (r *Revocation) validate(f string) error {
	if err := checkText(f+".reason", r.Reason, maxTextLen, true); err != nil {
		return err
	}
	if err := checkText(f+".advisory", r.Advisory, maxNameLen, false); err != nil {
		return err
	}
	return checkTime(f+".time", r.Time)
}

// checkHex requires s to be exactly n bytes of lowercase hex.
func checkHex(f, s string, n int) error {
	if msg := hexProblem(s, n); msg != "" {
		return fieldErr(f, "%s", msg)
	}
	return nil
}

// hexProblem says what is wrong with s as n bytes of lowercase hex, or
// returns "".
func hexProblem(s string, n int) string {
	if len(s) != 2*n {
		return fmt.Sprintf("must be %d lowercase hex characters (%d bytes), got %d characters", 2*n, n, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Sprintf("must be lowercase hex, got %q", short(s))
		}
	}
	return ""
}

func checkText(f, s string, max int, required bool) error {
	if msg := textProblem(s, max, required); msg != "" {
		return fieldErr(f, "%s", msg)
	}
	return nil
}

// textProblem says what is wrong with s as a free-form field of at most
// max bytes, or returns "".
func textProblem(s string, max int, required bool) string {
	if required && s == "" {
		return "required"
	}
	if len(s) > max {
		return fmt.Sprintf("at most %d bytes, got %d", max, len(s))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte"
	}
	return ""
}

func checkTime(f string, t time.Time) error {
	if t.IsZero() {
		return fieldErr(f, "required (RFC 3339, UTC)")
	}
	if t.Location() != time.UTC || t.Nanosecond() != 0 {
		return fieldErr(f, "must be RFC 3339 in UTC with whole seconds, e.g. 2026-11-26T12:00:00Z")
	}
	return nil
}

// isEnvName reports whether s is a portable environment variable name
// (POSIX: letters, digits and underscores, not starting with a digit;
// ^[A-Za-z_][A-Za-z0-9_]*$).
func isEnvName(s string) bool {
	if len(s) == 0 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// reservedEnv are the variables a recipe may not set: those that change
// how programs are loaded or libraries behave (glibc's list of variables
// it ignores in set-user-ID programs, for the same reason), and those
// the rebuild sandbox sets itself.
var reservedEnv = map[string]string{
	"GCONV_PATH": "loads code", "GETCONF_DIR": "changes the C library", "GLIBC_TUNABLES": "changes the C library",
	"HOSTALIASES": "changes the C library", "LOCALDOMAIN": "changes the C library", "LOCPATH": "loads locale data",
	"NIS_PATH": "changes the C library", "NLSPATH": "loads message catalogs", "RESOLV_HOST_CONF": "changes the C library",
	"RES_OPTIONS": "changes the C library", "TZDIR": "loads time zone data",
	"HOME": "is set by the rebuild sandbox", "TMPDIR": "is set by the rebuild sandbox", "PATH": "is set by the auditor (rebuild.path)",
}

// CheckRecipeEnv checks a recipe's environment (field f): at most maxEnv
// portable names, none that changes loading (LD_*, MALLOC_*, GCONV_PATH,
// GLIBC_TUNABLES, …) or that the sandbox sets (PATH, HOME, TMPDIR), and
// values of plain text. A release that only builds with them is not
// reproducible by an auditor anyway.
func CheckRecipeEnv(f string, env map[string]string) error {
	if len(env) > maxEnv {
		return fieldErr(f, "at most %d variables", maxEnv)
	}
	// Each variable on its own: sorting the names first, so that the
	// error names the first bad one, is only needed when there is one.
	bad := false
	for k, v := range env {
		if checkEnvVar(f, k, v) != nil {
			bad = true
			break
		}
	}
	if !bad {
		return nil
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if err := checkEnvVar(f, k, env[k]); err != nil {
			return err
		}
	}
	return nil
}

// checkEnvVar checks variable k=v of a recipe's environment (field f).
func checkEnvVar(f, k, v string) error {
	if !isEnvName(k) || len(k) > maxNameLen {
		return fieldErr(f, "bad variable name %q (want letters, digits and underscores, not starting with a digit)", short(k))
	}
	why, reserved := reservedEnv[k]
	switch {
	case strings.HasPrefix(k, "LD_"):
		why, reserved = "changes how programs are loaded", true
	case strings.HasPrefix(k, "MALLOC_"):
		why, reserved = "changes the C library", true
	}
	if reserved {
		return fieldErr(f+"."+k, "a recipe may not set %s: it %s; a release that builds only with it is not reproducible", k, why)
	}
	if msg := textProblem(v, maxTextLen, false); msg != "" {
		return fieldErr(f+"."+k, "%s", msg)
	}
	return nil
}
