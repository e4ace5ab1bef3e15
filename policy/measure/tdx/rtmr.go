package tdx

import (
	"crypto/sha512"

	"github.com/google/go-eventlog/tcg"
)

// A BootEvent is one event that TDVF, or the Linux EFI stub it starts,
// extends into an RTMR, as it would appear in the guest's CC event log
// (compare with the events 'measure tdx-replay' prints).
type BootEvent struct {
	RTMR        int    // 0 to 2
	Type        uint32 // TCG event type
	Description string // what was measured, for people
	Digest      [DigestSize]byte
}

// TypeName returns the TCG name of the event's type.
func (e BootEvent) TypeName() string { return tcg.EventType(e.Type).String() }

// FoldRTMRs extends, from zero, each event's digest into its RTMR, in order.
func FoldRTMRs(events []BootEvent) [NumRTMRs][DigestSize]byte {
	var r [NumRTMRs][DigestSize]byte
	for _, e := range events {
		r[e.RTMR] = Extend(r[e.RTMR], e.Digest)
	}
	return r
}

// The fixed events TDVF logs (TCG PC Client Platform Firmware Profile,
// "Measuring Boot Events"): EV_EFI_ACTION strings, hashed without a NUL, and
// the separator, a 4-byte zero.
const (
	ActionCallingEFIApplication = "Calling EFI Application from Boot Option"
	ActionExitBootServices      = "Exit Boot Services Invocation"
	ActionExitBootServicesOK    = "Exit Boot Services Returned with Success"
)

var separator = []byte{0, 0, 0, 0}

func event(rtmr int, typ tcg.EventType, desc string, data []byte) BootEvent {
	return BootEvent{RTMR: rtmr, Type: uint32(typ), Description: desc, Digest: sha512.Sum384(data)}
}

func actionEvent(rtmr int, s string) BootEvent {
	return event(rtmr, tcg.EFIAction, s, []byte(s))
}

func separatorEvent(rtmr int) BootEvent {
	return event(rtmr, tcg.Separator, "separator", separator)
}
