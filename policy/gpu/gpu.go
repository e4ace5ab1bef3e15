// Package gpu makes the GPU part of the trust decision: every GPU of an
// evidence bundle is verified (device chain, report signature, the nonce
// derived from the client's, measurements against the stapled NVIDIA
// RIMs) and the set is held to the policy's gpu line (count,
// architecture, minimum driver, RIMs required). The CPU evidence binds
// the GPUs through REPORT_DATA (evidence.Bundle.ExpectedReportData), so
// the GPUs verified here are the ones the enclave talks to.
package gpu

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu/rim"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// Names of the set checks.
const (
	CheckCount   = "GPU count"
	CheckVersion = "GPU driver version"
	CheckMode    = "GPU mode"
)

// CheckArch names the architecture check (spdm's: certified architecture).
const CheckArch = spdm.CheckArch

// Verifier verifies GPU evidence under a policy's gpu line.
type Verifier struct {
	Policy    policy.GPUPolicy
	DeviceCAs *x509.CertPool // NVIDIA's Device Identity CA, plus test roots the policy names
	RIMRoots  *x509.CertPool // NVIDIA's CoRIM signing root
	Now       func() time.Time
}

// NewVerifier is a verifier with NVIDIA's roots and, for tests and the
// demo, the extra device roots given (PEM).
func NewVerifier(p policy.GPUPolicy, extraDeviceRoots ...[]byte) *Verifier {
	cas := spdm.DeviceRoots()
	for _, pemData := range extraDeviceRoots {
		cas.AppendCertsFromPEM(pemData)
	}
	return &Verifier{Policy: p, DeviceCAs: cas, RIMRoots: rim.Roots(), Now: time.Now}
}

// Verify checks the GPUs of b for the client's nonce. With no gpu line and
// no GPUs it returns no checks: a CPU-only enclave under a CPU-only policy.
func (v *Verifier) Verify(b *evidence.Bundle, nonce []byte) check.List {
	p := v.Policy
	if !p.Required && len(b.GPUs) == 0 {
		return nil
	}
	var cs check.List
	switch {
	case p.Required && len(b.GPUs) != p.Count:
		cs = append(cs, check.Fail(CheckCount, "the evidence carries %d GPUs; the policy requires %d", len(b.GPUs), p.Count))
	case !p.Required:
		cs = append(cs, check.Fail(CheckCount, "the evidence carries %d GPUs and the policy has no gpu line: add 'gpu nvidia count=%d …' to trust them", len(b.GPUs), len(b.GPUs)))
	default:
		cs = append(cs, check.Pass(CheckCount, "%d GPUs, as the policy requires", len(b.GPUs)))
	}
	now := v.Now()
	for i, g := range b.GPUs {
		n := evidence.GPUNonce(nonce, i)
		in := spdm.Inspect(spdm.GPUEvidence{Arch: g.Arch, Report: g.Report, Certificate: []byte(g.CertChain)}, v.DeviceCAs, now, n[:])
		prefix := fmt.Sprintf("GPU %d: ", i)
		for _, c := range in.Checks {
			c.Reason = prefix + c.Reason
			cs = append(cs, c)
		}
		if path := in.Path(); path != nil {
			// The leaf is made by the GPU's firmware at boot and has no
			// OCSP status; NVIDIA's verifiers start at the next one.
			if c, ok := statusOf(prefix+"device chain", path, 1, g.OCSP, now, p.RequireOCSP); ok {
				cs = append(cs, c)
			}
		}
		r := in.Report()
		if r == nil {
			continue
		}
		if p.Arch != "" && !strings.EqualFold(in.Arch, p.Arch) {
			cs = append(cs, check.Fail(CheckArch, "%sthe certificate names architecture %q; the policy requires %s", prefix, in.Arch, p.Arch))
		}
		if p.Mode != "" {
			switch m, ok := r.Mode(); {
			case !ok:
				cs = append(cs, check.Fail(CheckMode, "%sthe report states no mode (no FEATURE_FLAG in opaque data version 1 or later); the policy requires %s", prefix, p.Mode))
			case m != p.Mode:
				cs = append(cs, check.Fail(CheckMode, "%sthe GPU is in %s mode; the policy requires %s", prefix, m, p.Mode))
			default:
				cs = append(cs, check.Pass(CheckMode, "%s%s mode, stated by the signed report", prefix, m))
			}
		}
		if p.MinDriver != "" {
			if olderThan(r.DriverVersion(), p.MinDriver) {
				cs = append(cs, check.Fail(CheckVersion, "%sdriver %s is older than the policy's min-driver %s", prefix, r.DriverVersion(), p.MinDriver))
			} else {
				cs = append(cs, check.Pass(CheckVersion, "%sdriver %s (policy: at least %s)", prefix, r.DriverVersion(), p.MinDriver))
			}
		}
		var rims []*rim.RIM
		var bad error
		for _, raw := range g.RIMs {
			rr, path, err := rim.Verify(raw, v.RIMRoots, now)
			if err != nil {
				bad = err
				break
			}
			rims = append(rims, rr)
			if c, ok := statusOf(fmt.Sprintf("%sRIM %s", prefix, rr.TagID), path, 0, g.OCSP, now, p.RequireOCSP); ok {
				cs = append(cs, c)
			}
		}
		switch {
		case bad != nil:
			cs = append(cs, check.Fail(rim.CheckName, "%sa stapled RIM does not verify: %v", prefix, bad))
		case len(rims) > 0:
			c := rim.CheckMeasurements(r.BlockMap(), r.DriverVersion(), r.VBIOSVersion(), rims...)
			c.Reason = prefix + c.Reason
			cs = append(cs, c)
		case p.RequireRIMs:
			cs = append(cs, check.Fail(rim.CheckName, "%sno RIM stapled; the policy requires the GPU's measurements to equal NVIDIA's RIMs", prefix))
		}
	}
	return cs
}

// olderThan compares dotted version numbers ("550.144.03" < "550.163").
func olderThan(have, min string) bool {
	h, m := strings.Split(have, "."), strings.Split(min, ".")
	for i := range max(len(h), len(m)) {
		var a, b int
		if i < len(h) {
			a, _ = strconv.Atoi(h[i])
		}
		if i < len(m) {
			b, _ = strconv.Atoi(m[i])
		}
		if a != b {
			return a < b
		}
	}
	return false
}

// CheckRelease names the check of the GPUs against the release's gpus
// section.
const CheckRelease = "GPUs as released"

// CheckRelease holds the GPUs of b to what the release logged: count and
// architecture, driver and VBIOS versions, each golden measurement, and
// that the RIMs stapled for each GPU are ones the release names. Without
// a gpus section, GPUs in the evidence have no logged origin.
func (v *Verifier) CheckRelease(b *evidence.Bundle, rel *statement.Release) check.Check {
	g := rel.GPUs
	switch {
	case g == nil && len(b.GPUs) == 0:
		return check.Pass(CheckRelease, "no GPUs, as released")
	case g == nil:
		return check.Fail(CheckRelease, "the evidence carries %d GPUs, but the release names none: their driver, VBIOS and measurements have no logged origin", len(b.GPUs))
	case len(b.GPUs) != g.Count:
		return check.Fail(CheckRelease, "%d GPUs; the release names %d %s", len(b.GPUs), g.Count, g.Arch)
	}
	named := map[string]bool{}
	for _, d := range g.RIMs {
		named[d] = true
	}
	for i, ge := range b.GPUs {
		// The certified architecture (Verify checked the chain; if it did
		// not verify, the decision has failed already).
		arch := ""
		if chain, err := spdm.ParseChain([]byte(ge.CertChain)); err == nil {
			arch = spdm.CertifiedArch(chain[0])
		}
		if !strings.EqualFold(arch, g.Arch) {
			return check.Fail(CheckRelease, "GPU %d's certificate names %q; the release names %s", i, arch, g.Arch)
		}
		r, err := spdm.ParseReport(ge.Report)
		if err != nil {
			return check.Fail(CheckRelease, "GPU %d: %v", i, err)
		}
		if len(g.Drivers) > 0 && !slices.Contains(g.Drivers, r.DriverVersion()) {
			return check.Fail(CheckRelease, "GPU %d runs driver %s; the release accepts %v", i, r.DriverVersion(), g.Drivers)
		}
		if len(g.VBIOS) > 0 && !slices.Contains(g.VBIOS, r.VBIOSVersion()) {
			return check.Fail(CheckRelease, "GPU %d runs VBIOS %s; the release accepts %v", i, r.VBIOSVersion(), g.VBIOS)
		}
		blocks := r.BlockMap()
		for k, want := range g.Golden {
			idx, _ := strconv.Atoi(k)
			if hex.EncodeToString(blocks[idx]) != want {
				return check.Fail(CheckRelease, "GPU %d measurement block %s is not the released golden value %s…", i, k, want[:16])
			}
		}
		if len(g.RIMs) > 0 {
			if len(ge.RIMs) == 0 {
				return check.Fail(CheckRelease, "GPU %d: the release names its RIMs but none is stapled", i)
			}
			for _, raw := range ge.RIMs {
				h := sha256.Sum256(raw)
				if !named[hex.EncodeToString(h[:])] {
					return check.Fail(CheckRelease, "GPU %d: a stapled RIM (sha256 %x…) is not one the release names", i, h[:8])
				}
			}
		}
	}
	return check.Pass(CheckRelease, "%d %s GPUs run what release %s names (%d golden values, %d RIMs)", len(b.GPUs), g.Arch, rel.Version, len(g.Golden), len(g.RIMs))
}
