package spdm

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
)

// Build makes a signed report (request and MEASUREMENTS response) in the
// layout ParseReport reads: blocks[i] is measurement block i+1 (SHA-384
// values), opaque the opaque data, signed with key (P-384). It is how the
// demo GPU of 'attestlog up' and the tests make evidence; a real GPU
// signs with its device key in hardware.
func Build(nonce [NonceSize]byte, blocks [][]byte, opaque []OpaqueField, key *ecdsa.PrivateKey) ([]byte, error) {
	if len(blocks) > MaxBlocks {
		return nil, errors.New("spdm: too many blocks")
	}
	out := []byte{0x11, 0xe0, 0x01, 0xff}
	out = append(out, nonce[:]...)
	out = append(out, 0x00) // slot 0
	var rec []byte
	for i, v := range blocks {
		rec = append(rec, byte(i+1), 0x01)
		rec = binary.LittleEndian.AppendUint16(rec, uint16(3+len(v)))
		rec = append(rec, 0x01)
		rec = binary.LittleEndian.AppendUint16(rec, uint16(len(v)))
		rec = append(rec, v...)
	}
	out = append(out, 0x11, 0x60, 0x00, 0x00, byte(len(blocks)), byte(len(rec)), byte(len(rec)>>8), byte(len(rec)>>16))
	out = append(out, rec...)
	var rn [NonceSize]byte
	rand.Read(rn[:])
	out = append(out, rn[:]...)
	var op []byte
	for _, f := range opaque {
		op = binary.LittleEndian.AppendUint16(op, f.Type)
		op = binary.LittleEndian.AppendUint16(op, uint16(len(f.Value)))
		op = append(op, f.Value...)
	}
	out = binary.LittleEndian.AppendUint16(out, uint16(len(op)))
	out = append(out, op...)
	h := sha512.Sum384(out)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	var sig [SignatureSize]byte
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return append(out, sig[:]...), nil
}

// VBIOSField encodes a VBIOS version "AA.BB.CC.DD.EE" (hex bytes) as the
// opaque field the GPU reports.
func VBIOSField(v [5]byte) OpaqueField {
	return OpaqueField{Type: OpaqueVBIOSVersion, Value: []byte{v[3], v[2], v[1], v[0], v[4], 0, 0, 0}}
}

// TextField is a NUL-terminated text opaque field (driver version, SKUs).
func TextField(t uint16, s string) OpaqueField {
	return OpaqueField{Type: t, Value: append([]byte(s), 0)}
}
