package gpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy"
)

func TestOlderThan(t *testing.T) {
	for _, tc := range []struct {
		have, min string
		older     bool
	}{
		{"550.144.03", "550.144", false},
		{"550.90.07", "550.144", true},
		{"535.86.09", "550", true},
		{"590.12", "550.163.01", false},
		{"550", "550.0.0", false},
	} {
		if got := olderThan(tc.have, tc.min); got != tc.older {
			t.Errorf("olderThan(%s, %s) = %v", tc.have, tc.min, got)
		}
	}
}

// BenchmarkGPUChecks is the GPU part of the cold client decision (for 1
// and 8 GPUs: parse, chain to the root, report signature, derived nonce,
// stapled OCSP) next to the bare P-384 chain, signature and OCSP
// verification of the same reports, in the same run:
//
//	go test ./policy/gpu -run '^$' -bench GPUChecks -benchtime 2s
func BenchmarkGPUChecks(b *testing.B) {
	for _, n := range []int{1, 8} {
		enc, err := fakeenclave.NewSNP(make([]byte, 48), fakeenclave.WithGPUs(n))
		if err != nil {
			b.Fatal(err)
		}
		nonce := make([]byte, 32)
		ev, err := enc.Evidence(context.Background(), nonce)
		if err != nil {
			b.Fatal(err)
		}
		v := NewVerifier(policy.GPUPolicy{Required: true, Vendor: "nvidia", Count: n, RequireOCSP: true}, enc.GPURootPEM())
		if cs := v.Verify(ev, nonce); !cs.OK() {
			b.Fatalf("%s", cs)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(enc.GPURootPEM())
		// The same cryptographic work, bare: the chain (leaf, device
		// certificate) to the root, the report signature and the stapled
		// OCSP response's signature.
		bare := func() {
			for _, g := range ev.GPUs {
				rest := []byte(g.CertChain)
				var certs []*x509.Certificate
				for {
					var blk *pem.Block
					if blk, rest = pem.Decode(rest); blk == nil {
						break
					}
					c, err := x509.ParseCertificate(blk.Bytes)
					if err != nil {
						b.Fatal(err)
					}
					certs = append(certs, c)
				}
				leaf, inter := certs[0], x509.NewCertPool()
				inter.AddCert(certs[1])
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					b.Fatal(err)
				}
				sig := g.Report[len(g.Report)-96:]
				h := sha512.Sum384(g.Report[:len(g.Report)-96])
				if !ecdsa.Verify(leaf.PublicKey.(*ecdsa.PublicKey), h[:], new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])) {
					b.Fatal("bare signature check failed")
				}
				if r, err := ocsp.ParseResponseForCert(g.OCSP[0], certs[1], certs[2]); err != nil || r.Status != ocsp.Good {
					b.Fatal("bare OCSP check failed", err)
				}
			}
		}
		b.Run(fmt.Sprintf("gpus=%d/attestlog", n), func(b *testing.B) {
			for b.Loop() {
				v.Verify(ev, nonce)
			}
		})
		b.Run(fmt.Sprintf("gpus=%d/bare-p384", n), func(b *testing.B) {
			for b.Loop() {
				bare()
			}
		})
		b.Run(fmt.Sprintf("gpus=%d/ratio", n), func(b *testing.B) {
			var to, tb time.Duration
			for b.Loop() {
				t0 := time.Now()
				v.Verify(ev, nonce)
				t1 := time.Now()
				bare()
				to, tb = to+t1.Sub(t0), tb+time.Since(t1)
			}
			b.ReportMetric(float64(to)/float64(tb), "x-bare")
		})
	}
}
