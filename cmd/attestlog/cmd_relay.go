package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/relay"
)

func init() {
	register("relay", "an Oblivious HTTP relay a third party runs: forwards encapsulated requests to the configured enclave gateways, and nothing about the client", runRelay)
}

// gatewayFlags collects repeated --gateway flags.
type gatewayFlags []relay.Gateway

func (g *gatewayFlags) String() string { return fmt.Sprint(len(*g), " gateways") }
func (g *gatewayFlags) Set(s string) error {
	gw, err := relay.ParseGateway(s)
	if err != nil {
		return err
	}
	*g = append(*g, gw)
	return nil
}

func runRelay(args []string) error {
	fs := newFlagSet("relay", "--gateway [NAME=]https://enclave:port ... [--listen ADDR] [--metrics-listen ADDR]")
	var gateways gatewayFlags
	fs.Var(&gateways, "gateway", "an enclave agent this relay forwards to, as [NAME=]URL (repeat for more); clients post to /g/NAME")
	listen := fs.String("listen", "127.0.0.1:8282", "where to serve the relay (plain HTTP; put TLS in front for the Internet)")
	metricsListen := fs.String("metrics-listen", "", "where to serve Prometheus metrics at /metrics (empty: nowhere)")
	insecure := fs.Bool("insecure-gateway-tls", false, "accept the gateways' TLS certificates without checking them (an attestlog enclave's certificate is self-signed: its key is attested, and what the relay forwards is sealed to the attested HPKE key anyway)")
	maxRequest := fs.Int64("max-request", relay.DefaultMaxRequest, "largest encapsulated request, in bytes")
	maxResponse := fs.Int64("max-response", relay.DefaultMaxResponse, "largest answer, in bytes")
	rate := fs.Float64("rate", relay.DefaultRate, "requests per second per source address")
	burst := fs.Int("burst", relay.DefaultBurst, "requests at once per source address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(gateways) == 0 {
		fmt.Fprintln(fs.Output(), "at least one --gateway is required")
		fs.Usage()
		return errUsage
	}
	logger := newLogger()
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, DisableCompression: true, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure},
	}
	rl, err := relay.New(relay.Options{Gateways: gateways, MaxRequest: *maxRequest, MaxResponse: *maxResponse, Rate: *rate, Burst: *burst, Transport: tr, Logger: logger})
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if *metricsListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(rl.Collectors()...)
		mln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", *metricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go httpserve.Serve(ctx, httpserve.NewServer(mux), mln)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	var names []string
	for _, g := range gateways {
		names = append(names, g.Name+"="+g.URL.Redacted())
	}
	logger.Info("OHTTP relay", "listen", "http://"+ln.Addr().String(), "gateways", strings.Join(names, " "))
	srv := httpserve.NewServer(rl.Handler())
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 0 // answers stream as long as the gateway sends
	return httpserve.Serve(ctx, srv, ln)
}
