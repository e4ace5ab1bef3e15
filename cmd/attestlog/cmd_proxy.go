package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/proxy"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/policy/verify"
)

func init() {
	register("proxy", "a local plain-HTTP endpoint (e.g. an OpenAI base URL) that sends only over the attested channel to a trusted enclave", runProxy)
}

func runProxy(args []string) error {
	fs := newFlagSet("proxy", "--policy FILE --enclave URL [--listen 127.0.0.1:PORT] [--allow-remote]")
	policyPath := fs.String("policy", "", "trust policy file")
	enclaveURL := fs.String("enclave", "", "the enclave agent's URL (https://host:port)")
	listen := fs.String("listen", "127.0.0.1:8090", "where to serve plain HTTP (loopback unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a --listen address other programs on the network can reach")
	refresh := fs.Duration("refresh", channel.DefaultRefresh, "how long a verdict holds before the document (and its staples) is fetched again")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *policyPath == "" || *enclaveURL == "" {
		fmt.Fprintln(fs.Output(), "--policy and --enclave are required")
		fs.Usage()
		return errUsage
	}
	if err := proxy.CheckListen(*listen); err != nil && !*allowRemote {
		return err
	}
	v, err := verify.Load(*policyPath)
	if err != nil {
		return err
	}
	logger := newLogger()
	c, err := channel.New(channel.NewVerifier(v, *refresh), *enclaveURL, channel.WithLogger(logger))
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	vctx, vcancel := context.WithTimeout(ctx, time.Minute)
	if _, err := c.Verify(vctx); err != nil {
		logger.Warn("the enclave is not trusted now; requests will be refused until it is", "err", err)
	}
	vcancel()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	p := proxy.New(c, logger)
	go p.Run(ctx, *refresh)
	logger.Info("attested proxy", "listen", "http://"+ln.Addr().String(), "enclave", c.Base().Redacted(), "verdict", "http://"+ln.Addr().String()+proxy.VerdictPath)
	srv := httpserve.NewServer(p.Handler())
	srv.ReadTimeout, srv.WriteTimeout = 0, 0 // streamed answers last as long as they last
	return httpserve.Serve(ctx, srv, ln)
}
