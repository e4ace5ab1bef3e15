package vtpm

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"math/big"

	jsonv2 "github.com/attestlog/attestlog/internal/jsonv2"
)

// AKKeyID is the JWK "kid" of the vTPM's attestation key in the runtime
// claims.
const AKKeyID = "HCLAkPub"

// UserDataSize is the size of the guest's user data (NV index 0x01400002)
// as the runtime claims carry it ("user-data", hex).
const UserDataSize = 64

// RuntimeClaims are what attestlog reads from the paravisor's runtime
// claims.
type RuntimeClaims struct {
	// AK is the vTPM's attestation key (HCLAkPub).
	AK *rsa.PublicKey
	// UserData is the guest's user data, or nil when the claims have none.
	UserData []byte
	// VM is the "vm-configuration" object, as given.
	VM VMConfiguration
}

// VMConfiguration is the runtime claims' "vm-configuration": what the
// paravisor says of the VM (unset fields are nil or empty).
type VMConfiguration struct {
	ConsoleEnabled     *bool  `json:"console-enabled"`
	SecureBoot         *bool  `json:"secure-boot"`
	TPMEnabled         *bool  `json:"tpm-enabled"`
	TPMPersisted       *bool  `json:"tpm-persisted"`
	VMUniqueID         string `json:"vmUniqueId"`
	RootCertThumbprint string `json:"root-cert-thumbprint"`
}

type jwk struct {
	Kid    string   `json:"kid"`
	Kty    string   `json:"kty"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	KeyOps []string `json:"key_ops"`
}

type claimsJSON struct {
	Keys     []jwk           `json:"keys"`
	VM       VMConfiguration `json:"vm-configuration"`
	UserData *string         `json:"user-data"`
}

// ParseRuntimeClaims parses the runtime claims JSON. It is strict where
// attestlog depends on the content — valid UTF-8, no duplicate names,
// exactly one RSA key "HCLAkPub" of 2048 to 4096 bits, user-data (when
// present) 64 bytes of hex — and ignores members it does not read (the
// paravisor may add claims).
func ParseRuntimeClaims(b []byte) (*RuntimeClaims, error) {
	if len(b) > MaxRuntimeClaimsSize {
		return nil, malformed("runtime claims of %d bytes; the limit is %d", len(b), MaxRuntimeClaimsSize)
	}
	var c claimsJSON
	if err := jsonv2.Unmarshal(b, &c); err != nil {
		return nil, malformed("runtime claims: %v", err)
	}
	if len(c.Keys) > 16 {
		return nil, malformed("runtime claims list %d keys; the limit is 16", len(c.Keys))
	}
	out := &RuntimeClaims{VM: c.VM}
	for _, k := range c.Keys {
		if k.Kid != AKKeyID {
			continue
		}
		if out.AK != nil {
			return nil, malformed("runtime claims list two keys %q", AKKeyID)
		}
		ak, err := rsaJWK(k)
		if err != nil {
			return nil, malformed("runtime claims key %q: %v", AKKeyID, err)
		}
		out.AK = ak
	}
	if out.AK == nil {
		return nil, malformed("runtime claims carry no key %q (the vTPM's attestation key)", AKKeyID)
	}
	if c.UserData != nil {
		u, err := hex.DecodeString(*c.UserData)
		if err != nil || len(u) != UserDataSize {
			return nil, malformed("runtime claims user-data is not %d bytes of hex", UserDataSize)
		}
		out.UserData = u
	}
	return out, nil
}

func rsaJWK(k jwk) (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, errorf("kty %q, want RSA", k.Kty)
	}
	n, err := base64.RawURLEncoding.Strict().DecodeString(k.N)
	if err != nil {
		return nil, errorf("n is not unpadded base64url: %v", err)
	}
	e, err := base64.RawURLEncoding.Strict().DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errorf("e is not a minimal 1- to 4-byte unpadded base64url integer")
	}
	if len(n) == 0 || n[0] == 0 {
		return nil, errorf("n has a leading zero byte")
	}
	if bits := len(n) * 8; bits < 2048 || bits > 4096 {
		return nil, errorf("a %d-bit modulus; want 2048 to 4096 bits", bits)
	}
	ev := int(new(big.Int).SetBytes(e).Int64())
	if ev < 3 || ev%2 == 0 {
		return nil, errorf("public exponent %d", ev)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, nil
}

// KeyID names an attestation key: the SHA-256 of its DER
// SubjectPublicKeyInfo, hex.
func KeyID(ak *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(ak)
	if err != nil {
		return ""
	}
	d := sha256.Sum256(der)
	return hex.EncodeToString(d[:])
}
