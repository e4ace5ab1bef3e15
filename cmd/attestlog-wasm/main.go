//go:build js && wasm

// Command attestlog-wasm is the client decision of policy/verify compiled
// to WebAssembly for browsers and Node: the same code as `attestlog
// verify`, returning the same Verdict JSON. It sets globalThis.__attestlog
// to {verify, fetchAndVerify, version}; the npm package in npm/ wraps it.
// Build it with `go run ./internal/wasmbuild/build` (it needs two
// build-time file replacements, described in npm/overlay/README.md).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"syscall/js"
	"time"

	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

// version is set by the build (-X main.version=…).
var version = "dev"

func main() {
	api := js.Global().Get("Object").New()
	api.Set("verify", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (string, error) { return verifyCall(args) })
	}))
	api.Set("fetchAndVerify", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return promise(func() (string, error) { return fetchAndVerifyCall(args) })
	}))
	api.Set("version", version)
	js.Global().Set("__attestlog", api)
	if ready := js.Global().Get("__attestlogReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // serve calls until the page goes away
}

// promise runs f off the event loop (it may fetch) and settles a Promise
// with its result: the Verdict JSON, or an Error for input that cannot be
// decided on at all (a policy that does not parse, evidence that is not
// evidence).
func promise(f func() (string, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(js.Global().Get("Error").New(fmt.Sprintf("attestlog: internal error: %v\n%s", r, debug.Stack())))
				}
			}()
			s, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(s)
		}()
		return nil
	})
	defer executor.Release()
	return js.Global().Get("Promise").New(executor)
}

// options are verify's and fetchAndVerify's last argument.
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
		return o, errors.New("options: want an object")
	}
	if f := v.Get("files"); !f.IsUndefined() && !f.IsNull() {
		o.files = map[string][]byte{}
		keys := js.Global().Get("Object").Call("keys", f)
		for i := range keys.Length() {
			name := keys.Index(i).String()
			b, err := bytesOf(f.Get(name))
			if err != nil {
				return o, fmt.Errorf("options.files[%q]: %w", name, err)
			}
			o.files[name] = b
		}
	}
	if n := v.Get("now"); !n.IsUndefined() && !n.IsNull() {
		t, err := time.Parse(time.RFC3339, n.String())
		if err != nil {
			return o, fmt.Errorf("options.now: %w", err)
		}
		o.now = t
	}
	if p := v.Get("proof"); !p.IsUndefined() && !p.IsNull() {
		b, err := bytesOf(p)
		if err != nil {
			return o, fmt.Errorf("options.proof: %w", err)
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
	return nil, errors.New("want a string or a Uint8Array")
}

func verifier(policyText js.Value, o options) (*verify.Verifier, error) {
	if policyText.Type() != js.TypeString {
		return nil, errors.New("policy: want the policy's text")
	}
	opts := []verify.Option{verify.WithFS(memFS(o.files))}
	if !o.now.IsZero() {
		t := o.now
		opts = append(opts, verify.WithClock(func() time.Time { return t }))
	}
	return verify.Parse([]byte(policyText.String()), opts...)
}

// verifyCall is verify(policyText, evidence, nonceHex, options).
func verifyCall(args []js.Value) (string, error) {
	for len(args) < 4 {
		args = append(args, js.Undefined())
	}
	o, err := readOptions(args[3])
	if err != nil {
		return "", err
	}
	v, err := verifier(args[0], o)
	if err != nil {
		return "", err
	}
	raw, err := bytesOf(args[1])
	if err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	b, _, err := evidence.Parse(raw)
	if err != nil {
		return "", err
	}
	in := verify.Input{Evidence: b}
	if args[2].Type() == js.TypeString && args[2].String() != "" {
		if in.Nonce, err = evidence.ParseNonce(args[2].String()); err != nil {
			return "", fmt.Errorf("nonce: %w", err)
		}
	}
	if o.proof != nil {
		if in.Proof, err = tlogproof.Parse(o.proof); err != nil {
			return "", fmt.Errorf("options.proof: %w", err)
		}
	}
	return string(v.Verify(in).JSON()), nil
}

// fetchAndVerifyCall is fetchAndVerify(enclaveURL, policyText, options):
// a fresh nonce, the enclave's evidence for it (through the browser's
// fetch), and the decision on it with what the evidence staples.
func fetchAndVerifyCall(args []js.Value) (string, error) {
	for len(args) < 3 {
		args = append(args, js.Undefined())
	}
	if args[0].Type() != js.TypeString {
		return "", errors.New("enclaveURL: want a URL")
	}
	o, err := readOptions(args[2])
	if err != nil {
		return "", err
	}
	v, err := verifier(args[1], o)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := evidence.Fetch(ctx, nil, args[0].String(), nonce)
	if err != nil {
		return "", err
	}
	return string(v.Verify(verify.Input{Evidence: b, Nonce: nonce}).JSON()), nil
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
