package vtpm

import (
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
)

// MaxEventLogSize bounds a TCG event log (a Linux guest's is tens of KiB).
const MaxEventLogSize = 256 << 10

// ErrEventLog means the event log does not parse or does not replay to
// the PCR values.
var ErrEventLog = errors.New("the TCG event log does not replay to the quoted PCRs")

// Replay is what a replayed event log showed.
type Replay struct {
	// Events is how many measurement events replayed (events of PCRs the
	// quote does not select are not counted).
	Events int
	// PCRs are the quoted PCRs the log has events for; every other quoted
	// PCR is not described by the log.
	PCRs []int
}

// ReplayEventLog parses a TCG PC Client event log (crypto-agile format,
// as /sys/kernel/security/tpm0/binary_bios_measurements holds it) with
// go-eventlog and replays its SHA-256 digests against the quote's PCR
// values (in the quote's order): each quoted PCR the log has events for
// must equal the replay. Call it only with values CheckPCRs accepted.
func ReplayEventLog(log []byte, q *Quote, values [][]byte) (r *Replay, err error) {
	if len(log) == 0 || len(log) > MaxEventLogSize {
		return nil, fmt.Errorf("%w: an event log of %d bytes; want 1 to %d", ErrEventLog, len(log), MaxEventLogSize)
	}
	if len(values) != len(q.PCRs) {
		return nil, fmt.Errorf("%w: %d values for %d PCRs", ErrEventLog, len(values), len(q.PCRs))
	}
	mrs := make([]register.MR, len(values))
	for i, v := range values {
		mrs[i] = register.PCR{Index: q.PCRs[i], Digest: v, DigestAlg: crypto.SHA256}
	}
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%w: malformed event log (%v)", ErrEventLog, p)
		}
	}()
	events, err := tcg.ParseAndReplay(log, mrs, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEventLog, err)
	}
	r = &Replay{Events: len(events)}
	for _, e := range events {
		r.PCRs = append(r.PCRs, e.Index)
	}
	slices.Sort(r.PCRs)
	r.PCRs = slices.Compact(r.PCRs)
	return r, nil
}
