// Package spdm parses and verifies an NVIDIA GPU attestation report: the
// SPDM 1.1 GET_MEASUREMENTS request (the caller's 32-byte nonce) followed
// by the GPU's signed MEASUREMENTS response — measurement blocks of
// SHA-384 values, the responder's nonce, opaque data (driver and VBIOS
// versions, chip SKU, project, …) and a raw r‖s ECDSA P-384 signature
// over SHA-384 of the request and the response without the signature —
// and the GPU's device certificate chain up to NVIDIA's Device Identity
// CA (embedded).
//
// Offsets are those of DMTF DSP0274 1.1 (GET_MEASUREMENTS, MEASUREMENTS)
// and were checked against NVIDIA's published H100 samples (testdata).
package spdm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"crypto/x509"

	"github.com/attestlog/attestlog/internal/pemcert"
)

// Sizes of the fixed parts.
const (
	RequestSize   = 37 // version, code, attributes, operation, nonce, slot
	NonceSize     = 32
	SignatureSize = 96 // r‖s, P-384
	// MaxReportSize bounds a report (64 blocks of 48-byte digests and
	// opaque data fit in under 5 KiB).
	MaxReportSize = 64 << 10
	// MaxBlocks is the most measurement blocks a response may carry.
	MaxBlocks = 255
)

// ErrMalformed is wrapped by every ParseReport error.
var ErrMalformed = errors.New("malformed GPU attestation report")

// Opaque data field types (NVIDIA's).
const (
	OpaqueDriverVersion = 3
	OpaqueVBIOSVersion  = 6
	OpaqueChipSKU       = 15
	OpaqueProject       = 17
	OpaqueProjectSKU    = 18
)

// Block is one measurement block: Index (from 1) and its value.
type Block struct {
	Index         uint8
	Specification uint8
	ValueType     uint8
	Value         []byte
}

// OpaqueField is one type-length-value of the opaque data.
type OpaqueField struct {
	Type  uint16
	Value []byte
}

// Report is a parsed GPU attestation report.
type Report struct {
	// Nonce is the requester's nonce (the caller's).
	Nonce          [NonceSize]byte
	SlotID         uint8
	Blocks         []Block
	ResponderNonce [NonceSize]byte
	Opaque         []OpaqueField
	Signature      [SignatureSize]byte
	// Signed is what the signature covers: the request and the response
	// up to the signature.
	Signed []byte
}

// ParseReport parses a report strictly: every length must agree with the
// bytes present, and nothing may follow the signature.
func ParseReport(b []byte) (*Report, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrMalformed}, a...)...) }
	if len(b) > MaxReportSize {
		return nil, bad("%d bytes, the limit is %d", len(b), MaxReportSize)
	}
	if len(b) < RequestSize+8+NonceSize+2+SignatureSize {
		return nil, bad("%d bytes is too short", len(b))
	}
	req := b[:RequestSize]
	if req[0] != 0x11 || req[1] != 0xe0 {
		return nil, bad("the request is not SPDM 1.1 GET_MEASUREMENTS (%x)", req[:2])
	}
	if req[2]&0x01 == 0 {
		return nil, bad("the request did not ask for a signature")
	}
	r := &Report{SlotID: req[36]}
	copy(r.Nonce[:], req[4:36])
	resp := b[RequestSize:]
	if resp[0] != 0x11 || resp[1] != 0x60 {
		return nil, bad("the response is not SPDM 1.1 MEASUREMENTS (%x)", resp[:2])
	}
	n := int(resp[4])
	recLen := int(resp[5]) | int(resp[6])<<8 | int(resp[7])<<16
	off := 8
	if recLen > len(resp)-off {
		return nil, bad("measurement record of %d bytes in a %d-byte response", recLen, len(resp))
	}
	rec := resp[off : off+recLen]
	off += recLen
	for len(rec) > 0 {
		if len(rec) < 4 {
			return nil, bad("truncated measurement block")
		}
		size := int(binary.LittleEndian.Uint16(rec[2:4]))
		if size > len(rec)-4 || size < 3 {
			return nil, bad("measurement block %d of %d bytes", rec[0], size)
		}
		m := rec[4 : 4+size]
		vs := int(binary.LittleEndian.Uint16(m[1:3]))
		if vs != size-3 {
			return nil, bad("measurement block %d: value of %d bytes in a %d-byte block", rec[0], vs, size)
		}
		if k := len(r.Blocks); k > 0 && r.Blocks[k-1].Index >= rec[0] {
			return nil, bad("measurement blocks out of order at index %d", rec[0])
		}
		r.Blocks = append(r.Blocks, Block{Index: rec[0], Specification: rec[1], ValueType: m[0], Value: bytes.Clone(m[3:])})
		rec = rec[4+size:]
	}
	if len(r.Blocks) != n {
		return nil, bad("%d measurement blocks, the header says %d", len(r.Blocks), n)
	}
	if len(resp)-off < NonceSize+2 {
		return nil, bad("truncated after the measurement record")
	}
	copy(r.ResponderNonce[:], resp[off:off+NonceSize])
	off += NonceSize
	ol := int(binary.LittleEndian.Uint16(resp[off:]))
	off += 2
	if ol > len(resp)-off-SignatureSize {
		return nil, bad("opaque data of %d bytes does not fit", ol)
	}
	op := resp[off : off+ol]
	off += ol
	for len(op) > 0 {
		if len(op) < 4 {
			return nil, bad("truncated opaque field")
		}
		t, l := binary.LittleEndian.Uint16(op), int(binary.LittleEndian.Uint16(op[2:]))
		if l > len(op)-4 {
			return nil, bad("opaque field %d of %d bytes does not fit", t, l)
		}
		r.Opaque = append(r.Opaque, OpaqueField{Type: t, Value: bytes.Clone(op[4 : 4+l])})
		op = op[4+l:]
	}
	if len(resp)-off != SignatureSize {
		return nil, bad("%d bytes after the opaque data, want the %d-byte signature", len(resp)-off, SignatureSize)
	}
	copy(r.Signature[:], resp[off:])
	r.Signed = bytes.Clone(b[:RequestSize+off])
	return r, nil
}

// Field returns the value of the first opaque field of type t.
func (r *Report) Field(t uint16) ([]byte, bool) {
	for _, f := range r.Opaque {
		if f.Type == t {
			return f.Value, true
		}
	}
	return nil, false
}

func (r *Report) text(t uint16) string {
	v, _ := r.Field(t)
	return strings.TrimRight(string(v), "\x00")
}

// DriverVersion is the driver version the GPU reports (e.g. "535.86.09").
func (r *Report) DriverVersion() string { return r.text(OpaqueDriverVersion) }

// VBIOSVersion is the VBIOS version in NVIDIA's spelling
// (e.g. "96.00.5E.00.01"), or "" when absent.
func (r *Report) VBIOSVersion() string {
	v, ok := r.Field(OpaqueVBIOSVersion)
	if !ok || len(v) < 5 {
		return ""
	}
	return fmt.Sprintf("%02X.%02X.%02X.%02X.%02X", v[3], v[2], v[1], v[0], v[4])
}

// ChipSKU, Project and ProjectSKU name the board (they name its VBIOS RIM).
func (r *Report) ChipSKU() string    { return r.text(OpaqueChipSKU) }
func (r *Report) Project() string    { return r.text(OpaqueProject) }
func (r *Report) ProjectSKU() string { return r.text(OpaqueProjectSKU) }

// Measurement returns block index i's value.
func (r *Report) Measurement(i uint8) ([]byte, bool) {
	for _, b := range r.Blocks {
		if b.Index == i {
			return b.Value, true
		}
	}
	return nil, false
}

// VerifySignature checks the report's signature with the GPU's leaf
// certificate key (ECDSA P-384 over SHA-384 of Signed).
func (r *Report) VerifySignature(leaf *x509.Certificate) error {
	k, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P384() {
		return errors.New("the GPU's certificate key is not ECDSA P-384")
	}
	h := sha512.Sum384(r.Signed)
	rr := new(big.Int).SetBytes(r.Signature[:48])
	ss := new(big.Int).SetBytes(r.Signature[48:])
	if !ecdsa.Verify(k, h[:], rr, ss) {
		return errors.New("the report's signature does not verify with the GPU's certificate")
	}
	return nil
}

//go:embed nvidia_device_root.pem
var deviceRootPEM []byte

// DeviceRoots is NVIDIA's Device Identity CA, the root of every GPU
// device certificate chain.
func DeviceRoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(deviceRootPEM)
	return p
}

// ParseChain parses a PEM certificate chain, leaf first.
func ParseChain(pemData []byte) ([]*x509.Certificate, error) {
	c, err := pemcert.Parse(pemData)
	if err != nil {
		return nil, fmt.Errorf("GPU certificate chain: %v", err)
	}
	return c, nil
}

// VerifyChain verifies chain (leaf first; the chain may end with the
// root itself) to roots as of at, and returns the leaf. It is the one
// chain rule for GPU device chains and RIM signing chains.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) (*x509.Certificate, error) {
	path, err := VerifyPath(chain, roots, at)
	if err != nil {
		return nil, err
	}
	return path[0], nil
}

// VerifyPath is VerifyChain returning the verified path, leaf first and
// root last: the issuers a revocation check may rely on, which are not
// necessarily the certificates presented, in the order presented.
func VerifyPath(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) ([]*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("no GPU certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		// A chain that ends with its root carries it as a convenience:
		// the root comes from roots, and checking its self-signature
		// again is a P-384 verification for nothing.
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			continue
		}
		inter.AddCert(c)
	}
	paths, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, err
	}
	return paths[0], nil
}

// BlockMap returns the measurement values by block index.
func (r *Report) BlockMap() map[int][]byte {
	out := map[int][]byte{}
	for _, b := range r.Blocks {
		out[int(b.Index)] = b.Value
	}
	return out
}

// More opaque field types (NVIDIA's numbering).
const (
	OpaqueProtectedPCIeStatus = 21
	OpaqueDataVersion         = 34
	OpaqueFeatureFlag         = 36
)

// GPU modes a report can state.
const (
	ModeCC    = "cc"    // confidential computing, single or multi-GPU passthrough
	ModePPCIe = "ppcie" // protected PCIe
)

// Mode is the mode the GPU's signed opaque data states: FEATURE_FLAG,
// read only when OPAQUE_DATA_VERSION is at least 1 (as NVIDIA's verifiers
// do). 2 is protected PCIe; 0 and 1 are the single- and multi-GPU
// passthrough CC modes (NVIDIA's two verifiers disagree on which is which,
// so both read as ModeCC here). Older reports state no mode: ok is false.
// Whether CC is on rather than in devtools mode is not in the evidence.
func (r *Report) Mode() (mode string, ok bool) {
	v, ok1 := r.Field(OpaqueDataVersion)
	f, ok2 := r.Field(OpaqueFeatureFlag)
	if !ok1 || !ok2 || len(v) == 0 || len(f) == 0 || leUint(v) < 1 {
		return "", false
	}
	switch leUint(f) {
	case 0, 1:
		return ModeCC, true
	case 2:
		return ModePPCIe, true
	}
	return "", false
}

func leUint(b []byte) uint64 {
	var n uint64
	for i := len(b) - 1; i >= 0; i-- {
		n = n<<8 | uint64(b[i])
	}
	return n
}
