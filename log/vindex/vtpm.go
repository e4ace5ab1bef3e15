package vindex

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/attestlog/attestlog/log/statement"
)

// KeyVTPMPCR is the key type of vTPM PCR i's SHA-256 value
// ("vtpm/pcr4"): the releases of vTPM-measured confidential VMs whose
// guest leaves that value in PCR i.
func KeyVTPMPCR(i int) KeyType { return keyVTPMPCRs[i] }

var keyVTPMPCRs = func() (out [24]KeyType) {
	for i := range out {
		out[i] = KeyType(fmt.Sprintf("vtpm/pcr%d", i))
	}
	return out
}()

// PCR returns the PCR index of a vTPM PCR key type.
func (t KeyType) PCR() (int, bool) {
	s, ok := strings.CutPrefix(string(t), "vtpm/pcr")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > 23 || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

// azureIdentity is the identity of a release of a vTPM-measured
// confidential VM: what its hardware platform's identity would be (the
// paravisor's launch measurement, shared by every VM on that paravisor
// build), then which PCRs it names and their values:
//
//	azure-sev-snp: "azure-sev-snp" || 0x00 || launch digest (48 bytes)
//	               || PCR selection || PCR digest
//	azure-tdx:     "azure-tdx" || 0x00 || the registers as in a tdx
//	               identity (6 × 0x00, or 0x01 || 48 bytes) || PCR selection
//	               || PCR digest
//
// The PCR selection is 3 bytes, bit j of byte i set when the release names
// PCR 8i+j (TPM's pcrSelect layout); the PCR digest is SHA-256 of the
// named PCRs' values, in ascending index order (TPM2_Quote's pcrDigest
// over them). Revoking it revokes this guest on this paravisor, not every
// guest on the paravisor; a release naming fewer PCRs has another
// identity, and accepts more guests: revoke it on its own. Nil when a
// value does not decode.
func azureIdentity(rel *statement.Release) []byte {
	hw := *rel
	hw.Platform = statement.HardwarePlatform(rel.Platform)
	inner := Identity(&hw)
	v := rel.Measurements.VTPM
	if inner == nil || v == nil || len(v.PCRs) == 0 {
		return nil
	}
	sel, ok := VTPMSelection(v)
	if !ok {
		return nil
	}
	pcrs := map[int][]byte{}
	for _, i := range v.Indices() {
		d, err := hex.DecodeString(v.PCRs[strconv.Itoa(i)])
		if err != nil {
			return nil
		}
		pcrs[i] = d
	}
	return VTPMIdentity(rel.Platform, inner, sel, pcrs)
}

// VTPMSelection is the PCR selection of a release's vtpm measurements (3
// bytes, bit j of byte i for PCR 8i+j), false when it names no PCR or one
// outside 0-23.
func VTPMSelection(v *statement.VTPMMeasurements) ([3]byte, bool) {
	var sel [3]byte
	if v == nil || len(v.PCRs) == 0 || len(v.Indices()) != len(v.PCRs) {
		return sel, false
	}
	for _, i := range v.Indices() {
		if i < 0 || i > 23 {
			return sel, false
		}
		sel[i/8] |= 1 << (i % 8)
	}
	return sel, true
}

// VTPMIdentity is the identity (see azureIdentity) of a release of
// platform (azure-sev-snp or azure-tdx) whose hardware identity is hw (an
// sev-snp or tdx identity as Identity or TDXIdentities give it, platform
// name included) and which names the PCRs of sel with the values pcrs (by
// index, 32 bytes each). A verifier that holds a VM's quoted PCRs computes
// the identity of each release on them this way, one per selection
// releases name. Nil when hw is not an identity of platform's hardware or
// a selected PCR has no 32-byte value.
func VTPMIdentity(platform string, hw []byte, sel [3]byte, pcrs map[int][]byte) []byte {
	prefix := statement.HardwarePlatform(platform) + "\x00"
	if platform != statement.PlatformAzureSNP && platform != statement.PlatformAzureTDX || len(hw) <= len(prefix) || string(hw[:len(prefix)]) != prefix {
		return nil
	}
	out := append([]byte(platform+"\x00"), hw[len(prefix):]...)
	out = append(out, sel[:]...)
	h := sha256.New()
	for i := range 24 {
		if sel[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		if len(pcrs[i]) != 32 {
			return nil
		}
		h.Write(pcrs[i])
	}
	return h.Sum(out)
}
