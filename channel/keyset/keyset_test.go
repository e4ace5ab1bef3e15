package keyset

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// rfc9458Config is the key configuration of RFC 9458 Appendix A, byte for
// byte as the RFC prints it: key id 1, DHKEM(X25519, HKDF-SHA256), the
// public key of private key 3c168975…, and two symmetric pairs
// (HKDF-SHA256 with AES-128-GCM, and with ChaCha20Poly1305).
const rfc9458Config = "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003"

// katHex is docs/spec/keyset.md's worked example, laid out field by field by hand
// (not by this package's encoder).
var katHex = strings.Join([]string{
	"01",               // version
	"000000006955b900", // not_before 2026-01-01T00:00:00Z
	"0000000069570a80", // not_after  2026-01-02T00:00:00Z
	"62aed42d260df8870dc87e8b30529806591bb2a26852d2443ca98386fda5c90d", // tls_spki_sha256
	"002f",        // hpke_key_configs: 47 bytes
	"002d",        // the first (and only) configuration: 45 bytes
	rfc9458Config, // RFC 9458 Appendix A
	"30",          // gpu_digest: 48 bytes
	strings.Repeat("ab", 48),
}, "")

func katKeySet(t *testing.T) *KeySet {
	t.Helper()
	pk, _ := hex.DecodeString("31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155")
	return &KeySet{
		NotBefore:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		TLSSPKIHash: sha256.Sum256([]byte("attestlog key set example")),
		HPKE: []KeyConfig{{ID: 1, KEM: KEMX25519, PublicKey: pk,
			Symmetric: []Symmetric{{KDFHKDFSHA256, AEADAES128GCM}, {KDFHKDFSHA256, AEADChaCha20Poly1305}}}},
		GPUDigest: bytes.Repeat([]byte{0xab}, 48),
	}
}

func TestKnownAnswer(t *testing.T) {
	cfg := MarshalKeyConfig(katKeySet(t).HPKE[0])
	if got := hex.EncodeToString(cfg); got != rfc9458Config {
		t.Fatalf("MarshalKeyConfig(RFC 9458 Appendix A) = %s, want %s", got, rfc9458Config)
	}
	b, err := katKeySet(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != katHex {
		t.Fatalf("Marshal = %s\nwant      %s", got, katHex)
	}
	want, _ := hex.DecodeString(katHex)
	k, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	exp := katKeySet(t)
	if !k.NotBefore.Equal(exp.NotBefore) || !k.NotAfter.Equal(exp.NotAfter) || k.TLSSPKIHash != exp.TLSSPKIHash ||
		len(k.HPKE) != 1 || k.HPKE[0].ID != 1 || k.HPKE[0].KEM != KEMX25519 || !bytes.Equal(k.HPKE[0].PublicKey, exp.HPKE[0].PublicKey) ||
		len(k.HPKE[0].Symmetric) != 2 || k.HPKE[0].Symmetric[1] != (Symmetric{1, 3}) || !bytes.Equal(k.GPUDigest, exp.GPUDigest) {
		t.Fatalf("Parse(KAT) = %+v, want %+v", k, exp)
	}
	// The GPU nonce seed: SHA-256 of the domain and the fields before
	// gpu_digest, computed here from the hand-laid bytes.
	seed, err := k.GPUNonceSeed()
	if err != nil {
		t.Fatal(err)
	}
	if wantSeed := sha256.Sum256(append([]byte("attestlog-keyset-gpu-v1\x00"), want[:len(want)-49]...)); seed != wantSeed {
		t.Fatalf("GPUNonceSeed = %x, want %x", seed, wantSeed)
	}
	// The spec (docs/spec/keyset.md) quotes the same vector.
	readme, err := os.ReadFile("../../docs/spec/keyset.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(readme)), ""), katHex) {
		t.Errorf("docs/spec/keyset.md does not quote the key set's known-answer vector %s", katHex)
	}
}

// TestKeyConfigWorksWithHPKE: a configuration parsed from the RFC's bytes
// seals to a recipient holding the RFC's private key (crypto/hpke, a
// second implementation of the KEM the configuration names).
func TestKeyConfigWorksWithHPKE(t *testing.T) {
	raw, _ := hex.DecodeString("002d" + rfc9458Config)
	cs, err := ParseKeyConfigs(raw)
	if err != nil {
		t.Fatal(err)
	}
	kem, _ := hpke.NewKEM(cs[0].KEM)
	pub, err := kem.NewPublicKey(cs[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	skb, _ := hex.DecodeString("3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a")
	sk, err := kem.NewPrivateKey(skb)
	if err != nil {
		t.Fatal(err)
	}
	kdf, _ := hpke.NewKDF(cs[0].Symmetric[0].KDF)
	aead, _ := hpke.NewAEAD(cs[0].Symmetric[0].AEAD)
	ct, err := hpke.Seal(pub, kdf, aead, []byte("info"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := hpke.Open(sk, kdf, aead, []byte("info"), ct); err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

func TestHybridKeyConfig(t *testing.T) {
	sk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k := katKeySet(t)
	k.HPKE = []KeyConfig{{ID: 0, KEM: KEMMLKEM768X25519, PublicKey: sk.PublicKey().Bytes(), Symmetric: []Symmetric{{KDFHKDFSHA256, AEADAES128GCM}}}, k.HPKE[0]}
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil || len(got.HPKE) != 2 || len(got.HPKE[0].PublicKey) != 1216 {
		t.Fatalf("Parse(hybrid) = %+v, %v", got, err)
	}
	// A hybrid key whose ML-KEM part is not a valid encapsulation key
	// (coefficients not reduced) is refused, not carried.
	bad := *k
	bad.HPKE = []KeyConfig{k.HPKE[0]}
	bad.HPKE[0].PublicKey = bytes.Repeat([]byte{0xff}, 1216)
	if _, err := bad.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Marshal(invalid ML-KEM key) = %v, want ErrMalformed", err)
	}
}

func TestParseRefuses(t *testing.T) {
	kat, _ := hex.DecodeString(katHex)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(kat)) }
	cases := map[string][]byte{
		"empty":                  nil,
		"version 2":              mut(func(b []byte) []byte { b[0] = 2; return b }),
		"not_after before":       mut(func(b []byte) []byte { copy(b[9:17], b[1:9]); return b }),
		"lifetime over 7 days":   mut(func(b []byte) []byte { b[14] = 0xff; return b }),
		"trailing byte":          append(bytes.Clone(kat), 0),
		"truncated":              kat[:len(kat)-1],
		"gpu digest of 47 bytes": append(mut(func(b []byte) []byte { return b[:len(b)-49] }), append([]byte{47}, make([]byte, 47)...)...),
		"unknown KEM":            mut(func(b []byte) []byte { b[55] = 0x21; return b }),
		"unknown AEAD":           mut(func(b []byte) []byte { b[97] = 0x09; return b }),
		"duplicate pair":         mut(func(b []byte) []byte { b[97] = 0x01; return b }),
		"configs overrun":        mut(func(b []byte) []byte { b[50] = 0xff; return b }),
		"symmetric length 0":     mut(func(b []byte) []byte { b[89] = 0; return b }),
	}
	for name, in := range cases {
		if k, err := Parse(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %+v, %v; want ErrMalformed", name, k, err)
		}
	}
	// Two configurations with one key identifier.
	k := katKeySet(t)
	k.HPKE = append(k.HPKE, k.HPKE[0])
	if _, err := k.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal(duplicate key id) = %v, want ErrMalformed", err)
	}
	// Fractions of a second have no encoding.
	k = katKeySet(t)
	k.NotAfter = k.NotAfter.Add(time.Millisecond)
	if _, err := k.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal(not_after with milliseconds) = %v, want ErrMalformed", err)
	}
}

func TestValidAt(t *testing.T) {
	k := katKeySet(t)
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{k.NotBefore, true},
		{k.NotBefore.Add(-time.Minute), true}, // within the skew
		{k.NotBefore.Add(-time.Hour), false},
		{k.NotAfter.Add(-time.Second), true},
		{k.NotAfter, false},
	} {
		err := k.ValidAt(c.at, 5*time.Minute)
		if (err == nil) != c.want || (err != nil && !errors.Is(err, ErrNotValid)) {
			t.Errorf("ValidAt(%s) = %v, want valid=%v", c.at, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	kat, _ := hex.DecodeString(katHex)
	f.Add(kat)
	f.Add(kat[:60])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Canonical: what parses re-encodes to the same bytes.
		out, err := k.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("Parse(%x) re-encodes to %x, %v", in, out, err)
		}
	})
}

func TestCheckServedConfigs(t *testing.T) {
	pk := make([]byte, 32)
	pk[0] = 9 // the X25519 base point: a valid public key
	cfg := KeyConfig{ID: 1, KEM: KEMX25519, PublicKey: pk, Symmetric: []Symmetric{{KDFHKDFSHA256, AEADAES128GCM}}}
	ks := &KeySet{HPKE: []KeyConfig{cfg}}
	good := MarshalKeyConfigs(ks.HPKE)
	if err := ks.CheckServedConfigs(good); err != nil {
		t.Errorf("CheckServedConfigs(the attested configs) = %v", err)
	}
	other := cfg
	other.PublicKey = bytes.Clone(pk)
	other.PublicKey[1] = 1
	for name, served := range map[string][]byte{
		"another key":     MarshalKeyConfigs([]KeyConfig{other}),
		"another id":      MarshalKeyConfigs([]KeyConfig{{ID: 2, KEM: cfg.KEM, PublicKey: pk, Symmetric: cfg.Symmetric}}),
		"an extra config": MarshalKeyConfigs([]KeyConfig{cfg, other}),
		"nothing":         nil,
	} {
		if err := ks.CheckServedConfigs(served); !errors.Is(err, ErrConfigsNotAttested) {
			t.Errorf("CheckServedConfigs(%s) = %v, want ErrConfigsNotAttested", name, err)
		}
	}
	if err := (&KeySet{}).CheckServedConfigs(nil); !errors.Is(err, ErrConfigsNotAttested) {
		t.Errorf("a key set without HPKE keys: %v, want ErrConfigsNotAttested", err)
	}
}
