package attest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tabi "github.com/google/go-tdx-guest/abi"
	tverify "github.com/google/go-tdx-guest/verify"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// moduleSVN names TDX module version 1, so that the module identity's
// level counts too.
var moduleSVN = []byte{5, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func tdx15(t *testing.T) *fakeenclave.Enclave {
	t.Helper()
	e, err := fakeenclave.NewTDX15(measurement(5), fakeenclave.TDX15{MRServiceTD: bytes.Repeat([]byte{0x5e}, 48)}, fakeenclave.WithTEETCBSVN(moduleSVN))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stapledEvidence(t *testing.T, e *fakeenclave.Enclave, st fakeenclave.TCBStatuses, nonce []byte) *evidence.Bundle {
	t.Helper()
	c, err := e.TDXCollateral(time.Now().Add(-time.Hour), st)
	if err != nil {
		t.Fatal(err)
	}
	e.SetTDXCollateral(c)
	b, err := e.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFakeTDX15: the demo's TDX 1.5 quote v5 with stapled collateral
// verifies with no directory, nonce and all.
func TestFakeTDX15(t *testing.T) {
	e := tdx15(t)
	nonce := bytes.Repeat([]byte{3}, 32)
	b := stapledEvidence(t, e, fakeenclave.UpToDate, nonce)
	r := fakeVerifier(t, e, "tdx-allow-tcb-status UpToDate").Verify(b, nonce)
	if !r.OK() {
		t.Fatalf("does not verify:\n%s", r.Checks)
	}
	want(t, r, check.EvidenceFormat, true, "quote v5 (TDX 1.5 body)")
	want(t, r, check.TCBStatus, true, "TDX module TDX_01 isvsvn 5 UpToDate; QE isvsvn 8 UpToDate")
	if r.TDX.MRServiceTD != strings.Repeat("5e", 48) || r.TDX.TEETCBSVN2 != r.TDX.TEETCBSVN {
		t.Errorf("v5 fields: MRSERVICETD %s TEE_TCB_SVN2 %s", r.TDX.MRServiceTD, r.TDX.TEETCBSVN2)
	}
	want(t, fakeVerifier(t, e, "").Verify(b, bytes.Repeat([]byte{4}, 32)), check.NonceBinding, false, "does not bind")
}

// TestTCBStatusPolicy: each status Intel can give is accepted only when
// the policy names it, Revoked never, with the advisories in the reason.
func TestTCBStatusPolicy(t *testing.T) {
	e := tdx15(t)
	nonce := bytes.Repeat([]byte{3}, 32)
	adv := []string{"INTEL-SA-00837", "INTEL-SA-00960"}
	for _, tc := range []struct {
		name   string
		st     fakeenclave.TCBStatuses
		policy string
		ok     bool
		reason string
	}{
		{"up to date", fakeenclave.UpToDate, "", true, "platform "},
		{"sw hardening refused", fakeenclave.TCBStatuses{Platform: "SWHardeningNeeded", QE: "UpToDate", Advisories: adv}, "",
			false, "platform TCB level " /* … */},
		{"sw hardening reason", fakeenclave.TCBStatuses{Platform: "SWHardeningNeeded", QE: "UpToDate", Advisories: adv}, "",
			false, "SWHardeningNeeded, TDX module TDX_01 isvsvn 5 SWHardeningNeeded (advisories INTEL-SA-00837, INTEL-SA-00960); the policy allows only UpToDate"},
		{"sw hardening allowed", fakeenclave.TCBStatuses{Platform: "SWHardeningNeeded", QE: "UpToDate", Advisories: adv}, "tdx-allow-tcb-status SWHardeningNeeded",
			true, "(advisories INTEL-SA-00837, INTEL-SA-00960; allowed by tdx-allow-tcb-status SWHardeningNeeded)"},
		{"configuration needed, other allowed", fakeenclave.TCBStatuses{Platform: "ConfigurationNeeded", QE: "UpToDate", Advisories: adv}, "tdx-allow-tcb-status SWHardeningNeeded",
			false, "the policy allows UpToDate and SWHardeningNeeded"},
		{"configuration and sw hardening allowed", fakeenclave.TCBStatuses{Platform: "ConfigurationAndSWHardeningNeeded", QE: "UpToDate", Advisories: adv}, "tdx-allow-tcb-status ConfigurationAndSWHardeningNeeded",
			true, "ConfigurationAndSWHardeningNeeded"},
		{"QE out of date refused", fakeenclave.TCBStatuses{Platform: "UpToDate", QE: "OutOfDate", Advisories: adv}, "tdx-allow-tcb-status SWHardeningNeeded",
			false, "QE isvsvn 8 OutOfDate"},
		{"QE out of date allowed", fakeenclave.TCBStatuses{Platform: "UpToDate", QE: "OutOfDate", Advisories: adv}, "tdx-allow-tcb-status OutOfDate SWHardeningNeeded",
			true, "QE isvsvn 8 OutOfDate"},
		{"revoked", fakeenclave.TCBStatuses{Platform: "Revoked", QE: "UpToDate", Advisories: adv}, "tdx-allow-tcb-status OutOfDate SWHardeningNeeded ConfigurationNeeded",
			false, "a revoked TCB is never trusted"},
		// go-tdx-guest refuses a status it does not know when it parses
		// the TCB info, before any policy is asked.
		{"unknown status", fakeenclave.TCBStatuses{Platform: "Mystery", QE: "UpToDate"}, "tdx-allow-tcb-status OutOfDate",
			false, `unexpected tcb status found: "Mystery"`},
		// go-tdx-guest stops at the TDX status and never reaches the QE
		// identity: attestlog checks it then.
		{"QE identity mismatch behind a status", fakeenclave.TCBStatuses{Platform: "SWHardeningNeeded", QE: "UpToDate", QEMRSigner: bytes.Repeat([]byte{1}, 32)}, "tdx-allow-tcb-status SWHardeningNeeded",
			false, "QE report MRSIGNER"},
		{"QE identity mismatch", fakeenclave.TCBStatuses{Platform: "UpToDate", QE: "UpToDate", QEMRSigner: bytes.Repeat([]byte{1}, 32)}, "",
			false, "MRSIGNER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeVerifier(t, e, tc.policy).Verify(stapledEvidence(t, e, tc.st, nonce), nonce)
			want(t, r, check.TCBStatus, tc.ok, tc.reason)
			if r.OK() != tc.ok {
				t.Errorf("verdict %v, want %v:\n%s", r.OK(), tc.ok, r.Checks)
			}
		})
	}
	if _, err := policy.Parse([]byte("tdx-allow-tcb-status Revoked")); err == nil || !strings.Contains(err.Error(), "never allowed") {
		t.Errorf("policy naming Revoked: %v", err)
	}
	if _, err := policy.Parse([]byte("tdx-allow-tcb-status Fine")); err == nil || !strings.Contains(err.Error(), "unknown status") {
		t.Errorf("policy naming an unknown status: %v", err)
	}
}

// TestTDXStatusErrorPhrase pins how go-tdx-guest words a TCB status that
// is not UpToDate, which evaluateTCB relies on, for the TDX level and the
// QE level; and that a tampered collateral fails otherwise.
func TestTDXStatusErrorPhrase(t *testing.T) {
	e := tdx15(t)
	pool := fakeVerifier(t, e, "").tdxRoots
	for _, st := range []fakeenclave.TCBStatuses{{Platform: "OutOfDate", QE: "UpToDate"}, {Platform: "UpToDate", QE: "SWHardeningNeeded"}} {
		b := stapledEvidence(t, e, st, bytes.Repeat([]byte{3}, 32))
		q, err := tabi.QuoteToProto(b.Quote)
		if err != nil {
			t.Fatal(err)
		}
		err = tverify.TdxQuote(q, &tverify.Options{TrustedRoots: pool, Now: timeSet(time.Now()), Getter: stapledCollateral(b.TDXCollateral), GetCollateral: true, CheckRevocations: true})
		if err == nil || !strings.Contains(err.Error(), statusErrorPhrase) {
			t.Errorf("go-tdx-guest on %+v: %v, want an error containing %q", st, err, statusErrorPhrase)
		}
	}
	// Without the CRLs' signatures holding, the check fails before status.
	b := stapledEvidence(t, e, fakeenclave.UpToDate, bytes.Repeat([]byte{3}, 32))
	b.TDXCollateral.RootCACRL[len(b.TDXCollateral.RootCACRL)-1] ^= 1
	r := fakeVerifier(t, e, "").Inspect(b)
	want(t, r, check.TCBStatus, false, "the stapled collateral")
}
