package vtpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	tpmpb "github.com/google/go-tpm-tools/proto/tpm"
	tpmquote "github.com/google/go-tpm-tools/quote"
	"github.com/google/go-tpm/legacy/tpm2"
)

var errorf = fmt.Errorf

// Size limits of a quote.
const (
	// MaxQuoteSize bounds a TPMS_ATTEST (a quote over 24 PCRs with a
	// 64-byte nonce is under 200 bytes).
	MaxQuoteSize = 1 << 10
	// MaxSignatureSize bounds a TPMT_SIGNATURE (RSA-4096: 518 bytes).
	MaxSignatureSize = 1 << 10
	// PCRCount is how many PCRs a bank has (PCR 0 to 23).
	PCRCount = 24
	// PCRSize is the size of a SHA-256 PCR, the bank attestlog reads.
	PCRSize = 32
)

// Quote is a parsed TPM2_Quote: the TPMS_ATTEST the TPM signed and its
// TPMT_SIGNATURE.
type Quote struct {
	// Attest and Signature are the bytes as given.
	Attest, Signature []byte
	// ExtraData is the qualifying data the caller passed (its nonce).
	ExtraData []byte
	// PCRs are the selected PCR indices of the SHA-256 bank, ascending.
	PCRs []int
	// PCRDigest is the digest of the selected PCR values, with the
	// signature's hash.
	PCRDigest []byte
	// Clock, ResetCount, RestartCount and FirmwareVersion are the TPM's.
	Clock                    uint64
	ResetCount, RestartCount uint32
	FirmwareVersion          uint64
	// SigHash is the signature's hash (SHA-256, SHA-384 or SHA-512).
	SigHash crypto.Hash
	sig     *tpm2.Signature
}

// SignatureAlg names the signature scheme, e.g. "RSASSA-SHA256".
func (q *Quote) SignatureAlg() string {
	name := map[crypto.Hash]string{crypto.SHA256: "SHA256", crypto.SHA384: "SHA384", crypto.SHA512: "SHA512"}[q.SigHash]
	if q.sig.Alg == tpm2.AlgECDSA {
		return "ECDSA-" + name
	}
	return "RSASSA-" + name
}

// ParseQuote parses a TPMS_ATTEST and its TPMT_SIGNATURE with go-tpm. It
// accepts only a quote (TPM_ST_ATTEST_QUOTE with TPM_GENERATED_VALUE)
// over one selection of the SHA-256 bank, encoded canonically (go-tpm
// re-encodes it to the same bytes: no trailing data), signed with RSASSA
// or ECDSA over SHA-256, SHA-384 or SHA-512. It verifies nothing.
func ParseQuote(attest, signature []byte) (*Quote, error) {
	if len(attest) == 0 || len(attest) > MaxQuoteSize {
		return nil, malformed("TPM quote of %d bytes; want 1 to %d", len(attest), MaxQuoteSize)
	}
	if len(signature) == 0 || len(signature) > MaxSignatureSize {
		return nil, malformed("TPM quote signature of %d bytes; want 1 to %d", len(signature), MaxSignatureSize)
	}
	ad, err := tpm2.DecodeAttestationData(attest)
	if err != nil {
		return nil, malformed("TPM quote: %v", err)
	}
	if ad.Type != tpm2.TagAttestQuote || ad.AttestedQuoteInfo == nil {
		return nil, malformed("TPMS_ATTEST of type 0x%x, not a quote (0x%x)", uint16(ad.Type), uint16(tpm2.TagAttestQuote))
	}
	if re, err := ad.Encode(); err != nil || !bytes.Equal(re, attest) {
		return nil, malformed("TPM quote is not canonically encoded (trailing or inconsistent bytes)")
	}
	sel := ad.AttestedQuoteInfo.PCRSelection
	if sel.Hash != tpm2.AlgSHA256 {
		return nil, malformed("TPM quote selects PCRs of hash algorithm 0x%x; attestlog reads the SHA-256 bank", uint16(sel.Hash))
	}
	if len(sel.PCRs) == 0 {
		return nil, malformed("TPM quote selects no PCRs")
	}
	for _, i := range sel.PCRs {
		if i >= PCRCount {
			return nil, malformed("TPM quote selects PCR %d; a bank has PCRs 0 to %d", i, PCRCount-1)
		}
	}
	buf := bytes.NewBuffer(signature)
	sig, err := tpm2.DecodeSignature(buf)
	if err != nil {
		return nil, malformed("TPM quote signature: %v", err)
	}
	if buf.Len() != 0 {
		return nil, malformed("TPM quote signature has %d trailing bytes", buf.Len())
	}
	var alg tpm2.Algorithm
	switch {
	case sig.Alg == tpm2.AlgRSASSA && sig.RSA != nil:
		alg = sig.RSA.HashAlg
	case sig.Alg == tpm2.AlgECDSA && sig.ECC != nil:
		alg = sig.ECC.HashAlg
	default:
		return nil, malformed("TPM quote signature scheme 0x%x; want RSASSA or ECDSA", uint16(sig.Alg))
	}
	h, err := alg.Hash()
	if err != nil || (h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512) {
		return nil, malformed("TPM quote signature hash 0x%x; want SHA-256, SHA-384 or SHA-512", uint16(alg))
	}
	pcrs := slices.Clone(sel.PCRs)
	slices.Sort(pcrs)
	return &Quote{
		Attest: bytes.Clone(attest), Signature: bytes.Clone(signature),
		ExtraData: bytes.Clone(ad.ExtraData), PCRs: slices.Compact(pcrs), PCRDigest: bytes.Clone(ad.AttestedQuoteInfo.PCRDigest),
		Clock: ad.ClockInfo.Clock, ResetCount: ad.ClockInfo.ResetCount, RestartCount: ad.ClockInfo.RestartCount,
		FirmwareVersion: ad.FirmwareVersion, SigHash: h, sig: sig,
	}, nil
}

// ErrSignature means the quote's signature does not verify with the key.
var ErrSignature = errors.New("the TPM quote's signature does not verify with the attestation key")

// VerifySignature checks the quote's signature over the TPMS_ATTEST with
// ak (RSASSA-PKCS1-v1_5 or ECDSA, with the signature's hash).
func (q *Quote) VerifySignature(ak crypto.PublicKey) error {
	h := q.SigHash.New()
	h.Write(q.Attest)
	d := h.Sum(nil)
	switch k := ak.(type) {
	case *rsa.PublicKey:
		if q.sig.RSA == nil || rsa.VerifyPKCS1v15(k, q.SigHash, d, q.sig.RSA.Signature) != nil {
			return ErrSignature
		}
	case *ecdsa.PublicKey:
		if q.sig.ECC == nil || !ecdsa.Verify(k, d, q.sig.ECC.R, q.sig.ECC.S) {
			return ErrSignature
		}
	default:
		return fmt.Errorf("%w: a %T key", ErrSignature, ak)
	}
	return nil
}

// ErrPCRDigest means the PCR values given are not those the quote covers.
var ErrPCRDigest = errors.New("the PCR values given are not those the TPM quote covers")

// CheckPCRs checks that values are the quote's selected PCRs, in
// ascending index order: one SHA-256 value per selected PCR, whose
// digest (with the signature's hash, as TPM2_Quote computes it) is the
// quote's pcrDigest.
func (q *Quote) CheckPCRs(values [][]byte) error {
	if len(values) != len(q.PCRs) {
		return fmt.Errorf("%w: %d values for the %d PCRs the quote selects", ErrPCRDigest, len(values), len(q.PCRs))
	}
	h := q.SigHash.New()
	for i, v := range values {
		if len(v) != PCRSize {
			return fmt.Errorf("%w: PCR %d's value is %d bytes, not %d", ErrPCRDigest, q.PCRs[i], len(v), PCRSize)
		}
		h.Write(v)
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), q.PCRDigest) != 1 {
		return fmt.Errorf("%w: their digest is not the quote's pcrDigest", ErrPCRDigest)
	}
	return nil
}

// VerifyLibrary is go-tpm-tools' own verification of the quote
// (quote.Verify): signature by ak, TPM_GENERATED_VALUE, quote type, PCR
// selection and digest, and extraData equal to nonce. policy/attest
// requires it to agree with the separate checks above, which say which
// part failed.
func (q *Quote) VerifyLibrary(ak crypto.PublicKey, nonce []byte, values [][]byte) error {
	if len(values) != len(q.PCRs) {
		return fmt.Errorf("%d values for %d PCRs", len(values), len(q.PCRs))
	}
	m := make(map[uint32][]byte, len(values))
	for i, v := range values {
		m[uint32(q.PCRs[i])] = v
	}
	return tpmquote.Verify(&tpmpb.Quote{Quote: q.Attest, RawSig: q.Signature, Pcrs: &tpmpb.PCRs{Hash: tpmpb.HashAlgo_SHA256, Pcrs: m}}, ak, nonce)
}
