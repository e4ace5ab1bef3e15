// @attestlog/verify: the client decision of attestlog (policy/verify),
// compiled from Go to WebAssembly. The same code as `attestlog verify`,
// returning the same Verdict JSON. This file fetches (with the platform's
// fetch, in browsers and Node 20+), checks and converts arguments, and
// turns failures into AttestlogErrors with stable codes; the module
// decides.

/** The codes an AttestlogError carries (stable: match on them). */
export const ErrorCode = Object.freeze({
  /** An argument or option of the wrong type or value. */
  BAD_INPUT: "ATTESTLOG_BAD_INPUT",
  /** The policy does not parse, or names a file options.files lacks. */
  BAD_POLICY: "ATTESTLOG_BAD_POLICY",
  /** The policy needs what this build leaves out (Sigstore). */
  UNSUPPORTED: "ATTESTLOG_UNSUPPORTED",
  /** The evidence (or options.proof, or an enclave's answer) is not evidence. */
  BAD_EVIDENCE: "ATTESTLOG_BAD_EVIDENCE",
  /** The enclave could not be asked: network, a status other than 200, an answer too large. */
  FETCH: "ATTESTLOG_FETCH",
  /** trustEnclave, attestedFetch: the verdict is NOT TRUSTED (error.verdict says why); nothing was sent. */
  NOT_TRUSTED: "ATTESTLOG_NOT_TRUSTED",
  /** attestedFetch: the relay served OHTTP key configurations the verified document does not commit to; nothing was sent. */
  KEY_NOT_ATTESTED: "ATTESTLOG_KEY_NOT_ATTESTED",
  /** options.timeoutMs passed first. */
  TIMEOUT: "ATTESTLOG_TIMEOUT",
  /** options.signal aborted first. */
  ABORTED: "ATTESTLOG_ABORTED",
  /** The WebAssembly module could not be loaded. */
  LOAD: "ATTESTLOG_LOAD",
  /** A bug: please report it. */
  INTERNAL: "ATTESTLOG_INTERNAL",
});

const codes = new Set(Object.values(ErrorCode));

/** Every error this package throws or rejects with. */
export class AttestlogError extends Error {
  constructor(code, message, extra) {
    super(message, extra && extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = "AttestlogError";
    this.code = code;
    if (extra) {
      for (const k of ["verdict", "status", "url"]) {
        if (extra[k] !== undefined) this[k] = extra[k];
      }
    }
  }
}

// What an enclave serves (policy/evidence: Path, MaxBundleSize), and the
// nonce sent (as `attestlog verify --enclave` sends).
const EVIDENCE_PATH = "/.well-known/attestlog/evidence";
const MAX_BUNDLE = 512 << 10;
const NONCE_BYTES = 32;

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `an object (${(v.constructor && v.constructor.name) || "no prototype"})`;
  return typeof v;
}

function badInput(what, v, want) {
  return new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: ${what}: want ${want}, got ${describe(v)}`);
}

// asBytes returns v as a Uint8Array if it holds bytes (Uint8Array and
// Node's Buffer, any other ArrayBuffer view, ArrayBuffer), else undefined.
function asBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer)) return new Uint8Array(v);
  return undefined;
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

// text reads a policy: a string, or UTF-8 bytes.
function text(what, v) {
  if (typeof v === "string") return v;
  const b = asBytes(v);
  if (b === undefined) throw badInput(what, v, "a string, a Uint8Array or an ArrayBuffer");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch (e) {
    throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: ${what}: not UTF-8`, { cause: e });
  }
}

// blob reads file contents or a proof: a string or bytes.
function blob(what, v) {
  if (typeof v === "string") return v;
  const b = asBytes(v);
  if (b === undefined) throw badInput(what, v, "a string, a Uint8Array or an ArrayBuffer");
  return b;
}

// evidenceOf reads evidence: JSON text, bytes (a bundle, a raw SEV-SNP
// report with its certificate table, a TDX quote), or a parsed bundle.
function evidenceOf(v) {
  if (typeof v === "string") return v;
  const b = asBytes(v);
  if (b !== undefined) return b;
  if (isPlainObject(v)) return JSON.stringify(v);
  throw badInput("evidence", v, "JSON text, a Uint8Array, an ArrayBuffer or a parsed evidence bundle");
}

// nonceOf reads a nonce: hex text or bytes; undefined, null or "" for none.
function nonceOf(v) {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "string") {
    if (!/^([0-9a-fA-F]{2})+$/.test(v)) {
      throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: nonce: want hex (two digits a byte), got ${JSON.stringify(v.slice(0, 40))}`);
    }
    return v;
  }
  const b = asBytes(v);
  if (b === undefined) throw badInput("nonce", v, "hex text, a Uint8Array or an ArrayBuffer");
  return new Uint8Array(b); // a copy: the caller may reuse its buffer
}

const optionNames = {
  verify: ["files", "now", "proof", "signal", "timeoutMs"],
  fetch: ["files", "now", "proof", "signal", "timeoutMs"],
  attested: ["policy", "relay", "files", "now", "signal", "timeoutMs", "kem"],
  load: ["wasmURL", "webCrypto", "signal", "timeoutMs"],
};

// readOptions checks options and returns the module's ({files, now,
// proof}) and the call's ({signal, timeoutMs}).
function readOptions(kind, options) {
  if (options === undefined || options === null) return { module: {}, call: {} };
  if (typeof options !== "object" || Array.isArray(options)) throw badInput("options", options, "an object");
  for (const k of Object.keys(options)) {
    if (!optionNames[kind].includes(k)) {
      throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: options: unknown option ${JSON.stringify(k)} (want ${optionNames[kind].join(", ")})`);
    }
  }
  const module = {};
  const f = options.files;
  if (f !== undefined && f !== null) {
    const entries = f instanceof Map ? [...f.entries()] : isPlainObject(f) ? Object.entries(f) : undefined;
    if (entries === undefined) throw badInput("options.files", f, "an object (or Map) of file names to contents");
    module.files = {};
    for (const [name, content] of entries) {
      if (typeof name !== "string") throw badInput("options.files: a file name", name, "a string");
      module.files[name] = blob(`options.files[${JSON.stringify(name)}]`, content);
    }
  }
  const now = options.now;
  if (now !== undefined && now !== null) {
    if (now instanceof Date) {
      if (Number.isNaN(now.getTime())) throw new AttestlogError(ErrorCode.BAD_INPUT, "attestlog: options.now: an invalid Date");
      module.now = now.toISOString();
    } else if (typeof now === "string") {
      module.now = now;
    } else {
      throw badInput("options.now", now, "a Date or an RFC 3339 time");
    }
  }
  if (options.proof !== undefined && options.proof !== null) module.proof = blob("options.proof", options.proof);
  return { module, call: callOptions(options) };
}

function callOptions(options) {
  const call = {};
  const s = options.signal;
  if (s !== undefined && s !== null) {
    const isSignal = typeof AbortSignal !== "undefined" ? s instanceof AbortSignal : typeof s.aborted === "boolean" && typeof s.addEventListener === "function";
    if (!isSignal) throw badInput("options.signal", s, "an AbortSignal");
    call.signal = s;
  }
  const t = options.timeoutMs;
  if (t !== undefined && t !== null) {
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) throw badInput("options.timeoutMs", t, "a positive number of milliseconds");
    call.timeoutMs = t;
  }
  return call;
}

// withDeadline runs f(signal) until it settles, options.signal aborts
// (ATTESTLOG_ABORTED) or options.timeoutMs passes (ATTESTLOG_TIMEOUT),
// whichever comes first. f's signal aborts with the same error, so that
// a fetch in progress stops; a decision already running in the module
// finishes and is discarded.
async function withDeadline(call, f) {
  const abortedBy = (s) => new AttestlogError(ErrorCode.ABORTED, "attestlog: aborted" + (s.reason !== undefined ? `: ${s.reason instanceof Error ? s.reason.message : String(s.reason)}` : ""), { cause: s.reason });
  if (call.signal && call.signal.aborted) throw abortedBy(call.signal);
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(abortedBy(call.signal));
  if (call.signal) call.signal.addEventListener("abort", onAbort, { once: true });
  let timer;
  if (call.timeoutMs !== undefined) {
    timer = setTimeout(() => ctl.abort(new AttestlogError(ErrorCode.TIMEOUT, `attestlog: timed out after ${call.timeoutMs} ms`)), call.timeoutMs);
  }
  let stop;
  const stopped = new Promise((_, reject) => {
    stop = () => reject(ctl.signal.reason);
    ctl.signal.addEventListener("abort", stop, { once: true });
  });
  try {
    return await Promise.race([f(ctl.signal), stopped]);
  } catch (e) {
    if (ctl.signal.aborted) throw ctl.signal.reason;
    throw e;
  } finally {
    clearTimeout(timer);
    if (call.signal) call.signal.removeEventListener("abort", onAbort);
    ctl.signal.removeEventListener("abort", stop);
    stopped.catch(() => {});
  }
}

let loading;
let loadedWith;
let exited;

// nodeVerifier is, under Node, a synchronous signature check with
// node:crypto (the OpenSSL under Node's WebCrypto, without a promise and
// a thread-pool round trip per signature); the module uses it in
// WebCrypto's place, after the same self-test.
async function nodeVerifier() {
  const c = await import("node:crypto");
  const b64u = (b) => Buffer.from(b).toString("base64url");
  const hashes = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };
  return (alg, curve, hash, saltLength, raw, n, e, sig, data) => {
    let key;
    switch (alg) {
      case "ECDSA": {
        const size = (raw.length - 1) / 2;
        if (raw[0] !== 4 || !Number.isInteger(size)) return false;
        key = c.createPublicKey({ key: { kty: "EC", crv: curve, x: b64u(raw.subarray(1, 1 + size)), y: b64u(raw.subarray(1 + size)) }, format: "jwk" });
        return c.verify(hashes[hash], data, { key, dsaEncoding: "ieee-p1363" }, sig);
      }
      case "Ed25519":
        key = c.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64u(raw) }, format: "jwk" });
        return c.verify(null, data, key, sig);
      case "RSA-PSS":
        key = c.createPublicKey({ key: { kty: "RSA", n: b64u(n), e: b64u(e) }, format: "jwk" });
        return c.verify(hashes[hash], data, { key, padding: c.constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
      case "RSASSA-PKCS1-v1_5":
        key = c.createPublicKey({ key: { kty: "RSA", n: b64u(n), e: b64u(e) }, format: "jwk" });
        return c.verify(hashes[hash], data, { key, padding: c.constants.RSA_PKCS1_PADDING }, sig);
    }
    throw new Error(`unknown algorithm ${alg}`);
  };
}

async function wasmBytes(url) {
  if (isNode && url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    const { fileURLToPath } = await import("node:url");
    return readFile(fileURLToPath(url));
  }
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: ${resp.status} ${resp.statusText}`);
  return resp.arrayBuffer();
}

/**
 * Loads the module (once: later calls return the same promise, and may
 * not ask for other options). By default it is read from
 * dist/attestlog.wasm next to this file.
 */
export function load(options) {
  if (typeof options === "string" || options instanceof URL) options = { wasmURL: options };
  const { call } = readOptions("load", options);
  const o = options || {};
  if (o.wasmURL !== undefined && typeof o.wasmURL !== "string" && !(o.wasmURL instanceof URL)) throw badInput("options.wasmURL", o.wasmURL, "a URL");
  if (o.webCrypto !== undefined && typeof o.webCrypto !== "boolean") throw badInput("options.webCrypto", o.webCrypto, "a boolean");
  const want = JSON.stringify({ wasmURL: o.wasmURL === undefined ? undefined : String(o.wasmURL), webCrypto: o.webCrypto !== false });
  if (loading) {
    if (options && (o.wasmURL !== undefined || o.webCrypto !== undefined) && want !== loadedWith) {
      return Promise.reject(new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: the module is already loaded with ${loadedWith}, not ${want}`));
    }
    return withDeadline(call, () => loading);
  }
  loadedWith = want;
  loading = (async () => {
    try {
      if (typeof globalThis.Go === "undefined") {
        await import("./dist/wasm_exec.js");
      }
      const url = o.wasmURL !== undefined
        ? new URL(String(o.wasmURL), isNode ? `file://${process.cwd()}/` : globalThis.location.href)
        : new URL("./dist/attestlog.wasm", import.meta.url);
      const go = new globalThis.Go();
      if (o.webCrypto === false) go.env = { ATTESTLOG_WEBCRYPTO: "off" };
      else if (isNode && globalThis.__attestlogNodeVerify === undefined) globalThis.__attestlogNodeVerify = await nodeVerifier();
      const ready = new Promise((resolve) => { globalThis.__attestlogReady = resolve; });
      const { instance } = await WebAssembly.instantiate(await wasmBytes(url), go.importObject);
      go.run(instance).then(() => { exited = true; }); // runs until the page (or process) goes away
      await ready;
      return globalThis.__attestlog;
    } catch (e) {
      loading = undefined;
      throw new AttestlogError(ErrorCode.LOAD, `attestlog: loading the WebAssembly module: ${e && e.message ? e.message : e}` +
        " (a package packed without building ships no module: npm pack builds it)", { cause: e });
    }
  })();
  return withDeadline(call, () => loading);
}

// module loads the module within the call's deadline.
async function module(signal) {
  const m = await Promise.race([load(), new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))]);
  if (exited) throw new AttestlogError(ErrorCode.INTERNAL, "attestlog: the WebAssembly module exited");
  return m;
}

// settle turns the module's rejections (Errors with a code) into
// AttestlogErrors.
async function settle(p) {
  try {
    return await p;
  } catch (e) {
    if (e instanceof AttestlogError) throw e;
    const code = e && codes.has(e.code) ? e.code : ErrorCode.INTERNAL;
    throw new AttestlogError(code, `attestlog: ${e && e.message ? e.message : e}`, { cause: e });
  }
}

/**
 * Decides whether to trust an enclave from its evidence, as `attestlog
 * verify --json` does, and returns the verdict's JSON text (byte for byte
 * what it prints).
 */
export async function verifyJSON(policyText, evidence, nonce, options) {
  const policy = text("policy", policyText);
  const ev = evidenceOf(evidence);
  const n = nonceOf(nonce);
  const { module: mo, call } = readOptions("verify", options);
  return withDeadline(call, async (signal) => {
    const m = await module(signal);
    return settle(m.verify(policy, ev, n, mo));
  });
}

/** verifyJSON, parsed: the Verdict. Trust only when verdict.ok is true. */
export async function verify(policyText, evidence, nonce, options) {
  return JSON.parse(await verifyJSON(policyText, evidence, nonce, options));
}

// evidenceURL is where enclaveURL serves evidence for nonce (as Go's
// evidence.Fetch builds it).
function evidenceURL(enclaveURL, nonce) {
  if (typeof enclaveURL !== "string" && !(enclaveURL instanceof URL)) throw badInput("enclaveURL", enclaveURL, "a URL");
  let u;
  try {
    u = new URL(String(enclaveURL));
  } catch (e) {
    throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: enclaveURL ${JSON.stringify(String(enclaveURL))}: want http(s)://host`, { cause: e });
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.host === "") {
    throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: enclaveURL ${JSON.stringify(String(enclaveURL))}: want http(s)://host`);
  }
  u.pathname = u.pathname.replace(/\/$/, "") + EVIDENCE_PATH;
  u.search = "?nonce=" + Array.from(nonce, (b) => b.toString(16).padStart(2, "0")).join("");
  u.hash = "";
  return u;
}

// readLimited reads a response's body, refusing more than limit bytes.
async function readLimited(resp, limit, url) {
  if (!resp.body) return new Uint8Array(0);
  const reader = resp.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) {
      reader.cancel().catch(() => {});
      throw new AttestlogError(ErrorCode.FETCH, `attestlog: fetching evidence from ${url}: answer too large: more than ${limit} bytes`, { url: String(url) });
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// fetchEvidence asks the enclave for evidence bound to a fresh nonce, and
// decides on it in the module: {verdict (text), keys (null unless trusted)}.
async function fetchEvidence(enclaveURL, policyText, options) {
  const policy = text("policy", policyText);
  const { module: mo, call } = readOptions("fetch", options);
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const url = evidenceURL(enclaveURL, nonce);
  return withDeadline(call, async (signal) => {
    const m = await module(signal);
    let resp;
    try {
      resp = await fetch(url, { signal, headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store", redirect: "follow" });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      const why = e && e.cause && e.cause.message ? `${e.message}: ${e.cause.message}` : e && e.message ? e.message : String(e);
      throw new AttestlogError(ErrorCode.FETCH, `attestlog: fetching evidence from ${url}: ${why}`, { cause: e, url: String(url) });
    }
    if (resp.status !== 200) {
      const body = await readLimited(resp, MAX_BUNDLE, url).catch(() => new Uint8Array(0));
      const snippet = new TextDecoder().decode(body.slice(0, 200)).trim();
      throw new AttestlogError(ErrorCode.FETCH, `attestlog: fetching evidence from ${url}: answer is not 200 OK: ${resp.status} ${resp.statusText}${snippet ? ": " + snippet : ""}`, { status: resp.status, url: String(url) });
    }
    const body = await readLimited(resp, MAX_BUNDLE, url);
    return settle(m.verifyFetched(policy, body, nonce, mo));
  });
}

/**
 * Fetches evidence from the enclave with a fresh nonce
 * (GET <enclaveURL>/.well-known/attestlog/evidence?nonce=…) and decides on
 * it, with the proofs the enclave staples. Returns the Verdict (trusted
 * or not); throws for what cannot be decided on.
 */
export async function fetchAndVerify(enclaveURL, policyText, options) {
  const r = await fetchEvidence(enclaveURL, policyText, options);
  return JSON.parse(r.verdict);
}

/**
 * fetchAndVerify, requiring TRUSTED: returns the enclave with its verdict
 * and the keys its evidence binds (the only way to them: they are given
 * only when every check passed), or throws ATTESTLOG_NOT_TRUSTED with the
 * verdict.
 */
export async function trustEnclave(enclaveURL, policyText, options) {
  const r = await fetchEvidence(enclaveURL, policyText, options);
  const verdict = JSON.parse(r.verdict);
  if (!verdict.ok || r.keys === null || r.keys === undefined) {
    const failed = (verdict.checks || []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.reason}`);
    throw new AttestlogError(ErrorCode.NOT_TRUSTED, `attestlog: NOT TRUSTED: ${String(enclaveURL)}: ${failed.join("; ")}`, { verdict, url: String(enclaveURL) });
  }
  return Object.freeze({ url: String(enclaveURL), verdict, keys: Object.freeze({ ...r.keys }) });
}

// What an attestlog OHTTP relay serves under a gateway's URL, and the
// media types of RFC 9458.
const RELAY_DOCUMENT = "/document";
const RELAY_KEYS = "/keys";
// abandoned forgets the module's handle of an answer whose body stream
// was dropped unread (collected by the garbage collector).
const abandoned = typeof FinalizationRegistry === "function" ? new FinalizationRegistry(({ m, handle, userSignal, stop }) => {
  m.forget(handle);
  if (userSignal) userSignal.removeEventListener("abort", stop);
}) : null;

const OHTTP_CHUNKED_REQ = "message/ohttp-chunked-req";
const OHTTP_CHUNKED_RES = "message/ohttp-chunked-res";

// relayGet reads one of the relay's public documents.
async function relayGet(relay, suffix, accept, limit, signal) {
  const url = relay + suffix;
  let resp;
  try {
    resp = await fetch(url, { signal, headers: { Accept: accept }, credentials: "omit", cache: "no-store", redirect: "error" });
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    throw new AttestlogError(ErrorCode.FETCH, `attestlog: ${url}: ${e && e.message ? e.message : e}`, { cause: e, url });
  }
  const body = await readLimited(resp, limit, url);
  if (resp.status !== 200) {
    throw new AttestlogError(ErrorCode.FETCH, `attestlog: ${url}: ${resp.status} ${resp.statusText}: ${new TextDecoder().decode(body.slice(0, 200)).trim()}`, { status: resp.status, url });
  }
  return body;
}

// requestParts reads fetch's (url, init) into what is sealed: method,
// path and query at the enclave, headers, body.
async function requestParts(url, init) {
  if (typeof url !== "string" && !(url instanceof URL)) throw badInput("url", url, "a path at the enclave (\"/v1/chat/completions\") or a URL");
  let u;
  try {
    u = new URL(String(url), "https://enclave/");
  } catch (e) {
    throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: url ${JSON.stringify(String(url))}`, { cause: e });
  }
  init = init || {};
  if (typeof init !== "object") throw badInput("init", init, "an object (fetch's RequestInit)");
  const headers = [];
  new Headers(init.headers || {}).forEach((v, k) => headers.push([k, v]));
  let body;
  if (init.body !== undefined && init.body !== null) {
    if (typeof init.body === "string") body = init.body;
    else if (asBytes(init.body) !== undefined) body = new Uint8Array(asBytes(init.body));
    else if (typeof Blob !== "undefined" && init.body instanceof Blob) body = new Uint8Array(await init.body.arrayBuffer());
    else throw badInput("init.body", init.body, "a string, a Uint8Array, an ArrayBuffer or a Blob");
  }
  return { method: String(init.method || "GET"), path: u.pathname + u.search, headers, body };
}

/**
 * Sends one HTTP request to an attested enclave through an Oblivious HTTP
 * relay (RFC 9458): the relay learns who asks but not what, the
 * enclave's operator what but not who. Before anything is sent, it
 * fetches the enclave's attestation document through the relay and
 * decides on it exactly as verify does (options.policy, options.files);
 * then it requires the key configurations the relay serves for the
 * gateway to be byte for byte the ones the verified document commits to,
 * and seals the request to that key (the post-quantum hybrid
 * MLKEM768-X25519, or X25519 with options.kem "x25519") in the module.
 * Not trusted: ATTESTLOG_NOT_TRUSTED (error.verdict); another key:
 * ATTESTLOG_KEY_NOT_ATTESTED; in both cases nothing was sent. Returns a
 * Response (response.attestlog holds the verdict, the key set and the
 * KEM) as soon as the enclave's status and header fields are in: the
 * request and its answer are chunked OHTTP (draft-ietf-ohai-chunked-ohttp),
 * so the body is a stream that gives out each chunk once it opened — a
 * model's tokens arrive one by one. An answer tampered with or cut on the
 * way is ATTESTLOG_BAD_EVIDENCE, from attestedFetch or as the body
 * stream's error: a cut answer never reads as a short one. options.signal
 * also stops the body; options.timeoutMs bounds the wait for the head.
 *
 * url is the path (and query) at the enclave's service, or a URL whose
 * path is taken; init is fetch's (method, headers, body, signal).
 */
export async function attestedFetch(url, init, options) {
  if (options === undefined || options === null || typeof options !== "object") throw badInput("options", options, "{policy, relay, ...}");
  for (const k of Object.keys(options)) {
    if (!optionNames.attested.includes(k)) {
      throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: options: unknown option ${JSON.stringify(k)} (want ${optionNames.attested.join(", ")})`);
    }
  }
  const policy = text("options.policy", options.policy);
  if (typeof options.relay !== "string" && !(options.relay instanceof URL)) throw badInput("options.relay", options.relay, "the relay's URL for the enclave's gateway (http(s)://relay/g/NAME)");
  const relayURL = new URL(String(options.relay));
  if (relayURL.protocol !== "https:" && relayURL.protocol !== "http:") throw new AttestlogError(ErrorCode.BAD_INPUT, `attestlog: options.relay ${relayURL}: want http(s)://`);
  const relay = String(relayURL).replace(/\/$/, "");
  if (options.kem !== undefined && options.kem !== "x25519" && options.kem !== "mlkem768x25519") throw badInput("options.kem", options.kem, "\"mlkem768x25519\" or \"x25519\"");
  const { module: mo } = readOptions("verify", { files: options.files, now: options.now });
  if (options.kem !== undefined) mo.kem = options.kem;
  const call = callOptions({ signal: options.signal || (init && init.signal), timeoutMs: options.timeoutMs });
  const req = await requestParts(url, init);
  return withDeadline(call, async (signal) => {
    const m = await module(signal);
    const [doc, keys] = await Promise.all([
      relayGet(relay, RELAY_DOCUMENT, "application/json", MAX_BUNDLE, signal),
      relayGet(relay, RELAY_KEYS, "application/ohttp-keys", 16 << 10, signal),
    ]);
    const s = await settle(m.sealRequest(policy, doc, keys, req, mo));
    const verdict = JSON.parse(s.verdict);
    if (!verdict.ok || s.sealed === null || s.sealed === undefined) {
      const failed = (verdict.checks || []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.reason}`);
      throw new AttestlogError(ErrorCode.NOT_TRUSTED, `attestlog: NOT TRUSTED, nothing sent: the enclave behind ${relay}: ${failed.join("; ")}`, { verdict, url: relay });
    }
    let resp;
    try {
      resp = await fetch(relay, { method: "POST", signal, body: s.sealed, headers: { "Content-Type": OHTTP_CHUNKED_REQ, "Incremental": "?1" }, credentials: "omit", cache: "no-store", redirect: "error" });
    } catch (e) {
      m.forget(s.handle);
      if (signal.aborted) throw signal.reason;
      throw new AttestlogError(ErrorCode.FETCH, `attestlog: posting to the relay ${relay}: ${e && e.message ? e.message : e}`, { cause: e, url: relay });
    }
    if (resp.status !== 200 || resp.headers.get("Content-Type") !== OHTTP_CHUNKED_RES || !resp.body) {
      m.forget(s.handle);
      const text = await readLimited(resp, 4096, relay).catch(() => new Uint8Array());
      throw new AttestlogError(ErrorCode.FETCH, `attestlog: the relay ${relay} answered ${resp.status} ${resp.statusText} (${resp.headers.get("Content-Type")}): ${new TextDecoder().decode(text.slice(0, 200)).trim()}`, { status: resp.status, url: relay });
    }
    // The answer is a chunked OHTTP response (RFC 9458 with the chunked
    // draft): the module opens each chunk as it arrives and gives out
    // only what opened; the body is a stream, so a model's tokens reach
    // the page one by one. A cut or tampered answer errors the stream.
    const reader = resp.body.getReader();
    const head = await settle(m.openStream(s.handle, reader)).catch((e) => { m.forget(s.handle); throw e; });
    const userSignal = call.signal;
    const stop = () => m.forget(s.handle);
    if (userSignal) userSignal.addEventListener("abort", stop, { once: true });
    const body = new ReadableStream({
      async pull(ctl) {
        try {
          const c = await settle(m.readStream(s.handle));
          if (c === null) {
            if (userSignal) userSignal.removeEventListener("abort", stop);
            ctl.close();
          } else {
            ctl.enqueue(c);
          }
        } catch (e) {
          if (userSignal) userSignal.removeEventListener("abort", stop);
          stop(); // the module forgets the answer (forgetting twice is harmless)
          ctl.error(userSignal && userSignal.aborted ? new AttestlogError(ErrorCode.ABORTED, "attestlog: aborted", { cause: userSignal.reason }) : e);
        }
      },
      cancel() {
        if (userSignal) userSignal.removeEventListener("abort", stop);
        stop();
      },
    });
    const nullBody = head.status === 204 || head.status === 304;
    if (nullBody) body.cancel();
    // A body the page drops unread would hold its handle in the module
    // (bounded there, then every new request refused): once nothing can
    // read the stream any more, the module forgets it.
    else if (abandoned) abandoned.register(body, { m, handle: s.handle, userSignal, stop });
    const out = new Response(nullBody ? null : body, { status: head.status, headers: head.headers });
    Object.defineProperty(out, "attestlog", { value: Object.freeze({ verdict, keySet: s.keySet, kem: s.kem, relay }), enumerable: false });
    return out;
  });
}

/** The module's version: the package's (the module reports the version it was built as). */
export async function version() {
  return (await load()).version;
}

/** What the module is: its version, the source revision it was built from, and which signatures WebCrypto verifies. */
export async function info() {
  const m = await load();
  return { version: m.version, revision: m.revision, crypto: JSON.parse(m.crypto) };
}
