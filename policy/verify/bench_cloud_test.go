package verify

import (
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tverify "github.com/google/go-tdx-guest/verify"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

const v5Sample = "../attest/testdata/cloud/tdx-v5/"

// BenchmarkVerifyTDXv5Sample is the client decision on the real TDX 1.5
// quote v5 (policy/attest/testdata/cloud/tdx-v5) with its Intel
// collateral, as of 2026-02-25, next to go-tdx-guest's verification of
// the same quote with the same collateral (served by go-tdx-guest's own
// test getter), in the same run. The quote's REPORT_DATA is its
// producer's, not attestlog's binding, so the decision fails the nonce
// check and only it (checked once before timing); everything else runs.
//
//	go test ./policy/verify -run '^$' -bench TDXv5Sample -benchtime 2s
func BenchmarkVerifyTDXv5Sample(b *testing.B) {
	t := &testing.T{}
	at := time.Date(2026, 2, 25, 0, 0, 0, 0, time.UTC)
	f := newFixture(t)
	read := func(name string) []byte {
		bs, err := os.ReadFile(filepath.Join(v5Sample, name))
		if err != nil {
			b.Fatal(err)
		}
		return bs
	}
	ev, _, err := evidence.Parse(read("quote_v5_sample.dat"))
	if err != nil {
		b.Fatal(err)
	}
	coll, _ := filepath.Abs(filepath.Join(v5Sample, "collateral"))
	v := f.policy(t, "tdx-collateral "+coll+"\n", WithTime(at))
	mrtd := v.hw.Inspect(ev).TDX.MRTD
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "td.img", Digest: statement.Digest{SHA384: strings.Repeat("ab", 48)}}},
		&statement.Release{Version: "1.5.0", Time: at, Platform: statement.PlatformTDX,
			Measurements: statement.Measurements{TDX: &statement.TDXMeasurements{MRTD: mrtd}},
			Source:       statement.Source{Repo: "https://example.com/td", Commit: strings.Repeat("d", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}}})
	if err != nil {
		b.Fatal(err)
	}
	env, _ := statement.Sign(payload, f.operator)
	ev.Proof = string(f.log.proof(f.log.add(env), 2).Marshal())
	n := nonce()
	in := Input{Evidence: ev, Nonce: n}
	vd := v.Verify(in)
	if got := failedNames(vd); !slices.Equal(got, []string{check.NonceBinding}) {
		b.Fatalf("failed checks %v, want only the nonce binding:\n%s", got, vd.Checks)
	}
	chain := func(name string) []string { return []string{url.QueryEscape(string(read("collateral/" + name)))} }
	getter := &tdxtest.Getter{Responses: map[string]tdxtest.HTTPResponse{
		pcs.TcbInfoURL("90c06f000000"): {Header: map[string][]string{pcs.TcbInfoIssuerChainPhrase: chain("tcbinfo.issuer-chain")}, Body: read("collateral/tcbinfo.json")},
		pcs.QeIdentityURL():            {Header: map[string][]string{pcs.SgxQeIdentityIssuerChainPhrase: chain("qeidentity.issuer-chain")}, Body: read("collateral/qeidentity.json")},
	}}
	ts := &tverify.TimeSet{PckCertChain: at, TcbInfo: at, QeIdentity: at, PckCrl: at, RootCaCrl: at}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read("../../../intel_sgx_root_ca.pem"))
	bare := func() {
		q, err := tabi.QuoteToProto(ev.Quote)
		if err != nil {
			b.Fatal(err)
		}
		if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: roots, Now: ts, Getter: getter, GetCollateral: true}); err != nil {
			b.Fatal(err)
		}
	}
	bare()
	b.Run("attestlog-full-decision", func(b *testing.B) {
		for b.Loop() {
			v.Verify(in)
		}
	})
	b.Run("go-tdx-guest-verify-with-collateral", func(b *testing.B) {
		for b.Loop() {
			bare()
		}
	})
	b.Run("ratio-cold", func(b *testing.B) {
		interleave(b, func() { v.cache.reset(); v.Verify(in) }, bare)
	})
}

func failedNames(vd *Verdict) []string {
	var out []string
	for _, c := range vd.Checks.Failed() {
		out = append(out, c.Name)
	}
	return out
}
