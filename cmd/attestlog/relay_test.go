package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
)

// startCmd runs the binary in the background until the test ends, and
// waits until ready answers 200.
func startCmd(t *testing.T, ready string, args ...string) *testenv.Buffer {
	t.Helper()
	out := &testenv.Buffer{}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := waitReady(ctx, ready); err != nil {
		t.Fatalf("attestlog %s: not ready: %v\n%s", args[0], err, out.String())
	}
	return out
}

// TestRelayAndObliviousProxy: `attestlog relay` in front of up's demo
// enclave; `attestlog verify --relay` and `attestlog proxy --relay`
// through it; what the relay logs and counts.
func TestRelayAndObliviousProxy(t *testing.T) {
	u := startUp(t, filepath.Join(t.TempDir(), "up"), "--auditor=false")
	relayAddr, metricsAddr, proxyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	relayLog := startCmd(t, "http://"+relayAddr+"/", "relay", "--gateway", "demo="+u.info.Demo.EnclaveURL, "--insecure-gateway-tls",
		"--listen", relayAddr, "--metrics-listen", metricsAddr)
	relayURL := "http://" + relayAddr + "/g/demo"

	out := runCmd(t, "verify", "--policy", u.info.ClientPolicy, "--relay", relayURL)
	if !strings.Contains(out, "the gateway's key configurations are the attested ones") || !strings.Contains(out, "MLKEM768-X25519") || !strings.Contains(out, "TRUSTED") {
		t.Errorf("verify --relay:\n%s", out)
	}
	if _, _, err := tryCmd(t, "verify", "--policy", u.info.ClientPolicy, "--relay", "http://"+relayAddr+"/g/elsewhere"); err == nil {
		t.Error("verify --relay through a gateway the relay does not know succeeded")
	}

	startCmd(t, "http://"+proxyAddr+"/.well-known/attestlog/verdict", "proxy", "--policy", u.info.ClientPolicy, "--relay", relayURL, "--listen", proxyAddr)
	const secret = "hello via the relay, secretly"
	for _, stream := range []bool{false, true} {
		body := `{"model":"attestlog-demo-echo","stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,"messages":[{"role":"user","content":"` + secret + `"}]}`
		resp, err := http.Post("http://"+proxyAddr+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (!stream && !strings.Contains(string(b), "You said: "+secret)) || (stream && !strings.Contains(string(b), "data: ")) {
			t.Fatalf("proxy --relay (stream %v): %d %s", stream, resp.StatusCode, b)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `attestlog_relay_requests_total{gateway="demo",kind="request",result="ok"} 2`) {
		t.Errorf("the relay's metrics do not count the two requests:\n%s", m)
	}
	if strings.Contains(relayLog.String(), "secretly") || strings.Contains(relayLog.String(), proxyAddr) {
		t.Errorf("the relay's log holds what it must not:\n%s", relayLog.String())
	}
}
