package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu/rim"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

func init() {
	register("inspect", "verify attestation evidence's hardware signature chain offline and print its fields", runInspect)
	allowsArgs["attestlog inspect"] = true
}

// inspectStdout is where inspect prints; tests replace it.
var inspectStdout io.Writer = os.Stdout

func runInspect(args []string) error {
	fs := newFlagSet("inspect", "[--vcek FILE] [--event-log FILE] [--endorsement FILE] [--cert-chain FILE] [--nonce HEX] [--rim FILE]... [--json] [--policy FILE] [--at TIME] EVIDENCE")
	vcek := fs.String("vcek", "", "SEV-SNP VCEK or VLEK certificate `FILE` (DER or PEM) for a report without its certificate table")
	eventLog := fs.String("event-log", "", "TDX: the TD's CC event log `FILE` (the CCEL log area, e.g. /sys/firmware/acpi/tables/data/CCEL): it must replay to the quote's RTMRs")
	endorsement := fs.String("endorsement", "", "Google Cloud: the firmware's launch endorsement `FILE` (a serialized VMLaunchEndorsement); verified against the policy's trust-root gce-tcb root")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	policyPath := fs.String("policy", "", "policy `FILE` whose trust-root, crl and tdx-collateral lines to use (test roots are trusted only so)")
	at := fs.String("at", "", "verify certificates as of `TIME` (RFC 3339) instead of now, for saved evidence")
	certChain := fs.String("cert-chain", "", "GPU device certificate chain `FILE` (PEM, leaf first): EVIDENCE is then an NVIDIA GPU attestation report in hex")
	nonceHex := fs.String("nonce", "", "GPU or vTPM evidence: the `HEX` nonce the GPU report or TPM quote must answer")
	var rimFiles stringList
	fs.Var(&rimFiles, "rim", "GPU evidence: NVIDIA RIM `FILE` (driver or VBIOS) the measurements must equal (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: attestlog inspect [--vcek FILE] [--event-log FILE] [--endorsement FILE] [--cert-chain FILE] [--nonce HEX] [--rim FILE]... [--json] [--policy FILE] [--at TIME] EVIDENCE

Verifies the hardware signature chain of EVIDENCE offline, against AMD's,
Intel's and NVIDIA's roots, and prints its fields. EVIDENCE ("-" for stdin) is
an attestlog evidence bundle (JSON), a raw SEV-SNP report (1184 bytes), an
SEV-SNP report followed by its certificate table, a TDX quote v4 or v5, NVIDIA's
serialized GPU evidence (a JSON list of {"arch","certificate","evidence",
"nonce"}, one or many GPUs), or with --cert-chain a GPU report in hex.
Exits 1 when a check fails.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "want exactly one EVIDENCE file")
		fs.Usage()
		return errUsage
	}
	when, err := atFlag(*at)
	if err != nil {
		return err
	}
	raw, err := readLimited(fs.Arg(0), max(evidence.MaxBundleSize, spdm.MaxEvidenceJSON))
	if err != nil {
		return err
	}
	if gpus, ok, err := gpuEvidence(raw, *certChain); ok {
		if err != nil {
			return err
		}
		var nonce []byte
		if *nonceHex != "" {
			if nonce, err = hex.DecodeString(*nonceHex); err != nil || len(nonce) != spdm.NonceSize {
				return usageError(fs, "--nonce must be %d bytes of hex", spdm.NonceSize)
			}
		}
		var rims []*rim.RIM
		for _, f := range rimFiles {
			b, err := readLimited(f, rim.MaxSize)
			if err != nil {
				return err
			}
			r, _, err := rim.Verify(b, rim.Roots(), when)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			rims = append(rims, r)
		}
		return inspectGPUs(gpus, when, nonce, rims, *asJSON)
	}
	if len(raw) > evidence.MaxBundleSize {
		return fmt.Errorf("%s: larger than %d bytes", fs.Arg(0), evidence.MaxBundleSize)
	}
	b, kind, err := evidence.Parse(raw)
	if err != nil {
		return err
	}
	if *vcek != "" {
		if b.Platform != evidence.SEVSNP {
			return errors.New("--vcek is for SEV-SNP evidence")
		}
		if b.VCEK, err = readLimited(*vcek, evidence.MaxCertSize); err != nil {
			return err
		}
	}
	if *eventLog != "" {
		if b.Platform != evidence.TDX {
			return errors.New("--event-log is for TDX evidence")
		}
		// The CCEL area as the guest reads it ends in 0xff padding.
		l, err := readLimited(*eventLog, 16<<20)
		if err != nil {
			return err
		}
		b.EventLog = bytes.TrimRight(l, "\xff")
	}
	if *endorsement != "" {
		if b.FirmwareEndorsement, err = readLimited(*endorsement, evidence.MaxEndorsementSize); err != nil {
			return err
		}
	}
	if err := b.Check(); err != nil {
		return err
	}
	ap := policy.AttestationPolicy{}
	var opts []attest.Option
	if *policyPath != "" {
		p, err := policy.Load(*policyPath)
		if err != nil {
			return err
		}
		ap = p.Attestation
		opts = append(opts, attest.WithBaseDir(filepath.Dir(*policyPath)))
	}
	if *at != "" {
		opts = append(opts, attest.WithTime(when))
	}
	v, err := attest.New(ap, opts...)
	if err != nil {
		return err
	}
	r := v.InspectAs(b, kind)
	if *nonceHex != "" {
		// vTPM evidence: its TPM quote must answer the nonce (extraData).
		n, err := hex.DecodeString(*nonceHex)
		if b.VTPM == nil || err != nil || len(n) == 0 || len(n) > evidence.MaxNonceSize {
			return usageError(fs, "--nonce is for GPU evidence and vTPM evidence (1 to %d bytes of hex: what the TPM quote's extraData must be)", evidence.MaxNonceSize)
		}
		r = v.InspectNonce(b, kind, n)
	}
	if *asJSON {
		out, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(inspectStdout, "%s\n", out)
	} else if err := r.WriteText(inspectStdout); err != nil {
		return err
	}
	if !r.OK() {
		for _, c := range r.Checks.Failed() {
			if *policyPath == "" && strings.Contains(c.Reason, "unknown authority") {
				// The demo enclave's (and any test) root is trusted only
				// when a policy names it.
				fmt.Fprintln(stderr, "\nhint: the evidence is signed by a root attestlog does not trust by default, such as the demo enclave's test root; "+
					"pass a policy whose 'trust-root' line names it, e.g. --policy attestlog-data/client-policy.txt")
				break
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("%d check(s) failed: %s", len(r.Checks.Failed()), r.Checks.Failed()[0].Name)}
	}
	return nil
}

// gpuEvidence recognises GPU evidence: a hex report with --cert-chain, or
// NVIDIA's serialized evidence JSON (a list).
func gpuEvidence(raw []byte, certChain string) ([]spdm.GPUEvidence, bool, error) {
	if certChain != "" {
		chain, err := readLimited(certChain, 64<<10)
		if err != nil {
			return nil, true, err
		}
		rep, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			return nil, true, fmt.Errorf("with --cert-chain, EVIDENCE must be a GPU report in hex: %v", err)
		}
		return []spdm.GPUEvidence{{Report: rep, Certificate: chain}}, true, nil
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		g, err := spdm.ParseEvidenceJSON(raw)
		return g, true, err
	}
	return nil, false, nil
}

// inspectGPUs verifies each GPU's evidence on its own and prints it.
func inspectGPUs(gpus []spdm.GPUEvidence, at time.Time, nonce []byte, rims []*rim.RIM, asJSON bool) error {
	var ins []*spdm.Inspection
	failed := 0
	for _, g := range gpus {
		in := spdm.Inspect(g, spdm.DeviceRoots(), at, nonce)
		if r := in.Report(); r != nil && len(rims) > 0 {
			chip := ""
			if p := in.Path(); p != nil {
				chip = spdm.CertifiedChip(p[0])
			}
			in.Checks = append(in.Checks, rim.CheckMeasurements(rim.GPUOf(r, chip), rims...))
		}
		ins = append(ins, in)
		if !in.OK() {
			failed++
		}
	}
	if asJSON {
		out, err := json.MarshalIndent(ins, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(inspectStdout, "%s\n", out)
	} else {
		for i, in := range ins {
			fmt.Fprintf(inspectStdout, "GPU %d (%s)\n\n%s\n", i, orDash(in.Arch), in.Checks)
			fmt.Fprintf(inspectStdout, "driver_version  %s\nvbios_version   %s\nboard           %s\nnonce           %s\n", in.Driver, in.VBIOS, in.Board, in.Nonce)
			for j, m := range in.Measurements {
				fmt.Fprintf(inspectStdout, "measurement.%-2d  %s\n", j+1, m)
			}
			fmt.Fprintln(inspectStdout)
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d GPUs failed a check", failed, len(gpus))}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readLimited reads a file ("-" for stdin) of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// atFlag is an --at TIME flag's value: RFC 3339, or now when empty.
func atFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at: %v", err)
	}
	return t, nil
}
