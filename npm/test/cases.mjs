// The cases the Go test suite (TestNPMPackage in cmd/attestlog) runs
// through the installed package, under Node and in Chromium alike: each
// saved sample of evidence in every input form a JavaScript developer has,
// the enclave fetched live, and the failures (timeout, abort, refused
// connection, wrong input). It returns what happened, for the Go test to
// compare with `attestlog verify --json`.
//
// c: {policy, files: {name: text}, enclave, stall (a URL that never
// answers), refused (a URL nothing listens on), samples: [{name, evidence
// (text), nonce (hex)}]}.
export async function run(api, c) {
  const out = {};
  const rec = async (name, f) => {
    const t0 = performance.now();
    try {
      out[name] = { value: await f(), ms: performance.now() - t0 };
    } catch (e) {
      out[name] = { error: { code: e && e.code, message: String(e && e.message), attestlogError: e instanceof api.AttestlogError }, ms: performance.now() - t0 };
    }
  };
  const hexBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
  const opts = { files: c.files, timeoutMs: 60000 };
  for (const s of c.samples) {
    const bytes = new TextEncoder().encode(s.evidence);
    const nonce = hexBytes(s.nonce);
    const forms = {
      string: [s.evidence, s.nonce],
      Uint8Array: [bytes, nonce],
      ArrayBuffer: [bytes.slice().buffer, nonce.slice().buffer],
      DataView: [new DataView(bytes.slice().buffer), new DataView(nonce.slice().buffer)],
      object: [JSON.parse(s.evidence), s.nonce],
    };
    if (typeof Buffer !== "undefined") forms.Buffer = [Buffer.from(s.evidence), Buffer.from(s.nonce, "hex")];
    for (const [form, [ev, n]] of Object.entries(forms)) {
      await rec(`${s.name}/${form}`, () => api.verifyJSON(c.policy, ev, n, opts));
    }
  }
  await rec("fetchAndVerify", async () => JSON.stringify(await api.fetchAndVerify(c.enclave, c.policy, opts)));
  await rec("trustEnclave", async () => {
    const t = await api.trustEnclave(c.enclave, c.policy, opts);
    return JSON.stringify({ ok: t.verdict.ok, url: t.url, keys: Object.keys(t.keys), frozen: Object.isFrozen(t.keys) });
  });
  for (const kem of ["mlkem768x25519", "x25519"]) {
    await rec(`attestedFetch ${kem}`, async () => {
      const r = await api.attestedFetch("/v1/chat/completions", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "attestlog-demo-echo", messages: [{ role: "user", content: "through the package" }] }),
      }, { policy: c.policy, relay: c.relay, files: c.files, timeoutMs: 60000, kem });
      return JSON.stringify({ status: r.status, answer: (await r.json()).choices[0].message.content, kem: r.attestlog.kem, ok: r.attestlog.verdict.ok });
    });
  }
  // A streamed answer: the parts as the body stream gives them out.
  await rec("attestedFetch stream", async () => {
    const r = await api.attestedFetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "attestlog-demo-echo", stream: true, messages: [{ role: "user", content: "streamed through the package" }] }),
    }, { policy: c.policy, relay: c.relay, files: c.files, timeoutMs: 60000 });
    const reader = r.body.getReader();
    let parts = 0, text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts++;
      text += new TextDecoder().decode(value);
    }
    return JSON.stringify({ status: r.status, parts, text });
  });
  await rec("timeout", () => api.fetchAndVerify(c.stall, c.policy, { files: c.files, timeoutMs: 300 }));
  await rec("abort", () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 200);
    return api.fetchAndVerify(c.stall, c.policy, { files: c.files, signal: ctl.signal });
  });
  await rec("aborted before", () => api.trustEnclave(c.enclave, c.policy, { files: c.files, signal: AbortSignal.abort() }));
  await rec("refused", () => api.fetchAndVerify(c.refused, c.policy, opts));
  await rec("short nonce", () => api.verifyJSON(c.policy, c.samples[0].evidence, new Uint8Array(8), opts));
  await rec("number evidence", () => api.verifyJSON(c.policy, 42, c.samples[0].nonce, opts));
  await rec("version", () => api.version());
  await rec("info", async () => JSON.stringify(await api.info()));
  return out;
}
