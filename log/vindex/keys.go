package vindex

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/attestlog/attestlog/log/statement"
)

// KeyType says what the digest under a map key is. Version 2 of the map
// types every key, so that a digest of one kind never meets a digest of
// another that happens to have the same bytes (an artifact's SHA-384 and
// an SNP launch digest are both 48 bytes).
type KeyType string

// The key types of map version 2.
const (
	// Lookup keys: every release with the value, and its reproductions.
	KeySNPLaunchDigest KeyType = "sev-snp/launch_digest"
	KeyTDXMRTD         KeyType = "tdx/mrtd"
	KeyTDXRTMR0        KeyType = "tdx/rtmr0"
	KeyTDXRTMR1        KeyType = "tdx/rtmr1"
	KeyTDXRTMR2        KeyType = "tdx/rtmr2"
	KeyTDXRTMR3        KeyType = "tdx/rtmr3"
	KeyTDXMRConfigID   KeyType = "tdx/mrconfigid"
	KeyArtifactSHA256  KeyType = "artifact/sha256"
	KeyArtifactSHA384  KeyType = "artifact/sha384"
	KeyArtifactSHA512  KeyType = "artifact/sha512"
	// KeyIdentity: every release with the identity (Identity), and every
	// revocation of any of them. Revocation decisions read this key only.
	KeyIdentity KeyType = "identity"
)

// KeyTypes are the key types, in the order a release files them.
var KeyTypes = append(append([]KeyType{KeyIdentity, KeySNPLaunchDigest, KeyTDXMRTD, KeyTDXRTMR0, KeyTDXRTMR1, KeyTDXRTMR2, KeyTDXRTMR3, KeyTDXMRConfigID},
	keyVTPMPCRs[:]...), KeyArtifactSHA256, KeyArtifactSHA384, KeyArtifactSHA512)

// ParseKeyType returns the key type named s.
func ParseKeyType(s string) (KeyType, error) {
	for _, t := range KeyTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q (want one of %v)", short(s), KeyTypes)
}

// digestSize is the size of a digest of type t (0: any, for identities).
func (t KeyType) digestSize() int {
	switch t {
	case KeyIdentity:
		return 0
	case KeyArtifactSHA256:
		return 32
	case KeyArtifactSHA512:
		return 64
	}
	if _, ok := t.PCR(); ok {
		return 32
	}
	return 48
}

// CheckDigest reports whether digest can be a value of type t.
func (t KeyType) CheckDigest(digest []byte) error {
	n := t.digestSize()
	switch {
	case n == 0 && (len(digest) == 0 || len(digest) > MaxIdentitySize):
		return fmt.Errorf("an identity is 1 to %d bytes, got %d", MaxIdentitySize, len(digest))
	case n != 0 && len(digest) != n:
		return fmt.Errorf("a %s value is %d bytes, got %d", t, n, len(digest))
	}
	return nil
}

// Key is the map key of a digest of type t:
//
//	SHA-256("attestlog vindex v2 key" || 0x00 || t || 0x00 || digest)
func Key(t KeyType, digest []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("attestlog vindex v2 key\x00"))
	h.Write([]byte(t))
	h.Write([]byte{0})
	h.Write(digest)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// MaxIdentitySize bounds an identity (a TDX identity with every register
// is 2+6×49 bytes).
const MaxIdentitySize = 512

// Identity is what a revocation of the release revokes, and what the
// hardware must show for an enclave to run it: the platform and every
// measurement the release fixes.
//
//	sev-snp: "sev-snp" || 0x00 || launch digest (48 bytes)
//	tdx:     "tdx" || 0x00 || for MRTD, RTMR0, RTMR1, RTMR2, RTMR3, MRCONFIGID
//	         in that order: 0x00 when the release does not name it, or
//	         0x01 || the register (48 bytes)
//
// An SNP launch digest covers everything the guest launched with; the
// optional guest policy, family and image IDs are not software and are
// not part of it. A TDX MRTD covers the firmware alone, so a TDX identity
// is every register the release names: revoking one release on a TDVF
// does not revoke every other release on the same TDVF. A release that
// names fewer registers has another identity, and accepts more: revoke it
// on its own. Nil when the release's measurements do not decode.
func Identity(rel *statement.Release) []byte {
	switch {
	case rel.Platform == statement.PlatformSNP && rel.Measurements.SNP != nil:
		d, err := hex.DecodeString(rel.Measurements.SNP.LaunchDigest)
		if err != nil || len(d) != 48 {
			return nil
		}
		return append([]byte(statement.PlatformSNP+"\x00"), d...)
	case rel.Platform == statement.PlatformAzureSNP || rel.Platform == statement.PlatformAzureTDX:
		return azureIdentity(rel)
	case rel.Platform == statement.PlatformTDX && rel.Measurements.TDX != nil:
		m := rel.Measurements.TDX
		out := []byte(statement.PlatformTDX + "\x00")
		for i, r := range []string{m.MRTD, m.RTMR0, m.RTMR1, m.RTMR2, m.RTMR3, m.MRConfigID} {
			if r == "" {
				if i == 0 {
					return nil // MRTD is required
				}
				out = append(out, 0)
				continue
			}
			d, err := hex.DecodeString(r)
			if err != nil || len(d) != 48 {
				return nil
			}
			out = append(append(out, 1), d...)
		}
		return out
	}
	return nil
}

// IdentityKey is the map key of the release's identity (zero, false when
// it has none).
func IdentityKey(rel *statement.Release) ([32]byte, bool) {
	id := Identity(rel)
	if id == nil {
		return [32]byte{}, false
	}
	return Key(KeyIdentity, id), true
}

// TypedDigest is a lookup key before hashing.
type TypedDigest struct {
	Type   KeyType
	Digest []byte
}

// LookupDigests are the typed values a release is found by: its
// measurement registers (all-zero ones excepted: an unused register
// measures nothing) and its subjects' (artifacts') digests, each once.
func LookupDigests(rel *statement.Release, subjects []statement.Subject) []TypedDigest {
	var out []TypedDigest
	seen := map[[32]byte]bool{}
	add := func(t KeyType, h string) {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) == 0 || allZero(raw) || t.CheckDigest(raw) != nil {
			return
		}
		if k := Key(t, raw); !seen[k] {
			seen[k] = true
			out = append(out, TypedDigest{t, raw})
		}
	}
	if m := rel.Measurements.SNP; m != nil {
		add(KeySNPLaunchDigest, m.LaunchDigest)
	}
	if m := rel.Measurements.TDX; m != nil {
		add(KeyTDXMRTD, m.MRTD)
		add(KeyTDXRTMR0, m.RTMR0)
		add(KeyTDXRTMR1, m.RTMR1)
		add(KeyTDXRTMR2, m.RTMR2)
		add(KeyTDXRTMR3, m.RTMR3)
		add(KeyTDXMRConfigID, m.MRConfigID)
	}
	if m := rel.Measurements.VTPM; m != nil {
		for _, i := range m.Indices() {
			add(KeyVTPMPCR(i), m.PCRs[strconv.Itoa(i)])
		}
	}
	algs := map[string]KeyType{"sha256": KeyArtifactSHA256, "sha384": KeyArtifactSHA384, "sha512": KeyArtifactSHA512}
	for _, s := range subjects {
		for _, alg := range statement.DigestAlgs {
			if t, ok := algs[alg]; ok {
				add(t, s.Digest.Get(alg))
			}
		}
	}
	return out
}

// PrimaryType is the key type of a release's primary measurement
// (statement.Measurements.Primary): the SNP launch digest or the TDX MRTD.
func PrimaryType(platform string) KeyType {
	if statement.HardwarePlatform(platform) == statement.PlatformTDX {
		return KeyTDXMRTD
	}
	return KeySNPLaunchDigest
}

// ReleaseKeys are the keys a release is filed under: its identity key
// first (when it has one), then its lookup keys.
func ReleaseKeys(rel *statement.Release, subjects []statement.Subject) [][32]byte {
	var keys [][32]byte
	if k, ok := IdentityKey(rel); ok {
		keys = append(keys, k)
	}
	for _, d := range LookupDigests(rel, subjects) {
		keys = append(keys, Key(d.Type, d.Digest))
	}
	return keys
}

// LookupKeys are the keys digest d is filed under by any release that
// names it: one per lookup key type of its size (every type but the
// identity). None when d is all zeros, which LookupDigests never files.
func LookupKeys(d []byte) [][32]byte {
	if len(d) == 0 || allZero(d) {
		return nil
	}
	var keys [][32]byte
	for _, t := range KeyTypes {
		if t != KeyIdentity && t.CheckDigest(d) == nil {
			keys = append(keys, Key(t, d))
		}
	}
	return keys
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TDXIdentities are the identities a TD with these registers (MRTD,
// RTMR0-3, MRCONFIGID, as its report gives them, 48 bytes each) can run
// a release of: one per choice of the optional registers a release names
// (2^5). An auditor that sees a TD finds every release whose measurements
// it matches under these keys.
func TDXIdentities(regs [6][]byte) [][]byte {
	var out [][]byte
	for mask := range 1 << 5 {
		id := append([]byte(statement.PlatformTDX+"\x00"), 1)
		id = append(id, regs[0]...)
		for i := 1; i < 6; i++ {
			if mask&(1<<(i-1)) == 0 {
				id = append(id, 0)
				continue
			}
			id = append(append(id, 1), regs[i]...)
		}
		out = append(out, id)
	}
	return out
}
