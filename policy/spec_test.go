package policy

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const specPath = "../docs/spec/policy.md"

// specCells splits a markdown table row at its unescaped '|'.
func specCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// specTable returns the rows after <!-- marker -->, header and separator
// left out.
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
		if i >= 2 {
			rows = append(rows, specCells(line))
		}
	}
	if len(rows) == 0 {
		t.Fatalf("the <!-- %s --> table is empty", marker)
	}
	return rows
}

func firstCode(s string) string {
	m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPolicySpec holds the parser to docs/spec/policy.md: the keyword
// table and the grammar name exactly the keywords the parser registers
// (its directives table, not a copied list), every example parses, a
// line the table calls once-only is refused when repeated and any other
// repeated line as a duplicate, and every refused input is refused at
// the line and for the reason the spec gives.
func TestPolicySpec(t *testing.T) {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	var registered []string
	for k := range directives {
		registered = append(registered, k)
	}
	sort.Strings(registered)

	// The keyword table.
	once := map[string]bool{}
	var documented []string
	for _, row := range specTable(t, doc, "keywords") {
		kw := firstCode(row[0])
		documented = append(documented, kw)
		once[kw] = strings.HasPrefix(row[2], "yes") || strings.HasPrefix(row[2], "once")
	}
	sort.Strings(documented)
	if !slices.Equal(registered, documented) {
		t.Errorf("the parser accepts the keywords %v; the spec's table documents %v", registered, documented)
	}

	// The grammar names every keyword as a terminal.
	m := regexp.MustCompile("(?s)```ebnf\n(.*?)\n```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("the spec has no ebnf block")
	}
	for _, kw := range registered {
		if !strings.Contains(m[1], `"`+kw+`"`) {
			t.Errorf("the grammar lacks the keyword %q", kw)
		}
	}

	// The examples parse; the full one uses every keyword but those that
	// exclude one of its lines, which the unchecked example uses.
	examples := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```policy example=([a-z]+)\n(.*?)\n```").FindAllStringSubmatch(doc, -1) {
		examples[m[1]] = m[2] + "\n"
	}
	for _, name := range []string{"client", "witnesses", "full", "unchecked", "empty"} {
		if _, ok := examples[name]; !ok {
			t.Fatalf("the spec has no %s example", name)
		}
	}
	parsed := map[string]*Policy{}
	for name, text := range examples {
		p, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("the spec's %s example does not parse: %v", name, err)
		}
		parsed[name] = p
	}
	used := map[string]bool{}
	for _, name := range []string{"full", "unchecked"} {
		for _, l := range strings.Split(examples[name], "\n") {
			if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				used[f[0]] = true
			}
		}
	}
	for _, kw := range registered {
		if !used[kw] {
			t.Errorf("neither the full nor the unchecked example has a %s line", kw)
		}
	}

	// Every line of the full and unchecked examples, repeated right after
	// itself, is refused there: as given twice if the table says once,
	// else as a duplicate name, origin, platform or file.
	for _, name := range []string{"full", "unchecked"} {
		full := strings.Split(strings.TrimSuffix(examples[name], "\n"), "\n")
		for i, l := range full {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			text := strings.Join(slices.Concat(full[:i+1], []string{l}, full[i+1:]), "\n")
			_, err := Parse([]byte(text))
			var le *LineError
			if !errors.As(err, &le) || le.Line != i+2 {
				t.Errorf("%s repeated on line %d: Parse = %v, want an error at line %d", f[0], i+2, err, i+2)
				continue
			}
			msg := le.Err.Error()
			switch {
			case once[f[0]] && !strings.Contains(msg, "given twice"):
				t.Errorf("%s repeated: %q; the spec says it may be given once", f[0], msg)
			case !once[f[0]] && !strings.Contains(msg, "listed twice") && !strings.Contains(msg, "already defined"):
				t.Errorf("%s repeated: %q; the spec says it may be repeated with distinct values", f[0], msg)
			}
		}
	}

	// The refused inputs.
	for _, row := range specTable(t, doc, "refused") {
		text := strings.ReplaceAll(firstCode(row[0]), `\n`, "\n")
		line, err := strconv.Atoi(row[1])
		if err != nil {
			t.Fatalf("refused %q: line %q", row[0], row[1])
		}
		want := firstCode(row[3])
		_, err = Parse([]byte(text))
		var le *LineError
		switch {
		case !errors.As(err, &le):
			t.Errorf("%s: Parse(%q) = %v, want a LineError", row[2], text, err)
		case le.Line != line || !strings.Contains(err.Error(), want):
			t.Errorf("%s: Parse(%q) = %v (line %d), want line %d containing %q", row[2], text, err, le.Line, line, want)
		}
	}

	// The defaults of the keyword table, on the policy of comments only.
	p := parsed["empty"]
	a := p.Attestation
	switch {
	case len(p.Logs) != 0 || p.Quorum != nil || len(p.Operators)+len(p.Auditors)+len(p.Authorities) != 0:
		t.Errorf("empty policy: trusts %v, quorum %v, principals %v %v %v", p.Logs, p.Quorum, p.Operators, p.Auditors, p.Authorities)
	case !a.AllowsPlatform(PlatformSEVSNP) || !a.AllowsPlatform(PlatformTDX) || a.AllowsPlatform(PlatformAzureSEVSNP) || a.AllowsPlatform(PlatformAzureTDX):
		t.Errorf("empty policy: platforms %v, want sev-snp and tdx only", a.Platforms)
	case a.SNP.AllowDebug || a.SNP.AllowProvisionalFirmware || !a.SNP.AllowSMT || a.SNP.AllowMigrationAgent || a.SNP.AllowCXL ||
		a.SNP.RequireSingleSocket || a.SNP.MinABIMajor != 0 || a.SNP.MinABIMinor != 0 || a.SNP.VMPL != nil || a.SNP.MinGuestSVN != 0 || !a.SNP.MinTCB.IsZero():
		t.Errorf("empty policy: SEV-SNP %+v", a.SNP)
	case a.TDX.AllowDebug || a.TDX.MinTeeTCBSVN != nil || a.TDX.RequireTCBStatus:
		t.Errorf("empty policy: TDX %+v", a.TDX)
	case a.Reproductions != 0 || a.AllowUnsandboxedReproductions || a.AllowReproductionMismatch || a.RequireRevocationProof ||
		a.RevocationBound() != 10*time.Minute || a.MaxCheckpointAge != 0 || a.GPU.Required || len(a.TrustRoots)+len(a.CRLs)+len(a.VLEKCRLs) != 0 || a.TDXCollateral != "":
		t.Errorf("empty policy: attestation %+v", a)
	case p.Provenance.SigstoreRoot != "" || p.Provenance.Required() || p.Provenance.TLogEntries != 1 || p.Provenance.Timestamps != 1 || p.Provenance.SCT != SCTAuto:
		t.Errorf("empty policy: provenance %+v", p.Provenance)
	}
	// A gpu line's own defaults, and provenance required by a builder.
	g := parsed["full"].Attestation.GPU
	if gl, err := Parse([]byte("gpu nvidia count=2")); err != nil || !gl.Attestation.GPU.RequireRIMs || !gl.Attestation.GPU.RequireOCSP || gl.Attestation.GPU.Mode != "" || gl.Attestation.GPU.Arch != "" {
		t.Errorf("gpu nvidia count=2: %+v, %v; want rims and ocsp required, any mode and arch", gl, err)
	}
	if g.Count != 8 || g.RequireOCSP || !g.RequireRIMs || g.Mode != "cc" {
		t.Errorf("the full example's gpu line reads as %+v", g)
	}
	if b, err := Parse([]byte("builder ci issuer=https://issuer.example subject=a")); err != nil || !b.Provenance.Required() {
		t.Errorf("a builder line: provenance required = %v (%v), want true", b != nil && b.Provenance.Required(), err)
	}
}
