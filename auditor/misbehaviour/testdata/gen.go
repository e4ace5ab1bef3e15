//go:build ignore

// gen writes split-view.json, the example of docs/spec/misbehaviour.md: a
// log (a deterministic test key) that signed a tree of 5 records "a-0" …
// "a-4" and a tree of 8 records "b-0" … "b-7", which cannot both be true.
// Run with `go generate ./auditor/misbehaviour` (or `go run gen.go` here).
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/auditor/misbehaviour"
)

type tree struct{ hashes []tlog.Hash }

func (m *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func build(prefix string, n int) (*tree, tlog.Tree) {
	m := &tree{}
	for i := range n {
		hs, err := tlog.StoredHashes(int64(i), []byte(fmt.Sprintf("%s-%d", prefix, i)), m)
		if err != nil {
			log.Fatal(err)
		}
		m.hashes = append(m.hashes, hs...)
	}
	h, err := tlog.TreeHash(int64(n), m)
	if err != nil {
		log.Fatal(err)
	}
	return m, tlog.Tree{N: int64(n), Hash: h}
}

func main() {
	const origin = "example.com/log"
	seed := sha256.Sum256([]byte("attestlog misbehaviour example key"))
	skey, vkey, err := note.GenerateKey(bytes.NewReader(append(seed[:], seed[:]...)), origin)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	_, a := build("a", 5)
	bt, b := build("b", 8)
	ev, err := misbehaviour.Prove(a, b, bt)
	if err != nil || ev == nil {
		log.Fatalf("Prove = %v, %v", ev, err)
	}
	sign := func(t tlog.Tree) string {
		n, err := note.Sign(&note.Note{Text: torchwood.Checkpoint{Origin: origin, Tree: t}.String()}, s)
		if err != nil {
			log.Fatal(err)
		}
		return string(n)
	}
	ev.Origin, ev.VKey = origin, vkey
	ev.Checkpoints = [2]string{sign(a), sign(b)}
	ev.Sources = [2]string{"https://log.example/checkpoint", "https://witness.example/log/checkpoint"}
	ev.Found = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	out, err := ev.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("split-view.json", append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
