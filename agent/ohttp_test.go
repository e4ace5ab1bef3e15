package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// gatewayAgent is an agent (demo SEV-SNP source) in front of the demo
// chat service on loopback.
func gatewayAgent(t testing.TB) (*Agent, http.Handler) {
	t.Helper()
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
	srv := &http.Server{Handler: (&chat.Server{}).Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a, a.Handler(&url.URL{Scheme: "http", Host: ln.Addr().String()})
}

func do(h http.Handler, method, path, ct string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// keySetOf reads the key set of the document the agent serves.
func keySetOf(t *testing.T, h http.Handler) *keyset.KeySet {
	t.Helper()
	w := do(h, http.MethodGet, evidence.DocumentPath, "", nil)
	b, err := evidence.ParseBundle(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := b.ParsedKeySet()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestGatewayServesTheAttestedKeys: the keys served are the document's
// key set's, byte for byte; a request sealed to them is answered; after
// a rotation the previous key set's keys still open requests, and the
// served keys follow the new key set.
func TestGatewayServesTheAttestedKeys(t *testing.T) {
	a, h := gatewayAgent(t)
	ks := keySetOf(t, h)
	w := do(h, http.MethodGet, GatewayPath, "", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != ohttp.ContentTypeKeys {
		t.Fatalf("GET %s = %d %s", GatewayPath, w.Code, w.Header().Get("Content-Type"))
	}
	if err := ks.CheckServedConfigs(w.Body.Bytes()); err != nil {
		t.Fatalf("the served keys are not the attested ones: %v", err)
	}
	if ks.HPKE[0].KEM != keyset.KEMMLKEM768X25519 || ks.HPKE[1].KEM != keyset.KEMX25519 {
		t.Errorf("KEMs %s, %s; want the hybrid first, X25519 second", keyset.KEMName(ks.HPKE[0].KEM), keyset.KEMName(ks.HPKE[1].KEM))
	}
	ask := func(cs []keyset.KeyConfig, kem uint16) int {
		cfg, s, err := ohttp.ChooseKEM(cs, kem)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := (&bhttp.Request{Method: "GET", Scheme: "https", Path: "/v1/models"}).MarshalKnownLength()
		enc, cr, err := ohttp.EncapsulateRequest(cfg, s, msg)
		if err != nil {
			t.Fatal(err)
		}
		w := do(h, http.MethodPost, GatewayPath, ohttp.ContentTypeRequest, enc)
		if w.Code != 200 {
			return w.Code
		}
		pt, err := cr.OpenResponse(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := bhttp.ParseResponse(pt)
		if err != nil || resp.Status != 200 || !bytes.Contains(resp.Content, []byte(chat.Model)) {
			t.Fatalf("answer %+v, %v", resp, err)
		}
		return 200
	}
	for _, kem := range []uint16{keyset.KEMMLKEM768X25519, keyset.KEMX25519} {
		if code := ask(ks.HPKE, kem); code != 200 {
			t.Errorf("%s: %d", keyset.KEMName(kem), code)
		}
	}
	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ks2 := keySetOf(t, h)
	if ks2.HPKE[0].ID == ks.HPKE[0].ID || bytes.Equal(ks2.HPKE[0].PublicKey, ks.HPKE[0].PublicKey) {
		t.Error("the new key set reuses the key identifier or key")
	}
	if err := ks2.CheckServedConfigs(do(h, http.MethodGet, GatewayPath, "", nil).Body.Bytes()); err != nil {
		t.Errorf("after the rotation: %v", err)
	}
	if code := ask(ks.HPKE, keyset.KEMX25519); code != 200 {
		t.Errorf("a request to the previous key set's key: %d, want 200 while it lasts", code)
	}
	// A key no key set has: 422, so that the client verifies again.
	stranger := ks.HPKE[1]
	stranger.ID = 200
	if code := ask([]keyset.KeyConfig{stranger}, keyset.KEMX25519); code != http.StatusUnprocessableEntity {
		t.Errorf("an unknown key: %d, want 422", code)
	}
	// ... with RFC 9458 §5.3's problem, which any OHTTP client reads.
	for _, ct := range []string{ohttp.ContentTypeRequest, ohttp.ContentTypeChunkedRequest} {
		cfg, s, _ := ohttp.ChooseKEM([]keyset.KeyConfig{stranger}, keyset.KEMX25519)
		enc, _, err := ohttp.EncapsulateRequest(cfg, s, []byte("unread"))
		if err != nil {
			t.Fatal(err)
		}
		w := do(h, http.MethodPost, GatewayPath, ct, enc)
		var problem struct {
			Type   string
			Status int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &problem); err != nil || w.Code != 422 || w.Header().Get("Content-Type") != ohttp.ContentTypeProblem ||
			problem.Type != ohttp.ProblemTypeKey || problem.Status != 422 {
			t.Errorf("%s to an unknown key: %d %q %s (%v), want 422 with the ohttp-key problem", ct, w.Code, w.Header().Get("Content-Type"), w.Body.Bytes(), err)
		}
	}
	for name, tc := range map[string]struct {
		ct   string
		body []byte
		want int
	}{
		"wrong type":  {"application/json", []byte("{}"), 415},
		"empty":       {ohttp.ContentTypeRequest, nil, 400},
		"garbage":     {ohttp.ContentTypeRequest, append([]byte{ks2.HPKE[1].ID, 0, 0x20, 0, 1, 0, 1}, make([]byte, 60)...), 400},
		"garbage too": {ohttp.ContentTypeChunkedRequest, append([]byte{ks2.HPKE[1].ID, 0, 0x20, 0, 1, 0, 1}, make([]byte, 60)...), 400},
	} {
		if w := do(h, http.MethodPost, GatewayPath, tc.ct, tc.body); w.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, w.Code, tc.want)
		}
	}
}

func FuzzGateway(f *testing.F) {
	a, h := gatewayAgent(f)
	_ = a
	f.Add(false, []byte{0, 0x64, 0x7a, 0, 1, 0, 1})
	f.Add(true, []byte{1, 0, 0x20, 0, 1, 0, 3})
	f.Fuzz(func(t *testing.T, chunked bool, body []byte) {
		if len(body) > 1<<14 {
			return
		}
		ct := ohttp.ContentTypeRequest
		if chunked {
			ct = ohttp.ContentTypeChunkedRequest
		}
		w := do(h, http.MethodPost, GatewayPath, ct, body)
		if w.Code == 200 || w.Code >= 500 {
			t.Fatalf("arbitrary bytes: %d %s", w.Code, w.Body.Bytes()[:min(w.Body.Len(), 100)])
		}
		io.Copy(io.Discard, w.Body)
	})
}

// TestGatewayFlushes: over a real connection, a small answer of known
// length (under net/http's 2 KiB response buffer) leaves in one piece
// (sent whole, with its length: nothing of it was flushed on its own),
// and a stream leaves as the service writes it (flushed: chunked on the
// wire).
func TestGatewayFlushes(t *testing.T) {
	_, h := gatewayAgent(t)
	ks := keySetOf(t, h)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg, s, err := ohttp.ChooseKEM(ks.HPKE, keyset.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hello gateway"}]}`, chat.Model, stream)
		msg, _ := (&bhttp.Request{Method: "POST", Scheme: "https", Path: "/v1/chat/completions",
			Header: []bhttp.Field{{Name: "content-type", Value: "application/json"}}, Content: []byte(body)}).MarshalKnownLength()
		var sealed bytes.Buffer
		cr, err := ohttp.NewChunkedRequest(cfg, s, &sealed)
		if err != nil {
			t.Fatal(err)
		}
		cr.Write(msg)
		cr.Close()
		resp, err := http.Post(srv.URL+GatewayPath, ohttp.ContentTypeChunkedRequest, &sealed)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := bhttp.ReadResponse(cr.OpenResponse(resp.Body), bhttp.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(sr.Body)
		if _, terr := sr.Trailer(); err != nil || terr != nil || sr.Status != 200 || !bytes.Contains(content, []byte("gateway")) {
			t.Fatalf("stream %v: %d %q, %v %v", stream, sr.Status, content, err, terr)
		}
		resp.Body.Close()
		chunked := len(resp.TransferEncoding) > 0
		if !stream && (chunked || resp.ContentLength <= 0) {
			t.Errorf("a small answer: Transfer-Encoding %v, Content-Length %d; want it sent whole", resp.TransferEncoding, resp.ContentLength)
		}
		if stream && !chunked {
			t.Errorf("a stream: Content-Length %d; want it flushed as written (chunked)", resp.ContentLength)
		}
	}
}
