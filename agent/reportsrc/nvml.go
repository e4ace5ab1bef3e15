//go:build cgo && linux

package reportsrc

import (
	"context"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/attestlog/attestlog/policy/evidence"
)

// NVMLAvailable reports whether this build can read GPUs through NVML.
const NVMLAvailable = true

type nvmlGPUs struct{ lib nvml.Interface }

// OpenNVML loads libnvidia-ml (at run time, through go-nvml) and returns
// the GPUs' source. It fails when the library or the GPUs are missing.
func OpenNVML() (GPUSource, error) {
	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: loading libnvidia-ml and initialising: %v", ret)
	}
	s := NVML(lib)
	if _, err := s.GPUEvidence(context.Background(), make([]byte, 32)); err != nil {
		return nil, err
	}
	return s, nil
}

// NVML is the GPUs' source on an initialised NVML library (go-nvml's
// mock in tests): for each device, its confidential-computing
// attestation report (the SPDM GET_MEASUREMENTS exchange) for the nonce
// derived for it, and its attestation certificate chain.
func NVML(lib nvml.Interface) GPUSource { return &nvmlGPUs{lib: lib} }

func (s *nvmlGPUs) Name() string { return "NVML (libnvidia-ml, go-nvml)" }

func (s *nvmlGPUs) GPUEvidence(_ context.Context, seed []byte) ([]evidence.GPU, error) {
	n, ret := s.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: counting devices: %v", ret)
	}
	if n == 0 || n > evidence.MaxGPUs {
		return nil, fmt.Errorf("NVML: %d GPUs, want 1 to %d", n, evidence.MaxGPUs)
	}
	var out []evidence.GPU
	for i := range n {
		d, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d: %v", i, ret)
		}
		arch, ret := d.GetArchitecture()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d architecture: %v", i, ret)
		}
		rep := nvml.ConfComputeGpuAttestationReport{Nonce: evidence.GPUNonce(seed, i)}
		if ret := d.GetConfComputeGpuAttestationReport(&rep); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d attestation report: %v", i, ret)
		}
		if rep.AttestationReportSize == 0 || int(rep.AttestationReportSize) > len(rep.AttestationReport) {
			return nil, fmt.Errorf("NVML: GPU %d attestation report of %d bytes", i, rep.AttestationReportSize)
		}
		cert, ret := d.GetConfComputeGpuCertificate()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d certificate: %v", i, ret)
		}
		if cert.AttestationCertChainSize == 0 || int(cert.AttestationCertChainSize) > len(cert.AttestationCertChain) {
			return nil, fmt.Errorf("NVML: GPU %d attestation certificate chain of %d bytes", i, cert.AttestationCertChainSize)
		}
		chain, err := chainPEM(cert.AttestationCertChain[:cert.AttestationCertChainSize])
		if err != nil {
			return nil, fmt.Errorf("NVML: GPU %d: %w", i, err)
		}
		out = append(out, evidence.GPU{
			Arch:      archName(arch),
			Report:    append([]byte(nil), rep.AttestationReport[:rep.AttestationReportSize]...),
			CertChain: chain,
		})
	}
	return out, nil
}

// chainPEM returns the chain as PEM, leaf first: NVML gives PEM text, or
// DER certificates one after another.
func chainPEM(b []byte) (string, error) {
	if strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return strings.TrimRight(string(b), "\x00"), nil
	}
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 || b[0] != 0x30 || b[1] != 0x82 {
			return "", fmt.Errorf("attestation certificate chain is neither PEM nor DER certificates")
		}
		n := 4 + (int(b[2])<<8 | int(b[3]))
		if n > len(b) {
			return "", fmt.Errorf("attestation certificate chain: a certificate of %d bytes, %d remain", n, len(b))
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b[:n]})...)
		b = b[n:]
	}
	return string(out), nil
}

func archName(a nvml.DeviceArchitecture) string {
	switch a {
	case nvml.DEVICE_ARCH_HOPPER:
		return "HOPPER"
	case nvml.DEVICE_ARCH_BLACKWELL:
		return "BLACKWELL"
	case nvml.DEVICE_ARCH_AMPERE:
		return "AMPERE"
	}
	return fmt.Sprintf("ARCH_%d", a)
}
