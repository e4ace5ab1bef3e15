//go:build !js

package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/internal/wasmbuild"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/evidence"
)

// wasmVector is one decision, made natively and by the npm package.
type wasmVector struct {
	Name     string            `json:"name"`
	Policy   string            `json:"policy"`
	Files    map[string]string `json:"files"`
	Evidence string            `json:"evidence"`
	Nonce    string            `json:"nonce"`
	Now      string            `json:"now"`
	Native   string            `json:"-"`
	WantOK   bool              `json:"-"`
}

// TestVerdictsUnderWasm builds the npm package from this repository (the
// WebAssembly module and its JavaScript wrapper), runs the same decisions
// natively and in it under Node, and requires the same Verdict JSON, byte
// for byte: the good case and the tampered report, wrong nonce, missing
// quorum, revoked measurement and stale checkpoint.
func TestVerdictsUnderWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly module")
	}
	node := testenv.LookPath(t, "node")
	testenv.LookPath(t, "go")
	pkg := t.TempDir()
	ctx := context.Background()
	res, err := wasmbuild.Build(ctx, "../..", filepath.Join(pkg, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("module: %d bytes, %d gzipped", res.Raw, res.Gzipped)
	for _, name := range []string{"index.js", "package.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "npm", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(pkg, name), b, 0o644)
	}

	f := newFixture(t)
	relIdx := f.log.add(f.release(t, f.operator, f.m))
	n := nonce()
	now := time.Now().UTC().Truncate(time.Second)
	policyText := func(extra string) string {
		f.policy(t, extra)
		b, err := os.ReadFile(filepath.Join(f.dir, "policy.txt"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	staple := func(ev *evidence.Bundle, cosigners int) string {
		ev.Proof = string(f.log.proof(relIdx, cosigners).Marshal())
		ev.IndexProof = string(f.log.indexProof(t, f.m, cosigners).Marshal())
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	root, _ := os.ReadFile(filepath.Join(f.dir, "root.pem"))
	files := map[string]string{"root.pem": string(root)}
	strict := "revocation-proof required\nmax-checkpoint-age 1h\n"
	var vs []*wasmVector
	add := func(name, pol, ev string, nonce []byte, at time.Time, wantOK bool) {
		vs = append(vs, &wasmVector{Name: name, Policy: pol, Files: files, Evidence: ev, Nonce: hex.EncodeToString(nonce), Now: at.Format(time.RFC3339), WantOK: wantOK})
	}
	add("trusted", policyText(strict), staple(f.evidence(t, n), 2), n, now, true)
	tampered := f.evidence(t, n)
	tampered.Report[0x90] ^= 1
	add("tampered report", policyText(strict), staple(tampered, 2), n, now, false)
	add("wrong nonce", policyText(strict), staple(f.evidence(t, n), 2), nonce(), now, false)
	add("missing quorum", policyText(strict), staple(f.evidence(t, n), 1), n, now, false)
	add("stale checkpoint", policyText(strict), staple(f.evidence(t, n), 2), n, now.Add(2*time.Hour), false)
	// Revoked: another release of the measurement, revoked; the index
	// proof stapled lists the revocation.
	other := f.log.add(f.release(t, f.operator, f.m))
	rv, _ := statement.EncodeRevocation(statement.RefOf(other, f.log.entries[other]), &statement.Revocation{Reason: "CVE-2026-21", Time: now.Add(-time.Hour)})
	rve, _ := statement.Sign(rv, f.operator)
	f.log.add(rve)
	add("revoked", policyText(strict), staple(f.evidence(t, n), 2), n, now, false)

	// The clouds' SEV-SNP (demo signers under test roots): AWS's VLEK with
	// provisional firmware, and Turin's struct-version-1 VCEK and TCB
	// layout. The release's measurement is theirs too; its revocation
	// above is of another entry, so run them without the index proof.
	for _, c := range []struct {
		name, root, extra string
		mk                func([]byte, ...fakeenclave.Option) (*fakeenclave.Enclave, error)
		ok                bool
	}{
		{"AWS VLEK, provisional firmware accepted", "aws-root.pem", "snp-allow-provisional-firmware\n", fakeenclave.NewAWS, true},
		{"AWS VLEK, provisional firmware not accepted", "aws-root.pem", "", fakeenclave.NewAWS, false},
		{"Turin", "turin-root.pem", "snp-min-tcb turin fmc=1 snp=4\n", fakeenclave.NewTurin, true},
		{"Turin below its FMC floor", "turin-root.pem", "snp-min-tcb turin fmc=2\n", fakeenclave.NewTurin, false},
	} {
		e, err := c.mk(mustHex(f.m))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, f.dir, c.root, e.RootPEM())
		files[c.root] = string(e.RootPEM())
		ev, err := e.Evidence(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ev.Proof = string(f.log.proof(relIdx, 2).Marshal())
		b, _ := ev.Marshal()
		add(c.name, policyText("trust-root sev-snp "+c.root+"\n"+c.extra), string(b), n, now, c.ok)
	}

	// Natively, from the same text and bytes (the first decision timed
	// cold: a new verifier, as the Node run below starts).
	var nativeCold time.Duration
	for i, v := range vs {
		t0 := time.Now()
		at, _ := time.Parse(time.RFC3339, v.Now)
		ver, err := Parse([]byte(v.Policy), WithFS(os.DirFS(f.dir)), WithClock(func() time.Time { return at }))
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := evidence.Parse([]byte(v.Evidence))
		if err != nil {
			t.Fatal(err)
		}
		nb, _ := hex.DecodeString(v.Nonce)
		vd := ver.Verify(Input{Evidence: b, Nonce: nb})
		if vd.OK() != v.WantOK {
			t.Fatalf("%s: natively OK = %v, want %v: %v", v.Name, vd.OK(), v.WantOK, failed(vd))
		}
		v.Native = string(vd.JSON())
		if i == 0 {
			nativeCold = time.Since(t0)
		}
	}

	// Under Node, through the npm package.
	vj, _ := json.Marshal(vs)
	vpath := filepath.Join(pkg, "vectors.json")
	os.WriteFile(vpath, vj, 0o644)
	script := filepath.Join(pkg, "run.mjs")
	os.WriteFile(script, []byte(`import { verifyJSON, load } from "./index.js";
import { readFileSync, writeFileSync } from "node:fs";
const vs = JSON.parse(readFileSync(process.argv[2], "utf8"));
let t0 = performance.now();
await load();
const loadMs = performance.now() - t0;
const out = [];
for (const v of vs) {
  t0 = performance.now();
  out.push({ verdict: await verifyJSON(v.policy, v.evidence, v.nonce, { files: v.files, now: v.now }), ms: performance.now() - t0 });
}
// The module is built without Sigstore: a policy that needs it is refused.
let sigstore = "";
try {
  await verifyJSON("sigstore-root root.json\nbuilder ci issuer=https://token.actions.githubusercontent.com subject-regex=.*\n" + vs[0].policy, vs[0].evidence, vs[0].nonce, { files: { "root.json": "{}", ...vs[0].files }, now: vs[0].now });
  sigstore = "accepted";
} catch (e) {
  sigstore = e.message;
}
// To a file: console.log to a pipe followed by process.exit loses what
// is past the pipe's 64 KiB buffer.
writeFileSync(process.argv[3], JSON.stringify({ loadMs, out, sigstore }));
process.exit(0);
`), 0o644)
	opath := filepath.Join(pkg, "verdicts.json")
	cmd := exec.CommandContext(ctx, node, script, vpath, opath)
	cmd.Dir = pkg
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	outb, err := os.ReadFile(opath)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sigstore string  `json:"sigstore"`
		LoadMs   float64 `json:"loadMs"`
		Out      []struct {
			Verdict string  `json:"verdict"`
			Ms      float64 `json:"ms"`
		} `json:"out"`
	}
	if err := json.Unmarshal(outb, &got); err != nil || len(got.Out) != len(vs) {
		t.Fatalf("node printed %q (%v)", outb, err)
	}
	t.Logf("Node: module loaded in %.0f ms; first (cold) decision %.1f ms; natively in this run %.2f ms (%.0f×)", got.LoadMs, got.Out[0].Ms, float64(nativeCold.Microseconds())/1000, got.Out[0].Ms/(float64(nativeCold.Microseconds())/1000))
	if !strings.Contains(got.Sigstore, "verifies no Sigstore bundles") {
		t.Errorf("a policy with sigstore-root under the module built without Sigstore: %q, want it refused as such", got.Sigstore)
	}
	for i, v := range vs {
		if got.Out[i].Verdict != v.Native {
			t.Errorf("%s: the WebAssembly verdict differs from the native one:\nnative: %s\nwasm:   %s", v.Name, v.Native, got.Out[i].Verdict)
			continue
		}
		var top struct {
			OK bool `json:"ok"`
		}
		if err := json.Unmarshal([]byte(got.Out[i].Verdict), &top); err != nil || top.OK != v.WantOK {
			t.Errorf("%s: the WebAssembly verdict says ok %v (%v), want %v", v.Name, top.OK, err, v.WantOK)
		}
	}
}
