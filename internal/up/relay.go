package up

import (
	"crypto/tls"
	"log/slog"
	"net/http"

	"github.com/attestlog/attestlog/relay"
)

// RelayPrefix is where up serves an Oblivious HTTP relay for the demo
// enclave (gateway "demo").
const RelayPrefix = "/ohttp-relay"

// demoRelay is a relay to the demo enclave agent. The agent's TLS
// certificate is self-signed by its attested key (clients check the
// attestation, not a CA), so the relay does not check it: what it
// forwards is sealed to the attested HPKE key.
func demoRelay(enclaveURL string, logger *slog.Logger) (http.Handler, error) {
	g, err := relay.ParseGateway("demo=" + enclaveURL)
	if err != nil {
		return nil, err
	}
	rl, err := relay.New(relay.Options{Gateways: []relay.Gateway{g}, Rate: 100, Burst: 200, Logger: logger,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16, DisableCompression: true}})
	if err != nil {
		return nil, err
	}
	return rl.Handler(), nil
}
