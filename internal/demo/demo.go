// Package demo makes the release that 'attestlog up' publishes and runs in
// its demo enclave: a tiny source repository whose build is reproducible,
// so that the auditor of 'up' can rebuild it, recompute its SEV-SNP launch
// digest and log a reproduction.
package demo

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/attestlog/attestlog/policy/measure/snp"
)

//go:embed ovmf_AmdSev_suffix.bin
var firmware []byte

// The build, run by the auditor in an empty directory holding the source.
const buildScript = `#!/bin/sh
# A deterministic "enclave image": firmware, kernel, initrd and command line.
set -eu
mkdir -p out
cp firmware/OVMF.fd out/OVMF.fd
printf 'attestlog demo kernel, built with SOURCE_DATE_EPOCH=%s\n' "$SOURCE_DATE_EPOCH" > out/bzImage
cat src/init.txt src/init.txt > out/initrd.img
printf '%s' "$CMDLINE" > out/cmdline
`

const (
	initTxt  = "#!/bin/init\necho hello from the attestlog demo enclave\n"
	epoch    = "1767225600"
	cmdline  = "console=ttyS0"
	vcpuType = "EPYC-v4"
)

// Release is the demo release: its source and what its build produces.
type Release struct {
	Repo, Commit string
	Measurement  string // the SEV-SNP launch digest, hex
	Outputs      map[string][]byte
}

// outputs returns what build.sh writes, byte for byte.
func outputs() map[string][]byte {
	return map[string][]byte{
		"out/OVMF.fd":    firmware,
		"out/bzImage":    []byte("attestlog demo kernel, built with SOURCE_DATE_EPOCH=" + epoch + "\n"),
		"out/initrd.img": []byte(initTxt + initTxt),
		"out/cmdline":    []byte(cmdline),
	}
}

// Create makes (or reuses) the git repository dir/demo-src and returns the
// release. It needs git.
func Create(dir string) (*Release, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git is needed for the reproducible demo: %w", err)
	}
	repo := filepath.Join(dir, "demo-src")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir = repo
		// A fixed author and date: the same commit on every machine.
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=attestlog", "GIT_AUTHOR_EMAIL=demo@attestlog.invalid",
			"GIT_COMMITTER_NAME=attestlog", "GIT_COMMITTER_EMAIL=demo@attestlog.invalid",
			"GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := os.Stat(filepath.Join(repo, ".git")); errors.Is(err, os.ErrNotExist) {
		files := map[string][]byte{
			"build.sh":         []byte(buildScript),
			"firmware/OVMF.fd": firmware,
			"src/init.txt":     []byte(initTxt),
		}
		for name, b := range files {
			p := filepath.Join(repo, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return nil, err
			}
		}
		for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "attestlog demo enclave"}} {
			if _, err := run(args...); err != nil {
				os.RemoveAll(repo)
				return nil, err
			}
		}
	}
	commit, err := run("rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	m, err := measure()
	if err != nil {
		return nil, err
	}
	return &Release{Repo: "file://" + repo, Commit: commit, Measurement: m, Outputs: outputs()}, nil
}

// measure computes the launch digest of the demo build: the AmdSev
// firmware suffix with measured direct boot of its kernel, initrd and
// command line, one EPYC-v4 vCPU under QEMU.
func measure() (string, error) {
	out := outputs()
	fw, err := snp.ParseFirmware(out["out/OVMF.fd"])
	if err != nil {
		return "", err
	}
	k, err := snp.HashKernel(bytes.NewReader(out["out/bzImage"]), bytes.NewReader(out["out/initrd.img"]), cmdline)
	if err != nil {
		return "", err
	}
	d, err := snp.LaunchDigest(fw, snp.Config{VCPUs: 1, VCPUSig: snp.VCPUTypes[vcpuType], VMM: snp.QEMU,
		GuestFeatures: snp.DefaultGuestFeatures, Kernel: k})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(d[:]), nil
}

// YAML returns the release file for r, published at time t (RFC 3339).
func (r *Release) YAML(version, t string) string {
	return r.YAMLAs(version, t, "sev-snp", fmt.Sprintf("  snp:\n    launch_digest: %s\n", r.Measurement), true)
}

// YAMLAs returns the release file for r as a release of platform whose
// measurements section is measurements (YAML lines indented by two
// spaces). With measure, the recipe says how to recompute the SEV-SNP
// launch digest from the build (the auditor of 'up' replays it);
// without, the release names measurements its build does not determine
// (a paravisor's, a TDVF's) and no auditor can recompute them.
func (r *Release) YAMLAs(version, t, platform, measurements string, measure bool) string {
	var arts strings.Builder
	for _, name := range []string{"out/OVMF.fd", "out/bzImage", "out/initrd.img", "out/cmdline"} {
		fmt.Fprintf(&arts, "  - {name: %s, sha256: %s}\n", filepath.Base(name), sha256Hex(r.Outputs[name]))
	}
	head := `# The demo release (written by 'attestlog up'): its source is the local
# repository below, whose build the auditor of 'up' replays to check the
# launch digest. Publish your own releases the same way:
#   attestlog publish --log URL --key operator.key --wait release.yaml
`
	m := ""
	if measure {
		m = fmt.Sprintf(`  measure:
    firmware: out/OVMF.fd
    kernel: out/bzImage
    initrd: out/initrd.img
    cmdline: %q
    vcpus: 1
    vcpu_type: %s
    guest_features: "0x1"
`, cmdline, vcpuType)
	} else {
		head = `# The demo release of the ` + platform + ` demo VM (written by 'attestlog up'): its
# source is the local repository below; its measurements are the demo
# VM's, which its build does not determine, so no auditor recomputes them.
`
	}
	return fmt.Sprintf(`%sversion: %s
platform: %s
time: %s
measurements:
%sartifacts:
%ssource:
  repo: %q
  commit: %s
recipe:
  argv: [sh, build.sh]
  env: {SOURCE_DATE_EPOCH: %q, CMDLINE: %q}
  outputs: [out/OVMF.fd, out/bzImage, out/initrd.img, out/cmdline]
%s`, head, version, platform, t, measurements, arts.String(), r.Repo, r.Commit, epoch, cmdline, m)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
