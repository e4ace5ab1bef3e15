package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

func init() {
	register("verify", "decide whether to trust an attested enclave: hardware, log, witnesses, policy", runVerify)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runVerify(args []string) error {
	fs := newFlagSet("verify", "--policy FILE (--evidence FILE [--nonce HEX] | --enclave URL [--challenge] | --relay URL) [--proof FILE | --log URL] [--related FILE]... [--json]")
	policyPath := fs.String("policy", "", "trust policy file")
	evPath := fs.String("evidence", "", "evidence file: an evidence bundle (JSON), a raw SEV-SNP report (+ certificate table) or a TDX quote")
	enclave := fs.String("enclave", "", "the enclave's URL: read its attestation document (GET /.well-known/attestlog/attestation; over https, on a connection whose TLS key it must attest), or, from an enclave without an agent, evidence for a fresh nonce")
	challenge := fs.Bool("challenge", false, "with --enclave: ask for evidence bound to a fresh nonce (one hardware report, rate-limited by the enclave) instead of its attestation document")
	nonceHex := fs.String("nonce", "", "the nonce (hex) the evidence must bind (with --evidence)")
	proofPath := fs.String("proof", "", "tlog-proof file of the release (default: the one stapled to the evidence)")
	logURL := fs.String("log", "", "log URL: fetch the proof if none is stapled or given, and the release's revocations and reproductions")
	var related stringList
	fs.Var(&related, "related", "tlog-proof `FILE` of a revocation or reproduction seen (repeatable)")
	relayURL := fs.String("relay", "", "an OHTTP relay's URL for the enclave's gateway (http(s)://relay/g/NAME): read the attestation document and the gateway's key configurations through it, as an oblivious client does, and check they are the attested ones")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := 0
	for _, s := range []string{*evPath, *enclave, *relayURL} {
		if s != "" {
			given++
		}
	}
	if *policyPath == "" || given != 1 {
		fmt.Fprintln(fs.Output(), "--policy and exactly one of --evidence, --enclave and --relay are required")
		fs.Usage()
		return errUsage
	}
	v, err := verify.Load(*policyPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var in verify.Input
	switch {
	case *relayURL != "":
		if *proofPath != "" || *logURL != "" || len(related) > 0 || *challenge {
			return errors.New("--proof, --log, --related and --challenge do not work with --relay: the document is verified as the oblivious channel verifies it, with what it staples")
		}
		return verifyOblivious(ctx, v, *relayURL, *asJSON)
	case *enclave != "" && strings.HasPrefix(*enclave, "https://") && !*challenge:
		if *proofPath != "" || *logURL != "" || len(related) > 0 {
			return errors.New("--proof, --log and --related work with --evidence, or an http:// enclave URL; over https the document is verified as the channel verifies it: with what it staples")
		}
		return verifyChannel(ctx, v, *enclave, *asJSON)
	case *enclave != "":
		b, nonce, err := fetchEnclave(ctx, *enclave, *challenge)
		if err != nil {
			return err
		}
		in.Evidence, in.Nonce = b, nonce
	default:
		raw, err := readLimited(*evPath, evidence.MaxBundleSize)
		if err != nil {
			return err
		}
		b, _, err := evidence.Parse(raw)
		if err != nil {
			return err
		}
		in.Evidence = b
		if *nonceHex != "" {
			if in.Nonce, err = evidence.ParseNonce(*nonceHex); err != nil {
				return fmt.Errorf("--nonce: %w", err)
			}
		}
	}
	if *proofPath != "" {
		p, err := readProof(*proofPath)
		if err != nil {
			return err
		}
		in.Proof = p
	}
	for _, r := range related {
		p, err := readProof(r)
		if err != nil {
			return err
		}
		in.Related = append(in.Related, p)
	}
	if *logURL != "" {
		if err := fetchFromLog(ctx, *logURL, v, &in); err != nil {
			return err
		}
	}
	return printVerdict(v.Verify(in), *asJSON, "TRUSTED")
}

// fetchEnclave reads an enclave's attestation document over plain HTTP
// (or, with challenge or from an enclave without an agent, evidence for
// a fresh nonce, which it returns).
func fetchEnclave(ctx context.Context, url string, challenge bool) (*evidence.Bundle, []byte, error) {
	if !challenge {
		b, err := evidence.FetchDocument(ctx, nil, url)
		if !errors.Is(err, evidence.ErrNotFound) {
			return b, nil, err
		}
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	b, err := evidence.Fetch(ctx, nil, url, nonce)
	return b, nonce, err
}

// verifyChannel verifies an enclave agent as the attested channel does:
// its document, asked over a TLS connection whose key the document's key
// set must name.
func verifyChannel(ctx context.Context, v *verify.Verifier, url string, asJSON bool) error {
	c, err := channel.New(channel.NewVerifier(v, 0), url)
	if err != nil {
		return err
	}
	st, err := c.Verify(ctx)
	if st.Verdict == nil || errors.Is(err, channel.ErrKeyNotAttested) {
		if err == nil {
			err = errors.New("no verdict")
		}
		return &exitError{code: 1, err: err}
	}
	if !asJSON {
		fmt.Printf("attested channel: TLS key sha256:%s, key set %s valid until %s\n\n", st.TLSKey, st.KeySet, st.KeySetUntil.Format(time.RFC3339))
	}
	return printVerdict(st.Verdict, asJSON, "TRUSTED")
}

// verifyOblivious verifies an enclave through an OHTTP relay as the
// oblivious channel does: its document, and the gateway's key
// configurations, which must be the ones the document's key set commits to.
func verifyOblivious(ctx context.Context, v *verify.Verifier, relayURL string, asJSON bool) error {
	o, err := channel.NewOblivious(channel.NewVerifier(v, 0), relayURL)
	if err != nil {
		return err
	}
	st, err := o.Verify(ctx)
	if st.Verdict == nil || errors.Is(err, channel.ErrGatewayKeyMismatch) {
		if err == nil {
			err = errors.New("no verdict")
		}
		return &exitError{code: 1, err: err}
	}
	if !asJSON {
		if id, kem, ok := o.Key(); ok {
			fmt.Printf("oblivious HTTP: the gateway's key configurations are the attested ones; requests are sealed to key %d (%s), key set %s valid until %s\n\n", id, keyset.KEMName(kem), st.KeySet, st.KeySetUntil.Format(time.RFC3339))
		}
	}
	return printVerdict(st.Verdict, asJSON, "TRUSTED")
}

// printVerdict prints a verdict's checklist and conclusion (ok says what
// a verdict whose checks all passed means: TRUSTED, VALID), or its JSON,
// and returns exit status 1 when a check failed.
func printVerdict(vd *verify.Verdict, asJSON bool, ok string) error {
	if asJSON {
		fmt.Println(string(vd.JSON()))
	} else {
		fmt.Print(vd.Checks.String())
		if vd.OK() {
			fmt.Printf("\n%s: %s release %s (%s), entry %d of %s\n", ok, vd.Release.Platform, vd.Release.Version, vd.Release.Measurement, vd.Release.Index, vd.Release.Log)
			for _, w := range vd.Checks.Warnings() {
				fmt.Printf("WARNING: %s passed unverified, as the policy allows: %s\n", w.Name, w.Reason)
			}
		} else {
			fmt.Printf("\nNOT %s: %d of %d checks failed\n", ok, len(vd.Checks.Failed()), len(vd.Checks))
		}
	}
	if !vd.OK() {
		return &exitError{code: 1, err: errors.New("verification failed")}
	}
	return nil
}

// indexProofFor returns the index proof of the release p proves: from
// path if given, else fetched from the URL the policy gives its log (nil
// when neither: the verdict then says the proof is missing if the policy
// requires it).
func indexProofFor(path string, v *verify.Verifier, p *tlogproof.Proof) (*vindex.Proof, error) {
	if path != "" {
		b, err := readLimited(path, vindex.MaxProofSize)
		if err != nil {
			return nil, err
		}
		ip, err := vindex.ParseProof(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ip, nil
	}
	st, err := statement.ParseEntry(p.Extra)
	if err != nil || st.Release == nil {
		return nil, nil
	}
	origin, _, _ := strings.Cut(string(p.Checkpoint), "\n")
	l := v.Policy().Log(origin)
	if l == nil || l.URL == "" {
		return nil, nil
	}
	c, err := client.New(l.URL, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip, _, err := c.IdentityProof(ctx, p.Index)
	if err != nil {
		return nil, fmt.Errorf("fetching the index proof from %s: %w", l.URL, err)
	}
	return ip, nil
}

func readProof(path string) (*tlogproof.Proof, error) {
	b, err := readLimited(path, tlogproof.MaxSize)
	if err != nil {
		return nil, err
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// fetchFromLog fills in the release proof (when none is stapled or given)
// and the proofs of the release's revocations and reproductions. Fetching
// by measurement tells the log which enclave the client talks to; a
// stapled proof avoids that.
func fetchFromLog(ctx context.Context, logURL string, v *verify.Verifier, in *verify.Input) error {
	c, err := client.New(logURL, nil)
	if err != nil {
		return err
	}
	p := in.Proof
	if p == nil && in.Evidence != nil && in.Evidence.Proof != "" {
		if p, err = tlogproof.Parse([]byte(in.Evidence.Proof)); err != nil {
			return fmt.Errorf("stapled proof: %w", err)
		}
	}
	if p == nil {
		m := ""
		if res := v.Hardware(in.Evidence); res != nil {
			m = res.Measurement()
		}
		if m == "" {
			return errors.New("cannot fetch a proof: the evidence has no measurement")
		}
		if p, _, err = c.ProofByMeasurement(ctx, m); err != nil {
			if client.IsNotFound(err) {
				return fmt.Errorf("the log has no release with measurement %s", m)
			}
			return err
		}
		in.Proof = p
	}
	// The log's index proof for the release's identity: that nothing
	// revoked it (when none is stapled).
	ip := in.IndexProof
	if ip == nil && in.Evidence != nil && in.Evidence.IndexProof != "" {
		ip, _ = vindex.ParseProof([]byte(in.Evidence.IndexProof))
	}
	if ip == nil {
		if st, err := statement.ParseEntry(p.Extra); err == nil && st.Release != nil {
			if ip, _, err = c.IdentityProof(ctx, p.Index); err != nil {
				return fmt.Errorf("fetching the index proof of release %d's identity: %w", p.Index, err)
			}
			in.IndexProof = ip
		}
	}
	info, err := c.Entry(ctx, p.Index)
	if err != nil {
		return fmt.Errorf("looking up entry %d: %w", p.Index, err)
	}
	want := map[uint64]bool{}
	var order []uint64
	for _, r := range append(info.Revocations, info.Reproductions...) {
		if !want[r.Index] {
			want[r.Index] = true
			order = append(order, r.Index)
		}
	}
	// And the revocations of other releases with the identity: whether
	// one counts depends on who signed it, which only its entry shows.
	if ip != nil {
		for _, it := range ip.Items {
			if it.Kind == vindex.KindRevocation && !want[it.Index] {
				want[it.Index] = true
				order = append(order, it.Index)
			}
		}
	}
	for _, idx := range order {
		// An entry the index already lists may not be under a witnessed
		// checkpoint yet: wait for one (bounded by ctx).
		rp, _, err := c.WaitProof(ctx, idx)
		if err != nil {
			return fmt.Errorf("fetching proof of entry %d: %w", idx, err)
		}
		in.Related = append(in.Related, rp)
	}
	return nil
}
