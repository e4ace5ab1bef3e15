// Package gpu makes the GPU part of the trust decision: every GPU of an
// evidence bundle is verified (device chain, report signature, the nonce
// derived from the client's, measurements against its stapled NVIDIA
// driver and VBIOS RIMs) and the set is held to the policy's gpu line
// (count of distinct devices, architecture, minimum driver, RIMs
// required) and to the release's gpus section. The CPU evidence binds
// the GPUs through REPORT_DATA (evidence.Bundle.ExpectedReportData), so
// the GPUs verified here are the ones the enclave talks to.
package gpu

import (
	"bytes"
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
//
// The count is of distinct devices: the same GPU asked once per place
// answers every derived nonce, so evidence naming one device twice fails
// the count check. Stapled RIMs are chosen by whoever staples them (they
// are not in REPORT_DATA), so when a GPU carries any, they must be exactly
// its driver RIM and its board's VBIOS RIM, and they must cover every
// measured block (rim.MatchGPU); with rims=required a GPU without them
// fails.
func (v *Verifier) Verify(b *evidence.Bundle, nonce []byte) check.List {
	p := v.Policy
	if !p.Required && len(b.GPUs) == 0 {
		return nil
	}
	cs := check.List{{}}        // the count check, decided once the devices are known
	devices := map[string]int{} // device → 1 + the first GPU that is it
	var dup string
	now := v.Now()
	for i, g := range b.GPUs {
		n := b.GPUNonce(nonce, i)
		in := spdm.Inspect(spdm.GPUEvidence{Arch: g.Arch, Report: g.Report, Certificate: []byte(g.CertChain)}, v.DeviceCAs, now, n[:])
		prefix := fmt.Sprintf("GPU %d: ", i)
		for _, c := range in.Checks {
			c.Reason = prefix + c.Reason
			cs = append(cs, c)
		}
		path := in.Path()
		if path != nil {
			if id := deviceOf(path); devices[id] == 0 {
				devices[id] = i + 1
			} else if dup == "" {
				dup = fmt.Sprintf("GPU %d is the same device as GPU %d (device certificate %s)", i, devices[id]-1, deviceCert(path).Subject.CommonName)
			}
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
			rr, signing, err := rim.Verify(raw, v.RIMRoots, now)
			if err != nil {
				bad = err
				break
			}
			rims = append(rims, rr)
			if c, ok := statusOf(fmt.Sprintf("%sRIM %s", prefix, rr.TagID), signing, 0, g.OCSP, now, p.RequireOCSP); ok {
				cs = append(cs, c)
			}
		}
		switch {
		case bad != nil:
			cs = append(cs, check.Fail(rim.CheckName, "%sa stapled RIM does not verify: %v", prefix, bad))
		case len(rims) > 0:
			chip := ""
			if path != nil {
				chip = spdm.CertifiedChip(path[0])
			}
			c := rim.CheckMeasurements(rim.GPUOf(r, chip), rims...)
			c.Reason = prefix + c.Reason
			cs = append(cs, c)
		case p.RequireRIMs:
			cs = append(cs, check.Fail(rim.CheckName, "%sno RIM stapled; the policy requires the GPU's measurements to equal NVIDIA's RIMs: staple its driver RIM and its board's VBIOS RIM", prefix))
		}
	}
	switch {
	case !p.Required:
		cs[0] = check.Fail(CheckCount, "the evidence carries %d GPUs and the policy has no gpu line: add 'gpu nvidia count=%d …' to trust them", len(b.GPUs), len(b.GPUs))
	case dup != "":
		cs[0] = check.Fail(CheckCount, "%s: the policy requires %d distinct GPUs, and one GPU answers every nonce asked of it", dup, p.Count)
	case len(b.GPUs) != p.Count:
		cs[0] = check.Fail(CheckCount, "the evidence carries %d GPUs; the policy requires %d", len(b.GPUs), p.Count)
	default:
		cs[0] = check.Pass(CheckCount, "%d GPU(s), each a distinct device, as the policy requires", len(b.GPUs))
	}
	return cs
}

// deviceCert is the certificate of the device a GPU's chain (leaf first)
// certifies: the one that issued the leaf — the device certificate NVIDIA
// provisions for each GPU (its BROM certificate), whose key the GPU keeps
// from manufacture, while the leaf is made at every boot — or the leaf
// itself when a root issued it. Verify passes the verified path, whose
// second certificate is that issuer; CheckRelease the chain as presented.
func deviceCert(chain []*x509.Certificate) *x509.Certificate {
	leaf := chain[0]
	for _, c := range chain[1:] {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) {
			if !bytes.Equal(c.RawSubject, c.RawIssuer) {
				return c
			}
			break
		}
	}
	return leaf
}

// deviceOf names a GPU's device: the SHA-256 of deviceCert's public key.
// Two GPUs with one name are one device.
func deviceOf(chain []*x509.Certificate) string {
	h := sha256.Sum256(deviceCert(chain).RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
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

// CheckRelease holds the GPUs of b to what the release logged: count
// (of distinct devices) and architecture, driver and VBIOS versions, each
// golden measurement, and the release's RIMs: every RIM stapled is one
// the release names, and every RIM the release names is stapled (Verify
// holds each GPU's stapled RIMs to be exactly its driver and VBIOS RIMs,
// every one compared, so a named RIM stapled is a named RIM used). Without
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
	stapled := map[string]bool{}
	devices := map[string]int{}
	for i, ge := range b.GPUs {
		// The certified architecture and device (Verify checked the
		// chain; if it did not verify, the decision has failed already).
		chain, err := spdm.ParseChain([]byte(ge.CertChain))
		if err != nil {
			return check.Fail(CheckRelease, "GPU %d: %v", i, err)
		}
		if arch := spdm.CertifiedArch(chain[0]); !strings.EqualFold(arch, g.Arch) {
			return check.Fail(CheckRelease, "GPU %d's certificate names %q; the release names %s", i, arch, g.Arch)
		}
		if j, seen := devices[deviceOf(chain)]; seen {
			return check.Fail(CheckRelease, "GPU %d is the same device as GPU %d: the release names %d distinct %s GPUs", i, j, g.Count, g.Arch)
		}
		devices[deviceOf(chain)] = i
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
				stapled[hex.EncodeToString(h[:])] = true
			}
		}
	}
	for _, d := range g.RIMs {
		if !stapled[d] {
			return check.Fail(CheckRelease, "the release names RIM sha256 %.16s…, which no GPU staples: every RIM the release names must be stapled with the GPU whose driver or VBIOS it is", d)
		}
	}
	return check.Pass(CheckRelease, "%d %s GPUs run what release %s names (%d golden values, %d RIMs)", len(b.GPUs), g.Arch, rel.Version, len(g.Golden), len(g.RIMs))
}
