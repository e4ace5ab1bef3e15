package rebuild

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseBytes: sizes from auditor.yaml either parse to a non-negative
// count that FormatBytes writes back to the same count, or fail.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"0", "512", "64KiB", "8GiB", "1536MiB", "2G", "4 TiB", "-1", "1.5GiB", "99999999999999999999", "8gib", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return
		}
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
		if m, err := ParseBytes(FormatBytes(n)); err != nil || m != n {
			t.Fatalf("ParseBytes(FormatBytes(%d)) = %d, %v", n, m, err)
		}
	})
}

// FuzzOutputTail: whatever a build prints, the tail shown in alerts is
// valid UTF-8 with no control character but newline and tab, and bounded.
func FuzzOutputTail(f *testing.F) {
	for _, s := range []string{"ok\n", "\x1b[2J\x1b]0;title\x07", "a\xffb\xc3", "\u202eevil\u2066", strings.Repeat("é", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		out := OutputTail(s, MaxOutputTail)
		if !utf8.ValidString(out) {
			t.Fatalf("OutputTail(%q) is not UTF-8: %q", s, out)
		}
		for _, r := range out {
			if r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)) {
				t.Fatalf("OutputTail(%q) keeps %U", s, r)
			}
		}
		if len(out) > 4*MaxOutputTail+8 {
			t.Fatalf("OutputTail of %d bytes is %d bytes", len(s), len(out))
		}
	})
}

// TestResultDurationForPeople: a result's JSON (alert evidence) gives its
// duration as text.
func TestResultDurationForPeople(t *testing.T) {
	b, err := json.Marshal(&Result{Outcome: Failed, Duration: 42*time.Millisecond + 300*time.Microsecond})
	if err != nil || !strings.Contains(string(b), `"duration":"42ms"`) {
		t.Errorf("Result JSON = %s, %v", b, err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Duration != 42*time.Millisecond || back.Outcome != Failed {
		t.Errorf("read back: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"outcome":"failed","duration":42000000}`), &back); err != nil || back.Duration != 42*time.Millisecond {
		t.Errorf("old evidence (nanoseconds): %+v, %v", back, err)
	}
}
