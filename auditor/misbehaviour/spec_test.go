package misbehaviour

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestSpecExample: the example of docs/spec/misbehaviour.md is the file
// testdata/gen.go writes, and it proves misbehaviour on its own; altered,
// it proves nothing.
func TestSpecExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/spec/misbehaviour.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json example=split-view\n(.*?)\n```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("the specification has no split-view example")
	}
	file, err := os.ReadFile("testdata/split-view.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m[1], bytes.TrimSpace(file)) {
		t.Fatal("the specification's example is not testdata/split-view.json (run go generate ./auditor/misbehaviour and copy it)")
	}
	ev, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ev.Verify()
	if err != nil {
		t.Fatalf("the example does not prove misbehaviour: %v", err)
	}
	if p.Smaller.N != 5 || p.Larger.N != 8 {
		t.Errorf("proven: %v", p)
	}
	for name, mutate := range map[string]func(e *Evidence){
		"a checkpoint's signature": func(e *Evidence) {
			b := []byte(e.Checkpoints[0])
			b[len(b)-5] ^= 1
			e.Checkpoints[0] = string(b)
		},
		"the proof": func(e *Evidence) { e.Proof[0][0] ^= 1 },
		"the prefix root, made the smaller tree's": func(e *Evidence) {
			small, _ := Open(mustVerifier(t, e.VKey), []byte(e.Checkpoints[0]))
			e.PrefixRoot = &small.Hash
		},
		"another key": func(e *Evidence) { e.VKey = "example.com/log+00000000+AVtTlmQWq+9+foo10xlX5GJSaFoL0D8Sqn4B2Om4M+sX" },
	} {
		e, _ := Parse(file)
		mutate(e)
		if _, err := e.Verify(); !errors.Is(err, ErrNotProven) {
			t.Errorf("%s altered: Verify = %v, want ErrNotProven", name, err)
		}
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
