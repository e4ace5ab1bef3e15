package agent

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestConfigInDocs: the enclave.yaml that docs/channel.md shows parses,
// and means what its comments say.
func TestConfigInDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/channel.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/channel.md has no yaml block")
	}
	c, err := ParseConfig([]byte(block))
	if err != nil {
		t.Fatalf("docs/channel.md's enclave.yaml: %v", err)
	}
	if c.Listen != ":8443" || c.Upstream != "http://127.0.0.1:8000" || c.Source != "auto" || c.KeyLifetime != 24*time.Hour ||
		c.StapleInterval != 5*time.Second || c.MaxConnections != DefaultMaxConnections || c.Challenges.PerSecond != 1 {
		t.Errorf("docs/channel.md's enclave.yaml = %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"listen: x\nupstream: http://127.0.0.1:1\n", "listen"},
		{"upstream: ftp://x\n", "upstream"},
		{"upstream: http://127.0.0.1:1\nsource: tpm\n", "source"},
		{"upstream: http://127.0.0.1:1\nsource: demo\n", "demo.measurement"},
		{"upstream: http://127.0.0.1:1\ngpus: amd\n", "gpus"},
		{"upstream: http://127.0.0.1:1\nkey_lifetime: 1s\n", "key_lifetime"},
		{"upstream: http://127.0.0.1:1\nmax_connections: -1\n", "max_connections"},
		{"upstream: http://127.0.0.1:1\nmax_connection: 5\n", "max_connection"},
		{"upstream: http://127.0.0.1:1\nchallenges: {burst: -1}\n", "burst"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want an error about %s", tc.yaml, err, tc.want)
		}
	}
}
