// @attestlog/verify: the client decision of attestlog (policy/verify),
// compiled from Go to WebAssembly. The same code as `attestlog verify`,
// returning the same Verdict JSON.

let loading;

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

async function wasmBytes(url) {
  if (isNode) {
    const { readFile } = await import("node:fs/promises");
    const { fileURLToPath } = await import("node:url");
    return readFile(url.protocol === "file:" ? fileURLToPath(url) : url);
  }
  const resp = await fetch(url);
  if (!resp.ok) {
    throw new Error(`attestlog: fetching ${url}: ${resp.status}`);
  }
  return resp.arrayBuffer();
}

/**
 * Loads the module (once; later calls return the same promise). By default
 * it is read from dist/attestlog.wasm next to this file.
 */
export function load(wasmURL) {
  if (!loading) {
    loading = (async () => {
      if (typeof globalThis.Go === "undefined") {
        await import("./dist/wasm_exec.js");
      }
      const url = wasmURL ? new URL(wasmURL, isNode ? `file://${process.cwd()}/` : globalThis.location.href) : new URL("./dist/attestlog.wasm", import.meta.url);
      const go = new globalThis.Go();
      const ready = new Promise((resolve) => { globalThis.__attestlogReady = resolve; });
      const { instance } = await WebAssembly.instantiate(await wasmBytes(url), go.importObject);
      go.run(instance); // runs until the page (or process) goes away
      await ready;
      return globalThis.__attestlog;
    })();
  }
  return loading;
}

/**
 * Decides whether to trust an enclave from its evidence, as `attestlog
 * verify --json` does, and returns the verdict's JSON text.
 */
export async function verifyJSON(policyText, evidence, nonce, options) {
  const m = await load();
  return m.verify(policyText, evidence, nonce ?? "", options ?? {});
}

/** verifyJSON, parsed. */
export async function verify(policyText, evidence, nonce, options) {
  return JSON.parse(await verifyJSON(policyText, evidence, nonce, options));
}

/**
 * Fetches evidence from the enclave with a fresh nonce
 * (GET <enclaveURL>/.well-known/attestlog/evidence?nonce=…) and decides on
 * it, with the proofs the enclave staples.
 */
export async function fetchAndVerify(enclaveURL, policyText, options) {
  const m = await load();
  return JSON.parse(await m.fetchAndVerify(enclaveURL, policyText, options ?? {}));
}

/** The module's version (the attestlog Go module version it was built from). */
export async function version() {
  return (await load()).version;
}
