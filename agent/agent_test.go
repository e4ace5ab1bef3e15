package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent/reportsrc"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

func TestRefusesWithoutSource(t *testing.T) {
	if _, err := New(t.Context(), Options{}); !errors.Is(err, reportsrc.ErrNoSource) {
		t.Fatalf("New without a source = %v, want ErrNoSource", err)
	}
	failing := failingSource{}
	if _, err := New(t.Context(), Options{Source: failing}); err == nil {
		t.Fatal("New with a source that gives no report started")
	}
	if _, err := New(t.Context(), Options{Source: failing, Lifetime: 30 * 24 * time.Hour}); err == nil {
		t.Fatal("a 30-day key lifetime was accepted")
	}
}

type failingSource struct{}

func (failingSource) Name() string { return "failing" }
func (failingSource) Report(context.Context, [64]byte) (*evidence.Bundle, error) {
	return nil, errors.New("no report")
}

// TestDocumentOfTheConnection: after a rotation, a connection made
// before it is still answered with its own key set's document, and a new
// one with the new key set's, each naming the key its handshake used.
func TestDocumentOfTheConnection(t *testing.T) {
	m := make([]byte, 48)
	rand.Read(m)
	e, err := enclave.NewSNP(m)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), Options{Source: e})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.ServeTLS(ctx, ln, a.Handler(nil)); close(done) }()
	defer func() { cancel(); <-done }()
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	get := func(c *http.Client) (spki [32]byte, ks *keyset.KeySet) {
		resp, err := c.Get("https://" + ln.Addr().String() + evidence.DocumentPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		b, err := evidence.ParseBundle(body)
		if err != nil {
			t.Fatalf("document: %v", err)
		}
		if ks, err = b.ParsedKeySet(); err != nil || ks == nil {
			t.Fatalf("document without a key set: %v", err)
		}
		return sha256.Sum256(resp.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo), ks
	}
	old := client()
	spki1, ks1 := get(old)
	if ks1.TLSSPKIHash != spki1 {
		t.Fatal("the document's key set does not name the connection's key")
	}
	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if spki, ks := get(old); spki != spki1 || ks.TLSSPKIHash != spki1 {
		t.Error("a connection made before the rotation got another key set's document")
	}
	spki2, ks2 := get(client())
	if spki2 == spki1 || ks2.TLSSPKIHash != spki2 {
		t.Errorf("a new connection after the rotation: key %x, document's %x (old %x)", spki2[:4], ks2.TLSSPKIHash[:4], spki1[:4])
	}
	if n := a.Reports(); n != 2 {
		t.Errorf("%d hardware reports for two key sets and three documents, want 2", n)
	}
}
