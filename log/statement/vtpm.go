package statement

import (
	"slices"
	"strconv"
)

// Platforms of confidential VMs whose guest a vTPM measures behind a
// paravisor (Azure's SEV-SNP and TDX confidential VMs). Their releases
// name the paravisor's launch measurement (snp.launch_digest or
// tdx.mrtd, the same for every VM on that paravisor build) and, in vtpm,
// the PCR values the guest's own boot leaves in the vTPM.
const (
	PlatformAzureSNP = "azure-sev-snp"
	PlatformAzureTDX = "azure-tdx"
)

// HardwarePlatform is the hardware platform under platform: sev-snp for
// sev-snp and azure-sev-snp, tdx for tdx and azure-tdx ("" for others).
func HardwarePlatform(platform string) string {
	switch platform {
	case PlatformSNP, PlatformAzureSNP:
		return PlatformSNP
	case PlatformTDX, PlatformAzureTDX:
		return PlatformTDX
	}
	return ""
}

// VTPMMeasurements are the vTPM PCR values a release fixes: SHA-256 bank
// values (64 lowercase hex characters) by PCR index, "0" to "23". An
// enclave runs the release only when each PCR named here has exactly this
// value in its quote; PCRs not named are not compared.
type VTPMMeasurements struct {
	PCRs map[string]string `json:"pcrs" yaml:"pcrs"`
}

// Indices returns the PCR indices named, ascending (those that parse).
func (v *VTPMMeasurements) Indices() []int {
	var out []int
	for k := range v.PCRs {
		if i, err := strconv.Atoi(k); err == nil {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

func (v *VTPMMeasurements) validate(f string) error {
	if v == nil || len(v.PCRs) == 0 {
		return fieldErr(f+".pcrs", "name at least one PCR value: without one the release would accept any guest on the paravisor")
	}
	for k, val := range v.PCRs {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 || n > 23 || strconv.Itoa(n) != k {
			return fieldErr(f+".pcrs", "key %q is not a PCR index 0-23", short(k))
		}
		if err := checkHex(f+".pcrs."+k, val, 32); err != nil {
			return err
		}
	}
	return nil
}
