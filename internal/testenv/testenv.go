// Package testenv decides what a test does when a real peer it needs
// (MariaDB, Chromium, litewitness, bubblewrap, …) is not available.
//
// Under ATTESTLOG_STRICT=1 (set by .ci/run) a missing peer fails the test;
// otherwise it skips, so that a developer without the peer can still run
// everything else.
package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether ATTESTLOG_STRICT=1 is set.
func Strict() bool { return os.Getenv("ATTESTLOG_STRICT") == "1" }

// Missing skips t, or fails it under ATTESTLOG_STRICT=1, because what is
// unavailable (with the reason why).
func Missing(t testing.TB, what string, why error) {
	t.Helper()
	if Strict() {
		t.Fatalf("ATTESTLOG_STRICT=1 and %s is unavailable: %v", what, why)
	}
	t.Skipf("%s is unavailable (%v); set ATTESTLOG_STRICT=1 to make this a failure", what, why)
}

// LookPath returns the path of the program name, or calls Missing.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, err)
	}
	return p
}

// ReadDebianFile returns the file at path from the Debian package pkg
// (e.g. "ovmf 2022.11-6+deb12u2"), whose SHA-256 must be wantSHA256: the
// expected values of the test were computed for that build. A missing file
// or another build calls Missing.
func ReadDebianFile(t testing.TB, pkg, path, wantSHA256 string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		Missing(t, "Debian's "+pkg+" ("+path+")", err)
	}
	if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != wantSHA256 {
		Missing(t, pkg+"'s "+path, fmt.Errorf("installed file has SHA-256 %x; regenerate the vectors as testdata/README.md says", h))
	}
	return b
}
