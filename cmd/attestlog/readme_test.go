package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/attestlog/attestlog/internal/testenv"
)

// readmeBlock is one fenced shell block of the README: ```sh [ATTRS].
//
// Attributes (space-separated after "sh"):
//   - dir=NAME: run in the subdirectory NAME of the work directory
//     (created empty), not in the work directory itself; dir=repo runs in
//     the repository, for blocks that read its files;
//   - serve=URL: the block starts servers and does not end; it runs in
//     the background, the test waits until URL answers 200 and stops the
//     block's processes at the end;
//   - expect=TEXT (or expect="TEXT WITH SPACES", expect='TEXT'): its
//     output must contain TEXT;
//   - fails: it must exit non-zero (a documented refusal);
//   - norun: not run; the line before the fence must be an HTML comment
//     "<!-- not run: REASON -->" saying why.
type readmeBlock struct {
	file    string // relative to the repository
	line    int
	section string
	text    string
	attrs   map[string]string
	reason  string
}

// attrRE matches one attribute: name, name=value, name="value" or
// name='value'.
var attrRE = regexp.MustCompile(`(\w+)(=("([^"]*)"|'([^']*)'|(\S+)))?`)

func parseREADME(t *testing.T, path string) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeBlock
	var cur *readmeBlock
	var prev, section string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur != nil && l == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case strings.HasPrefix(l, "## ") || strings.HasPrefix(l, "### "):
			section = strings.TrimLeft(l, "# ")
		case l == "```sh" || strings.HasPrefix(l, "```sh "):
			cur = &readmeBlock{file: path, line: n, section: section, attrs: map[string]string{}}
			for _, m := range attrRE.FindAllStringSubmatch(strings.TrimPrefix(l, "```sh"), -1) {
				cur.attrs[m[1]] = m[4] + m[5] + m[6]
			}
			if _, ok := cur.attrs["norun"]; ok {
				if m := regexp.MustCompile(`^<!-- not run: (.+) -->$`).FindStringSubmatch(prev); m != nil {
					cur.reason = m[1]
				}
			}
		}
		prev = l
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated block", path, cur.line)
	}
	return out
}

// TestREADME runs the README's shell blocks in order, as a new user would
// type them, in a fresh work directory against a real 'attestlog up' (its
// data directory is the work directory's attestlog-data) and the servers
// the blocks start themselves. Every block must exit 0 (or, marked fails,
// non-zero) and print what it says it prints. Substitutions, the only
// ones: 'go run ./cmd/attestlog' is the binary the tests built (the same
// code, without relinking per command); the documented ports 8080, 8081,
// 7380, 7381, 8443 (the demo enclave agent) and 8090 (attestlog proxy) on
// 127.0.0.1 are free ports the test picked.
func TestREADME(t *testing.T) {
	testenv.LookPath(t, "bash")
	testenv.LookPath(t, "curl")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, repo)
	if len(blocks) < 10 {
		t.Fatalf("the README and docs have %d shell blocks; the quickstarts have more", len(blocks))
	}
	work := t.TempDir()
	ports := map[string]string{}
	for _, p := range []string{"8080", "8081", "7380", "7381", "8443", "8090"} {
		ports[p] = freePort(t)
	}
	subst := func(s string) string {
		s = strings.ReplaceAll(s, "go run ./cmd/attestlog", "attestlog")
		for doc, real := range ports {
			s = strings.ReplaceAll(s, "127.0.0.1:"+doc, "127.0.0.1:"+real)
		}
		return s
	}
	// The system on embedded defaults, as the set-up's first command.
	startUp(t, filepath.Join(work, "attestlog-data"), "--listen", "127.0.0.1:"+ports["8080"], "--enclave-listen", "127.0.0.1:"+ports["8443"])
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "attestlog")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "GOBIN="+t.TempDir(), "HOME="+work)
	// The machine's module and build caches, as a user's shell has them:
	// with HOME fresh, Go would otherwise download and rebuild every module
	// for a 'go install' block (minutes on a loaded two-core machine).
	goenv, err := exec.Command("go", "env", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	if f := strings.Fields(string(goenv)); len(f) == 2 {
		env = append(env, "GOMODCACHE="+f[0], "GOCACHE="+f[1])
	}

	ran, skipped := 0, 0
	for _, b := range blocks {
		name := fmt.Sprintf("%s:%d (%s)", b.file, b.line, b.section)
		if _, ok := b.attrs["norun"]; ok {
			if b.reason == "" {
				t.Errorf("%s: a norun block needs a '<!-- not run: REASON -->' line before it", name)
			}
			skipped++
			continue
		}
		dir := work
		switch {
		case strings.Contains(subst(b.text), "./cmd/attestlog"), b.attrs["dir"] == "repo":
			dir = repo // go install ./cmd/attestlog; files of the repository
		case b.attrs["dir"] != "":
			dir = filepath.Join(work, b.attrs["dir"])
			os.MkdirAll(dir, 0o755)
		}
		script := "set -euo pipefail\n" + subst(b.text)
		if url := b.attrs["serve"]; url != "" {
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir, cmd.Env = dir, env
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			err := waitReady(ctx, subst(url))
			cancel()
			if err != nil {
				t.Fatalf("%s: %s never answered: %v\n%s", name, subst(url), err, out.String())
			}
			ran++
			continue
		}
		// A block that builds (the WebAssembly tests of a dozen packages)
		// takes minutes on a busy two-core machine; the limit only stops a
		// hung block.
		ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		_, fails := b.attrs["fails"]
		switch {
		case fails && err == nil:
			t.Errorf("%s: documented to fail, but exited 0:\n%s\n%s", name, b.text, out)
		case !fails && err != nil:
			t.Errorf("%s: %v\n%s\n--- output:\n%s", name, err, b.text, out)
		}
		if want := b.attrs["expect"]; want != "" && !strings.Contains(string(out), want) {
			t.Errorf("%s: output lacks %q:\n%s", name, want, out)
		}
		ran++
	}
	t.Logf("README and docs: %d shell blocks run, %d not run (each says why)", ran, skipped)
	if ran < 10 {
		t.Errorf("only %d README blocks ran", ran)
	}
}

// docBlocks are the shell blocks of the README, then of every Markdown
// file under docs/ in lexical order of path: the README's quickstarts come
// first (they publish what the longer documents build on).
func docBlocks(t *testing.T, repo string) []readmeBlock {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repo, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(repo, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeBlock
	for _, f := range files {
		for _, b := range parseREADME(t, filepath.Join(repo, f)) {
			b.file = f
			out = append(out, b)
		}
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// TestDocLinks: every relative link of the README and docs/ names a file
// of the repository, and every #fragment a heading of the page it points
// at (GitHub's anchors), so that moving a section cannot leave a link
// pointing at nothing.
func TestDocLinks(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	filepath.WalkDir(filepath.Join(repo, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(repo, p)
			files = append(files, rel)
		}
		return nil
	})
	anchors := map[string]map[string]bool{}
	headings := func(f string) map[string]bool {
		if a, ok := anchors[f]; ok {
			return a
		}
		a := map[string]bool{}
		b, _ := os.ReadFile(filepath.Join(repo, f))
		fence := false
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "```") {
				fence = !fence
			}
			if m := regexp.MustCompile(`^#+ (.*)`).FindStringSubmatch(l); m != nil && !fence {
				a[githubAnchor(m[1])] = true
			}
		}
		anchors[f] = a
		return a
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(filepath.Join(repo, dest)); err != nil {
					t.Errorf("%s: link to %s: no such file", f, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !headings(dest)[frag] {
				t.Errorf("%s: link to %s: %s has no heading #%s", f, target, dest, frag)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d relative links checked; the README and docs have more", checked)
	}
}

// githubAnchor is the fragment GitHub gives a heading: lower case,
// punctuation but '-' and '_' dropped, spaces as '-'.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
