package attest

import (
	"bytes"
	"context"
	"os"
	"testing"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// The parsers this file's checks feed with hostile bytes: go-tdx-guest's
// collateral parsing (TCB info, QE identity, CRLs) behind a stapled
// collateral, the CC event log parser, and the protobuf endorsement.
// Inputs are bounded as a bundle bounds them.

// FuzzStapledCollateral: stapled TCB info, QE identity and PCK CRL of any
// shape must not take the verifier down, and a changed signed TCB info
// never passes.
func FuzzStapledCollateral(f *testing.F) {
	base := stapled(f, "intel-collateral/collateral")
	f.Add(base.TCBInfo[:64], base.QEIdentity[:64], base.PCKCRL[:32])
	f.Add([]byte(`{"tcbInfo":{},"signature":"00"}`), []byte(`{"enclaveIdentity":{"id":"TD_QE"},"signature":""}`), []byte{0x30, 0})
	quote := tdxBundle(f, "intel-collateral/tdx_quote")
	v, err := New(mustPolicy(f, "tdx-allow-tcb-status SWHardeningNeeded"), WithTime(intelCollTime))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tcbInfo, qeID, pckCRL []byte) {
		if len(tcbInfo) > evidence.MaxCollateralItemSize || len(qeID) > evidence.MaxCollateralItemSize || len(pckCRL) > evidence.MaxCollateralItemSize {
			return
		}
		c := *base
		c.TCBInfo, c.QEIdentity, c.PCKCRL = tcbInfo, qeID, pckCRL
		b := *quote
		b.TDXCollateral = &c
		if b.Check() != nil {
			return
		}
		r := v.Inspect(&b)
		got, found := r.Checks.Find(check.TCBStatus)
		if !found {
			t.Fatalf("no TCB status check:\n%s", r.Checks)
		}
		if got.OK && !bytes.Equal(tcbInfo, base.TCBInfo) && !bytes.Contains(tcbInfo, []byte(`"tcbInfo":`)) {
			t.Fatalf("a TCB info without a tcbInfo passed: %s", got.Reason)
		}
	})
}

// FuzzEventLogCheck: any stapled event log either replays to the quote's
// RTMRs or is refused, never a panic.
func FuzzEventLogCheck(f *testing.F) {
	e, err := fakeenclave.NewGCPTDX(measurement(6), fakeenclave.GCPWorkload{Kernel: []byte("k"), Cmdline: "c"})
	if err != nil {
		f.Fatal(err)
	}
	b, err := e.Evidence(context.Background(), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b.EventLog)
	f.Add(b.EventLog[:48])
	v := fakeVerifier(f, e, "")
	r := v.Inspect(b)
	if c, _ := r.Checks.Find(check.EventLog); !c.OK {
		f.Fatalf("seed does not replay:\n%s", r.Checks)
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		if len(log) == 0 || len(log) > evidence.MaxEventLogSize {
			return
		}
		fields := *r.TDX
		c := v.eventLogCheck(&fields, log)
		if c.Name != check.EventLog || (c.OK && fields.EventLog == nil) {
			t.Fatalf("check %+v, summary %v", c, fields.EventLog)
		}
	})
}

// FuzzEndorsement: any stapled endorsement bytes are refused unless
// Google's (here the demo root's) signature holds over them.
func FuzzEndorsement(f *testing.F) {
	e, err := fakeenclave.NewGCPSNP(measurement(8))
	if err != nil {
		f.Fatal(err)
	}
	b, err := e.Evidence(context.Background(), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b.FirmwareEndorsement[:40])
	f.Add([]byte{0x0a, 0x02, 0x38, 0x01, 0x12, 0x00})
	dir := f.TempDir()
	if err := os.WriteFile(dir+"/gce.pem", e.EndorsementRootPEM(), 0o644); err != nil {
		f.Fatal(err)
	}
	v := fakeVerifier(f, e, "trust-root gce-tcb "+dir+"/gce.pem")
	r := v.Inspect(b)
	if !r.OK() {
		f.Fatalf("seed does not verify:\n%s", r.Checks)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > evidence.MaxEndorsementSize {
			return
		}
		res := &Result{SNP: r.SNP}
		c := v.endorsementCheck(res, raw, v.now())
		if c.OK && !bytes.Contains(raw, b.FirmwareEndorsement[2:200]) {
			t.Fatalf("an endorsement without the signed golden measurement passed: %s", c.Reason)
		}
	})
}
