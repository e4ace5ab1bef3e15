package up

import (
	"crypto/sha512"
	"fmt"
	"strings"
	"time"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
)

// DefaultPlatform is the platform the demo enclave plays unless
// Config.Platform names another.
const DefaultPlatform = "sev-snp"

// platformSpec is a platform the demo enclave of 'up' can play
// (--platform): the demo signer's evidence shaped as that cloud's or
// CPU's, under test roots made at each start (never AMD's, Intel's,
// Microsoft's or Google's: no one could sign those here).
type platformSpec struct {
	name string
	// release is the platform its releases name (and policies' platform
	// lines): sev-snp, tdx, azure-sev-snp or azure-tdx.
	release string
	// what it is, for people.
	what string
	// policy are the client policy lines it needs beside the log's, the
	// witness quorum and the operator's (its trust-root lines name the
	// files of rootFiles).
	policy string
	// measured: the release's SEV-SNP launch digest is the demo build's,
	// recomputed by the auditor of 'up'. Otherwise the release names
	// values its build does not determine (a paravisor's, a TDVF's).
	measured bool
	// endorsed: Google's firmware endorsement is stapled (a test root's).
	endorsed bool
}

// platforms are the platforms of --platform, in the order 'up -h' lists
// them.
var platforms = []platformSpec{
	{name: "sev-snp", release: statement.PlatformSNP, what: "a demo SEV-SNP enclave (Milan, VCEK)", measured: true,
		policy: "# The demo enclave's evidence is signed by a test root: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\n"},
	{name: "aws", release: statement.PlatformSNP, what: "a demo AWS EC2 SEV-SNP instance (VLEK, provisional firmware)", measured: true,
		policy: "platform sev-snp\n# A test ARK → ASVK chain standing in for AMD's VLEK chain: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\n" +
			"# AWS hosts run firmware they have not committed (COMMITTED_TCB < CURRENT_TCB).\nsnp-allow-provisional-firmware\n"},
	{name: "turin", release: statement.PlatformSNP, what: "a demo AMD Turin SEV-SNP host (VCEK v1, Turin TCB layout)", measured: true,
		policy: "platform sev-snp\n# A test ARK-Turin → SEV-Turin chain: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\n" +
			"# Turin's TCB floors, FMC included (read with Turin's layout).\nsnp-min-tcb turin fmc=1 snp=4\n"},
	{name: "gcp-sev-snp", release: statement.PlatformSNP, what: "a demo Google Cloud SEV-SNP VM (firmware endorsed)", measured: true, endorsed: true,
		policy: "platform sev-snp\n# A test AMD chain and a test root standing in for Google's endorsement root: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\ntrust-root gce-tcb demo-gce-root.pem\n"},
	{name: "azure-sev-snp", release: statement.PlatformAzureSNP, what: "a demo Azure SEV-SNP confidential VM (paravisor, vTPM)",
		policy: "platform azure-sev-snp\n# A test AMD chain standing in for the VCEK Azure's THIM serves: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\n"},
	{name: "tdx", release: statement.PlatformTDX, what: "a demo Intel TDX TD (quote v4, Intel collateral stapled)",
		policy: "platform tdx\n# A test PCK chain and collateral signer standing in for Intel's: trusted here only.\ntrust-root tdx demo-tdx-root.pem\n"},
	{name: "tdx15", release: statement.PlatformTDX, what: "a demo Intel TDX 1.5 TD (quote v5, Intel collateral stapled)",
		policy: "platform tdx\n# A test PCK chain and collateral signer standing in for Intel's: trusted here only.\ntrust-root tdx demo-tdx-root.pem\n"},
	{name: "gcp-tdx", release: statement.PlatformTDX, what: "a demo Google Cloud TDX VM (firmware endorsed, CC event log)", endorsed: true,
		policy: "platform tdx\n# Test roots standing in for Intel's PCK root and Google's endorsement root: trusted here only.\ntrust-root tdx demo-tdx-root.pem\ntrust-root gce-tcb demo-gce-root.pem\n"},
	{name: "azure-tdx", release: statement.PlatformAzureTDX, what: "a demo Azure TDX confidential VM (paravisor, vTPM, Intel collateral stapled)",
		policy: "platform azure-tdx\n# A test PCK chain and collateral signer standing in for Intel's: trusted here only.\ntrust-root tdx demo-tdx-root.pem\n"},
}

// PlatformNames are the values of --platform.
func PlatformNames() []string {
	var out []string
	for _, p := range platforms {
		out = append(out, p.name)
	}
	return out
}

func platformOf(name string) (platformSpec, error) {
	if name == "" {
		name = DefaultPlatform
	}
	for _, p := range platforms {
		if p.name == name {
			return p, nil
		}
	}
	return platformSpec{}, fmt.Errorf("unknown platform %q; want one of %s", name, strings.Join(PlatformNames(), ", "))
}

// tdxFamily: the hardware evidence is a TD quote.
func (p platformSpec) tdxFamily() bool {
	return statement.HardwarePlatform(p.release) == statement.PlatformTDX
}

// rootFile is the demo hardware root's file name (beside the client
// policy).
func (p platformSpec) rootFile() string {
	if p.tdxFamily() {
		return "demo-tdx-root.pem"
	}
	return "demo-snp-root.pem"
}

// exampleFile is the example release's file name: the default
// platform's keeps the name it always had.
func (p platformSpec) exampleFile() string {
	if p.name == DefaultPlatform {
		return "example-release.yaml"
	}
	return "example-release-" + p.name + ".yaml"
}

// demoValue is a fixed 48-byte demo measurement named by what it stands
// for (a paravisor's launch digest, a TDVF's MRTD).
func demoValue(what string) []byte {
	d := sha512.Sum384([]byte("attestlog demo " + what))
	return d[:]
}

// demoWorkload is what the demo Google Cloud TD boots.
var demoWorkload = enclave.GCPWorkload{Kernel: []byte("attestlog demo kernel"), Cmdline: "console=ttyS0"}

// newEnclave makes the demo enclave of p on primary measurement m (the
// SNP launch digest, the paravisor's, or MRTD). TDX evidence staples
// Intel collateral (UpToDate, current for 30 days from now).
func (p platformSpec) newEnclave(m []byte, opts ...enclave.Option) (*enclave.Enclave, error) {
	var enc *enclave.Enclave
	var err error
	switch p.name {
	case "sev-snp":
		enc, err = enclave.NewSNP(m, opts...)
	case "aws":
		enc, err = enclave.NewAWS(m, opts...)
	case "turin":
		enc, err = enclave.NewTurin(m, opts...)
	case "gcp-sev-snp":
		enc, err = enclave.NewGCPSNP(m, opts...)
	case "azure-sev-snp":
		enc, err = enclave.NewAzureSNP(m, opts...)
	case "tdx":
		enc, err = enclave.NewTDX(m, opts...)
	case "tdx15":
		enc, err = enclave.NewTDX15(m, enclave.TDX15{}, opts...)
	case "gcp-tdx":
		enc, err = enclave.NewGCPTDX(m, demoWorkload, opts...)
	case "azure-tdx":
		enc, err = enclave.NewAzureTDX(m, opts...)
	default:
		return nil, fmt.Errorf("unknown platform %q", p.name)
	}
	if err != nil {
		return nil, err
	}
	if p.tdxFamily() {
		c, err := enc.TDXCollateral(time.Now().Add(-time.Hour), enclave.UpToDate)
		if err != nil {
			return nil, err
		}
		enc.SetTDXCollateral(c)
	}
	return enc, nil
}

// measurements returns the measurements section (YAML, indented two
// spaces) of p's example release and whether its launch digest is the
// demo build's (snpDigest, hex; "" without the demo repository).
func (p platformSpec) measurements(snpDigest string) (string, bool, error) {
	var b strings.Builder
	switch {
	case p.release == statement.PlatformSNP:
		measured := snpDigest != ""
		if !measured {
			snpDigest = exampleMeasurement
		}
		fmt.Fprintf(&b, "  snp:\n    launch_digest: %s\n", snpDigest)
		if p.endorsed {
			b.WriteString("    # Google's firmware: trusted only with its stapled, verified launch endorsement.\n    firmware_endorsement: google\n")
		}
		return b.String(), measured, nil
	case p.release == statement.PlatformTDX:
		mrtd := demoValue("TDVF")
		fmt.Fprintf(&b, "  tdx:\n    mrtd: %x\n", mrtd)
		if p.endorsed {
			// The workload is in the RTMRs, replayed from the event log.
			enc, err := p.newEnclave(mrtd)
			if err != nil {
				return "", false, err
			}
			for i, r := range enc.RTMRs()[:3] {
				fmt.Fprintf(&b, "    rtmr%d: %x\n", i, r)
			}
			b.WriteString("    # Google's firmware (MRTD): trusted only with its stapled, verified launch endorsement.\n    firmware_endorsement: google\n")
		}
		return b.String(), false, nil
	}
	// Azure: the paravisor's launch measurement, and the PCRs the guest's
	// boot leaves in the vTPM.
	para := demoValue("paravisor " + p.release)
	enc, err := p.newEnclave(para)
	if err != nil {
		return "", false, err
	}
	if p.tdxFamily() {
		fmt.Fprintf(&b, "  tdx:\n    mrtd: %x\n", para)
	} else {
		fmt.Fprintf(&b, "  snp:\n    launch_digest: %x\n", para)
	}
	b.WriteString("  # The guest's boot as the vTPM measured it: boot loader, command line, UKI.\n  vtpm:\n    pcrs:\n")
	pcrs := enc.PCRs()
	for _, i := range []int{4, 9, 11} {
		fmt.Fprintf(&b, "      \"%d\": %s\n", i, pcrs[i])
	}
	return b.String(), false, nil
}

// fictitiousRelease is p's example release without git: of fictitious
// source, which no auditor rebuilds.
func (p platformSpec) fictitiousRelease(now string) (string, error) {
	if p.name == DefaultPlatform {
		return exampleRelease(now), nil
	}
	m, _, err := p.measurements("")
	if err != nil {
		return "", err
	}
	return `# An example release of the ` + p.name + ` demo VM (written by 'attestlog up'),
# of fictitious source. Publish it with
#   attestlog publish --log URL --key operator.key --wait ` + p.exampleFile() + `
version: 0.1.0
platform: ` + p.release + `
time: ` + now + `
measurements:
` + m + `artifacts:
  - name: disk.img
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
source:
  repo: https://github.com/example/enclave
  commit: 0123456789abcdef0123456789abcdef01234567
recipe:
  argv: [make, release]
  env: {SOURCE_DATE_EPOCH: "0"}
  outputs: [disk.img]
`, nil
}
