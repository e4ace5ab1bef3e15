package up

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/evidence/stapler"
)

// startDemo publishes the example release with the demo operator key,
// waits for its witnessed proof, and returns a demo SEV-SNP enclave with
// that measurement and proof. It writes the enclave's demo root next to
// the client policy and keeps the stapled proof fresh.
// StapleInterval is how often the demo enclave refreshes its staple: a
// revocation shows in its evidence within one interval of the index
// checkpoint that covers it.
const StapleInterval = 5 * time.Second

func startDemo(ctx context.Context, lg *logserver.Log, info *Info, logger *slog.Logger) (*stapler.Stapler, error) {
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
	m, err := hex.DecodeString(rel.Measurements.Primary())
	if err != nil || rel.Platform != statement.PlatformSNP {
		return nil, fmt.Errorf("the example release must be an SEV-SNP release")
	}
	var opts []enclave.Option
	if rel.GPUs != nil {
		opts = append(opts, enclave.WithGPUs(rel.GPUs.Count))
	}
	enc, err := enclave.NewSNP(m, opts...)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(info.Demo.TrustRoot, enc.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	if rel.GPUs != nil {
		if err := os.WriteFile(info.Demo.GPUTrustRoot, enc.GPURootPEM(), 0o644); err != nil {
			return nil, err
		}
	}
	info.Demo.Measurement, info.Demo.ReleaseIndex = rel.Measurements.Primary(), res.Index
	// The staple: the release's inclusion proof and the log's index proof
	// for its measurement (every entry about it, revocations included),
	// both under the newest witnessed checkpoint, refreshed every
	// StapleInterval with backoff.
	st := &stapler.Stapler{Source: enc, Interval: StapleInterval, Logger: logger, Fetch: func(ctx context.Context) (stapler.Staple, error) {
		p, err := lg.Proof(ctx, res.Index)
		if err != nil {
			return stapler.Staple{}, err
		}
		ip, err := lg.IdentityProof(ctx, res.Index)
		if err != nil {
			return stapler.Staple{}, err
		}
		ic, err := statement.ParseIndexCheckpoint(ip.Commit.Extra)
		if err != nil {
			return stapler.Staple{}, err
		}
		if ic.Size <= res.Index {
			return stapler.Staple{}, fmt.Errorf("the newest index checkpoint covers %d entries, not yet release %d", ic.Size, res.Index)
		}
		st := stapler.Staple{Proof: string(p.Marshal()), IndexProof: string(ip.Marshal())}
		for _, it := range ip.Items {
			if it.Kind != vindex.KindRevocation || len(st.Related) == evidence.MaxRelated {
				continue
			}
			rp, err := lg.Proof(ctx, it.Index)
			if err != nil {
				return stapler.Staple{}, err
			}
			st.Related = append(st.Related, string(rp.Marshal()))
		}
		return st, nil
	}}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := st.Refresh(wctx)
		if err == nil {
			break
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("no witnessed checkpoint covers the example release and its index: %w (%v)", wctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	go st.Run(ctx)
	return st, nil
}

const exampleMeasurement = "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"

// rebuildConfig is the rebuild section of up's auditor: on, in a
// bubblewrap sandbox when available, when the demo repository exists.
func rebuildConfig(demoSrc string) string {
	if _, err := os.Stat(filepath.Join(demoSrc, ".git")); err != nil {
		return "rebuild:\n  enabled: false   # no local demo repository to rebuild from\n"
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
