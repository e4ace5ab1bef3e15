package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/verify"
)

func init() {
	register("get", "fetch one entry of a log with its proof and print the statement (like rekor-cli get)", runGet)
	register("search", "list a log's entries with a measurement or artifact digest (like rekor-cli search)", runSearch)
	register("verify-proof", "check a saved .tlog-proof on its own: checkpoint, witnesses, inclusion, signer, policy", runVerifyProof)
	allowsArgs["attestlog verify-proof"] = true
}

func runGet(args []string) error {
	fs := newFlagSet("get", "--log URL --index N [--policy FILE] [--proof-out FILE] [--json]")
	logURL := fs.String("log", "", "log URL")
	idx := fs.Int64("index", -1, "entry index")
	policyPath := fs.String("policy", "", "also verify the entry's proof under this trust policy (as verify-proof does)")
	proofOut := fs.String("proof-out", "", "write the entry's c2sp.org/tlog-proof to `FILE`")
	asJSON := fs.Bool("json", false, "print the statement (the signed in-toto payload) as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *idx < 0 {
		return usageError(fs, "--log and --index are required")
	}
	c, err := client.New(*logURL, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, raw, err := c.Proof(ctx, uint64(*idx))
	if err != nil {
		return err
	}
	if *proofOut != "" {
		if err := os.WriteFile(*proofOut, raw, 0o644); err != nil {
			return err
		}
	}
	// What is printed comes from the entry itself (inside the proof), not
	// from the log's index.
	st, perr := statement.ParseEntry(p.Extra)
	switch {
	case perr != nil:
		fmt.Printf("entry %d: not a statement this client reads: %v\n", p.Index, perr)
	case *asJSON:
		payload, _ := json.Marshal(st.Statement)
		var b bytes.Buffer
		json.Indent(&b, payload, "", "  ")
		fmt.Println(b.String())
	default:
		printStatement(p.Index, st)
	}
	if *policyPath != "" {
		v, err := verify.Load(*policyPath)
		if err != nil {
			return err
		}
		ip, err := indexProofFor("", v, p)
		if err != nil {
			return err
		}
		return printVerdict(v.VerifyProof(p, nil, ip), *asJSON, "VALID")
	}
	if perr != nil {
		return &exitError{code: 1, err: perr}
	}
	return nil
}

// printStatement prints what a statement says, for a person.
func printStatement(idx uint64, st *statement.Parsed) {
	signer := "keyless (a Sigstore bundle)"
	if st.Envelope != nil {
		var ids []string
		for _, s := range st.Envelope.Signatures {
			ids = append(ids, s.KeyID)
		}
		signer = "key " + strings.Join(ids, ", ")
	}
	fmt.Printf("entry:       %d\nkind:        %s\nsigned by:   %s (not verified; add --policy to verify)\n", idx, st.Kind, signer)
	switch st.Kind {
	case statement.KindRelease:
		r := st.Release
		fmt.Printf("version:     %s\nplatform:    %s\ntime:        %s\nmeasurement: %s\nsource:      %s @ %s\n",
			r.Version, r.Platform, r.Time.Format(time.RFC3339), r.Measurements.Primary(), r.Source.Repo, r.Source.Commit)
		for _, a := range st.Statement.Subject {
			for alg, d := range a.Digest.Set() {
				fmt.Printf("artifact:    %s %s:%s\n", a.Name, alg, d)
			}
		}
		fmt.Printf("recipe:      %s\nprovenance:  %v\n", strings.Join(r.Recipe.Argv, " "), len(r.Provenance) > 0)
	case statement.KindReproduction:
		r := st.Reproduction
		fmt.Printf("release:     %d\noutcome:     %s\nmeasurement: %s\ntime:        %s\n", st.Ref.Index, r.Outcome, r.Measurements.Primary(), r.Time.Format(time.RFC3339))
	case statement.KindRevocation:
		r := st.Revocation
		fmt.Printf("release:     %d\nreason:      %s\nadvisory:    %s\ntime:        %s\n", st.Ref.Index, r.Reason, r.Advisory, r.Time.Format(time.RFC3339))
	}
}

func runSearch(args []string) error {
	fs := newFlagSet("search", "--log URL --policy FILE (--measurement HEX | --digest HEX) [--type TYPE] [--json]")
	logURL := fs.String("log", "", "log URL")
	policyPath := fs.String("policy", "", "trust policy `FILE` naming the log and its witness quorum: the answer is verified before it is printed")
	m := fs.String("measurement", "", "a launch digest, MRTD, RTMR or MRCONFIGID (hex)")
	d := fs.String("digest", "", "an artifact's sha256, sha384 or sha512 (hex)")
	typ := fs.String("type", "", "the one key `TYPE` to look under (default: every measurement register, or the artifact digest of the value's size): "+fmt.Sprint(vindex.KeyTypes[1:]))
	asJSON := fs.Bool("json", false, "print the verified answer as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logURL == "" || *policyPath == "" || (*m == "") == (*d == "") {
		return usageError(fs, "--log, --policy and exactly one of --measurement and --digest are required")
	}
	q := strings.ToLower(*m + *d)
	raw, err := hex.DecodeString(q)
	if err != nil {
		return usageError(fs, "the value must be hex")
	}
	// The index types every key: a measurement is looked up under each
	// register it could be, an artifact digest under its algorithm.
	var types []vindex.KeyType
	switch {
	case *typ != "":
		t, err := vindex.ParseKeyType(*typ)
		if err != nil || t == vindex.KeyIdentity {
			return usageError(fs, fmt.Sprintf("--type: want one of %v", vindex.KeyTypes[1:]))
		}
		types = []vindex.KeyType{t}
	case *m != "":
		types = []vindex.KeyType{vindex.KeySNPLaunchDigest, vindex.KeyTDXMRTD, vindex.KeyTDXRTMR0, vindex.KeyTDXRTMR1, vindex.KeyTDXRTMR2, vindex.KeyTDXRTMR3, vindex.KeyTDXMRConfigID}
	default:
		types = []vindex.KeyType{vindex.KeyArtifactSHA256, vindex.KeyArtifactSHA384, vindex.KeyArtifactSHA512}
	}
	var fit []vindex.KeyType
	for _, t := range types {
		if t.CheckDigest(raw) == nil {
			fit = append(fit, t)
		}
	}
	if len(fit) == 0 {
		return usageError(fs, fmt.Sprintf("a value of %d bytes is none of %v", len(raw), types))
	}
	pol, err := policy.Load(*policyPath)
	if err != nil {
		return err
	}
	c, err := client.New(*logURL, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type row struct {
		Type    string  `json:"type"`
		Index   uint64  `json:"index"`
		Kind    string  `json:"kind"`
		Version string  `json:"version,omitempty"`
		Ref     *uint64 `json:"ref,omitempty"`
	}
	var rows []row
	var ver *vindex.Verified
	var cp *policy.Checkpoint
	for _, t := range fit {
		// The answer is the log's index proof, checked under the policy:
		// a witnessed checkpoint, the log's index checkpoint in it, and
		// the map proof — so "none" is a proof of absence, not the log's
		// word.
		ip, _, err := c.IndexProof(ctx, t, q)
		if err != nil {
			return err
		}
		if ip.Type != t || hex.EncodeToString(ip.Digest) != q {
			return fmt.Errorf("the log answered for %s %s, not %s %s", ip.Type, hex.EncodeToString(ip.Digest), t, q)
		}
		if ver, cp, err = pol.VerifyIndexProof(ip); err != nil {
			return fmt.Errorf("the log's answer does not verify: %w", err)
		}
		for _, it := range ver.Items {
			r := row{Type: string(t), Index: it.Index, Kind: vindex.KindName(it.Kind)}
			// Details come from the entry itself, proven in the log.
			if p, _, err := c.Proof(ctx, it.Index); err == nil {
				if pcp, err := pol.VerifyCheckpoint(p.Checkpoint); err == nil && p.VerifyInclusion(p.Extra, pcp.N, pcp.Hash) == nil {
					if st, err := statement.ParseEntry(p.Extra); err == nil {
						if st.Release != nil {
							r.Version = st.Release.Version
						} else if st.Kind == statement.KindReproduction || st.Kind == statement.KindRevocation {
							ref := st.Ref.Index
							r.Ref = &ref
						}
					}
				}
			}
			rows = append(rows, r)
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(struct {
			Key         string `json:"key"`
			IndexCovers uint64 `json:"index_covers"`
			Checkpoint  int64  `json:"checkpoint_size"`
			Entries     []row  `json:"entries"`
		}{q, ver.Checkpoint.Size, cp.N, rows}, "", "  ")
		fmt.Println(string(b))
	} else {
		for _, r := range rows {
			switch {
			case r.Version != "":
				fmt.Printf("%d\t%s\t%s\t%s\n", r.Index, r.Kind, r.Version, r.Type)
			case r.Ref != nil:
				fmt.Printf("%d\t%s\tof %d\t%s\n", r.Index, r.Kind, *r.Ref, r.Type)
			default:
				fmt.Printf("%d\t%s\t\t%s\n", r.Index, r.Kind, r.Type)
			}
		}
		fmt.Fprintf(stderr, "(verified: the log's index over its first %d entries, under a checkpoint of size %d cosigned by %v)\n", ver.Checkpoint.Size, cp.N, cp.CosignerNames())
	}
	if len(rows) == 0 {
		fmt.Printf("no entry among the first %d of %s has %s as any of %v (proven absent)\n", ver.Checkpoint.Size, cp.Log.Origin, q, fit)
		return &exitError{code: 1, err: errors.New("not found")}
	}
	return nil
}

func runVerifyProof(args []string) error {
	fs := newFlagSet("verify-proof", "--policy FILE [--related FILE]... [--index-proof FILE] [--json] PROOF")
	policyPath := fs.String("policy", "", "trust policy file (the log, its witnesses and quorum, operators)")
	indexPath := fs.String("index-proof", "", "the log's index proof `FILE` for the release's measurement (default: fetched from the URL of the policy's log line)")
	var related stringList
	fs.Var(&related, "related", "tlog-proof `FILE` of a revocation or reproduction of the release (repeatable)")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if *policyPath == "" || fs.NArg() != 1 {
		return usageError(fs, "--policy and one PROOF file are required")
	}
	v, err := verify.Load(*policyPath)
	if err != nil {
		return err
	}
	p, err := readProof(fs.Arg(0))
	if err != nil {
		return err
	}
	var rs []*tlogproof.Proof
	for _, r := range related {
		rp, err := readProof(r)
		if err != nil {
			return err
		}
		rs = append(rs, rp)
	}
	ip, err := indexProofFor(*indexPath, v, p)
	if err != nil {
		return err
	}
	return printVerdict(v.VerifyProof(p, rs, ip), *asJSON, "VALID")
}
