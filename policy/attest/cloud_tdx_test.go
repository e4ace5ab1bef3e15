package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	mtdx "github.com/attestlog/attestlog/policy/measure/tdx"
)

// Real cloud samples in testdata/cloud (README.md there says where each
// came from and what an independent verifier found in it). The expected
// values below are those facts, not our own output.

const cloudDir = "testdata/cloud"

func readCloud(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cloudDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tdxBundle(t testing.TB, quote string) *evidence.Bundle {
	b, k, err := evidence.Parse(readCloud(t, quote))
	if err != nil {
		t.Fatalf("Parse(%s) = %v", quote, err)
	}
	if k != evidence.KindTDXQuote && k != evidence.KindTDXQuoteV5 {
		t.Fatalf("Parse(%s) kind = %s", quote, k)
	}
	return b
}

// stapled reads a tdx-collateral directory into a bundle's collateral.
func stapled(t testing.TB, dir string) *evidence.TDXCollateral {
	r := func(name string) []byte { return readCloud(t, filepath.Join(dir, name)) }
	return &evidence.TDXCollateral{
		TCBInfo: r(CollateralTCBInfo), TCBInfoIssuerChain: string(r(CollateralTCBInfoChain)),
		QEIdentity: r(CollateralQEIdentity), QEIdentityIssuerChain: string(r(CollateralQEIdentityChain)),
		PCKCRL: r(CollateralPCKCRL), PCKCRLIssuerChain: string(r(CollateralPCKCRLChain)), RootCACRL: r(CollateralRootCRL),
	}
}

var (
	tdxV5Time      = time.Date(2026, 2, 25, 0, 0, 0, 0, time.UTC)
	intelCollTime  = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	gcpTDXTime     = time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	cloudTestNonce = bytes.Repeat([]byte{7}, 32)
)

// TestCloudTDXv5: a TDX 1.5 quote v5 verifies with its collateral and
// shows the v5 fields; each broken copy is refused with its own reason.
func TestCloudTDXv5(t *testing.T) {
	coll := "tdx-collateral " + filepath.Join(cloudDir, "tdx-v5/collateral")
	v := mustVerifier(t, coll, WithTime(tdxV5Time))
	b := tdxBundle(t, "tdx-v5/quote_v5_sample.dat")
	r := v.Inspect(b)
	want(t, r, check.EvidenceFormat, true, "quote v5 (TDX 1.5 body)")
	want(t, r, check.HardwareChain, true, "Intel SGX Root CA (embedded) at 2026-02-25")
	want(t, r, check.TCBStatus, true, "platform 2")
	want(t, r, check.ReportConsistency, true, "")
	if !r.OK() {
		t.Fatalf("v5 sample does not verify:\n%s", r.Checks)
	}
	// Offsets from Intel's TDX DCAP Quoting Library API: a 48-byte header,
	// the 6-byte body descriptor, then the TDX 1.5 body (the v4 body,
	// TEE_TCB_SVN2 at 584, MRSERVICETD at 600).
	body := b.Quote[54:]
	for name, pair := range map[string][2]string{
		"mrtd":         {r.TDX.MRTD, hex.EncodeToString(body[136:184])},
		"rtmr0":        {r.TDX.RTMR0, hex.EncodeToString(body[328:376])},
		"tee_tcb_svn":  {r.TDX.TEETCBSVN, hex.EncodeToString(body[0:16])},
		"tee_tcb_svn2": {r.TDX.TEETCBSVN2, hex.EncodeToString(body[584:600])},
		"mrservicetd":  {r.TDX.MRServiceTD, hex.EncodeToString(body[600:648])},
	} {
		if pair[0] != pair[1] {
			t.Errorf("v5 %s = %s, want %s", name, pair[0], pair[1])
		}
	}
	if !strings.HasPrefix(r.TDX.MRTD, "7348651a34b2d2d3") || !strings.HasPrefix(r.TDX.TEETCBSVN, "0b010400") || r.TDX.Version != 5 || r.TDX.BodyType != 3 {
		t.Errorf("v5 facts: MRTD %s TEE_TCB_SVN %s version %d body type %d; want 7348651a34b2d2d3…, 0b010400…, 5, 3", r.TDX.MRTD, r.TDX.TEETCBSVN, r.TDX.Version, r.TDX.BodyType)
	}
	if r.TDX.TCB == nil || r.TDX.TCB.Status != "UpToDate" || r.TDX.TCB.EvaluationDataNumber != 18 {
		t.Errorf("v5 TCB = %+v, want UpToDate, evaluation 18", r.TDX.TCB)
	}

	t.Run("flipped byte", func(t *testing.T) {
		b := tdxBundle(t, "tdx-v5/quote_v5_sample.dat")
		b.Quote[54+136] ^= 1
		want(t, v.Inspect(b), check.HardwareChain, false, "")
	})
	t.Run("flipped TEE_TCB_SVN2", func(t *testing.T) {
		b := tdxBundle(t, "tdx-v5/quote_v5_sample.dat")
		b.Quote[54+584] ^= 1 // signed, though no check reads it
		want(t, v.Inspect(b), check.HardwareChain, false, "")
	})
	t.Run("wrong nonce", func(t *testing.T) {
		want(t, v.Verify(b, cloudTestNonce), check.NonceBinding, false, "does not bind")
	})
	t.Run("stale collateral", func(t *testing.T) {
		r := mustVerifier(t, coll, WithTime(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))).Inspect(b)
		want(t, r, check.HardwareChain, true, "")
		want(t, r, check.TCBStatus, false, "expired")
	})
	t.Run("missing collateral piece", func(t *testing.T) {
		dir := t.TempDir()
		for _, f := range []string{CollateralTCBInfo, CollateralTCBInfoChain, CollateralQEIdentityChain} {
			os.WriteFile(filepath.Join(dir, f), readCloud(t, "tdx-v5/collateral/"+f), 0o644)
		}
		if _, err := New(mustPolicy(t, "tdx-collateral "+dir)); err == nil || !strings.Contains(err.Error(), "missing qeidentity.json") {
			t.Errorf("New without qeidentity.json = %v", err)
		}
	})
	t.Run("status required, no collateral", func(t *testing.T) {
		r := mustVerifier(t, "tdx-allow-tcb-status SWHardeningNeeded", WithTime(tdxV5Time)).Inspect(b)
		want(t, r, check.TCBStatus, false, "no Intel collateral")
	})
	t.Run("no collateral", func(t *testing.T) {
		want(t, mustVerifier(t, "", WithTime(tdxV5Time)).Inspect(b), check.TCBStatus, false, "no Intel collateral, so no TCB status")
	})
}

// TestCloudIntelCollateral: Intel's collateral with an uppercase FMSPC
// passes, from the directory and stapled; stapled collateral is verified
// as the directory's is.
func TestCloudIntelCollateral(t *testing.T) {
	dir := filepath.Join(cloudDir, "intel-collateral/collateral")
	b := tdxBundle(t, "intel-collateral/tdx_quote")
	check1 := func(t *testing.T, r *Result) {
		t.Helper()
		want(t, r, check.TCBStatus, true, "platform 2024-03-13 UpToDate; TDX module TDX_01 isvsvn 6 UpToDate; QE isvsvn 6 UpToDate; PCK and root CA CRLs checked")
		if !r.OK() {
			t.Errorf("does not verify:\n%s", r.Checks)
		}
		if r.TDX.FMSPC != "b0c06f000000" || !strings.HasPrefix(r.TDX.MRTD, "91eb2b44d141d4ec") || !strings.HasPrefix(r.TDX.TEETCBSVN, "06010300") || r.TDX.TCB.EvaluationDataNumber != 17 {
			t.Errorf("facts: FMSPC %s MRTD %s TEE_TCB_SVN %s TCB %+v", r.TDX.FMSPC, r.TDX.MRTD, r.TDX.TEETCBSVN, r.TDX.TCB)
		}
	}
	t.Run("directory", func(t *testing.T) {
		check1(t, mustVerifier(t, "tdx-collateral "+dir, WithTime(intelCollTime)).Inspect(b))
	})
	stapledBundle := func(t *testing.T) *evidence.Bundle {
		s := *b
		s.TDXCollateral = stapled(t, "intel-collateral/collateral")
		return &s
	}
	v := mustVerifier(t, "tdx-allow-tcb-status UpToDate", WithTime(intelCollTime))
	t.Run("stapled", func(t *testing.T) {
		s := stapledBundle(t)
		raw, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err = evidence.ParseBundle(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := v.Inspect(s)
		check1(t, r)
		if r.TDX.TCB.Source != "stapled" {
			t.Errorf("source = %q", r.TDX.TCB.Source)
		}
	})
	t.Run("stapled and directory", func(t *testing.T) {
		r := mustVerifier(t, "tdx-collateral "+dir, WithTime(intelCollTime)).Inspect(stapledBundle(t))
		want(t, r, check.TCBStatus, true, "the stapled collateral (TCB evaluation 17)")
		want(t, r, check.TCBStatus, true, "; and "+dir)
	})
	t.Run("quote byte flipped", func(t *testing.T) {
		s := stapledBundle(t)
		s.Quote = bytes.Clone(s.Quote)
		s.Quote[48+136] ^= 1
		r := v.Inspect(s)
		want(t, r, check.HardwareChain, false, "")
		want(t, r, check.TCBStatus, false, "")
	})
	t.Run("stapled, one signed byte flipped", func(t *testing.T) {
		s := stapledBundle(t)
		s.TDXCollateral.TCBInfo = bytes.Replace(s.TDXCollateral.TCBInfo, []byte(`"tcbEvaluationDataNumber":17`), []byte(`"tcbEvaluationDataNumber":18`), 1)
		want(t, v.Inspect(s), check.TCBStatus, false, "tcbInfo response verification failed")
	})
	t.Run("stapled, stale", func(t *testing.T) {
		r := mustVerifier(t, "", WithTime(time.Date(2025, 7, 25, 0, 0, 0, 0, time.UTC))).Inspect(stapledBundle(t))
		want(t, r, check.TCBStatus, false, "expired")
	})
	t.Run("stapled, missing CRL", func(t *testing.T) {
		s := stapledBundle(t)
		s.TDXCollateral.RootCACRL = nil
		if err := s.Check(); err == nil || !strings.Contains(err.Error(), "tdx_collateral.root_ca_crl is 0 bytes") {
			t.Errorf("Check = %v", err)
		}
	})
	t.Run("stapled, another platform's collateral", func(t *testing.T) {
		s := stapledBundle(t)
		s.TDXCollateral.TCBInfo = readCloud(t, "tdx-v5/collateral/tcbinfo.json")
		// go-tdx-guest compares the FMSPC before attestlog looks at the
		// TCB info's issue date (2026, after the verification time).
		r := mustVerifier(t, "", WithTime(intelCollTime)).Inspect(s)
		want(t, r, check.TCBStatus, false, `FMSPC from PCK Certificate("b0c06f000000") is not equal to FMSPC value from Intel PCS's reported TDX TCB info("90c06f000000")`)
	})
	t.Run("stapled, issued after the verification time", func(t *testing.T) {
		r := mustVerifier(t, "", WithTime(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))).Inspect(stapledBundle(t))
		want(t, r, check.TCBStatus, false, "was issued at 2025-06-19")
	})
}

// TestCloudGCPTDX: Google Cloud's TDX quote with its CC event log; the log
// must replay to the quote's RTMRs.
func TestCloudGCPTDX(t *testing.T) {
	// Google's sample comes with no Intel collateral.
	v := mustVerifier(t, "tdx-tcb-status unchecked", WithTime(gcpTDXTime))
	b := tdxBundle(t, "gcp-tdx/cos-113-tdx-quote.dat")
	b.EventLog = readCloud(t, "gcp-tdx/ccel_data.trimmed")
	r := v.Inspect(b)
	want(t, r, check.EvidenceFormat, true, "quote v4")
	want(t, r, check.EventLog, true, "replay to the quote's RTMR0-3")
	if !r.OK() {
		t.Fatalf("GCP sample does not verify:\n%s", r.Checks)
	}
	if !strings.HasPrefix(r.TDX.MRTD, "dae67181d3d65e07") || !strings.HasPrefix(r.TDX.TEETCBSVN, "04010700") || r.TDX.FMSPC != "00806f050000" {
		t.Errorf("facts: MRTD %s TEE_TCB_SVN %s FMSPC %s", r.TDX.MRTD, r.TDX.TEETCBSVN, r.TDX.FMSPC)
	}
	if r.TDX.EventLog == nil || r.TDX.EventLog.Events != 43 {
		t.Errorf("event log summary = %+v", r.TDX.EventLog)
	}
	// REPORT_DATA is the nonce go-tdx-guest's test asked for; the ACPI
	// CCEL table (ACPI 6.5, 5.2.34) names a TDX log area (CC type 2) of
	// LAML bytes, which the trimmed log fits.
	if nonce := readCloud(t, "gcp-tdx/nonce.dat"); r.TDX.ReportData != hex.EncodeToString(nonce) {
		t.Errorf("REPORT_DATA %s, want nonce.dat", r.TDX.ReportData)
	}
	table := readCloud(t, "gcp-tdx/ccel_table.dat")
	if laml := binary.LittleEndian.Uint64(table[40:48]); string(table[:4]) != "CCEL" || table[36] != 2 || laml < uint64(len(b.EventLog)) {
		t.Errorf("CCEL table: signature %q, CC type %d, LAML %d", table[:4], table[36], laml)
	}
	t.Run("whole CCEL area", func(t *testing.T) {
		// The log area with its 0xff padding, as the guest reads it.
		s := *b
		s.EventLog = append(bytes.Clone(b.EventLog), bytes.Repeat([]byte{0xff}, 4096)...)
		want(t, v.Inspect(&s), check.EventLog, true, "")
	})
	t.Run("event altered", func(t *testing.T) {
		s := *b
		s.EventLog = bytes.Clone(b.EventLog)
		// Flip a byte of the last RTMR2 event's logged digest.
		rep, err := mtdx.ReplayEventLog(b.EventLog)
		if err != nil {
			t.Fatal(err)
		}
		var last mtdx.Event
		for _, e := range rep.Events {
			if e.RTMR() == 2 {
				last = e
			}
		}
		i := bytes.LastIndex(s.EventLog, last.Digest)
		if i < 0 {
			t.Fatal("digest not found in the log")
		}
		s.EventLog[i] ^= 1
		r := v.Inspect(&s)
		want(t, r, check.EventLog, false, "RTMR2: replayed")
		if r.OK() {
			t.Error("an altered event log verified")
		}
	})
	t.Run("event dropped", func(t *testing.T) {
		s := *b
		s.EventLog = b.EventLog[:len(b.EventLog)/2]
		want(t, v.Inspect(&s), check.EventLog, false, "")
	})
	t.Run("another TD's quote", func(t *testing.T) {
		s := *tdxBundle(t, "intel-collateral/tdx_quote")
		s.EventLog = b.EventLog
		want(t, mustVerifier(t, "", WithTime(intelCollTime)).Inspect(&s), check.EventLog, false, "is not this TD's boot: event log does not replay to the reported RTMRs")
	})
	t.Run("garbage", func(t *testing.T) {
		s := *b
		s.EventLog = []byte("not an event log")
		want(t, v.Inspect(&s), check.EventLog, false, "malformed")
	})
	t.Run("wrong nonce", func(t *testing.T) {
		want(t, v.Verify(b, cloudTestNonce), check.NonceBinding, false, "does not bind")
	})
	t.Run("flipped RTMR byte", func(t *testing.T) {
		s := *b
		s.Quote = bytes.Clone(b.Quote)
		s.Quote[48+328] ^= 1 // RTMR0, signed
		r := v.Inspect(&s)
		want(t, r, check.HardwareChain, false, "")
		want(t, r, check.EventLog, false, "RTMR0: replayed")
	})
}
