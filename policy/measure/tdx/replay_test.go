package tdx

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

// RTMR0..2 of the COS 113 TDX event log, from go-eventlog v0.0.2's
// ccel/replay_test.go (TestReplayAndExtract), where they come with the log.
var cosRTMRs = []string{
	"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
	"f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
	"4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replayCOS replays testdata/ccel_cos113_tdx.bin, a real TDVF event log
// (COS 113 on TDX), and returns the replay and the log.
func replayCOS(t *testing.T) (*Replay, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/ccel_cos113_tdx.bin")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReplayEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	return r, raw
}

func TestReplayCOS(t *testing.T) {
	r, raw := replayCOS(t)
	var reported [][]byte
	for i, s := range cosRTMRs {
		reported = append(reported, unhex(t, s))
		if got := hex.EncodeToString(r.RTMRs[i][:]); got != s {
			t.Errorf("replayed RTMR%d = %s, want %s", i, got, s)
		}
	}
	if err := r.Check(reported); err != nil {
		t.Errorf("Check(go-eventlog's RTMRs): %v", err)
	}
	reported[1] = make([]byte, DigestSize)
	if err := r.Check(reported); !errors.Is(err, ErrNotReplayed) || !strings.Contains(err.Error(), "RTMR1") {
		t.Errorf("Check(wrong RTMR1) = %v, want ErrNotReplayed naming RTMR1", err)
	}

	// The log as OVMF writes it: "Calling EFI Application from Boot
	// Option" in RTMR1, UEFI variables in RTMR0.
	var sawAction, sawSecureBoot bool
	for _, e := range r.Events {
		if e.Description() == "Calling EFI Application from Boot Option" && e.RTMR() == 1 {
			sawAction = true
		}
		if e.Description() == "SecureBoot" && e.RTMR() == 0 {
			sawSecureBoot = true
		}
	}
	if !sawAction || !sawSecureBoot {
		t.Errorf("events lack the EFI action (%v) or the SecureBoot variable (%v)", sawAction, sawSecureBoot)
	}

	// Padding, as in /sys/firmware/acpi/tables/data/CCEL.
	padded := append(bytes.Clone(raw), bytes.Repeat([]byte{0xff}, 4096)...)
	r2, err := ReplayEventLog(padded)
	if err != nil || r2.RTMRs != r.RTMRs {
		t.Errorf("ReplayEventLog(padded) = %v; want the same RTMRs", err)
	}
}

func TestExtend(t *testing.T) {
	// Written from the definition: RTMR' = SHA-384(RTMR || digest).
	var zero, d [DigestSize]byte
	for i := range d {
		d[i] = byte(i)
	}
	want := sha512.Sum384(append(make([]byte, DigestSize), d[:]...))
	if got := Extend(zero, d); got != want {
		t.Errorf("Extend(0, d) = %x, want %x", got, want)
	}
}

func TestParseQuoteMeasurements(t *testing.T) {
	raw, err := os.ReadFile("testdata/quote_spr_e4.dat")
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuoteMeasurements(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.MRTD) != DigestSize || len(q.RTMRs) != NumRTMRs {
		t.Errorf("quote: MRTD %d bytes, %d RTMRs", len(q.MRTD), len(q.RTMRs))
	}
	// The TD report body of a v4 quote starts at byte 48 (header), MRTD at
	// offset 136 of the body and RTMR0 at 328 (DCAP quote v4 layout).
	if !bytes.Equal(q.MRTD, raw[48+136:48+184]) || !bytes.Equal(q.RTMRs[0], raw[48+328:48+376]) {
		t.Errorf("quote MRTD/RTMR0 not read from the v4 layout's offsets")
	}
	if _, err := ParseQuoteMeasurements(raw[:100]); err == nil {
		t.Errorf("ParseQuoteMeasurements(truncated) succeeded")
	}
}

func FuzzReplayEventLog(f *testing.F) {
	raw, err := os.ReadFile("testdata/ccel_cos113_tdx.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw[:2048])
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ReplayEventLog(b); err == nil {
			for _, e := range r.Events {
				_ = e.Description()
			}
		}
	})
}
