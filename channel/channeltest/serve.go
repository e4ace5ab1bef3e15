package channeltest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/internal/demo/chat"
)

// upstream is a real HTTP service on loopback (the demo chat service)
// that counts what reaches it.
type Upstream struct {
	URL      *url.URL
	Requests atomic.Int64
	Bodies   atomic.Int64 // bytes of request bodies received
	Server   *http.Server
}

func StartUpstream(t testing.TB, h http.Handler) *Upstream {
	t.Helper()
	if h == nil {
		h = (&chat.Server{}).Handler()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	u.Server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.Requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.Bodies.Add(int64(len(b)))
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	})}
	go u.Server.Serve(ln)
	t.Cleanup(func() { u.Server.Close() })
	return u
}

type Running struct {
	Agent *agent.Agent
	URL   string
	stop  func()
}

// startAgent runs an enclave agent for the fleet on loopback, TLS, in
// front of up.
func StartAgent(t testing.TB, f *Fleet, up *Upstream, o agent.Options) *Running {
	t.Helper()
	if o.Source == nil {
		o.Source = f.Enclave
	}
	if o.GPUs == nil && f.Enclave.GPUCount() > 0 {
		o.GPUs = f.Enclave
	}
	if o.Staple == nil {
		o.Staple = f.Staple
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RefreshStaple(ctx); err != nil {
		t.Fatal(err)
	}
	go a.Run(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var target *url.URL
	if up != nil {
		target = up.URL
	}
	done := make(chan struct{})
	go func() { a.ServeTLS(ctx, ln, a.Handler(target)); close(done) }()
	r := &Running{Agent: a, URL: "https://" + ln.Addr().String(), stop: func() { cancel(); <-done }}
	t.Cleanup(r.stop)
	return r
}

// SelfSigned is a TLS configuration with a fresh key and certificate of
// its own (a relay's, an interceptor's).
func SelfSigned(t testing.TB) *tls.Config {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}}
}
