package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/attestlog/attestlog/log/logserver"
)

func init() {
	register("log serve", "run the log server", runLogServe)
	register("log reindex", "rebuild the log's measurement index from the log", runLogReindex)
}

func runLogServe(args []string) error {
	fs := newFlagSet("log serve", "--config log.yaml")
	cfgPath := fs.String("config", "", "log configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		fs.Usage()
		return errUsage
	}
	cfg, err := logserver.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	logger := newLogger()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	l, err := logserver.Open(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l.Close(cctx)
	}()
	logger.Info("log serving", "origin", cfg.Origin, "url", "http://"+ln.Addr().String(), "vkey", l.VKey())
	return serve(ctx, newServer(l.Handler()), ln)
}

func runLogReindex(args []string) error {
	fs := newFlagSet("log reindex", "--config log.yaml")
	cfgPath := fs.String("config", "", "log configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		fs.Usage()
		return errUsage
	}
	cfg, err := logserver.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	l, err := logserver.Open(ctx, cfg, newLogger())
	if err != nil {
		return err
	}
	defer l.Close(ctx)
	n, err := l.Reindex(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("reindexed %d entries\n", n)
	return nil
}
