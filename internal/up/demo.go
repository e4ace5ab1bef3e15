package up

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/evidence/stapler"
)

// StapleInterval is how often the demo enclave refreshes its staple: a
// revocation shows in its evidence within one interval of the index
// checkpoint that covers it.
const StapleInterval = 5 * time.Second

// demoChallenges is the demo agent's nonce-challenge budget: generous (a
// demo signer is not a host's one report a second), for the explorer's
// verify page and the README's curl.
var demoChallenges = agent.ChallengeBudget{PerSecond: 20, Burst: 40, MaxWaiting: 8}

// startDemo publishes the example release with the demo operator key,
// waits for its witnessed proof, and runs the demo enclave: the enclave
// agent ('attestlog enclave') with a demo signer as its report source,
// serving TLS on enclaveLn in front of a demo chat service. It writes
// the demo roots next to the client policy and keeps the staple fresh.
// It returns the agent (whose document handler up also mounts at /demo
// over plain HTTP, for the auditor and 'verify --enclave').
func startDemo(ctx context.Context, lg *logserver.Log, info *Info, enclaveLn net.Listener, logger *slog.Logger) (*agent.Agent, error) {
	signer, err := keyfile.LoadSigner(info.Operator.Key)
	if err != nil {
		return nil, err
	}
	subj, rel, err := statement.LoadReleaseSpec(info.ExampleRelease, time.Now())
	if err != nil {
		return nil, err
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		return nil, err
	}
	entry, err := statement.Sign(payload, signer)
	if err != nil {
		return nil, err
	}
	res, err := lg.Admit(ctx, entry)
	if err != nil {
		return nil, fmt.Errorf("publishing the example release: %w", err)
	}
	plat, err := platformOf(info.Demo.Platform)
	if err != nil {
		return nil, err
	}
	m, err := hex.DecodeString(rel.Measurements.Primary())
	if err != nil || rel.Platform != plat.release {
		return nil, fmt.Errorf("%s is a %s release; the demo enclave of platform %s runs a %s release (delete the file and 'up' writes one)", info.ExampleRelease, rel.Platform, plat.name, plat.release)
	}
	var opts []enclave.Option
	if rel.GPUs != nil {
		opts = append(opts, enclave.WithGPUs(rel.GPUs.Count))
	}
	enc, err := plat.newEnclave(m, opts...)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(info.Demo.TrustRoot, enc.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	if info.Demo.EndorsementRoot != "" {
		if err := os.WriteFile(info.Demo.EndorsementRoot, enc.EndorsementRootPEM(), 0o644); err != nil {
			return nil, err
		}
	}
	if rel.GPUs != nil {
		if err := os.WriteFile(info.Demo.GPUTrustRoot, enc.GPURootPEM(), 0o644); err != nil {
			return nil, err
		}
	}
	info.Demo.Measurement, info.Demo.ReleaseIndex = rel.Measurements.Primary(), res.Index

	// The demo chat service the agent fronts, on loopback.
	chatLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go httpserve.Serve(ctx, httpserve.NewServer((&chat.Server{WordDelay: demoWordDelay}).Handler()), chatLn)
	upstream := &url.URL{Scheme: "http", Host: chatLn.Addr().String()}

	o := agent.Options{Source: enc, StapleInterval: StapleInterval, Challenges: demoChallenges, Logger: logger,
		// The staple: the release's inclusion proof, the log's index
		// proof for its identity (every entry about it, revocations
		// included) and the revocations' proofs, refreshed every
		// StapleInterval with backoff.
		Staple: func(ctx context.Context, _ *evidence.Bundle) (stapler.Staple, error) {
			return stapler.Collect(ctx, lg, res.Index)
		}}
	if enc.GPUCount() > 0 {
		o.GPUs = enc
	}
	a, err := agent.New(ctx, o)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := a.RefreshStaple(wctx)
		if err == nil {
			break
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("no witnessed checkpoint covers the example release and its index: %w (%v)", wctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	go a.Run(ctx)
	go a.ServeTLS(ctx, enclaveLn, a.Handler(upstream))
	st := a.Status()
	info.Demo.EnclaveURL, info.Demo.ChatUpstream, info.Demo.KeySet, info.Demo.Source = "https://"+enclaveLn.Addr().String(), upstream.String(), st.KeySet, st.Source
	logger.Info("demo enclave agent", "url", info.Demo.EnclaveURL, "upstream", info.Demo.ChatUpstream, "key_set", st.KeySet, "source", st.Source)
	return a, nil
}

const exampleMeasurement = "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"

// rebuildConfig is the rebuild section of up's auditor: on, in a
// bubblewrap sandbox when available, when the demo repository exists and
// the platform's release has a measurement its build determines.
func rebuildConfig(demoSrc string, plat platformSpec) string {
	if _, err := os.Stat(filepath.Join(demoSrc, ".git")); err != nil {
		return "rebuild:\n  enabled: false   # no local demo repository to rebuild from\n"
	}
	if !plat.measured {
		return "rebuild:\n  enabled: false   # the " + plat.name + " demo release names measurements its build does not determine\n"
	}
	return "rebuild:\n  enabled: true\n  sandbox: auto\n  repo_schemes: [file, https]\n  timeout: 2m\n"
}

func exampleRelease(now string) string {
	return `# An example release (written by 'attestlog up'). Publish it with
#   attestlog publish --log URL --key operator.key --wait example-release.yaml
# The launch digest is sev-snp-measure's published value for the AmdSev
# OVMF with 1 EPYC-v4 vCPU, an empty kernel, initrd and command line.
version: 0.1.0
platform: sev-snp
time: ` + now + `
measurements:
  snp:
    launch_digest: ` + exampleMeasurement + `
artifacts:
  - name: OVMF.fd
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
source:
  repo: https://github.com/example/enclave
  commit: 0123456789abcdef0123456789abcdef01234567
recipe:
  argv: [make, release]
  env: {SOURCE_DATE_EPOCH: "0"}
  outputs: [OVMF.fd, bzImage, initrd.img]
  measure:
    firmware: OVMF.fd
    kernel: bzImage
    initrd: initrd.img
    cmdline: ""
    vcpus: 1
    vcpu_type: EPYC-v4
    guest_features: "0x21"
    ovmf_hash: 086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74
`
}

// demoGPUs is the gpus section of the example release: the demo GPU the
// demo enclave attaches, with its driver and golden measurements (a demo
// GPU has no NVIDIA RIM).
func demoGPUs() string {
	var b strings.Builder
	b.WriteString("gpus:\n  vendor: nvidia\n  arch: " + enclave.DemoGPUArch + "\n  count: 1\n  drivers: [\"" + enclave.DemoGPUDriver + "\"]\n  golden:\n")
	for _, blk := range []int{1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13} {
		fmt.Fprintf(&b, "    \"%d\": %x\n", blk, enclave.DemoGPUBlock(blk))
	}
	return b.String()
}

// demoWordDelay is the demo chat service's pause between streamed words:
// its streamed answers arrive word by word, as a model's do, so that a
// client (the explorer's message box, attestedFetch, the proxy) shows
// what streaming through the attested channel looks like.
const demoWordDelay = 25 * time.Millisecond
