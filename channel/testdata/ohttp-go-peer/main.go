// Command peer drives github.com/chris-wood/ohttp-go, an independent
// Oblivious HTTP implementation, for attestlog's interoperability test
// (channel/interop_test.go). The test copies this file into a checkout
// of ohttp-go and builds it there; the checkout is never part of
// attestlog.
//
// It reads commands on stdin, one a line, and answers one line each:
//
//	client-request CONFIG_HEX URL BODY_HEX  → ENC_REQUEST_HEX  (its BHTTP of a POST, sealed to CONFIG)
//	client-open ENC_RESPONSE_HEX            → STATUS BODY_HEX  (opened, its BHTTP parser)
//	gateway                                 → CONFIG_HEX       (a fresh X25519 key, id 7)
//	gateway-decap ENC_REQUEST_HEX           → REQUEST_HEX      (the Binary HTTP request)
//	gateway-seal RESPONSE_HEX               → ENC_RESPONSE_HEX
//
// Errors answer "error: ...".
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	ohttp "github.com/chris-wood/ohttp-go"
	"github.com/cloudflare/circl/hpke"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var cctx ohttp.EncapsulatedRequestContext
	var gw ohttp.Gateway
	var gctx ohttp.DecapsulateRequestContext
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		out, err := func() (string, error) {
			arg := func(i int) []byte {
				if i >= len(f) {
					return nil
				}
				b, _ := hex.DecodeString(f[i])
				return b
			}
			switch f[0] {
			case "client-request":
				cfg, err := ohttp.UnmarshalPublicConfig(arg(1))
				if err != nil {
					return "", err
				}
				req, err := http.NewRequest(http.MethodPost, f[2], bytes.NewReader(arg(3)))
				if err != nil {
					return "", err
				}
				req.Header.Set("Content-Type", "application/json")
				br := ohttp.BinaryRequest(*req)
				msg, err := br.Marshal()
				if err != nil {
					return "", err
				}
				enc, ctx, err := ohttp.NewDefaultClient(cfg).EncapsulateRequest(msg)
				if err != nil {
					return "", err
				}
				cctx = ctx
				return hex.EncodeToString(enc.Marshal()), nil
			case "client-open":
				er, err := ohttp.UnmarshalEncapsulatedResponse(arg(1))
				if err != nil {
					return "", err
				}
				msg, err := cctx.DecapsulateResponse(er)
				if err != nil {
					return "", err
				}
				resp, err := ohttp.UnmarshalBinaryResponse(msg)
				if err != nil {
					return "", err
				}
				body, _ := io.ReadAll(resp.Body)
				return fmt.Sprintf("%d %s", resp.StatusCode, hex.EncodeToString(body)), nil
			case "gateway":
				pc, err := ohttp.NewConfig(7, hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)
				if err != nil {
					return "", err
				}
				gw = ohttp.NewDefaultGateway([]ohttp.PrivateConfig{pc})
				return hex.EncodeToString(pc.Config().Marshal()), nil
			case "gateway-decap":
				er, err := ohttp.UnmarshalEncapsulatedRequest(arg(1))
				if err != nil {
					return "", err
				}
				msg, ctx, err := gw.DecapsulateRequest(er)
				if err != nil {
					return "", err
				}
				gctx = ctx
				return hex.EncodeToString(msg), nil
			case "gateway-seal":
				er, err := gctx.EncapsulateResponse(arg(1))
				if err != nil {
					return "", err
				}
				return hex.EncodeToString(er.Marshal()), nil
			}
			return "", fmt.Errorf("unknown command %q", f[0])
		}()
		if err != nil {
			out = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Println(out)
	}
}
