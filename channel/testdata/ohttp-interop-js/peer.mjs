// An Oblivious HTTP peer (RFC 9458) written on independent libraries —
// dajiaji's HPKE (@hpke/core, @hpke/dhkem-x25519, @hpke/hybridkem-x-wing,
// @hpke/chacha20poly1305) and Binary HTTP (bhttp-js) — and nothing of
// attestlog's: channel's TestInteropOHTTPJS runs it against attestlog's
// relay, gateway and client.
//
//   node peer.mjs client RELAY BODY
//     fetches RELAY/keys, and for every key configuration and symmetric
//     pair it implements sends BODY (a chat request) through the relay, opens
//     the answer and tampered copies of it; then sends requests sealed to
//     key configurations the gateway does not hold. Prints one JSON line.
//   node peer.mjs gateway X25519_IKM XWING_SEED
//     serves a gateway on 127.0.0.1 (GET and POST /.well-known/ohttp-gateway)
//     with a DHKEM(X25519) key derived from X25519_IKM (RFC 9180
//     DeriveKeyPair) and an X-Wing key whose private key is XWING_SEED,
//     prints {"url": ...}, and serves until its standard input closes.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { Aes128Gcm, Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { XWing } from "@hpke/hybridkem-x-wing";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { BHttpDecoder, BHttpEncoder } from "bhttp-js";

const te = new TextEncoder();
const td = new TextDecoder();

// The algorithms this peer implements, by HPKE identifier.
const KEMS = { 0x0020: () => new DhkemX25519HkdfSha256(), 0x647a: () => new XWing() };
const NPK = { 0x0020: 32, 0x647a: 1216 };
const NENC = { 0x0020: 32, 0x647a: 1120 };
const KDFS = { 0x0001: () => new HkdfSha256() };
const AEADS = { 0x0001: () => new Aes128Gcm(), 0x0002: () => new Aes256Gcm(), 0x0003: () => new Chacha20Poly1305() };

const hex = (b) => Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString("hex");
const concat = (...parts) => {
  const bs = parts.map((p) => (p instanceof ArrayBuffer ? new Uint8Array(p) : p));
  const out = new Uint8Array(bs.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of bs) {
    out.set(b, off);
    off += b.length;
  }
  return out;
};
const u16 = (v) => new Uint8Array([v >> 8, v & 0xff]);

// parseKeyConfigs reads an application/ohttp-keys body (RFC 9458 §3.2):
// each key configuration (§3.1) prefixed by its 2-byte length.
function parseKeyConfigs(b) {
  const out = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let off = 0; off < b.length;) {
    const n = dv.getUint16(off);
    const c = b.subarray(off + 2, off + 2 + n);
    off += 2 + n;
    if (c.length !== n) throw new Error("key configurations truncated");
    const kem = (c[1] << 8) | c[2];
    const npk = NPK[kem];
    if (npk === undefined) {
      out.push({ id: c[0], kem, unsupported: true });
      continue;
    }
    const pk = c.slice(3, 3 + npk);
    const symLen = (c[3 + npk] << 8) | c[4 + npk];
    const syms = [];
    for (let i = 5 + npk; i < 5 + npk + symLen; i += 4) {
      syms.push({ kdf: (c[i] << 8) | c[i + 1], aead: (c[i + 2] << 8) | c[i + 3] });
    }
    if (5 + npk + symLen !== c.length) throw new Error(`key configuration ${c[0]} has trailing bytes`);
    out.push({ id: c[0], kem, pk, syms });
  }
  return out;
}

// encodeKeyConfig is one key configuration (RFC 9458 §3.1).
function encodeKeyConfig(c) {
  const syms = c.syms.flatMap((s) => [...u16(s.kdf), ...u16(s.aead)]);
  return concat(new Uint8Array([c.id]), u16(c.kem), c.pk, u16(syms.length), new Uint8Array(syms));
}

function suiteOf(kem, kdf, aead) {
  return new CipherSuite({ kem: KEMS[kem](), kdf: KDFS[kdf](), aead: AEADS[aead]() });
}

const header = (id, kem, kdf, aead) => concat(new Uint8Array([id]), u16(kem), u16(kdf), u16(aead));
const requestInfo = (hdr) => concat(te.encode("message/bhttp request"), new Uint8Array([0]), hdr);

// responseKeys derives the response AEAD key and nonce (RFC 9458 §4.4):
// secret = context.export("message/bhttp response", max(Nn, Nk));
// salt = enc || response_nonce; prk = Extract(salt, secret);
// key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn). The
// KDF's extractAndExpand is Expand(Extract(salt, ikm), info, L).
async function responseKeys(ctx, kdfID, aead, enc, responseNonce) {
  const nk = aead.keySize, nn = aead.nonceSize;
  const secret = await ctx.export(te.encode("message/bhttp response"), Math.max(nn, nk));
  const salt = concat(enc, responseNonce);
  const kdf = KDFS[kdfID]();
  const key = await kdf.extractAndExpand(salt, secret, te.encode("key"), nk);
  const nonce = await kdf.extractAndExpand(salt, secret, te.encode("nonce"), nn);
  return { key, nonce };
}

// encapsulateRequest seals the Binary HTTP message msg to configuration
// cfg (RFC 9458 §4.3): hdr || enc || ct.
async function encapsulateRequest(cfg, kdf, aead, msg) {
  const suite = suiteOf(cfg.kem, kdf, aead);
  const hdr = header(cfg.id, cfg.kem, kdf, aead);
  const pk = await suite.kem.deserializePublicKey(cfg.pk);
  const sender = await suite.createSenderContext({ recipientPublicKey: pk, info: requestInfo(hdr) });
  const ct = await sender.seal(msg);
  const enc = new Uint8Array(sender.enc);
  return { body: concat(hdr, enc, ct), sender, enc, suite, kdf, aead };
}

// openResponse opens a message/ohttp-res body for the request req.
async function openResponse(req, res) {
  const a = AEADS[req.aead]();
  const n = Math.max(a.nonceSize, a.keySize);
  if (res.length < n) throw new Error(`a response of ${res.length} bytes`);
  const { key, nonce } = await responseKeys(req.sender, req.kdf, a, req.enc, res.subarray(0, n));
  return new Uint8Array(await a.createEncryptionContext(key).open(nonce, res.subarray(n), new Uint8Array(0)));
}

async function client(relay, body) {
  const out = { keys: {}, exchanges: [], refused: [] };
  const kr = await fetch(relay + "/keys");
  out.keys.status = kr.status;
  out.keys.contentType = kr.headers.get("content-type");
  const configs = parseKeyConfigs(new Uint8Array(await kr.arrayBuffer()));
  out.keys.configs = configs.map((c) => ({ id: c.id, kem: c.kem, syms: c.syms }));
  for (const cfg of configs) {
    if (cfg.unsupported) continue;
    for (const s of cfg.syms) {
      if (!KDFS[s.kdf] || !AEADS[s.aead]) continue;
      const x = { id: cfg.id, kem: cfg.kem, kdf: s.kdf, aead: s.aead };
      out.exchanges.push(x);
      try {
        const breq = await new BHttpEncoder().encodeRequest(new Request("https://enclave.example/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json", "x-interop": "bhttp-js" },
          body,
        }));
        x.bhttpRequest = hex(breq);
        const req = await encapsulateRequest(cfg, s.kdf, s.aead, breq);
        const r = await fetch(relay, { method: "POST", headers: { "content-type": "message/ohttp-req" }, body: req.body });
        x.status = r.status;
        x.contentType = r.headers.get("content-type");
        const sealed = new Uint8Array(await r.arrayBuffer());
        if (r.status !== 200) {
          x.error = td.decode(sealed);
          continue;
        }
        const bres = await openResponse(req, sealed);
        x.bhttpResponse = hex(bres);
        const resp = new BHttpDecoder().decodeResponse(bres);
        x.innerStatus = resp.status;
        x.innerContentType = resp.headers.get("content-type");
        x.innerBody = await resp.text();
        // Tampered copies: a flipped bit in the response nonce, in the
        // ciphertext, in the tag; and one cut short.
        x.tampered = {};
        for (const [name, at] of [["nonce", 0], ["ciphertext", sealed.length - 20], ["tag", sealed.length - 1]]) {
          const t = sealed.slice();
          t[at] ^= 1;
          x.tampered[name] = await openResponse(req, t).then(() => "opened", (e) => "refused: " + e.constructor.name);
        }
        x.tampered.truncated = await openResponse(req, sealed.subarray(0, sealed.length - 1)).then(() => "opened", (e) => "refused: " + e.constructor.name);
      } catch (e) {
        x.error = String(e && e.stack || e);
      }
    }
  }
  // Requests to key configurations the gateway does not hold: an unknown
  // key identifier, and a known identifier with another public key.
  const x25519 = configs.find((c) => c.kem === 0x0020);
  if (x25519) {
    const kem = new DhkemX25519HkdfSha256();
    const kp = await kem.generateKeyPair();
    const pk = new Uint8Array(await kem.serializePublicKey(kp.publicKey));
    const used = new Set(configs.map((c) => c.id));
    let unknown = 0;
    while (used.has(unknown)) unknown++;
    const breq = await new BHttpEncoder().encodeRequest(new Request("https://enclave.example/v1/chat/completions", { method: "POST", body }));
    for (const [name, id] of [["unknown key id", unknown], ["other public key", x25519.id]]) {
      const cfg = { id, kem: 0x0020, pk, syms: x25519.syms };
      const req = await encapsulateRequest(cfg, x25519.syms[0].kdf, x25519.syms[0].aead, breq);
      const r = await fetch(relay, { method: "POST", headers: { "content-type": "message/ohttp-req" }, body: req.body });
      out.refused.push({ name, id, status: r.status, contentType: r.headers.get("content-type"), body: await r.text() });
    }
  }
  return out;
}

async function gateway(x25519IKM, xwingSeed) {
  const keys = new Map();
  const syms = [{ kdf: 1, aead: 1 }, { kdf: 1, aead: 3 }];
  {
    const kem = new DhkemX25519HkdfSha256();
    const kp = await kem.deriveKeyPair(Buffer.from(x25519IKM, "hex"));
    keys.set(1, { id: 1, kem: 0x0020, pk: new Uint8Array(await kem.serializePublicKey(kp.publicKey)), sk: kp.privateKey, syms });
  }
  {
    const kem = new XWing();
    const kp = await kem.generateKeyPairDerand(new Uint8Array(Buffer.from(xwingSeed, "hex")));
    keys.set(2, { id: 2, kem: 0x647a, pk: new Uint8Array(await kem.serializePublicKey(kp.publicKey)), sk: kp.privateKey, syms });
  }
  const configs = concat(...[...keys.values()].map((k) => {
    const c = encodeKeyConfig(k);
    return concat(u16(c.length), c);
  }));

  // RFC 9458 §5.3: a request for a key configuration this gateway does
  // not have is answered 400 with the problem type ohttp-key (RFC 9457).
  const keyProblem = (res, detail) => {
    res.writeHead(400, { "content-type": "application/problem+json" });
    res.end(JSON.stringify({ type: "https://iana.org/assignments/http-problem-types#ohttp-key", title: "key identifier unknown", detail }));
  };

  async function decapsulate(b) {
    if (b.length < 7) return { problem: "shorter than the header" };
    const hdr = b.subarray(0, 7);
    const [id, kem, kdf, aead] = [b[0], (b[1] << 8) | b[2], (b[3] << 8) | b[4], (b[5] << 8) | b[6]];
    const k = keys.get(id);
    if (!k || k.kem !== kem || !k.syms.some((s) => s.kdf === kdf && s.aead === aead)) return { problem: `key ${id} with ${kem}/${kdf}/${aead}` };
    const enc = b.slice(7, 7 + NENC[kem]);
    const suite = suiteOf(kem, kdf, aead);
    const recipient = await suite.createRecipientContext({ recipientKey: k.sk, enc, info: requestInfo(hdr) });
    const msg = new Uint8Array(await recipient.open(b.subarray(7 + NENC[kem])));
    return { msg, recipient, enc, kdf, aead };
  }

  async function sealResponse(d, msg) {
    const a = AEADS[d.aead]();
    const responseNonce = new Uint8Array(randomBytes(Math.max(a.nonceSize, a.keySize)));
    const { key, nonce } = await responseKeys(d.recipient, d.kdf, a, d.enc, responseNonce);
    return concat(responseNonce, await a.createEncryptionContext(key).seal(nonce, msg, new Uint8Array(0)));
  }

  const server = createServer(async (req, res) => {
    try {
      if (req.url !== "/.well-known/ohttp-gateway") {
        res.writeHead(404).end();
        return;
      }
      if (req.method === "GET") {
        res.writeHead(200, { "content-type": "application/ohttp-keys" }).end(configs);
        return;
      }
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const b = new Uint8Array(Buffer.concat(chunks));
      if (req.headers["content-type"] !== "message/ohttp-req") {
        res.writeHead(415).end("want message/ohttp-req");
        return;
      }
      let d;
      try {
        d = await decapsulate(b);
      } catch (e) {
        res.writeHead(400, { "content-type": "text/plain" }).end("does not decapsulate: " + e.constructor.name);
        return;
      }
      if (d.problem) {
        keyProblem(res, d.problem);
        return;
      }
      // The request, read by bhttp-js; the answer, written by bhttp-js.
      const inner = new BHttpDecoder().decodeRequest(d.msg);
      const echo = {
        method: inner.method,
        url: inner.url,
        contentType: inner.headers.get("content-type"),
        body: await inner.text(),
        kem: keys.get(b[0]).kem,
        kdf: d.kdf,
        aead: d.aead,
      };
      const answer = await new BHttpEncoder().encodeResponse(new Response(JSON.stringify(echo), {
        status: 201,
        headers: { "content-type": "application/json", "x-gateway": "ohttp-interop-js" },
      }));
      res.writeHead(200, { "content-type": "message/ohttp-res" }).end(await sealResponse(d, answer));
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(e && e.stack || e));
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }) + "\n");
  process.stdin.resume();
  process.stdin.on("end", () => server.close(() => process.exit(0)));
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "client") {
  process.stdout.write(JSON.stringify(await client(args[0], args[1])) + "\n");
} else if (mode === "gateway") {
  await gateway(args[0], args[1]);
} else {
  console.error("usage: node peer.mjs client RELAY BODY | gateway X25519_IKM XWING_SEED");
  process.exit(2);
}
