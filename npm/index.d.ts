/** One named step of a decision, passed or failed with the reason. */
export interface Check {
  name: string;
  ok: boolean;
  reason: string;
}

/** The logged release a verdict is about. */
export interface ReleaseInfo {
  log: string;
  index: number;
  version: string;
  platform: string;
  measurement: string;
  operator?: string;
  source: string;
  cosigners?: string[];
  reproduced_by?: string[];
  has_provenance: boolean;
}

/** The decision: trust only when ok is true (every check passed). */
export interface Verdict {
  ok: boolean;
  checks: Check[];
  /** The fields of the hardware evidence (SEV-SNP report or TDX quote). */
  hardware?: Record<string, unknown>;
  release?: ReleaseInfo;
}

/**
 * The stable codes of AttestlogError (match on error.code):
 *
 * - ATTESTLOG_BAD_INPUT: an argument or option of the wrong type or value
 *   (an unknown option, a nonce that is not hex or not 16 to 64 bytes,
 *   evidence that is a number, …).
 * - ATTESTLOG_BAD_POLICY: the policy does not parse, or names a file that
 *   options.files lacks.
 * - ATTESTLOG_UNSUPPORTED: the policy needs what this build of the module
 *   leaves out (a sigstore-root line: see the README).
 * - ATTESTLOG_BAD_EVIDENCE: the evidence, options.proof or an enclave's
 *   answer is not what it should be (it does not parse).
 * - ATTESTLOG_FETCH: the enclave could not be asked: the network, an answer
 *   other than 200 OK (error.status), an answer over 512 KiB.
 * - ATTESTLOG_NOT_TRUSTED: trustEnclave and attestedFetch: the verdict is
 *   NOT TRUSTED (error.verdict holds it); attestedFetch sent nothing.
 * - ATTESTLOG_KEY_NOT_ATTESTED: attestedFetch: the relay served OHTTP key
 *   configurations the verified document does not commit to; nothing sent.
 * - ATTESTLOG_TIMEOUT: options.timeoutMs passed before the call finished.
 * - ATTESTLOG_ABORTED: options.signal aborted before the call finished.
 * - ATTESTLOG_LOAD: the WebAssembly module could not be loaded.
 * - ATTESTLOG_INTERNAL: a bug; please report it.
 *
 * A decision against the enclave is not an error: verify and
 * fetchAndVerify return its Verdict with ok false.
 */
export type ErrorCodeValue =
  | "ATTESTLOG_BAD_INPUT"
  | "ATTESTLOG_BAD_POLICY"
  | "ATTESTLOG_UNSUPPORTED"
  | "ATTESTLOG_BAD_EVIDENCE"
  | "ATTESTLOG_FETCH"
  | "ATTESTLOG_NOT_TRUSTED"
  | "ATTESTLOG_KEY_NOT_ATTESTED"
  | "ATTESTLOG_TIMEOUT"
  | "ATTESTLOG_ABORTED"
  | "ATTESTLOG_LOAD"
  | "ATTESTLOG_INTERNAL";

export declare const ErrorCode: Readonly<{
  BAD_INPUT: "ATTESTLOG_BAD_INPUT";
  BAD_POLICY: "ATTESTLOG_BAD_POLICY";
  UNSUPPORTED: "ATTESTLOG_UNSUPPORTED";
  BAD_EVIDENCE: "ATTESTLOG_BAD_EVIDENCE";
  FETCH: "ATTESTLOG_FETCH";
  NOT_TRUSTED: "ATTESTLOG_NOT_TRUSTED";
  KEY_NOT_ATTESTED: "ATTESTLOG_KEY_NOT_ATTESTED";
  TIMEOUT: "ATTESTLOG_TIMEOUT";
  ABORTED: "ATTESTLOG_ABORTED";
  LOAD: "ATTESTLOG_LOAD";
  INTERNAL: "ATTESTLOG_INTERNAL";
}>;

/** Every error this package throws or rejects with. */
export declare class AttestlogError extends Error {
  name: "AttestlogError";
  code: ErrorCodeValue;
  /** ATTESTLOG_NOT_TRUSTED: the verdict. */
  verdict?: Verdict;
  /** ATTESTLOG_FETCH: the HTTP status, when the enclave answered. */
  status?: number;
  /** ATTESTLOG_FETCH, ATTESTLOG_NOT_TRUSTED: the URL asked. */
  url?: string;
}

/** Bytes, as a JavaScript developer has them (Node's Buffer is a Uint8Array). */
export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;

/** The deadline of a call: the first of signal and timeoutMs ends it. */
export interface CallOptions {
  /** Abort the call (ATTESTLOG_ABORTED): the fetch stops; a decision already running finishes and is discarded. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds (ATTESTLOG_TIMEOUT). No default for verify; fetchAndVerify and trustEnclave have none either: set one. */
  timeoutMs?: number;
}

export interface Options extends CallOptions {
  /** Files the policy names (trust-root, crl, tdx-collateral), by the names it gives them. */
  files?: Record<string, string | Bytes> | Map<string, string | Bytes>;
  /** Decide as of this time instead of now (an RFC 3339 string or a Date). */
  now?: string | Date;
  /** A tlog-proof to use instead of the one stapled to the evidence. */
  proof?: string | Bytes;
}

export interface LoadOptions extends CallOptions {
  /** Where the module is (default: dist/attestlog.wasm next to index.js). */
  wasmURL?: string | URL;
  /** false: verify every signature with Go's code, not WebCrypto (slower; the same decisions). Default true. */
  webCrypto?: boolean;
}

/** The keys an enclave's evidence binds, given only with a TRUSTED verdict. */
export interface AttestedKeys {
  /** The channel key the evidence binds (e.g. the enclave's TLS key, DER SubjectPublicKeyInfo), if it has one. */
  channelKey?: Uint8Array;
}

export interface TrustedEnclave {
  url: string;
  /** Always ok. */
  verdict: Verdict;
  keys: AttestedKeys;
}

/** What the loaded module is. */
export interface ModuleInfo {
  /** The package's version: the module was built as it. */
  version: string;
  /** The source revision it was built from (git describe). */
  revision: string;
  /** Which signatures WebCrypto verifies (those that answered the self-test as Go does); Go's code verifies the rest. */
  crypto: { webcrypto: boolean; algorithms: string[]; refused?: Record<string, string>; reason?: string };
}

/**
 * Evidence: JSON text, bytes (an evidence bundle, a raw SEV-SNP report with
 * its certificate table, a TDX quote), or a parsed evidence bundle.
 */
export type Evidence = string | Bytes | Record<string, unknown>;

/** A nonce: hex text or bytes (16 to 64); undefined, null or "" for none. */
export type Nonce = string | Bytes | null | undefined;

/** Loads the WebAssembly module (once; later calls return the same promise). */
export function load(options?: LoadOptions | string | URL): Promise<unknown>;
/** The verdict's JSON text, byte for byte what `attestlog verify --json` prints. */
export function verifyJSON(policyText: string | Bytes, evidence: Evidence, nonce?: Nonce, options?: Options): Promise<string>;
/** verifyJSON, parsed. */
export function verify(policyText: string | Bytes, evidence: Evidence, nonce?: Nonce, options?: Options): Promise<Verdict>;
/** Fetches evidence from the enclave with a fresh nonce and decides on it (a NOT TRUSTED verdict is returned, not thrown). */
export function fetchAndVerify(enclaveURL: string | URL, policyText: string | Bytes, options?: Options): Promise<Verdict>;
/** fetchAndVerify requiring TRUSTED: the enclave and the keys its evidence binds, or ATTESTLOG_NOT_TRUSTED. */
export function trustEnclave(enclaveURL: string | URL, policyText: string | Bytes, options?: Options): Promise<TrustedEnclave>;
/** The module's version (the package's). */
export function version(): Promise<string>;
export function info(): Promise<ModuleInfo>;

/** attestedFetch's options. */
export interface AttestedFetchOptions extends CallOptions {
  /** The trust policy (text or UTF-8 bytes). */
  policy: string | Bytes;
  /** The OHTTP relay's URL for the enclave's gateway (`attestlog relay`: http(s)://relay/g/NAME). */
  relay: string | URL;
  /** The files the policy names (trust-root, crl, tdx-collateral), by name. */
  files?: Record<string, string | Bytes> | Map<string, string | Bytes>;
  /** The verification time (default: now). */
  now?: Date | string;
  /** The HPKE KEM: the post-quantum hybrid (default) or X25519. */
  kem?: "mlkem768x25519" | "x25519";
}

/** What attestedFetch decided, on the Response it returns. */
export interface AttestedResponseInfo {
  verdict: Verdict;
  /** Hex SHA-256 of the attested key set the request was sealed to. */
  keySet: string;
  /** "MLKEM768-X25519" or "X25519". */
  kem: string;
  relay: string;
}

/**
 * One HTTP request to an attested enclave through an Oblivious HTTP relay
 * (RFC 9458): verified first (as verify does), then sealed to the HPKE key
 * the verified document commits to; nothing is sent otherwise
 * (ATTESTLOG_NOT_TRUSTED, ATTESTLOG_KEY_NOT_ATTESTED). Request and answer
 * are chunked OHTTP: the Response resolves once the enclave's head is
 * in, and its body streams, each chunk given out once it opened; a
 * tampered or cut answer errors it with ATTESTLOG_BAD_EVIDENCE.
 * options.signal also stops the body; options.timeoutMs bounds the head.
 */
export function attestedFetch(url: string | URL, init: RequestInit | undefined, options: AttestedFetchOptions): Promise<Response & { readonly attestlog: AttestedResponseInfo }>;
