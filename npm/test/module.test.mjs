// `npm test`: the package against its built module (dist/, which npm pack
// and npm run build make), with no enclave: versions, WebCrypto, the input
// types it takes and refuses, and how fetching fails (against servers
// this test starts on 127.0.0.1). live.test.mjs runs against an enclave.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { AttestlogError, ErrorCode, fetchAndVerify, info, load, trustEnclave, verify, verifyJSON, version } from "../index.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

// A policy that parses: one log, whose key (public, made for these tests)
// signs nothing they check.
const POLICY = "log test.example/log+81be7595+AWnA6ymR3UYjjWDS9/IxE2SznaVc43A1wVo1oiuLWGYg\n";

// code awaits p and returns the code of the AttestlogError it rejects with.
async function code(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AttestlogError, `want an AttestlogError, got ${e && e.stack}`);
    assert.equal(e.name, "AttestlogError");
    assert.ok(Object.values(ErrorCode).includes(e.code), `unknown code ${e.code}`);
    return e.code;
  }
  assert.fail("want an error, got none");
}

test("the module reports the package's version", async () => {
  assert.equal(await version(), pkg.version);
  const i = await info();
  assert.equal(i.version, pkg.version);
  assert.match(i.revision, /\S/);
  const built = JSON.parse(readFileSync(new URL("../dist/build.json", import.meta.url), "utf8"));
  assert.equal(built.version, pkg.version);
});

test("WebCrypto verifies the signatures of a decision under Node", async () => {
  const { crypto } = await info();
  assert.equal(crypto.webcrypto, true, JSON.stringify(crypto));
  for (const a of ["ECDSA P-256 SHA-256", "ECDSA P-384 SHA-384", "RSA-PSS SHA-384", "Ed25519"]) {
    assert.ok(crypto.algorithms.includes(a), `${a} not verified by WebCrypto: ${JSON.stringify(crypto)}`);
  }
  assert.equal(await code(load({ webCrypto: false })), ErrorCode.BAD_INPUT, "loading again with other options");
});

test("wrong inputs are refused, each with its code", async () => {
  const cases = [
    ["evidence a number", () => verify(POLICY, 42), ErrorCode.BAD_INPUT],
    ["evidence an array", () => verify(POLICY, [1, 2]), ErrorCode.BAD_INPUT],
    ["evidence null", () => verify(POLICY, null), ErrorCode.BAD_INPUT],
    ["evidence a Map", () => verify(POLICY, new Map()), ErrorCode.BAD_INPUT],
    ["policy a number", () => verify(7, "{}"), ErrorCode.BAD_INPUT],
    ["policy bytes not UTF-8", () => verify(new Uint8Array([0xff, 0xfe]), "{}"), ErrorCode.BAD_INPUT],
    ["nonce a number", () => verify(POLICY, "{}", 42), ErrorCode.BAD_INPUT],
    ["nonce an object", () => verify(POLICY, "{}", { nonce: "00" }), ErrorCode.BAD_INPUT],
    ["nonce not hex", () => verify(POLICY, "{}", "xyz0"), ErrorCode.BAD_INPUT],
    ["nonce hex too short", () => verify(POLICY, "{}", "0011"), ErrorCode.BAD_INPUT],
    ["nonce bytes too short", () => verify(POLICY, "{}", new Uint8Array(8)), ErrorCode.BAD_INPUT],
    ["nonce bytes too long", () => verify(POLICY, "{}", new ArrayBuffer(65)), ErrorCode.BAD_INPUT],
    ["an unknown option", () => verify(POLICY, "{}", undefined, { timeout: 5 }), ErrorCode.BAD_INPUT],
    ["options a string", () => verify(POLICY, "{}", undefined, "fast"), ErrorCode.BAD_INPUT],
    ["timeoutMs negative", () => verify(POLICY, "{}", undefined, { timeoutMs: -1 }), ErrorCode.BAD_INPUT],
    ["timeoutMs a string", () => verify(POLICY, "{}", undefined, { timeoutMs: "100" }), ErrorCode.BAD_INPUT],
    ["signal not a signal", () => verify(POLICY, "{}", undefined, { signal: {} }), ErrorCode.BAD_INPUT],
    ["files a string", () => verify(POLICY, "{}", undefined, { files: "root.pem" }), ErrorCode.BAD_INPUT],
    ["a file a number", () => verify(POLICY, "{}", undefined, { files: { "root.pem": 1 } }), ErrorCode.BAD_INPUT],
    ["now a number", () => verify(POLICY, "{}", undefined, { now: 5 }), ErrorCode.BAD_INPUT],
    ["now not RFC 3339", () => verify(POLICY, "{}", undefined, { now: "yesterday" }), ErrorCode.BAD_INPUT],
    ["now an invalid Date", () => verify(POLICY, "{}", undefined, { now: new Date(NaN) }), ErrorCode.BAD_INPUT],
    ["a policy that does not parse", () => verify("trust everything\n", "{}"), ErrorCode.BAD_POLICY],
    ["a policy naming a file not given", () => verify(POLICY + "trust-root sev-snp root.pem\n", "{}"), ErrorCode.BAD_POLICY],
    ["evidence {}", () => verify(POLICY, "{}"), ErrorCode.BAD_EVIDENCE],
    ["evidence a parsed object not evidence", () => verify(POLICY, { format: "nonsense" }), ErrorCode.BAD_EVIDENCE],
    ["evidence zero bytes", () => verify(POLICY, new Uint8Array(100)), ErrorCode.BAD_EVIDENCE],
    ["a proof that does not parse", () => verify(POLICY, "{}", undefined, { proof: "not a proof" }), ErrorCode.BAD_EVIDENCE],
    ["enclaveURL a number", () => fetchAndVerify(8080, POLICY), ErrorCode.BAD_INPUT],
    ["enclaveURL not a URL", () => fetchAndVerify("enclave.example", POLICY), ErrorCode.BAD_INPUT],
    ["enclaveURL not http(s)", () => fetchAndVerify("ftp://enclave.example/", POLICY), ErrorCode.BAD_INPUT],
  ];
  for (const [name, f, want] of cases) {
    assert.equal(await code(f()), want, name);
  }
});

test("a policy that needs Sigstore is refused as unsupported by this build", async () => {
  const p = POLICY + "sigstore-root root.json\nbuilder ci issuer=https://token.actions.githubusercontent.com subject-regex=.*\n";
  assert.equal(await code(verify(p, "{}", undefined, { files: { "root.json": "{}" } })), ErrorCode.UNSUPPORTED);
});

test("an aborted signal stops verify before it starts", async () => {
  const c = new AbortController();
  c.abort(new Error("user left"));
  const err = await verify(POLICY, "{}", undefined, { signal: c.signal }).catch((e) => e);
  assert.equal(err.code, ErrorCode.ABORTED);
  assert.match(err.message, /user left/);
});

// A server on 127.0.0.1 whose answers the tests choose.
const requests = [];
let answer = (req, res) => res.end();
const server = http.createServer((req, res) => {
  requests.push({ url: req.url, headers: req.headers });
  answer(req, res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
after(() => { server.closeAllConnections(); server.close(); });

test("fetchAndVerify asks the enclave's evidence path with a fresh 32-byte nonce, and no credentials", async () => {
  requests.length = 0;
  answer = (req, res) => { res.writeHead(200, { "Content-Type": "application/json" }); res.end("{}"); };
  assert.equal(await code(fetchAndVerify(base + "/prefix/", POLICY)), ErrorCode.BAD_EVIDENCE);
  assert.equal(await code(fetchAndVerify(base + "/prefix", POLICY)), ErrorCode.BAD_EVIDENCE);
  assert.equal(requests.length, 2);
  const [a, b] = requests.map((r) => new URL(r.url, base));
  assert.equal(a.pathname, "/prefix/.well-known/attestlog/evidence");
  assert.equal(b.pathname, "/prefix/.well-known/attestlog/evidence");
  assert.match(a.searchParams.get("nonce"), /^[0-9a-f]{64}$/);
  assert.notEqual(a.searchParams.get("nonce"), b.searchParams.get("nonce"));
  assert.equal(requests[0].headers.accept, "application/json");
  assert.equal(requests[0].headers.cookie, undefined);
  assert.equal(await code(trustEnclave(base, POLICY)), ErrorCode.BAD_EVIDENCE, "trustEnclave on an answer that is not evidence");
});

test("fetching fails with ATTESTLOG_FETCH: a status other than 200, an answer too large, a refused connection", async () => {
  answer = (req, res) => { res.writeHead(404); res.end("no evidence here"); };
  let err = await fetchAndVerify(base, POLICY).catch((e) => e);
  assert.equal(err.code, ErrorCode.FETCH);
  assert.equal(err.status, 404);
  assert.match(err.message, /404.*no evidence here/);
  answer = (req, res) => { res.writeHead(200); res.end(Buffer.alloc(600 << 10, 0x20)); };
  err = await fetchAndVerify(base, POLICY).catch((e) => e);
  assert.equal(err.code, ErrorCode.FETCH);
  assert.match(err.message, /too large/);
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, "127.0.0.1", r));
  const port = closed.address().port;
  await new Promise((r) => closed.close(r));
  err = await fetchAndVerify(`http://127.0.0.1:${port}`, POLICY).catch((e) => e);
  assert.equal(err.code, ErrorCode.FETCH);
  assert.match(err.message, /ECONNREFUSED|refused|fetch failed/);
});

test("a timeout and an abort stop a fetch that hangs", async () => {
  answer = () => {}; // never answers
  let t0 = performance.now();
  let err = await fetchAndVerify(base, POLICY, { timeoutMs: 300 }).catch((e) => e);
  assert.equal(err.code, ErrorCode.TIMEOUT);
  assert.ok(performance.now() - t0 < 10000, "the timeout took too long");
  const c = new AbortController();
  setTimeout(() => c.abort(), 200);
  t0 = performance.now();
  err = await fetchAndVerify(base, POLICY, { signal: c.signal, timeoutMs: 60000 }).catch((e) => e);
  assert.equal(err.code, ErrorCode.ABORTED);
  assert.ok(performance.now() - t0 < 10000, "the abort took too long");
  requests.length = 0;
  err = await trustEnclave(base, POLICY, { signal: AbortSignal.abort() }).catch((e) => e);
  assert.equal(err.code, ErrorCode.ABORTED);
  assert.equal(requests.length, 0, "an aborted signal still sent a request");
});

test("verifyJSON is verify's text", async () => {
  assert.equal(typeof verifyJSON, "function");
  assert.equal(await code(verifyJSON(POLICY, "{}")), ErrorCode.BAD_EVIDENCE);
});
