package logserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/httpbody"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/internal/index"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
)

// Errors of the read API.
var (
	// ErrNotFound: no such entry, measurement or tile.
	ErrNotFound = api.ErrNotFound
	// ErrNotWitnessed: the entry exists but no published (witnessed)
	// checkpoint covers it yet.
	ErrNotWitnessed = api.ErrNotWitnessed
	errBadRequest   = errors.New("bad request")
)

// Handler returns the log's HTTP API.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, l.instrument(pattern, h))
	}
	route("POST /add", l.handleAdd)
	route("GET /checkpoint", l.handleCheckpoint)
	route("GET /tile/entries/{path...}", l.handleEntries)
	route("GET /tile/{level}/{path...}", l.handleTile)
	route("GET /proof", l.handleProof)
	route("GET /lookup", l.handleLookup)
	route("GET /index/proof", l.handleIndexProof)
	route("GET /entry/{index}", l.handleEntry)
	route("GET /unreadable", l.handleUnreadable)
	mux.Handle("GET /metrics", promhttp.HandlerFor(l.metrics.reg, promhttp.HandlerOpts{}))
	return http.MaxBytesHandler(mux, statement.MaxEntrySize+1)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument writes the error of h, if any, with the one status mapping
// of statusOf, and logs one line per request.
func (l *Log) instrument(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		err := h(sw, r)
		if err != nil {
			code := statusOf(err)
			if code == http.StatusServiceUnavailable || errors.Is(err, ErrNotWitnessed) || errors.Is(err, ErrRetry) {
				sw.Header().Set("Retry-After", "1")
			}
			sw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			sw.Header().Del("Cache-Control")
			sw.WriteHeader(code)
			msg := err.Error()
			if code == http.StatusInternalServerError {
				msg = "internal error"
			}
			fmt.Fprintln(sw, msg)
		}
		l.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.code, "duration", time.Since(start).Round(time.Microsecond)}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		if sw.code >= 500 {
			l.logger.Error("request", attrs...)
		} else if r.URL.Path == "/add" || err != nil {
			l.logger.Info("request", attrs...)
		} else {
			l.logger.Debug("request", attrs...)
		}
	})
}

// statusOf is the one mapping from errors to HTTP status codes.
func statusOf(err error) int {
	if code, ok := httpbody.Status(err); ok {
		return code
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, statement.ErrMalformed), errors.Is(err, ErrBadReference), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotWitnessed), errors.Is(err, os.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, tessera.ErrPushback), errors.Is(err, ErrRetry), errors.Is(err, ErrUnavailable), errors.Is(err, ErrSlow):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (l *Log) handleAdd(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	body, err := httpbody.Read(r)
	if err != nil {
		return err
	}
	res, err := l.Admit(withClient(r.Context(), clientFromAddr(r.RemoteAddr)), body)
	kind := string(res.Kind)
	if kind == "" {
		kind = "unknown"
	}
	if err != nil {
		l.metrics.adds.WithLabelValues(kind, strconv.Itoa(statusOf(err))).Inc()
		return err
	}
	l.metrics.addTime.Observe(time.Since(start).Seconds())
	l.metrics.adds.WithLabelValues(kind, "200").Inc()
	return writeJSON(w, api.AddResponse{Index: res.Index, Duplicate: res.Duplicate})
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
	return nil
}

func (l *Log) handleCheckpoint(w http.ResponseWriter, r *http.Request) error {
	cp, err := l.reader.ReadCheckpoint(r.Context())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: no checkpoint has been published yet (is the witness quorum reachable?)", ErrNotFound)
		}
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
	return nil
}

func (l *Log) handleTile(w http.ResponseWriter, r *http.Request) error {
	level, idx, p, err := layout.ParseTileLevelIndexPartial(r.PathValue("level"), r.PathValue("path"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	t, err := l.reader.ReadTile(r.Context(), level, idx, p)
	if err != nil {
		return notFound(err)
	}
	// Tessera's MySQL driver answers with the tile as it is now, which
	// may have grown past the requested width; c2sp.org/tlog-tiles
	// serves exactly p hashes.
	if p > 0 && len(t) > int(p)*sha256.Size {
		t = t[:int(p)*sha256.Size]
	}
	writeTile(w, t, p)
	return nil
}

// truncateBundle returns the first p entries of an entry bundle (each a
// big-endian uint16 length and the entry), or the bundle if it has no
// more than p.
func truncateBundle(b []byte, p int) ([]byte, error) {
	off := 0
	for range p {
		if len(b)-off < 2 {
			return b, nil
		}
		n := int(b[off])<<8 | int(b[off+1])
		if len(b)-off-2 < n {
			return nil, fmt.Errorf("entry bundle: an entry of %d bytes past the end", n)
		}
		off += 2 + n
	}
	return b[:off], nil
}

func (l *Log) handleEntries(w http.ResponseWriter, r *http.Request) error {
	idx, p, err := layout.ParseTileIndexPartial(r.PathValue("path"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	b, err := l.reader.ReadEntryBundle(r.Context(), idx, p)
	if err != nil {
		return notFound(err)
	}
	if p > 0 {
		// As for hash tiles: exactly p entries, however many the
		// storage has now.
		if b, err = truncateBundle(b, int(p)); err != nil {
			return err
		}
	}
	writeTile(w, b, p)
	return nil
}

func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: no such tile", ErrNotFound)
	}
	return err
}

// writeTile serves a tile with the caching c2sp.org/tlog-tiles allows:
// full tiles never change, partial ones only until they fill up.
func writeTile(w http.ResponseWriter, b []byte, p uint8) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if p == 0 {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	w.Write(b)
}

// Proof returns the tlog-proof of entry idx under the latest published
// (witnessed) checkpoint.
func (l *Log) Proof(ctx context.Context, idx uint64) (*tlogproof.Proof, error) {
	cpRaw, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no witnessed checkpoint has been published yet", ErrNotWitnessed)
		}
		return nil, err
	}
	return l.proofUnder(ctx, idx, cpRaw)
}

// proofUnder returns the tlog-proof of entry idx under cpRaw, a
// checkpoint the log published (witnessed).
func (l *Log) proofUnder(ctx context.Context, idx uint64, cpRaw []byte) (*tlogproof.Proof, error) {
	body, _, _ := bytes.Cut(cpRaw, []byte("\n\n"))
	cp, err := torchwood.ParseCheckpoint(string(body) + "\n")
	if err != nil {
		return nil, fmt.Errorf("parsing our own checkpoint: %w", err)
	}
	size := uint64(cp.N)
	if idx >= size {
		if next, err := l.reader.NextIndex(ctx); err == nil && idx >= next {
			return nil, fmt.Errorf("%w: the log has %d entries, there is no entry %d", ErrNotFound, next, idx)
		}
		return nil, fmt.Errorf("%w: entry %d is not yet covered by a witnessed checkpoint (the latest covers %d entries); retry shortly", ErrNotWitnessed, idx, size)
	}
	pb, err := client.NewProofBuilder(ctx, size, l.reader.ReadTile)
	if err != nil {
		return nil, err
	}
	hashes, err := pb.InclusionProof(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("building inclusion proof: %w", err)
	}
	bundle, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, idx/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, fmt.Errorf("reading entry %d: %w", idx, err)
	}
	entry := bundle.Entries[idx%layout.EntryBundleWidth]
	p := &tlogproof.Proof{Extra: entry, Index: idx, Checkpoint: cpRaw}
	for _, h := range hashes {
		p.Hashes = append(p.Hashes, tlog.Hash(h))
	}
	// Never hand out a proof that does not verify.
	if err := p.VerifyInclusion(entry, cp.N, cp.Hash); err != nil {
		return nil, fmt.Errorf("self-check of proof for %d: %w", idx, err)
	}
	return p, nil
}

func (l *Log) handleProof(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var idx uint64
	switch {
	case q.Has("index"):
		n, err := strconv.ParseUint(q.Get("index"), 10, 63)
		if err != nil {
			return fmt.Errorf("%w: index must be a non-negative integer", errBadRequest)
		}
		idx = n
	case q.Has("measurement"):
		m, err := hexParam(q.Get("measurement"))
		if err != nil {
			return err
		}
		rels, err := l.releasesWith(r.Context(), m)
		if err != nil {
			return err
		}
		if len(rels) == 0 {
			return fmt.Errorf("%w: no release with measurement %s has been logged", ErrNotFound, m)
		}
		idx = rels[len(rels)-1] // the newest release with it
	default:
		return fmt.Errorf("%w: give ?index=N or ?measurement=HEX", errBadRequest)
	}
	p, err := l.Proof(r.Context(), idx)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(p.Marshal())
	return nil
}

func hexParam(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if _, err := hex.DecodeString(s); err != nil || s == "" || len(s) > 128 {
		q := s
		if len(q) > 140 {
			q = fmt.Sprintf("%.128s… (%d bytes)", q, len(s))
		}
		return "", fmt.Errorf("%w: %q is not a hex measurement or digest (up to 128 hex characters)", errBadRequest, q)
	}
	return s, nil
}

func infoOf(e index.Entry) api.EntryInfo {
	return api.EntryInfo{
		Index: e.Index, Kind: string(e.Kind), Signer: e.SignerName, SignerKeyID: e.SignerKey,
		EntrySHA256: e.EntrySHA256, Platform: e.Platform, Version: e.Version,
		Measurement: e.Measurement, Time: e.Time, Release: e.Ref, Outcome: e.Outcome,
		HasProvenance: e.HasProvenance, Problem: e.Problem, Reason: e.Reason, Advisory: e.Advisory,
	}
}

// Unreadable lists the entries the index recorded as unreadable (up to n,
// oldest first) and how many there are.
func (l *Log) Unreadable(ctx context.Context, n int) (api.UnreadableResponse, error) {
	es, total, err := l.idx.Unreadable(ctx, n)
	if err != nil {
		return api.UnreadableResponse{}, err
	}
	out := api.UnreadableResponse{Total: total, Entries: make([]api.EntryInfo, 0, len(es))}
	for _, e := range es {
		out.Entries = append(out.Entries, infoOf(e))
	}
	return out, nil
}

func (l *Log) handleUnreadable(w http.ResponseWriter, r *http.Request) error {
	u, err := l.Unreadable(r.Context(), 100)
	if err != nil {
		return err
	}
	return writeJSON(w, u)
}

// Describe returns the index's view of entry idx with, for a release, its
// reproductions and revocations.
func (l *Log) Describe(ctx context.Context, idx uint64) (api.EntryInfo, error) {
	e, err := l.idx.Get(ctx, idx)
	if errors.Is(err, index.ErrNotFound) {
		return api.EntryInfo{}, fmt.Errorf("%w: no entry %d in the index", ErrNotFound, idx)
	}
	if err != nil {
		return api.EntryInfo{}, err
	}
	info := infoOf(e)
	if e.Kind == statement.KindRelease {
		rel, err := l.idx.Related(ctx, idx)
		if err != nil {
			return api.EntryInfo{}, err
		}
		for _, r := range rel {
			switch r.Kind {
			case statement.KindReproduction:
				info.Reproductions = append(info.Reproductions, infoOf(r))
			case statement.KindRevocation:
				info.Revocations = append(info.Revocations, infoOf(r))
			}
		}
	}
	return info, nil
}

func (l *Log) handleLookup(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := q.Get("measurement")
	if v == "" {
		v = q.Get("digest")
	}
	if v == "" {
		return fmt.Errorf("%w: give ?measurement=HEX or ?digest=HEX", errBadRequest)
	}
	v, err := hexParam(v)
	if err != nil {
		return err
	}
	es, err := l.Lookup(r.Context(), v)
	if err != nil {
		return err
	}
	resp := api.LookupResponse{Query: v, Entries: append([]api.EntryInfo{}, es...)}
	d, _ := hex.DecodeString(v)
	if t, ok := lookupType(q, d, es); ok {
		if ip, err := l.IndexProof(r.Context(), t, d); err == nil {
			resp.IndexProof = string(ip.Marshal())
		}
	}
	return writeJSON(w, resp)
}

// lookupType is the key type a lookup of d is proven under: the type
// parameter when given; else, for a measurement, the TDX MRTD when a TDX
// release has it and the SNP launch digest otherwise, and for an artifact
// digest the algorithm of its size.
func lookupType(q url.Values, d []byte, es []api.EntryInfo) (vindex.KeyType, bool) {
	if q.Has("type") {
		t, err := vindex.ParseKeyType(q.Get("type"))
		return t, err == nil && t != vindex.KeyIdentity && t.CheckDigest(d) == nil
	}
	if q.Has("measurement") {
		t := vindex.KeySNPLaunchDigest
		for _, e := range es {
			if statement.HardwarePlatform(e.Platform) == statement.PlatformTDX {
				t = vindex.KeyTDXMRTD
			}
		}
		return t, t.CheckDigest(d) == nil
	}
	for _, t := range []vindex.KeyType{vindex.KeyArtifactSHA256, vindex.KeyArtifactSHA384, vindex.KeyArtifactSHA512} {
		if t.CheckDigest(d) == nil {
			return t, true
		}
	}
	return "", false
}

func (l *Log) handleEntry(w http.ResponseWriter, r *http.Request) error {
	idx, err := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err != nil {
		return fmt.Errorf("%w: entry index must be a non-negative integer", errBadRequest)
	}
	info, err := l.Describe(r.Context(), idx)
	if err != nil {
		return err
	}
	return writeJSON(w, info)
}

// Recent returns up to n entries, newest first, with indexes below before
// (0: from the newest).
func (l *Log) Recent(ctx context.Context, n int, before uint64) ([]api.EntryInfo, error) {
	es, err := l.idx.Recent(ctx, n, before)
	if err != nil {
		return nil, err
	}
	out := make([]api.EntryInfo, 0, len(es))
	for _, e := range es {
		out = append(out, infoOf(e))
	}
	return out, nil
}

// Lookup returns the entries with the measurement or artifact digest v
// (lowercase hex), oldest first, each described as by Describe.
func (l *Log) Lookup(ctx context.Context, v string) ([]api.EntryInfo, error) {
	rels, err := l.releasesWith(ctx, v)
	if err != nil {
		return nil, err
	}
	out := make([]api.EntryInfo, 0, len(rels))
	for _, idx := range rels {
		info, err := l.Describe(ctx, idx)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// releasesWith returns the indices, ascending, of the indexed releases
// that name v (hex, either case) as a measurement register or an artifact
// digest. The verifiable index's map answers, below the entry index's
// end, so that every index returned is described.
func (l *Log) releasesWith(ctx context.Context, v string) ([]uint64, error) {
	d, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not hex", errBadRequest, v)
	}
	end, err := l.idx.Next(ctx)
	if err != nil {
		return nil, err
	}
	return l.vidx.releasesWith(ctx, d, end)
}

// Statement returns entry idx as logged and parsed. Only integrated
// entries are returned; ErrNotFound otherwise.
func (l *Log) Statement(ctx context.Context, idx uint64) (*statement.Parsed, []byte, error) {
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return nil, nil, err
	}
	if idx >= size {
		return nil, nil, fmt.Errorf("%w: no entry %d (the log has %d)", ErrNotFound, idx, size)
	}
	b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, idx/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, nil, err
	}
	entry := b.Entries[idx%layout.EntryBundleWidth]
	p, err := statement.ParseEntry(entry)
	if err != nil {
		return nil, entry, err
	}
	return p, entry, nil
}

// CheckpointRecord is a published checkpoint as the log saw it.
type CheckpointRecord = api.CheckpointRecord

// Checkpoints returns up to n of the checkpoints the log published,
// newest first.
func (l *Log) Checkpoints(ctx context.Context, n int) ([]CheckpointRecord, error) {
	rs, err := l.idx.Checkpoints(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]CheckpointRecord, len(rs))
	for i, r := range rs {
		out[i] = CheckpointRecord{Size: r.Size, Note: r.Note, SeenAt: r.SeenAt}
	}
	return out, nil
}

// Checkpoint returns the latest published checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	return l.reader.ReadCheckpoint(ctx)
}
