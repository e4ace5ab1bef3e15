package attest

import (
	"encoding/hex"
	"fmt"

	"github.com/attestlog/attestlog/policy/check"
	mtdx "github.com/attestlog/attestlog/policy/measure/tdx"
)

// EventLogSummary says what a stapled CC event log holds once it replayed
// to the quote's RTMRs.
type EventLogSummary struct {
	// Events is the number of events, EV_NO_ACTION included.
	Events int `json:"events"`
	// PerRTMR is how many events extend RTMR0 to RTMR3.
	PerRTMR [mtdx.NumRTMRs]int `json:"per_rtmr"`
}

// eventLogCheck replays the stapled event log and compares the result
// with the quote's RTMRs: the log describes the TD's boot only if every
// register matches. It fails closed on a log that does not parse, has no
// SHA-384 digests or replays to other values.
func (v *Verifier) eventLogCheck(f *TDXFields, raw []byte) check.Check {
	var rep *mtdx.Replay
	err := safely("event log", func() error {
		var err error
		rep, err = mtdx.ReplayEventLog(raw)
		return err
	})
	if err != nil {
		return check.Fail(check.EventLog, "the stapled event log is malformed (%v): staple the CCEL log area the TD's ACPI CCEL table points to, or none", err)
	}
	var reported [][]byte
	for _, h := range []string{f.RTMR0, f.RTMR1, f.RTMR2, f.RTMR3} {
		b, err := hex.DecodeString(h)
		if err != nil {
			return check.Fail(check.EventLog, "internal error: RTMR %q", h)
		}
		reported = append(reported, b)
	}
	if err := rep.Check(reported); err != nil {
		return check.Fail(check.EventLog, "the stapled event log is not this TD's boot: %v", err)
	}
	s := &EventLogSummary{Events: len(rep.Events)}
	for _, e := range rep.Events {
		if n := e.RTMR(); n >= 0 {
			s.PerRTMR[n]++
		}
	}
	f.EventLog = s
	return check.Pass(check.EventLog, "the %d events of the stapled CC event log replay to the quote's RTMR0-3 (%d, %d, %d and %d events)",
		s.Events, s.PerRTMR[0], s.PerRTMR[1], s.PerRTMR[2], s.PerRTMR[3])
}

// String renders a summary on one line, for inspect.
func (s EventLogSummary) String() string {
	return fmt.Sprintf("%d events replay to RTMR0-3 (%d, %d, %d, %d)", s.Events, s.PerRTMR[0], s.PerRTMR[1], s.PerRTMR[2], s.PerRTMR[3])
}
