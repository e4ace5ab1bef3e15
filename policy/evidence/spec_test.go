package evidence_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	tdxtd "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

const specPath = "../../docs/spec/evidence.md"

func readSpec(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// specExamples returns the ```json example=NAME blocks of the spec.
func specExamples(t *testing.T, doc string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, m := range regexp.MustCompile("(?s)```json example=([a-z0-9]+)\n(.*?)\n```").FindAllStringSubmatch(doc, -1) {
		out[m[1]] = []byte(m[2])
	}
	return out
}

// specTable returns the rows of the table after <!-- marker -->, each
// row's cells trimmed, header and separator left out.
func specTable(t *testing.T, doc, marker string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+marker+" -->\n")
	if !ok {
		t.Fatalf("the spec has no <!-- %s --> table", marker)
	}
	var rows [][]string
	for i, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i < 2 {
			continue // header, separator
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("the <!-- %s --> table is empty", marker)
	}
	return rows
}

// codeSpan returns the first `code span` of s.
func codeSpan(s string) string {
	m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// jsonMembers returns the member names the decoder accepts for t: its
// json tags, by reflection.
func jsonMembers(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" {
			if name == "" {
				name = f.Name
			}
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestEvidenceSpec holds policy/evidence to docs/spec/evidence.md: its
// examples parse and carry the REPORT_DATA the spec says (computed with
// Python's hashlib, not with this package), the member tables are the
// structs' JSON members exactly, the limits are the package's constants,
// and the spec's refused bundles are refused.
func TestEvidenceSpec(t *testing.T) {
	doc := readSpec(t)
	ex := specExamples(t, doc)

	// The member tables: every member the decoder accepts is documented,
	// and nothing else is.
	for marker, typ := range map[string]reflect.Type{
		"members: bundle":         reflect.TypeFor[evidence.Bundle](),
		"members: gpu":            reflect.TypeFor[evidence.GPU](),
		"members: vtpm":           reflect.TypeFor[evidence.VTPM](),
		"members: tdx_collateral": reflect.TypeFor[evidence.TDXCollateral](),
	} {
		var documented []string
		for _, row := range specTable(t, doc, marker) {
			documented = append(documented, codeSpan(row[0]))
		}
		sort.Strings(documented)
		if got := jsonMembers(typ); !slices.Equal(got, documented) {
			t.Errorf("%s: the decoder accepts %v; the spec documents %v", marker, got, documented)
		}
	}

	// The limits: every size constant of the package is in the table
	// with its value, and the table names no other.
	values := map[string]int{
		"MaxBundleSize": evidence.MaxBundleSize, "SNPReportSize": evidence.SNPReportSize,
		"MaxCertTableSize": evidence.MaxCertTableSize, "MaxCertSize": evidence.MaxCertSize,
		"MaxQuoteSize": evidence.MaxQuoteSize, "MaxCollateralItemSize": evidence.MaxCollateralItemSize,
		"MaxEventLogSize": evidence.MaxEventLogSize, "MaxEndorsementSize": evidence.MaxEndorsementSize,
		"MaxChannelKeySize": evidence.MaxChannelKeySize, "MaxProofSize": evidence.MaxProofSize,
		"MaxIndexProofSize": evidence.MaxIndexProofSize, "MaxRelated": evidence.MaxRelated,
		"MaxGPUs": evidence.MaxGPUs, "MaxGPUReportSize": evidence.MaxGPUReportSize,
		"MaxGPUChainSize": evidence.MaxGPUChainSize, "MaxRIMSize": evidence.MaxRIMSize,
		"MaxGPUOCSP": evidence.MaxGPUOCSP, "MaxOCSPSize": evidence.MaxOCSPSize,
		"MaxHCLReportSize": evidence.MaxHCLReportSize, "MaxTPMQuoteSize": evidence.MaxTPMQuoteSize,
		"MaxTPMSignatureSize": evidence.MaxTPMSignatureSize, "MaxPCRs": evidence.MaxPCRs,
		"PCRSize": evidence.PCRSize, "MaxVTPMEventLogSize": evidence.MaxVTPMEventLogSize,
		"MinNonceSize": evidence.MinNonceSize, "MaxNonceSize": evidence.MaxNonceSize,
	}
	// The package's limit constants, read from its source: a new limit
	// that this test's map lacks fails here, not silently.
	declared := limitConstants(t)
	for _, name := range declared {
		if _, ok := values[name]; !ok {
			t.Errorf("package evidence declares the limit %s, which this test (and so the spec) does not know: add it to both", name)
		}
	}
	documented := map[string]bool{}
	for _, row := range specTable(t, doc, "limits") {
		name := codeSpan(row[0])
		documented[name] = true
		want, ok := values[name]
		if !ok || !slices.Contains(declared, name) {
			t.Errorf("the spec's limit %s is not a constant of package evidence", name)
			continue
		}
		if got, err := strconv.Atoi(row[1]); err != nil || got != want {
			t.Errorf("the spec says %s = %s; the package says %d", name, row[1], want)
		}
	}
	for _, name := range declared {
		if !documented[name] {
			t.Errorf("the limit %s is not in the spec's table", name)
		}
	}
	// Every limit the spec's member tables name is in the limits table.
	for _, m := range regexp.MustCompile("`((?:Max|Min)[A-Za-z]+|[A-Z][A-Za-z]*Size)`").FindAllStringSubmatch(doc, -1) {
		if !documented[m[1]] {
			t.Errorf("the spec names %s, which its limits table lacks", m[1])
		}
	}

	// The format names.
	for _, f := range []string{evidence.Format, evidence.FormatGPU, evidence.FormatKeySet} {
		if !strings.Contains(doc, "| `"+f+"` |") {
			t.Errorf("the versions table lacks %s", f)
		}
	}

	// The examples parse, and their REPORT_DATA is the spec's.
	parsed := map[string]*evidence.Bundle{}
	for _, name := range []string{"v1", "v2", "v3"} {
		raw, ok := ex[name]
		if !ok {
			t.Fatalf("the spec has no %s example", name)
		}
		b, err := evidence.ParseBundle(raw)
		if err != nil {
			t.Fatalf("the spec's %s example does not parse: %v", name, err)
		}
		parsed[name] = b
		if want := "attestlog-evidence/" + name; b.Format != want {
			t.Errorf("example %s has format %q, want %q", name, b.Format, want)
		}
	}
	rows := specTable(t, doc, "report-data")
	if len(rows) < 3 {
		t.Fatalf("the report-data table has %d rows", len(rows))
	}
	for _, row := range rows {
		name := codeSpan(row[0])
		b := parsed[name]
		if b == nil {
			t.Fatalf("report-data row for unknown example %q", row[0])
		}
		var nonce []byte
		if n := codeSpan(row[1]); n != "" {
			var err error
			if nonce, err = hex.DecodeString(n); err != nil {
				t.Fatal(err)
			}
		}
		want, err := hex.DecodeString(codeSpan(row[2]))
		if err != nil || len(want) != 64 {
			t.Fatalf("report-data %s: %q is not 64 bytes of hex", name, row[2])
		}
		got, err := b.ExpectedReportData(nonce)
		if err != nil {
			t.Fatalf("%s: ExpectedReportData(%x) = %v", name, nonce, err)
		}
		if !bytes.Equal(got[:], want) {
			t.Errorf("%s with nonce %x: the package binds %x; the spec says %x", name, nonce, got, want)
		}
		// The example's hardware evidence carries it where the spec says
		// (for the document, not for a challenge on it).
		if name == "v3" && nonce != nil {
			continue
		}
		var in []byte
		switch b.Platform {
		case evidence.SEVSNP:
			in = b.Report[0x50 : 0x50+64]
		case evidence.TDX:
			in = b.Quote[568 : 568+64]
		}
		if !bytes.Equal(in, want) {
			t.Errorf("%s: the example's REPORT_DATA is %x, the table's %x", name, in, want)
		}
	}
	gd := evidence.GPUDigest(parsed["v2"].GPUs)
	if !strings.Contains(doc, "`GPUDigest` is\n`"+hex.EncodeToString(gd[:])+"`") {
		t.Errorf("the spec does not give the v2 example's GPUDigest %x", gd)
	}
	gn := parsed["v2"].GPUNonce([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 0)
	if !strings.Contains(doc, "`GPUNonce(nonce, 0)` =\n`"+hex.EncodeToString(gn[:])+"`") {
		t.Errorf("the spec does not give the v2 example's GPU 0 nonce %x", gn)
	}

	// The refused bundles.
	v1 := string(ex["v1"])
	v3 := parsed["v3"]
	last := strings.LastIndex(v1, "\n}")
	add := func(member string) string { return v1[:last] + ",\n  " + member + v1[last:] }
	mustB64 := func(b []byte) string { s, _ := json.Marshal(b); return string(s) }
	refused := map[string]string{
		"unknown member":                  add(`"extra": 1`),
		"member given twice":              add(`"channel_key": "AAAA"`),
		"member names are case-sensitive": strings.Replace(v1, `"channel_key"`, `"Channel_key"`, 1),
		"v2 without GPUs":                 strings.Replace(v1, `"attestlog-evidence/v1"`, `"attestlog-evidence/v2"`, 1),
		"a TDX member on `sev-snp`":       add(`"quote": ` + mustB64(v3.Quote)),
		"a key set outside v3":            add(`"key_set": ` + mustB64(v3.KeySet)),
		"trailing data":                   v1 + "{}",
	}
	for _, row := range specTable(t, doc, "refused") {
		in, ok := refused[row[1]]
		if !ok {
			t.Errorf("the spec refuses %q (%s), which this test does not construct", row[0], row[1])
			continue
		}
		delete(refused, row[1])
		if in == v1 {
			t.Fatalf("%s: the change did not apply", row[1])
		}
		if _, err := evidence.ParseBundle([]byte(in)); err == nil {
			t.Errorf("%s (%s): the bundle parsed", row[1], row[0])
		}
	}
	for rule := range refused {
		t.Errorf("the spec's refused table lacks %q", rule)
	}
}

// limitConstants returns the names of package evidence's limit
// constants (Max*, Min*, *Size), read from its non-test source files.
func limitConstants(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() && (strings.HasPrefix(n.Name, "Max") || strings.HasPrefix(n.Name, "Min") || strings.HasSuffix(n.Name, "Size")) {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestEvidenceSpecCheckNames: the check names of the spec's
// "Verification" section are the verifiers' (read from the source of the
// packages that make them), and every check name those packages declare
// is in the spec.
func TestEvidenceSpecCheckNames(t *testing.T) {
	doc := readSpec(t)
	_, verification, ok := strings.Cut(doc, "## Verification\n")
	if !ok {
		t.Fatal("the spec has no Verification section")
	}
	verification, _, _ = strings.Cut(verification, "\n## ")
	inSpec := map[string]bool{}
	flat := strings.Join(strings.Fields(verification), " ") // a code span may wrap
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(flat, -1) {
		inSpec[m[1]] = true
	}
	// Where the names are declared: every exported string constant of
	// these files is a check name (and attest's AKKeyName, which the
	// spec names as the key).
	declared := map[string]bool{}
	for _, f := range []string{"../check/check.go", "../verify/verify.go", "../attest/azure.go",
		"../gpu/gpu.go", "../gpu/ocsp.go", "../gpu/spdm/inspect.go"} {
		for name, v := range stringConstants(t, f, "") {
			if name != "AKKeyName" {
				declared[v] = true
			}
		}
	}
	for _, f := range []string{"../gpu/rim/rim.go", "../provenance/provenance.go"} {
		for _, v := range stringConstants(t, f, "Check") {
			declared[v] = true
		}
	}
	if len(declared) < 40 {
		t.Fatalf("found only %d check names in the source: %v", len(declared), declared)
	}
	for name := range declared {
		if !inSpec[name] {
			t.Errorf("the check %q is not in the spec's Verification section", name)
		}
	}
	// Every bullet of the per-platform lists names a declared check.
	for _, m := range regexp.MustCompile("(?m)^- \\[?`([^`]+)`").FindAllStringSubmatch(verification, -1) {
		if !declared[m[1]] {
			t.Errorf("the spec lists the check %q, which no verifier declares", m[1])
		}
	}
}

// stringConstants returns the exported string constants of a Go file
// whose names start with prefix, by name.
func stringConstants(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	af, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range af.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !n.IsExported() || !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[n.Name] = v
				}
			}
		}
	}
	return out
}

// TestEvidenceSpecCheckOrder: the hardware verifier reports the checks of
// the spec's sev-snp and tdx lists in the spec's order (those in brackets
// only under their condition, which these inputs do not meet): the spec's
// v1 example, and go-tdx-guest's sample quote in a v1 bundle.
func TestEvidenceSpecCheckOrder(t *testing.T) {
	doc := readSpec(t)
	pol, err := policy.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.New(pol.Attestation)
	if err != nil {
		t.Fatal(err)
	}
	snp, err := evidence.ParseBundle(specExamples(t, doc)["v1"])
	if err != nil {
		t.Fatal(err)
	}
	tdx := &evidence.Bundle{Format: evidence.Format, Platform: evidence.TDX, Quote: tdxtd.RawQuote}
	nonce := make([]byte, 16)
	for platform, b := range map[string]*evidence.Bundle{"sev-snp": snp, "tdx": tdx} {
		_, list, ok := strings.Cut(doc, "<!-- checks: "+platform+" -->\n")
		if !ok {
			t.Fatalf("the spec has no %s check list", platform)
		}
		list, _, _ = strings.Cut(list, "\n\n")
		var want []string
		for _, m := range regexp.MustCompile("(?m)^- (\\[?)`([^`]+)`").FindAllStringSubmatch(list, -1) {
			if m[1] == "" {
				want = append(want, m[2])
			}
		}
		var got []string
		for _, c := range v.Verify(b, nonce).Checks {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the verifier reports %q; the spec lists %q", platform, got, want)
		}
	}
}

// TestEvidenceSpecLogCheckOrder: after the hardware checks, the client's
// decision reports the log's checks in the order of the spec's "Then the
// log" list (here with no proof stapled: each is reported, failed as
// not checked).
func TestEvidenceSpecLogCheckOrder(t *testing.T) {
	doc := readSpec(t)
	_, para, ok := strings.Cut(doc, "Then the log, in this order:")
	if !ok {
		t.Fatal(`the spec has no "Then the log" list`)
	}
	para, _, _ = strings.Cut(para, "\n\n")
	var spec []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(strings.Join(strings.Fields(para), " "), -1) {
		spec = append(spec, m[1])
	}
	v, err := verify.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := evidence.ParseBundle(specExamples(t, doc)["v1"])
	if err != nil {
		t.Fatal(err)
	}
	vd := v.Verify(verify.Input{Evidence: b, Nonce: make([]byte, 16)})
	var got []string
	for _, c := range vd.Checks[len(vd.Hardware.Checks):] {
		got = append(got, c.Name)
	}
	if len(got) < 9 {
		t.Fatalf("the log's checks: %q", got)
	}
	// got is spec with the checks that did not apply left out.
	i := 0
	for _, name := range spec {
		if i < len(got) && got[i] == name {
			i++
		}
	}
	if i != len(got) {
		t.Errorf("the verifier reports the log's checks as %q; the spec's order is %q", got, spec)
	}
}
