package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/internal/testenv"
)

// jsPeer installs testdata/ohttp-interop-js (an OHTTP client and gateway
// on dajiaji's HPKE and Binary HTTP packages, pinned with their integrity
// hashes by its package-lock.json) into a fresh directory with npm ci, and
// returns a function that runs `node peer.mjs args...` there.
func jsPeer(t *testing.T) func(ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	node := testenv.LookPath(t, "node")
	npm := testenv.LookPath(t, "npm")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		testenv.Missing(t, "node", err)
	}
	v := strings.TrimSpace(string(out))
	if major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(v, ".", 2)[0], "v")); major < 20 {
		testenv.Missing(t, "Node.js 20 or later (the interop peer's engines)", fmt.Errorf("node is %s", v))
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "peer.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ohttp-interop-js", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ci := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts")
	ci.Dir, ci.Env = dir, env
	if out, err := ci.CombinedOutput(); err != nil {
		// Offline, npm's cache must hold them.
		testenv.Missing(t, "the npm packages pinned by testdata/ohttp-interop-js/package-lock.json", fmt.Errorf("npm ci: %v\n%s", err, out))
	}
	return func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, node, append([]string{"peer.mjs"}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
}

// jsExchange is one request of the JavaScript client, as peer.mjs reports it.
type jsExchange struct {
	ID               uint8             `json:"id"`
	KEM              uint16            `json:"kem"`
	KDF              uint16            `json:"kdf"`
	AEAD             uint16            `json:"aead"`
	BHTTPRequest     string            `json:"bhttpRequest"`
	Status           int               `json:"status"`
	ContentType      string            `json:"contentType"`
	InnerStatus      int               `json:"innerStatus"`
	InnerContentType string            `json:"innerContentType"`
	InnerBody        string            `json:"innerBody"`
	Tampered         map[string]string `json:"tampered"`
	Error            string            `json:"error"`
}

// TestInteropOHTTPJS runs Oblivious HTTP against a peer written on
// independent implementations of HPKE (RFC 9180; dajiaji's @hpke/*, with
// its own X25519, X-Wing and ML-KEM) and Binary HTTP (RFC 9292; bhttp-js),
// in JavaScript under Node, for both KEMs our key configurations offer
// (DHKEM(X25519) and MLKEM768-X25519, which is X-Wing) and every
// symmetric pair:
//
//   - their client → our relay → our enclave's gateway → the chat
//     service, and back: the answer opens and reads as the service's,
//     tampered copies of it do not open, requests sealed to a key
//     configuration the gateway does not hold are refused 4xx (an
//     unknown key identifier with RFC 9458 §5.3's ohttp-key problem);
//   - our client (channel/ohttp, channel/bhttp) → our relay → their
//     gateway, and back; their gateway refuses our requests to a key it
//     does not hold (RFC 9458 §5.3's problem type) and tampered ones, and
//     our client refuses their answers tampered.
func TestInteropOHTTPJS(t *testing.T) {
	node := jsPeer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	t.Run("their client, our relay and gateway", func(t *testing.T) {
		f := channeltest.NewFleet(t, 0)
		up := channeltest.StartUpstream(t, nil)
		r := channeltest.StartAgent(t, f, up, agent.Options{})
		relayURL, rec := startRelay(t, r.URL)
		served := fetchConfigs(t, relayURL)

		const question = "interop from hpke-js and bhttp-js"
		body := `{"model":"` + chat.Model + `","messages":[{"role":"user","content":"` + question + `"}]}`
		cmd := node(ctx, "client", relayURL, body)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node peer.mjs client: %v\n%s", err, stderr.Bytes())
		}
		var got struct {
			Keys struct {
				Status      int    `json:"status"`
				ContentType string `json:"contentType"`
			} `json:"keys"`
			Exchanges []jsExchange `json:"exchanges"`
			Refused   []struct {
				Name        string `json:"name"`
				Status      int    `json:"status"`
				ContentType string `json:"contentType"`
				Body        string `json:"body"`
			} `json:"refused"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("peer.mjs client printed %q: %v", out, err)
		}
		if got.Keys.Status != 200 || got.Keys.ContentType != ohttp.ContentTypeKeys {
			t.Errorf("their client fetched the key configurations through our relay: %d %q", got.Keys.Status, got.Keys.ContentType)
		}

		// Every key configuration and symmetric pair our gateway serves
		// was used, and each answered.
		want := map[string]bool{}
		for _, c := range served {
			for _, s := range c.Symmetric {
				want[fmt.Sprintf("%d/0x%04x/%d/%d", c.ID, c.KEM, s.KDF, s.AEAD)] = true
			}
		}
		kems := map[uint16]bool{}
		for _, x := range got.Exchanges {
			name := fmt.Sprintf("%d/0x%04x/%d/%d", x.ID, x.KEM, x.KDF, x.AEAD)
			delete(want, name)
			kems[x.KEM] = true
			if x.Error != "" || x.Status != 200 || x.ContentType != ohttp.ContentTypeResponse {
				t.Errorf("%s: our gateway answered their request %d (%s): %s", name, x.Status, x.ContentType, x.Error)
				continue
			}
			if x.InnerStatus != 200 || !strings.HasPrefix(x.InnerContentType, "application/json") || !strings.Contains(x.InnerBody, chat.Reply(question)) {
				t.Errorf("%s: their client opened and read our answer as %d %q %q", name, x.InnerStatus, x.InnerContentType, x.InnerBody)
			}
			for _, how := range []string{"nonce", "ciphertext", "tag", "truncated"} {
				if v := x.Tampered[how]; !strings.HasPrefix(v, "refused") {
					t.Errorf("%s: their client on our answer with its %s tampered: %q, want it refused", name, how, v)
				}
			}
			// Our Binary HTTP decoder reads what bhttp-js wrote.
			breq, err := bhttp.ParseRequest(mustHex(t, x.BHTTPRequest))
			if err != nil {
				t.Errorf("%s: our decoder on bhttp-js's request: %v", name, err)
			} else if breq.Method != "POST" || breq.Scheme != "https" || breq.Authority != "enclave.example" || breq.Path != "/v1/chat/completions" ||
				string(breq.Content) != body || bhttp.Header(breq.Header)["X-Interop"] == nil {
				t.Errorf("%s: our decoder read bhttp-js's request as %+v", name, breq)
			}
		}
		if len(want) != 0 {
			t.Errorf("their client did not use our key configurations %v", want)
		}
		if !kems[keyset.KEMX25519] || !kems[keyset.KEMMLKEM768X25519] {
			t.Errorf("their client used KEMs %v, want both DHKEM(X25519) and MLKEM768-X25519 (X-Wing)", kems)
		}
		if len(got.Refused) != 2 {
			t.Fatalf("their client sent %d requests to keys our gateway does not hold, want 2", len(got.Refused))
		}
		for _, x := range got.Refused {
			t.Logf("our gateway, through our relay, to their request to %s: %d (%s) %q", x.Name, x.Status, x.ContentType, x.Body)
			if x.Status < 400 || x.Status > 499 || x.ContentType == ohttp.ContentTypeResponse {
				t.Errorf("%s: our gateway answered %d (%s) %q, want it refused with a 4xx", x.Name, x.Status, x.ContentType, x.Body)
			}
		}
		// An unknown key identifier: RFC 9458 §5.3's problem, through the
		// relay, for their client to read.
		var problem struct{ Type string }
		if x := got.Refused[0]; json.Unmarshal([]byte(x.Body), &problem) != nil || x.ContentType != ohttp.ContentTypeProblem || problem.Type != ohttp.ProblemTypeKey {
			t.Errorf("%s: our gateway answered %d (%s) %q, want the ohttp-key problem", x.Name, x.Status, x.ContentType, x.Body)
		}
		if bytes.Contains(rec.all(), []byte(question)) {
			t.Error("the relay saw the question")
		}
	})

	t.Run("our client and relay, their gateway", func(t *testing.T) {
		ikm, seed := make([]byte, 32), make([]byte, 32)
		rand.Read(ikm)
		rand.Read(seed)
		cmd := node(ctx, "gateway", hex.EncodeToString(ikm), hex.EncodeToString(seed))
		in, _ := cmd.StdinPipe()
		outp, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			in.Close() // the gateway stops when its standard input ends
			if err := cmd.Wait(); err != nil {
				t.Errorf("their gateway: %v\n%s", err, stderr.Bytes())
			}
		})
		line, err := bufio.NewReader(outp).ReadBytes('\n')
		var started struct{ URL string }
		if err == nil {
			err = json.Unmarshal(line, &started)
		}
		if err != nil || !strings.HasPrefix(started.URL, "http://127.0.0.1:") {
			t.Fatalf("their gateway started: %q, %v\n%s", line, err, stderr.Bytes())
		}
		relayURL, _ := startRelay(t, started.URL)
		served := fetchConfigs(t, relayURL)

		// Their keys are the ones crypto/hpke derives from the same
		// secrets: the X25519 one by RFC 9180 DeriveKeyPair, the X-Wing
		// one from its 32-byte private key (seed expansion, ML-KEM-768
		// and X25519 keys, their order).
		wantX, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(ikm)
		if err != nil {
			t.Fatal(err)
		}
		wantH, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		wantPK := map[uint16][]byte{keyset.KEMX25519: wantX.PublicKey().Bytes(), keyset.KEMMLKEM768X25519: wantH.PublicKey().Bytes()}
		if len(served) != 2 {
			t.Fatalf("their gateway serves %d key configurations, want 2", len(served))
		}
		for _, c := range served {
			if !bytes.Equal(c.PublicKey, wantPK[c.KEM]) {
				t.Errorf("their %s public key %x…, crypto/hpke's from the same secret %x…", keyset.KEMName(c.KEM), c.PublicKey[:8], wantPK[c.KEM][:min(8, len(wantPK[c.KEM]))])
			}
		}

		const content = `{"interop":"from channel/ohttp"}`
		req := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "enclave.example", Path: "/v1/chat/completions",
			Header: []bhttp.Field{{Name: "content-type", Value: "application/json"}}, Content: []byte(content)}
		msg, err := req.MarshalKnownLength()
		if err != nil {
			t.Fatal(err)
		}
		post := func(body []byte) (int, string, []byte) {
			t.Helper()
			resp, err := http.Post(relayURL, ohttp.ContentTypeRequest, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("Content-Type"), b
		}
		for _, c := range served {
			for _, s := range c.Symmetric {
				su := ohttp.Suite{KEM: c.KEM, KDF: s.KDF, AEAD: s.AEAD}
				name := fmt.Sprintf("%s/%d/%d", keyset.KEMName(c.KEM), s.KDF, s.AEAD)
				enc, cr, err := ohttp.EncapsulateRequest(c, su, msg)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				status, ct, sealed := post(enc)
				if status != 200 || ct != ohttp.ContentTypeResponse {
					t.Errorf("%s: their gateway answered our request %d (%s): %s", name, status, ct, sealed)
					continue
				}
				opened, err := cr.OpenResponse(sealed)
				if err != nil {
					t.Errorf("%s: our client on their answer: %v", name, err)
					continue
				}
				// Our Binary HTTP decoder reads what bhttp-js wrote, which
				// echoes what bhttp-js read of ours.
				resp, err := bhttp.ParseResponse(opened)
				if err != nil {
					t.Errorf("%s: our decoder on bhttp-js's response %x: %v", name, opened, err)
					continue
				}
				h := http.Header(bhttp.Header(resp.Header))
				var echo struct {
					Method, URL, ContentType, Body string
					KEM, KDF, AEAD                 uint16
				}
				if err := json.Unmarshal(resp.Content, &echo); err != nil || resp.Status != 201 || h.Get("Content-Type") != "application/json" || h.Get("X-Gateway") != "ohttp-interop-js" {
					t.Errorf("%s: their answer reads %d %v %q: %v", name, resp.Status, h, resp.Content, err)
				}
				if echo.Method != "POST" || echo.URL != "https://enclave.example/v1/chat/completions" || echo.ContentType != "application/json" || echo.Body != content ||
					echo.KEM != c.KEM || echo.KDF != s.KDF || echo.AEAD != s.AEAD {
					t.Errorf("%s: their gateway read our request as %+v", name, echo)
				}
				for _, at := range []int{0, len(sealed) - 1} { // the response nonce, the tag
					bad := bytes.Clone(sealed)
					bad[at] ^= 1
					if _, err := cr.OpenResponse(bad); !errors.Is(err, ohttp.ErrDecrypt) {
						t.Errorf("%s: our client on their answer tampered at byte %d: %v, want ErrDecrypt", name, at, err)
					}
				}
				bad := bytes.Clone(enc)
				bad[len(bad)-1] ^= 1
				if status, ct, b := post(bad); status != 400 || ct == ohttp.ContentTypeResponse {
					t.Errorf("%s: their gateway on our tampered request: %d (%s) %s, want 400", name, status, ct, b)
				}
			}
		}

		// A key configuration their gateway does not hold: RFC 9458
		// §5.3's problem type, through our relay.
		other, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		cfg := keyset.KeyConfig{ID: 9, KEM: keyset.KEMX25519, PublicKey: other.PublicKey().Bytes(), Symmetric: []keyset.Symmetric{{KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}}}
		enc, _, err := ohttp.EncapsulateRequest(cfg, ohttp.Suite{KEM: cfg.KEM, KDF: keyset.KDFHKDFSHA256, AEAD: keyset.AEADAES128GCM}, msg)
		if err != nil {
			t.Fatal(err)
		}
		status, ct, b := post(enc)
		var problem struct{ Type string }
		if err := json.Unmarshal(b, &problem); err != nil || status != 400 || ct != ohttp.ContentTypeProblem || problem.Type != ohttp.ProblemTypeKey {
			t.Errorf("their gateway on our request to a key it does not hold: %d (%s) %s, want RFC 9458's ohttp-key problem", status, ct, b)
		}
	})
}

// fetchConfigs fetches a gateway's key configurations through the relay.
func fetchConfigs(t *testing.T, relayURL string) []keyset.KeyConfig {
	t.Helper()
	resp, err := http.Get(relayURL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ohttp.ContentTypeKeys {
		t.Fatalf("GET %s/keys: %s (%s) %q", relayURL, resp.Status, resp.Header.Get("Content-Type"), raw)
	}
	cs, err := keyset.ParseKeyConfigs(raw)
	if err != nil {
		t.Fatalf("the key configurations served through the relay: %v", err)
	}
	return cs
}
