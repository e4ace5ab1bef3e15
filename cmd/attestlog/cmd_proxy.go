package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/proxy"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/policy/verify"
)

func init() {
	register("proxy", "a local plain-HTTP endpoint (e.g. an OpenAI base URL) that sends only over the attested channel to a trusted enclave", runProxy)
}

func runProxy(args []string) error {
	fs := newFlagSet("proxy", "--policy FILE (--enclave URL | --relay URL) [--listen 127.0.0.1:PORT] [--allow-remote]")
	policyPath := fs.String("policy", "", "trust policy file")
	enclaveURL := fs.String("enclave", "", "the enclave agent's URL (https://host:port): TLS pinned to the attested key")
	relayURL := fs.String("relay", "", "instead of --enclave: an OHTTP relay's URL for the enclave's gateway (http(s)://relay/g/NAME): requests sealed to the attested HPKE key, the relay sees who, the enclave what, neither both")
	classical := fs.Bool("x25519", false, "with --relay: seal to the X25519 key instead of the post-quantum hybrid (MLKEM768-X25519)")
	listen := fs.String("listen", "127.0.0.1:8090", "where to serve plain HTTP (loopback unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a --listen address other programs on the network can reach")
	refresh := fs.Duration("refresh", channel.DefaultRefresh, "how long a verdict holds before the document (and its staples) is fetched again")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *policyPath == "" || (*enclaveURL == "") == (*relayURL == "") {
		fmt.Fprintln(fs.Output(), "--policy and one of --enclave and --relay are required")
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
	var p *proxy.Proxy
	var c proxy.Channel
	target := *enclaveURL
	if *relayURL != "" {
		var opts []channel.ObliviousOption
		if *classical {
			opts = append(opts, channel.WithKEM(keyset.KEMX25519))
		}
		o, err := channel.NewOblivious(channel.NewVerifier(v, *refresh), *relayURL, append(opts, channel.WithObliviousLogger(logger))...)
		if err != nil {
			return err
		}
		c, p, target = o, proxy.NewOblivious(o, logger), "oblivious via "+o.Relay().Redacted()
	} else {
		tc, err := channel.New(channel.NewVerifier(v, *refresh), *enclaveURL, channel.WithLogger(logger))
		if err != nil {
			return err
		}
		c, p, target = tc, proxy.New(tc, logger), tc.Base().Redacted()
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
	go p.Run(ctx, *refresh)
	logger.Info("attested proxy", "listen", "http://"+ln.Addr().String(), "enclave", target, "verdict", "http://"+ln.Addr().String()+proxy.VerdictPath)
	srv := httpserve.NewServer(p.Handler())
	srv.ReadTimeout, srv.WriteTimeout = 0, 0 // streamed answers last as long as they last
	return httpserve.Serve(ctx, srv, ln)
}
