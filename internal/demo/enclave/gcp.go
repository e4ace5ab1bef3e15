package enclave

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"math/big"

	epb "github.com/google/gce-tcb-verifier/proto/endorsement"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Google Cloud: raw SEV-SNP or TDX evidence whose MEASUREMENT or MRTD is
// Google's firmware, endorsed by a signed VMLaunchEndorsement
// (github.com/google/gce-tcb-verifier), and, on TDX, a CC event log
// behind the RTMRs. Here the endorsement is signed under a test root
// ("GCE-cc-tcb-root", organization "attestlog TEST ONLY - not Google")
// that a verifier trusts only with a 'trust-root gce-tcb FILE' line naming
// EndorsementRootPEM.

// GCPWorkload is what the demo TD's boot measures into RTMR1 and RTMR2:
// the kernel (an EV_EFI_BOOT_SERVICES_APPLICATION) and its command line
// (an EV_IPL), as a Container-Optimized OS boot logs them.
type GCPWorkload struct {
	Kernel  []byte
	Cmdline string
}

// NewGCPTDX returns a fake Google Cloud TDX VM: quotes v4 (as Google's
// are) whose RTMR0-2 are the replay of the CC event log it staples, and a
// firmware endorsement of mrtd, both stapled to its evidence.
func NewGCPTDX(mrtd []byte, w GCPWorkload, opts ...Option) (*Enclave, error) {
	events := []ccEvent{
		{mr: 1, typ: 0x80000008, data: []byte("demo TD HOB")},        // EV_EFI_PLATFORM_FIRMWARE_BLOB2 into RTMR0
		{mr: 1, typ: 0x00000004, data: []byte{0, 0, 0, 0}},           // EV_SEPARATOR
		{mr: 2, typ: 0x80000003, digestOf: w.Kernel},                 // EV_EFI_BOOT_SERVICES_APPLICATION into RTMR1
		{mr: 3, typ: 0x0000000d, data: append([]byte(w.Cmdline), 0)}, // EV_IPL into RTMR2
	}
	log, rtmrs := ccEventLog(events)
	for i, r := range rtmrs {
		opts = append(opts, WithRTMR(i, r[:]))
	}
	e, err := NewTDX(mrtd, opts...)
	if err != nil {
		return nil, err
	}
	e.staples.eventLog = log
	return e, e.endorse(func(g *epb.VMGoldenMeasurement) {
		g.Tdx = &epb.VMTdx{Svn: 2, Measurements: []*epb.VMTdx_Measurement{{RamGib: 8, Mrtd: mrtd}}}
	})
}

// NewGCPSNP returns a fake Google Cloud SEV-SNP VM whose evidence staples
// a firmware endorsement of measurement (as the launch measurement for 4
// vCPUs).
func NewGCPSNP(measurement []byte, opts ...Option) (*Enclave, error) {
	e, err := NewSNP(measurement, opts...)
	if err != nil {
		return nil, err
	}
	return e, e.endorse(func(g *epb.VMGoldenMeasurement) {
		g.SevSnp = &epb.VMSevSnp{Svn: 2, Measurements: map[uint32][]byte{4: measurement}, Policy: e.o.guestPolicy}
	})
}

// endorse signs a golden measurement under a new endorsement root and
// staples it.
func (e *Enclave) endorse(set func(*epb.VMGoldenMeasurement)) error {
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"attestlog TEST ONLY - not Google"}}
	}
	nb := e.o.created
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name("GCE-cc-tcb-root"), NotBefore: nb, NotAfter: nb.AddDate(25, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	root, err := newCert(tmpl, tmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	signer, err := newCert(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: name("GCE-uefi-signer"), NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}, root, &signKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	fw := sha512.Sum384([]byte("attestlog demo firmware"))
	golden := &epb.VMGoldenMeasurement{
		Timestamp: timestamppb.New(nb), Commit: bytes.Repeat([]byte{0xc0}, 20), Cert: signer.Raw, Digest: fw[:],
		CaBundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
	}
	set(golden)
	raw, err := proto.Marshal(golden)
	if err != nil {
		return err
	}
	// Google signs with RSA-PSS, SHA-256, a 32-byte salt (gce-tcb-verifier
	// verifies with x509.SHA256WithRSAPSS).
	h := sha256.Sum256(raw)
	sig, err := rsa.SignPSS(rand.Reader, signKey, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return err
	}
	if e.staples.endorsement, err = proto.Marshal(&epb.VMLaunchEndorsement{SerializedUefiGolden: raw, Signature: sig}); err != nil {
		return err
	}
	e.gceRoot = root
	return nil
}

// EndorsementRootPEM returns the test root of the enclave's firmware
// endorsement, to name in a 'trust-root gce-tcb' line (nil when the
// enclave is not a Google Cloud one).
func (e *Enclave) EndorsementRootPEM() []byte {
	if e.gceRoot == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.gceRoot.Raw})
}

// A ccEvent is one event of a CC event log: extended into MR index mr
// (1 to 4 are RTMR0 to RTMR3) with the SHA-384 of digestOf, or of data
// when digestOf is nil.
type ccEvent struct {
	mr, typ  uint32
	data     []byte
	digestOf []byte
}

// ccEventLog encodes events as a TCG crypto-agile event log with SHA-384
// digests (TCG PC Client Platform Firmware Profile: a TCG_PCR_EVENT with
// the Spec ID event, then TCG_PCR_EVENT2s), as TDVF writes the CCEL, and
// returns it with the RTMRs it replays to.
func ccEventLog(events []ccEvent) ([]byte, [4][48]byte) {
	le := binary.LittleEndian
	var spec bytes.Buffer
	spec.WriteString("Spec ID Event03\x00")
	spec.Write(le.AppendUint32(nil, 0))      // platform class
	spec.Write([]byte{0, 2, 0, 2})           // spec version 2.0, errata 0, uintn size 2 (64-bit)
	spec.Write(le.AppendUint32(nil, 1))      // one algorithm
	spec.Write(le.AppendUint16(nil, 0x000c)) // TPM_ALG_SHA384
	spec.Write(le.AppendUint16(nil, 48))     // its digest size
	spec.WriteByte(0)                        // no vendor info
	var out bytes.Buffer
	out.Write(le.AppendUint32(nil, 0)) // PCR 0
	out.Write(le.AppendUint32(nil, 3)) // EV_NO_ACTION
	out.Write(make([]byte, 20))        // SHA-1 digest, zero
	out.Write(le.AppendUint32(nil, uint32(spec.Len())))
	out.Write(spec.Bytes())
	var rtmrs [4][48]byte
	for _, ev := range events {
		d := ev.digestOf
		if d == nil {
			d = ev.data
		}
		digest := sha512.Sum384(d)
		out.Write(le.AppendUint32(nil, ev.mr))
		out.Write(le.AppendUint32(nil, ev.typ))
		out.Write(le.AppendUint32(nil, 1))
		out.Write(le.AppendUint16(nil, 0x000c))
		out.Write(digest[:])
		out.Write(le.AppendUint32(nil, uint32(len(ev.data))))
		out.Write(ev.data)
		r := &rtmrs[ev.mr-1]
		*r = sha512.Sum384(append(r[:], digest[:]...))
	}
	return out.Bytes(), rtmrs
}

// SetFirmwareEndorsement staples raw as the firmware endorsement of all
// later evidence (for tests of a wrong or broken one).
func (e *Enclave) SetFirmwareEndorsement(raw []byte) {
	e.mu.Lock()
	e.staples.endorsement = raw
	e.mu.Unlock()
}

// SetEventLog staples raw as the CC event log of all later evidence.
func (e *Enclave) SetEventLog(raw []byte) {
	e.mu.Lock()
	e.staples.eventLog = raw
	e.mu.Unlock()
}
