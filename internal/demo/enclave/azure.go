package enclave

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/google/go-tpm/legacy/tpm2"

	"github.com/attestlog/attestlog/policy/evidence"
)

// An Azure confidential VM, played in software: Microsoft's paravisor
// (its launch digest is the SEV-SNP MEASUREMENT or the TDX MRTD) writes
// an HCL report whose REPORT_DATA is SHA-256 of its runtime claims, and
// a vTPM (an RSA-2048 attestation key made in this process, 24 SHA-256
// PCRs, a TCG event log) measures the guest's boot and signs TPM2_Quotes.
// The hardware report is signed under the enclave's demo roots, as NewSNP
// and NewTDX sign theirs; the layouts are those policy/vtpm reads (the
// same as the evidence recorded on Azure in policy/vtpm/testdata).

// BootEvent is one measurement of a demo guest's boot: Data is extended
// into PCR as its SHA-256, with TCG event type Type.
type BootEvent struct {
	PCR  int
	Type uint32
	Data []byte
}

// evIPL is the TCG event type EV_IPL.
const evIPL = 0x0d

// DemoBootEvents are what a demo guest measures unless WithBootEvents
// says otherwise: stand-ins for a boot loader (PCR 4), a kernel command
// line (PCR 9) and a unified kernel image (PCR 11).
var DemoBootEvents = []BootEvent{
	{4, evIPL, []byte("attestlog demo boot loader")},
	{9, evIPL, []byte("attestlog demo kernel command line")},
	{11, evIPL, []byte("attestlog demo unified kernel image")},
}

// WithBootEvents sets the events a demo Azure guest's vTPM measured.
func WithBootEvents(events ...BootEvent) Option {
	return func(o *options) { o.bootEvents = append([]BootEvent(nil), events...) }
}

// softVTPM is the demo vTPM.
type softVTPM struct {
	ak       *rsa.PrivateKey
	pcrs     [24][]byte
	eventLog []byte
	mu       sync.Mutex
	clock    uint64
}

// NewAzureSNP returns a fake Azure SEV-SNP confidential VM whose SNP
// report carries paravisor (48 bytes) as MEASUREMENT and whose vTPM
// measured the boot events.
func NewAzureSNP(paravisor []byte, opts ...Option) (*Enclave, error) {
	e, err := NewSNP(paravisor, opts...)
	if err != nil {
		return nil, err
	}
	return e, e.makeAzure(evidence.AzureSEVSNP)
}

// NewAzureTDX returns a fake Azure TDX confidential VM whose TD quote
// carries paravisor (48 bytes) as MRTD and whose vTPM measured the boot
// events.
func NewAzureTDX(paravisor []byte, opts ...Option) (*Enclave, error) {
	e, err := NewTDX(paravisor, opts...)
	if err != nil {
		return nil, err
	}
	return e, e.makeAzure(evidence.AzureTDX)
}

func (e *Enclave) makeAzure(platform string) error {
	ak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	v := &softVTPM{ak: ak}
	for i := range v.pcrs {
		v.pcrs[i] = make([]byte, 32)
	}
	events := e.o.bootEvents
	if events == nil {
		events = DemoBootEvents
	}
	v.eventLog = specIDEvent()
	for _, ev := range events {
		if ev.PCR < 0 || ev.PCR > 23 {
			return fmt.Errorf("enclave: boot event for PCR %d", ev.PCR)
		}
		d := sha256.Sum256(ev.Data)
		ext := sha256.Sum256(append(v.pcrs[ev.PCR], d[:]...))
		v.pcrs[ev.PCR] = ext[:]
		v.eventLog = append(v.eventLog, pcrEvent2(ev, d)...)
	}
	e.platform, e.vtpm = platform, v
	return nil
}

// specIDEvent is the first event of a crypto-agile TCG event log
// (TCG PC Client Platform Firmware Profile, TCG_EfiSpecIDEvent in the
// SHA-1 event format), declaring one bank: SHA-256.
func specIDEvent() []byte {
	le := binary.LittleEndian
	var spec []byte
	spec = append(spec, "Spec ID Event03\x00"...)
	spec = le.AppendUint32(spec, 0)        // platformClass
	spec = append(spec, 0, 2, 0, 2)        // specVersionMinor, Major, errata, uintnSize
	spec = le.AppendUint32(spec, 1)        // numberOfAlgorithms
	spec = le.AppendUint16(spec, 0x000b)   // TPM_ALG_SHA256
	spec = le.AppendUint16(spec, 32)       // its digest size
	spec = append(spec, 0)                 // vendorInfoSize
	out := le.AppendUint32(nil, 0)         // PCR 0
	out = le.AppendUint32(out, 3)          // EV_NO_ACTION
	out = append(out, make([]byte, 20)...) // SHA-1 digest, zero
	out = le.AppendUint32(out, uint32(len(spec)))
	return append(out, spec...)
}

// pcrEvent2 is a TCG_PCR_EVENT2 with one SHA-256 digest.
func pcrEvent2(ev BootEvent, d [32]byte) []byte {
	le := binary.LittleEndian
	out := le.AppendUint32(nil, uint32(ev.PCR))
	out = le.AppendUint32(out, ev.Type)
	out = le.AppendUint32(out, 1)
	out = le.AppendUint16(out, 0x000b)
	out = append(out, d[:]...)
	out = le.AppendUint32(out, uint32(len(ev.Data)))
	return append(out, ev.Data...)
}

// PCRs returns the demo vTPM's SHA-256 PCR values by index, as hex (what
// a release's measurements.vtpm.pcrs names), or nil for an enclave
// without a vTPM.
func (e *Enclave) PCRs() map[int]string {
	if e.vtpm == nil {
		return nil
	}
	out := map[int]string{}
	for i, v := range e.vtpm.pcrs {
		out[i] = hex.EncodeToString(v)
	}
	return out
}

// AttestationKey is the demo vTPM's attestation key (HCLAkPub), or nil.
func (e *Enclave) AttestationKey() *rsa.PublicKey {
	if e.vtpm == nil {
		return nil
	}
	return &e.vtpm.ak.PublicKey
}

// AzureEvidence returns the evidence of an Azure demo VM whose guest
// wrote userData to NV index 0x01400002 (it appears in the runtime
// claims) and whose vTPM quoted its PCRs with extraData nonce. Evidence
// passes nonce and the bundle's expected REPORT_DATA; tests pass others.
func (e *Enclave) AzureEvidence(nonce []byte, userData [64]byte) (*evidence.Bundle, error) {
	if e.vtpm == nil {
		return nil, fmt.Errorf("enclave: a %s enclave has no vTPM", e.platform)
	}
	claims, err := runtimeClaims(&e.vtpm.ak.PublicKey, userData)
	if err != nil {
		return nil, err
	}
	var rd [64]byte
	d := sha256.Sum256(claims)
	copy(rd[:], d[:])
	e.mu.Lock()
	proof, indexProof, coll := e.proof, e.indexProof, e.staples.collateral
	e.mu.Unlock()
	b := &evidence.Bundle{Format: evidence.Format, Platform: e.platform, ChannelKey: e.o.channelKey, Proof: proof, IndexProof: indexProof, TDXCollateral: coll}
	var hw []byte
	switch e.platform {
	case evidence.AzureSEVSNP:
		if hw, err = e.snpReport(rd); err != nil {
			return nil, err
		}
		b.VCEK = e.snp.vcek.Raw // as Azure's THIM serves it
	case evidence.AzureTDX:
		if b.Quote, err = e.tdxQuote(rd); err != nil {
			return nil, err
		}
		// The TDREPORT the quote was made from.
		hw = e.tdReport(rd)
	}
	quote, sig, err := e.vtpm.quote(nonce)
	if err != nil {
		return nil, err
	}
	b.VTPM = &evidence.VTPM{Version: evidence.VTPMVersion, HCLReport: padded(hclReport(e.platform, hw, claims), azureHCLIndexSize),
		Quote: quote, Signature: sig, PCRs: e.vtpm.pcrs[:], EventLog: e.vtpm.eventLog}
	return b, nil
}

// azureHCLIndexSize is the size of Azure's NV index 0x01400001.
const azureHCLIndexSize = 2600

// padded zero-pads b to n bytes.
func padded(b []byte, n int) []byte {
	if len(b) < n {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

// AzureHCLReport returns the HCL report the paravisor of this Azure demo
// VM writes to vTPM NV index 0x01400001 once the guest wrote userData to
// 0x01400002: its runtime claims carry ak (the vTPM's attestation key,
// HCLAkPub) and userData, and its hardware report (an SEV-SNP report
// signed under the enclave's demo roots, or a TDREPORT that AzureTDQuote
// turns into a quote) has REPORT_DATA SHA-256 of those claims. It is not
// padded (Azure's index pads it to 2600 bytes). A test that plays the
// paravisor in front of a real (software) TPM uses it, with the TPM's own
// attestation key.
func (e *Enclave) AzureHCLReport(ak *rsa.PublicKey, userData [64]byte) ([]byte, error) {
	if e.vtpm == nil {
		return nil, fmt.Errorf("enclave: a %s enclave has no vTPM", e.platform)
	}
	claims, err := runtimeClaims(ak, userData)
	if err != nil {
		return nil, err
	}
	var rd [64]byte
	d := sha256.Sum256(claims)
	copy(rd[:], d[:])
	var hw []byte
	if e.platform == evidence.AzureSEVSNP {
		if hw, err = e.snpReport(rd); err != nil {
			return nil, err
		}
	} else {
		hw = e.tdReport(rd)
	}
	return hclReport(e.platform, hw, claims), nil
}

// tdReport is the TDREPORT an Azure TDX demo VM's paravisor gets: TDX
// type, REPORTDATA, MRTD (only the quote authenticates it).
func (e *Enclave) tdReport(rd [64]byte) []byte {
	hw := make([]byte, 1024)
	hw[0] = 0x81
	copy(hw[128:], rd[:])
	copy(hw[528:], e.o.measurement)
	return hw
}

// AzureTDQuote plays Azure's quoting service (the IMDS endpoint
// /acc/tdquote) for an Azure TDX demo VM: the TD quote, signed under the
// enclave's demo roots, of a TDREPORT from AzureHCLReport (its
// REPORTDATA). It refuses a TDREPORT that is not this TD's.
func (e *Enclave) AzureTDQuote(tdReport []byte) ([]byte, error) {
	if e.platform != evidence.AzureTDX {
		return nil, fmt.Errorf("enclave: a %s enclave has no TD quote", e.platform)
	}
	if len(tdReport) != 1024 || tdReport[0] != 0x81 || !bytes.Equal(tdReport[528:576], e.o.measurement) {
		return nil, fmt.Errorf("enclave: not a TDREPORT of this TD")
	}
	return e.tdxQuote([64]byte(tdReport[128:192]))
}

// BootEventLog is the crypto-agile TCG event log (SHA-256 bank) of
// events, as Linux exposes it at
// /sys/kernel/security/tpm0/binary_bios_measurements: what a test that
// extends a real (software) TPM's PCRs with events writes beside it.
func BootEventLog(events ...BootEvent) []byte {
	out := specIDEvent()
	for _, ev := range events {
		out = append(out, pcrEvent2(ev, sha256.Sum256(ev.Data))...)
	}
	return out
}

// hclReport lays out an HCL report (version 2), unpadded.
func hclReport(platform string, hw, claims []byte) []byte {
	le := binary.LittleEndian
	typ := uint32(2)
	if platform == evidence.AzureTDX {
		typ = 4
	}
	out := append([]byte("HCLA"), le.AppendUint32(nil, 2)...)
	out = le.AppendUint32(out, uint32(1236+len(claims)))
	out = le.AppendUint32(out, 2) // request type
	out = le.AppendUint32(out, 0) // status
	out = append(out, make([]byte, 12)...)
	out = append(out, hw...)
	out = append(out, make([]byte, 1216-len(out))...)
	out = le.AppendUint32(out, uint32(20+len(claims)))
	out = le.AppendUint32(out, 1)
	out = le.AppendUint32(out, typ)
	out = le.AppendUint32(out, 1) // SHA-256
	out = le.AppendUint32(out, uint32(len(claims)))
	return append(out, claims...)
}

func runtimeClaims(ak *rsa.PublicKey, userData [64]byte) ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	type key struct {
		Kid    string   `json:"kid"`
		KeyOps []string `json:"key_ops"`
		Kty    string   `json:"kty"`
		E      string   `json:"e"`
		N      string   `json:"n"`
	}
	type vmConfig struct {
		ConsoleEnabled bool   `json:"console-enabled"`
		SecureBoot     bool   `json:"secure-boot"`
		TPMEnabled     bool   `json:"tpm-enabled"`
		VMUniqueID     string `json:"vmUniqueId"`
	}
	id := sha256.Sum256(ak.N.Bytes())
	return json.Marshal(struct {
		Keys     []key    `json:"keys"`
		VM       vmConfig `json:"vm-configuration"`
		UserData string   `json:"user-data"`
	}{
		Keys: []key{{Kid: "HCLAkPub", KeyOps: []string{"sign"}, Kty: "RSA", E: b64(big.NewInt(int64(ak.E)).Bytes()), N: b64(ak.N.Bytes())}},
		VM:   vmConfig{SecureBoot: true, TPMEnabled: true, VMUniqueID: strings.ToUpper(hex.EncodeToString(id[:16]))},
		// Azure writes the user data in upper-case hex.
		UserData: strings.ToUpper(hex.EncodeToString(userData[:])),
	})
}

// quote makes a TPM2_Quote of all 24 SHA-256 PCRs with extraData nonce,
// signed RSASSA-PKCS1-v1_5 SHA-256 by the attestation key (go-tpm
// encodes the TPMS_ATTEST and TPMT_SIGNATURE).
func (v *softVTPM) quote(nonce []byte) ([]byte, []byte, error) {
	v.mu.Lock()
	v.clock += 1000
	clock := v.clock
	v.mu.Unlock()
	pub, err := tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: tpm2.FlagSignerDefault,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}, KeyBits: 2048, ModulusRaw: v.ak.N.Bytes()}}.Encode()
	if err != nil {
		return nil, nil, err
	}
	name := sha256.Sum256(pub)
	h := sha256.New()
	var sel []int
	for i, p := range v.pcrs {
		h.Write(p)
		sel = append(sel, i)
	}
	ad := tpm2.AttestationData{
		Magic: 0xff544347, Type: tpm2.TagAttestQuote,
		QualifiedSigner: tpm2.Name{Digest: &tpm2.HashValue{Alg: tpm2.AlgSHA256, Value: name[:]}},
		ExtraData:       bytes.Clone(nonce),
		ClockInfo:       tpm2.ClockInfo{Clock: clock, ResetCount: 1, RestartCount: 0, Safe: 1},
		FirmwareVersion: 0x2020031200120003,
		AttestedQuoteInfo: &tpm2.QuoteInfo{PCRSelection: tpm2.PCRSelection{Hash: tpm2.AlgSHA256, PCRs: sel},
			PCRDigest: h.Sum(nil)},
	}
	attest, err := ad.Encode()
	if err != nil {
		return nil, nil, err
	}
	d := sha256.Sum256(attest)
	s, err := rsa.SignPKCS1v15(nil, v.ak, crypto.SHA256, d[:])
	if err != nil {
		return nil, nil, err
	}
	sig, err := tpm2.Signature{Alg: tpm2.AlgRSASSA, RSA: &tpm2.SignatureRSA{HashAlg: tpm2.AlgSHA256, Signature: s}}.Encode()
	return attest, sig, err
}
