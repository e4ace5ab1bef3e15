package witness

import (
	"context"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestlog/attestlog/witness/internal/store"
	"github.com/attestlog/attestlog/witness/protocol"

	"github.com/attestlog/attestlog/internal/httpbody"
)

type ctxKey struct{}

// requestLog is filled by a handler with what its log line should say.
type requestLog struct {
	endpoint string
	info     reqInfo
	err      error
}

func (w *Witness) newHandler() http.Handler {
	mux := http.NewServeMux()
	// > The request MUST be an HTTP POST.
	mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	// > GET <monitoring prefix>/<origin hash>/checkpoint
	mux.HandleFunc("GET /{originhash}/checkpoint", w.serveCheckpoint)
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", w.serveIndex)
	return http.MaxBytesHandler(w.logRequests(mux), w.cfg.MaxRequestBytes)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests writes one slog line per request and records the metrics.
// Attribute keys are fixed: method, path, endpoint, status, duration_ms,
// remote, and for add-checkpoint origin, old, size, and error.
func (w *Witness) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rl := &requestLog{endpoint: "other"}
		sw := &statusWriter{ResponseWriter: rw}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, rl)))
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		d := time.Since(start)
		w.metrics.requests.WithLabelValues(rl.endpoint, strconv.Itoa(sw.code)).Inc()
		w.metrics.duration.WithLabelValues(rl.endpoint).Observe(d.Seconds())
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("endpoint", rl.endpoint),
			slog.Int("status", sw.code),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		}
		if rl.info.origin != "" {
			attrs = append(attrs, slog.String("origin", rl.info.origin))
		}
		if rl.endpoint == "add-checkpoint" {
			attrs = append(attrs, slog.Uint64("old", rl.info.old))
			if rl.info.hasCP {
				attrs = append(attrs, slog.Uint64("size", rl.info.size))
			}
		}
		// Routine answers (cosignatures, checkpoint reads) at debug;
		// refusals at info; our own failures at error.
		level := slog.LevelDebug
		if rl.err != nil {
			attrs = append(attrs, slog.String("error", rl.err.Error()))
		}
		switch {
		case sw.code >= 500:
			level = slog.LevelError
		case sw.code >= 400 || rl.err != nil:
			level = slog.LevelInfo
		}
		w.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

func reqLog(r *http.Request) *requestLog {
	if rl, ok := r.Context().Value(ctxKey{}).(*requestLog); ok {
		return rl
	}
	return &requestLog{}
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	rl := reqLog(r)
	rl.endpoint = "add-checkpoint"
	body, err := httpbody.Read(r)
	var cosig []byte
	if err == nil {
		cosig, err = w.addCheckpoint(r.Context(), body, &rl.info)
	}
	rl.err = err
	code := statusCode(err)
	switch code {
	case http.StatusOK:
		// > The response body MUST be a sequence of one or more [note]
		// > signature lines, each starting with the `—` character (U+2014)
		// > and ending with a newline character (U+000A).
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(cosig)
	case http.StatusConflict:
		var ce *ConflictError
		errors.As(err, &ce)
		// > The response body MUST consist of the tree size of the latest
		// > cosigned checkpoint in decimal, followed by a newline (U+000A).
		// > The response MUST have a `Content-Type` of `text/x.tlog.size`.
		rw.Header().Set("Content-Type", protocol.ContentTypeTreeSize)
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", ce.Size)
	case http.StatusInternalServerError:
		http.Error(rw, "internal error", code)
	default:
		// Say what was wrong, so the log operator can fix it.
		http.Error(rw, err.Error(), code)
	}
}

var originHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	rl := reqLog(r)
	rl.endpoint = "checkpoint"
	h := r.PathValue("originhash")
	// > The origin hash is the SHA-256 hash of the log's origin, hex
	// > encoded, in lowercase.
	if !originHashRE.MatchString(h) {
		rl.err = errors.New("not a lowercase hex SHA-256")
		http.Error(rw, "not found: the path must be /<lowercase hex SHA-256 of the origin>/checkpoint", http.StatusNotFound)
		return
	}
	cp, err := w.store.CheckpointByOriginHash(r.Context(), h)
	if errors.Is(err, store.ErrUnknownLog) {
		// > If the witness has never cosigned a checkpoint for that log, it
		// > MUST respond with a "404 Not Found" HTTP status code instead.
		rl.err = err
		http.Error(rw, "no checkpoint cosigned for this origin", http.StatusNotFound)
		return
	}
	if err != nil {
		rl.err = err
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(cp)
}

func (w *Witness) serveIndex(rw http.ResponseWriter, r *http.Request) {
	rl := reqLog(r)
	rl.endpoint = "index"
	logs, err := w.Logs(r.Context())
	if err != nil {
		rl.err = err
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(rw, "attestlog witness %s\n\nvkey %s\n\n", w.Name(), w.VerifierKey())
	for _, l := range logs {
		state := "witnessed"
		if len(l.Keys) == 0 {
			state = "removed"
		}
		// A relative link, so that it also works under a path prefix.
		fmt.Fprintf(rw, "log %s\n  %s, size %d, root %s\n  checkpoint ./%s/checkpoint\n",
			l.Origin, state, l.Size, l.RootHash, protocol.OriginHash(l.Origin))
	}
}

// Serve serves w.Handler() on l (or, if l is nil, on cfg.Listen) with
// server timeouts from cfg, until ctx is done; it then shuts down,
// letting requests in flight finish for up to 5 seconds.
func Serve(ctx context.Context, w *Witness, l net.Listener) error {
	if l == nil {
		var err error
		l, err = net.Listen("tcp", w.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: w.cfg.RequestTimeout,
		ReadTimeout:       w.cfg.RequestTimeout,
		// Longer than ReadTimeout, so that a body too slow to read
		// still gets its 408.
		WriteTimeout:   2 * w.cfg.RequestTimeout,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	w.log.Info("witness listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}
