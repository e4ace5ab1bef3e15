package evidence

import (
	"bytes"
	"crypto/sha512"
	"fmt"

	"github.com/attestlog/attestlog/channel/keyset"
)

// FormatKeySet is the format of an attestation document: evidence whose
// REPORT_DATA commits to an attested key set (channel/keyset) rather than
// to one client's request, so that one hardware report serves every
// client for the key set's lifetime. Clients verify it once and pin the
// key set's TLS key; a nonce challenge binds a client's nonce too.
//
// A v3 bundle carries "key_set" (base64 of the key set's encoding) and no
// "channel_key" (the key set replaces it); its GPUs, if any, are those
// whose evidence digest (GPUDigest) the key set carries, and GPU i
// answers GPUNonce(seed, i) for the key set's GPUNonceSeed.
const FormatKeySet = "attestlog-evidence/v3"

// Where an enclave agent serves what.
const (
	// DocumentPath serves the attestation document: a v3 bundle bound to
	// the key set of the TLS connection it is asked over (the newest over
	// plain HTTP), with fresh staples, and no nonce. Answering it costs
	// the enclave no hardware report.
	DocumentPath = "/.well-known/attestlog/attestation"
	// DocumentALPN, offered by a client among its TLS ALPN protocols
	// (beside the one it means to speak, http/1.1), asks the agent to
	// send the attestation document of the handshake's key set inside
	// the handshake: as the certificate's status_request response (the
	// "OCSP staple" of RFC 8446 §4.4.2.1), which TLS 1.3 encrypts and
	// the server's CertificateVerify signs with the key set's key. The
	// agent never selects this protocol, and staples nothing for a
	// client that does not offer it (a browser expects a real OCSP
	// response there), nor a document too large for the handshake
	// (agent.MaxHandshakeDocument). The client reads the document at
	// DocumentPath when none came.
	DocumentALPN = "attestlog-document/1"
	// Path (GET Path?nonce=HEX) serves a nonce challenge: a v3 bundle
	// whose REPORT_DATA binds the key set and the nonce, one hardware
	// report each, rate-limited.
)

// KeySetReportData is the REPORT_DATA of a v3 bundle:
//
//	SHA-512("attestlog-keyset-v1" ‖ 0x00 ‖ len(nonce) as one byte ‖ nonce ‖ key set encoding)
//
// with an empty nonce for the attestation document, or the client's
// nonce (MinNonceSize to MaxNonceSize bytes) for a challenge. The
// "attestlog-keyset-v1" label keeps it apart from ReportData and the v2
// binding, whose labels differ.
func KeySetReportData(keySet, nonce []byte) ([64]byte, error) {
	if len(nonce) > 0 {
		if err := CheckNonce(nonce); err != nil {
			return [64]byte{}, err
		}
	}
	h := sha512.New()
	h.Write([]byte("attestlog-keyset-v1\x00"))
	h.Write([]byte{byte(len(nonce))})
	h.Write(nonce)
	h.Write(keySet)
	var rd [64]byte
	h.Sum(rd[:0])
	return rd, nil
}

// ParsedKeySet returns the bundle's key set, parsed (nil for bundles of
// other formats).
func (b *Bundle) ParsedKeySet() (*keyset.KeySet, error) {
	if b.Format != FormatKeySet {
		return nil, nil
	}
	return keyset.Parse(b.KeySet)
}

// GPUNonce is the SPDM nonce GPU i of b must answer: GPUNonce(nonce, i)
// for the client's nonce, or, in a v3 bundle, GPUNonce(seed, i) for the
// key set's GPUNonceSeed (the GPUs answered when the key set was made).
func (b *Bundle) GPUNonce(nonce []byte, i int) [32]byte {
	if b.Format == FormatKeySet {
		if ks, err := keyset.Parse(b.KeySet); err == nil {
			if seed, err := ks.GPUNonceSeed(); err == nil {
				return GPUNonce(seed[:], i)
			}
		}
		// A key set that does not parse fails Check: no GPU answers
		// this.
		return [32]byte{}
	}
	return GPUNonce(nonce, i)
}

// checkKeySet checks the key set fields: present and well formed in v3
// (committing to exactly the bundle's GPUs), absent otherwise.
func (b *Bundle) checkKeySet() error {
	if b.Format != FormatKeySet {
		if len(b.KeySet) > 0 {
			return fmt.Errorf("%w: a key set needs format %q", ErrMalformed, FormatKeySet)
		}
		return nil
	}
	if len(b.ChannelKey) > 0 {
		return fmt.Errorf("%w: format %q has a key set, not a channel key", ErrMalformed, FormatKeySet)
	}
	ks, err := keyset.Parse(b.KeySet)
	if err != nil {
		return fmt.Errorf("%w: key_set: %v", ErrMalformed, err)
	}
	switch {
	case len(ks.GPUDigest) == 0 && len(b.GPUs) > 0:
		return fmt.Errorf("%w: %d GPUs, and the key set commits to none", ErrMalformed, len(b.GPUs))
	case len(ks.GPUDigest) > 0 && len(b.GPUs) == 0:
		return fmt.Errorf("%w: the key set commits to GPU evidence, and the bundle has none", ErrMalformed)
	case len(b.GPUs) > 0:
		d := GPUDigest(b.GPUs)
		if !bytes.Equal(ks.GPUDigest, d[:]) {
			return fmt.Errorf("%w: the GPUs' evidence is not what the key set commits to", ErrMalformed)
		}
	}
	return nil
}
