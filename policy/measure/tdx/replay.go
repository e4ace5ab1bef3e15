package tdx

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// NumRTMRs is the number of runtime measurement registers of a TD.
const NumRTMRs = 4

// MaxEventLogSize bounds the event logs Replay accepts. The CCEL area OVMF
// reserves is 64 KiB to a few MiB.
const MaxEventLogSize = 16 << 20

// Extend returns SHA-384(rtmr || digest), the new value of an RTMR after
// TDG.MR.RTMR.EXTEND with digest (TDX module ABI). RTMRs start at zero.
func Extend(rtmr, digest [DigestSize]byte) [DigestSize]byte {
	var b [2 * DigestSize]byte
	copy(b[:DigestSize], rtmr[:])
	copy(b[DigestSize:], digest[:])
	return sha512.Sum384(b[:])
}

// An Event is one entry of a CC event log.
type Event struct {
	Seq int // position in the log, from 1 (the Spec ID event is not counted)
	// MRIndex is the CC measurement register index of the UEFI CC
	// measurement protocol: 0 is MRTD, 1 to 4 are RTMR0 to RTMR3.
	MRIndex uint32
	Type    uint32 // TCG event type
	Digest  []byte // the event's SHA-384 digest as logged
	Data    []byte // the event data (untrusted; describes, does not prove)
}

// RTMR returns the RTMR the event extends, or -1 for MRTD or an index out
// of range.
func (e Event) RTMR() int {
	if e.MRIndex < 1 || e.MRIndex > NumRTMRs {
		return -1
	}
	return int(e.MRIndex) - 1
}

// TypeName returns the TCG name of the event's type.
func (e Event) TypeName() string { return tcg.EventType(e.Type).String() }

// Description returns a short human-readable rendering of printable event
// data (EV_EFI_ACTION strings, tagged-event and UEFI variable names), or "".
func (e Event) Description() string {
	switch tcg.EventType(e.Type) {
	case tcg.EFIAction, tcg.Ipl, tcg.EventTag, tcg.Action:
		return printable(e.Data)
	case tcg.EFIVariableDriverConfig, tcg.EFIVariableBoot, tcg.EFIVariableAuthority, tcg.EFIVariableBoot2:
		if v, err := tcg.ParseUEFIVariableData(bytes.NewReader(e.Data)); err == nil {
			return v.VarName()
		}
	}
	return ""
}

// printable returns data as a string if it is ASCII or UTF-16LE text (with
// an optional NUL terminator), and "" otherwise.
func printable(d []byte) string {
	d = bytes.TrimRight(d, "\x00")
	if len(d) == 0 || len(d) > 256 {
		return ""
	}
	ascii := true
	for _, c := range d {
		if c < 0x20 || c > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		return string(d)
	}
	if len(d)%2 == 1 {
		d = append(d, 0)
	}
	u := make([]uint16, len(d)/2)
	for i := range u {
		u[i] = uint16(d[2*i]) | uint16(d[2*i+1])<<8
		if u[i] < 0x20 || u[i] > 0x7e {
			return ""
		}
	}
	return string(utf16.Decode(u))
}

// A Replay is an event log replayed into RTMR values.
type Replay struct {
	Events []Event
	// RTMRs are the registers' values after extending, from zero, every
	// event of the log with each register's index, in order.
	RTMRs [NumRTMRs][DigestSize]byte
}

// ErrNotReplayed is wrapped by the error of Replay.Check when a register
// replayed from the log differs from the reported one.
var ErrNotReplayed = errors.New("event log does not replay to the reported RTMRs")

// ReplayEventLog parses a TCG crypto-agile event log with SHA-384 digests
// (the CCEL table's log area, trailing padding allowed) and replays it.
// EV_NO_ACTION events are listed but extend nothing.
func ReplayEventLog(raw []byte) (*Replay, error) {
	if len(raw) > MaxEventLogSize {
		return nil, fmt.Errorf("event log of %d bytes exceeds the %d-byte limit", len(raw), MaxEventLogSize)
	}
	el, err := tcg.ParseEventLog(raw, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("parsing event log: %w", err)
	}
	has384 := false
	for _, a := range el.Algs {
		has384 = has384 || a == register.HashSHA384
	}
	if !has384 {
		return nil, fmt.Errorf("event log has no SHA-384 digests (algorithms %v); CC event logs use SHA-384", el.Algs)
	}
	r := &Replay{}
	for i, e := range el.Events(register.HashSHA384) {
		ev := Event{Seq: i + 1, MRIndex: e.MRIndex(), Type: uint32(e.Type), Digest: e.ReplayedDigest(), Data: e.RawData()}
		r.Events = append(r.Events, ev)
		if tcg.EventType(ev.Type) == tcg.NoAction {
			continue
		}
		if len(ev.Digest) != DigestSize {
			return nil, fmt.Errorf("event %d (%s, MR index %d) has no SHA-384 digest", ev.Seq, ev.TypeName(), ev.MRIndex)
		}
		if n := ev.RTMR(); n >= 0 {
			r.RTMRs[n] = Extend(r.RTMRs[n], [DigestSize]byte(ev.Digest))
		}
	}
	return r, nil
}

// Check compares the replayed registers with reported ones (for example
// from a quote); reported may have fewer than NumRTMRs entries, and a nil
// entry is not compared. The error lists every register that differs and
// wraps ErrNotReplayed.
func (r *Replay) Check(reported [][]byte) error {
	var bad []string
	for i, want := range reported {
		if i >= NumRTMRs || want == nil {
			continue
		}
		if !bytes.Equal(r.RTMRs[i][:], want) {
			bad = append(bad, fmt.Sprintf("RTMR%d: replayed %x, reported %x", i, r.RTMRs[i], want))
		}
	}
	if bad != nil {
		return fmt.Errorf("%w: %s", ErrNotReplayed, joinLines(bad))
	}
	return nil
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for i, l := range s {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// QuoteMeasurements are the measurement registers of a TDX quote's TD
// report body.
type QuoteMeasurements struct {
	MRTD       []byte
	RTMRs      [][]byte
	MRConfigID []byte
}

// ParseQuoteMeasurements extracts MRTD, the RTMRs and MRCONFIGID from a raw
// TDX DCAP quote (version 4, or 5 with a TDX 1.0 or 1.5 body) with
// go-tdx-guest. It does not verify the quote's signature: the caller does
// that before trusting the values.
func ParseQuoteMeasurements(raw []byte) (m *QuoteMeasurements, err error) {
	// go-tdx-guest's parser (v0.3.1 and later) panics on some malformed certification
	// data (a slice out of range in qeAuthDataToProto, found by
	// FuzzParseQuoteMeasurements): a quote is untrusted input.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("parsing TDX quote: malformed (%v)", r)
		}
	}()
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing TDX quote: %w", err)
	}
	type body interface {
		GetMrTd() []byte
		GetRtmrs() [][]byte
		GetMrConfigId() []byte
	}
	var b body
	switch q := q.(type) {
	case *pb.QuoteV4:
		b = q.GetTdQuoteBody()
	case *pb.QuoteV5:
		b = q.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5()
	default:
		return nil, fmt.Errorf("parsing TDX quote: unsupported quote type %T (want version 4 or 5)", q)
	}
	if len(b.GetRtmrs()) != NumRTMRs || len(b.GetMrTd()) != DigestSize {
		return nil, fmt.Errorf("parsing TDX quote: TD quote body has %d RTMRs, want %d", len(b.GetRtmrs()), NumRTMRs)
	}
	return &QuoteMeasurements{MRTD: b.GetMrTd(), RTMRs: b.GetRtmrs(), MRConfigID: b.GetMrConfigId()}, nil
}
