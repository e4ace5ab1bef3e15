package statement

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestNameChecksMatchRegexps holds the hand-written name checks to the
// regular expressions they replace, on edge cases and random strings.
func TestNameChecksMatchRegexps(t *testing.T) {
	checks := []struct {
		name string
		re   *regexp.Regexp
		f    func(string) bool
	}{
		{"version", regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$`), isVersion},
		{"gpu arch", regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`), isGPUArch},
		{"env name", regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`), isEnvName},
	}
	long := func(n int, c byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}
	cases := []string{"", "a", "A", "0", "_", "-", ".", "~", "+", "1.2.3", "v1.2.3-rc1+build~x", "_x", "0x", "a b", "a\n", "\na",
		"é", "a\x00", "HOPPER", "hopper_2-x", "LD_PRELOAD", long(32, 'a'), long(33, 'a'), long(128, 'a'), long(129, 'a'), "a" + long(127, '.'), "a" + long(128, '.')}
	alphabet := []byte("aZ09_-.+~ \n/\x00é$^")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range checks {
		matched := 0
		for _, s := range cases {
			want := c.re.MatchString(s)
			if got := c.f(s); got != want {
				t.Errorf("%s(%q) = %v, the regexp says %v", c.name, s, got, want)
			}
			if want {
				matched++
			}
		}
		if matched == 0 || matched == len(cases) {
			t.Errorf("%s: %d of %d cases match: the cases test nothing", c.name, matched, len(cases))
		}
	}
}
