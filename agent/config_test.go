package agent

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/demo/enclave"
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

// TestMeasurementAzure: the launch digest the log is asked about is the
// paravisor's, read from the HCL report's SNP report or the TD quote.
func TestMeasurementAzure(t *testing.T) {
	m := bytes.Repeat([]byte{0xa5}, 48)
	for _, mk := range []func([]byte, ...enclave.Option) (*enclave.Enclave, error){enclave.NewAzureSNP, enclave.NewAzureTDX} {
		e, err := mk(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Report(t.Context(), [64]byte{1})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Measurement(b); err != nil || got != hex.EncodeToString(m) {
			t.Errorf("Measurement(%s evidence) = %s, %v; want %x", b.Platform, got, err, m)
		}
	}
	if c, err := ParseConfig([]byte("upstream: http://127.0.0.1:1\nsource: azure-vtpm\n")); err != nil || c.Source != "azure-vtpm" {
		t.Errorf("source: azure-vtpm = %v", err)
	}
}
