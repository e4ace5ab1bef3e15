package keyfile

import (
	"crypto/ed25519"
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
