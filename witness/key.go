package witness

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/keyfile"
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
	if err := keyfile.CheckMode(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
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
	_, _, pub, err := keyfile.ParseNoteKey(skey)
	if err != nil {
		return nil, err
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("not a usable note private key: %v", err)
	}
	vkey := fmt.Sprintf("%s+%08x+%s", s.Name(), s.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{0x04}, pub...)))
	// Check the vkey against the library's own derivation of the key hash.
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() || v.Name() != s.Name() {
		return nil, fmt.Errorf("internal error: derived vkey %q does not match the signer", vkey)
	}
	return &Signer{Signer: s, VKey: vkey}, nil
}
