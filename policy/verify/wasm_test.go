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

	// Cloud evidence: a Google Cloud TD (event log, Google endorsement) and
	// a TDX 1.5 TD with stapled Intel collateral.
	gcp, err := fakeenclave.NewGCPTDX(mustHex(f.m), fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	tdx15, err := fakeenclave.NewTDX15(mustHex(f.m), fakeenclave.TDX15{})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"gcproot.pem": gcp.RootPEM(), "gce.pem": gcp.EndorsementRootPEM(), "tdx15root.pem": tdx15.RootPEM()} {
		files[name] = string(b)
		writeFile(t, f.dir, name, b)
	}
	gcpEv, _ := gcp.Evidence(ctx, n)
	hw, _ := Parse([]byte(policyText("trust-root tdx gcproot.pem\n")), WithFS(os.DirFS(f.dir)))
	rt := hw.hw.Inspect(gcpEv).TDX
	tdxIdx := f.log.add(signedRelease(t, f, &statement.TDXMeasurements{MRTD: f.m, RTMR0: rt.RTMR0, RTMR1: rt.RTMR1, RTMR2: rt.RTMR2, FirmwareEndorsement: statement.FirmwareEndorsedByGoogle}))
	stapleTDX := func(ev *evidence.Bundle) string {
		ev.Proof = string(f.log.proof(tdxIdx, 2).Marshal())
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	gcpPolicy := policyText("trust-root tdx gcproot.pem\ntrust-root gce-tcb gce.pem\n")
	add("google cloud TD", gcpPolicy, stapleTDX(gcpEv), n, now, true)
	altered, _ := gcp.Evidence(ctx, n)
	altered.EventLog = append([]byte(nil), altered.EventLog[:len(altered.EventLog)-1]...)
	add("google cloud TD, event log altered", gcpPolicy, stapleTDX(altered), n, now, false)
	noRoot, _ := gcp.Evidence(ctx, n)
	add("google cloud TD, no endorsement root", policyText("trust-root tdx gcproot.pem\n"), stapleTDX(noRoot), n, now, false)
	// The TDX 1.5 TD is another release (no RTMRs, no endorsement).
	t15Idx := f.log.add(signedRelease(t, f, &statement.TDXMeasurements{MRTD: f.m}))
	coll, err := tdx15.TDXCollateral(now.Add(-time.Hour), fakeenclave.TCBStatuses{Platform: "SWHardeningNeeded", QE: "UpToDate", Advisories: []string{"INTEL-SA-00837"}})
	if err != nil {
		t.Fatal(err)
	}
	tdx15.SetTDXCollateral(coll)
	t15 := func() string {
		ev, _ := tdx15.Evidence(ctx, n)
		ev.Proof = string(f.log.proof(t15Idx, 2).Marshal())
		b, _ := ev.Marshal()
		return string(b)
	}
	add("TDX 1.5, SWHardeningNeeded allowed", policyText("trust-root tdx tdx15root.pem\ntdx-allow-tcb-status SWHardeningNeeded\n"), t15(), n, now, true)
	add("TDX 1.5, SWHardeningNeeded not allowed", policyText("trust-root tdx tdx15root.pem\n"), t15(), n, now, false)

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
import { readFileSync } from "node:fs";
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
// Exit once the output is flushed: a pipe takes it asynchronously, and
// exiting at once cuts it at 64 KiB.
process.stdout.write(JSON.stringify({ loadMs, out, sigstore }) + "\n", () => process.exit(0));
`), 0o644)
	cmd := exec.CommandContext(ctx, node, script, vpath)
	cmd.Dir = pkg
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
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
