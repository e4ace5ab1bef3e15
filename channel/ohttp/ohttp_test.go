package ohttp

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/channel/keyset"
)

// RFC 9458 Appendix A, as the RFC prints it.
const (
	vecSecretKey  = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a"
	vecKeyConfig  = "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003"
	vecRequest    = "00034745540568747470730b6578616d706c652e636f6d012f"
	vecInfo       = "6d6573736167652f626874747020726571756573740001002000010001"
	vecEncRequest = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525"
	vecResponse   = "0140c8"
	vecRespNonce  = "c789e7151fcba46158ca84b04464910d"
	vecEncResp    = "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorGateway is the gateway of RFC 9458 Appendix A.
func vectorGateway(t testing.TB) (*Gateway, keyset.KeyConfig) {
	t.Helper()
	cs, err := keyset.ParseKeyConfigs(append([]byte{0, byte(len(vecKeyConfig) / 2)}, unhex(t, vecKeyConfig)...))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(unhex(t, vecSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(Key{Config: cs[0], Private: sk})
	if err != nil {
		t.Fatal(err)
	}
	return g, cs[0]
}

func TestRFC9458Vector(t *testing.T) {
	g, cfg := vectorGateway(t)
	if got := keyset.MarshalKeyConfig(cfg); !bytes.Equal(got, unhex(t, vecKeyConfig)) {
		t.Errorf("key configuration = %x, want %s", got, vecKeyConfig)
	}
	su := Suite{KEM: keyset.KEMX25519, KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}
	if got := info(labelRequest, header(cfg.ID, su)); !bytes.Equal(got, unhex(t, vecInfo)) {
		t.Errorf("info = %x, want %s", got, vecInfo)
	}
	pt, gr, err := g.DecapsulateRequest(unhex(t, vecEncRequest))
	if err != nil {
		t.Fatalf("DecapsulateRequest(the RFC's request): %v", err)
	}
	if !bytes.Equal(pt, unhex(t, vecRequest)) {
		t.Errorf("request = %x, want %s", pt, vecRequest)
	}
	resp, err := gr.sealResponse(unhex(t, vecResponse), unhex(t, vecRespNonce))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp, unhex(t, vecEncResp)) {
		t.Errorf("encapsulated response = %x, want the RFC's %s", resp, vecEncResp)
	}
	// Our client to the RFC's key configuration: the gateway opens it
	// and the client opens the gateway's response.
	c, s, err := Choose([]keyset.KeyConfig{cfg})
	if err != nil || s != su {
		t.Fatalf("Choose = %v, %v; want %+v", s, err, su)
	}
	enc, cr, err := EncapsulateRequest(c, s, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc[:7], unhex(t, vecEncRequest)[:7]) {
		t.Errorf("request header = %x, want %x", enc[:7], unhex(t, vecEncRequest)[:7])
	}
	pt, gr, err = g.DecapsulateRequest(enc)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("DecapsulateRequest(ours) = %q, %v", pt, err)
	}
	out, _ := gr.SealResponse([]byte("world"))
	if got, err := cr.OpenResponse(out); err != nil || string(got) != "world" {
		t.Errorf("OpenResponse = %q, %v", got, err)
	}
}

// newKeys makes a gateway with both KEMs, as the enclave agent does.
func newKeys(t testing.TB) (*Gateway, []keyset.KeyConfig) {
	var keys []Key
	for i, kem := range []hpke.KEM{hpke.MLKEM768X25519(), hpke.DHKEM(ecdh.X25519())} {
		sk, err := kem.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, Key{Private: sk, Config: keyset.KeyConfig{ID: uint8(i), KEM: kem.ID(), PublicKey: sk.PublicKey().Bytes(),
			Symmetric: []keyset.Symmetric{{KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}, {KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADChaCha20Poly1305}}}})
	}
	g, err := NewGateway(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return g, g.Configs()
}

func TestSuitesAndAttacks(t *testing.T) {
	g, cs := newKeys(t)
	other, ocs := newKeys(t)
	for _, kem := range []uint16{keyset.KEMMLKEM768X25519, keyset.KEMX25519} {
		for _, aead := range []uint16{keyset.AEADAES128GCM, keyset.AEADChaCha20Poly1305} {
			cfg, _, err := ChooseKEM(cs, kem)
			if err != nil {
				t.Fatal(err)
			}
			s := Suite{KEM: kem, KDF: keyset.KDFHKDFSHA256, AEAD: aead}
			enc, cr, err := EncapsulateRequest(cfg, s, []byte("secret question"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(enc, []byte("secret")) {
				t.Fatal("the plaintext is in the encapsulated request")
			}
			pt, gr, err := g.DecapsulateRequest(enc)
			if err != nil || string(pt) != "secret question" {
				t.Fatalf("%+v: DecapsulateRequest = %q, %v", s, pt, err)
			}
			resp, _ := gr.SealResponse([]byte("answer"))
			if got, err := cr.OpenResponse(resp); err != nil || string(got) != "answer" {
				t.Errorf("%+v: OpenResponse = %q, %v", s, got, err)
			}
			// Every flipped bit of the request or response is detected.
			for i := 0; i < len(enc); i += 1 + len(enc)/64 {
				bad := bytes.Clone(enc)
				bad[i] ^= 1
				if _, _, err := g.DecapsulateRequest(bad); err == nil {
					t.Errorf("%+v: a request with byte %d flipped decapsulated", s, i)
				}
			}
			for i := range resp {
				bad := bytes.Clone(resp)
				bad[i] ^= 0x80
				if _, err := cr.OpenResponse(bad); !errors.Is(err, ErrDecrypt) {
					t.Errorf("%+v: a response with byte %d flipped: %v, want ErrDecrypt", s, i, err)
				}
			}
			// Another gateway's key (another enclave, or a relay's own)
			// cannot open it.
			if _, _, err := other.DecapsulateRequest(enc); err == nil {
				t.Errorf("%+v: another gateway decapsulated the request", s)
			}
		}
	}
	// A response sealed for one request does not open for another.
	cfg, s, _ := Choose(cs)
	_, cr1, _ := EncapsulateRequest(cfg, s, []byte("a"))
	enc2, _, _ := EncapsulateRequest(cfg, s, []byte("b"))
	_, gr2, _ := g.DecapsulateRequest(enc2)
	resp2, _ := gr2.SealResponse([]byte("for b"))
	if _, err := cr1.OpenResponse(resp2); !errors.Is(err, ErrDecrypt) {
		t.Errorf("a response to another request opened: %v", err)
	}
	// Unknown key identifiers and algorithms not offered are refused.
	ocfg, os, _ := Choose(ocs)
	ocfg.ID = 9
	enc, _, _ := EncapsulateRequest(ocfg, os, []byte("x"))
	if _, _, err := g.DecapsulateRequest(enc); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("key 9: %v, want ErrUnknownKey", err)
	}
	if _, _, err := EncapsulateRequest(cfg, Suite{KEM: cfg.KEM, KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES256GCM}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AES-256-GCM, not offered: %v, want ErrUnsupported", err)
	}
}

func TestChunked(t *testing.T) {
	g, cs := newKeys(t)
	for _, kem := range []uint16{keyset.KEMMLKEM768X25519, keyset.KEMX25519} {
		cfg, s, _ := ChooseKEM(cs, kem)
		var req bytes.Buffer
		cr, err := NewChunkedRequest(cfg, s, &req)
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48000 bytes: 3 chunks
		cr.Write(body)
		cr.Close()
		rr, err := g.OpenChunkedRequest(bytes.NewReader(req.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rr)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("chunked request: %d bytes, %v; want %d", len(got), err, len(body))
		}
		var resp bytes.Buffer
		rw, err := rr.Response(&resp)
		if err != nil {
			t.Fatal(err)
		}
		events := []string{"data: one\n\n", "data: two\n\n", strings.Repeat("x", 20000)}
		for _, e := range events {
			rw.Write([]byte(e))
		}
		rw.Close()
		full := resp.Bytes()
		got, err = io.ReadAll(cr.OpenResponse(bytes.NewReader(full)))
		if err != nil || string(got) != strings.Join(events, "") {
			t.Fatalf("chunked response: %q, %v", got[:min(len(got), 40)], err)
		}
		// Truncation anywhere is detected, never a short answer.
		for i := 0; i < len(full)-1; i += 1 + len(full)/200 {
			_, err := io.ReadAll(cr.OpenResponse(bytes.NewReader(full[:i])))
			if err == nil {
				t.Fatalf("a response cut at %d of %d read without error", i, len(full))
			}
		}
		// Cut exactly before the final chunk (its zero length and the
		// 16-byte tag of its empty plaintext): every chunk before it
		// opens, and still the answer is refused as cut, not short.
		if _, err := io.ReadAll(cr.OpenResponse(bytes.NewReader(full[:len(full)-17]))); !errors.Is(err, ErrTruncated) {
			t.Errorf("a response cut before its final chunk: %v, want ErrTruncated", err)
		}
		// Reordered chunks: swap the two first sealed chunks.
		n := responseNonceSize(s)
		c1 := 1 + int(full[n]) // chunk 1: varint(len) ‖ ct; small chunks have 1-byte lengths
		l1 := int(full[n])
		l2 := int(full[n+1+l1])
		if l1 < 64 && l2 < 64 {
			swapped := append(append(append(bytes.Clone(full[:n]), full[n+c1:n+c1+1+l2]...), full[n:n+c1]...), full[n+c1+1+l2:]...)
			if _, err := io.ReadAll(cr.OpenResponse(bytes.NewReader(swapped))); !errors.Is(err, ErrDecrypt) {
				t.Errorf("reordered chunks: %v, want ErrDecrypt", err)
			}
		} else {
			t.Fatalf("chunk lengths %d, %d", l1, l2)
		}
	}
}

func FuzzGateway(f *testing.F) {
	g, cfg := vectorGateway(f)
	f.Add(unhex(f, vecEncRequest))
	var buf bytes.Buffer
	cr, _ := NewChunkedRequest(cfg, Suite{KEM: cfg.KEM, KDF: 1, AEAD: 1}, &buf)
	cr.Write([]byte("hello"))
	cr.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		g.DecapsulateRequest(b)
		if rr, err := g.OpenChunkedRequest(bytes.NewReader(b)); err == nil {
			io.Copy(io.Discard, rr)
		}
	})
}

func FuzzClientResponse(f *testing.F) {
	g, cfg := vectorGateway(f)
	s := Suite{KEM: cfg.KEM, KDF: 1, AEAD: 1}
	var buf bytes.Buffer
	cr, _ := NewChunkedRequest(cfg, s, &buf)
	cr.Close()
	rr, _ := g.OpenChunkedRequest(bytes.NewReader(buf.Bytes()))
	io.Copy(io.Discard, rr)
	var resp bytes.Buffer
	rw, _ := rr.Response(&resp)
	rw.Write([]byte("answer"))
	rw.Close()
	f.Add(resp.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		got, err := io.ReadAll(cr.OpenResponse(bytes.NewReader(b)))
		// Only the gateway's chunks open (their length prefixes may be
		// re-encoded: the draft leaves them unauthenticated).
		if err == nil && string(got) != "answer" {
			t.Fatalf("a response other than the gateway's opened: %q", got)
		}
	})
}

// TestSealer: a Sealer made once seals every request with an
// encapsulation of its own (requests stay unlinkable: no HPKE context is
// shared), each opens at the gateway and its answer opens only with its
// own context; a suite the configuration does not offer is refused when
// the Sealer is made.
func TestSealer(t *testing.T) {
	g, cs := newKeys(t)
	for _, kem := range []uint16{keyset.KEMMLKEM768X25519, keyset.KEMX25519} {
		cfg, s, _ := ChooseKEM(cs, kem)
		k, err := NewSealer(cfg, s)
		if err != nil {
			t.Fatal(err)
		}
		if k.Config().ID != cfg.ID || k.Suite() != s {
			t.Errorf("Sealer = key %d %+v, want %d %+v", k.Config().ID, k.Suite(), cfg.ID, s)
		}
		seen := map[string]bool{}
		var ctxs []*ChunkedRequest
		var answers [][]byte
		for i := range 3 {
			var req bytes.Buffer
			cr, err := k.NewChunkedRequest(&req)
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("request %d", i)
			cr.Write([]byte(msg))
			cr.Close()
			encLen := headerSize + encSize(kem)
			if enc := string(req.Bytes()[:encLen]); seen[enc] {
				t.Fatalf("%s: request %d reuses an earlier request's encapsulation", keyset.KEMName(kem), i)
			} else {
				seen[enc] = true
			}
			rr, err := g.OpenChunkedRequest(bytes.NewReader(req.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(rr); err != nil || string(got) != msg {
				t.Fatalf("request %d opened as %q, %v", i, got, err)
			}
			var resp bytes.Buffer
			rw, _ := rr.Response(&resp)
			rw.Write([]byte("answer " + msg))
			rw.Close()
			ctxs, answers = append(ctxs, cr), append(answers, resp.Bytes())
		}
		if got, err := io.ReadAll(ctxs[1].OpenResponse(bytes.NewReader(answers[1]))); err != nil || string(got) != "answer request 1" {
			t.Errorf("answer 1 with its own context: %q, %v", got, err)
		}
		if _, err := io.ReadAll(ctxs[0].OpenResponse(bytes.NewReader(answers[1]))); !errors.Is(err, ErrDecrypt) {
			t.Errorf("answer 1 with request 0's context: %v, want ErrDecrypt", err)
		}
	}
	cfg, _, _ := ChooseKEM(cs, keyset.KEMX25519)
	if _, err := NewSealer(cfg, Suite{KEM: cfg.KEM, KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES256GCM}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AES-256-GCM, not offered: %v, want ErrUnsupported", err)
	}
	if _, err := NewSealer(cfg, Suite{KEM: keyset.KEMMLKEM768X25519, KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("another KEM than the configuration's: %v, want ErrUnsupported", err)
	}
}
