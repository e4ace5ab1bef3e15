package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

var stderr = os.Stderr

// newLogger returns the process's slog logger: text to stderr, debug level
// when ATTESTLOG_DEBUG=1.
func newLogger() *slog.Logger {
	lvl := slog.LevelInfo
	if os.Getenv("ATTESTLOG_DEBUG") == "1" {
		lvl = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	// Tessera logs through klog; send that to the same place, in the same
	// format.
	klog.SetSlogLogger(slog.New(quietTessera{l.With("component", "tessera").Handler()}))
	return l
}

// quietTessera logs at debug what Tessera says at info on every start of
// a new log and is not news: it found no checkpoint to witness from.
type quietTessera struct{ slog.Handler }

func (q quietTessera) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && strings.HasPrefix(r.Message, "Failed to fetch old checkpoint") && strings.Contains(r.Message, "does not exist") {
		r.Level = slog.LevelDebug
		if !q.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietTessera) WithAttrs(as []slog.Attr) slog.Handler {
	return quietTessera{q.Handler.WithAttrs(as)}
}

func (q quietTessera) WithGroup(name string) slog.Handler {
	return quietTessera{q.Handler.WithGroup(name)}
}

// serverGC sets the garbage collector of a long-running server: unless
// GOGC is set, collect when the heap has grown 4× (Go's default is 2×).
// Admission allocates for every statement it parses, and the server's
// live heap is small, so this trades some memory for CPU.
func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// envCPUProfile starts a CPU profile into the file ATTESTLOG_CPUPROFILE
// names, if it names one; stop ends it.
func envCPUProfile() (stop func(), err error) {
	p := os.Getenv("ATTESTLOG_CPUPROFILE")
	if p == "" {
		return func() {}, nil
	}
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
