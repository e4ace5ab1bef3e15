package statement

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestIndexCheckpointText checks the signed text against the bytes the
// format documents (not against our own parser), and that both versions
// parse back.
func TestIndexCheckpointText(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	ic := IndexCheckpoint{Origin: "example.com/log", Size: 42, Time: time.Unix(1765000000, 999e6)}
	ic.Root[0] = 0xff
	e, err := SignIndexCheckpoint(ic, s)
	if err != nil {
		t.Fatal(err)
	}
	want := "attestlog.dev/vindex/v2\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 1765000000\n\n— example.com/log "
	if !bytes.HasPrefix(e, []byte(want)) {
		t.Fatalf("signed index checkpoint:\n%s\nwant it to start\n%s", e, want)
	}
	got, err := VerifyIndexCheckpoint(e, v)
	if err != nil || got.Version != 2 || got.Size != 42 || got.Root != ic.Root || got.Time.Unix() != 1765000000 {
		t.Fatalf("VerifyIndexCheckpoint = %+v, %v", got, err)
	}
	// Version 1, as old logs hold them: parses, undated.
	old, err := note.Sign(&note.Note{Text: "attestlog.dev/vindex/v1\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err = VerifyIndexCheckpoint(old, v)
	if err != nil || got.Version != 1 || !got.Time.IsZero() || got.Size != 42 {
		t.Fatalf("VerifyIndexCheckpoint(v1) = %+v, %v", got, err)
	}
	if p, err := ParseEntry(old); err != nil || p.Kind != KindIndexCheckpoint {
		t.Fatalf("ParseEntry(v1) = %+v, %v", p, err)
	}
	for _, bad := range []string{
		"attestlog.dev/vindex/v2\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", // no time
		"attestlog.dev/vindex/v2\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 01\n",
		"attestlog.dev/vindex/v2\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime -1\n",
		"attestlog.dev/vindex/v1\nexample.com/log\n42\n/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 1\n", // v1 has no time
	} {
		e, _ := note.Sign(&note.Note{Text: bad}, s)
		if _, err := ParseIndexCheckpoint(e); err == nil {
			t.Errorf("ParseIndexCheckpoint(%q) accepted", bad)
		}
	}
}

func FuzzParseIndexCheckpoint(f *testing.F) {
	skey, _, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	e, _ := SignIndexCheckpoint(IndexCheckpoint{Origin: "example.com/log", Size: 7, Time: time.Unix(1765000000, 0)}, s)
	f.Add(e)
	f.Add([]byte("attestlog.dev/vindex/v1\nx\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxIndexCheckpointSize+1 {
			return
		}
		c, err := ParseIndexCheckpoint(b)
		if err != nil {
			return
		}
		// What parses is its own canonical text.
		text, _, _ := strings.Cut(string(b), "\n\n")
		if c.Text() != text+"\n" {
			t.Fatalf("parsed %+v, whose text %q is not the entry's %q", c, c.Text(), text+"\n")
		}
	})
}

// FuzzPayloadHashOf: the lenient reading that finds duplicates never
// disagrees with ParseEntry on an entry ParseEntry accepts (else a
// submission could be answered as another statement's duplicate). It may
// find nothing (a bundle in unpadded base64, say): admission then parses.
func FuzzPayloadHashOf(f *testing.F) {
	s, _ := GenerateSigner(AlgEd25519)
	good, _ := Sign(minimalPayload(), s)
	f.Add(good)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}}`))
	f.Add([]byte(`{"payload":"e30=","dsseEnvelope":{"payload":"e30="}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxEntrySize+1 {
			return
		}
		h, ok := PayloadHashOf(b)
		p, err := ParseEntry(b)
		if err != nil || p.Kind == KindIndexCheckpoint {
			return
		}
		if ok && h != p.PayloadHash {
			t.Fatalf("PayloadHashOf = %x, %v; ParseEntry's payload hash %x", h, ok, p.PayloadHash)
		}
	})
}
