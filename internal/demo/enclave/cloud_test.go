package enclave

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	tdxabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tverify "github.com/google/go-tdx-guest/verify"
)

// TestGCPEventLogReplaysWithGoEventlog: the demo TD's event log, replayed
// by go-eventlog itself (not attestlog's replay), ends in the RTMRs its
// quote carries.
func TestGCPEventLogReplaysWithGoEventlog(t *testing.T) {
	e, err := NewGCPTDX(bytes.Repeat([]byte{6}, 48), GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Evidence(context.Background(), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdxabi.QuoteToProto(b.Quote)
	if err != nil {
		t.Fatal(err)
	}
	var bank register.RTMRBank
	for i, r := range q.(*tpb.QuoteV4).GetTdQuoteBody().GetRtmrs() {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: r})
	}
	events, err := tcg.ParseAndReplay(b.EventLog, bank.MRs(), tcg.ParseOpts{})
	if err != nil || len(events) != 4 {
		t.Fatalf("go-eventlog: %d events, %v", len(events), err)
	}
	bank.RTMRs[2].Digest = bytes.Repeat([]byte{0}, 48)
	if _, err := tcg.ParseAndReplay(b.EventLog, bank.MRs(), tcg.ParseOpts{}); err == nil {
		t.Error("go-eventlog replayed the log to a zeroed RTMR2")
	}
}

// TestTDX15CollateralWithGoTDXGuest: the demo TDX 1.5 quote (v5) and its
// collateral verify with go-tdx-guest alone, served by its own test
// getter: the collateral has Intel's format and signatures (under the
// test root).
func TestTDX15CollateralWithGoTDXGuest(t *testing.T) {
	e, err := NewTDX15(bytes.Repeat([]byte{5}, 48), TDX15{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c, err := e.TDXCollateral(now.Add(-time.Hour), UpToDate)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.EvidenceWithReportData([64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdxabi.QuoteToProto(b.Quote)
	if err != nil {
		t.Fatal(err)
	}
	if v5, ok := q.(*tpb.QuoteV5); !ok || v5.GetTdQuoteBodyDescriptor().GetTdQuoteBodyType() != 3 {
		t.Fatalf("quote is %T, want a v5 quote with a TDX 1.5 body", q)
	}
	chain := func(s string) []string { return []string{url.QueryEscape(s)} }
	getter := &tdxtest.Getter{Responses: map[string]tdxtest.HTTPResponse{
		pcs.TcbInfoURL(demoFMSPC):          {Header: map[string][]string{pcs.TcbInfoIssuerChainPhrase: chain(c.TCBInfoIssuerChain)}, Body: c.TCBInfo},
		pcs.QeIdentityURL():                {Header: map[string][]string{pcs.SgxQeIdentityIssuerChainPhrase: chain(c.QEIdentityIssuerChain)}, Body: c.QEIdentity},
		pcs.PckCrlURL("platform"):          {Header: map[string][]string{pcs.SgxPckCrlIssuerChainPhrase: chain(c.PCKCRLIssuerChain)}, Body: c.PCKCRL},
		e.tdxRoot.CRLDistributionPoints[0]: {Body: c.RootCACRL},
	}}
	roots := x509.NewCertPool()
	roots.AddCert(e.tdxRoot)
	ts := &tverify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now}
	if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: roots, Now: ts, Getter: getter, GetCollateral: true, CheckRevocations: true}); err != nil {
		t.Fatalf("go-tdx-guest: %v", err)
	}
}
