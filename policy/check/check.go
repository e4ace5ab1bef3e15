// Package check is the one vocabulary of a verification verdict: a list of
// named checks, each passed or failed with the reason spelled out.
//
// The attestation verifier (policy/attest) produces the hardware checks;
// `attestlog verify` appends the log, witness, operator and revocation
// checks and prints the whole list as a checklist (or JSON). A verdict is
// positive only when every check in it passed.
package check

import (
	"fmt"
	"strings"
)

// Check is one named step of a verification.
type Check struct {
	// Name is short and stable, e.g. "hardware signature chain"; the names
	// attestlog uses are the constants of this package.
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Reason says why it passed or, when it failed, what was wrong and,
	// where possible, what would fix it. It is never empty.
	Reason string `json:"reason"`
	// Warning marks a passed check that had no evidence to decide on and
	// passed only because a policy line says to accept that (e.g.
	// 'tdx-tcb-status unchecked'): the verdict shows it as a warning.
	Warning bool `json:"warning,omitempty"`
}

// Names of the checks the attestation verifier produces. The lead's
// verifier adds its own (inclusion proof, witness quorum, …).
const (
	EvidenceFormat    = "evidence format"
	PlatformAllowed   = "platform allowed"
	HardwareChain     = "hardware signature chain"
	Revocation        = "hardware revocation"
	TCBStatus         = "TCB status"
	TCBFloors         = "TCB floors"
	GuestPolicy       = "guest policy"
	NonceBinding      = "nonce binding"
	ReportConsistency = "report consistency"
	// FirmwareCommitted: SEV-SNP provisional firmware (COMMITTED_TCB
	// below CURRENT_TCB) is refused unless the policy accepts it.
	FirmwareCommitted = "committed firmware"
	// EventLog: a stapled CC event log replays to the quote's RTMRs.
	EventLog = "event log"
	// FirmwareEndorsement: a stapled firmware endorsement verifies to a
	// trusted root and names the measured firmware.
	FirmwareEndorsement = "firmware endorsement"
)

// Pass returns a passed check.
func Pass(name, format string, args ...any) Check {
	return Check{Name: name, OK: true, Reason: fmt.Sprintf(format, args...)}
}

// Warn returns a passed check marked as a warning: nothing was
// verified, and the policy says to accept that.
func Warn(name, format string, args ...any) Check {
	return Check{Name: name, OK: true, Warning: true, Reason: fmt.Sprintf(format, args...)}
}

// Warnings returns the passed checks marked as warnings, in order.
func (l List) Warnings() List {
	var w List
	for _, c := range l {
		if c.OK && c.Warning {
			w = append(w, c)
		}
	}
	return w
}

// Fail returns a failed check.
func Fail(name, format string, args ...any) Check {
	return Check{Name: name, OK: false, Reason: fmt.Sprintf(format, args...)}
}

// From returns a passed check with reason ok when err is nil, else a
// failed one whose reason is err's text.
func From(name string, err error, ok string) Check {
	if err != nil {
		return Check{Name: name, OK: false, Reason: err.Error()}
	}
	return Check{Name: name, OK: true, Reason: ok}
}

// List is an ordered verdict.
type List []Check

// OK reports whether the list is non-empty and every check in it passed.
func (l List) OK() bool {
	if len(l) == 0 {
		return false
	}
	for _, c := range l {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed returns the checks that failed, in order.
func (l List) Failed() List {
	var f List
	for _, c := range l {
		if !c.OK {
			f = append(f, c)
		}
	}
	return f
}

// Find returns the first check with the given name.
func (l List) Find(name string) (Check, bool) {
	for _, c := range l {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// String renders the list as a checklist, one "✓ name: reason",
// "! name: reason" (a warning) or "✗ name: reason" line per check.
func (l List) String() string {
	var b strings.Builder
	for _, c := range l {
		mark := "✗"
		switch {
		case c.OK && c.Warning:
			mark = "!"
		case c.OK:
			mark = "✓"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Name, c.Reason)
	}
	return b.String()
}
