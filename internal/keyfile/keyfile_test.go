package keyfile

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// FuzzVKeyOf: a note signer key file is read from disk and may be
// corrupt. VKeyOf never panics, and the verifier key it derives verifies
// what the signer (note.NewSigner of the same text) signs.
func FuzzVKeyOf(f *testing.F) {
	skey, _, err := note.GenerateKey(nil, "log.example/log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(skey)
	f.Add("PRIVATE+KEY+n+01234567+AQ==")
	f.Add("PRIVATE+KEY+n")
	f.Add(string(make([]byte, ed25519.SeedSize)))
	f.Fuzz(func(t *testing.T, s string) {
		vkey, err := VKeyOf(s)
		if err != nil {
			return
		}
		signer, err := note.NewSigner(s)
		if err != nil {
			t.Fatalf("VKeyOf accepted %q that note.NewSigner refuses: %v", s, err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatalf("derived verifier key %q does not parse: %v", vkey, err)
		}
		msg, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Fatalf("the derived verifier key does not verify the signer: %v", err)
		}
	})
}

// TestLoadSigner: a statement key loads from a 0600 file and is refused,
// with the fix named, from one others can read.
func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "op.key")
	if _, err := Generate(KindOperator, "acme", p, "ed25519"); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(p)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s.Sign([]byte("m"))
	if !s.Public().Verify([]byte("m"), sig) {
		t.Error("the loaded key does not sign verifiably")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadSigner of a 0644 key = %v, want a refusal naming chmod 600", err)
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing.key")); err == nil {
		t.Error("LoadSigner of a missing file succeeded")
	}
}
