package main

import (
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
)

func init() {
	register("inspect", "verify attestation evidence's hardware signature chain offline and print its fields", runInspect)
	allowsArgs["attestlog inspect"] = true
}

// inspectStdout is where inspect prints; tests replace it.
var inspectStdout io.Writer = os.Stdout

func runInspect(args []string) error {
	fs := newFlagSet("inspect", "[--vcek FILE] [--json] [--policy FILE] [--at TIME] EVIDENCE")
	vcek := fs.String("vcek", "", "SEV-SNP VCEK or VLEK certificate `FILE` (DER or PEM) for a report without its certificate table")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	policyPath := fs.String("policy", "", "policy `FILE` whose trust-root, crl and tdx-collateral lines to use (test roots are trusted only so)")
	at := fs.String("at", "", "verify certificates as of `TIME` (RFC 3339) instead of now, for saved evidence")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: attestlog inspect [--vcek FILE] [--json] [--policy FILE] [--at TIME] EVIDENCE

Verifies the hardware signature chain of EVIDENCE offline, against AMD's and
Intel's roots, and prints its fields. EVIDENCE ("-" for stdin) is an attestlog
evidence bundle (JSON), a raw SEV-SNP report (1184 bytes), an SEV-SNP report
followed by its certificate table, or a TDX quote v4. Exits 1 when a check
fails.

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
	raw, err := readLimited(fs.Arg(0), evidence.MaxBundleSize)
	if err != nil {
		return err
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
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--at: %v", err)
		}
		opts = append(opts, attest.WithTime(t))
	}
	v, err := attest.New(ap, opts...)
	if err != nil {
		return err
	}
	r := v.InspectAs(b, kind)
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
