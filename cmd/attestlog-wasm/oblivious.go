//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"

	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

// codeKeyNotAttested: the key configurations served through the relay are
// not those the verified document commits to (nothing was sealed).
const codeKeyNotAttested = "ATTESTLOG_KEY_NOT_ATTESTED"

// Oblivious HTTP requests sealed and not yet opened, by handle. Bounded:
// a page that never opens its answers cannot grow it without end.
var (
	sealedMu   sync.Mutex
	sealed     = map[int]*ohttp.ClientRequest{}
	nextHandle = 1
)

const maxPending = 1024

// maxObliviousContent bounds a request's content.
const maxObliviousContent = 8 << 20

func installOblivious(api js.Value) {
	api.Set("sealRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return sealRequestCall(args) })
	}))
	api.Set("openResponse", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return openResponseCall(args) })
	}))
	api.Set("forget", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) > 0 && args[0].Type() == js.TypeNumber {
			sealedMu.Lock()
			delete(sealed, args[0].Int())
			sealedMu.Unlock()
		}
		return nil
	}))
}

// sealRequestCall is sealRequest(policyText, document, keys, request,
// options): the decision on the enclave's attestation document (fetched
// through the relay); when — and only when — it trusts the enclave and
// the key configurations served through the relay are byte for byte
// those the document's key set commits to, the request sealed to the
// attested HPKE key (the post-quantum hybrid unless options.kem is
// "x25519"). Returns {verdict, sealed: Uint8Array | null, handle, kem}.
func sealRequestCall(args []js.Value) (any, error) {
	for len(args) < 5 {
		args = append(args, js.Undefined())
	}
	optsV := args[4]
	kem := uint16(0)
	if !optsV.IsUndefined() && !optsV.IsNull() && optsV.Type() == js.TypeObject {
		if k := optsV.Get("kem"); !k.IsUndefined() {
			switch k.String() {
			case "x25519":
				kem = keyset.KEMX25519
			case "mlkem768x25519":
				kem = keyset.KEMMLKEM768X25519
			default:
				return nil, coded(codeBadInput, "options.kem: want \"mlkem768x25519\" or \"x25519\", got %q", k.String())
			}
			c := js.Global().Get("Object").Call("assign", js.Global().Get("Object").New(), optsV)
			c.Delete("kem")
			optsV = c
		}
	}
	o, err := readOptions(optsV)
	if err != nil {
		return nil, err
	}
	doc, err := bytesOf(args[1])
	if err != nil {
		return nil, coded(codeBadInput, "document: %w", err)
	}
	served, err := bytesOf(args[2])
	if err != nil {
		return nil, coded(codeBadInput, "keys: %w", err)
	}
	req, err := requestOf(args[3])
	if err != nil {
		return nil, err
	}
	v, err := verifier(args[0], o)
	if err != nil {
		return nil, err
	}
	b, err := evidence.ParseBundle(doc)
	if err != nil {
		return nil, &codedError{code: codeBadEvidence, err: err}
	}
	if b.Format != evidence.FormatKeySet {
		return nil, coded(codeBadEvidence, "the relay's document is %s evidence without a key set: it binds no HPKE key (is the relay's gateway an attestlog enclave agent?)", b.Format)
	}
	ks, err := b.ParsedKeySet()
	if err != nil {
		return nil, &codedError{code: codeBadEvidence, err: err}
	}
	vd := v.Verify(verify.Input{Evidence: b})
	out := js.Global().Get("Object").New()
	out.Set("verdict", string(vd.JSON()))
	out.Set("sealed", js.Null())
	if !vd.OK() {
		return out, nil // nothing sealed: the caller refuses to send
	}
	if err := ks.CheckServedConfigs(served); err != nil {
		return nil, &codedError{code: codeKeyNotAttested, err: err}
	}
	var cfg keyset.KeyConfig
	var su ohttp.Suite
	if kem != 0 {
		cfg, su, err = ohttp.ChooseKEM(ks.HPKE, kem)
	} else {
		cfg, su, err = ohttp.Choose(ks.HPKE)
	}
	if err != nil {
		return nil, &codedError{code: codeUnsupported, err: err}
	}
	msg, err := req.MarshalKnownLength()
	if err != nil {
		return nil, coded(codeBadInput, "request: %w", err)
	}
	enc, cr, err := ohttp.EncapsulateRequest(cfg, su, msg)
	if err != nil {
		return nil, &codedError{code: codeInternal, err: err}
	}
	sealedMu.Lock()
	if len(sealed) >= maxPending {
		sealedMu.Unlock()
		return nil, coded(codeBadInput, "more than %d sealed requests whose answers were not opened", maxPending)
	}
	h := nextHandle
	nextHandle++
	sealed[h] = cr
	sealedMu.Unlock()
	a := js.Global().Get("Uint8Array").New(len(enc))
	js.CopyBytesToJS(a, enc)
	out.Set("sealed", a)
	out.Set("handle", h)
	out.Set("kem", keyset.KEMName(cfg.KEM))
	d := keyset.Digest(b.KeySet)
	out.Set("keySet", fmt.Sprintf("%x", d[:]))
	return out, nil
}

// requestOf reads {method, path, headers: [[name, value]...], body}.
func requestOf(v js.Value) (*bhttp.Request, error) {
	if v.Type() != js.TypeObject {
		return nil, coded(codeBadInput, "request: want an object, got %s", typeName(v))
	}
	r := &bhttp.Request{Method: "GET", Scheme: "https", Path: "/"}
	if m := v.Get("method"); m.Type() == js.TypeString {
		r.Method = strings.ToUpper(m.String())
	}
	if p := v.Get("path"); p.Type() == js.TypeString {
		r.Path = p.String()
	}
	if h := v.Get("headers"); !h.IsUndefined() && !h.IsNull() {
		if !h.InstanceOf(js.Global().Get("Array")) {
			return nil, coded(codeBadInput, "request.headers: want an array of [name, value]")
		}
		for i := range h.Length() {
			p := h.Index(i)
			if p.Length() != 2 || p.Index(0).Type() != js.TypeString || p.Index(1).Type() != js.TypeString {
				return nil, coded(codeBadInput, "request.headers[%d]: want [name, value]", i)
			}
			r.Header = append(r.Header, bhttp.Field{Name: strings.ToLower(p.Index(0).String()), Value: p.Index(1).String()})
		}
	}
	if b := v.Get("body"); !b.IsUndefined() && !b.IsNull() {
		if b.Type() == js.TypeString {
			r.Content = []byte(b.String())
		} else if b.InstanceOf(js.Global().Get("Uint8Array")) {
			r.Content = make([]byte, b.Length())
			js.CopyBytesToGo(r.Content, b)
		} else {
			return nil, coded(codeBadInput, "request.body: want a string or a Uint8Array, got %s", typeName(b))
		}
	}
	if len(r.Content) > maxObliviousContent {
		return nil, coded(codeBadInput, "request.body: more than %d bytes", maxObliviousContent)
	}
	return r, nil
}

// openResponseCall is openResponse(handle, bytes): the answer to a sealed
// request, opened (once) — {status, headers: [[name, value]...], body}.
// A tampered, truncated or foreign answer is ATTESTLOG_BAD_EVIDENCE.
func openResponseCall(args []js.Value) (any, error) {
	if len(args) < 2 || args[0].Type() != js.TypeNumber {
		return nil, coded(codeBadInput, "openResponse(handle, bytes)")
	}
	sealedMu.Lock()
	cr := sealed[args[0].Int()]
	delete(sealed, args[0].Int())
	sealedMu.Unlock()
	if cr == nil {
		return nil, coded(codeBadInput, "no sealed request %d (each answer opens once)", args[0].Int())
	}
	raw, err := bytesOf(args[1])
	if err != nil {
		return nil, coded(codeBadInput, "response: %w", err)
	}
	msg, err := cr.OpenResponse(raw)
	if err != nil {
		return nil, coded(codeBadEvidence, "the relay's answer does not open (tampered with, cut, or not the answer to this request): %w", err)
	}
	resp, err := bhttp.ParseResponseLimits(msg, bhttp.Limits{MaxFieldSection: 64 << 10, MaxFields: 256, MaxContent: 64 << 20})
	if err != nil {
		return nil, &codedError{code: codeBadEvidence, err: errors.Join(errors.New("the enclave's answer"), err)}
	}
	out := js.Global().Get("Object").New()
	out.Set("status", resp.Status)
	hs := js.Global().Get("Array").New()
	for _, f := range resp.Header {
		hs.Call("push", js.ValueOf([]any{f.Name, f.Value}))
	}
	out.Set("headers", hs)
	body := js.Global().Get("Uint8Array").New(len(resp.Content))
	js.CopyBytesToJS(body, resp.Content)
	out.Set("body", body)
	return out, nil
}
