//go:build cgo && linux

package reportsrc

import (
	"crypto/rand"
	"encoding/pem"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// TestNVML runs the NVML source on go-nvml's mock of the library (no GPU
// here): each device answers with a demo GPU's SPDM report for the nonce
// derived for it, and its chain as NVML gives it (DER certificates one
// after another), which the source turns into PEM.
func TestNVML(t *testing.T) {
	m := make([]byte, 48)
	e, err := enclave.NewSNP(m, enclave.WithGPUs(2))
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	want, err := e.GPUEvidence(t.Context(), seed)
	if err != nil {
		t.Fatal(err)
	}
	device := func(i int) nvml.Device {
		return &mock.Device{
			GetArchitectureFunc: func() (nvml.DeviceArchitecture, nvml.Return) { return nvml.DEVICE_ARCH_HOPPER, nvml.SUCCESS },
			GetConfComputeGpuAttestationReportFunc: func(r *nvml.ConfComputeGpuAttestationReport) nvml.Return {
				if r.Nonce != evidence.GPUNonce(seed, i) {
					t.Errorf("GPU %d asked for nonce %x, want GPUNonce(seed, %d)", i, r.Nonce, i)
					return nvml.ERROR_INVALID_ARGUMENT
				}
				r.AttestationReportSize = uint32(copy(r.AttestationReport[:], want[i].Report))
				return nvml.SUCCESS
			},
			GetConfComputeGpuCertificateFunc: func() (nvml.ConfComputeGpuCertificate, nvml.Return) {
				var c nvml.ConfComputeGpuCertificate
				rest := []byte(want[i].CertChain)
				var der []byte
				for {
					var b *pem.Block
					if b, rest = pem.Decode(rest); b == nil {
						break
					}
					der = append(der, b.Bytes...)
				}
				c.AttestationCertChainSize = uint32(copy(c.AttestationCertChain[:], der))
				return c, nvml.SUCCESS
			},
		}
	}
	lib := &mock.Interface{
		DeviceGetCountFunc:         func() (int, nvml.Return) { return 2, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) { return device(i), nvml.SUCCESS },
	}
	got, err := NVML(lib).GPUEvidence(t.Context(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d GPUs, want 2", len(got))
	}
	for i := range got {
		if got[i].Arch != "HOPPER" || string(got[i].Report) != string(want[i].Report) || got[i].CertChain != want[i].CertChain {
			t.Errorf("GPU %d = %s, %d-byte report, chain equal %v", i, got[i].Arch, len(got[i].Report), got[i].CertChain == want[i].CertChain)
		}
	}
	// No device: refused (an agent configured for GPUs does not start
	// without them).
	lib.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	if _, err := NVML(lib).GPUEvidence(t.Context(), seed); err == nil {
		t.Error("no GPU gave no error")
	}
}
