//go:build js && wasm

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// Oblivious HTTP requests sealed and not yet answered (an
// *ohttp.ChunkedRequest), and their answers
// being read (a *responseStream), by handle. Bounded: a page that never
// opens or reads its answers cannot grow it without end.
var (
	sealedMu   sync.Mutex
	sealed     = map[int]any{}
	nextHandle = 1
)

const maxPending = 1024

// maxObliviousContent bounds a request's content.
const maxObliviousContent = 8 << 20

func installOblivious(api js.Value) {
	api.Set("sealRequest", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return sealRequestCall(args) })
	}))
	api.Set("openStream", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return openStreamCall(args) })
	}))
	api.Set("readStream", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return readStreamCall(args) })
	}))
	api.Set("forget", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) > 0 && args[0].Type() == js.TypeNumber {
			sealedMu.Lock()
			s, _ := sealed[args[0].Int()].(*responseStream)
			delete(sealed, args[0].Int())
			sealedMu.Unlock()
			if s != nil {
				s.src.cancel()
			}
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
// "x25519"), as a chunked request (message/ohttp-chunked-req: its answer
// is read with openStream and readStream as it arrives).
// Returns {verdict, sealed: Uint8Array | null, handle, kem, keySet}.
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
	var buf bytes.Buffer
	cr, err := ohttp.NewChunkedRequest(cfg, su, &buf)
	if err == nil {
		_, err = cr.Write(msg)
	}
	if err == nil {
		err = cr.Close()
	}
	if err != nil {
		return nil, &codedError{code: codeInternal, err: err}
	}
	enc := buf.Bytes()
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

// responseStream is the chunked answer to a sealed request, read as it
// arrives: the Binary HTTP response decapsulated from src.
type responseStream struct {
	src  *jsStreamReader
	sr   *bhttp.StreamedResponse
	busy bool // a readStream is running: reads are one at a time
}

// streamRead is how much of the content one readStream returns at most.
const streamRead = 64 << 10

// openStreamCall is openStream(handle, reader): the chunked answer to the
// chunked request sealed as handle, read from reader (a
// ReadableStreamDefaultReader of the relay's response body) until the
// enclave's status and header fields are in — {status, headers}; the
// content then comes from readStream(handle). A tampered, cut or foreign
// answer is ATTESTLOG_BAD_EVIDENCE, here or from readStream: no byte of
// it is given out unopened.
func openStreamCall(args []js.Value) (any, error) {
	if len(args) < 2 || args[0].Type() != js.TypeNumber || args[1].Type() != js.TypeObject {
		return nil, coded(codeBadInput, "openStream(handle, reader)")
	}
	h := args[0].Int()
	sealedMu.Lock()
	cr, _ := sealed[h].(*ohttp.ChunkedRequest)
	var st *responseStream
	if cr != nil {
		// The handle now names the answer being read.
		st = &responseStream{src: &jsStreamReader{r: args[1]}, busy: true}
		sealed[h] = st
	}
	sealedMu.Unlock()
	if cr == nil {
		return nil, coded(codeBadInput, "no chunked request %d whose answer is unread", h)
	}
	sr, err := bhttp.ReadResponse(cr.OpenResponse(st.src), bhttp.Limits{MaxFieldSection: 64 << 10, MaxFields: 256})
	if err != nil {
		forgetStream(h, st)
		return nil, coded(codeBadEvidence, "the relay's answer does not open (tampered with, cut, or not the answer to this request): %w", err)
	}
	sealedMu.Lock()
	st.sr, st.busy = sr, false
	sealedMu.Unlock()
	out := js.Global().Get("Object").New()
	out.Set("status", sr.Status)
	hs := js.Global().Get("Array").New()
	for _, f := range sr.Header {
		hs.Call("push", js.ValueOf([]any{f.Name, f.Value}))
	}
	out.Set("headers", hs)
	return out, nil
}

// readStreamCall is readStream(handle): the next part of the content
// (a Uint8Array, as soon as any is opened), or null at its end — which
// comes only after the final chunk and the trailer, so a cut answer is
// an error, never a short one.
func readStreamCall(args []js.Value) (any, error) {
	if len(args) < 1 || args[0].Type() != js.TypeNumber {
		return nil, coded(codeBadInput, "readStream(handle)")
	}
	h := args[0].Int()
	sealedMu.Lock()
	st, _ := sealed[h].(*responseStream)
	ok := st != nil && st.sr != nil && !st.busy
	if ok {
		st.busy = true
	}
	sealedMu.Unlock()
	if !ok {
		return nil, coded(codeBadInput, "no answer %d being read (openStream first; one readStream at a time)", h)
	}
	buf := make([]byte, streamRead)
	for {
		n, err := st.sr.Body.Read(buf)
		if n > 0 {
			sealedMu.Lock()
			st.busy = false
			sealedMu.Unlock()
			a := js.Global().Get("Uint8Array").New(n)
			js.CopyBytesToJS(a, buf[:n])
			return a, nil
		}
		if err == io.EOF {
			if _, err := st.sr.Trailer(); err != nil {
				forgetStream(h, st)
				return nil, coded(codeBadEvidence, "the enclave's answer broke off: %w", err)
			}
			forgetStream(h, st)
			return js.Null(), nil
		}
		if err != nil {
			forgetStream(h, st)
			return nil, coded(codeBadEvidence, "the enclave's answer (tampered with or cut): %w", err)
		}
	}
}

// forgetStream drops handle h if it still names st, and stops reading.
func forgetStream(h int, st *responseStream) {
	sealedMu.Lock()
	if sealed[h] == st {
		delete(sealed, h)
	}
	sealedMu.Unlock()
	st.src.cancel()
}

// jsStreamReader reads a JavaScript ReadableStreamDefaultReader: each
// Read waits for one read() (the goroutine blocks; JavaScript runs).
type jsStreamReader struct {
	r    js.Value
	left []byte
	done bool
}

func (j *jsStreamReader) Read(p []byte) (int, error) {
	for len(j.left) == 0 {
		if j.done {
			return 0, io.EOF
		}
		v, err := await(j.r.Call("read"))
		if err != nil {
			return 0, fmt.Errorf("reading the relay's answer: %w", err)
		}
		if v.Get("done").Truthy() {
			j.done = true
			continue
		}
		c := v.Get("value")
		if c.Type() != js.TypeObject || !c.InstanceOf(js.Global().Get("Uint8Array")) {
			return 0, errors.New("reading the relay's answer: the stream gave no bytes")
		}
		j.left = make([]byte, c.Length())
		js.CopyBytesToGo(j.left, c)
	}
	n := copy(p, j.left)
	j.left = j.left[n:]
	return n, nil
}

// ignoreRejection handles a promise's rejection by ignoring it (one
// function for every use: a js.Func lives until released).
var ignoreRejection = js.FuncOf(func(js.Value, []js.Value) any { return nil })

// cancel stops the relay's response stream (its connection is let go).
func (j *jsStreamReader) cancel() {
	if !j.done {
		j.done = true
		j.r.Call("cancel").Call("catch", ignoreRejection)
	}
}

// await waits for the promise p (from a goroutine other than the event
// loop's: the runtime runs JavaScript meanwhile).
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: a[0]}
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, a []js.Value) any {
		msg := "rejected"
		if len(a) > 0 && a[0].Type() == js.TypeObject && a[0].Get("message").Type() == js.TypeString {
			msg = a[0].Get("message").String()
		} else if len(a) > 0 {
			msg = a[0].String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	p.Call("then", then, catch)
	r := <-ch
	then.Release()
	catch.Release()
	return r.v, r.err
}
