package main

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/agent/reportsrc"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/log/client"
)

func init() {
	register("enclave", "run the enclave agent inside a confidential VM: attested key set, TLS, attestation document, proxy to the service", runEnclave)
}

func runEnclave(args []string) error {
	fs := newFlagSet("enclave", "--config FILE")
	cfgPath := fs.String("config", "enclave.yaml", "the agent's configuration (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := agent.LoadConfig(*cfgPath)
	if err != nil {
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	logger := newLogger()
	ctx, cancel := signalContext()
	defer cancel()
	src, err := openSource(cfg)
	if err != nil {
		return err
	}
	opts := agent.Options{Source: src, Lifetime: cfg.KeyLifetime, StapleInterval: cfg.StapleInterval, Challenges: cfg.Challenges, MaxConnections: cfg.MaxConnections, Logger: logger}
	if cfg.GPUs == "nvml" {
		if opts.GPUs, err = reportsrc.OpenNVML(); err != nil {
			return err
		}
	}
	gpus := "none"
	if opts.GPUs != nil {
		gpus = opts.GPUs.Name()
	}
	logger.Info("hardware report source", "source", src.Name(), "gpus", gpus)
	if cfg.Log != "" {
		c, err := client.New(cfg.Log, nil)
		if err != nil {
			return err
		}
		opts.Staple = agent.LogStaple(c)
	} else {
		logger.Warn("no log configured: nothing is stapled, and clients whose policy requires proofs will not trust this enclave")
	}
	a, err := agent.New(ctx, opts)
	if err != nil {
		return err
	}
	if err := a.RefreshStaple(ctx); err != nil {
		logger.Warn("the first staple", "err", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(a.Collectors()...)
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go httpserve.Serve(ctx, httpserve.NewServer(mux), mln)
	}
	go a.Run(ctx)
	st := a.Status()
	logger.Info("serving the attested channel", "listen", ln.Addr().String(), "upstream", cfg.UpstreamURL().Redacted(), "key_set", st.KeySet, "not_after", st.NotAfter)
	return a.ServeTLS(ctx, ln, a.Handler(cfg.UpstreamURL()))
}

// openSource opens the configured report source; none is an error (the
// agent does not start without hardware evidence).
func openSource(cfg *agent.Config) (reportsrc.Source, error) {
	if cfg.Source != "demo" {
		return reportsrc.Open(cfg.Source)
	}
	m, _ := hex.DecodeString(cfg.Demo.Measurement)
	e, err := enclave.NewSNP(m)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.Demo.RootOut, e.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	return e, nil
}
