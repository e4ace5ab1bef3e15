package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/auditor"
)

// TestUpRevocationFailsClosed is the README's client, revoked: after the
// demo release is revoked, the demo enclave's next staple carries the
// revocation and the README's verify (no --log) says NOT TRUSTED; a new
// release of the revoked measurement is refused; the auditor's deployment
// watch raises revoked-release-served.
func TestUpRevocationFailsClosed(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir)
	verifyDemo := func() (string, error) {
		out, errOut, err := tryCmd(t, "verify", "--policy", u.info.ClientPolicy, "--enclave", u.info.Demo.URL)
		return out + errOut, err
	}
	// The README's verify waits for the first staple with an index proof.
	waitFor(t, func() bool {
		out, err := verifyDemo()
		return err == nil && strings.Contains(out, "TRUSTED: sev-snp release 0.1.0")
	}, "the demo enclave to verify")
	out, _ := verifyDemo()
	if !strings.Contains(out, "✓ not revoked: the log's index") {
		t.Errorf("the TRUSTED verdict does not rest on the index proof:\n%s", out)
	}

	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(u.info.Demo.ReleaseIndex),
		"--reason", "CVE-2026-4242: test", "--wait", "--proof-out", filepath.Join(dir, "revocation.tlog-proof"))
	var last string
	waitFor(t, func() bool {
		out, err := verifyDemo()
		last = out
		return err != nil && strings.Contains(out, "NOT TRUSTED") && strings.Contains(out, "✗ not revoked") && strings.Contains(out, "was revoked")
	}, "the README's verify to say NOT TRUSTED after the revocation")
	t.Logf("after the revocation:\n%s", last)

	// A new version of the revoked measurement is refused.
	rel, err := os.ReadFile(u.info.ExampleRelease)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.yaml")
	os.WriteFile(again, []byte(strings.Replace(string(rel), "version: 0.1.0", "version: 0.1.1", 1)), 0o644)
	if out, errOut, err := tryCmd(t, "publish", "--log", u.info.URL, "--key", u.info.Operator.Key, again); err == nil || !strings.Contains(out+errOut, "was revoked") {
		t.Errorf("republishing the revoked measurement: %v\n%s%s", err, out, errOut)
	}

	// The auditor's watch of the demo deployment sees it too.
	waitFor(t, func() bool {
		return len(alertsOf(listAlerts(t, u.info.AuditorDB), auditor.AlertRevokedReleaseServed)) > 0
	}, "the auditor's revoked-release-served alert")
}
