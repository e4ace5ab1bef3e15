package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
)

// Log is what the explorer reads; the log server (*logserver.Log)
// implements it. Methods return errors wrapping api.ErrNotFound for a
// missing entry and api.ErrNotWitnessed for an entry no published checkpoint covers
// yet; Checkpoint returns an error wrapping os.ErrNotExist before the
// first checkpoint is published.
type Log interface {
	// Checkpoint returns the latest published (witnessed) checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Checkpoints returns up to n published checkpoints, newest first.
	Checkpoints(ctx context.Context, n int) ([]api.CheckpointRecord, error)
	// Recent returns up to n entries, newest first, with indexes below
	// before (0: from the newest).
	Recent(ctx context.Context, n int, before uint64) ([]api.EntryInfo, error)
	// Describe returns the indexed view of entry idx, with a release's
	// reproductions and revocations.
	Describe(ctx context.Context, idx uint64) (api.EntryInfo, error)
	// Statement returns entry idx as logged and parsed.
	Statement(ctx context.Context, idx uint64) (*statement.Parsed, []byte, error)
	// Lookup returns the entries with measurement or artifact digest v
	// (lowercase hex), oldest first, each as Describe returns it.
	Lookup(ctx context.Context, v string) ([]api.EntryInfo, error)
	// Unreadable lists up to n entries the index recorded as unreadable
	// (in the tree, not statements), oldest first, and how many there are.
	Unreadable(ctx context.Context, n int) (api.UnreadableResponse, error)
	// Proof returns the tlog-proof of entry idx under the latest
	// published checkpoint.
	Proof(ctx context.Context, idx uint64) (*tlogproof.Proof, error)
	// VKey returns the log's note verifier key.
	VKey() string
}

const appExplorer = "Log explorer"

// Explorer is the log explorer: the latest checkpoint and its witness
// cosignatures, recent entries, entry pages with the decoded statement,
// its reproductions, revocations and inclusion proof, lookups by
// measurement or artifact digest, and the checkpoint history.
//
// Pages, under the prefix (default [DefaultExplorerPrefix], "/ui/"):
//
//	GET /ui/                   latest checkpoint and recent entries (?before=N pages back)
//	GET /ui/entry/N            entry N (permalink)
//	GET /ui/m/HEX              entries with measurement or artifact digest HEX (permalink)
//	GET /ui/search?q=…         an index, a measurement or a digest: redirects to the page above
//	GET /ui/checkpoints        checkpoint history with cosignatures
//	GET /ui/verify             "Verify an enclave": the client decision in the browser (WithVerifyPage)
//	GET /ui/static/…           embedded CSS and JavaScript
//
// Each page's JSON twin is the same URL with ?format=json.
type Explorer struct {
	log    Log
	o      *options
	rd     *renderer
	pol    *policy.Policy
	origin string
}

// NewExplorer returns the explorer of l. It fails if an option is invalid
// or the witness policy does not parse.
func NewExplorer(l Log, opts ...Option) (*Explorer, error) {
	o, err := buildOptions(DefaultExplorerPrefix, opts)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(l.VKey())
	if err != nil {
		return nil, fmt.Errorf("web: log key: %v", err)
	}
	// The log's witness policy has no log line; add the log's own key so
	// that policy.InspectCheckpoint can check the log signature too.
	pol, err := policy.Parse([]byte("log " + l.VKey() + "\n" + string(o.witnessPolicy)))
	if err != nil {
		return nil, fmt.Errorf("web: witness policy: %w", err)
	}
	rd, err := newRenderer(o, appExplorer, "home", "entry", "lookup", "checkpoints", "unreadable", "verify")
	if err != nil {
		return nil, err
	}
	return &Explorer{log: l, o: o, rd: rd, pol: pol, origin: v.Name()}, nil
}

// Prefix returns the path prefix the explorer serves under.
func (e *Explorer) Prefix() string { return e.o.prefix }

// Site returns the whole site of a log: the explorer at its prefix, the
// site's root redirected to it, and everything else to api (the log's
// own HTTP API).
func (e *Explorer) Site(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(e.o.prefix, e.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(e.o.prefix, http.StatusFound))
	mux.Handle("/", api)
	return mux
}

// Handler returns the explorer's HTTP handler, to be mounted at Prefix.
func (e *Explorer) Handler() http.Handler {
	mux := http.NewServeMux()
	p := e.o.prefix
	mux.HandleFunc("GET "+p+"{$}", e.handleHome)
	mux.HandleFunc("GET "+p+"entry/{index}", e.handleEntry)
	mux.HandleFunc("GET "+p+"m/{hex}", e.handleLookup)
	mux.HandleFunc("GET "+p+"search", e.handleSearch)
	mux.HandleFunc("GET "+p+"checkpoints", e.handleCheckpoints)
	mux.HandleFunc("GET "+p+"unreadable", e.handleUnreadable)
	mux.HandleFunc("GET "+p+"verify", e.handleVerify)
	mux.HandleFunc("GET "+p+"verify/config.json", e.handleVerifyConfig)
	mux.HandleFunc("GET "+p+"verify/status.json", e.handleVerifyStatus)
	mux.HandleFunc("GET "+p+"verify/npm/index.js", e.handleVerifyPackage)
	mux.HandleFunc("GET "+p+"verify/wasm/{file}", e.handleVerifyModule)
	mux.Handle("GET "+p+"static/", staticHandler(e.rd.static))
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		e.rd.fail(w, r, fmt.Errorf("%w: there is no page %s", errNotFound, short(r.URL.Path)),
			"Start from the explorer's home page, or search for an entry index, a measurement or an artifact digest.", e.nav(""))
	})
	return mux
}

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		// A name no file can have (invalid UTF-8, empty or dot elements)
		// is not found; the file server would answer 500 for it.
		if !fs.ValidPath(strings.TrimPrefix(r.URL.Path, "/")) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func (e *Explorer) nav(current string) []navLink {
	p := e.o.prefix
	n := []navLink{
		{Name: "Entries", URL: p, Current: current == "home"},
		{Name: "Checkpoints", URL: p + "checkpoints", Current: current == "checkpoints"},
	}
	if e.o.verify != nil {
		n = append(n, navLink{Name: "Verify an enclave", URL: p + "verify", Current: current == "verify"})
	}
	if e.o.dashboardURL != "" {
		n = append(n, navLink{Name: "Audit dashboard", URL: e.o.dashboardURL})
	}
	return n
}

// logErr turns the log's not-found errors into the explorer's.
func logErr(err error) error {
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("%w: %v", errNotFound, strings.TrimPrefix(err.Error(), "not found: "))
	}
	return err
}

// Cosignature is a valid cosignature of a witness named in the witness
// policy.
type Cosignature struct {
	Witness string    `json:"witness"`
	Time    time.Time `json:"time"`
}

// CheckpointView is a published checkpoint with its verified
// cosignatures.
type CheckpointView struct {
	Origin   string `json:"origin"`
	Size     uint64 `json:"size"`
	RootHash string `json:"root_hash"` // base64, as in the checkpoint
	// SeenAt is when the log first saw it published (history only).
	SeenAt       time.Time     `json:"seen_at,omitzero"`
	Cosignatures []Cosignature `json:"cosignatures"`
	// OtherSignatures names signature lines by keys that are neither the
	// log's nor a witness of the policy; they are not verified.
	OtherSignatures []string `json:"other_signatures,omitempty"`
	Quorum          string   `json:"quorum"`
	QuorumMet       bool     `json:"quorum_met"`
	// Note is the signed checkpoint note.
	Note string `json:"note"`
	// Error says why the checkpoint could not be verified, if it could
	// not; the other fields are then empty.
	Error string `json:"error,omitempty"`
}

func (e *Explorer) openCheckpoint(signed []byte, seen time.Time) CheckpointView {
	v := CheckpointView{Note: string(signed), SeenAt: seen, Cosignatures: []Cosignature{}}
	c, err := e.pol.InspectCheckpoint(signed)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Origin, v.Size, v.RootHash = c.Origin, uint64(c.N), base64.StdEncoding.EncodeToString(c.Hash[:])
	for _, name := range c.CosignerNames() {
		v.Cosignatures = append(v.Cosignatures, Cosignature{Witness: name, Time: c.Cosigned[name].UTC()})
	}
	for _, s := range c.Note.UnverifiedSigs {
		v.OtherSignatures = append(v.OtherSignatures, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	v.Quorum = "none"
	if e.pol.Quorum != nil {
		v.Quorum = e.pol.Quorum.String()
	}
	v.QuorumMet = c.QuorumMet || e.pol.Quorum == nil
	return v
}

// latest returns the latest published checkpoint, or nil and a message.
func (e *Explorer) latest(ctx context.Context) (*CheckpointView, string, error) {
	cp, err := e.log.Checkpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "No checkpoint has been published yet: the log publishes one once its witness quorum has cosigned it.", nil
	}
	if err != nil {
		return nil, "", err
	}
	v := e.openCheckpoint(cp, time.Time{})
	return &v, "", nil
}

// HomeView is the data of the explorer's home page.
type HomeView struct {
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	// Checkpoint is the latest published checkpoint; nil with
	// CheckpointMessage saying why when there is none.
	Checkpoint        *CheckpointView `json:"checkpoint"`
	CheckpointMessage string          `json:"checkpoint_message,omitempty"`
	// Entries are the newest entries (releases with their
	// reproductions and revocations), newest first.
	Entries []api.EntryInfo `json:"entries"`
	// Before is the ?before of this page (0: the newest entries).
	Before uint64 `json:"before,omitempty"`
	// Older is the ?before of the next page of older entries (0: none).
	Older uint64 `json:"older,omitempty"`
	// Unreadable counts the entries the index recorded as unreadable.
	Unreadable int `json:"unreadable"`
}

func (e *Explorer) handleHome(w http.ResponseWriter, r *http.Request) {
	var before uint64
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil || n == 0 {
			e.rd.fail(w, r, fmt.Errorf("%w: before=%s is not a positive entry index", errBadRequest, quote(s)), "Use ?before=N to list the entries below index N.", e.nav("home"))
			return
		}
		before = n
	}
	v := HomeView{Origin: e.origin, VKey: e.log.VKey(), Before: before}
	var err error
	if v.Checkpoint, v.CheckpointMessage, err = e.latest(r.Context()); err != nil {
		e.rd.fail(w, r, err, "", e.nav("home"))
		return
	}
	// One more than a page tells whether there is an older page.
	es, err := e.log.Recent(r.Context(), e.o.pageSize+1, before)
	if err != nil {
		e.rd.fail(w, r, err, "", e.nav("home"))
		return
	}
	if len(es) > e.o.pageSize {
		es = es[:e.o.pageSize]
		v.Older = es[len(es)-1].Index
	}
	// Releases with their reproductions and revocations, so that the list
	// shows which are reproduced or revoked.
	for i, en := range es {
		if en.Kind != string(statement.KindRelease) {
			continue
		}
		if d, err := e.log.Describe(r.Context(), en.Index); err == nil {
			es[i] = d
		} else if !errors.Is(err, api.ErrNotFound) {
			e.rd.fail(w, r, err, "", e.nav("home"))
			return
		}
	}
	v.Entries = append([]api.EntryInfo{}, es...)
	u, err := e.log.Unreadable(r.Context(), 0)
	if err != nil {
		e.rd.fail(w, r, err, "", e.nav("home"))
		return
	}
	v.Unreadable = u.Total
	e.rd.render(w, r, http.StatusOK, "home", "Log explorer", v, e.nav("home"), "")
}

// MaxUnreadable is how many unreadable entries their page lists.
const MaxUnreadable = 100

func (e *Explorer) handleUnreadable(w http.ResponseWriter, r *http.Request) {
	u, err := e.log.Unreadable(r.Context(), MaxUnreadable)
	if err != nil {
		e.rd.fail(w, r, err, "", e.nav(""))
		return
	}
	if u.Entries == nil {
		u.Entries = []api.EntryInfo{}
	}
	e.rd.render(w, r, http.StatusOK, "unreadable", "Unreadable entries", u, e.nav(""), "")
}

// NamedValue is a named measurement.
type NamedValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Indexed reports whether the log's index can look the value up
	// (launch digest, MRTD, RTMRs, MRCONFIGID; not guest policy or IDs).
	Indexed bool `json:"indexed"`
}

// ReleaseView is a decoded release statement.
type ReleaseView struct {
	Version      string              `json:"version"`
	Platform     string              `json:"platform"`
	Time         time.Time           `json:"time"`
	Measurements []NamedValue        `json:"measurements"`
	Artifacts    []statement.Subject `json:"artifacts"`
	Source       statement.Source    `json:"source"`
	// SourceURL and CommitURL link the source when its repository is an
	// http(s) URL.
	SourceURL  string           `json:"source_url,omitempty"`
	CommitURL  string           `json:"commit_url,omitempty"`
	Recipe     statement.Recipe `json:"recipe"`
	Provenance *ProvenanceView  `json:"provenance"` // nil: no provenance
}

// EntryView is the data of an entry page.
type EntryView struct {
	Info         api.EntryInfo           `json:"info"`
	Release      *ReleaseView            `json:"release,omitempty"`
	Reproduction *statement.Reproduction `json:"reproduction,omitempty"`
	Revocation   *statement.Revocation   `json:"revocation,omitempty"`
	// ReproductionMeasurements are the measurements a reproduction
	// computed.
	ReproductionMeasurements []NamedValue `json:"reproduction_measurements,omitempty"`
	// SignatureKeyIDs are the key IDs of the envelope's signatures (none
	// for a keyless entry).
	SignatureKeyIDs []string `json:"signature_key_ids"`
	// Keyless is what the Sigstore bundle of a keyless release says about
	// its signer (decoded, not verified: the log verified it at admission
	// and 'attestlog verify' verifies it against the client's policy).
	Keyless *ProvenanceView `json:"keyless,omitempty"`
	// Unreadable says why an entry in the tree is not a statement the
	// log's parser reads; the entry is then shown as bytes.
	Unreadable string `json:"unreadable,omitempty"`
	// IndexCheckpoint is set for the log's own commitment to its
	// verifiable index.
	IndexCheckpoint *IndexCheckpointView `json:"index_checkpoint,omitempty"`
	// Entry is the logged entry (the DSSE envelope or Sigstore bundle),
	// base64 in JSON.
	Entry []byte `json:"entry"`
	// Proof is the inclusion proof under the latest published
	// checkpoint; nil with ProofMessage saying why when there is none.
	Proof        *ProofView `json:"proof"`
	ProofMessage string     `json:"proof_message,omitempty"`
}

// ProofView is an inclusion proof and the checkpoint it is under.
type ProofView struct {
	Index      uint64         `json:"index"`
	Hashes     []string       `json:"hashes"` // base64, leaf to root
	Checkpoint CheckpointView `json:"checkpoint"`
	// TLogProof is the c2sp.org/tlog-proof text, verifiable offline.
	TLogProof string `json:"tlog_proof"`
}

func measurementsOf(m statement.Measurements) []NamedValue {
	var out []NamedValue
	indexed := map[string]bool{}
	for _, v := range m.Values() {
		indexed[v] = true
	}
	add := func(name, v string) {
		if v != "" {
			out = append(out, NamedValue{Name: name, Value: v, Indexed: indexed[v]})
		}
	}
	if s := m.SNP; s != nil {
		add("Launch digest (MEASUREMENT)", s.LaunchDigest)
		add("Guest policy", s.GuestPolicy)
		add("Family ID", s.FamilyID)
		add("Image ID", s.ImageID)
	}
	if t := m.TDX; t != nil {
		add("MRTD", t.MRTD)
		add("RTMR0", t.RTMR0)
		add("RTMR1", t.RTMR1)
		add("RTMR2", t.RTMR2)
		add("RTMR3", t.RTMR3)
		add("MRCONFIGID", t.MRConfigID)
	}
	return out
}

// webURL returns s if it is an absolute http(s) URL, else "".
func webURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.String()
}

// commitURL links a commit on the forges whose URL layout is known.
func commitURL(repo, commit string) string {
	u := webURL(repo)
	if u == "" {
		return ""
	}
	pu, _ := url.Parse(u)
	switch pu.Host {
	case "github.com", "gitlab.com", "codeberg.org":
		return strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git") + "/commit/" + commit
	}
	return ""
}

func (e *Explorer) handleEntry(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("index")
	idx, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		e.rd.fail(w, r, fmt.Errorf("%w: %s is not an entry index (a non-negative integer)", errBadRequest, quote(s)), "Entry pages are "+e.o.prefix+"entry/N.", e.nav(""))
		return
	}
	ctx := r.Context()
	info, err := e.log.Describe(ctx, idx)
	if err != nil {
		e.rd.fail(w, r, logErr(err), "The log may not have that many entries yet; the home page lists the newest.", e.nav(""))
		return
	}
	p, entry, err := e.log.Statement(ctx, idx)
	v := EntryView{Info: info, Entry: entry, SignatureKeyIDs: []string{}}
	switch {
	case err != nil && entry != nil:
		// In the tree but not a statement the log's parser reads (the
		// index recorded it as unreadable): show what is there.
		v.Unreadable = err.Error()
		if v.Info.Problem != "" {
			v.Unreadable = v.Info.Problem
		}
	case err != nil:
		e.rd.fail(w, r, logErr(err), "", e.nav(""))
		return
	case p.Envelope != nil:
		for _, s := range p.Envelope.Signatures {
			v.SignatureKeyIDs = append(v.SignatureKeyIDs, s.KeyID)
		}
	case p.IndexCheckpoint != nil:
		ic := p.IndexCheckpoint
		v.IndexCheckpoint = &IndexCheckpointView{Version: ic.Version, Size: ic.Size, Root: base64.StdEncoding.EncodeToString(ic.Root[:]), Time: ic.Time}
	default:
		// A keyless release: the entry is a Sigstore bundle whose
		// certificate names the CI identity that signed it.
		v.Keyless = decodeProvenance(p.Bundle)
	}
	if p == nil {
		p = &statement.Parsed{Kind: statement.Kind(info.Kind)}
	}
	switch p.Kind {
	case statement.KindRelease:
		rel := p.Release
		rv := &ReleaseView{
			Version: rel.Version, Platform: rel.Platform, Time: rel.Time,
			Measurements: measurementsOf(rel.Measurements), Artifacts: p.Statement.Subject,
			Source: rel.Source, SourceURL: webURL(rel.Source.Repo), CommitURL: commitURL(rel.Source.Repo, rel.Source.Commit),
			Recipe: rel.Recipe,
		}
		if len(rel.Provenance) > 0 {
			rv.Provenance = decodeProvenance(rel.Provenance)
		}
		v.Release = rv
	case statement.KindReproduction:
		v.Reproduction = p.Reproduction
		v.ReproductionMeasurements = measurementsOf(p.Reproduction.Measurements)
	case statement.KindRevocation:
		v.Revocation = p.Revocation
	}
	switch pr, err := e.log.Proof(ctx, idx); {
	case err == nil:
		pv := &ProofView{Index: pr.Index, TLogProof: string(pr.Marshal()), Hashes: []string{}}
		for _, h := range pr.Hashes {
			pv.Hashes = append(pv.Hashes, base64.StdEncoding.EncodeToString(h[:]))
		}
		pv.Checkpoint = e.openCheckpoint(pr.Checkpoint, time.Time{})
		v.Proof = pv
	case errors.Is(err, api.ErrNotWitnessed):
		v.ProofMessage = "Not yet covered by a witnessed checkpoint; the proof appears here once the witness quorum has cosigned a checkpoint that includes this entry."
	default:
		e.rd.fail(w, r, err, "", e.nav(""))
		return
	}
	title := fmt.Sprintf("Entry %d: %s", idx, p.Kind)
	if v.Release != nil {
		title = fmt.Sprintf("Entry %d: release %s", idx, v.Release.Version)
	}
	e.rd.render(w, r, http.StatusOK, "entry", title, v, e.nav(""), "")
}

// IndexCheckpointView is an index checkpoint entry: the log committing
// its verifiable index over its first Size entries to Root.
type IndexCheckpointView struct {
	// Version is the map version (2; 1 in logs from before it).
	Version int       `json:"version"`
	Size    uint64    `json:"size"`
	Root    string    `json:"root"` // base64
	Time    time.Time `json:"time,omitzero"`
}

// LookupView is the data of a measurement or digest page.
type LookupView struct {
	// Query is the measurement or digest looked up (lowercase hex).
	Query string `json:"query"`
	// Entries are the entries with it (releases with their reproductions
	// and revocations, and reproductions that computed it), oldest first.
	Entries []api.EntryInfo `json:"entries"`
	// Releases counts the releases among Entries.
	Releases int `json:"releases"`
	// ProofType is the index key type the log's proof of the value is
	// under (the index types every key: a TDX MRTD when a TDX release has
	// it, else an SNP launch digest for 48 bytes, else the artifact digest
	// of its size), and SearchFlag the 'attestlog search' flag for it.
	ProofType  string `json:"proof_type"`
	SearchFlag string `json:"-"`
}

var hexRE = regexp.MustCompile(`^[0-9a-f]+$`)

// MinHexLen and MaxHexLen bound what search accepts as a measurement or
// digest: SHA-256 is 64 hex characters, SNP and TDX measurements and
// SHA-384 are 96.
const (
	MinHexLen = 32
	MaxHexLen = 128
)

func (e *Explorer) handleLookup(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("hex")
	h := strings.ToLower(s)
	if !hexRE.MatchString(h) || len(h)%2 != 0 || len(h) < MinHexLen || len(h) > MaxHexLen {
		e.rd.fail(w, r, fmt.Errorf("%w: %s is not a measurement or digest (%d to %d hex characters)", errBadRequest, quote(s), MinHexLen, MaxHexLen), "Paste the full measurement or artifact digest in hex.", e.nav(""))
		return
	}
	if h != s { // one permalink per value
		http.Redirect(w, r, e.o.prefix+"m/"+h+keepFormat(r), http.StatusMovedPermanently)
		return
	}
	es, err := e.log.Lookup(r.Context(), h)
	if err != nil {
		e.rd.fail(w, r, logErr(err), "", e.nav(""))
		return
	}
	v := LookupView{Query: h, Entries: append([]api.EntryInfo{}, es...)}
	tdx := false
	for _, en := range es {
		if en.Kind == string(statement.KindRelease) {
			v.Releases++
		}
		tdx = tdx || en.Platform == statement.PlatformTDX
	}
	switch len(h) / 2 {
	case 48:
		v.ProofType, v.SearchFlag = string(vindex.KeySNPLaunchDigest), "--measurement"
		if tdx {
			v.ProofType = string(vindex.KeyTDXMRTD)
		}
	case 32:
		v.ProofType, v.SearchFlag = string(vindex.KeyArtifactSHA256), "--digest"
	case 64:
		v.ProofType, v.SearchFlag = string(vindex.KeyArtifactSHA512), "--digest"
	}
	code := http.StatusOK
	if len(es) == 0 {
		code = http.StatusNotFound
	}
	e.rd.render(w, r, code, "lookup", "Measurement "+shortHex(h), v, e.nav(""), h)
}

func keepFormat(r *http.Request) string {
	if wantsJSON(r) {
		return "?format=json"
	}
	return ""
}

func (e *Explorer) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	s := strings.TrimPrefix(strings.TrimPrefix(q, "#"), "0x")
	hint := "Search takes an entry index (e.g. 12), or a full measurement (SNP launch digest, TDX MRTD or RTMR) or artifact digest in hex."
	switch {
	case q == "":
		e.rd.fail(w, r, fmt.Errorf("%w: the search box is empty", errBadRequest), hint, e.nav(""))
	case len(s) <= 19 && s != "" && strings.Trim(s, "0123456789") == "":
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			e.rd.fail(w, r, fmt.Errorf("%w: %s is too large for an entry index", errBadRequest, quote(q)), hint, e.nav(""))
			return
		}
		http.Redirect(w, r, fmt.Sprintf("%sentry/%d%s", e.o.prefix, n, keepFormat(r)), http.StatusSeeOther)
	default:
		h := strings.ToLower(s)
		if !hexRE.MatchString(h) {
			e.rd.fail(w, r, fmt.Errorf("%w: %s is neither an entry index nor hex", errBadRequest, quote(q)), hint, e.nav(""))
			return
		}
		if len(h)%2 != 0 || len(h) < MinHexLen || len(h) > MaxHexLen {
			e.rd.fail(w, r, fmt.Errorf("%w: %s has %d hex characters; a measurement or digest has %d to %d (prefixes are not searched)", errBadRequest, quote(q), len(h), MinHexLen, MaxHexLen), hint, e.nav(""))
			return
		}
		http.Redirect(w, r, e.o.prefix+"m/"+h+keepFormat(r), http.StatusSeeOther)
	}
}

// CheckpointsView is the data of the checkpoint history page.
type CheckpointsView struct {
	Origin      string           `json:"origin"`
	Checkpoints []CheckpointView `json:"checkpoints"` // newest first
}

// MaxCheckpoints is how many checkpoints the history page shows.
const MaxCheckpoints = 100

func (e *Explorer) handleCheckpoints(w http.ResponseWriter, r *http.Request) {
	cps, err := e.log.Checkpoints(r.Context(), MaxCheckpoints)
	if err != nil {
		e.rd.fail(w, r, err, "", e.nav("checkpoints"))
		return
	}
	v := CheckpointsView{Origin: e.origin, Checkpoints: []CheckpointView{}}
	for _, c := range cps {
		v.Checkpoints = append(v.Checkpoints, e.openCheckpoint(c.Note, c.SeenAt.UTC()))
	}
	e.rd.render(w, r, http.StatusOK, "checkpoints", "Checkpoint history", v, e.nav("checkpoints"), "")
}
