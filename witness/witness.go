// Package witness is a [c2sp.org/tlog-witness] witness: it verifies that each
// checkpoint a log submits is consistent with the latest one it cosigned for
// that log, and returns a [c2sp.org/tlog-cosignature] cosignature/v1
// (Ed25519, timestamped). Its state — for each log the verifier keys and the
// latest cosigned tree head and checkpoint — is in SQLite.
//
// Any log that speaks tlog-witness can use it (Tessera-based logs, Sigsum,
// Go's checksum database via a feeder, attestlog's own log).
//
// # API
//
//	cfg, err := witness.LoadConfig("witness.yaml") // or build a Config
//	w, err := witness.Open(ctx, cfg, logger)      // reads the key, opens the DB, adds cfg.Logs
//	defer w.Close()
//	err = w.AddLog(ctx, origin, vkey)              // idempotent; no restart needed
//	http.ListenAndServe(cfg.Listen, w.Handler())   // or witness.Serve(ctx, w, nil): timeouts, graceful stop
//	w.VerifierKey()                                // the cosignature/v1 vkey for log policies
//	w.RemoveLog(ctx, origin, ""); w.Logs(ctx); w.Evidence(ctx)
//
// OpenDB gives the same log management (and Evidence) on the database
// alone, without the key, for the CLI while a server runs.
//
// Handler serves:
//
//	POST /add-checkpoint            c2sp.org/tlog-witness add-checkpoint
//	GET  /{origin sha256}/checkpoint latest cosigned checkpoint, for monitors
//	GET  /metrics                   Prometheus metrics
//	GET  /                          name, vkey and logs, as text
//
// The submission and monitoring prefixes are both the root of Handler.
//
// # Guarantees
//
// The state that decides what the witness signs is persisted and fsynced
// before a cosignature leaves the process, and checking the old size and
// recording the new tree head are one compare-and-swap in SQLite, so that
// concurrent requests, several processes on one database, or a crash at any
// point never yield cosignatures on two inconsistent checkpoints.
//
// [c2sp.org/tlog-witness]: https://c2sp.org/tlog-witness
// [c2sp.org/tlog-cosignature]: https://c2sp.org/tlog-cosignature
package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/witness/internal/store"
)

// Witness is a running witness over one database. Its methods are safe for
// concurrent use.
type Witness struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	signer  *Signer
	metrics *metrics
	handler http.Handler

	// testHookBeforeUpdate, if set, runs after all checks passed and the
	// cosignature was made, just before the compare-and-swap. Tests use it
	// to line up concurrent requests.
	testHookBeforeUpdate atomic.Pointer[func(origin string)]
}

// Open validates cfg, reads the witness key, opens (or creates) the database
// and adds cfg.Logs. It refuses to start, with an error that says what to
// fix, if any of that fails. A nil logger discards.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Witness, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	signer, err := LoadKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	w := &Witness{cfg: cfg, log: logger, store: st, signer: signer}
	w.metrics = newMetrics(st)
	st.AfterCommit = w.metrics.observeCommit
	for _, l := range cfg.Logs {
		if err := w.AddLog(ctx, l.Origin, l.VKey); err != nil {
			st.Close()
			return nil, err
		}
	}
	w.handler = w.newHandler()
	logger.Info("witness open", "name", signer.Name(), "vkey", signer.VKey, "db", cfg.DB)
	return w, nil
}

// Close closes the database. Requests still in Handler fail.
func (w *Witness) Close() error { return w.store.Close() }

// Name is the witness name, the key name in its cosignature lines.
func (w *Witness) Name() string { return w.signer.Name() }

// VerifierKey is the cosignature/v1 vkey (type 0x04) of the witness, the
// key logs put in the "witness" lines of their policy.
func (w *Witness) VerifierKey() string { return w.signer.VKey }

// Handler returns the HTTP handler (see the package documentation), with the
// request body limited to Config.MaxRequestBytes and one slog line per
// request.
func (w *Witness) Handler() http.Handler { return w.handler }

// ValidateLog checks an origin and a verifier key as AddLog would.
func ValidateLog(origin, vkey string) error { return validateLog(origin, vkey) }

func validateLog(origin, vkey string) error {
	// The origin is the first line of a checkpoint: non-empty, one line.
	if origin == "" || strings.ContainsAny(origin, "\n") || !utf8.ValidString(origin) {
		return fmt.Errorf("origin %q: must be a non-empty single line of UTF-8", origin)
	}
	for _, r := range origin {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("origin %q: contains a control character", origin)
		}
	}
	if _, err := fnote.NewVerifier(vkey); err != nil {
		return fmt.Errorf("vkey %q for %q: not a note verifier key: %v", vkey, origin, err)
	}
	return nil
}

// AddLog starts witnessing origin, verifying its checkpoints with vkey. A new
// origin is witnessed from its first checkpoint (old 0). Adding another key
// to a known origin keeps its state (key rotation); adding a key it has is
// not an error; re-adding a removed origin continues from the tree head it
// had. It takes effect for the next request, also in a running server using
// the same database.
func (w *Witness) AddLog(ctx context.Context, origin, vkey string) error {
	created, err := addLog(ctx, w.store, origin, vkey, w.log)
	if err == nil && created {
		w.log.Info("log added", "origin", origin, "vkey", vkey)
	}
	return err
}

// RemoveLog stops witnessing origin: its keys are removed (only vkey if not
// empty), so its requests get 404 Not Found. The latest cosigned checkpoint
// is kept and still served to monitors, and re-adding the origin continues
// from it rather than from 0, which could sign a split view.
func (w *Witness) RemoveLog(ctx context.Context, origin, vkey string) error {
	return w.store.RemoveLog(ctx, origin, vkey)
}

// LogInfo describes one log the witness knows.
type LogInfo struct {
	Origin string   `json:"origin"`
	Keys   []string `json:"keys"` // empty for a removed log
	Size   uint64   `json:"size"`
	// RootHash is base64, as in checkpoints.
	RootHash string `json:"root_hash"`
	// Cosigned reports whether a checkpoint was ever cosigned.
	Cosigned bool `json:"cosigned"`
}

// Logs lists the logs the witness knows, removed ones included.
func (w *Witness) Logs(ctx context.Context) ([]LogInfo, error) { return listLogs(ctx, w.store) }

// Evidence is a checkpoint, validly signed by the log, that the witness
// refused as inconsistent with the one it had cosigned.
type Evidence struct {
	Origin   string    `json:"origin"`
	Received time.Time `json:"received"`
	// Kind is "split-view" (same size, another root: Request's checkpoint
	// and Cosigned are both signed by the log and cannot both be true) or
	// "bad-proof" (the consistency proof did not verify).
	Kind string `json:"kind"`
	// Request is the add-checkpoint body, verbatim.
	Request string `json:"request"`
	// Cosigned is the latest checkpoint the witness had cosigned then.
	Cosigned string `json:"cosigned"`
}

// Evidence lists the recorded evidence, oldest first.
func (w *Witness) Evidence(ctx context.Context) ([]Evidence, error) {
	return listEvidence(ctx, w.store)
}

func listEvidence(ctx context.Context, st *store.Store) ([]Evidence, error) {
	es, err := st.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Evidence, 0, len(es))
	for _, e := range es {
		out = append(out, Evidence{Origin: e.Origin, Received: e.Received.UTC(), Kind: e.Kind,
			Request: string(e.Request), Cosigned: string(e.Cosigned)})
	}
	return out, nil
}

// DB is a witness database opened without the key, for the management
// commands (add-log, list-logs, remove-log) to use while a server runs.
type DB struct {
	st  *store.Store
	log *slog.Logger
}

// OpenDB opens (creating if needed) the witness database at path.
func OpenDB(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return &DB{st: st, log: logger}, nil
}

// AddLog is Witness.AddLog on the database. It reports whether the origin
// was new.
func (d *DB) AddLog(ctx context.Context, origin, vkey string) (created bool, err error) {
	return addLog(ctx, d.st, origin, vkey, d.log)
}

// RemoveLog is Witness.RemoveLog on the database.
func (d *DB) RemoveLog(ctx context.Context, origin, vkey string) error {
	return d.st.RemoveLog(ctx, origin, vkey)
}

// Logs is Witness.Logs on the database.
func (d *DB) Logs(ctx context.Context) ([]LogInfo, error) { return listLogs(ctx, d.st) }

// Evidence is Witness.Evidence on the database.
func (d *DB) Evidence(ctx context.Context) ([]Evidence, error) { return listEvidence(ctx, d.st) }

// Close closes the database.
func (d *DB) Close() error { return d.st.Close() }

// addLog validates and adds a log to st (see Witness.AddLog).
func addLog(ctx context.Context, st *store.Store, origin, vkey string, logger *slog.Logger) (bool, error) {
	if err := validateLog(origin, vkey); err != nil {
		return false, err
	}
	v, _ := fnote.NewVerifier(vkey)
	if v.Name() != origin {
		// > The log's key name in its signature line SHOULD match the origin line.
		logger.Warn("log key name differs from the origin", "origin", origin, "key_name", v.Name())
	}
	return st.AddLog(ctx, origin, vkey)
}

func listLogs(ctx context.Context, st *store.Store) ([]LogInfo, error) {
	logs, err := st.Logs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]LogInfo, 0, len(logs))
	for _, l := range logs {
		keys := l.Keys
		if keys == nil {
			keys = []string{}
		}
		out = append(out, LogInfo{
			Origin: l.Origin, Keys: keys, Size: l.Size,
			RootHash: b64(l.Hash[:]), Cosigned: l.Checkpoint != nil,
		})
	}
	return out, nil
}

// SigsumLog returns the origin and note verifier key of the Sigsum log whose
// Ed25519 public key is hexKey (64 hex digits): the origin is
// "sigsum.org/v1/tree/" and the hex SHA-256 of the key, which is also the
// key name.
func SigsumLog(hexKey string) (origin, vkey string, err error) {
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return "", "", fmt.Errorf("sigsum key %q: not 32 hex-encoded bytes", hexKey)
	}
	h := sha256.Sum256(key)
	origin = "sigsum.org/v1/tree/" + hex.EncodeToString(h[:])
	vkey, err = note.NewEd25519VerifierKey(origin, key)
	return origin, vkey, err
}
