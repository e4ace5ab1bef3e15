package auditor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParseConfig: auditor.yaml is operator input; parsing and validation
// never panic, and what validates validates again.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("db: a.db\nlogs:\n  - vkey: l.example/log+01234567+AQ==\n    url: http://127.0.0.1:1\n    policy: p.txt\n"))
	f.Add([]byte("poll_interval: 1s\nrebuild: {enabled: false, limits: {memory: 1GiB, cpu_time: 10m}}\n"))
	f.Add([]byte("deployments: [{name: x, url: 'http://h', log: o}]\nwebhooks: [{url: 'http://h'}]\n"))
	f.Add([]byte("rebuild: {user: '65534:65534', limits: {disk: 12XB}}\n"))
	f.Add([]byte("deployments: [{name: x, url: 'http://[::1]:1', allow_private: true, timeout: 1s, unreachable_after: 2}]\n"))
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

// TestConfigErrors: each configuration mistake is refused, naming the key.
func TestConfigErrors(t *testing.T) {
	const vkey = "log.example/log+32fc4b3c+ARRu/ezQC97PeODp73ybF7DGmOAFb9DleTDUT28cWMjI"
	good := "logs:\n  - vkey: " + vkey + "\n    url: http://127.0.0.1:1\n    policy: p.txt\n"
	for _, ok := range []string{good,
		good + "deployments:\n  - {name: a, url: 'http://127.0.0.1:8443', allow_private: true, timeout: 5s, unreachable_after: 1}\n",
		good + "deployments:\n  - {name: a, url: 'https://203.0.114.1'}\n  - {name: b, url: 'https://localhost:1'}\n",
	} {
		if c, err := ParseConfig([]byte(ok)); err != nil {
			t.Fatalf("ParseConfig(%q) = %v", ok, err)
		} else if err := c.validate(); err != nil {
			t.Fatalf("validate(%q) = %v", ok, err)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"poll_interval: -1s\n" + good, "poll_interval must be positive"},
		{"db: a.db\n", "logs: at least one log is required"},
		{"logs:\n  - vkey: nonsense\n    url: http://h\n    policy: p\n", "logs[0].vkey"},
		{"logs:\n  - vkey: " + vkey + "\n    origin: other.example/log\n    url: http://h\n    policy: p\n", "logs[0].origin"},
		{good + "  - vkey: " + vkey + "\n    url: http://h\n    policy: p\n", "listed twice"},
		{"logs:\n  - vkey: " + vkey + "\n    url: ':bad'\n    policy: p\n", "logs[0].url"},
		{"logs:\n  - vkey: " + vkey + "\n    url: http://h\n", "logs[0].policy"},
		{good + "deployments:\n  - {name: 'a b', url: 'http://h'}\n", "deployments[0].name"},
		{good + "deployments:\n  - {name: a, url: 'http://h'}\n  - {name: a, url: 'http://h'}\n", `"a" listed twice`},
		{good + "deployments:\n  - {name: a, url: 'http://h', log: nope}\n", "is not one of the configured logs"},
		{good + "colour: red\n", "colour (line 5): unknown field"},
		{good + "poll_interval: often\n", `poll_interval (line 5): "often" is not a duration`},
		{good + "index_map: disk\n", `index_map: "disk" is neither memory nor file`},
		{good + "deployments:\n  - {name: a, url: 'http://127.0.0.1:8443'}\n", "deployments[0].url: \"http://127.0.0.1:8443\": 127.0.0.1 is not a public address"},
		{good + "deployments:\n  - {name: a, url: 'http://169.254.169.254/'}\n", "set allow_private: true"},
		{good + "deployments:\n  - {name: a, url: 'https://[::1]:8443'}\n", "::1 is not a public address"},
		{good + "deployments:\n  - {name: a, url: 'https://10.1.2.3'}\n", "10.1.2.3 is not a public address"},
		{good + "deployments:\n  - {name: a, url: 'https://h', timeout: -1s}\n", "deployments[0].timeout must be positive"},
		{good + "deployments:\n  - {name: a, url: 'https://h', unreachable_after: -1}\n", "deployments[0].unreachable_after must be at least 1"},
	} {
		c, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestBuildReachPaths: what the builder must keep out of every build's
// reach is the key, the database (with SQLite's side files) and its
// directory, and the configuration when it holds webhook credentials; the
// configuration otherwise, the policies and the evidence are guarded.
func TestBuildReachPaths(t *testing.T) {
	const vkey = "log.example/log+32fc4b3c+ARRu/ezQC97PeODp73ybF7DGmOAFb9DleTDUT28cWMjI"
	dir := t.TempDir()
	yaml := "db: state/a.db\nkey: keys/auditor.key\nevidence_dir: ev\nlogs:\n  - vkey: " + vkey +
		"\n    url: http://127.0.0.1:1\n    policy: p.txt\n    witness_policy: w.txt\ndeployments:\n  - {name: d, url: 'http://h', policy: d.txt}\n"
	for _, hooks := range []string{"", "webhooks:\n  - {url: 'http://h', headers: {Authorization: 'Bearer x'}}\n"} {
		p := filepath.Join(dir, "auditor.yaml")
		if err := os.WriteFile(p, []byte(yaml+hooks), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.validate(); err != nil {
			t.Fatal(err)
		}
		private, guarded := c.buildReach()
		j := func(s string) string { return filepath.Join(dir, s) }
		wantPrivate := []string{j("keys/auditor.key"), j("state/a.db"), j("state/a.db-wal"), j("state/a.db-shm"), j("state/a.db-journal"), j("state")}
		wantGuarded := []string{j("ev"), p, j("p.txt"), j("w.txt"), j("d.txt")}
		if hooks != "" {
			wantPrivate = append(wantPrivate, p)
			wantGuarded = slices.DeleteFunc(wantGuarded, func(s string) bool { return s == p })
		}
		if !slices.Equal(private, wantPrivate) || !slices.Equal(guarded, wantGuarded) {
			t.Errorf("webhooks %q: buildReach() = %q, %q, want %q, %q", hooks, private, guarded, wantPrivate, wantGuarded)
		}
	}
}
