package witness

import "testing"

// FuzzParseConfig: witness.yaml is operator input; parsing and validation
// never panic, and what is accepted validates again.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("key: w.key\ndb: w.db\nlogs:\n  - origin: l.example/log\n    vkey: l.example/log+01234567+AQ==\n"))
	f.Add([]byte("key: k\nlisten: ':0'\nrequest_timeout: 1s\nlog_level: debug\n"))
	f.Add([]byte("logs: [{origin: \"a\\nb\"}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("an accepted configuration fails Validate again: %v", err)
		}
	})
}
