// Package keyfile creates attestlog's key files: the log and witness note
// signer keys and the operator and auditor statement keys. Private keys
// are written with mode 0600 and never overwritten.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
)

// Kinds of keys.
const (
	KindLog      = "log"
	KindWitness  = "witness"
	KindOperator = "operator"
	KindAuditor  = "auditor"
)

// Generated describes a new key.
type Generated struct {
	Kind string
	Name string
	Path string
	// Public is the verifier key: a note vkey for a log, a cosignature/v1
	// vkey for a witness, "alg:base64" for operators and auditors.
	Public string
}

// Generate creates a new key of kind named name and writes its private half
// to path (mode 0600). It refuses to overwrite an existing file.
func Generate(kind, name, path, alg string) (*Generated, error) {
	if name == "" {
		return nil, errors.New("a key name is required (for a log: its origin, e.g. example.com/attestlog)")
	}
	var priv []byte
	var pub string
	switch kind {
	case KindLog, KindWitness:
		skey, vkey, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			return nil, fmt.Errorf("generating %s key: %w", kind, err)
		}
		priv, pub = []byte(skey+"\n"), vkey
		if kind == KindWitness {
			if pub, err = fnote.VKeyToCosignatureV1(vkey); err != nil {
				return nil, err
			}
		}
	case KindOperator, KindAuditor:
		s, err := statement.GenerateSigner(alg)
		if err != nil {
			return nil, err
		}
		if priv, err = s.MarshalPrivateKey(); err != nil {
			return nil, err
		}
		pub = s.Public().String()
	default:
		return nil, fmt.Errorf("unknown key kind %q (want log, witness, operator or auditor)", kind)
	}
	if err := WritePrivate(path, priv); err != nil {
		return nil, err
	}
	return &Generated{Kind: kind, Name: name, Path: path, Public: pub}, nil
}

// WritePrivate writes b to a new file at path with mode 0600, fsynced.
func WritePrivate(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite a key", path)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Public returns the public (verifier) key of an existing key file of kind.
func Public(kind, path string) (string, error) {
	if err := CheckMode(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	switch kind {
	case KindLog, KindWitness:
		vkey, err := VKeyOf(trim(b))
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if kind == KindWitness {
			return fnote.VKeyToCosignatureV1(vkey)
		}
		return vkey, nil
	default:
		s, err := statement.ParsePrivateKey(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return s.Public().String(), nil
	}
}

func trim(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// VKeyOf returns the note verifier key of an Ed25519 note signer key
// ("PRIVATE+KEY+name+hash+base64").
func VKeyOf(skey string) (string, error) {
	// note.NewSigner checks the name and the key hash; without it, a key
	// with an empty name or a wrong hash got a verifier key here that no
	// signer matches.
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("not a note signer key: %v", err)
	}
	name, alg, pub, err := ParseNoteKey(skey)
	if err != nil {
		return "", err
	}
	if alg != 0x01 { // a plain Ed25519 note key (0x04 is a witness's)
		return "", errors.New("not an Ed25519 note signer key")
	}
	return note.NewEd25519VerifierKey(name, pub)
}

// ParseNoteKey splits a note private key (PRIVATE+KEY+name+hash+base64,
// as golang.org/x/mod/sumdb/note.GenerateKey makes) into its name, its
// signature type (0x01 Ed25519, 0x04 Ed25519 cosignature/v1) and the
// Ed25519 public key of its seed — the one reading of note key files, for
// log keys here and witness keys (witness.LoadKey). It does not check the
// key hash; note.NewSigner and its cosignature/v1 counterpart do.
func ParseNoteKey(skey string) (name string, alg byte, pub ed25519.PublicKey, err error) {
	parts := strings.SplitN(skey, "+", 5) // base64 may contain "+"
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", 0, nil, errors.New("not a note private key (PRIVATE+KEY+name+hash+base64)")
	}
	k, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(k) != 1+ed25519.SeedSize || (k[0] != 0x01 && k[0] != 0x04) {
		return "", 0, nil, errors.New("not an Ed25519 note private key")
	}
	return parts[2], k[0], ed25519.NewKeyFromSeed(k[1:]).Public().(ed25519.PublicKey), nil
}

// LoadNoteSigner reads a note signer key file (mode 0600) and returns the
// signer and its verifier key.
func LoadNoteSigner(path string) (note.Signer, string, error) {
	if err := CheckMode(path); err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	skey := trim(b)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%s: not a note signer key: %v", path, err)
	}
	vkey, err := VKeyOf(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return s, vkey, nil
}

// LoadSigner reads a statement signing key (operator, auditor, authority)
// written by 'attestlog keygen'. It refuses files readable by group or
// others.
func LoadSigner(path string) (*statement.Signer, error) {
	if err := CheckMode(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := statement.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// CheckMode returns an error if the key file at path can be read by anyone
// but its owner.
func CheckMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %04o; private keys must be 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	return nil
}
