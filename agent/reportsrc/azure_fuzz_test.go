package reportsrc

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// FuzzIMDSAnswers feeds the Azure source's readers of IMDS answers — the
// host's, so untrusted — with THIM's VCEK answer and the TD quote answer
// of demo Azure VMs as seeds: nothing panics, answers past MaxIMDSAnswer
// are not read (imdsCall cuts them), and whatever is accepted is what
// the evidence needs: a VCEK with the demo VCEK's public key (only it
// signs the report), a TD quote whose REPORT_DATA and MRTD are the
// TDREPORT's.
func FuzzIMDSAnswers(f *testing.F) {
	m := bytes.Repeat([]byte{0x5a}, 48)
	snp, err := enclave.NewAzureSNP(m)
	if err != nil {
		f.Fatal(err)
	}
	var rd [64]byte
	rand.Read(rd[:])
	b, err := snp.AzureEvidence(make([]byte, 32), rd)
	if err != nil {
		f.Fatal(err)
	}
	snpHCL, err := vtpm.ParseHCLReport(b.VTPM.HCLReport)
	if err != nil {
		f.Fatal(err)
	}
	vcek, err := x509.ParseCertificate(b.VCEK)
	if err != nil {
		f.Fatal(err)
	}
	thim, _ := json.Marshal(map[string]string{"vcekCert": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.VCEK})), "certificateChain": "…"})

	tdx, err := enclave.NewAzureTDX(m)
	if err != nil {
		f.Fatal(err)
	}
	ak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := tdx.AzureHCLReport(&ak.PublicKey, rd)
	if err != nil {
		f.Fatal(err)
	}
	tdxHCL, err := vtpm.ParseHCLReport(raw)
	if err != nil {
		f.Fatal(err)
	}
	q, err := tdx.AzureTDQuote(tdxHCL.Hardware[:vtpm.TDReportSize])
	if err != nil {
		f.Fatal(err)
	}
	quote, _ := json.Marshal(map[string]string{"quote": base64.RawURLEncoding.EncodeToString(q)})

	// The seeds are accepted: the fuzzer starts from answers that work.
	if _, err := vcekOf(thim, snpHCL.Hardware); err != nil {
		f.Fatalf("the demo VM's THIM answer: %v", err)
	}
	if _, err := tdQuoteOf(quote, tdxHCL); err != nil {
		f.Fatalf("the demo VM's TD quote answer: %v", err)
	}
	f.Add(thim, false)
	f.Add(quote, true)
	f.Add([]byte(`{"vcekCert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}`), false)
	f.Add([]byte(`{"quote":"AAAA"}`), true)
	f.Fuzz(func(t *testing.T, body []byte, td bool) {
		if len(body) > MaxIMDSAnswer {
			return
		}
		if td {
			got, err := tdQuoteOf(body, tdxHCL)
			if err == nil && !bytes.Contains(got, tdxHCL.ReportData()) {
				t.Fatalf("accepted a TD quote without the TDREPORT's REPORT_DATA")
			}
			return
		}
		der, err := vcekOf(body, snpHCL.Hardware)
		if err != nil {
			return
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("accepted a VCEK that does not parse: %v", err)
		}
		if !vcek.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
			t.Fatalf("accepted a VCEK of another key: %s", c.Subject)
		}
	})
}
