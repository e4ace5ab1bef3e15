//go:build linux || darwin || !windows

// attestlog's WebAssembly build puts this file in place of
// github.com/in-toto/in-toto-golang's in_toto/util_unix.go (see
// npm/overlay/README.md in the attestlog repository): that file calls
// unix.Access, which golang.org/x/sys has no js version of. isWritable is
// used only when in-toto runs a step, which a verifier never does.

package in_toto

import "os"

func isWritable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
