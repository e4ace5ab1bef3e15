package up

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/attestlog/attestlog/web"
)

func orNone(s string) string {
	if s == "" {
		return "none (up --auditor=false)"
	}
	return s
}

func orDefault(describe string) string {
	if describe == "" {
		return "a demo SEV-SNP enclave"
	}
	return describe
}

// rel2 shortens path relative to the working directory when inside it.
func rel2(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}

// WriteSummary writes what runs and what to try first, for a person.
func WriteSummary(w io.Writer, info *Info) {
	rel := info.ExampleRelease
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, rel); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	key := info.Operator.Key
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, key); err == nil && !strings.HasPrefix(r, "..") {
			key = r
		}
	}
	fmt.Fprintf(w, `attestlog is up (data in %s; details in %s)

  log      %s   origin %s
  witness  %s   cosigns every checkpoint (quorum: local)
  demo     %s   %s (DEMO: test roots) running release %d (attestation document over plain HTTP)
  enclave  %s   its enclave agent: TLS with the attested key set, in front of a DEMO chat service
  auditor  %s/status   follows the log, watches the demo enclave (alerts: attestlog alerts --db %s)
           rebuilds: %s

In a browser: the explorer at %s/ui/ and the audit dashboard at %s/audit/

Verify the demo enclave as a client would (hardware, proof, witnesses, policy):

  go run ./cmd/attestlog verify --policy %s --enclave %s

Talk to the demo chat service only over the attested channel (an OpenAI base URL):

  go run ./cmd/attestlog proxy --policy %s --enclave %s --listen 127.0.0.1:8090
  curl http://127.0.0.1:8090/v1/chat/completions -d '{"model":"attestlog-demo-echo","messages":[{"role":"user","content":"hello"}]}'

Publish the example release and get its proof:

  go run ./cmd/attestlog publish --log %s --key %s --wait %s

Look it up:

  curl '%s/lookup?measurement=%s'

Stop with Ctrl-C; 'attestlog up' again reuses everything in %s.
`, info.Dir, filepath.Join(info.Dir, "up.json"), info.Log.URL, info.Log.Origin, info.Witness.URL,
		info.Demo.URL, orDefault(info.Demo.Describe), info.Demo.ReleaseIndex, info.Demo.EnclaveURL, info.AuditorURL, rel2(info.AuditorDB), orNone(info.RebuildSandbox), info.URL, info.URL, rel2(info.ClientPolicy), info.Demo.URL,
		rel2(info.ClientPolicy), info.Demo.EnclaveURL, info.Log.URL, key, rel, info.Log.URL, info.Demo.Measurement, info.Dir)
}

// writeDemoIndex is the page at /demo/.
func writeDemoIndex(w http.ResponseWriter, info *Info) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "The demo enclave of 'attestlog up': %s (signed by demo roots that only %s trusts) running release %d.\n\n"+
		"Attestation document: GET %s/.well-known/attestlog/attestation (its key set, one hardware report, proofs stapled).\n"+
		"Nonce challenge: GET %s/.well-known/attestlog/evidence?nonce=HEX (32 to 64 bytes of hex), rate-limited.\n"+
		"The agent itself (TLS with the attested key, in front of a demo chat service): %s\n"+
		"Verify it: attestlog verify --policy %s --enclave %s\n", orDefault(info.Demo.Describe), rel2(info.ClientPolicy), info.Demo.ReleaseIndex, info.Demo.URL, info.Demo.URL, info.Demo.EnclaveURL, rel2(info.ClientPolicy), info.Demo.EnclaveURL)
}

// writeAuditorIndex is the page at /auditor/.
func writeAuditorIndex(w http.ResponseWriter, info *Info, running bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !running {
		fmt.Fprintln(w, "The auditor is not running ('attestlog up --auditor=false').")
		return
	}
	fmt.Fprintf(w, "The auditor of 'attestlog up' (configuration %s):\n\n"+
		"  %s/status   how far it follows the log, rebuilds, deployments, open alerts (JSON)\n"+
		"  %s/alerts   the newest 1000 alerts (JSON; ?open=1 for open ones)\n"+
		"  %s/metrics  Prometheus metrics\n"+
		"  %s%s       the audit dashboard (HTML)\n", rel2(info.AuditorConfig), info.AuditorURL, info.AuditorURL, info.AuditorURL, info.URL, web.DefaultDashboardPrefix)
}
