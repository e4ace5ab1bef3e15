package tdx

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestMeasureBoot: the boot measurement is MRTD plus the RTMRs that
// DirectBoot's events fold to; it never claims an RTMR0, and says so.
func TestMeasureBoot(t *testing.T) {
	img, err := os.ReadFile("testdata/tdvf_synthetic.fd")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := ParseFirmware(img)
	if err != nil {
		t.Fatal(err)
	}
	mrtd, err := MRTD(fw, SinglePass)
	if err != nil {
		t.Fatal(err)
	}
	// Firmware alone: the MRTD, no RTMR computed, the RTMR0 note.
	m, err := MeasureBoot(fw, SinglePass, DirectBoot{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MRTD != mrtd || m.Computed != [3]bool{} || len(m.Notes) != 1 || m.Notes[0] != NoteRTMR0 {
		t.Errorf("MeasureBoot(no kernel) = %+v", m)
	}
	var text bytes.Buffer
	if err := m.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text.String(), "mrtd "+hex.EncodeToString(mrtd[:])+"\n") || strings.Contains(text.String(), "rtmr1 ") {
		t.Errorf("text = %q", text.String())
	}

	kernel, err := os.ReadFile(signedKernels(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	b := DirectBoot{Kernel: kernel, Cmdline: "quiet"}
	events, err := b.Events()
	if err != nil {
		t.Fatal(err)
	}
	want := FoldRTMRs(events)
	m, err = MeasureBoot(fw, SinglePass, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.RTMRs != want || m.Computed != [3]bool{false, true, true} {
		t.Errorf("MeasureBoot(kernel): RTMRs %x computed %v, want %x and RTMR1, RTMR2", m.RTMRs, m.Computed, want)
	}
	j, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		PageOrder                 string `json:"page_order"`
		MRTD, RTMR0, RTMR1, RTMR2 string
		Events                    []struct{ RTMR int }
	}
	if err := json.Unmarshal(j, &got); err != nil {
		t.Fatal(err)
	}
	if got.PageOrder != "single-pass" || got.MRTD != hex.EncodeToString(mrtd[:]) || got.RTMR0 != "" ||
		got.RTMR1 != hex.EncodeToString(want[1][:]) || got.RTMR2 != hex.EncodeToString(want[2][:]) || len(got.Events) != len(events) {
		t.Errorf("JSON = %s", j)
	}
	if _, err := MeasureBoot(fw, SinglePass, DirectBoot{Kernel: []byte("not a bzImage")}); err == nil {
		t.Error("MeasureBoot(not a kernel) = nil error")
	}
}

func TestStubNote(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"6.9.0-1-amd64", ""},
		{"6.12.3", ""},
		{"7.0", ""},
		{"6.8.12", "this kernel is 6.8"},
		{"5.15.0", "this kernel is 5.15"},
		{"", "could not be read"},
	} {
		got := stubNote(tc.version)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("stubNote(%q) = %q, want containing %q", tc.version, got, tc.want)
		}
	}
}

// TestReplayReport: the report's verdict is Check's, and both outputs
// say which register matched, mismatched or was not compared.
func TestReplayReport(t *testing.T) {
	r, _ := replayCOS(t)
	reported := [][]byte{unhex(t, cosRTMRs[0]), make([]byte, DigestSize), nil}
	rep := r.Compare(reported)
	if rep.Err == nil {
		t.Fatal("Compare(wrong RTMR1).Err = nil")
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rtmr0 " + cosRTMRs[0] + " matches", "rtmr1 " + cosRTMRs[1] + " MISMATCH", "rtmr2 " + cosRTMRs[2] + " not compared", "rtmr3 "} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
	j, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK     bool
		Events []json.RawMessage
		RTMRs  []struct{ Match *bool }
	}
	if err := json.Unmarshal(j, &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || len(got.Events) != len(r.Events) || len(got.RTMRs) != NumRTMRs ||
		got.RTMRs[0].Match == nil || !*got.RTMRs[0].Match || got.RTMRs[1].Match == nil || *got.RTMRs[1].Match || got.RTMRs[2].Match != nil {
		t.Errorf("JSON = %s", j)
	}
	var all [][]byte
	for _, s := range cosRTMRs {
		all = append(all, unhex(t, s))
	}
	if rep := r.Compare(all); rep.Err != nil {
		t.Errorf("Compare(the log's own RTMRs) = %v", rep.Err)
	}
}
