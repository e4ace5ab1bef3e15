package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointOneWay keeps the layering of the README's Layout
// section: the binary links no test scaffolding, and neither the web
// pages nor the auditor link the log server (or Tessera's drivers).
func TestDependenciesPointOneWay(t *testing.T) {
	deps := func(pkg string, env ...string) map[string]bool {
		t.Helper()
		cmd := exec.Command("go", "list", "-deps", "-tags", "attestlog_nosigstore", pkg)
		if len(env) == 0 {
			cmd = exec.Command("go", "list", "-deps", pkg)
		}
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		m := map[string]bool{}
		for _, l := range strings.Fields(string(out)) {
			m[l] = true
		}
		return m
	}
	const mod = "github.com/attestlog/attestlog/"
	bin := deps("../../cmd/attestlog")
	if len(bin) < 100 {
		t.Fatalf("go list found only %d dependencies of the binary", len(bin))
	}
	for _, p := range []string{"testing", "net/http/httptest",
		mod + "internal/httpfuzz", mod + "internal/httpbody/httpbodytest", mod + "internal/testenv",
		mod + "internal/mariadbtest", mod + "internal/seaweedtest", mod + "internal/versitygwtest", mod + "internal/tlogcheck", mod + "policy/provenance/provenancetest", mod + "policy/gpu/rim/rimtest", mod + "channel/channeltest",
		"github.com/google/go-configfs-tsm/configfs/faketsm", "github.com/NVIDIA/go-nvml/pkg/nvml/mock",
		"github.com/google/go-sev-guest/testing", "github.com/google/go-tdx-guest/testing"} {
		if bin[p] {
			t.Errorf("the attestlog binary links %s", p)
		}
	}
	for _, pkg := range []string{"web", "auditor"} {
		d := deps("../../" + pkg)
		for _, p := range []string{mod + "log/logserver", "github.com/transparency-dev/tessera"} {
			if d[p] {
				t.Errorf("%s imports %s", pkg, p)
			}
		}
	}
	// Oblivious HTTP: the formats import no service, the relay no agent
	// (and nothing that could read a plaintext).
	for pkg, bad := range map[string][]string{
		"channel/bhttp": {mod + "agent", mod + "relay", mod + "channel"},
		"channel/ohttp": {mod + "agent", mod + "relay", mod + "channel"},
		"relay":         {mod + "agent", mod + "channel", mod + "policy/verify"},
	} {
		d := deps("../../" + pkg)
		for _, p := range bad {
			if d[p] {
				t.Errorf("%s imports %s", pkg, p)
			}
		}
	}
	// The WebAssembly client holds the client decision and nothing of the
	// servers (its size budget, and modernc's SQLite does not build for
	// wasm), nor sigstore-go, which its build leaves out.
	wasm := deps("../../cmd/attestlog-wasm", "GOOS=js", "GOARCH=wasm")
	if !wasm[mod+"policy/verify"] {
		t.Fatalf("go list found no policy/verify under the WebAssembly client (%d packages)", len(wasm))
	}
	for _, p := range []string{"modernc.org/sqlite", "github.com/prometheus/client_golang/prometheus", "github.com/transparency-dev/tessera",
		"github.com/sigstore/sigstore-go/pkg/verify", mod + "log/logserver", mod + "auditor", mod + "witness", "testing"} {
		if wasm[p] {
			t.Errorf("the WebAssembly client links %s", p)
		}
	}
}

// layers are the module's layers, bottom up (docs/layout.md): formats and
// utilities, decisions (and the clients that gather what they decide
// on), services, assembly (commands, up, demos, build tools), test kits.
// A package belongs to the layer of the longest entry naming it or a
// parent of it.
var layers = []struct {
	name string
	pkgs []string
}{
	{"format", []string{"log/api", "log/statement", "log/tlogproof", "log/vindex", "channel/keyset", "channel/bhttp", "channel/ohttp", "policy/evidence",
		"policy/check", "policy/measure", "witness/protocol", "auditor/misbehaviour", "auditor/auditview",
		"internal/yamlx", "internal/pemcert", "internal/keyfile", "internal/httpbody", "internal/webcrypto", "internal/egress", "internal/httpserve", "internal/streamproxy", "internal/jsonv2", "npm"}},
	{"decision", []string{"policy", "log/client", "channel", "policy/evidence/stapler", "witness/driver"}},
	{"service", []string{"log/logserver", "log/internal", "witness", "auditor", "agent", "web", "relay"}},
	{"assembly", []string{"internal/up", "internal/bench", "internal/demo", "internal/wasmbuild", "cmd", "deploy", "log/loadtest", "witness/bench"}},
	{"test kit", []string{"internal/testenv", "internal/mariadbtest", "internal/seaweedtest", "internal/versitygwtest", "internal/netnstest", "internal/tlogtest", "internal/tlogcheck",
		"internal/ruletest", "internal/httpfuzz", "internal/httpbody/httpbodytest", "channel/channeltest",
		"policy/provenance/provenancetest", "policy/gpu/rim/rimtest"}},
}

// services are the parts of the service layer that must not import one
// another: each runs on its own, and shares only what lies below.
var services = []string{"log", "witness", "auditor", "agent", "web", "relay"}

// layerOf returns the layer index of a package path relative to the
// module, and the entry that placed it; -1 if none does.
func layerOf(rel string) (int, string) {
	best, at := "", -1
	for i, l := range layers {
		for _, p := range l.pkgs {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
				best, at = p, i
			}
		}
	}
	return at, best
}

// TestLayers keeps the layering: every package of the module is in a
// layer, imports (outside its tests) only its own layer and those below,
// and a service imports no other service.
func TestLayers(t *testing.T) {
	const mod = "github.com/attestlog/attestlog/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel := strings.TrimPrefix(f[0], mod)
		me, _ := layerOf(rel)
		if me < 0 {
			t.Errorf("%s is in no layer: add it to the layers of deps_test.go (and docs/layout.md)", rel)
			continue
		}
		n++
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			irel := strings.TrimPrefix(imp, mod)
			it, _ := layerOf(irel)
			if it > me {
				t.Errorf("%s (%s) imports %s (%s), a layer above it", rel, layers[me].name, irel, layers[it].name)
			}
			if me == 2 && it == 2 {
				if a, b := serviceOf(rel), serviceOf(irel); a != b {
					t.Errorf("the %s service (%s) imports the %s service (%s)", a, rel, b, irel)
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d packages placed; the module has more", n)
	}
}

func serviceOf(rel string) string {
	for _, s := range services {
		if rel == s || strings.HasPrefix(rel, s+"/") {
			return s
		}
	}
	return rel
}
