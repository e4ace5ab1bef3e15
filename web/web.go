// Package web is attestlog's web UI: the log explorer ([Explorer]), served
// by the log and by 'attestlog up', and the audit dashboard ([Dashboard]),
// served by the auditor and by 'attestlog up'.
//
// Pages are rendered on the server with html/template from embedded
// templates and assets: they work without JavaScript (a few lines of
// progressive enhancement add copy buttons), load nothing from elsewhere,
// and are sent with a Content-Security-Policy that allows only the
// page's own script and style. Every value shown comes from untrusted
// statements or remote peers and is escaped by html/template; control and
// bidirectional-override characters are made visible.
//
// Every page has a JSON twin: the same URL with ?format=json returns the
// data the page shows, for scripts.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/attestlog/attestlog/log/api"
)

// Default prefixes under which the handlers serve their pages. They do
// not collide with the log's API (/add, /checkpoint, /tile/, /proof,
// /lookup, /entry/, /metrics) nor with the auditor's (/status, /alerts,
// /logs/, /metrics).
const (
	DefaultExplorerPrefix  = api.ExplorerPath
	DefaultDashboardPrefix = "/audit/"
)

// DefaultPageSize is how many entries a page of the explorer lists.
const DefaultPageSize = 25

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Option configures an [Explorer] or a [Dashboard]. Options that concern
// only one of them say so and are ignored by the other.
type Option func(*options)

type options struct {
	verify        *verifyPage
	prefix        string
	witnessPolicy []byte
	dashboardURL  string
	explorerURL   string
	logger        *slog.Logger
	pageSize      int
	now           func() time.Time
}

// WithPrefix sets the path prefix the handler serves under (it must start
// and end with "/"). Default: [DefaultExplorerPrefix] or
// [DefaultDashboardPrefix]. The handler is mounted at that prefix without
// stripping it, e.g. mux.Handle(web.DefaultExplorerPrefix, ex.Handler()).
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithWitnessPolicy gives the explorer the log's c2sp.org/tlog-policy
// witness policy (witness, group and quorum lines), so that it names the
// witnesses that cosigned each checkpoint. Explorer only.
func WithWitnessPolicy(text []byte) Option {
	return func(o *options) { o.witnessPolicy = text }
}

// WithDashboardURL adds a link to the audit dashboard at u to the
// explorer's navigation. Explorer only.
func WithDashboardURL(u string) Option { return func(o *options) { o.dashboardURL = u } }

// WithExplorerURL adds a link to the log explorer at u to the dashboard's
// navigation. Dashboard only; per-log explorer links come from
// [AuditLog.ExplorerURL].
func WithExplorerURL(u string) Option { return func(o *options) { o.explorerURL = u } }

// WithLogger sets the logger for server errors (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithPageSize sets how many entries the explorer lists per page
// (default [DefaultPageSize]). Explorer only.
func WithPageSize(n int) Option { return func(o *options) { o.pageSize = n } }

func buildOptions(defaultPrefix string, opts []Option) (*options, error) {
	o := &options{prefix: defaultPrefix, pageSize: DefaultPageSize, now: time.Now}
	for _, f := range opts {
		f(o)
	}
	if !strings.HasPrefix(o.prefix, "/") || !strings.HasSuffix(o.prefix, "/") {
		return nil, fmt.Errorf("web: prefix %q must start and end with /", o.prefix)
	}
	if o.pageSize < 1 || o.pageSize > 1000 {
		return nil, fmt.Errorf("web: page size %d must be 1 to 1000", o.pageSize)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Errors mapped to HTTP status by statusOf.
var (
	errNotFound   = errors.New("not found")
	errBadRequest = errors.New("bad request")
)

// statusOf is the one mapping from errors to HTTP status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// renderer holds the parsed templates of one handler.
type renderer struct {
	pages  map[string]*template.Template
	o      *options
	app    string // "Log explorer" or "Audit dashboard"
	static http.Handler
}

func newRenderer(o *options, app string, pages ...string) (*renderer, error) {
	r := &renderer{pages: map[string]*template.Template{}, o: o, app: app}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, err
	}
	for _, p := range append(pages, "error") {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, "templates/"+p+".html"); err != nil {
			return nil, err
		}
		r.pages[p] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	r.static = http.StripPrefix(o.prefix+"static/", http.FileServerFS(sub))
	return r, nil
}

// page is what the layout template renders.
type page struct {
	// Scripts are the page's own scripts beyond the layout's.
	Scripts   []string
	App       string
	Title     string
	Prefix    string
	JSONURL   string
	Nav       []navLink
	Query     string // the search box's value
	Search    bool   // show the search box
	Data      any
	Generated time.Time
}

type navLink struct {
	Name, URL string
	Current   bool
}

// securityHeaders are set on every response.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// wantsJSON reports whether the request asks for the JSON twin.
func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json"
}

// jsonURL returns the JSON twin of the request's URL, or "" (no link)
// when that URL is too long to be one of ours: a page does not repeat an
// unbounded request.
func jsonURL(r *http.Request) string {
	q := r.URL.Query()
	q.Set("format", "json")
	u := r.URL.Path + "?" + q.Encode()
	if len(u) > maxURL {
		return ""
	}
	return u
}

// maxURL is longer than any URL of a page of ours (a lookup of the longest
// hex value, a search for it).
const maxURL = 512

func (rd *renderer) writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		rd.o.logger.Error("web: encoding JSON", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// render writes the page tmpl with data, or its JSON twin.
func (rd *renderer) render(w http.ResponseWriter, r *http.Request, code int, tmpl, title string, data any, nav []navLink, query string) {
	rd.renderScripts(w, r, code, tmpl, title, data, nav, query, nil)
}

// renderScripts is render for a page with scripts of its own. A page
// whose handler already set a Content-Security-Policy (and the other
// security headers) keeps it: see handleVerify.
func (rd *renderer) renderScripts(w http.ResponseWriter, r *http.Request, code int, tmpl, title string, data any, nav []navLink, query string, scripts []string) {
	if w.Header().Get("Content-Security-Policy") == "" {
		securityHeaders(w)
	}
	if wantsJSON(r) {
		rd.writeJSON(w, code, data)
		return
	}
	p := page{
		App: rd.app, Title: title, Prefix: rd.o.prefix, JSONURL: jsonURL(r), Nav: nav,
		Query: query, Search: rd.app == appExplorer, Data: data,
		Generated: rd.o.now().UTC(), Scripts: scripts,
	}
	var b bytes.Buffer
	if err := rd.pages[tmpl].ExecuteTemplate(&b, "layout.html", p); err != nil {
		rd.o.logger.Error("web: rendering", "page", tmpl, "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, "internal error rendering the page")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// ErrorPage is the data of an error page and its JSON twin.
type ErrorPage struct {
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Message string `json:"message"`
	// Hint says what to try instead.
	Hint string `json:"hint,omitempty"`
}

func (rd *renderer) fail(w http.ResponseWriter, r *http.Request, err error, hint string, nav []navLink) {
	code := statusOf(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		rd.o.logger.Error("web", "path", r.URL.Path, "err", err)
		msg, hint = "internal error", "Try again later; the operator's logs have the details."
	}
	e := ErrorPage{Status: code, Error: http.StatusText(code), Message: msg, Hint: hint}
	rd.render(w, r, code, "error", http.StatusText(code), e, nav, short(r.URL.Query().Get("q")))
}

// maxEcho is how much of a request's own input an error page repeats.
const maxEcho = 100

// short is at most maxEcho bytes of s (whole UTF-8 characters), marked
// when cut: error pages name the input they refuse without echoing an
// unbounded amount of it.
func short(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// quote is short(s), quoted.
func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	t := short(s)
	i := strings.LastIndex(t, "…")
	return strconv.Quote(t[:i]) + t[i:]
}

var funcs = template.FuncMap{
	"short":  shortHex,
	"text":   textParts,
	"time":   fmtTime,
	"ago":    ago,
	"add":    func(a, b int) int { return a + b },
	"join":   strings.Join,
	"lower":  strings.ToLower,
	"plural": plural,
	"kv":     func(p string, v any) map[string]any { return map[string]any{"P": p, "V": v} },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"deref": func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"outcomes":    outcomes,
	"preview":     preview,
	"sub":         func(a, b uint64) uint64 { return a - b },
	"statusClass": statusClass,
	// link joins base and path, or is "" (no link) when base is.
	"link": func(base string, path ...string) string {
		if base == "" {
			return ""
		}
		return base + strings.Join(path, "")
	},
}

// statusClass is the badge class of a reproducibility status.
func statusClass(s string) string {
	switch s {
	case "reproduced":
		return "ok"
	case "mismatch", "failed":
		return "bad"
	case "queued", "running":
		return "warn"
	}
	return ""
}

// outcomes counts a release's reproductions with the given outcome.
func outcomes(rs []api.EntryInfo, outcome string) int {
	n := 0
	for _, r := range rs {
		if r.Outcome == outcome {
			n++
		}
	}
	return n
}

// shortHex shortens long hex values to their first and last 8 characters.
func shortHex(s string) string {
	if len(s) <= 20 {
		return s
	}
	return s[:8] + "…" + s[len(s)-8:]
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago says how long before now t was, coarsely.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// textPart is a run of ordinary text, or one character that would be
// invisible or misleading (a control, format or bidirectional-override
// character), shown as its code point.
type textPart struct {
	Text    string
	Special bool
}

// textParts splits untrusted text so that templates can show invisible
// characters as visible code points (html/template escapes both kinds).
// maxPreview is how much of an unreadable entry a page shows.
const maxPreview = 4096

// preview is the start of b as text for a page (the "txt" template then
// marks control and invisible characters), saying how much was left out.
func preview(b []byte) string {
	s := b
	more := ""
	if len(s) > maxPreview {
		s, more = s[:maxPreview], fmt.Sprintf(" … (%d more bytes)", len(b)-maxPreview)
	}
	return strings.ToValidUTF8(string(s), "\uFFFD") + more
}

func textParts(s string) []textPart {
	var parts []textPart
	var cur strings.Builder
	for _, r := range s {
		if r == ' ' || (!unicode.IsControl(r) && !unicode.Is(unicode.Cf, r) && r != unicode.ReplacementChar && !unicode.Is(unicode.Zs, r)) {
			cur.WriteRune(r)
			continue
		}
		if cur.Len() > 0 {
			parts = append(parts, textPart{Text: cur.String()})
			cur.Reset()
		}
		parts = append(parts, textPart{Text: fmt.Sprintf("U+%04X", r), Special: true})
	}
	if cur.Len() > 0 {
		parts = append(parts, textPart{Text: cur.String()})
	}
	return parts
}
