package gpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy"
)

// ca is a small P-384 hierarchy: root → device → leaf, and a responder
// key the root may delegate to.
type ca struct {
	root, device, leaf *x509.Certificate
	rootKey            *ecdsa.PrivateKey
	now                time.Time
}

func newCA(t testing.TB) *ca {
	t.Helper()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	c := &ca{now: now}
	c.rootKey, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	c.root = mustCert(t, rt, rt, &c.rootKey.PublicKey, c.rootKey)
	dk, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	c.device = mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test BROM"}, NotBefore: rt.NotBefore, NotAfter: rt.NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, c.root, &dk.PublicKey, c.rootKey)
	lk, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	c.leaf = mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "test FMC LF"}, NotBefore: rt.NotBefore, NotAfter: rt.NotAfter}, c.device, &lk.PublicKey, dk)
	return c
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *ca) path() []*x509.Certificate { return []*x509.Certificate{c.leaf, c.device, c.root} }

// response is an OCSP response about the device certificate, edited by
// edit, signed by the root unless edit says otherwise.
func (c *ca) response(t testing.TB, edit func(r *ocsp.Response) (signer *ecdsa.PrivateKey)) []byte {
	t.Helper()
	r := ocsp.Response{Status: ocsp.Good, SerialNumber: c.device.SerialNumber, ThisUpdate: c.now.Add(-time.Hour), NextUpdate: c.now.Add(23 * time.Hour)}
	key := c.rootKey
	if edit != nil {
		if k := edit(&r); k != nil {
			key = k
		}
	}
	der, err := ocsp.CreateResponse(c.root, c.root, r, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// responder is a certificate the root issued for key, with the given
// extended key usages and validity.
func (c *ca) responder(t testing.TB, key *ecdsa.PrivateKey, eku []x509.ExtKeyUsage, notAfter time.Time) *x509.Certificate {
	return mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "test responder"}, NotBefore: c.now.Add(-48 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: eku, KeyUsage: x509.KeyUsageDigitalSignature}, c.root, &key.PublicKey, c.rootKey)
}

func TestOCSPStatus(t *testing.T) {
	c := newCA(t)
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	delegate, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name     string
		staples  [][]byte
		required bool
		ok       bool   // the check passes
		shown    bool   // there is a check
		reason   string // in the reason
	}{
		{"good", [][]byte{c.response(t, nil)}, true, true, true, "test BROM good"},
		{"good, beside garbage and another certificate's", [][]byte{[]byte("garbage"), c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey { r.SerialNumber = big.NewInt(8); return nil }), c.response(t, nil)}, true, true, true, "test BROM good"},
		{"revoked", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, c.now.Add(-2*time.Hour), ocsp.KeyCompromise
			return nil
		})}, false, false, true, "revoked as of"},
		{"unknown, required", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey { r.Status = ocsp.Unknown; return nil })}, true, false, true, "status unknown"},
		{"expired", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.ThisUpdate, r.NextUpdate = c.now.Add(-48*time.Hour), c.now.Add(-time.Hour)
			return nil
		})}, false, false, true, "expired at"},
		{"from the future", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.ThisUpdate, r.NextUpdate = c.now.Add(time.Hour), c.now.Add(48*time.Hour)
			return nil
		})}, false, false, true, "in the future"},
		{"no nextUpdate", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey { r.NextUpdate = time.Time{}; return nil })}, false, false, true, "no nextUpdate"},
		{"signed by another key", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey { return other })}, false, false, true, "does not verify"},
		{"delegated to an OCSP responder", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.Certificate = c.responder(t, delegate, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, c.now.Add(time.Hour))
			return delegate
		})}, true, true, true, "good"},
		{"signed by a certificate the issuer did not make a responder", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.Certificate = c.responder(t, delegate, nil, c.now.Add(time.Hour))
			return delegate
		})}, false, false, true, "did not make an OCSP responder"},
		{"signed by an expired responder", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey {
			r.Certificate = c.responder(t, delegate, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, c.now.Add(-time.Hour))
			return delegate
		})}, false, false, true, "not valid at"},
		{"none stapled, required", nil, true, false, true, "has no good OCSP status"},
		{"only another certificate's, required", [][]byte{c.response(t, func(r *ocsp.Response) *ecdsa.PrivateKey { r.SerialNumber = big.NewInt(8); return nil })}, true, false, true, "serial 7"},
		{"none stapled, optional", nil, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, shown := statusOf("GPU 0: device chain", c.path(), 1, tc.staples, c.now, tc.required)
			if shown != tc.shown || got.OK != tc.ok || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("statusOf = %+v (shown %v), want ok %v shown %v with %q", got, shown, tc.ok, tc.shown, tc.reason)
			}
		})
	}
	// A path with nothing between leaf and root gives OCSP nothing to
	// say: that is no evidence, and ocsp=required refuses it.
	if got, shown := statusOf("x", []*x509.Certificate{c.leaf, c.root}, 1, nil, c.now, true); !shown || got.OK {
		t.Errorf("a two-certificate device path under ocsp=required = %+v", got)
	}
}

// TestOCSPRevokedGPU: the demo root's responder says a GPU's device
// certificate is revoked, and that GPU fails, whatever else is right.
func TestOCSPRevokedGPU(t *testing.T) {
	enc, err := fakeenclave.NewSNP(make([]byte, 48), fakeenclave.WithGPUs(2), fakeenclave.WithGPURevoked(1))
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)
	ev, err := enc.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	for _, required := range []bool{true, false} {
		v := NewVerifier(policy.GPUPolicy{Required: true, Vendor: "nvidia", Count: 2, RequireOCSP: required}, enc.GPURootPEM())
		cs := v.Verify(ev, nonce)
		f := cs.Failed()
		if len(f) != 1 || f[0].Name != CheckOCSP || !strings.Contains(f[0].Reason, "GPU 1: device chain: attestlog demo GH100 GPU 1 BROM is revoked") {
			t.Errorf("required=%v: failed %v", required, f)
		}
	}
}

// FuzzOCSPStatus: any staples, in any order, give a check without a
// panic, and only a verifying, good, current response passes.
func FuzzOCSPStatus(f *testing.F) {
	c := newCA(f)
	good := c.response(f, nil)
	f.Add(good, []byte{})
	f.Add([]byte("garbage"), good)
	f.Add(good[:len(good)/2], []byte{0x30, 0x03, 0x0a, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a)+len(b) > 1<<16 {
			return
		}
		got, shown := statusOf("GPU 0: device chain", c.path(), 1, [][]byte{a, b}, c.now, true)
		if !shown {
			t.Fatal("no check under ocsp=required")
		}
		if got.OK {
			// Passing needs a response the root signed; the fuzzer has no
			// root key, so only the seed's own bytes can pass.
			if string(a) != string(good) && string(b) != string(good) {
				t.Fatalf("passed without the good response: %+v", got)
			}
		}
	})
}
