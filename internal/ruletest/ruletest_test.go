package ruletest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/client"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

const origin = "ruletest.attestlog/log"

// An entry of a case: a release of the case's identity (by signer, and
// co-signed by cosigners), or a revocation (by signer) of release ref.
type entry struct {
	release   bool
	signer    string
	cosigners []string
	ref       int // the case's entry number a revocation names
}

func rel(signer string, cosigners ...string) entry {
	return entry{release: true, signer: signer, cosigners: cosigners}
}
func revoke(signer string, ref int) entry { return entry{signer: signer, ref: ref} }

// TestRevocationRuleEveryCaller: each case is a log — releases of one
// identity and revocations of them, signed by operators acme and beta and
// authority sec (or a stranger) — and what must follow from it:
//   - revoked: for each release, whether a client's decision says revoked;
//   - the auditor's watch of a deployment with that identity says
//     revoked-release-served exactly when every release is revoked;
//   - admit: whether the log admits a new release of the identity by acme.
func TestRevocationRuleEveryCaller(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		revoked []bool // by release, in order
		admit   bool
	}{
		{"no revocation", []entry{rel("acme")}, []bool{false}, true},
		{"its operator revokes it", []entry{rel("acme"), revoke("acme", 0)}, []bool{true}, false},
		{"its operator revokes another of its releases", []entry{rel("acme"), rel("acme"), revoke("acme", 1)}, []bool{true, true}, false},
		{"an authority revokes it", []entry{rel("acme"), revoke("sec", 0)}, []bool{true}, false},
		{"another operator revokes its own release of the identity", []entry{rel("acme"), rel("beta"), revoke("beta", 1)}, []bool{false, true}, true},
		{"an authority revokes another operator's release", []entry{rel("acme"), rel("beta"), revoke("sec", 1)}, []bool{true, true}, false},
		// A reinstatement is of the release an authority co-signed: a
		// later release by the operator alone is revoked again by the
		// earlier revocation (and so refused).
		{"reinstated by an authority", []entry{rel("acme"), revoke("acme", 0), rel("acme", "sec")}, []bool{true, false}, false},
		{"reinstated, then revoked again", []entry{rel("acme"), revoke("acme", 0), rel("acme", "sec"), revoke("acme", 2)}, []bool{true, true}, false},
		// Either operator that signed a release may revoke it — and
		// only its own: acme's release alone is no business of beta's.
		{"a release signed by two operators, revoked by either", []entry{rel("acme", "beta"), revoke("beta", 0)}, []bool{true}, true},
		{"a stranger's revocation", []entry{rel("acme"), revoke("stranger", 0)}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc.entries, tc.revoked, tc.admit) })
	}
}

func runCase(t *testing.T, entries []entry, revoked []bool, admit bool) {
	ctx := t.Context()
	dir := t.TempDir()
	signers := map[string]*statement.Signer{}
	var pol strings.Builder
	for _, n := range []string{"acme", "beta", "sec", "stranger"} {
		s, err := statement.GenerateSigner(statement.AlgEd25519)
		if err != nil {
			t.Fatal(err)
		}
		signers[n] = s
		switch n {
		case "acme", "beta":
			fmt.Fprintf(&pol, "operator %s %s\n", n, s.Public())
		case "sec":
			fmt.Fprintf(&pol, "authority %s %s\n", n, s.Public())
		}
	}
	m := make([]byte, 48)
	m[47] = 0x42
	enc, err := enclave.NewSNP(m)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("root.pem", string(enc.RootPEM()))
	policyPath := write("policy.txt", pol.String())
	witnesses := write("witnesses.txt", "quorum none\n")

	// The log.
	keyPath := filepath.Join(dir, "log.key")
	if _, err := keyfile.Generate(keyfile.KindLog, origin, keyPath, ""); err != nil {
		t.Fatal(err)
	}
	vkey, err := keyfile.Public(keyfile.KindLog, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	cfg := &logserver.Config{Origin: origin, Listen: "127.0.0.1:0", Key: keyPath,
		Storage: logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: filepath.Join(dir, "tiles")}},
		Index:   filepath.Join(dir, "index.db"), Policy: policyPath, WitnessPolicy: witnesses,
		BatchMaxAge: 10 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond, IndexCheckpoints: &on}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lg, err := logserver.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(lg.Handler())
	t.Cleanup(func() { srv.Close(); lg.Close(context.Background()) })
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The case's entries.
	release := func(n int, signer string, cosigners ...string) []byte {
		p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}, &statement.Release{
			Version: fmt.Sprintf("1.0.%d", n), Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%x", m)}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var more []*statement.Signer
		for _, n := range cosigners {
			more = append(more, signers[n])
		}
		e, err := statement.Sign(p, signers[signer], more...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var idx []uint64
	var bodies [][]byte
	var releases []uint64
	for n, e := range entries {
		var body []byte
		if e.release {
			body = release(n, e.signer, e.cosigners...)
		} else {
			p, err := statement.EncodeRevocation(statement.RefOf(idx[e.ref], bodies[e.ref]), &statement.Revocation{Reason: "r", Time: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			if body, err = statement.Sign(p, signers[e.signer]); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.Add(ctx, body)
		if err != nil && revoked == nil {
			// The case is one the log refuses (a revocation by a signer
			// who may not revoke): no client or auditor ever sees it.
			if !strings.Contains(err.Error(), "403") {
				t.Errorf("entry %d: %v, want 403", n, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("entry %d: %v", n, err)
		}
		idx, bodies = append(idx, r.Index), append(bodies, body)
		if e.release {
			releases = append(releases, r.Index)
		}
		// Wait until the log has indexed it (a revocation names an
		// integrated release).
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := c.Entry(ctx, r.Index); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("entry %d not indexed", r.Index)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. The client's decision, per release: its proof, the index proof
	// of its identity (current, listing every entry so far), and every
	// revocation as a related proof.
	v, err := verify.Parse([]byte(fmt.Sprintf("log %s\nquorum none\n%srevocation-proof required\n", vkey, pol.String())))
	if err != nil {
		t.Fatal(err)
	}
	last := idx[len(idx)-1]
	var related []*tlogproof.Proof
	for n, e := range entries {
		if !e.release {
			p, _, err := c.WaitProof(ctx, idx[n])
			if err != nil {
				t.Fatal(err)
			}
			related = append(related, p)
		}
	}
	for i, r := range releases {
		var ip *vindex.Proof
		deadline := time.Now().Add(20 * time.Second)
		for {
			ip, _, err = c.IdentityProof(ctx, r)
			if err == nil {
				if ic, err := statement.ParseIndexCheckpoint(ip.Commit.Extra); err == nil && ic.Size > last {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no index proof covering entry %d: %v", last, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		p, _, err := c.WaitProof(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		vd := v.VerifyProof(p, related, ip)
		ch, _ := vd.Checks.Find(verify.NotRevoked)
		if got := !ch.OK; got != revoked[i] {
			t.Errorf("the client's decision on release %d (entry %d): revoked %v, want %v (%s)", i, r, got, revoked[i], ch.Reason)
		}
	}

	// 2. The auditor's watch of a deployment with the identity.
	esrv := httptest.NewServer(evidence.Handler(enc, nil))
	t.Cleanup(esrv.Close)
	acfg, err := auditor.ParseConfig([]byte(fmt.Sprintf("db: %s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: %s\n    witness_policy: %s\nrebuild: {enabled: false}\ndeployments:\n  - {name: d, url: %q, policy: %q, allow_private: true}\n",
		filepath.Join(dir, "a.db"), vkey, srv.URL, policyPath, witnesses, esrv.URL, write("deploy-policy.txt", "platform sev-snp\ntrust-root sev-snp root.pem\n"))))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auditor.Open(ctx, acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	allRevoked := true
	for _, r := range revoked {
		allRevoked = allRevoked && r
	}
	want := "ok"
	if allRevoked {
		want = auditor.AlertRevokedReleaseServed
	}
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for {
		if err := a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Deployments) == 1 {
			got = st.Deployments[0].Verdict
		}
		if got == want || (got != "pending" && got != "" && time.Now().After(deadline)) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != want {
		t.Errorf("the auditor's deployment watch: %q, want %q", got, want)
	}

	// 3. Admission (last: an admitted release would change what the
	// auditor sees): a new release of the identity by acme.
	resp, err := http.Post(srv.URL+"/add", "application/json", strings.NewReader(string(release(99, "acme"))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.StatusCode == 200; got != admit {
		t.Errorf("the log's admission of a new release by acme: %d, want admitted %v", resp.StatusCode, admit)
	}
}
