package witness

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// ErrKeyFile is returned (wrapped) by LoadKey and Open when the witness key
// file is unusable.
var ErrKeyFile = errors.New("witness key file")

// Signer is the witness's cosigning key: a cosignature/v1 (Ed25519,
// timestamped) note signer and the vkey that logs put in their witness
// policy.
type Signer struct {
	note.Signer
	// VKey is the cosignature/v1 verifier key (signature type 0x04):
	// "<name>+<hash>+<base64(0x04 || Ed25519 public key)>".
	VKey string
}

// LoadKey reads the witness key file at path. It refuses a file that group
// or others may read, and a key that is not Ed25519.
func LoadKey(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; it must not be readable by group or others (chmod 600 %s)",
			ErrKeyFile, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	s, err := NewSigner(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeyFile, path, err)
	}
	return s, nil
}

// NewSigner returns the cosignature/v1 signer for skey, a note private key
// string for Ed25519 (PRIVATE+KEY+name+hash+base64), as made by
// golang.org/x/mod/sumdb/note.GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	parts := strings.SplitN(skey, "+", 5) // base64 may contain "+"
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a note private key (PRIVATE+KEY+name+hash+base64)")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	// 0x01 is a plain Ed25519 note key, 0x04 an Ed25519 cosignature/v1 key.
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 0x01 && key[0] != 0x04 {
		return nil, errors.New("not an Ed25519 note private key")
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("not a usable note private key: %v", err)
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	vkey := fmt.Sprintf("%s+%08x+%s", s.Name(), s.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{0x04}, pub...)))
	// Check the vkey against the library's own derivation of the key hash.
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() || v.Name() != s.Name() {
		return nil, fmt.Errorf("internal error: derived vkey %q does not match the signer", vkey)
	}
	return &Signer{Signer: s, VKey: vkey}, nil
}
