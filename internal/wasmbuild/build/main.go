// Command build builds the WebAssembly client into npm/dist (or -out):
//
//	go run ./internal/wasmbuild/build
//
// (npm run build, in npm/, runs it.) With -test it runs the tests of the
// packages named instead, compiled to WebAssembly, under Node:
//
//	go run ./internal/wasmbuild/build -test ./policy/verify ./log/tlogproof
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/attestlog/attestlog/internal/wasmbuild"
)

func main() {
	repo := flag.String("repo", ".", "the attestlog repository")
	out := flag.String("out", "npm/dist", "directory to write attestlog.wasm and wasm_exec.js to")
	sigstore := flag.Bool("sigstore", false, "also verify Sigstore provenance (policies with sigstore-root): 8.6 MB gzipped instead of 4.8")
	test := flag.Bool("test", false, "run the tests of the packages named as arguments under WebAssembly (Node) instead of building")
	flag.Parse()
	if *test {
		if err := wasmbuild.Test(context.Background(), *repo, flag.Args(), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "build -test:", err)
			os.Exit(1)
		}
		return
	}
	r, err := wasmbuild.BuildWith(context.Background(), *repo, *out, *sigstore)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %.1f MB (%.1f MB gzipped)\n%s\n", r.Wasm, float64(r.Raw)/1e6, float64(r.Gzipped)/1e6, r.WasmExec)
}
