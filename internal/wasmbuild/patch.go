package wasmbuild

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The WebAssembly build changes a few files of its dependencies and of
// Go's standard library, in copies made at build time (never in the
// module cache or GOROOT, never in the native build). npm/overlay/README.md
// says why for each; every change checks that what it changes is still
// there, so that an upgrade that moves it fails the build instead of
// silently building something else.

// patchOp is what a patch does to its file.
type patchOp int

const (
	// addFile adds ours to the package (the file must not exist yet).
	addFile patchOp = iota
	// replaceFile puts ours in place of the file (which must exist).
	replaceFile
	// removeFile deletes the file (which must exist).
	removeFile
	// stubFunc replaces the body of one function (which must exist)
	// with body, and drops the imports only that body used.
	stubFunc
	// replaceText replaces each of the from/to pairs in body's place:
	// from, found exactly n times (n = count), becomes to.
	replaceText
)

// patch is one change to one file of a module.
type patch struct {
	module string  // module path
	file   string  // slash-separated path inside the module
	op     patchOp //
	ours   string  // addFile, replaceFile: the file under npm/overlay
	fn     string  // stubFunc: "Name" or "(*Recv).Name"
	body   string  // stubFunc: the new body's statements
	edits  []edit  // replaceText: the replacements, in order
}

// edit replaces from, found exactly count times, with to.
type edit struct {
	from, to string
	count    int
}

// patches are the changes to dependencies. The first two make the client
// compile for js; the others keep net/http (and with it crypto/tls, the
// HTTP/2 stack and the DNS resolver: a fifth of the module) out of it,
// since the client never fetches anything itself — the JavaScript side
// fetches the evidence, and the decision reads only what it is given.
var patches = []patch{
	{module: "github.com/google/logger", file: "logger_js.go", op: addFile, ours: "logger_js.go"},
	{module: "github.com/in-toto/in-toto-golang", file: "in_toto/util_unix.go", op: replaceFile, ours: "in_toto_util_unix.go"},
	{module: "github.com/google/go-sev-guest", file: "verify/trust/trust.go", op: stubFunc, fn: "(*SimpleHTTPSGetter).GetContext",
		body: `return nil, fmt.Errorf("attestlog's WebAssembly client fetches nothing from AMD (asked for %s): the decision is offline", url)`},
	{module: "github.com/google/go-tdx-guest", file: "verify/trust/trust.go", op: stubFunc, fn: "(*SimpleHTTPSGetter).GetContext",
		body: `return nil, nil, fmt.Errorf("attestlog's WebAssembly client fetches nothing from Intel (asked for %s): the decision is offline", url)`},
	{module: "github.com/google/go-tdx-guest", file: "pcs/pcs.go", op: replaceText, edits: []edit{
		{from: "\t\"net/http\"\n", to: "\t\"net/textproto\"\n", count: 1},
		{from: "http.CanonicalHeaderKey(", to: "textproto.CanonicalMIMEHeaderKey(", count: 3},
	}},
	{module: "github.com/google/go-tpm-tools", file: "internal/cert.go", op: removeFile},
	{module: "filippo.io/torchwood", file: "tlogclient.go", op: removeFile},
	{module: "github.com/russellhaering/goxmldsig", file: "tls_keystore.go", op: removeFile},
}

// stdPatch is one change to a package of Go's standard library: a
// declaration of file renamed (from, to: the exact text, found once) and
// ours (a file under npm/overlay/std) added beside it, given to go build
// with -overlay (which, unlike for the module cache, works for GOROOT).
type stdPatch struct {
	pkg, file string
	from, to  string
	ours      string
}

// stdPatches let the client verify signatures with the platform's
// WebCrypto (internal/webcrypto): crypto/x509's checkSignature, which
// every certificate, CRL and OCSP signature check goes through, and
// crypto/ed25519's Verify, which checkpoints, cosignatures and statements
// use, each ask WebCrypto first when it is installed.
var stdPatches = []stdPatch{
	{pkg: "crypto/x509", file: "x509.go", from: "\nfunc checkSignature(", to: "\nfunc checkSignatureGo(", ours: "x509_webcrypto.go"},
	{pkg: "crypto/ed25519", file: "ed25519.go", from: "\nfunc Verify(", to: "\nfunc verifyGo(", ours: "ed25519_webcrypto.go"},
}

// overlayTag selects the files of npm/overlay/std (and nothing else).
const overlayTag = "attestlog_overlay"

// apply makes p's change in dir, a writable copy of p.module.
func (p patch) apply(repo, dir string) error {
	target := filepath.Join(dir, filepath.FromSlash(p.file))
	_, statErr := os.Stat(target)
	exists := statErr == nil
	where := fmt.Sprintf("%s's %s", p.module, p.file)
	switch {
	case p.op == addFile && exists:
		return fmt.Errorf("%s now exists, and the WebAssembly build adds a file of that name: see npm/overlay/README.md", where)
	case p.op != addFile && !exists:
		return fmt.Errorf("%s is gone, and the WebAssembly build changes it: see npm/overlay/README.md", where)
	}
	switch p.op {
	case addFile, replaceFile:
		b, err := os.ReadFile(filepath.Join(repo, "npm", "overlay", p.ours))
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	case removeFile:
		return os.Remove(target)
	case stubFunc:
		src, err := os.ReadFile(target)
		if err != nil {
			return err
		}
		out, err := stub(src, p.fn, p.body)
		if err != nil {
			return fmt.Errorf("%s: %w: see npm/overlay/README.md", where, err)
		}
		return os.WriteFile(target, out, 0o644)
	case replaceText:
		b, err := os.ReadFile(target)
		if err != nil {
			return err
		}
		out, err := replaceAll(string(b), p.edits)
		if err != nil {
			return fmt.Errorf("%s: %w: see npm/overlay/README.md", where, err)
		}
		return os.WriteFile(target, []byte(out), 0o644)
	}
	return fmt.Errorf("unknown patch operation %d", p.op)
}

// stub returns src with the body of function fn ("Name" or
// "(*Recv).Name") replaced by body, and without the imports that only
// the old body used, gofmt-ed.
func stub(src []byte, fn, body string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var found []*ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && funcName(fd) == fn {
			found = append(found, fd)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("found %d functions %s, want 1", len(found), fn)
	}
	lb, rb := fset.Position(found[0].Body.Lbrace).Offset, fset.Position(found[0].Body.Rbrace).Offset
	out := slices.Concat(src[:lb], []byte("{\n"+body+"\n}"), src[rb+1:])
	fset2 := token.NewFileSet()
	f2, err := parser.ParseFile(fset2, "", out, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("the stub of %s: %w", fn, err)
	}
	before, after := importUses(f), importUses(f2)
	for i := len(f2.Imports) - 1; i >= 0; i-- {
		is := f2.Imports[i]
		if name := importName(is); before[name] > 0 && after[name] == 0 {
			out = slices.Delete(out, fset2.Position(is.Pos()).Offset, fset2.Position(is.End()).Offset)
		}
	}
	return format.Source(out)
}

// funcName is "Name" or "(*Recv).Name" / "(Recv).Name".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	id, ok := t.(*ast.Ident)
	if !ok {
		return ""
	}
	return "(" + star + id.Name + ")." + fd.Name.Name
}

// importName is the name an import is used by (its last path element
// unless renamed; good enough for the files patched here, whose imports
// are standard-library packages).
func importName(is *ast.ImportSpec) string {
	if is.Name != nil {
		return is.Name.Name
	}
	p, _ := strconv.Unquote(is.Path.Value)
	return p[strings.LastIndex(p, "/")+1:]
}

// importUses counts the qualified identifiers (pkg.Name) of f by
// qualifier.
func importUses(f *ast.File) map[string]int {
	n := map[string]int{}
	ast.Inspect(f, func(x ast.Node) bool {
		if se, ok := x.(*ast.SelectorExpr); ok {
			if id, ok := se.X.(*ast.Ident); ok && id.Obj == nil {
				n[id.Name]++
			}
		}
		return true
	})
	return n
}

// apply writes, in tmp, s's renamed copy of GOROOT's file and returns
// the -overlay entries that put it and s's own file in place.
func (s stdPatch) apply(repo, goroot, tmp string, i int) (map[string]string, error) {
	dir := filepath.Join(goroot, "src", filepath.FromSlash(s.pkg))
	src, err := os.ReadFile(filepath.Join(dir, s.file))
	if err != nil {
		return nil, fmt.Errorf("Go's %s/%s: %w", s.pkg, s.file, err)
	}
	if n := bytes.Count(src, []byte(s.from)); n != 1 {
		return nil, fmt.Errorf("Go's %s/%s has %q %d times, and the WebAssembly build renames it (once): see npm/overlay/README.md", s.pkg, s.file, strings.TrimSpace(s.from), n)
	}
	if _, err := os.Stat(filepath.Join(dir, s.ours)); err == nil {
		return nil, fmt.Errorf("Go's %s now has a file %s, which the WebAssembly build adds: see npm/overlay/README.md", s.pkg, s.ours)
	}
	renamed := filepath.Join(tmp, fmt.Sprintf("std%d-%s", i, s.file))
	if err := os.WriteFile(renamed, bytes.Replace(src, []byte(s.from), []byte(s.to), 1), 0o644); err != nil {
		return nil, err
	}
	return map[string]string{
		filepath.Join(dir, s.file): renamed,
		filepath.Join(dir, s.ours): filepath.Join(repo, "npm", "overlay", "std", s.ours),
	}, nil
}

// replaceAll makes each edit in src, in order; an edit whose text is not
// found exactly as many times as it says is an error.
func replaceAll(src string, edits []edit) (string, error) {
	for _, e := range edits {
		if n := strings.Count(src, e.from); n != e.count || n == 0 {
			return "", fmt.Errorf("%q is found %d times, want %d", e.from, n, e.count)
		}
		src = strings.ReplaceAll(src, e.from, e.to)
	}
	return src, nil
}
