package evidence

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	sevtd "github.com/google/go-sev-guest/verify/testdata"

	"github.com/attestlog/attestlog/channel/keyset"
)

func testKeySet(t *testing.T, gpuDigest []byte) []byte {
	t.Helper()
	pk, _ := hex.DecodeString("31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155")
	ks := &keyset.KeySet{
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		TLSSPKIHash: sha256.Sum256([]byte("spki")),
		HPKE:        []keyset.KeyConfig{{ID: 1, KEM: keyset.KEMX25519, PublicKey: pk, Symmetric: []keyset.Symmetric{{KDF: 1, AEAD: 1}}}},
		GPUDigest:   gpuDigest,
	}
	b, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeySetReportData: the spec's formula, computed here from the bytes
// it names.
func TestKeySetReportData(t *testing.T) {
	ks := testKeySet(t, nil)
	nonce := bytes.Repeat([]byte{7}, 32)
	for _, c := range []struct {
		nonce []byte
		in    []byte
	}{
		{nil, append([]byte("attestlog-keyset-v1\x00\x00"), ks...)},
		{nonce, append(append([]byte("attestlog-keyset-v1\x00\x20"), nonce...), ks...)},
	} {
		got, err := KeySetReportData(ks, c.nonce)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha512.Sum512(c.in); got != want {
			t.Errorf("KeySetReportData(nonce %x) = %x, want %x", c.nonce, got, want)
		}
		// Apart from the per-request binding with the same bytes.
		if len(c.nonce) > 0 {
			if v1, _ := ReportData(c.nonce, ks); v1 == got {
				t.Error("KeySetReportData equals ReportData for the same nonce and bytes")
			}
		}
	}
	if _, err := KeySetReportData(ks, []byte{1, 2, 3}); !errors.Is(err, ErrNonce) {
		t.Errorf("a 3-byte nonce = %v, want ErrNonce", err)
	}
}

func TestKeySetBundleCheck(t *testing.T) {
	gpus := []GPU{{Arch: "HOPPER", Report: []byte("report"), CertChain: "chain"}}
	d := GPUDigest(gpus)
	base := func() *Bundle {
		return &Bundle{Format: FormatKeySet, Platform: SEVSNP, Report: bytes.Clone(sevtd.AttestationBytes[:SNPReportSize]), KeySet: testKeySet(t, nil)}
	}
	if err := base().Check(); err != nil {
		t.Fatalf("a v3 bundle: %v", err)
	}
	withGPUs := base()
	withGPUs.KeySet, withGPUs.GPUs = testKeySet(t, d[:]), gpus
	if err := withGPUs.Check(); err != nil {
		t.Fatalf("a v3 bundle with its GPUs: %v", err)
	}
	for name, mut := range map[string]func(b *Bundle){
		"no key set":              func(b *Bundle) { b.KeySet = nil },
		"key set that is not one": func(b *Bundle) { b.KeySet = []byte("garbage") },
		"channel key beside it":   func(b *Bundle) { b.ChannelKey = []byte("k") },
		"key set in v1":           func(b *Bundle) { b.Format = Format },
		"GPUs the key set lacks":  func(b *Bundle) { b.GPUs = gpus },
		"GPUs of another digest":  func(b *Bundle) { b.KeySet, b.GPUs = testKeySet(t, make([]byte, 48)), gpus },
		"a digest and no GPUs":    func(b *Bundle) { b.KeySet = testKeySet(t, d[:]) },
		"another GPU than digested": func(b *Bundle) {
			b.KeySet, b.GPUs = testKeySet(t, d[:]), []GPU{{Arch: "HOPPER", Report: []byte("other"), CertChain: "chain"}}
		},
	} {
		b := base()
		mut(b)
		if err := b.Check(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v, want ErrMalformed", name, err)
		}
	}
	// GPU i of a v3 bundle answers the key set's seed, whatever nonce a
	// client sent.
	ks, _ := keyset.Parse(withGPUs.KeySet)
	seed, _ := ks.GPUNonceSeed()
	if withGPUs.GPUNonce([]byte("client nonce 0123456789"), 0) != GPUNonce(seed[:], 0) {
		t.Error("a v3 bundle's GPU nonce is not derived from its key set")
	}
}
