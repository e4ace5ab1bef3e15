package up

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWriteGenerated pins the rule that nothing a user edited is lost.
func TestWriteGenerated(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<missing>"
		}
		return string(b)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gen := func(files map[string]string) []string {
		t.Helper()
		notes, err := writeGenerated(dir, files)
		if err != nil {
			t.Fatal(err)
		}
		return notes
	}
	// A missing file is written.
	if n := gen(map[string]string{"a": "v1", "b": "v1"}); len(n) != 0 || read("a") != "v1" {
		t.Fatalf("first run: notes %q, a = %q", n, read("a"))
	}
	// Unedited and up's content changed: replaced, no note.
	if n := gen(map[string]string{"a": "v2", "b": "v1"}); len(n) != 0 || read("a") != "v2" {
		t.Errorf("unedited file: notes %q, a = %q, want v2", n, read("a"))
	}
	// Edited, up's content unchanged: the edit stands, no note.
	write("b", "mine")
	if n := gen(map[string]string{"a": "v2", "b": "v1"}); len(n) != 0 || read("b") != "mine" {
		t.Errorf("edited file, same content: notes %q, b = %q", n, read("b"))
	}
	// Edited, and up's content changed: kept, the new one beside it.
	n := gen(map[string]string{"a": "v2", "b": "v2"})
	if read("b") != "mine" || read("b.new") != "v2" || len(n) != 1 || !strings.Contains(n[0], "b.new") {
		t.Errorf("edited file, new content: b = %q, b.new = %q, notes %q", read("b"), read("b.new"), n)
	}
	// The user merges: the proposal goes.
	write("b", "v2")
	if n := gen(map[string]string{"a": "v2", "b": "v2"}); len(n) != 0 || read("b.new") != "<missing>" {
		t.Errorf("merged: notes %q, b.new = %q", n, read("b.new"))
	}
	// A file up never recorded writing is the user's.
	write("c", "theirs")
	if n := gen(map[string]string{"c": "ours"}); read("c") != "theirs" || read("c.new") != "ours" || len(n) != 1 {
		t.Errorf("unrecorded file: c = %q, c.new = %q, notes %q", read("c"), read("c.new"), n)
	}
	// A corrupt manifest is an error that says what to do.
	write(upManifest, "{")
	if _, err := writeGenerated(dir, map[string]string{"a": "v3"}); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("corrupt manifest: %v", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestPrepare: keys are made once with 0600 and reused; the configuration
// files follow the address; the info names files that exist.
func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	ln := listen(t)
	defer ln.Close()
	info, notes, err := Prepare(Config{Dir: dir, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("first Prepare notes %q", notes)
	}
	for _, k := range []string{info.Log.Key, info.Witness.Key, info.Operator.Key, info.Auditor.Key} {
		st, err := os.Stat(k)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key %s: %v mode %v, want 0600", k, err, st.Mode().Perm())
		}
	}
	for _, f := range []string{info.ClientPolicy, info.ExampleRelease, info.Log.Config, info.AuditorConfig} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("Info names %s: %v", f, err)
		}
	}
	lc, _ := os.ReadFile(info.Log.Config)
	if !strings.Contains(string(lc), "listen: "+ln.Addr().String()) {
		t.Errorf("log.yaml does not listen on %s:\n%s", ln.Addr(), lc)
	}

	// The first start already rebuilds the demo release (its repository
	// is made before the auditor's configuration), so a restart has
	// nothing new to propose.
	if _, err := exec.LookPath("git"); err == nil {
		ac, _ := os.ReadFile(info.AuditorConfig)
		if !strings.Contains(string(ac), "enabled: true") {
			t.Errorf("with git, the first auditor.yaml does not rebuild:\n%s", ac)
		}
	}

	ln2 := listen(t)
	defer ln2.Close()
	again, notes, err := Prepare(Config{Dir: dir, Listener: ln2})
	if err != nil {
		t.Fatal(err)
	}
	if again.Log.VKey != info.Log.VKey || again.Operator.Public != info.Operator.Public {
		t.Error("a second Prepare made new keys")
	}
	lc, _ = os.ReadFile(info.Log.Config)
	if len(notes) != 0 || !strings.Contains(string(lc), "listen: "+ln2.Addr().String()) {
		t.Errorf("a new address: notes %q, log.yaml:\n%s", notes, lc)
	}
}

// TestRun starts the stack without the auditor, checks each part answers
// where Info says, and that Run returns nil once its context ends.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readyc := make(chan *Info, 1)
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, Config{Dir: dir, Listener: ln}, func(i *Info) { readyc <- i }) }()
	var info *Info
	select {
	case info = <-readyc:
	case err := <-errc:
		t.Fatalf("Run = %v before ready", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("not ready after 2 minutes")
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(info.Log.URL + "/checkpoint"); code != 200 || !strings.HasPrefix(body, Origin+"\n") {
		t.Errorf("GET /checkpoint = %d %q", code, body)
	}
	if code, body := get(info.Demo.URL + "/"); code != 200 || !strings.Contains(body, "demo SEV-SNP enclave") {
		t.Errorf("GET /demo/ = %d %q", code, body)
	}
	if code, body := get(info.AuditorURL + "/"); code != 200 || !strings.Contains(body, "not running") {
		t.Errorf("GET /auditor/ without the auditor = %d %q", code, body)
	}
	if code, _ := get(info.URL + "/ui/entry/" + strconv.FormatUint(info.Demo.ReleaseIndex, 10)); code != 200 {
		t.Errorf("the explorer has no page for the demo release %d: %d", info.Demo.ReleaseIndex, code)
	}
	if got, err := ReadInfo(filepath.Join(dir, "up.json")); err != nil || got.Demo.Measurement != info.Demo.Measurement || got.Demo.Measurement == "" {
		t.Errorf("up.json = %+v, %v", got, err)
	}
	var sum strings.Builder
	WriteSummary(&sum, info)
	if !strings.Contains(sum.String(), info.Log.URL) || !strings.Contains(sum.String(), "verify --policy") {
		t.Errorf("summary lacks the log URL or the verify command:\n%s", sum.String())
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after cancel = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
}
