package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const ghIssuer = "https://token.actions.githubusercontent.com"

func TestProvenanceDefaults(t *testing.T) {
	p, err := Parse([]byte("# no provenance section\n"))
	if err != nil {
		t.Fatal(err)
	}
	pp := p.Provenance
	if pp.TLogEntries != 1 || pp.Timestamps != 1 || pp.SCT != SCTAuto {
		t.Errorf("default sigstore requirements = tlog=%d timestamps=%d sct=%s, want 1 1 auto", pp.TLogEntries, pp.Timestamps, pp.SCT)
	}
	if pp.Required() {
		t.Errorf("Required() = true for a policy without builders, want false")
	}
	if pp.SigstoreRoot != "" || len(pp.Builders) != 0 || len(pp.KeylessOperators) != 0 {
		t.Errorf("defaults = %+v", pp)
	}
}

func TestProvenanceRequired(t *testing.T) {
	builder := "builder ci issuer=" + ghIssuer + " subject=x\n"
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"", false},
		{builder, true},
		{builder + "provenance optional\n", false},
		{"provenance required\n", true},
		{"provenance optional\n", false},
	} {
		p, err := Parse([]byte(tc.text))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.text, err)
		}
		if got := p.Provenance.Required(); got != tc.want {
			t.Errorf("Parse(%q).Provenance.Required() = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestBuilderDirective(t *testing.T) {
	text := `sigstore-root roots/trusted_root.json
builder release issuer=` + ghIssuer + ` subject-regex=https://github\.com/acme/enclave/\.github/workflows/release\.yml@refs/tags/v.* repo=https://github.com/acme/enclave ref=refs/tags/v.* build-config=https://github\.com/acme/enclave/\.github/workflows/release\.yml@.* builder-id=https://github.com/actions/runner/github-hosted build-type=https://actions.github.io/buildtypes/workflow/v1 build-type=https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1
keyless-operator acme-ci issuer=` + ghIssuer + ` subject=https://github.com/acme/enclave/.github/workflows/publish.yml@refs/heads/main
sigstore-require tlog=2 timestamps=0 sct=yes
`
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	pp := p.Provenance
	if pp.SigstoreRoot != "roots/trusted_root.json" {
		t.Errorf("SigstoreRoot = %q", pp.SigstoreRoot)
	}
	if pp.TLogEntries != 2 || pp.Timestamps != 0 || pp.SCT != SCTYes {
		t.Errorf("requirements = tlog=%d timestamps=%d sct=%s, want 2 0 yes", pp.TLogEntries, pp.Timestamps, pp.SCT)
	}
	b := pp.Builder("release")
	if b == nil {
		t.Fatalf("Builder(release) = nil; builders %+v", pp.Builders)
	}
	if b.Issuer != ghIssuer || b.Subject != "" || b.Repo != "https://github.com/acme/enclave" {
		t.Errorf("builder = %+v", b)
	}
	for _, m := range []struct {
		name string
		re   interface{ MatchString(string) bool }
		in   string
		want bool
	}{
		{"subject-regex", b.SubjectRegex, "https://github.com/acme/enclave/.github/workflows/release.yml@refs/tags/v1.2.0", true},
		{"subject-regex", b.SubjectRegex, "https://github.com/acme/enclave/.github/workflows/release.yml@refs/heads/main", false},
		{"subject-regex (anchored)", b.SubjectRegex, "x" + "https://github.com/acme/enclave/.github/workflows/release.yml@refs/tags/v1", false},
		{"ref", b.Ref, "refs/tags/v1.2.0", true},
		{"ref (anchored)", b.Ref, "refs/heads/refs/tags/v1", false},
		{"build-config", b.BuildConfig, "https://github.com/acme/enclave/.github/workflows/release.yml@refs/tags/v1", true},
		{"build-config", b.BuildConfig, "https://github.com/acme/enclave/.github/workflows/other.yml@refs/tags/v1", false},
	} {
		if got := m.re.MatchString(m.in); got != m.want {
			t.Errorf("%s.MatchString(%q) = %v, want %v", m.name, m.in, got, m.want)
		}
	}
	wantTypes := []string{"https://actions.github.io/buildtypes/workflow/v1", "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"}
	if !reflect.DeepEqual(b.BuildTypes, wantTypes) || !reflect.DeepEqual(b.BuilderIDs, []string{"https://github.com/actions/runner/github-hosted"}) {
		t.Errorf("builder ids %q, build types %q", b.BuilderIDs, b.BuildTypes)
	}
	if len(pp.KeylessOperators) != 1 || pp.KeylessOperators[0].Name != "acme-ci" || pp.KeylessOperators[0].Subject == "" {
		t.Errorf("keyless operators = %+v", pp.KeylessOperators)
	}
}

func TestProvenanceParseErrors(t *testing.T) {
	const b = "builder ci issuer=" + ghIssuer + " subject=s"
	for _, tc := range []struct {
		text string
		line int
		want string
	}{
		{"sigstore-root", 1, "want: sigstore-root FILE"},
		{"sigstore-root a b", 1, "want: sigstore-root FILE"},
		{"sigstore-root a\nsigstore-root b", 2, "sigstore-root given twice"},
		{"builder", 1, "want: builder NAME"},
		{"builder ci issuer=" + ghIssuer, 1, "want: builder NAME"},
		{"builder issuer=" + ghIssuer + " subject=s x=y", 1, "want: builder NAME"},
		{"builder ci subject=s repo=https://github.com/a/b", 1, "issuer= is required"},
		{"builder ci issuer=" + ghIssuer + " repo=https://github.com/a/b", 1, "exactly one of subject= and subject-regex="},
		{"builder ci issuer=" + ghIssuer + " subject=s subject-regex=s", 1, "exactly one of subject= and subject-regex="},
		{"builder ci issuer=token.actions subject=s", 1, "issuer=token.actions: want an http(s) URL"},
		{"builder ci issuer=" + ghIssuer + " subject=s repo=github.com/a/b", 1, "repo=github.com/a/b: want an http(s) URL"},
		{"builder ci issuer=" + ghIssuer + " subject-regex=(", 1, "subject-regex=(: error parsing regexp"},
		{"builder ci issuer=" + ghIssuer + " subject=s ref=[", 1, "ref=[: error parsing regexp"},
		{"builder ci issuer=" + ghIssuer + " subject=s build-config=a(", 1, "build-config=a(: error parsing regexp"},
		{"builder ci issuer=" + ghIssuer + " subject=s colour=blue", 1, `unknown key "colour"`},
		{"builder ci issuer=" + ghIssuer + " subject=s subject=t", 1, "key subject given twice"},
		{"builder ci issuer=" + ghIssuer + " subject=s issuer=" + ghIssuer, 1, "key issuer given twice"},
		{"builder ci issuer=" + ghIssuer + " subject=s build-type=x build-type=x", 1, "build-type=x listed twice"},
		{"builder ci issuer=" + ghIssuer + " subject=s builder-id", 1, `"builder-id": want KEY=VALUE`},
		{"builder ci issuer=" + ghIssuer + " subject=s repo=", 1, `"repo=": want KEY=VALUE`},
		{b + "\n\n" + b, 3, `builder "ci" listed twice`},
		{"keyless-operator ci issuer=" + ghIssuer + " subject=s build-type=x", 1, `unknown key "build-type"`},
		{"keyless-operator ci issuer=" + ghIssuer, 1, "want: keyless-operator NAME"},
		{"operator ci ed25519:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nkeyless-operator ci issuer=" + ghIssuer + " subject=s", 2, `keyless-operator "ci": an operator of that name is already defined`},
		{"provenance", 1, "want: provenance required|optional"},
		{"provenance sometimes", 1, "want: provenance required|optional"},
		{"provenance required\nprovenance optional", 2, "provenance given twice"},
		{"sigstore-require", 1, "want: sigstore-require"},
		{"sigstore-require tlog=-1", 1, "tlog=-1: want a number from 0 to 8"},
		{"sigstore-require timestamps=many", 1, "timestamps=many: want a number from 0 to 8"},
		{"sigstore-require tlog=9", 1, "tlog=9: want a number from 0 to 8"},
		{"sigstore-require sct=maybe", 1, "sct=maybe: want yes, no or auto"},
		{"sigstore-require scts=yes", 1, `unknown key "scts"`},
		{"sigstore-require tlog=1\nsigstore-require sct=no", 2, "sigstore-require given twice"},
	} {
		_, err := Parse([]byte(tc.text))
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("Parse(%q) = %v, want a LineError", tc.text, err)
			continue
		}
		if le.Line != tc.line {
			t.Errorf("Parse(%q): error on line %d, want line %d (%v)", tc.text, le.Line, tc.line, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

func TestSigstoreRootResolvedByLoad(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "elsewhere", "root.json")
	for _, tc := range []struct{ line, want string }{
		{"sigstore-root trusted_root.json", filepath.Join(dir, "trusted_root.json")},
		{"sigstore-root ../x/root.json", filepath.Join(filepath.Dir(dir), "x", "root.json")},
		{"sigstore-root " + abs, abs},
	} {
		path := filepath.Join(dir, "policy.txt")
		if err := os.WriteFile(path, []byte(tc.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Provenance.SigstoreRoot != tc.want {
			t.Errorf("Load(%q).Provenance.SigstoreRoot = %q, want %q", tc.line, p.Provenance.SigstoreRoot, tc.want)
		}
	}
}
