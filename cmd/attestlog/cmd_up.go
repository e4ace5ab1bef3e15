package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/attestlog/attestlog/internal/up"
)

func init() {
	register("up", "run the whole system on embedded defaults (log, witness, auditor, demo enclave)", runUp)
}

func runUp(args []string) error {
	fs := newFlagSet("up", "[--dir DIR] [--listen ADDR] [--enclave-listen ADDR] [--platform P] [--auditor=false]")
	dir := fs.String("dir", up.DefaultDir, "directory for keys, configuration and data (reused on restart)")
	listen := fs.String("listen", up.DefaultListen, "address to serve everything on (port 0 picks a free port)")
	enclaveListen := fs.String("enclave-listen", up.DefaultEnclaveListen, "address of the demo enclave agent's TLS (port 0 picks a free port)")
	withAuditor := fs.Bool("auditor", true, "run the auditor (an independent party by design, in this process for the demo; --auditor=false to benchmark the log alone)")
	platform := fs.String("platform", up.DefaultPlatform, "what the demo enclave plays, its evidence signed under test roots: "+strings.Join(up.PlatformNames(), ", "))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	serverGC()
	ctx, cancel := signalContext()
	defer cancel()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (use --listen to pick another address)", *listen, err)
	}
	eln, err := net.Listen("tcp", *enclaveListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s: %w (use --enclave-listen to pick another address)", *enclaveListen, err)
	}
	// The WebAssembly client of the explorer's verify page: the files in
	// ATTESTLOG_WASM_DIR if set, else built from the source tree around
	// the working directory at the page's first visit (and cached).
	logger := newLogger()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	wasm := up.NewWasm(ctx, os.Getenv("ATTESTLOG_WASM_DIR"), ".", filepath.Join(cache, "attestlog", "wasm"), logger.With("component", "wasm"))
	cfg := up.Config{Dir: *dir, Listener: ln, EnclaveListener: eln, Auditor: *withAuditor, Platform: *platform, Pprof: os.Getenv("ATTESTLOG_PPROF") == "1", Logger: logger, Wasm: wasm}
	return up.Run(ctx, cfg, func(info *up.Info) { up.WriteSummary(os.Stdout, info) })
}
