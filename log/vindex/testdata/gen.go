//go:build ignore

// gen writes index-misbehaviour.json, the example of
// docs/spec/misbehaviour.md: a log (a deterministic test key) whose
// entries are a release, its revocation, and an index checkpoint over both
// whose root is the map of the release alone — the revocation hidden.
// Run with `go generate ./log/vindex`.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"log"
	"os"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
)

type tree struct{ hashes []tlog.Hash }

func (m *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func main() {
	const origin = "example.com/log"
	seed := sha256.Sum256([]byte("attestlog index misbehaviour example key"))
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed[:]), origin)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	opSeed := sha256.Sum256([]byte("attestlog example operator"))
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(opSeed[:]))
	if err != nil {
		log.Fatal(err)
	}
	op, err := statement.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		log.Fatal(err)
	}
	rel, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}, &statement.Release{
		Version: "1.0.0", Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: strings.Repeat("ab", 48)}},
		Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	relEntry, _ := statement.Sign(rel, op)
	rv, _ := statement.EncodeRevocation(statement.RefOf(0, relEntry), &statement.Revocation{Reason: "CVE-2026-0001", Time: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)})
	rvEntry, _ := statement.Sign(rv, op)
	lying := vindex.NewBuilder() // the map of the release alone
	lying.Add(0, relEntry)
	lying.Add(1, []byte("not a statement"))
	ic, err := statement.SignIndexCheckpoint(statement.IndexCheckpoint{Origin: origin, Size: 2, Root: lying.Root(), Time: time.Date(2026, 11, 27, 12, 0, 1, 0, time.UTC)}, s)
	if err != nil {
		log.Fatal(err)
	}
	entries := [][]byte{relEntry, rvEntry, ic}
	m := &tree{}
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, m)
		if err != nil {
			log.Fatal(err)
		}
		m.hashes = append(m.hashes, hs...)
	}
	root, _ := tlog.TreeHash(int64(len(entries)), m)
	cp, err := note.Sign(&note.Note{Text: torchwood.Checkpoint{Origin: origin, Tree: tlog.Tree{N: int64(len(entries)), Hash: root}}.String()}, s)
	if err != nil {
		log.Fatal(err)
	}
	honest := vindex.NewBuilder()
	honest.Add(0, relEntry)
	honest.Add(1, rvEntry)
	r := honest.Root()
	ev := &vindex.Misbehaviour{Format: vindex.MisbehaviourFormat, Origin: origin, VKey: vkey, Checkpoint: string(cp), Entries: entries, IndexEntry: 2, Recomputed: r[:]}
	if err := ev.Verify(); err != nil {
		log.Fatalf("the example does not verify: %v", err)
	}
	out, err := ev.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("index-misbehaviour.json", append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
