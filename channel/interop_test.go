package channel_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/channeltest"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/channel/ohttp"
	"github.com/attestlog/attestlog/internal/demo/chat"
)

// ohttpGoPeer builds testdata/ohttp-go-peer against a checkout of
// github.com/chris-wood/ohttp-go (an independent OHTTP and BHTTP
// implementation on Cloudflare's CIRCL HPKE) named by ATTESTLOG_OHTTP_GO:
// a source directory, or a git directory whose HEAD is archived. The
// module is not on the Go module proxy and its code is not ours to
// commit, so the checkout comes from outside the repository; it vendors
// its dependencies and builds offline.
func ohttpGoPeer(t *testing.T) func(string) string {
	t.Helper()
	src := os.Getenv("ATTESTLOG_OHTTP_GO")
	if src == "" {
		// Not testenv.Missing: no CI machine can have it without a
		// script that fetches it, which the project does not commit.
		t.Skip("set ATTESTLOG_OHTTP_GO to a checkout (or git directory) of github.com/chris-wood/ohttp-go to run the interoperability test")
	}
	dir := t.TempDir()
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err == nil {
		if out, err := exec.Command("cp", "-a", src+"/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v\n%s", src, err, out)
		}
	} else {
		sh := exec.Command("sh", "-c", `git --git-dir="$1" archive HEAD | tar -x -C "$2"`, "sh", src, dir)
		if out, err := sh.CombinedOutput(); err != nil {
			t.Fatalf("unpacking %s: %v\n%s", src, err, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || !strings.Contains(string(b), "module github.com/chris-wood/ohttp-go") {
		t.Fatalf("%s is not github.com/chris-wood/ohttp-go: %v", src, err)
	}
	peerSrc, err := os.ReadFile("testdata/ohttp-go-peer/main.go")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "cmd", "attestlog-peer"), 0o755)
	os.WriteFile(filepath.Join(dir, "cmd", "attestlog-peer", "main.go"), peerSrc, 0o644)
	bin := filepath.Join(dir, "peer")
	build := exec.Command("go", "build", "-mod=vendor", "-o", bin, "./cmd/attestlog-peer")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=vendor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the ohttp-go peer: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	sc := bufio.NewScanner(outp)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return func(line string) string {
		t.Helper()
		io.WriteString(in, line+"\n")
		if !sc.Scan() {
			t.Fatalf("the ohttp-go peer ended: %v", sc.Err())
		}
		out := sc.Text()
		if strings.HasPrefix(out, "error: ") {
			t.Fatalf("ohttp-go peer, %s: %s", strings.Fields(line)[0], out)
		}
		return out
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s[:min(len(s), 40)], err)
	}
	return b
}

// TestInteropOHTTPGo: ohttp-go's client (its Binary HTTP, its HPKE)
// through our relay to our enclave's gateway, X25519; and our client to
// ohttp-go's gateway.
func TestInteropOHTTPGo(t *testing.T) {
	peer := ohttpGoPeer(t)

	// Their client → our relay → our gateway → the service.
	f := channeltest.NewFleet(t, 0)
	up := channeltest.StartUpstream(t, nil)
	r := channeltest.StartAgent(t, f, up, agent.Options{})
	relayURL, rec := startRelay(t, r.URL)
	resp, err := http.Get(relayURL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cs, err := keyset.ParseKeyConfigs(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := ohttp.ChooseKEM(cs, keyset.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	const question = "interop from ohttp-go"
	body := `{"model":"` + chat.Model + `","messages":[{"role":"user","content":"` + question + `"}]}`
	enc := peer("client-request " + hex.EncodeToString(keyset.MarshalKeyConfig(cfg)) + " https://enclave.example/v1/chat/completions " + hex.EncodeToString([]byte(body)))
	resp, err = http.Post(relayURL, ohttp.ContentTypeRequest, bytes.NewReader(mustHex(t, enc)))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ohttp.ContentTypeResponse {
		t.Fatalf("our gateway answered ohttp-go's request %s (%s): %s", resp.Status, resp.Header.Get("Content-Type"), sealed)
	}
	status, content, _ := strings.Cut(peer("client-open "+hex.EncodeToString(sealed)), " ")
	if status != "200" || !strings.Contains(string(mustHex(t, content)), chat.Reply(question)) {
		t.Fatalf("ohttp-go opened our answer: %s %q", status, mustHex(t, content))
	}
	if bytes.Contains(rec.all(), []byte(question)) {
		t.Error("the relay saw the question")
	}

	// Our client → their gateway.
	theirs := mustHex(t, peer("gateway"))
	tcs, err := keyset.ParseKeyConfigs(append(binary.BigEndian.AppendUint16(nil, uint16(len(theirs))), theirs...))
	if err != nil {
		t.Fatalf("ohttp-go's key configuration does not parse: %v", err)
	}
	tcfg, su, err := ohttp.Choose(tcs)
	if err != nil {
		t.Fatal(err)
	}
	req := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "enclave.example", Path: "/v1/chat/completions",
		Header: []bhttp.Field{{Name: "content-type", Value: "application/json"}}, Content: []byte(body)}
	msg, _ := req.MarshalKnownLength()
	encReq, cr, err := ohttp.EncapsulateRequest(tcfg, su, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustHex(t, peer("gateway-decap "+hex.EncodeToString(encReq))); !bytes.Equal(got, msg) {
		t.Fatalf("ohttp-go's gateway opened %x, want our %x", got, msg)
	}
	answer := &bhttp.Response{Status: 200, Header: []bhttp.Field{{Name: "content-type", Value: "text/plain"}}, Content: []byte("sealed by ohttp-go")}
	am, _ := answer.MarshalKnownLength()
	opened, err := cr.OpenResponse(mustHex(t, peer("gateway-seal "+hex.EncodeToString(am))))
	if err != nil || !bytes.Equal(opened, am) {
		t.Fatalf("our client opened ohttp-go's response: %x, %v; want %x", opened, err, am)
	}
}
