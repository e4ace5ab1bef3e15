package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/web"
)

func init() {
	register("log serve", "run the log server", runLogServe)
	register("log reindex", "rebuild the log's measurement index from the log", runLogReindex)
	register("log migrate", "move a log from the legacy MySQL storage to S3 + MySQL (one way; frontends stopped)", runLogMigrate)
}

func runLogMigrate(args []string) error {
	fs := newFlagSet("log migrate", "--from old.yaml --to new.yaml")
	fromPath := fs.String("from", "", "the log's configuration on the legacy MySQL storage (YAML)")
	toPath := fs.String("to", "", "the log's configuration on S3 + MySQL storage (YAML): same origin and key, another database")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *fromPath == "" || *toPath == "" {
		fs.Usage()
		return errUsage
	}
	from, err := logserver.LoadConfig(*fromPath)
	if err != nil {
		return err
	}
	to, err := logserver.LoadConfig(*toPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	r, err := logserver.Migrate(ctx, from, to, newLogger())
	if err != nil {
		return err
	}
	fmt.Printf("migrated %d entries (root %x) and %d claims; start the frontends with %s\n", r.Size, r.Root, r.Claims, *toPath)
	return nil
}

// logConfigFlag parses the one flag of the log subcommands and loads the
// configuration it names.
func logConfigFlag(name string, args []string) (*logserver.Config, error) {
	fs := newFlagSet(name, "--config log.yaml")
	cfgPath := fs.String("config", "", "log configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if *cfgPath == "" {
		fs.Usage()
		return nil, errUsage
	}
	return logserver.LoadConfig(*cfgPath)
}

func runLogServe(args []string) error {
	cfg, err := logConfigFlag("log serve", args)
	if err != nil {
		return err
	}
	serverGC()
	ctx, cancel := signalContext()
	defer cancel()
	logger := newLogger()
	// ATTESTLOG_CPUPROFILE=FILE profiles the log's CPU until it stops
	// (docs/storage.md: where the CPU per entry goes).
	stop, err := envCPUProfile()
	if err != nil {
		return err
	}
	defer stop()
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
	h, err := logSite(l, cfg.WitnessPolicy, "")
	if err != nil {
		return err
	}
	logger.Info("log serving", "origin", cfg.Origin, "url", "http://"+ln.Addr().String(), "explorer", "http://"+ln.Addr().String()+web.DefaultExplorerPrefix, "vkey", l.VKey())
	return httpserve.Serve(ctx, httpserve.NewServer(h), ln)
}

// logSite serves the log's API with the web explorer beside it (and the
// root redirecting to it). dashboardURL links the explorer to an audit
// dashboard when one is served too.
func logSite(l *logserver.Log, witnessPolicy, dashboardURL string) (http.Handler, error) {
	wp, err := os.ReadFile(witnessPolicy)
	if err != nil {
		return nil, err
	}
	opts := []web.Option{web.WithWitnessPolicy(wp)}
	if dashboardURL != "" {
		opts = append(opts, web.WithDashboardURL(dashboardURL))
	}
	ex, err := web.NewExplorer(l, opts...)
	if err != nil {
		return nil, err
	}
	return ex.Site(l.Handler()), nil
}

func runLogReindex(args []string) error {
	cfg, err := logConfigFlag("log reindex", args)
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
