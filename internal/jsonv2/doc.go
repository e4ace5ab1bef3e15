// Package jsonv2 is the JSON v2 API the decoders of untrusted input use
// (strict member names, no duplicates, unknown members refused where they
// ask): github.com/go-json-experiment/json, or — in a build with
// GOEXPERIMENT=jsonv2, as the WebAssembly client is built — the standard
// library's encoding/json/v2, the same code moved into Go. With the
// experiment, encoding/json itself runs on that implementation, so the
// module links one JSON implementation instead of two (a sixth of its
// code). Both files alias the same names; nothing else differs.
package jsonv2
