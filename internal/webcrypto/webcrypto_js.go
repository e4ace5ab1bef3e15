//go:build js && wasm

package webcrypto

import (
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall/js"
	_ "unsafe" // go:linkname
)

// The hooks the WebAssembly build adds to the standard library
// (npm/overlay/std); their answers.
const (
	unhandled = iota
	valid
	invalid
)

//go:linkname setX509Verifier crypto/x509.attestlogSetVerifier
func setX509Verifier(f func(hash crypto.Hash, pss bool, pub crypto.PublicKey, signed, signature []byte) int)

//go:linkname setEd25519Verifier crypto/ed25519.attestlogSetVerifier
func setEd25519Verifier(f func(publicKey, message, sig []byte) int)

// Status says what Install found.
type Status struct {
	// WebCrypto is true when at least one algorithm is verified by it.
	WebCrypto bool `json:"webcrypto"`
	// Algorithms are the classes WebCrypto verifies (it answered the
	// self-test as Go does); Refused, those it did not, with why.
	Algorithms []string          `json:"algorithms"`
	Refused    map[string]string `json:"refused,omitempty"`
	// Reason says why WebCrypto verifies nothing, when it does not.
	Reason string `json:"reason,omitempty"`
}

var (
	subtle  js.Value
	enabled map[string]bool
)

// Install runs the self-test on the platform's WebCrypto and hooks the
// classes that pass it into crypto/x509 and crypto/ed25519. It must be
// called once, before any signature is checked, off the goroutine of a
// js.FuncOf callback (it waits for promises, and so does every check it
// hooks: signatures must be checked off that goroutine too). off leaves
// Go's code deciding everything.
func Install(off bool) *Status {
	st := &Status{Algorithms: []string{}}
	if off {
		st.Reason = "turned off"
		return st
	}
	c := js.Global().Get("crypto")
	if c.Type() != js.TypeObject || c.Get("subtle").Type() != js.TypeObject {
		st.Reason = "this runtime has no WebCrypto (crypto.subtle; browsers give it only to https pages and localhost)"
		return st
	}
	subtle = c.Get("subtle")
	nodeVerify = js.Global().Get("__attestlogNodeVerify")
	enabled = map[string]bool{}
	refused := map[string]string{}
	for _, v := range selfTest {
		r, msg, err := v.request()
		if err != nil {
			refused["self-test"] = err.Error()
			continue
		}
		if why := answers(r, msg); why != "" {
			refused[r.Class] = why
			continue
		}
		enabled[r.Class] = true
	}
	for c := range enabled {
		st.Algorithms = append(st.Algorithms, c)
	}
	sort.Strings(st.Algorithms)
	if len(refused) > 0 {
		st.Refused = refused
	}
	if len(enabled) == 0 {
		st.Reason = "WebCrypto answered no self-test as Go does"
		return st
	}
	st.WebCrypto = true
	setX509Verifier(func(hash crypto.Hash, pss bool, pub crypto.PublicKey, signed, signature []byte) int {
		r, ok := X509(hash, pss, pub, signature)
		if !ok {
			return unhandled
		}
		return verify(r, signed)
	})
	setEd25519Verifier(func(publicKey, message, sig []byte) int {
		r, ok := Ed25519(publicKey, sig)
		if !ok {
			return unhandled
		}
		return verify(r, message)
	})
	return st
}

// answers returns "" if WebCrypto finds r valid over msg, and invalid
// with one bit of the signature or of the message flipped; else what it
// got wrong.
func answers(r *Request, msg []byte) string {
	if ok, err := call(r, msg); err != nil || !ok {
		return "refused a valid signature (" + errString(err) + ")"
	}
	bad := *r
	bad.Sig = tampered(r.Sig, len(r.Sig)/2-1)
	if ok, err := call(&bad, msg); err != nil || ok {
		return "accepted or failed on a signature with one bit flipped (" + errString(err) + ")"
	}
	if ok, err := call(r, tampered(msg, 0)); err != nil || ok {
		return "accepted or failed on a message with one bit flipped (" + errString(err) + ")"
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// verify is the hooks' answer for r over data.
func verify(r *Request, data []byte) int {
	if !enabled[r.Class] {
		return unhandled
	}
	ok, err := call(r, data)
	switch {
	case err != nil:
		return unhandled // Go decides
	case ok:
		return valid
	}
	return invalid
}

// nodeVerify is the npm package's synchronous verifier under Node
// (globalThis.__attestlogNodeVerify: node:crypto's verify, the OpenSSL
// under Node's WebCrypto, without its promises), or undefined.
var nodeVerify js.Value

// call asks WebCrypto whether r.Sig is valid over data.
func call(r *Request, data []byte) (bool, error) {
	if nodeVerify.Type() == js.TypeFunction {
		return callNode(r, data)
	}
	obj := func(kv ...any) js.Value {
		o := js.Global().Get("Object").New()
		for i := 0; i < len(kv); i += 2 {
			o.Set(kv[i].(string), kv[i+1])
		}
		return o
	}
	var format string
	var key, importAlg, verifyAlg js.Value
	switch r.Alg {
	case "ECDSA":
		format, key = "raw", u8(r.Raw)
		importAlg = obj("name", "ECDSA", "namedCurve", r.Curve)
		verifyAlg = obj("name", "ECDSA", "hash", r.Hash)
	case "Ed25519":
		format, key = "raw", u8(r.Raw)
		importAlg, verifyAlg = obj("name", "Ed25519"), obj("name", "Ed25519")
	case "RSA-PSS", "RSASSA-PKCS1-v1_5":
		b64 := base64.RawURLEncoding.EncodeToString
		format, key = "jwk", obj("kty", "RSA", "n", b64(r.N), "e", b64(r.E), "ext", true)
		importAlg = obj("name", r.Alg, "hash", r.Hash)
		verifyAlg = obj("name", r.Alg)
		if r.Alg == "RSA-PSS" {
			verifyAlg.Set("saltLength", r.SaltLength)
		}
	default:
		return false, errors.New("unknown algorithm " + r.Alg)
	}
	// One promise, importKey (or the import of the same key before)
	// then verify, chained in JavaScript: this goroutine waits once.
	sig, msg := u8(r.Sig), u8(data)
	then := js.FuncOf(func(_ js.Value, a []js.Value) any {
		return subtle.Call("verify", verifyAlg, a[0], sig, msg)
	})
	defer then.Release()
	v, err := await(func() js.Value {
		return importKey(r, format, key, importAlg).Call("then", then)
	})
	if err != nil {
		return false, err
	}
	if v.Type() != js.TypeBoolean {
		return false, errors.New("WebCrypto's verify answered no boolean")
	}
	return v.Bool(), nil
}

// u8 copies b into a new Uint8Array.
func u8(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// await waits for the promise f returns (f throwing counts as a
// rejection).
func await(f func() js.Value) (v js.Value, err error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	p, err := func() (p js.Value, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("WebCrypto threw")
				if je, ok := r.(js.Error); ok {
					err = errors.New("WebCrypto threw: " + je.Error())
				}
			}
		}()
		return f(), nil
	}()
	if err != nil {
		return js.Undefined(), err
	}
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- result{v: a[0]}; return nil })
	bad := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: errors.New("WebCrypto: " + a[0].Call("toString").String())}
		return nil
	})
	defer ok.Release()
	defer bad.Release()
	p.Call("then", ok, bad)
	r := <-ch
	return r.v, r.err
}

// callNode is call through nodeVerify(alg, curve, hash, saltLength,
// raw, n, e, sig, data), which returns a boolean or throws.
func callNode(r *Request, data []byte) (ok bool, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = errors.New("node:crypto threw")
			if je, isJS := x.(js.Error); isJS {
				err = errors.New("node:crypto threw: " + je.Error())
			}
		}
	}()
	opt := func(b []byte) any {
		if b == nil {
			return js.Null()
		}
		return u8(b)
	}
	v := nodeVerify.Invoke(r.Alg, r.Curve, r.Hash, r.SaltLength, opt(r.Raw), opt(r.N), opt(r.E), u8(r.Sig), u8(data))
	if v.Type() != js.TypeBoolean {
		return false, errors.New("node:crypto's verify answered no boolean")
	}
	return v.Bool(), nil
}

// Imported keys, by what was imported: the promise of the CryptoKey.
// importKey only converts a public key into WebCrypto's form, and a
// client meets the same few keys again and again (a platform's roots and
// endorsement keys, a log's, its witnesses', its operators'), so each is
// imported once; the signature is verified every time. Bounded: past
// maxImported keys the oldest import is dropped. A failed import is
// dropped too (the verification it fails falls back to Go).
var (
	importedMu    sync.Mutex
	imported      = map[string]js.Value{}
	importedOrder []string
)

const maxImported = 256

// importKey returns the promise of r's key imported (format, key,
// importAlg as crypto.subtle.importKey takes them).
func importKey(r *Request, format string, key, importAlg js.Value) js.Value {
	// Unambiguous: the names have no "|", the bytes are in hex.
	id := strings.Join([]string{r.Alg, r.Curve, r.Hash, hex.EncodeToString(r.Raw), hex.EncodeToString(r.N), hex.EncodeToString(r.E)}, "|")
	importedMu.Lock()
	defer importedMu.Unlock()
	if p, ok := imported[id]; ok {
		return p
	}
	p := subtle.Call("importKey", format, key, importAlg, false, js.ValueOf([]any{"verify"}))
	// Both callbacks are released once either ran; a failed import is
	// forgotten (from the map and the order both).
	var kept, failed js.Func
	release := func() { kept.Release(); failed.Release() }
	kept = js.FuncOf(func(js.Value, []js.Value) any { release(); return nil })
	failed = js.FuncOf(func(js.Value, []js.Value) any {
		importedMu.Lock()
		if q, ok := imported[id]; ok && q.Equal(p) {
			delete(imported, id)
			importedOrder = slices.DeleteFunc(importedOrder, func(x string) bool { return x == id })
		}
		importedMu.Unlock()
		release()
		return nil
	})
	p.Call("then", kept, failed)
	if len(importedOrder) >= maxImported {
		delete(imported, importedOrder[0])
		importedOrder = importedOrder[1:]
	}
	imported[id] = p
	importedOrder = append(importedOrder, id)
	return p
}
