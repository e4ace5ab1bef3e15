package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
)

func init() {
	register("publish", "sign a release (YAML) and submit it to a log", runPublish)
	register("revoke", "publish a revocation of a release", runRevoke)
	register("proof", "fetch the proof bundle of an entry or measurement", runProof)
	allowsArgs["attestlog publish"] = true
}

func runPublish(args []string) error {
	fs := newFlagSet("publish", "--log URL --key operator.key [--wait] [--proof-out FILE] release.yaml")
	logURL := fs.String("log", "", "log URL, e.g. http://127.0.0.1:8080")
	keyPath := fs.String("key", "", "operator private key file")
	authorityKey := fs.String("authority-key", "", "also sign with this authority key `FILE` (reinstates a revoked measurement)")
	wait := fs.Bool("wait", false, "wait until a witnessed checkpoint covers the entry, then write its proof")
	proofOut := fs.String("proof-out", "", "with --wait: file to write the proof to (default RELEASE.tlog-proof)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if *logURL == "" || *keyPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "--log, --key and one release.yaml are required")
		fs.Usage()
		return errUsage
	}
	relPath := fs.Arg(0)
	signer, err := keyfile.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	subj, rel, err := statement.LoadReleaseSpec(relPath, time.Now())
	if err != nil {
		return err
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		return err
	}
	var more []*statement.Signer
	if *authorityKey != "" {
		a, err := keyfile.LoadSigner(*authorityKey)
		if err != nil {
			return err
		}
		more = append(more, a)
	}
	entry, err := statement.Sign(payload, signer, more...)
	if err != nil {
		return err
	}
	c, err := client.New(*logURL, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := c.Add(ctx, entry)
	if err != nil {
		return err
	}
	fmt.Println(res.Index)
	if res.Duplicate {
		fmt.Fprintf(stderr, "release already logged at index %d (nothing new was appended)\n", res.Index)
	} else {
		fmt.Fprintf(stderr, "release %s (%s %s) logged at index %d\n", rel.Version, rel.Platform, rel.Measurements.Primary(), res.Index)
	}
	if !*wait {
		return nil
	}
	out := *proofOut
	if out == "" {
		out = trimExt(relPath) + ".tlog-proof"
	}
	return waitAndWriteProof(ctx, c, res.Index, out)
}

func waitAndWriteProof(ctx context.Context, c *client.Client, idx uint64, out string) error {
	fmt.Fprintf(stderr, "waiting for a witnessed checkpoint covering entry %d…\n", idx)
	p, raw, err := c.WaitProof(ctx, idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "proof written to %s (%s)\n", out, cpSummary(p))
	return nil
}

func cpSummary(p *tlogproof.Proof) string {
	// A signed note: the body, a blank line, then one "— name sig" line
	// per signature.
	_, sigs, _ := strings.Cut(string(p.Checkpoint), "\n\n")
	return fmt.Sprintf("checkpoint with %d signature(s)", strings.Count(sigs, "\u2014 "))
}

func trimExt(p string) string {
	for i := len(p) - 1; i >= 0 && p[i] != '/'; i-- {
		if p[i] == '.' {
			return p[:i]
		}
	}
	return p
}

func runRevoke(args []string) error {
	fs := newFlagSet("revoke", "--log URL --key operator.key --index N --reason TEXT [--advisory ID]")
	logURL := fs.String("log", "", "log URL")
	keyPath := fs.String("key", "", "operator (or authority) private key file")
	idx := fs.Int64("index", -1, "index of the release to revoke")
	reason := fs.String("reason", "", "why the release must no longer be trusted")
	advisory := fs.String("advisory", "", "advisory or CVE identifier")
	wait := fs.Bool("wait", false, "wait for a witnessed checkpoint and write the proof")
	proofOut := fs.String("proof-out", "", "with --wait: proof file (default revocation-N.tlog-proof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *keyPath == "" || *idx < 0 || *reason == "" {
		fmt.Fprintln(fs.Output(), "--log, --key, --index and --reason are required")
		fs.Usage()
		return errUsage
	}
	signer, err := keyfile.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	c, err := client.New(*logURL, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The revocation names the release by index and the SHA-256 of its
	// entry, which we read from the log's proof (and check).
	p, _, err := c.WaitProof(ctx, uint64(*idx))
	if err != nil {
		return fmt.Errorf("fetching release %d: %w", *idx, err)
	}
	rp, err := statement.Parse(p.Extra)
	if err != nil || rp.Kind != statement.KindRelease {
		return fmt.Errorf("entry %d is not a release", *idx)
	}
	h := sha256.Sum256(p.Extra)
	ref := statement.EntryRef{Index: uint64(*idx), SHA256: fmt.Sprintf("%x", h)}
	payload, err := statement.EncodeRevocation(ref, &statement.Revocation{
		Reason: *reason, Advisory: *advisory, Time: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return err
	}
	entry, err := statement.Sign(payload, signer)
	if err != nil {
		return err
	}
	res, err := c.Add(ctx, entry)
	if err != nil {
		return err
	}
	fmt.Println(res.Index)
	fmt.Fprintf(stderr, "revocation of release %d logged at index %d\n", *idx, res.Index)
	if *wait {
		out := *proofOut
		if out == "" {
			out = "revocation-" + strconv.FormatUint(res.Index, 10) + ".tlog-proof"
		}
		return waitAndWriteProof(ctx, c, res.Index, out)
	}
	return nil
}

func runProof(args []string) error {
	fs := newFlagSet("proof", "--log URL (--measurement HEX | --index N | --identity-of N) [-o FILE]")
	logURL := fs.String("log", "", "log URL")
	m := fs.String("measurement", "", "measurement (hex) of the release")
	idx := fs.Int64("index", -1, "entry index")
	idOf := fs.Int64("identity-of", -1, "print the log's index proof (attestlog.dev/vindex-proof/v2) for the identity of release `N`: every release with it and every revocation of one of them")
	out := fs.String("o", "", "write the proof here instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := 0
	for _, b := range []bool{*m != "", *idx >= 0, *idOf >= 0} {
		if b {
			given++
		}
	}
	if *logURL == "" || given != 1 {
		fmt.Fprintln(fs.Output(), "--log and exactly one of --measurement, --index and --identity-of are required")
		fs.Usage()
		return errUsage
	}
	c, err := client.New(*logURL, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var raw []byte
	switch {
	case *m != "":
		_, raw, err = c.ProofByMeasurement(ctx, *m)
	case *idx >= 0:
		_, raw, err = c.Proof(ctx, uint64(*idx))
	default:
		_, raw, err = c.IdentityProof(ctx, uint64(*idOf))
	}
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(raw)
		return err
	}
	return os.WriteFile(*out, raw, 0o644)
}

// reorder moves positional arguments after the flags, so that
// "publish release.yaml --log URL" works like "publish --log URL release.yaml".
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			// A flag without "=" takes the next argument unless boolean.
			if !containsEq(a) && !isBoolFlag(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}

func isBoolFlag(a string) bool {
	switch a {
	case "-wait", "--wait", "-h", "--help", "-json", "--json":
		return true
	}
	return false
}
