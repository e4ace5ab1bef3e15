package tdx

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// NoteRTMR0 says why a boot measurement has no RTMR0.
const NoteRTMR0 = "rtmr0 not computed: it measures the TD HOB (from the guest memory size), QEMU's ACPI tables and the firmware's UEFI variables, which depend on the host's QEMU and OVMF versions and VM configuration; attestlog does not compute it yet, so compare the guest's RTMR0 events with 'attestlog measure tdx-replay'"

// NoteReplay says what a replay gives a release and what attestlog
// cannot compute instead: on clouds (Google Cloud's Container-Optimized
// OS boots through shim and GRUB, its firmware is Google's) the logged
// values of the booted TD are the only source.
const NoteReplay = "the replayed rtmr0-rtmr2 are this TD's boot as its log records it: name them in the release (measurements.tdx.rtmr0..rtmr2) to pin it; " +
	"attestlog computes rtmr1/rtmr2 only for a QEMU direct boot ('measure tdx --kernel'), never rtmr0 (host and firmware configuration) nor a shim/GRUB boot such as Google Cloud's, " +
	"and on Google Cloud MRTD is Google's firmware, which no build output gives: release it with firmware_endorsement: google and staple Google's launch endorsement"

// A BootMeasurement is what a TD launched from a firmware and direct-boot
// inputs should report: its MRTD and the RTMRs its boot extends, with the
// events that extend them and notes on what was assumed or left out.
type BootMeasurement struct {
	PageOrder PageOrder
	MRTD      [DigestSize]byte
	Events    []BootEvent
	RTMRs     [NumRTMRs][DigestSize]byte
	// Computed says which of RTMR0 to RTMR2 were computed (RTMR0 never,
	// yet: see NoteRTMR0).
	Computed [3]bool
	Notes    []string
}

// MeasureBoot computes the MRTD of fw in order and the RTMR1 and RTMR2 of
// a QEMU direct boot of b (b.Kernel non-empty).
func MeasureBoot(fw *Firmware, order PageOrder, b DirectBoot) (*BootMeasurement, error) {
	mrtd, err := MRTD(fw, order)
	if err != nil {
		return nil, err
	}
	m := &BootMeasurement{PageOrder: order, MRTD: mrtd}
	if len(b.Kernel) > 0 {
		ev, err := b.Events()
		if err != nil {
			return nil, err
		}
		m.Events = ev
		m.Computed[1], m.Computed[2] = true, true
		if n := stubNote(KernelVersion(b.Kernel)); n != "" {
			m.Notes = append(m.Notes, n)
		}
	}
	m.Notes = append(m.Notes, NoteRTMR0)
	m.RTMRs = FoldRTMRs(m.Events)
	return m, nil
}

// stubNote warns when the kernel's version predates the EFI stub's use of
// the CC measurement protocol (Linux 6.9): without a backport, such a stub
// measures nothing in a TD without a vTPM and RTMR2 stays zero.
func stubNote(version string) string {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return "rtmr2 assumes the kernel's EFI stub measures its command line and initrd through the CC measurement protocol (Linux 6.9 and later); the kernel's version could not be read"
	}
	if major < 6 || (major == 6 && minor < 9) {
		return fmt.Sprintf("rtmr2 assumes the kernel's EFI stub measures its command line and initrd through the CC measurement protocol, which Linux has done since 6.9; this kernel is %d.%d, so unless it has that change backported its RTMR2 stays zero", major, minor)
	}
	return ""
}

// MarshalJSON is the `measure tdx --json` output: page order, MRTD, the
// computed RTMRs, notes and events.
func (m *BootMeasurement) MarshalJSON() ([]byte, error) {
	type jsonEvent struct {
		RTMR        int    `json:"rtmr"`
		Type        string `json:"type"`
		Digest      string `json:"digest"`
		Description string `json:"description"`
	}
	out := struct {
		PageOrder string      `json:"page_order"`
		MRTD      string      `json:"mrtd"`
		RTMR0     string      `json:"rtmr0,omitempty"`
		RTMR1     string      `json:"rtmr1,omitempty"`
		RTMR2     string      `json:"rtmr2,omitempty"`
		Notes     []string    `json:"notes,omitempty"`
		Events    []jsonEvent `json:"events"`
	}{PageOrder: m.PageOrder.String(), MRTD: hex.EncodeToString(m.MRTD[:]), Notes: m.Notes}
	for i, p := range []*string{&out.RTMR0, &out.RTMR1, &out.RTMR2} {
		if m.Computed[i] {
			*p = hex.EncodeToString(m.RTMRs[i][:])
		}
	}
	for _, e := range m.Events {
		out.Events = append(out.Events, jsonEvent{e.RTMR, e.TypeName(), hex.EncodeToString(e.Digest[:]), e.Description})
	}
	return json.Marshal(out)
}

// WriteText writes "mrtd HEX", a "rtmrN HEX" line per computed RTMR and
// a "note: …" line per note.
func (m *BootMeasurement) WriteText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "mrtd %x\n", m.MRTD); err != nil {
		return err
	}
	for i := range 3 {
		if m.Computed[i] {
			fmt.Fprintf(w, "rtmr%d %x\n", i, m.RTMRs[i])
		}
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// A ReplayReport compares a replayed event log with reported RTMRs.
type ReplayReport struct {
	Replay   *Replay
	Reported [][]byte // RTMR0.. as reported; a nil entry is not compared
	// Err is Replay.Check's verdict: nil when every reported RTMR is the
	// replayed one.
	Err error
}

// Compare checks r against reported.
func (r *Replay) Compare(reported [][]byte) *ReplayReport {
	return &ReplayReport{Replay: r, Reported: reported, Err: r.Check(reported)}
}

type replayEventJSON struct {
	Seq         int    `json:"seq"`
	RTMR        int    `json:"rtmr"`
	Type        string `json:"type"`
	Digest      string `json:"digest"`
	Description string `json:"description,omitempty"`
}

type replayRTMRJSON struct {
	Index    int    `json:"index"`
	Replayed string `json:"replayed"`
	Reported string `json:"reported,omitempty"`
	Match    *bool  `json:"match,omitempty"`
}

func (rr *ReplayReport) rows() ([]replayEventJSON, []replayRTMRJSON) {
	var events []replayEventJSON
	for _, e := range rr.Replay.Events {
		events = append(events, replayEventJSON{e.Seq, e.RTMR(), e.TypeName(), hex.EncodeToString(e.Digest), e.Description()})
	}
	var rtmrs []replayRTMRJSON
	for i := range NumRTMRs {
		j := replayRTMRJSON{Index: i, Replayed: hex.EncodeToString(rr.Replay.RTMRs[i][:])}
		if i < len(rr.Reported) && rr.Reported[i] != nil {
			j.Reported = hex.EncodeToString(rr.Reported[i])
			m := j.Reported == j.Replayed
			j.Match = &m
		}
		rtmrs = append(rtmrs, j)
	}
	return events, rtmrs
}

// MarshalJSON is the `measure tdx-replay --json` output.
func (rr *ReplayReport) MarshalJSON() ([]byte, error) {
	events, rtmrs := rr.rows()
	return json.Marshal(struct {
		Events []replayEventJSON `json:"events"`
		RTMRs  []replayRTMRJSON  `json:"rtmrs"`
		OK     bool              `json:"ok"`
		Notes  []string          `json:"notes"`
	}{events, rtmrs, rr.Err == nil, []string{NoteReplay}})
}

// WriteText writes one line per event, then one per RTMR with its
// verdict.
func (rr *ReplayReport) WriteText(w io.Writer) error {
	events, rtmrs := rr.rows()
	for _, e := range events {
		mr := "mrtd "
		if e.RTMR >= 0 {
			mr = fmt.Sprintf("rtmr%d", e.RTMR)
		}
		fmt.Fprintf(w, "%4d %s %-32s %s", e.Seq, mr, e.Type, e.Digest)
		if e.Description != "" {
			fmt.Fprintf(w, "  %q", e.Description)
		}
		fmt.Fprintln(w)
	}
	for _, j := range rtmrs {
		status := "not compared"
		if j.Match != nil {
			status = map[bool]string{true: "matches", false: "MISMATCH, reported " + j.Reported}[*j.Match]
		}
		if _, err := fmt.Fprintf(w, "rtmr%d %s %s\n", j.Index, j.Replayed, status); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "note: %s\n", NoteReplay)
	return err
}
