//go:build !js

package verify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/chromedp/chromedp"

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
// natively and in it — under Node with WebCrypto verifying signatures and
// with Go's code, and in Chromium — and requires the same Verdict JSON,
// byte for byte: the good case and the tampered report, wrong nonce,
// missing quorum, revoked measurement and stale checkpoint. It logs the
// time of each against the native decision's in the same run.
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
	// The npm package's size budget (issue 30): a page downloads the
	// module before it can decide anything.
	const budget = 4_000_000
	if res.Gzipped > budget {
		t.Errorf("the module is %d bytes gzipped, over the package's budget of %d", res.Gzipped, budget)
	}
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

	// Cloud evidence: a Google Cloud TD (event log, Google endorsement) and
	// a TDX 1.5 TD with stapled Intel collateral.
	gcp, err := fakeenclave.NewGCPTDX(mustHex(f.m), fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"})
	if err != nil {
		t.Fatal(err)
	}
	stapleCollateral(t, gcp)
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

	// Natively, from the same text and bytes: each vector with a new
	// verifier (cold as a client that has seen nothing of this log), in
	// a process whose code has run before (as a module's code has once it
	// decided once).
	decideNative := func(v *wasmVector) *Verdict {
		t.Helper()
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
		return ver.Verify(Input{Evidence: b, Nonce: nb})
	}
	native := make([]time.Duration, len(vs))
	for i, v := range vs {
		t0 := time.Now()
		vd := decideNative(v)
		native[i] = time.Since(t0)
		if vd.OK() != v.WantOK {
			t.Fatalf("%s: natively OK = %v, want %v: %v", v.Name, vd.OK(), v.WantOK, failed(vd))
		}
		v.Native = string(vd.JSON())
	}
	nativeFirst := float64(native[0].Microseconds()) / 1000
	var again, againCPU []float64 // the first vector, each time with a new verifier
	for range 7 {
		c0, t0 := cpuMs(), time.Now()
		decideNative(vs[0])
		again = append(again, float64(time.Since(t0).Microseconds())/1000)
		againCPU = append(againCPU, cpuMs()-c0)
	}
	nativeMs, nativeCPU := median(again), median(againCPU)

	// Through the npm package: under Node with WebCrypto verifying
	// signatures and without (Go's code), and in Chromium.
	vj, _ := json.Marshal(vs)
	vpath := filepath.Join(pkg, "vectors.json")
	os.WriteFile(vpath, vj, 0o644)
	os.WriteFile(filepath.Join(pkg, "run.mjs"), []byte(`import { readFileSync, writeFileSync } from "node:fs";
import * as api from "./index.js";
import { decide } from "./decide.mjs";
if (process.argv[4] === "liar") {
  // A WebCrypto that finds every signature valid: the self-test must
  // catch it, and Go's code decide.
  // (Under Node the package verifies through node:crypto: that lies too.)
  globalThis.crypto.subtle.verify = async () => true;
  globalThis.__attestlogNodeVerify = () => true;
}
const r = await decide(api, JSON.parse(readFileSync(process.argv[2], "utf8")), process.argv[4] !== "off");
writeFileSync(process.argv[3], JSON.stringify(r));
process.exit(0);
`), 0o644)
	// decide loads the module, decides every vector once in order, then
	// the first again, each with a new verifier; and tries a policy that
	// needs Sigstore, which this build refuses.
	os.WriteFile(filepath.Join(pkg, "decide.mjs"), []byte(`export async function decide(api, vs, webCrypto) {
  let t0 = performance.now();
  await api.load({ webCrypto });
  const loadMs = performance.now() - t0;
  const out = [];
  for (const v of [...vs, vs[0]]) {
    t0 = performance.now();
    out.push({ verdict: await api.verifyJSON(v.policy, v.evidence, v.nonce, { files: v.files, now: v.now }), ms: performance.now() - t0 });
  }
  const again = [], againCPU = []; // the first vector, each time with a new verifier
  const cpu = () => { const u = globalThis.process && typeof process.cpuUsage === "function" ? process.cpuUsage() : { user: 0, system: 0 }; return (u.user + u.system) / 1000; };
  for (let i = 0; i < 7; i++) {
    const v = vs[0];
    t0 = performance.now();
    const c0 = cpu();
    await api.verifyJSON(v.policy, v.evidence, v.nonce, { files: v.files, now: v.now });
    again.push(performance.now() - t0);
    againCPU.push(cpu() - c0);
  }
  let sigstore = "";
  try {
    await api.verifyJSON("sigstore-root root.json\nbuilder ci issuer=https://token.actions.githubusercontent.com subject-regex=.*\n" + vs[0].policy, vs[0].evidence, vs[0].nonce, { files: { "root.json": "{}", ...vs[0].files }, now: vs[0].now });
    sigstore = "accepted";
  } catch (e) {
    sigstore = e.code + ": " + e.message;
  }
  return { loadMs, out, again, againCPU, sigstore, crypto: (await api.info()).crypto };
}
`), 0o644)
	type result struct {
		Sigstore string    `json:"sigstore"`
		LoadMs   float64   `json:"loadMs"`
		Again    []float64 `json:"again"`
		AgainCPU []float64 `json:"againCPU"`
		Out      []struct {
			Verdict string  `json:"verdict"`
			Ms      float64 `json:"ms"`
		} `json:"out"`
		Crypto struct {
			WebCrypto  bool     `json:"webcrypto"`
			Algorithms []string `json:"algorithms"`
		} `json:"crypto"`
	}
	compare := func(where string, b []byte, webCrypto bool) {
		t.Helper()
		var got result
		if err := json.Unmarshal(b, &got); err != nil || len(got.Out) != len(vs)+1 {
			t.Fatalf("%s gave %.300q (%v)", where, b, err)
		}
		if got.Crypto.WebCrypto != webCrypto {
			t.Errorf("%s: WebCrypto verifies %v (%+v), want %v", where, got.Crypto.Algorithms, got.Crypto, webCrypto)
		}
		if !strings.Contains(got.Sigstore, "ATTESTLOG_UNSUPPORTED") || !strings.Contains(got.Sigstore, "verifies no Sigstore bundles") {
			t.Errorf("%s: a policy with sigstore-root under the module built without Sigstore: %q, want it refused as such", where, got.Sigstore)
		}
		for i, v := range append(vs, vs[0]) {
			if got.Out[i].Verdict != v.Native {
				t.Errorf("%s: %s: the WebAssembly verdict differs from the native one:\nnative: %s\nwasm:   %s", where, v.Name, v.Native, got.Out[i].Verdict)
				continue
			}
			var top struct {
				OK bool `json:"ok"`
			}
			if err := json.Unmarshal([]byte(got.Out[i].Verdict), &top); err != nil || top.OK != v.WantOK {
				t.Errorf("%s: %s: the WebAssembly verdict says ok %v (%v), want %v", where, v.Name, top.OK, err, v.WantOK)
			}
		}
		later := median(got.Again)
		cpu := ""
		if c := median(got.AgainCPU); c > 0 {
			cpu = fmt.Sprintf("; CPU time %.1f ms (%.1f× native %.2f ms)", c, c/nativeCPU, nativeCPU)
		}
		t.Logf("%s: module loaded in %.0f ms; its first decision %.1f ms (%.0f× native %.2f ms); then a new verifier each time: median %.1f ms (%.1f× native %.2f ms)%s",
			where, got.LoadMs, got.Out[0].Ms, got.Out[0].Ms/nativeFirst, nativeFirst, later, later/nativeMs, nativeMs, cpu)
	}
	for _, c := range []struct {
		where, arg string
		webCrypto  bool
	}{{"Node, WebCrypto", "on", true}, {"Node, Go's crypto", "off", false}, {"Node, a WebCrypto that finds every signature valid", "liar", false}} {
		where, arg, webCrypto := c.where, c.arg, c.webCrypto
		out := filepath.Join(pkg, "out-"+arg+".json")
		cmd := exec.CommandContext(ctx, node, "run.mjs", vpath, out, arg)
		cmd.Dir = pkg
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("node: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		compare(where, b, webCrypto)
	}

	// In Chromium, the package loaded by name through an import map.
	browser := testenv.Chromium(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><meta charset="utf-8"><title>vectors</title>
<script type="importmap">{"imports": {"@attestlog/verify": "/index.js"}}</script>
<script type="module">
import * as api from "@attestlog/verify";
import { decide } from "/decide.mjs";
window.__decide = async (vs) => JSON.stringify(await decide(api, vs, true));
window.__ready = true;
</script>`)
	})
	mux.Handle("GET /", http.FileServer(http.Dir(pkg)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/"), chromedp.Poll[chromedp.Void](`window.__ready === true`, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("loading the page in Chromium: %v", err)
	}
	b, err := chromedp.Run(browser, chromedp.Evaluate[string]("window.__decide("+string(vj)+")", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("deciding in Chromium: %v", err)
	}
	compare("Chromium, WebCrypto", []byte(b), true)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// cpuMs is the CPU time this process has used, in milliseconds (user and
// system: on a shared machine, wall time measures the neighbours too).
func cpuMs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}
