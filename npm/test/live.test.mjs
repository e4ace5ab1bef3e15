// `npm test` against a running enclave, such as `attestlog up`'s demo:
//
//   ATTESTLOG_TEST_ENCLAVE=http://127.0.0.1:8080/demo \
//   ATTESTLOG_TEST_POLICY=attestlog-data/client-policy.txt npm test
//
// (the files the policy names — trust-root, crl, tdx-collateral — are read
// from beside it), or as an attestlog log's "Verify an enclave" page is
// set up (its enclave, policy and files):
//
//   ATTESTLOG_TEST_CONFIG=http://127.0.0.1:8080/ui/verify/config.json npm test
//
// Without these variables the tests are skipped — and fail under
// ATTESTLOG_STRICT=1, as the Go tests do without their peers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ErrorCode, attestedFetch, fetchAndVerify, trustEnclave, verify } from "../index.js";

// policyFiles reads the files a policy names from dir.
function policyFiles(text, dir) {
  const files = new Map();
  for (const line of text.split("\n")) {
    const f = line.replace(/#.*/, "").trim().split(/\s+/);
    const name = f[0] === "trust-root" || f[0] === "crl" || f[0] === "tdx-collateral" ? f[f.length - 1] : undefined;
    if (name) files.set(name, readFileSync(join(dir, name)));
  }
  return files;
}

// The enclave, its policy (as bytes: a Buffer is a policy too) and the
// policy's files (a Map of Buffers), from the environment.
async function target() {
  const config = process.env.ATTESTLOG_TEST_CONFIG;
  if (config) {
    const c = /^https?:/.test(config) ? await (await fetch(config)).json() : JSON.parse(readFileSync(config, "utf8"));
    // The page's relay, absolute or a path on the config's origin.
    const relay = c.relay && /^https?:/.test(config) ? new URL(c.relay, config).href : c.relay;
    return { enclave: c.enclave, policy: Buffer.from(c.policy), files: new Map(Object.entries(c.files || {}).map(([k, v]) => [k, Buffer.from(v)])), relay };
  }
  const enclave = process.env.ATTESTLOG_TEST_ENCLAVE;
  const policyPath = process.env.ATTESTLOG_TEST_POLICY;
  if (!enclave || !policyPath) return undefined;
  const policy = readFileSync(policyPath);
  return { enclave, policy, files: policyFiles(policy.toString(), dirname(policyPath)) };
}

const t = await target();
if (!t && process.env.ATTESTLOG_STRICT === "1") {
  throw new Error("ATTESTLOG_STRICT=1: set ATTESTLOG_TEST_CONFIG, or ATTESTLOG_TEST_ENCLAVE and ATTESTLOG_TEST_POLICY (an enclave and a policy trusting it, e.g. attestlog up's demo)");
}
const skip = !t && "no enclave: set ATTESTLOG_TEST_CONFIG, or ATTESTLOG_TEST_ENCLAVE and ATTESTLOG_TEST_POLICY";
const { enclave, policy: policyBytes, files: fileMap } = t || {};

test("fetchAndVerify trusts the enclave: every check passes", { skip }, async () => {
  const v = await fetchAndVerify(enclave, policyBytes, { files: fileMap, timeoutMs: 60000 });
  assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c) => !c.ok)));
  assert.ok(v.checks.length > 10);
  assert.ok(v.checks.every((c) => c.ok));
  assert.ok(v.release && v.release.measurement);
});

test("trustEnclave gives the attested keys with the verdict; a policy the enclave does not meet is ATTESTLOG_NOT_TRUSTED", { skip }, async () => {
  const policy = policyBytes.toString();
  const files = Object.fromEntries([...fileMap].map(([k, v]) => [k, v.toString()]));
  const trusted = await trustEnclave(new URL(enclave), policy, { files, timeoutMs: 60000 });
  assert.equal(trusted.verdict.ok, true);
  assert.equal(typeof trusted.keys, "object");
  // The same enclave under a policy that allows only TDX.
  const err = await trustEnclave(enclave, policy + "platform tdx\n", { files, timeoutMs: 60000 }).catch((e) => e);
  assert.equal(err.code, ErrorCode.NOT_TRUSTED, err.stack);
  assert.equal(err.verdict.ok, false);
  assert.ok(err.verdict.checks.some((c) => !c.ok));
});

test("saved evidence decides the same as bytes, as text, as a parsed object", { skip }, async () => {
  const policy = policyBytes.toString();
  const files = Object.fromEntries([...fileMap].map(([k, v]) => [k, new Uint8Array(v)]));
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const hex = Array.from(nonce, (b) => b.toString(16).padStart(2, "0")).join("");
  const u = new URL(enclave.replace(/\/$/, "") + "/.well-known/attestlog/evidence");
  u.searchParams.set("nonce", hex);
  const body = new Uint8Array(await (await fetch(u)).arrayBuffer());
  const text = new TextDecoder().decode(body);
  const verdicts = [
    await verify(policy, text, hex, { files }),
    await verify(policy, body, nonce, { files }),
    await verify(policy, body.buffer, nonce.buffer, { files }),
    await verify(policy, JSON.parse(text), hex, { files }),
  ];
  for (const v of verdicts) {
    assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c) => !c.ok)));
  }
  const wrong = await verify(policy, body, crypto.getRandomValues(new Uint8Array(32)), { files });
  assert.equal(wrong.ok, false, "a wrong nonce was trusted");
  assert.ok(wrong.checks.some((c) => !c.ok && c.name === "nonce binding"), JSON.stringify(wrong.checks.filter((c) => !c.ok)));
});

// attestedFetch: through the OHTTP relay `attestlog up` serves for its
// demo enclave (ATTESTLOG_TEST_RELAY, which npm_test.go sets, or the
// relay the ATTESTLOG_TEST_CONFIG page names).
const relay = process.env.ATTESTLOG_TEST_RELAY || (t && t.relay);
if (t && !relay && process.env.ATTESTLOG_STRICT === "1") {
  throw new Error("ATTESTLOG_STRICT=1: set ATTESTLOG_TEST_RELAY (the relay's URL for the enclave's gateway, e.g. attestlog up's relay_url)");
}
const skipRelay = skip || (!relay && "no relay: set ATTESTLOG_TEST_RELAY");

test("attestedFetch verifies, seals to the attested key, and reads the enclave's answer through the relay", { skip: skipRelay }, async () => {
  const policy = policyBytes.toString();
  const question = "hello through the relay " + Math.random();
  for (const kem of [undefined, "x25519"]) {
    const r = await attestedFetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "attestlog-demo-echo", messages: [{ role: "user", content: question }] }),
    }, { policy, relay, files: fileMap, timeoutMs: 120000, kem });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.match(body.choices[0].message.content, /You said: hello through the relay/);
    assert.equal(r.attestlog.verdict.ok, true);
    assert.equal(r.attestlog.kem, kem === "x25519" ? "X25519" : "MLKEM768-X25519");
  }
});

test("attestedFetch sends nothing when the verdict fails or the relay serves another key", { skip: skipRelay }, async () => {
  const { createServer } = await import("node:http");
  const policy = policyBytes.toString();
  let posts = 0;
  // A relay in the middle: the real document, the keys with one byte of
  // the first public key changed.
  const srv = createServer(async (req, res) => {
    if (req.method === "POST") posts++;
    const up = await fetch(relay + req.url.replace(/^\/g\/demo/, ""), { method: req.method, headers: { "Content-Type": req.headers["content-type"] || "" }, body: req.method === "POST" ? req : undefined, duplex: "half" });
    let b = new Uint8Array(await up.arrayBuffer());
    if (req.url.endsWith("/keys")) b[5] ^= 1;
    res.writeHead(up.status, { "Content-Type": up.headers.get("content-type") || "" });
    res.end(b);
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  try {
    const mitm = `http://127.0.0.1:${srv.address().port}/g/demo`;
    const e1 = await attestedFetch("/v1/models", {}, { policy, relay: mitm, files: fileMap, timeoutMs: 120000 }).catch((e) => e);
    assert.equal(e1.code, ErrorCode.KEY_NOT_ATTESTED, e1.stack);
    const e2 = await attestedFetch("/v1/models", {}, { policy: policy + "platform tdx\n", relay: mitm, files: fileMap, timeoutMs: 120000 }).catch((e) => e);
    assert.equal(e2.code, ErrorCode.NOT_TRUSTED, e2.stack);
    assert.equal(e2.verdict.ok, false);
    assert.equal(posts, 0, "a request was posted although nothing may be sent");
  } finally {
    srv.close();
  }
});

test("attestedFetch streams: a streamed answer arrives chunk by chunk, opened, as the service writes it", { skip: skipRelay }, async () => {
  const policy = policyBytes.toString();
  const r = await attestedFetch("/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "attestlog-demo-echo", stream: true, messages: [{ role: "user", content: "stream me these words one by one" }] }),
  }, { policy, relay, files: fileMap, timeoutMs: 120000 });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/event-stream/);
  assert.ok(r.body instanceof ReadableStream, "the body is not a stream");
  const reader = r.body.getReader();
  const parts = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(new TextDecoder().decode(value));
  }
  const text = parts.join("");
  const words = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content || "").join("");
  assert.equal(words, "[attestlog demo model, not a real one] You said: stream me these words one by one");
  assert.ok(text.trimEnd().endsWith("data: [DONE]"), text);
  // up's demo service writes a word every 25 ms, each flushed: a body read
  // whole before it was given out would come as one part.
  assert.ok(parts.length >= 2, `the answer came in ${parts.length} part(s): not streamed`);
});

test("attestedFetch: an answer tampered with or cut by the relay errors the body stream (ATTESTLOG_BAD_EVIDENCE), never reads as a short one", { skip: skipRelay }, async () => {
  const { createServer } = await import("node:http");
  const policy = policyBytes.toString();
  let mode = "";
  // A relay in the middle that forwards everything and then damages the
  // enclave's answer: one bit of its last bytes flipped, or its end cut.
  const srv = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const up = await fetch(relay + req.url.replace(/^\/g\/demo/, ""), { method: req.method, headers: { "Content-Type": req.headers["content-type"] || "" }, body: req.method === "POST" ? Buffer.concat(chunks) : undefined });
    let b = new Uint8Array(await up.arrayBuffer());
    if (req.method === "POST" && mode === "flip") b[b.length - 20] ^= 1;
    if (req.method === "POST" && mode === "cut") b = b.slice(0, b.length - 40);
    res.writeHead(up.status, { "Content-Type": up.headers.get("content-type") || "" });
    res.end(b);
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  try {
    const mitm = `http://127.0.0.1:${srv.address().port}/g/demo`;
    const ask = () => attestedFetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "attestlog-demo-echo", stream: true, messages: [{ role: "user", content: "a long enough answer to have a head and a tail" }] }),
    }, { policy, relay: mitm, files: fileMap, timeoutMs: 120000 });
    mode = "";
    const ok = await ask();
    assert.match(await ok.text(), /data: \[DONE\]/, "the untouched answer through the relay in the middle");
    for (const m of ["flip", "cut"]) {
      mode = m;
      const e = await ask().then((r) => r.text()).catch((e) => e);
      assert.ok(e instanceof Error, `${m}: the damaged answer read as ${JSON.stringify(e)}`);
      assert.equal(e.code, ErrorCode.BAD_EVIDENCE, `${m}: ${e.stack}`);
    }
  } finally {
    srv.close();
  }
});
