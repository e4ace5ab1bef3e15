package webcrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"slices"
	"testing"
)

// TestSelfTestVectors checks the self-test's known answers with Go's own
// verifiers (independent of the conversion to WebCrypto's terms): each
// valid signature verifies, and neither tampered form the self-test asks
// WebCrypto about does; each turns into a request of its own class.
func TestSelfTestVectors(t *testing.T) {
	var classes []string
	for _, v := range selfTest {
		r, msg, err := v.request()
		if err != nil {
			t.Fatal(err)
		}
		classes = append(classes, r.Class)
		der, _ := hex.DecodeString(v.spki)
		sig, _ := hex.DecodeString(v.sig)
		pub, _ := x509.ParsePKIXPublicKey(der)
		goVerify := func(msg, sig []byte) bool {
			if k, ok := pub.(ed25519.PublicKey); ok {
				return ed25519.Verify(k, msg, sig)
			}
			h := v.hash.New()
			h.Write(msg)
			d := h.Sum(nil)
			switch k := pub.(type) {
			case *ecdsa.PublicKey:
				return ecdsa.VerifyASN1(k, d, sig)
			case *rsa.PublicKey:
				if v.pss {
					return rsa.VerifyPSS(k, v.hash, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
				}
				return rsa.VerifyPKCS1v15(k, v.hash, d, sig) == nil
			}
			t.Fatalf("%s: key %T", r.Class, pub)
			return false
		}
		if !goVerify(msg, sig) {
			t.Errorf("%s: Go does not verify the self-test's valid signature", r.Class)
		}
		if goVerify(tampered(msg, 0), sig) {
			t.Errorf("%s: Go verifies the signature over the tampered message", r.Class)
		}
		// The tampered signature, as the self-test builds it, back in Go's
		// encoding.
		bad := tampered(r.Sig, len(r.Sig)/2-1)
		if r.Alg == "ECDSA" {
			bad, _ = asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(bad[:len(bad)/2]), new(big.Int).SetBytes(bad[len(bad)/2:])})
		}
		if goVerify(msg, bad) {
			t.Errorf("%s: Go verifies the tampered signature", r.Class)
		}
	}
	want := []string{"ECDSA P-256 SHA-256", "ECDSA P-384 SHA-384", "Ed25519", "RSA-PSS SHA-256", "RSA-PSS SHA-384", "RSA-PSS SHA-512",
		"RSASSA-PKCS1-v1_5 SHA-256", "RSASSA-PKCS1-v1_5 SHA-384", "RSASSA-PKCS1-v1_5 SHA-512"}
	slices.Sort(classes)
	if !slices.Equal(classes, want) {
		t.Errorf("self-test classes %v, want %v", classes, want)
	}
}

// TestX509Request: what WebCrypto may decide, in its terms, and what it
// may not (Go decides), as X509 = ok.
func TestX509Request(t *testing.T) {
	k256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	n384 := elliptic.P384().Params().N
	der := func(r, s *big.Int) []byte {
		b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one, two := big.NewInt(1), big.NewInt(2)
	good := der(one, two)
	r, ok := X509(crypto.SHA384, false, &k384.PublicKey, good)
	if !ok || r.Class != "ECDSA P-384 SHA-384" || r.Curve != "P-384" || len(r.Sig) != 96 || r.Sig[47] != 1 || r.Sig[95] != 2 || len(r.Raw) != 97 || r.Raw[0] != 4 {
		t.Errorf("X509(P-384, r=1 s=2) = %+v, %v", r, ok)
	}
	if r, ok := X509(crypto.SHA256, false, &k256.PublicKey, good); !ok || r.Class != "ECDSA P-256 SHA-256" || len(r.Sig) != 64 {
		t.Errorf("X509(P-256) = %+v, %v", r, ok)
	}
	nm1 := new(big.Int).Sub(n384, one)
	if _, ok := X509(crypto.SHA384, false, &k384.PublicKey, der(nm1, nm1)); !ok {
		t.Error("r = s = n-1 refused")
	}
	nonMinimal := []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02} // r = 0x0001
	for name, sig := range map[string][]byte{
		"r = 0":             der(big.NewInt(0), two),
		"s = n":             der(one, n384),
		"r > n":             der(new(big.Int).Add(n384, one), two),
		"r negative":        der(big.NewInt(-1), two),
		"trailing data":     append(append([]byte(nil), good...), 0),
		"non-minimal r":     nonMinimal,
		"not ASN.1":         []byte("signature"),
		"three integers":    func() []byte { b, _ := asn1.Marshal(struct{ R, S, T *big.Int }{one, two, two}); return b }(),
		"empty":             nil,
		"r wider than n":    der(new(big.Int).Lsh(one, 400), two),
		"an ASN.1 sequence": []byte{0x30, 0x00},
	} {
		if r, ok := X509(crypto.SHA384, false, &k384.PublicKey, sig); ok {
			t.Errorf("%s: handed to WebCrypto: %+v", name, r)
		}
	}
	if _, ok := X509(crypto.SHA512, false, &k521.PublicKey, good); ok {
		t.Error("P-521 handed to WebCrypto (no self-test vouches for it)")
	}
	if _, ok := X509(crypto.SHA1, false, &k256.PublicKey, good); ok {
		t.Error("SHA-1 handed to WebCrypto")
	}

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 256)
	r, ok = X509(crypto.SHA384, true, &rk.PublicKey, sig)
	if !ok || r.Class != "RSA-PSS SHA-384" || r.SaltLength != 48 || !bytes.Equal(r.E, []byte{1, 0, 1}) || !bytes.Equal(r.N, rk.N.Bytes()) {
		t.Errorf("X509(RSA-PSS) = %+v, %v", r, ok)
	}
	if r, ok := X509(crypto.SHA256, false, &rk.PublicKey, sig); !ok || r.Class != "RSASSA-PKCS1-v1_5 SHA-256" || r.SaltLength != 0 {
		t.Errorf("X509(PKCS#1 v1.5) = %+v, %v", r, ok)
	}
	for name, c := range map[string]struct {
		pub *rsa.PublicKey
		sig []byte
	}{
		"signature shorter than the modulus": {&rk.PublicKey, sig[1:]},
		"signature longer than the modulus":  {&rk.PublicKey, append(sig, 0)},
		"exponent 3":                         {&rsa.PublicKey{N: rk.N, E: 3}, sig},
		"even modulus":                       {&rsa.PublicKey{N: new(big.Int).Lsh(one, 2047), E: 65537}, sig},
		"1024-bit key":                       {&rsa.PublicKey{N: new(big.Int).Rsh(rk.N, 1024), E: 65537}, sig[:128]},
	} {
		if r, ok := X509(crypto.SHA256, true, c.pub, c.sig); ok {
			t.Errorf("%s: handed to WebCrypto: %+v", name, r)
		}
	}
	ep, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, ok := X509(crypto.SHA256, false, ep, make([]byte, 64)); ok {
		t.Error("an Ed25519 key through X509's RSA/ECDSA path")
	}
}

// TestEd25519Request: s must be below ℓ, the key's y canonical and not
// that of a point with x = 0.
func TestEd25519Request(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig := ed25519.Sign(priv, []byte("m"))
	if r, ok := Ed25519(pub, sig); !ok || r.Class != "Ed25519" {
		t.Fatalf("Ed25519(a real signature) = %+v, %v", r, ok)
	}
	ell := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 252), mustInt("27742317777372353535851937790883648493"))
	le := func(x *big.Int) []byte {
		b := x.FillBytes(make([]byte, 32))
		slices.Reverse(b)
		return b
	}
	withS := func(s *big.Int) []byte { return append(append([]byte(nil), sig[:32]...), le(s)...) }
	if _, ok := Ed25519(pub, withS(new(big.Int).Sub(ell, big.NewInt(1)))); !ok {
		t.Error("s = ℓ-1 refused")
	}
	for name, s := range map[string]*big.Int{"s = ℓ": ell, "s = ℓ+1": new(big.Int).Add(ell, big.NewInt(1)), "s = 2^255": new(big.Int).Lsh(big.NewInt(1), 255)} {
		if s.BitLen() > 256 {
			continue
		}
		if _, ok := Ed25519(pub, withS(new(big.Int).Mod(s, new(big.Int).Lsh(big.NewInt(1), 256)))); ok {
			t.Errorf("%s handed to WebCrypto", name)
		}
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	for name, y := range map[string]*big.Int{"y = p": p, "y = p+1": new(big.Int).Add(p, big.NewInt(1)), "y = 1": big.NewInt(1), "y = p-1": new(big.Int).Sub(p, big.NewInt(1))} {
		for _, sign := range []byte{0, 0x80} {
			k := le(y)
			k[31] |= sign
			if _, ok := Ed25519(k, sig); ok {
				t.Errorf("key with %s (sign %x) handed to WebCrypto", name, sign)
			}
		}
	}
	if _, ok := Ed25519(le(new(big.Int).Sub(p, big.NewInt(2))), sig); !ok {
		t.Error("a key with y = p-2 (canonical) refused")
	}
	if _, ok := Ed25519(pub[:31], sig); ok {
		t.Error("a 31-byte key handed to WebCrypto")
	}
	if _, ok := Ed25519(pub, sig[:63]); ok {
		t.Error("a 63-byte signature handed to WebCrypto")
	}
}

func mustInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}

// FuzzECDSAP1363 holds the ASN.1 parse to a second implementation: a
// signature is handed to WebCrypto exactly when it is the DER encoding
// (encoding/asn1's) of two integers in [1, n-1], and then as those two.
func FuzzECDSAP1363(f *testing.F) {
	n := elliptic.P384().Params().N
	for _, s := range [][]byte{{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, {0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x02}, {0x30, 0x00}, {}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		if len(sig) > 256 {
			return
		}
		got, ok := ecdsaP1363(n, sig)
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &rs)
		want := err == nil && len(rest) == 0 && rs.R.Sign() > 0 && rs.S.Sign() > 0 && rs.R.Cmp(n) < 0 && rs.S.Cmp(n) < 0
		if want {
			// encoding/asn1 is lax where DER is not (it accepts
			// some non-minimal lengths): the input must be the DER.
			canon, _ := asn1.Marshal(rs)
			want = bytes.Equal(canon, sig)
		}
		if ok != want {
			t.Fatalf("ecdsaP1363(%x) = %v, encoding/asn1 says %v", sig, ok, want)
		}
		if ok && (new(big.Int).SetBytes(got[:48]).Cmp(rs.R) != 0 || new(big.Int).SetBytes(got[48:]).Cmp(rs.S) != 0) {
			t.Fatalf("ecdsaP1363(%x) = %x, not r‖s", sig, got)
		}
	})
}

// FuzzEd25519Request holds the byte comparisons to math/big's.
func FuzzEd25519Request(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 64))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 64))
	ell := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 252), mustInt("27742317777372353535851937790883648493"))
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	f.Fuzz(func(t *testing.T, pub, sig []byte) {
		if len(pub) > 64 || len(sig) > 128 {
			return
		}
		_, ok := Ed25519(pub, sig)
		leInt := func(b []byte) *big.Int {
			c := slices.Clone(b)
			slices.Reverse(c)
			return new(big.Int).SetBytes(c)
		}
		want := len(pub) == 32 && len(sig) == 64 && leInt(sig[32:]).Cmp(ell) < 0
		if want {
			y := slices.Clone(pub)
			y[31] &= 0x7f
			yi := leInt(y)
			want = yi.Cmp(p) < 0 && yi.Cmp(big.NewInt(1)) != 0 && yi.Cmp(new(big.Int).Sub(p, big.NewInt(1))) != 0
		}
		if ok != want {
			t.Fatalf("Ed25519(%x, %x) = %v, math/big says %v", pub, sig, ok, want)
		}
	})
}
