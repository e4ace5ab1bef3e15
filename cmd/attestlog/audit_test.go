package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/auditor"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/evidence"
)

// auditConfig writes an auditor configuration for the log of u to
// dir/name.yaml; extra is appended verbatim (deployments, webhooks, …).
func auditConfig(t *testing.T, u *upProc, dir, name, rebuild, extra string) string {
	t.Helper()
	c := fmt.Sprintf(`db: %s.db
key: %s
poll_interval: 1s
logs:
  - vkey: %s
    url: %s
    policy: %s
    witness_policy: %s
rebuild:
%s
%s`, name, u.info.Auditor.Key, u.info.Log.VKey, u.info.URL, u.info.ClientPolicy, filepath.Join(u.dir, "witness-policy.txt"), rebuild, extra)
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// auditOnce runs 'attestlog audit --once' and returns its exit status and
// output.
func auditOnce(t *testing.T, cfg string) (int, string) {
	t.Helper()
	out, errOut, err := tryCmd(t, "audit", "--config", cfg, "--once")
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out + errOut
	case errors.As(err, &ee):
		return ee.ExitCode(), out + errOut
	}
	t.Fatalf("audit --once: %v", err)
	return 0, ""
}

func listAlerts(t *testing.T, db string) []auditor.Alert {
	t.Helper()
	var al []auditor.Alert
	if err := json.Unmarshal([]byte(runCmd(t, "alerts", "--db", db, "--json")), &al); err != nil {
		t.Fatal(err)
	}
	return al
}

func summaries(al []auditor.Alert) string {
	var s []string
	for _, a := range al {
		s = append(s, fmt.Sprintf("#%d %s %s: %s", a.ID, a.Kind, a.Subject, a.Summary))
	}
	return "[" + strings.Join(s, "; ") + "]"
}

func alertsOf(al []auditor.Alert, kind string) []auditor.Alert {
	var out []auditor.Alert
	for _, a := range al {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const testBuildScript = `#!/bin/sh
# A deterministic "enclave image" build: firmware, kernel, initrd and
# command line, all from the checked-out tree.
set -eu
mkdir -p out
cp firmware/snp.fd out/OVMF-snp.fd
cp firmware/tdx.fd out/OVMF-tdx.fd
printf 'attestlog test kernel, built with SOURCE_DATE_EPOCH=%s\n' "$SOURCE_DATE_EPOCH" > out/bzImage
cat src/init.txt src/init.txt > out/initrd.img
printf '%s' 'console=ttyS0 root=/dev/vda ro' > out/cmdline
if [ -f firmware/vmlinuz ]; then cp firmware/vmlinuz out/vmlinuz; fi
`

// enclaveRepo creates a git repository with a reproducible build and runs
// that build once (as the operator would) in a copy, returning the
// repository, its commit and the build's output directory.
func enclaveRepo(t *testing.T, dir string) (repo, commit, out string) {
	t.Helper()
	testenv.LookPath(t, "git")
	repo = filepath.Join(dir, "enclave-src")
	files := map[string]string{"build.sh": testBuildScript, "src/init.txt": "#!/bin/init\necho hello from the test initrd\n"}
	snpFW, err := os.ReadFile("../../policy/measure/snp/testdata/ovmf_AmdSev_suffix.bin")
	if err != nil {
		t.Fatal(err)
	}
	tdxFW, err := os.ReadFile("/usr/share/ovmf/OVMF.fd")
	if err != nil {
		testenv.Missing(t, "Debian's ovmf (/usr/share/ovmf/OVMF.fd)", err)
	}
	files["firmware/snp.fd"], files["firmware/tdx.fd"] = string(snpFW), string(tdxFW)
	// A real kernel with an EFI stub, for TDX RTMR1/RTMR2 (Debian's, when
	// installed; TestAuditReproduces requires it).
	if kernels, _ := filepath.Glob("/boot/vmlinuz-*"); len(kernels) > 0 {
		k, err := os.ReadFile(kernels[0])
		if err != nil {
			t.Fatal(err)
		}
		files["firmware/vmlinuz"] = string(k)
	}
	for name, content := range files {
		p := filepath.Join(repo, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "enclave")
	commit = git(t, repo, "rev-parse", "HEAD")
	work := filepath.Join(dir, "operator-build")
	git(t, dir, "clone", "-q", repo, work)
	cmd := exec.Command("sh", "build.sh")
	cmd.Dir, cmd.Env = work, []string{"PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=1767225600"}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("operator build: %v\n%s", err, b)
	}
	return repo, commit, filepath.Join(work, "out")
}

func sha256File(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeEnclaveRelease writes a release YAML of the test build.
func writeEnclaveRelease(t *testing.T, dir, name, version, platform, measurement, repo, commit, out string) string {
	t.Helper()
	fw := "out/OVMF-snp.fd"
	meas := "snp: {launch_digest: " + measurement + "}"
	if platform == "tdx" {
		fw, meas = "out/OVMF-tdx.fd", "tdx: {mrtd: "+measurement+"}"
	}
	y := fmt.Sprintf(`version: %s
platform: %s
time: 2026-11-26T12:00:00Z
measurements:
  %s
artifacts:
  - {name: %s, sha256: %s}
  - {name: bzImage, sha256: %s}
  - {name: initrd.img, sha256: %s}
  - {name: cmdline, sha256: %s}
source: {repo: "file://%s", commit: %s}
recipe:
  argv: [sh, build.sh]
  env: {SOURCE_DATE_EPOCH: "1767225600"}
  outputs: [%s, out/bzImage, out/initrd.img, out/cmdline]
  measure:
    firmware: %s
    kernel: out/bzImage
    initrd: out/initrd.img
    cmdline: "console=ttyS0 root=/dev/vda ro"
    vcpus: 2
    vcpu_type: EPYC-Milan
    guest_features: "0x1"
`, version, platform, meas, filepath.Base(fw), sha256File(t, filepath.Join(out, filepath.Base(fw))),
		sha256File(t, filepath.Join(out, "bzImage")), sha256File(t, filepath.Join(out, "initrd.img")), sha256File(t, filepath.Join(out, "cmdline")),
		repo, commit, fw, fw)
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func publishIndex(t *testing.T, u *upProc, release string) uint64 {
	t.Helper()
	out := runCmd(t, "publish", "--log", u.info.URL, "--key", u.info.Operator.Key, "--wait", release)
	idx, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("publish printed %q", out)
	}
	return idx
}

// TestAuditReproduces publishes releases of a reproducible build in a
// local git repository (SEV-SNP with the AmdSev OVMF and measured direct
// boot, TDX with Debian's OVMF) and one whose logged measurement is
// wrong; the auditor rebuilds them in bubblewrap, logs reproduction
// statements, and raises rebuild-mismatch for the wrong one only, once.
func TestAuditReproduces(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	dir := t.TempDir()
	repo, commit, out := enclaveRepo(t, dir)
	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false") // these tests run their own auditor

	// The expected measurements, computed from the operator's build with
	// 'attestlog measure' (checked against sev-snp-measure in policy/measure).
	snpLD := strings.TrimSpace(runCmd(t, "measure", "snp", "--ovmf", filepath.Join(out, "OVMF-snp.fd"), "--kernel", filepath.Join(out, "bzImage"),
		"--initrd", filepath.Join(out, "initrd.img"), "--append", "console=ttyS0 root=/dev/vda ro", "--vcpus", "2", "--vcpu-type", "EPYC-Milan"))
	mrtd := strings.TrimPrefix(strings.TrimSpace(runCmd(t, "measure", "tdx", "--firmware", filepath.Join(out, "OVMF-tdx.fd"))), "mrtd ")

	iSNP := publishIndex(t, u, writeEnclaveRelease(t, dir, "snp", "1.0.0", "sev-snp", snpLD, repo, commit, out))
	iBad := publishIndex(t, u, writeEnclaveRelease(t, dir, "bad", "1.0.1", "sev-snp", strings.Repeat("ab", 48), repo, commit, out))
	iTDX := publishIndex(t, u, writeEnclaveRelease(t, dir, "tdx", "1.0.0-tdx", "tdx", mrtd, repo, commit, out))

	// A TDX direct boot with a real kernel logs RTMR1 and RTMR2 too; the
	// auditor recomputes and compares them. A copy with a wrong RTMR2 must
	// be a mismatch naming tdx.rtmr2.
	if _, err := os.Stat(filepath.Join(out, "vmlinuz")); err != nil {
		testenv.Missing(t, "a Debian kernel in /boot (Debian package linux-image-amd64)", err)
	}
	const cmdline = "console=ttyS0 root=/dev/vda ro"
	rtmrs := map[string]string{}
	for _, line := range strings.Split(runCmd(t, "measure", "tdx", "--firmware", filepath.Join(out, "OVMF-tdx.fd"), "--kernel", filepath.Join(out, "vmlinuz"),
		"--initrd", filepath.Join(out, "initrd.img"), "--memory", "2G", "--append", cmdline), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && strings.HasPrefix(k, "rtmr") {
			rtmrs[k] = v
		}
	}
	if len(rtmrs["rtmr1"]) != 96 || len(rtmrs["rtmr2"]) != 96 {
		t.Fatalf("measure tdx printed %v, want rtmr1 and rtmr2", rtmrs)
	}
	tdxRTMR := func(name, version, rtmr2 string) uint64 {
		y := fmt.Sprintf(`version: %s
platform: tdx
time: 2026-11-26T12:00:00Z
measurements:
  tdx: {mrtd: %s, rtmr1: %s, rtmr2: %s}
artifacts:
  - {name: OVMF-tdx.fd, sha256: %s}
  - {name: vmlinuz, sha256: %s}
  - {name: initrd.img, sha256: %s}
source: {repo: "file://%s", commit: %s}
recipe:
  argv: [sh, build.sh]
  env: {SOURCE_DATE_EPOCH: "1767225600"}
  outputs: [out/OVMF-tdx.fd, out/vmlinuz, out/initrd.img]
  measure: {firmware: out/OVMF-tdx.fd, kernel: out/vmlinuz, initrd: out/initrd.img, cmdline: %q, memory: 2G}
`, version, mrtd, rtmrs["rtmr1"], rtmr2, sha256File(t, filepath.Join(out, "OVMF-tdx.fd")), sha256File(t, filepath.Join(out, "vmlinuz")),
			sha256File(t, filepath.Join(out, "initrd.img")), repo, commit, cmdline)
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return publishIndex(t, u, p)
	}
	iTDXBoot := tdxRTMR("tdx-boot", "1.1.0-tdx", rtmrs["rtmr2"])
	iTDXBad := tdxRTMR("tdx-bad", "1.1.1-tdx", strings.Repeat("cd", 48))

	// A client whose policy requires one reproduction refuses an enclave
	// running the SNP release until the auditor has reproduced it.
	enc, err := fakeenclave.NewSNP(measurementBytes(t, snpLD))
	if err != nil {
		t.Fatal(err)
	}
	encURL := serveEnclave(t, enc)
	root := filepath.Join(dir, "snp-root.pem")
	os.WriteFile(root, enc.RootPEM(), 0o644)
	cp, err := os.ReadFile(u.info.ClientPolicy)
	if err != nil {
		t.Fatal(err)
	}
	strict := filepath.Join(u.dir, "strict-policy.txt")          // beside the client policy: its trust-root paths are relative
	cp = regexp.MustCompile(`(?m)^gpu .*\n`).ReplaceAll(cp, nil) // this enclave has no GPU
	os.WriteFile(strict, append(cp, []byte("trust-root sev-snp "+root+"\nreproductions 1\n")...), 0o644)
	verify := func() (string, error) {
		out, errOut, err := tryCmd(t, "verify", "--policy", strict, "--enclave", encURL, "--log", u.info.URL)
		return out + errOut, err
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "reproduction") {
		t.Fatalf("verify with 'reproductions 1' before any reproduction: %v, want a failure about reproductions:\n%s", err, out)
	}

	cfg := auditConfig(t, u, dir, "auditor", "  sandbox: required\n  repo_schemes: [file]\n  timeout: 2m\n", "")
	code, output := auditOnce(t, cfg)
	if code != 1 {
		t.Fatalf("audit --once = exit %d, want 1 (one rebuild mismatch)\n%s", code, output)
	}
	// Sentences, not Go maps.
	if strings.Contains(output, "map[") || !regexp.MustCompile(`rebuilds: \d+ (reproduced|mismatch)`).MatchString(output) || !regexp.MustCompile(`\d+ alerts? open`).MatchString(output) {
		t.Errorf("audit --once output:\n%s", output)
	}
	db := filepath.Join(dir, "auditor.db")
	al := listAlerts(t, db)
	mm := alertsOf(al, auditor.AlertRebuildMismatch)
	if len(mm) != 2 || mm[0].Subject != fmt.Sprintf("log/%s/entry/%d", u.info.Log.Origin, iBad) ||
		mm[1].Subject != fmt.Sprintf("log/%s/entry/%d", u.info.Log.Origin, iTDXBad) {
		t.Fatalf("rebuild-mismatch alerts = %s, want exactly two, of entries %d and %d\n%s", summaries(mm), iBad, iTDXBad, output)
	}
	var tdxEv auditor.RebuildAlert
	if err := json.Unmarshal(mm[1].Evidence, &tdxEv); err != nil {
		t.Fatal(err)
	}
	if d := tdxEv.Result.Differences; len(d) != 1 || d[0].What != "tdx.rtmr2" || d[0].Rebuilt != rtmrs["rtmr2"] {
		t.Errorf("TDX mismatch differences = %+v, want only tdx.rtmr2 (rebuilt %s)", d, rtmrs["rtmr2"])
	}
	for _, a := range al {
		for _, i := range []uint64{iSNP, iTDX, iTDXBoot} {
			if strings.HasSuffix(a.Subject, fmt.Sprintf("/entry/%d", i)) {
				t.Errorf("alert about reproducible entry %d: %s", i, summaries([]auditor.Alert{a}))
			}
		}
	}
	var ev auditor.RebuildAlert
	if err := json.Unmarshal(mm[0].Evidence, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Result == nil || len(ev.Result.Differences) != 1 || ev.Result.Differences[0].Rebuilt != snpLD || !ev.Result.Sandboxed {
		t.Errorf("mismatch evidence = %+v, want one difference (logged abab…, rebuilt %s), sandboxed", ev.Result, snpLD)
	}

	// The reproductions are in the log, signed by the auditor key.
	c, _ := client.New(u.info.URL, nil)
	for idx, want := range map[uint64]string{iSNP: "match", iTDX: "match", iBad: "mismatch", iTDXBoot: "match", iTDXBad: "mismatch"} {
		waitFor(t, func() bool {
			e, err := c.Entry(t.Context(), idx)
			return err == nil && len(e.Reproductions) == 1
		}, fmt.Sprintf("a reproduction of entry %d in the log", idx))
		e, _ := c.Entry(t.Context(), idx)
		if r := e.Reproductions[0]; r.Outcome != want || r.Signer != u.info.Auditor.Name {
			t.Errorf("reproduction of entry %d = outcome %q by %q, want %q by %s", idx, r.Outcome, r.Signer, want, u.info.Auditor.Name)
		}
	}

	if out, err := verify(); err != nil {
		t.Errorf("verify with 'reproductions 1' after the audit: %v\n%s", err, out)
	}

	// A second pass verifies the reproduction entries, rebuilds nothing and
	// raises nothing new.
	code, output = auditOnce(t, cfg)
	if code != 1 {
		t.Fatalf("second audit --once = exit %d, want 1\n%s", code, output)
	}
	if strings.Contains(output, "rebuilding release") {
		t.Errorf("second pass rebuilt again:\n%s", output)
	}
	if al2 := listAlerts(t, db); len(al2) != len(al) {
		t.Errorf("after a second pass, alerts %s, want the same as before: %s", summaries(al2), summaries(al))
	}
}

// serveEnclave serves e's evidence on a loopback HTTP server.
func serveEnclave(t *testing.T, e *fakeenclave.Enclave) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(evidence.Path, evidence.Handler(e, slog.New(slog.DiscardHandler)))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func measurementBytes(t *testing.T, m string) []byte {
	b, err := hex.DecodeString(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditDeployments watches three fake enclaves: one serving a logged
// release (fine, until the release is revoked), one serving a measurement
// never logged, one serving debug evidence the policy rejects.
func TestAuditDeployments(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false") // these tests run their own auditor
	rel, m1 := writeRelease(t, dir, 1)
	i1 := publishIndex(t, u, rel)

	logged, err := fakeenclave.NewSNP(measurementBytes(t, m1))
	if err != nil {
		t.Fatal(err)
	}
	unlogged, _ := fakeenclave.NewSNP(measurementBytes(t, strings.Repeat("5e", 48)))
	debug, _ := fakeenclave.NewSNP(measurementBytes(t, m1), fakeenclave.WithDebug())
	// Each enclave has its own test root; a policy per deployment trusts it.
	depPolicy := func(name string, e *fakeenclave.Enclave) string {
		root := filepath.Join(dir, name+"-root.pem")
		os.WriteFile(root, e.RootPEM(), 0o644)
		p := filepath.Join(dir, name+"-policy.txt")
		os.WriteFile(p, []byte("platform sev-snp\ntrust-root sev-snp "+root+"\n"), 0o644)
		return p
	}
	deps := "deployments:\n"
	for _, d := range []struct {
		name string
		e    *fakeenclave.Enclave
	}{{"served", logged}, {"unlogged", unlogged}, {"debug", debug}} {
		deps += fmt.Sprintf("  - {name: %s, url: %q, policy: %s, allow_private: true}\n", d.name, serveEnclave(t, d.e), depPolicy(d.name, d.e))
	}
	cfg := auditConfig(t, u, dir, "auditor", "  enabled: false\n", deps)
	code, output := auditOnce(t, cfg)
	if code != 1 {
		t.Fatalf("audit --once = exit %d, want 1\n%s", code, output)
	}
	db := filepath.Join(dir, "auditor.db")
	al := listAlerts(t, db)
	if got := alertsOf(al, auditor.AlertUnloggedMeasurement); len(got) != 1 || got[0].Subject != "deployment/unlogged" {
		t.Errorf("unlogged-measurement alerts = %s, want one about deployment/unlogged", summaries(got))
	} else {
		// The alert carries the log's own proof that the measurement is
		// absent: it verifies under the client policy without the auditor.
		var ev auditor.DeploymentAlert
		if err := json.Unmarshal(got[0].Evidence, &ev); err != nil {
			t.Fatal(err)
		}
		ip, err := vindex.ParseProof([]byte(ev.AbsenceProof))
		if err != nil {
			t.Fatalf("the unlogged alert's absence proof: %v", err)
		}
		pol, err := policy.Load(u.info.ClientPolicy)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := pol.VerifyCheckpoint(ip.Commit.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := ip.VerifyProof(cp.Log.Verifier, cp.N, cp.Hash); err != nil || len(v.Items) != 0 || hex.EncodeToString(ip.Digest) != ev.Measurement {
			t.Errorf("the absence proof does not prove %s absent: %v", ev.Measurement, err)
		}
	}
	if got := alertsOf(al, auditor.AlertEvidenceInvalid); len(got) != 1 || got[0].Subject != "deployment/debug" {
		t.Errorf("evidence-invalid alerts = %s, want one about deployment/debug", summaries(got))
	}
	if len(al) != 2 {
		t.Errorf("alerts = %s, want 2 (nothing about deployment/served)", summaries(al))
	}

	// Revoke the served release: the next pass raises revoked-release-served,
	// and nothing already raised again.
	runCmd(t, "revoke", "--log", u.info.URL, "--key", u.info.Operator.Key, "--index", fmt.Sprint(i1), "--reason", "CVE-2026-0002", "--wait",
		"--proof-out", filepath.Join(dir, "revocation.tlog-proof"))
	code, output = auditOnce(t, cfg)
	if code != 1 {
		t.Fatalf("audit --once after revoke = exit %d\n%s", code, output)
	}
	al = listAlerts(t, db)
	if got := alertsOf(al, auditor.AlertRevokedReleaseServed); len(got) != 1 || got[0].Subject != "deployment/served" {
		t.Errorf("revoked-release-served alerts = %s, want one about deployment/served", summaries(got))
	}
	if len(al) != 3 {
		t.Errorf("after the revocation, %d alerts, want 3: %s", len(al), summaries(al))
	}

	// A researcher acknowledges each alert: it is closed with the note,
	// not raised again though its condition remains, and 'audit --once'
	// passes once none is open.
	for i, a := range al {
		if i == len(al)-1 {
			if code, output := auditOnce(t, cfg); code != 1 {
				t.Errorf("audit --once with one alert still open = exit %d\n%s", code, output)
			}
		}
		if out := runCmd(t, "alerts", "--db", db, "--close", fmt.Sprint(a.ID), "--note", "checked by test: "+a.Kind); !strings.Contains(out, fmt.Sprintf("closed alert %d", a.ID)) {
			t.Errorf("alerts --close %d printed %q", a.ID, out)
		}
	}
	if code, output := auditOnce(t, cfg); code != 0 {
		t.Errorf("audit --once with every alert closed = exit %d, want 0\n%s", code, output)
	}
	al = listAlerts(t, db)
	if len(al) != 3 {
		t.Errorf("after closing, %d alerts, want the same 3: %s", len(al), summaries(al))
	}
	for _, a := range al {
		if a.Open || a.Closed == "" || a.CloseNote != "checked by test: "+a.Kind {
			t.Errorf("alert %d after closing: open %v, closed %q, note %q", a.ID, a.Open, a.Closed, a.CloseNote)
		}
	}
	if out := runCmd(t, "alerts", "--db", db, "--open", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("alerts --open after closing all = %s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--close", fmt.Sprint(al[0].ID), "--note", "again"}, "already closed"},
		{[]string{"--close", "999", "--note", "x"}, "not found"},
		{[]string{"--close", fmt.Sprint(al[0].ID)}, "needs --note"},
	} {
		_, stderr, err := tryCmd(t, append([]string{"alerts", "--db", db}, tc.args...)...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("alerts %v: err %v, stderr %q, want %q", tc.args, err, stderr, tc.want)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startAudit runs 'attestlog audit --config cfg' until the test ends (or
// kill is called).
func startAudit(t *testing.T, cfg string) *upProc {
	t.Helper()
	cmd := exec.Command(binary, "audit", "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProc{cmd: cmd, stderr: &stderr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func auditStatus(url string) (*auditor.Status, error) {
	resp, err := http.Get(url + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s auditor.Status
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

// TestAuditForkedLog runs two logs with the same origin and key but
// different trees. A peer auditor follows one; the auditor following the
// other raises log-inconsistent with an evidence file that
// verify-misbehaviour accepts, and rejects once tampered with.
func TestAuditForkedLog(t *testing.T) {
	dir := t.TempDir()
	d1, d2 := filepath.Join(dir, "up1"), filepath.Join(dir, "up2")
	u1 := startUp(t, d1, "--auditor=false")
	os.MkdirAll(d2, 0o700)
	for _, k := range []string{"log.key", "witness.key", "operator.key", "auditor.key"} {
		b, err := os.ReadFile(filepath.Join(d1, k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d2, k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	u2 := startUp(t, d2, "--auditor=false")
	if u1.info.Log.VKey != u2.info.Log.VKey {
		t.Fatal("the two logs have different keys")
	}
	// Different entries: the fork.
	for i := 1; i <= 3; i++ {
		rel, _ := writeRelease(t, dir, i)
		publishIndex(t, u1, rel)
	}
	rel, _ := writeRelease(t, dir, 99)
	publishIndex(t, u2, rel)

	peerAddr := freeAddr(t)
	peerCfg := auditConfig(t, u2, dir, "peer", "  enabled: false\n", "listen: "+peerAddr+"\n")
	startAudit(t, peerCfg)
	waitFor(t, func() bool {
		s, err := auditStatus("http://" + peerAddr)
		return err == nil && len(s.Logs) == 1 && s.Logs[0].TreeSize >= 2
	}, "the peer auditor to follow the second log")

	cfg := auditConfig(t, u1, dir, "auditor", "  enabled: false\n", "")
	b, _ := os.ReadFile(cfg)
	b = bytes.Replace(b, []byte("rebuild:"), []byte("    peers: [\"http://"+peerAddr+"\"]\nrebuild:"), 1)
	os.WriteFile(cfg, b, 0o644)
	code, output := auditOnce(t, cfg)
	if code != 1 {
		t.Fatalf("audit --once = exit %d, want 1\n%s", code, output)
	}
	al := alertsOf(listAlerts(t, filepath.Join(dir, "auditor.db")), auditor.AlertLogInconsistent)
	if len(al) != 1 {
		t.Fatalf("log-inconsistent alerts = %s, want 1\n%s", summaries(al), output)
	}
	var ev auditor.MisbehaviourAlert
	if err := json.Unmarshal(al[0].Evidence, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Misbehaviour == nil || len(ev.Misbehaviour.Proof) == 0 {
		t.Errorf("evidence %+v: want a consistency proof (the trees differ in size)", ev.Misbehaviour)
	}
	out := runCmd(t, "verify-misbehaviour", "--vkey", u1.info.Log.VKey, ev.File)
	if !strings.Contains(out, "misbehaviour proven") {
		t.Errorf("verify-misbehaviour printed %q", out)
	}

	// Tampered copies are rejected.
	orig, err := os.ReadFile(ev.File)
	if err != nil {
		t.Fatal(err)
	}
	tamper := map[string]func(e map[string]any){
		"proof hash": func(e map[string]any) {
			p := e["proof"].([]any)
			p[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		},
		"checkpoint": func(e map[string]any) {
			c := e["checkpoints"].([]any)
			c[0] = strings.Replace(c[0].(string), "\n", "\n1", 1)
		},
		"same checkpoint twice": func(e map[string]any) {
			c := e["checkpoints"].([]any)
			c[1] = c[0]
		},
	}
	for name, f := range tamper {
		var e map[string]any
		json.Unmarshal(orig, &e)
		f(e)
		b, _ := json.Marshal(e)
		p := filepath.Join(dir, "tampered.json")
		os.WriteFile(p, b, 0o644)
		if out, errOut, err := tryCmd(t, "verify-misbehaviour", p); err == nil {
			t.Errorf("verify-misbehaviour accepted evidence with a tampered %s: %s", name, out)
		} else if !strings.Contains(errOut, "does not prove misbehaviour") {
			t.Errorf("tampered %s: stderr %q", name, errOut)
		}
	}
	if _, _, err := tryCmd(t, "verify-misbehaviour", "--vkey", "other.example/log+01234567+AQ", ev.File); err == nil {
		t.Errorf("verify-misbehaviour accepted evidence about another log's key")
	}
}

// TestAuditWebhookSurvivesKill raises an alert while the webhook receiver
// is down, kills the auditor with SIGKILL, starts the receiver and the
// auditor again, and checks the alert is delivered (and not raised twice).
func TestAuditWebhookSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false") // these tests run their own auditor
	e, _ := fakeenclave.NewSNP(measurementBytes(t, strings.Repeat("77", 48)))
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, e.RootPEM(), 0o644)
	pol := filepath.Join(dir, "dep-policy.txt")
	os.WriteFile(pol, []byte("trust-root sev-snp "+root+"\n"), 0o644)
	hookAddr := freeAddr(t)
	extra := fmt.Sprintf("deployments:\n  - {name: chat, url: %q, policy: %s, interval: 1s, allow_private: true}\nwebhooks:\n  - {url: \"http://%s/hook\", max_backoff: 1s, headers: {Authorization: Bearer test}}\n",
		serveEnclave(t, e), pol, hookAddr)
	cfg := auditConfig(t, u, dir, "auditor", "  enabled: false\n", extra)
	db := filepath.Join(dir, "auditor.db")

	a := startAudit(t, cfg)
	waitFor(t, func() bool {
		for _, al := range listAlertsQuiet(db) {
			if al.Kind == auditor.AlertUnloggedMeasurement && len(al.Webhooks) == 1 && al.Webhooks[0].Attempts >= 2 && al.Webhooks[0].Delivered == "" {
				return true
			}
		}
		return false
	}, "an unlogged-measurement alert with failed deliveries")
	a.kill()

	got := make(chan auditor.Alert, 10)
	ln, err := net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var al auditor.Alert
		if r.Header.Get("Authorization") != "Bearer test" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&al) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		got <- al
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	a2 := startAudit(t, cfg)
	al := <-got
	if al.Kind != auditor.AlertUnloggedMeasurement || al.Subject != "deployment/chat" {
		t.Errorf("webhook received %s, want the unlogged-measurement alert about deployment/chat", summaries([]auditor.Alert{al}))
	}
	waitFor(t, func() bool {
		for _, al := range listAlertsQuiet(db) {
			if al.Kind == auditor.AlertUnloggedMeasurement && len(al.Webhooks) == 1 && al.Webhooks[0].Delivered != "" {
				return true
			}
		}
		return false
	}, "the delivery to be recorded")
	a2.stop(t)
	if n := len(alertsOf(listAlerts(t, db), auditor.AlertUnloggedMeasurement)); n != 1 {
		t.Errorf("%d unlogged-measurement alerts after the restart, want 1", n)
	}
}

func listAlertsQuiet(db string) []auditor.Alert {
	out, err := exec.Command(binary, "alerts", "--db", db, "--json").Output()
	if err != nil {
		return nil
	}
	var al []auditor.Alert
	json.Unmarshal(out, &al)
	return al
}

// TestAuditHostileRelease publishes a release whose recipe tries to read
// the auditor's key (by absolute and relative path) and print it into its
// failing build's log, beside a benign release. The hostile build fails,
// the benign one reproduces, and the key's bytes appear nowhere the
// auditor publishes: alerts (CLI JSON), webhooks, the dashboard, status
// and metrics. Then, with sandbox: auto and no bubblewrap on PATH, nothing
// is rebuilt or signed: a rebuild-unsandboxed alert says why.
func TestAuditHostileRelease(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	dir := t.TempDir()
	h := newHostileLog(t, dir)
	u, key, iGood, iBad, repo, commit, out, snpLD := h.u, h.key, h.good, h.bad, h.repo, h.commit, h.out, h.ld
	// One that spins past its CPU limit: stopped, named, and the auditor
	// goes on with the other releases.
	spin := writeEnclaveRelease(t, dir, "spin", "2.0.3", "sev-snp", snpLD, repo, commit, out)
	y, _ := os.ReadFile(spin)
	os.WriteFile(spin, bytes.Replace(y, []byte("argv: [sh, build.sh]"), []byte(`argv: [sh, -c, "while :; do :; done"]`), 1), 0o644)
	iSpin := publishIndex(t, u, spin)

	hooks := make(chan []byte, 20)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- b
	}))
	defer hookSrv.Close()
	addr := freeAddr(t)
	cfg := auditConfig(t, u, dir, "auditor", "  sandbox: required\n  repo_schemes: [file]\n  timeout: 2m\n  limits: {cpu_time: 2s}\n",
		fmt.Sprintf("listen: %s\nwebhooks:\n  - {url: %q}\n", addr, hookSrv.URL))
	db := filepath.Join(dir, "auditor.db")
	a := startAudit(t, cfg)
	waitFor(t, func() bool {
		al := listAlertsQuiet(db)
		return len(alertsOf(al, auditor.AlertRebuildFailed)) == 2
	}, "rebuild-failed alerts about the hostile releases")
	c, _ := client.New(u.info.URL, nil)
	waitFor(t, func() bool {
		e, err := c.Entry(t.Context(), iGood)
		return err == nil && len(e.Reproductions) == 1
	}, "the benign release's reproduction in the log")

	al := listAlerts(t, db)
	failed := alertsOf(al, auditor.AlertRebuildFailed)
	if len(failed) != 2 || failed[0].Subject != fmt.Sprintf("log/%s/entry/%d", u.info.Log.Origin, iBad) ||
		failed[1].Subject != fmt.Sprintf("log/%s/entry/%d", u.info.Log.Origin, iSpin) {
		t.Fatalf("rebuild-failed alerts %s, want one about entry %d and one about %d", summaries(failed), iBad, iSpin)
	}
	if !strings.Contains(failed[1].Summary, "cpu_time") {
		t.Errorf("the spinning build's alert does not name the limit: %s", failed[1].Summary)
	}
	var ev auditor.RebuildAlert
	json.Unmarshal(failed[0].Evidence, &ev)
	if ev.Result == nil || !strings.Contains(ev.Result.BuildOutput, "BEGIN") || !strings.Contains(ev.Result.BuildOutput, "No such file") {
		t.Errorf("the failed build's output tail is missing from the evidence: %+v", ev.Result)
	}
	var hookBodies [][]byte
	waitFor(t, func() bool {
		for {
			select {
			case b := <-hooks:
				hookBodies = append(hookBodies, b)
			default:
				return len(hookBodies) > 0
			}
		}
	}, "a webhook delivery")

	// Everything the auditor publishes, searched for the key.
	published := map[string][]byte{"alerts --json": []byte(runCmd(t, "alerts", "--db", db, "--json")), "alerts": []byte(runCmd(t, "alerts", "--db", db))}
	for i, b := range hookBodies {
		published[fmt.Sprintf("webhook %d", i)] = b
	}
	for _, p := range []string{"/status", "/alerts", "/metrics", "/audit/", "/audit/alerts", fmt.Sprintf("/audit/alert/%d", failed[0].ID)} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
		published["GET "+p] = b
	}
	if !bytes.Contains(published["GET /audit/alert/"+fmt.Sprint(failed[0].ID)], []byte("BEGIN")) {
		t.Errorf("the dashboard's alert page does not show the build output tail")
	}
	noKey(t, key, published)
	a.stop(t)

	// sandbox: auto with no bubblewrap: nothing is rebuilt or signed.
	iAuto := publishIndex(t, u, writeEnclaveRelease(t, dir, "auto", "2.0.2", "sev-snp", snpLD, repo, commit, out))
	autoCfg := auditConfig(t, u, dir, "auto", "  sandbox: auto\n  bwrap: /nonexistent/bwrap\n  repo_schemes: [file]\n  timeout: 2m\n", "")
	code, output := auditOnce(t, autoCfg)
	if code != 1 {
		t.Errorf("audit --once with no sandbox = exit %d, want 1 (open alerts)\n%s", code, output)
	}
	autoDB := filepath.Join(dir, "auto.db")
	un := alertsOf(listAlerts(t, autoDB), auditor.AlertRebuildUnsandboxed)
	if len(un) < 1 || !strings.Contains(summaries(un), "no working sandbox") {
		t.Errorf("rebuild-unsandboxed alerts %s, want one per release saying no sandbox works", summaries(un))
	}
	e, err := c.Entry(t.Context(), iAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Reproductions) != 0 || strings.Contains(output, "reproduction logged") {
		t.Errorf("a reproduction of entry %d without a sandbox: %+v\n%s", iAuto, e.Reproductions, output)
	}
}

// enclaveLD is the SEV-SNP launch digest of the test build in out.
func enclaveLD(t *testing.T, out string) string {
	t.Helper()
	return strings.TrimSpace(runCmd(t, "measure", "snp", "--ovmf", filepath.Join(out, "OVMF-snp.fd"), "--kernel", filepath.Join(out, "bzImage"),
		"--initrd", filepath.Join(out, "initrd.img"), "--append", "console=ttyS0 root=/dev/vda ro", "--vcpus", "2", "--vcpu-type", "EPYC-Milan"))
}

// hostileLog is an up (without its auditor) whose log holds a benign
// release of the test build (good) and one built by leakingRelease (bad).
type hostileLog struct {
	u                     *upProc
	key                   []byte // the auditor key's bytes
	repo, commit, out, ld string // the test build's repository, commit, outputs and launch digest
	good, bad             uint64
}

func newHostileLog(t *testing.T, dir string) *hostileLog {
	t.Helper()
	h := &hostileLog{}
	h.repo, h.commit, h.out = enclaveRepo(t, dir)
	h.u = startUp(t, filepath.Join(dir, "up"), "--auditor=false")
	var err error
	if h.key, err = os.ReadFile(h.u.info.Auditor.Key); err != nil {
		t.Fatal(err)
	}
	h.ld = enclaveLD(t, h.out)
	h.good = publishIndex(t, h.u, writeEnclaveRelease(t, dir, "good", "2.0.0", "sev-snp", h.ld, h.repo, h.commit, h.out))
	h.bad = publishIndex(t, h.u, leakingRelease(t, dir, h.repo, h.u.info.Auditor.Key, h.ld, h.out))
	return h
}

// leakingRelease commits to repo a leak.sh that prints, between BEGIN and
// END, the auditor's key at keyPath (by its path, by relative paths, and
// in base64) and fails, and writes a release (version 2.0.1) built by it.
func leakingRelease(t *testing.T, dir, repo, keyPath, measurement, out string) string {
	t.Helper()
	leak := fmt.Sprintf("#!/bin/sh\necho BEGIN\ncat %s\ncat ../../../auditor.key ../../../../auditor.key ../../auditor.key\nbase64 -w0 %s\necho END\nfalse\n", keyPath, keyPath)
	if err := os.WriteFile(filepath.Join(repo, "leak.sh"), []byte(leak), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "leak.sh")
	git(t, repo, "commit", "-q", "-m", "leak")
	hostile := writeEnclaveRelease(t, dir, "hostile", "2.0.1", "sev-snp", measurement, repo, git(t, repo, "rev-parse", "HEAD"), out)
	y, _ := os.ReadFile(hostile)
	os.WriteFile(hostile, bytes.Replace(y, []byte("argv: [sh, build.sh]"), []byte("argv: [sh, leak.sh]"), 1), 0o644)
	return hostile
}

// noKey fails t if anything published (by name) holds the key or a part of it.
func noKey(t *testing.T, key []byte, published map[string][]byte) {
	t.Helper()
	b64 := []byte(base64.StdEncoding.EncodeToString(key))
	for what, b := range published {
		for _, secret := range [][]byte{bytes.TrimSpace(key), b64} {
			if bytes.Contains(b, secret) {
				t.Errorf("%s contains the auditor's key", what)
			}
		}
		if len(key) > 40 && bytes.Contains(b, bytes.TrimSpace(key)[20:40]) {
			t.Errorf("%s contains part of the auditor's key", what)
		}
	}
}

// TestAuditHostileReleaseUnsandboxed: with rebuild.sandbox off, recipes
// run on the host, but as uid 65534, never as the auditor (this test runs
// as root, as an auditor that builds unsandboxed must): the recipe that
// prints the auditor's key gets "Permission denied", the key is in
// nothing the auditor publishes, and a benign release still reproduces
// and is signed. An auditor whose key that user could read (its own file)
// refuses to start, naming the file, and builds nothing.
func TestAuditHostileReleaseUnsandboxed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("as root only: an auditor that is not root refuses rebuild.sandbox: off (auditor/internal/rebuild TestUnsandboxedNeedsBuildUser)")
	}
	dir := t.TempDir()
	h := newHostileLog(t, dir)
	u, key, iGood, iBad := h.u, h.key, h.good, h.bad

	const rebuildOff = "  sandbox: off\n  repo_schemes: [file]\n  timeout: 2m\n"
	code, output := auditOnce(t, auditConfig(t, u, dir, "off", rebuildOff, ""))
	if code != 1 || !strings.Contains(output, "on the host as uid 65534") {
		t.Errorf("audit --once with sandbox off = exit %d, want 1 (the hostile release's alert), building as uid 65534:\n%s", code, output)
	}
	alertsJSON := runCmd(t, "alerts", "--db", filepath.Join(dir, "off.db"), "--json")
	var al []auditor.Alert
	json.Unmarshal([]byte(alertsJSON), &al)
	failed := alertsOf(al, auditor.AlertRebuildFailed)
	if len(failed) != 1 || failed[0].Subject != fmt.Sprintf("log/%s/entry/%d", u.info.Log.Origin, iBad) {
		t.Fatalf("rebuild-failed alerts %s, want one about entry %d\n%s", summaries(failed), iBad, output)
	}
	var ev auditor.RebuildAlert
	json.Unmarshal(failed[0].Evidence, &ev)
	if ev.Result == nil || ev.Result.Sandboxed || !strings.Contains(ev.Result.BuildOutput, "BEGIN") ||
		!strings.Contains(ev.Result.BuildOutput, u.info.Auditor.Key+": Permission denied") {
		t.Errorf("the hostile build's output does not show its reads of the key refused: %+v", ev.Result)
	}
	noKey(t, key, map[string][]byte{"alerts --json": []byte(alertsJSON), "audit --once": []byte(output)})
	// The auditor logged the reproduction (appended); the log shows it on
	// the release once its follower has indexed it (every 200 ms).
	c, _ := client.New(u.info.URL, nil)
	waitFor(t, func() bool {
		e, err := c.Entry(t.Context(), iGood)
		return err == nil && len(e.Reproductions) > 0
	}, "the log to index the benign release's reproduction")
	if e, err := c.Entry(t.Context(), iGood); err != nil || len(e.Reproductions) != 1 || e.Reproductions[0].Outcome != statement.OutcomeMatch {
		t.Errorf("the benign release built unsandboxed: %+v, %v, want one matching reproduction\n%s", e, err, output)
	}

	// A key file the build user can read (mode 0600, as the auditor
	// requires, but the build user's own, in a directory it can enter: a
	// rebuild.user that owns the key), the rest as it should be: the
	// auditor does not start.
	exposed, state := filepath.Join(dir, "exposed"), filepath.Join(dir, "exposed-state")
	os.Mkdir(exposed, 0o755)
	os.Mkdir(state, 0o700)
	exposedKey := filepath.Join(exposed, "auditor.key")
	if err := errors.Join(os.WriteFile(exposedKey, key, 0o600), os.Chown(exposedKey, 65534, 65534)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	cfg := auditConfig(t, u, state, "exposed", rebuildOff, "")
	y, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(y, []byte("key: "+u.info.Auditor.Key), []byte("key: "+exposedKey), 1), 0o600)
	code, output = auditOnce(t, cfg)
	t.Logf("refused: %s", output)
	if code == 0 || !strings.Contains(output, "can read "+exposedKey) || !strings.Contains(output, "mode 0600") || strings.Contains(output, "rebuilding release") {
		t.Errorf("audit --once with its key readable by the build user = exit %d, want a refusal to start naming %s:\n%s", code, exposedKey, output)
	}
}

// TestAuditGPUSwap is the GPU end to end through the commands: up's demo
// release names its GPU (driver and golden measurements); a deployment
// that serves that release with one GPU measurement swapped (block 3, a
// VBIOS measurement in NVIDIA's H100 VBIOS RIMs) raises gpu-unlogged,
// and the same deployment with the logged GPU raises nothing.
func TestAuditGPUSwap(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, filepath.Join(dir, "up"), "--auditor=false")
	if u.info.Demo.GPUs != 1 {
		t.Fatalf("up's demo has %d GPUs, want 1", u.info.Demo.GPUs)
	}
	m := measurementBytes(t, u.info.Demo.Measurement)
	honest, err := fakeenclave.NewSNP(m, fakeenclave.WithGPUs(1))
	if err != nil {
		t.Fatal(err)
	}
	swapped, err := fakeenclave.NewSNP(m, fakeenclave.WithGPUs(1), fakeenclave.WithGPUMeasurement(0, 3, bytes.Repeat([]byte{0x5e}, 48)))
	if err != nil {
		t.Fatal(err)
	}
	deps := "deployments:\n"
	for _, d := range []struct {
		name string
		e    *fakeenclave.Enclave
	}{{"honest", honest}, {"swapped", swapped}} {
		root, groot := filepath.Join(dir, d.name+"-root.pem"), filepath.Join(dir, d.name+"-gpu-root.pem")
		os.WriteFile(root, d.e.RootPEM(), 0o644)
		os.WriteFile(groot, d.e.GPURootPEM(), 0o644)
		p := filepath.Join(dir, d.name+"-policy.txt")
		os.WriteFile(p, []byte("platform sev-snp\ntrust-root sev-snp "+root+"\ntrust-root gpu "+groot+"\ngpu nvidia count=1 arch=hopper mode=cc rims=optional\n"), 0o644)
		deps += fmt.Sprintf("  - {name: %s, url: %q, policy: %s, allow_private: true}\n", d.name, serveEnclave(t, d.e), p)
	}
	code, output := auditOnce(t, auditConfig(t, u, dir, "auditor", "  enabled: false\n", deps))
	if code != 1 {
		t.Fatalf("audit --once = exit %d, want 1\n%s", code, output)
	}
	al := listAlerts(t, filepath.Join(dir, "auditor.db"))
	got := alertsOf(al, auditor.AlertGPUUnlogged)
	if len(got) != 1 || got[0].Subject != "deployment/swapped" || !strings.Contains(got[0].Summary, "block 3") {
		t.Errorf("gpu-unlogged alerts = %s, want one about deployment/swapped's block 3", summaries(got))
	}
	if len(al) != 1 {
		t.Errorf("alerts = %s, want only the swapped GPU's", summaries(al))
	}
}
