package enclave

import (
	"crypto/sha256"
	"fmt"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// NewTurin returns a demo SEV-SNP enclave that plays an AMD Turin host:
// CPUID family 1Ah, a VCEK of KDS struct version 1 as AMD issues Turin's
// (productName "Turin", fmcSPL, no spl4, an 8-byte hwID) under a test
// ARK-Turin → SEV-Turin chain, the report's TCB fields in Turin's layout
// (byte 0 FMC, 1 bootloader, 2 TEE, 3 SNP, 7 microcode) and its CHIP_ID
// the hwID followed by zeros. The default TCB is fmc=1 bootloader=2 tee=3
// snp=4 microcode=5: every component distinct, so that reading it with
// Milan's layout gives other numbers.
func NewTurin(measurement []byte, opts ...Option) (*Enclave, error) {
	all := append([]Option{WithSNPProductLine("Turin"), WithSNPTCB(SNPTCB{FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 5})}, opts...)
	return NewSNP(measurement, all...)
}

// WithSNPChipID sets the report's CHIP_ID apart from the chip the VCEK
// certifies (64 bytes; for tests of their comparison).
func WithSNPChipID(id []byte) Option { return func(o *options) { o.chipIDOverride = id } }

// snpTCBValue composes t in line's TCB_VERSION layout.
func snpTCBValue(line string, t SNPTCB) (uint64, error) {
	if line == "Turin" {
		return uint64(t.FMC) | uint64(t.Bootloader)<<8 | uint64(t.TEE)<<16 | uint64(t.SNP)<<24 | uint64(t.Microcode)<<56, nil
	}
	if t.FMC != 0 {
		return 0, fmt.Errorf("enclave: %s has no FMC TCB component", line)
	}
	v, err := kds.ComposeTCBParts(kds.TCBParts{BlSpl: t.Bootloader, TeeSpl: t.TEE, SnpSpl: t.SNP, UcodeSpl: t.Microcode})
	if err != nil {
		return 0, fmt.Errorf("enclave: %v", err)
	}
	return uint64(v), nil
}

// snpEKSpec sets o.chipID and returns what the VCEK or VLEK certifies.
func snpEKSpec(o *options, product *spb.SevProduct) (ekSpec, error) {
	chip := sha256.Sum256([]byte("attestlog fake chip " + o.productLine))
	e := ekSpec{productName: kds.ProductName(product), signer: o.signer, cspID: o.cspID, tcb: o.tcb}
	if o.signer == sevabi.VlekReportSigner {
		e.productName = o.productLine // VLEKs name the line, no stepping
	}
	if o.productLine == "Turin" {
		e.structVersion, e.productName = 1, "Turin"
		e.hwid = chip[:8]
		o.chipID = append(append([]byte(nil), e.hwid...), make([]byte, 56)...)
	} else {
		e.hwid = append(append([]byte(nil), chip[:]...), chip[:]...)
		o.chipID = e.hwid
	}
	if o.signer == sevabi.VlekReportSigner {
		e.hwid = nil
		o.chipID = make([]byte, 64) // a VLEK names no chip: hosts mask CHIP_ID
	}
	if o.chipIDOverride != nil {
		if len(o.chipIDOverride) != 64 {
			return ekSpec{}, fmt.Errorf("enclave: CHIP_ID is %d bytes, want 64", len(o.chipIDOverride))
		}
		o.chipID = o.chipIDOverride
	}
	return e, nil
}
