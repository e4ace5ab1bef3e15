package auditor

import "testing"

// FuzzParseConfig: auditor.yaml is operator input; parsing and validation
// never panic, and what validates validates again.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("db: a.db\nlogs:\n  - vkey: l.example/log+01234567+AQ==\n    url: http://127.0.0.1:1\n    policy: p.txt\n"))
	f.Add([]byte("poll_interval: 1s\nrebuild: {enabled: false, limits: {memory: 1GiB, cpu_time: 10m}}\n"))
	f.Add([]byte("deployments: [{name: x, url: 'http://h', log: o}]\nwebhooks: [{url: 'http://h'}]\n"))
	f.Add([]byte("rebuild: {user: '65534:65534', limits: {disk: 12XB}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("a configuration that validated fails validation again: %v", err)
		}
	})
}
