package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSpecIndex holds docs/spec/README.md to the folder and the code:
// every specification in docs/spec is listed once, and each test the
// index says holds a specification exists in a package the index names.
func TestSpecIndex(t *testing.T) {
	const dir = "../../docs/spec"
	index, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(index), "<!-- specs -->\n")
	if !ok {
		t.Fatal("docs/spec/README.md has no <!-- specs --> table")
	}
	code := regexp.MustCompile("`([^`]+)`")
	link := regexp.MustCompile(`^\[[^\]]+\]\(([^)#]+)\)$`)
	listed := map[string]bool{}
	for i, row := range strings.Split(table, "\n") {
		if !strings.HasPrefix(row, "|") {
			break
		}
		if i < 2 {
			continue
		}
		cells := strings.Split(strings.Trim(row, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("row %q: want 4 cells", row)
		}
		m := link.FindStringSubmatch(strings.TrimSpace(cells[0]))
		if m == nil {
			t.Fatalf("row %q: the first cell is not a link to a document", row)
		}
		if listed[m[1]] {
			t.Errorf("%s listed twice", m[1])
		}
		listed[m[1]] = true
		var pkgs []string
		for _, c := range code.FindAllStringSubmatch(cells[2], -1) {
			if _, err := os.Stat(filepath.Join("../..", c[1])); err != nil {
				t.Errorf("%s: the reference implementation %s does not exist", m[1], c[1])
			}
			pkgs = append(pkgs, c[1])
		}
		tests := 0
		for _, c := range code.FindAllStringSubmatch(cells[3], -1) {
			if !strings.HasPrefix(c[1], "Test") {
				continue
			}
			tests++
			if !testExists(t, pkgs, c[1]) {
				t.Errorf("%s: no package of %v has func %s", m[1], pkgs, c[1])
			}
		}
		if tests == 0 {
			t.Errorf("%s: the index names no test that holds it", m[1])
		}
	}
	specs, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if name := filepath.Base(s); name != "README.md" && !listed[name] {
			t.Errorf("docs/spec/%s is not in docs/spec/README.md", name)
		}
	}
}

// testExists reports whether a _test.go file of one of pkgs (paths from
// the module root) declares func name.
func testExists(t *testing.T, pkgs []string, name string) bool {
	t.Helper()
	for _, p := range pkgs {
		files, err := filepath.Glob(filepath.Join("../..", p, "*_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "\nfunc "+name+"(t *testing.T)") {
				return true
			}
		}
	}
	return false
}
