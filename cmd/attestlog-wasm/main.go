//go:build js && wasm

// Command attestlog-wasm is the client decision of policy/verify compiled
// to WebAssembly for browsers and Node: the same code as `attestlog
// verify`, returning the same Verdict JSON. It sets globalThis.__attestlog
// to
//
//	verify(policyText, evidence, nonce, options) → Promise<verdict JSON>
//	verifyFetched(policyText, body, nonce, options) → Promise<{verdict, keys}>
//	sealRequest(policyText, document, keys, request, options) → Promise<{verdict, sealed, handle, kem, keySet}>
//	openStream(handle, reader) → Promise<{status, headers}> (reader: the relay's answer's ReadableStreamDefaultReader)
//	readStream(handle) → Promise<Uint8Array | null> (the content as it opens; null at its end)
//	forget(handle) (a request or answer no longer wanted)
//	version, revision, crypto (JSON: which signatures WebCrypto verifies)
//
// and calls globalThis.__attestlogReady once they are there; the npm
// package in npm/ wraps it (and fetches: this module makes no request).
// A promise is rejected with an Error whose code says what was wrong
// (ATTESTLOG_BAD_INPUT, ATTESTLOG_BAD_POLICY, ATTESTLOG_UNSUPPORTED,
// ATTESTLOG_BAD_EVIDENCE, ATTESTLOG_INTERNAL); a decision that went
// against the enclave is a verdict, not an error. Build it with `go run
// ./internal/wasmbuild/build` (it needs the build-time changes described
// in npm/overlay/README.md). Set ATTESTLOG_WEBCRYPTO=off in its
// environment (wasm_exec.js's go.env) to verify every signature with Go's
// code instead of WebCrypto's.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall/js"
	"time"

	"github.com/attestlog/attestlog/internal/webcrypto"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/verify"
)

// version (the npm package's) and revision (the source's) are set by the
// build (-X main.version=…).
var (
	version  = "dev"
	revision = "unknown"
)

func main() {
	st := webcrypto.Install(os.Getenv("ATTESTLOG_WEBCRYPTO") == "off")
	stj, _ := json.Marshal(st)
	api := js.Global().Get("Object").New()
	api.Set("verify", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return verifyCall(args) })
	}))
	api.Set("verifyFetched", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (any, error) { return verifyFetchedCall(args) })
	}))
	installOblivious(api)
	api.Set("version", version)
	api.Set("revision", revision)
	api.Set("crypto", string(stj))
	js.Global().Set("__attestlog", api)
	if ready := js.Global().Get("__attestlogReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // serve calls until the page goes away
}

// Error codes (the npm package's index.d.ts documents them).
const (
	codeBadInput    = "ATTESTLOG_BAD_INPUT"
	codeBadPolicy   = "ATTESTLOG_BAD_POLICY"
	codeUnsupported = "ATTESTLOG_UNSUPPORTED"
	codeBadEvidence = "ATTESTLOG_BAD_EVIDENCE"
	codeInternal    = "ATTESTLOG_INTERNAL"
)

// codedError is an error with the code the promise is rejected with.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

func coded(code string, format string, args ...any) error {
	return &codedError{code: code, err: fmt.Errorf(format, args...)}
}

// promise runs f off the event loop (signatures are checked there,
// waiting for WebCrypto) and settles a Promise with its result, or an
// Error with a code for input that cannot be decided on at all.
func promise(f func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(jsError(&codedError{code: codeInternal, err: fmt.Errorf("attestlog: internal error: %v\n%s", r, debug.Stack())}))
				}
			}()
			v, err := f()
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	defer executor.Release()
	return js.Global().Get("Promise").New(executor)
}

func jsError(err error) js.Value {
	code := codeInternal
	var ce *codedError
	if errors.As(err, &ce) {
		code = ce.code
	}
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", code)
	return e
}

// options are verify's and verifyFetched's last argument.
type options struct {
	files map[string][]byte // trust-root, crl, tdx-collateral files by name
	now   time.Time         // zero: the clock
	proof []byte            // a tlog-proof to use instead of the stapled one
}

func readOptions(v js.Value) (options, error) {
	var o options
	if v.IsUndefined() || v.IsNull() {
		return o, nil
	}
	if v.Type() != js.TypeObject {
		return o, coded(codeBadInput, "options: want an object, got %s", v.Type())
	}
	keys := js.Global().Get("Object").Call("keys", v)
	for i := range keys.Length() {
		switch k := keys.Index(i).String(); k {
		case "files", "now", "proof":
		default:
			return o, coded(codeBadInput, "options: unknown option %q (want files, now, proof)", k)
		}
	}
	if f := v.Get("files"); !f.IsUndefined() && !f.IsNull() {
		if f.Type() != js.TypeObject {
			return o, coded(codeBadInput, "options.files: want an object of file names to contents, got %s", f.Type())
		}
		o.files = map[string][]byte{}
		names := js.Global().Get("Object").Call("keys", f)
		for i := range names.Length() {
			name := names.Index(i).String()
			b, err := bytesOf(f.Get(name))
			if err != nil {
				return o, coded(codeBadInput, "options.files[%q]: %w", name, err)
			}
			o.files[name] = b
		}
	}
	if n := v.Get("now"); !n.IsUndefined() && !n.IsNull() {
		if n.Type() != js.TypeString {
			return o, coded(codeBadInput, "options.now: want an RFC 3339 time, got %s", n.Type())
		}
		t, err := time.Parse(time.RFC3339, n.String())
		if err != nil {
			return o, coded(codeBadInput, "options.now: %w", err)
		}
		o.now = t
	}
	if p := v.Get("proof"); !p.IsUndefined() && !p.IsNull() {
		b, err := bytesOf(p)
		if err != nil {
			return o, coded(codeBadInput, "options.proof: %w", err)
		}
		o.proof = b
	}
	return o, nil
}

// maxInput bounds a byte argument (the largest thing passed is evidence).
const maxInput = evidence.MaxBundleSize

// bytesOf reads a string (as UTF-8) or a Uint8Array.
func bytesOf(v js.Value) ([]byte, error) {
	switch {
	case v.Type() == js.TypeString:
		s := v.String()
		if len(s) > maxInput {
			return nil, fmt.Errorf("larger than %d bytes", maxInput)
		}
		return []byte(s), nil
	case v.InstanceOf(js.Global().Get("Uint8Array")):
		if v.Length() > maxInput {
			return nil, fmt.Errorf("larger than %d bytes", maxInput)
		}
		b := make([]byte, v.Length())
		js.CopyBytesToGo(b, v)
		return b, nil
	}
	return nil, fmt.Errorf("want a string or a Uint8Array, got %s", typeName(v))
}

// typeName names a JavaScript value's type for an error message.
func typeName(v js.Value) string {
	if v.Type() == js.TypeObject {
		if c := v.Get("constructor"); c.Type() == js.TypeFunction {
			return "an object (" + c.Get("name").String() + ")"
		}
	}
	return v.Type().String()
}

// nonceOf reads a nonce: hex text or bytes; undefined, null or "" for
// none.
func nonceOf(v js.Value) ([]byte, error) {
	switch {
	case v.IsUndefined() || v.IsNull():
		return nil, nil
	case v.Type() == js.TypeString:
		if v.String() == "" {
			return nil, nil
		}
		n, err := evidence.ParseNonce(v.String())
		if err != nil {
			return nil, coded(codeBadInput, "nonce: %w (want %d to %d bytes, as hex or a Uint8Array)", err, evidence.MinNonceSize, evidence.MaxNonceSize)
		}
		return n, nil
	case v.InstanceOf(js.Global().Get("Uint8Array")):
		n := make([]byte, v.Length())
		if len(n) > evidence.MaxNonceSize {
			return nil, coded(codeBadInput, "nonce: %w (want %d to %d bytes)", evidence.ErrNonce, evidence.MinNonceSize, evidence.MaxNonceSize)
		}
		js.CopyBytesToGo(n, v)
		if err := evidence.CheckNonce(n); err != nil {
			return nil, coded(codeBadInput, "nonce: %w (want %d to %d bytes)", err, evidence.MinNonceSize, evidence.MaxNonceSize)
		}
		return n, nil
	}
	return nil, coded(codeBadInput, "nonce: want hex text or a Uint8Array, got %s", typeName(v))
}

func verifier(policyText js.Value, o options) (*verify.Verifier, error) {
	if policyText.Type() != js.TypeString {
		return nil, coded(codeBadInput, "policy: want the policy's text, got %s", typeName(policyText))
	}
	opts := []verify.Option{verify.WithFS(memFS(o.files))}
	if !o.now.IsZero() {
		t := o.now
		opts = append(opts, verify.WithClock(func() time.Time { return t }))
	}
	v, err := verify.Parse([]byte(policyText.String()), opts...)
	switch {
	case errors.Is(err, provenance.ErrNoSigstore):
		return nil, &codedError{code: codeUnsupported, err: err}
	case err != nil:
		return nil, &codedError{code: codeBadPolicy, err: err}
	}
	return v, nil
}

// input reads the arguments common to both calls: first what is of the
// wrong type or shape (ATTESTLOG_BAD_INPUT), then the policy, then the
// evidence.
func input(args []js.Value, parse func([]byte) (*evidence.Bundle, error)) (*verify.Verifier, verify.Input, error) {
	for len(args) < 4 {
		args = append(args, js.Undefined())
	}
	var in verify.Input
	o, err := readOptions(args[3])
	if err != nil {
		return nil, in, err
	}
	if in.Nonce, err = nonceOf(args[2]); err != nil {
		return nil, in, err
	}
	raw, err := bytesOf(args[1])
	if err != nil {
		return nil, in, coded(codeBadInput, "evidence: %w", err)
	}
	v, err := verifier(args[0], o)
	if err != nil {
		return nil, in, err
	}
	if in.Evidence, err = parse(raw); err != nil {
		return nil, in, &codedError{code: codeBadEvidence, err: err}
	}
	if o.proof != nil {
		if in.Proof, err = tlogproof.Parse(o.proof); err != nil {
			return nil, in, coded(codeBadEvidence, "options.proof: %w", err)
		}
	}
	return v, in, nil
}

// verifyCall is verify(policyText, evidence, nonce, options): evidence
// in any form `attestlog verify --evidence` reads.
func verifyCall(args []js.Value) (any, error) {
	v, in, err := input(args, func(b []byte) (*evidence.Bundle, error) {
		bu, _, err := evidence.Parse(b)
		return bu, err
	})
	if err != nil {
		return nil, err
	}
	return string(v.Verify(in).JSON()), nil
}

// verifyFetchedCall is verifyFetched(policyText, body, nonce, options):
// the decision on an enclave's answer to GET /.well-known/attestlog/evidence
// for nonce (a JSON bundle, as evidence.Fetch requires), and what it
// attests if it is trusted.
func verifyFetchedCall(args []js.Value) (any, error) {
	v, in, err := input(args, evidence.ParseBundle)
	if err != nil {
		return nil, err
	}
	if in.Nonce == nil {
		return nil, coded(codeBadInput, "nonce: the nonce the evidence was fetched with is required")
	}
	vd := v.Verify(in)
	out := js.Global().Get("Object").New()
	out.Set("verdict", string(vd.JSON()))
	out.Set("keys", attested(vd, in.Evidence))
	return out, nil
}

// attested is the one place a verified document's keys reach JavaScript:
// the keys the evidence binds, when — and only when — the verdict trusts
// it (null otherwise). Clients that send data to the enclave (a pinned
// TLS key; later, OHTTP key configurations) take them from here.
func attested(vd *verify.Verdict, b *evidence.Bundle) js.Value {
	if !vd.OK() {
		return js.Null()
	}
	keys := js.Global().Get("Object").New()
	if len(b.ChannelKey) > 0 {
		a := js.Global().Get("Uint8Array").New(len(b.ChannelKey))
		js.CopyBytesToJS(a, b.ChannelKey)
		keys.Set("channelKey", a)
	}
	return keys
}

// memFS is the policy's files, given by the caller (a browser has no
// file system to read trust roots from).
type memFS map[string][]byte

func (m memFS) ReadFile(name string) ([]byte, error) {
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), b...), nil
}

func (m memFS) Open(name string) (fs.File, error) {
	b, err := m.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{name: name, data: b}, nil
}

type memFile struct {
	name string
	data []byte
	off  int
}

func (f *memFile) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Read(p []byte) (int, error) {
	if f.off >= len(f.data) {
		return 0, io.EOF
	}
	n := copy(p, f.data[f.off:])
	f.off += n
	return n, nil
}
