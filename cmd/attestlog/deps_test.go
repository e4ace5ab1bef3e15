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
		mod + "internal/mariadbtest", mod + "internal/seaweedtest", mod + "internal/tlogcheck", mod + "policy/provenance/provenancetest", mod + "policy/gpu/rim/rimtest", mod + "channel/channeltest",
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
