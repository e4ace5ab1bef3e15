// Command build builds the WebAssembly client into npm/dist (or -out):
//
//	go run ./internal/wasmbuild/build
//
// (npm pack, in npm/, runs it.) With -test it runs the tests of the
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
	out := flag.String("out", "npm/dist", "directory to write attestlog.wasm, wasm_exec.js, build.json and LICENSES.txt to")
	sigstore := flag.Bool("sigstore", false, "also verify Sigstore provenance (policies with sigstore-root): 1.8 times as large")
	symbols := flag.Bool("symbols", false, "keep the module's symbols (for profiling)")
	quiet := flag.Bool("q", false, "print only the result, not each step")
	test := flag.Bool("test", false, "run the tests of the packages named as arguments under WebAssembly (Node) instead of building")
	flag.Parse()
	if *test {
		if err := wasmbuild.Test(context.Background(), *repo, flag.Args(), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "build -test:", err)
			os.Exit(1)
		}
		return
	}
	var opts []wasmbuild.Option
	if *sigstore {
		opts = append(opts, wasmbuild.WithSigstore())
	}
	if *symbols {
		opts = append(opts, wasmbuild.WithSymbols())
	}
	if !*quiet {
		last := ""
		opts = append(opts, wasmbuild.WithProgress(func(s string) {
			if s != last {
				fmt.Fprintln(os.Stderr, "  "+s)
				last = s
			}
		}))
	}
	r, err := wasmbuild.Build(context.Background(), *repo, *out, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %.1f MB (%.2f MB gzipped), @attestlog/verify %s (%s)\n%s\n", r.Wasm, float64(r.Raw)/1e6, float64(r.Gzipped)/1e6, r.Version, r.Revision, r.WasmExec)
}
