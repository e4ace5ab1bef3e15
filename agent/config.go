package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/attestlog/attestlog/internal/yamlx"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/evidence/stapler"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// Config is enclave.yaml (`attestlog enclave --config enclave.yaml`).
type Config struct {
	// Listen is the TLS address clients connect to (default :8443).
	Listen string `yaml:"listen"`
	// Upstream is the service behind the agent, plain HTTP on the VM's
	// loopback (for instance http://127.0.0.1:8000, an OpenAI-compatible
	// model server). Required.
	Upstream string `yaml:"upstream"`
	// Source is where hardware reports come from: auto (the first of
	// an Azure confidential VM's vTPM, configfs-tsm, /dev/sev-guest,
	// /dev/tdx_guest that exists; the default), azure-vtpm (Azure's
	// SEV-SNP and TDX confidential VMs: /dev/tpmrm0 and the Instance
	// Metadata Service), configfs-tsm, sev-guest, tdx-guest, or demo (a
	// demo signer under a test root: never trusted by a production
	// policy).
	Source string `yaml:"source"`
	// GPUs is where GPU evidence comes from: none (the default) or nvml.
	GPUs string `yaml:"gpus"`
	// Log is the URL of the log whose proofs the agent staples (its
	// release is found by the measurement of the first report).
	// Without it nothing is stapled: clients then need proofs of their
	// own.
	Log string `yaml:"log"`
	// StapleInterval is how often the staple is refreshed (default 5s).
	StapleInterval time.Duration `yaml:"staple_interval"`
	// KeyLifetime is how long a key set is valid (default 24h, at most
	// 168h); it is rotated at half of it.
	KeyLifetime time.Duration `yaml:"key_lifetime"`
	// Challenges is the budget of nonce challenges.
	Challenges ChallengeBudget `yaml:"challenges"`
	// MaxConnections is how many client connections the agent holds
	// open at most (default 10000); requests on one beyond it are
	// answered 503 with Retry-After.
	MaxConnections int `yaml:"max_connections"`
	// MetricsListen serves /metrics there, plain HTTP (default: none;
	// keep it on loopback).
	MetricsListen string `yaml:"metrics_listen"`
	// Demo configures source: demo.
	Demo DemoConfig `yaml:"demo"`
}

// DemoConfig is the demo signer's configuration.
type DemoConfig struct {
	// Measurement is the launch digest its reports carry (hex, 48 bytes).
	Measurement string `yaml:"measurement"`
	// RootOut is where its test root is written, for a policy's
	// trust-root line.
	RootOut string `yaml:"root_out"`
}

// LoadConfig reads and validates enclave.yaml.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// ParseConfig parses and validates enclave.yaml's text.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yamlx.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

// Validate fills defaults and checks every field.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = ":8443"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %v", c.Listen, err)
	}
	u, err := url.Parse(c.Upstream)
	if c.Upstream == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q: want the service's URL, http://host:port", c.Upstream)
	}
	switch c.Source {
	case "":
		c.Source = "auto"
	case "auto", "azure-vtpm", "configfs-tsm", "sev-guest", "tdx-guest":
	case "demo":
		if m, err := hex.DecodeString(c.Demo.Measurement); err != nil || len(m) != 48 {
			return errors.New("source demo: demo.measurement must be 96 hex digits (a launch digest)")
		}
		if c.Demo.RootOut == "" {
			return errors.New("source demo: demo.root_out must name where its test root goes")
		}
	default:
		return fmt.Errorf("source %q: want auto, azure-vtpm, configfs-tsm, sev-guest, tdx-guest or demo", c.Source)
	}
	switch c.GPUs {
	case "":
		c.GPUs = "none"
	case "none", "nvml":
	default:
		return fmt.Errorf("gpus %q: want none or nvml", c.GPUs)
	}
	if c.Log != "" {
		if u, err := url.Parse(c.Log); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("log %q: want the log's URL", c.Log)
		}
	}
	if c.KeyLifetime == 0 {
		c.KeyLifetime = DefaultLifetime
	}
	if c.KeyLifetime < time.Minute || c.KeyLifetime > 168*time.Hour {
		return fmt.Errorf("key_lifetime %v: want 1m to 168h", c.KeyLifetime)
	}
	if c.StapleInterval == 0 {
		c.StapleInterval = DefaultStapleInterval
	}
	if c.StapleInterval < 100*time.Millisecond || c.StapleInterval > time.Hour {
		return fmt.Errorf("staple_interval %v: want 100ms to 1h", c.StapleInterval)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1<<20 {
		return fmt.Errorf("max_connections %d: want 1 to %d", c.MaxConnections, 1<<20)
	}
	return c.Challenges.check()
}

// UpstreamURL is the parsed upstream.
func (c *Config) UpstreamURL() *url.URL {
	u, _ := url.Parse(c.Upstream)
	return u
}

// LogStaple staples from the log at c: the release whose measurement the
// first report carries (looked up once), its identity proof and
// revocations (stapler.Collect).
func LogStaple(c *client.Client) func(ctx context.Context, first *evidence.Bundle) (stapler.Staple, error) {
	var mu sync.Mutex
	var idx *uint64
	return func(ctx context.Context, first *evidence.Bundle) (stapler.Staple, error) {
		mu.Lock()
		defer mu.Unlock()
		if idx == nil {
			m, err := Measurement(first)
			if err != nil {
				return stapler.Staple{}, err
			}
			p, _, err := c.ProofByMeasurement(ctx, m)
			if err != nil {
				return stapler.Staple{}, fmt.Errorf("the log's release with measurement %s: %w", m, err)
			}
			idx = &p.Index
		}
		return stapler.Collect(ctx, logClient{c}, *idx)
	}
}

type logClient struct{ c *client.Client }

func (l logClient) Proof(ctx context.Context, idx uint64) (*tlogproof.Proof, error) {
	p, _, err := l.c.Proof(ctx, idx)
	return p, err
}

func (l logClient) IdentityProof(ctx context.Context, idx uint64) (*vindex.Proof, error) {
	p, _, err := l.c.IdentityProof(ctx, idx)
	return p, err
}

// Measurement reads the launch measurement (SNP MEASUREMENT, TDX MRTD;
// on Azure, the paravisor's, from the HCL report's SNP report or the TD
// quote) of evidence, hex, without verifying it.
func Measurement(b *evidence.Bundle) (string, error) {
	switch b.Platform {
	case evidence.SEVSNP, evidence.AzureSEVSNP:
		report := b.Report
		if b.Platform == evidence.AzureSEVSNP {
			if b.VTPM == nil {
				return "", errors.New("azure-sev-snp evidence without its vtpm object")
			}
			h, err := vtpm.ParseHCLReport(b.VTPM.HCLReport)
			if err != nil {
				return "", err
			}
			report = h.Hardware
		}
		r, err := sevabi.ReportToProto(report)
		if err != nil {
			return "", err
		}
		return hex.EncodeToString(r.Measurement), nil
	case evidence.TDX, evidence.AzureTDX:
		q, err := tdxabi.QuoteToProto(b.Quote)
		if err != nil {
			return "", err
		}
		if q4, ok := q.(*tpb.QuoteV4); ok {
			return hex.EncodeToString(q4.GetTdQuoteBody().GetMrTd()), nil
		}
	}
	return "", fmt.Errorf("no measurement in %s evidence", b.Platform)
}
