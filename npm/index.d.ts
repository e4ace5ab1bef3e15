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

export interface Options {
  /** Files the policy names (trust-root, crl, tdx-collateral), by the names it gives them. */
  files?: Record<string, string | Uint8Array>;
  /** Decide as of this time (RFC 3339) instead of now. */
  now?: string;
  /** A tlog-proof to use instead of the one stapled to the evidence. */
  proof?: string | Uint8Array;
}

/** Loads the WebAssembly module (once). Default: dist/attestlog.wasm next to this package. */
export function load(wasmURL?: string): Promise<unknown>;
/** The verdict's JSON text, byte for byte what `attestlog verify --json` prints. */
export function verifyJSON(policyText: string, evidence: string | Uint8Array, nonceHex?: string, options?: Options): Promise<string>;
export function verify(policyText: string, evidence: string | Uint8Array, nonceHex?: string, options?: Options): Promise<Verdict>;
/** Fetches evidence from the enclave with a fresh nonce and decides on it. */
export function fetchAndVerify(enclaveURL: string, policyText: string, options?: Options): Promise<Verdict>;
export function version(): Promise<string>;
