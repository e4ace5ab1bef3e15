package main

import (
	"fmt"
	"runtime/debug"

	"github.com/attestlog/attestlog/npm"
)

func init() {
	register("version", "print the module version, VCS revision and Go version of this binary, and the npm package version its source builds", runVersion)
}

func runVersion(args []string) error {
	fs := newFlagSet("version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Println(versionString())
	fmt.Printf("%s %s (the npm package and WebAssembly client this source builds)\n", npm.Name, npm.Version)
	return nil
}

// versionString is "attestlog VERSION (REVISION[, modified]) GOVERSION".
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "attestlog (no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	rev, modified, at := "unknown revision: built without VCS stamping", false, ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		case "vcs.time":
			at = s.Value
		}
	}
	if modified {
		rev += ", modified"
	}
	if at != "" {
		rev += ", " + at
	}
	return fmt.Sprintf("attestlog %s (%s) %s", version, rev, bi.GoVersion)
}
