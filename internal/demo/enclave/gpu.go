package enclave

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// Demo GPU values: what every demo GPU reports unless an option says
// otherwise.
const (
	DemoGPUDriver = "550.144.03"
	DemoGPUArch   = "HOPPER"
)

// DemoGPUVBIOS is the demo GPUs' VBIOS version, 96.00.5E.00.01.
var DemoGPUVBIOS = [5]byte{0x96, 0x00, 0x5e, 0x00, 0x01}

// DemoGPUBlock is demo GPU measurement block i (1-64): a fixed SHA-384.
func DemoGPUBlock(i int) []byte {
	h := sha512.Sum384(fmt.Appendf(nil, "attestlog demo GPU measurement block %d", i))
	return h[:]
}

// gpuSet is the enclave's demo GPUs: a device root of this process
// ("attestlog TEST ONLY - not NVIDIA"), and per GPU a provisioned device
// certificate (as NVIDIA's BROM certificate) and the key of the
// attestation certificate the GPU makes at boot (the leaf). The root
// answers OCSP for the device certificates; the enclave staples it.
type gpuSet struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	devs    []gpuDev
	revoked map[int]bool
	feature byte // FEATURE_FLAG: 0 CC mode, 2 protected PCIe

	mu       sync.Mutex
	ocspAt   time.Time
	ocspResp [][]byte // per GPU
}

type gpuDev struct {
	key    *ecdsa.PrivateKey
	device *x509.Certificate // the provisioned certificate OCSP speaks about
	chain  string            // PEM: leaf, device certificate, root
	blocks [][]byte
}

func newGPUs(n int, created time.Time, swap map[int]map[int][]byte, revoked map[int]bool, ppcie bool) (*gpuSet, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"attestlog TEST ONLY - not NVIDIA"}}
	}
	notAfter := created.Add(25 * 365 * 24 * time.Hour)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name("attestlog demo GPU Device Identity CA"), NotBefore: created, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	root, err := newCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	g := &gpuSet{root: root, rootKey: rootKey, revoked: revoked}
	if ppcie {
		g.feature = 2
	}
	pemOf := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	for i := range n {
		dk, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		device, err := newCert(&x509.Certificate{SerialNumber: big.NewInt(int64(1000 + i)), Subject: name(fmt.Sprintf("attestlog demo GH100 GPU %d BROM", i)),
			NotBefore: created, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, root, &dk.PublicKey, rootKey)
		if err != nil {
			return nil, err
		}
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		leaf, err := newCert(&x509.Certificate{SerialNumber: big.NewInt(int64(100 + i)), Subject: name(fmt.Sprintf("attestlog demo GH100 GPU %d FMC LF", i)),
			NotBefore: created, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}, device, &k.PublicKey, dk)
		if err != nil {
			return nil, err
		}
		var blocks [][]byte
		for b := 1; b <= 64; b++ {
			v := DemoGPUBlock(b)
			if s, ok := swap[i][b]; ok {
				v = s
			}
			blocks = append(blocks, v)
		}
		g.devs = append(g.devs, gpuDev{key: k, device: device, chain: pemOf(leaf) + pemOf(device) + pemOf(root), blocks: blocks})
	}
	return g, nil
}

// ocspValidity is how long a demo OCSP response holds; a fresh one is
// made when half of it has passed (NVIDIA's responder: about a day).
const ocspValidity = 24 * time.Hour

// staples returns GPU i's stapled OCSP responses, made anew when old.
func (g *gpuSet) staples(now time.Time) ([][]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ocspResp != nil && now.Sub(g.ocspAt) < ocspValidity/2 {
		return g.ocspResp, nil
	}
	at := now.Add(-time.Minute).Truncate(time.Second)
	var out [][]byte
	for i, d := range g.devs {
		t := ocsp.Response{Status: ocsp.Good, SerialNumber: d.device.SerialNumber, ThisUpdate: at, NextUpdate: at.Add(ocspValidity)}
		if g.revoked[i] {
			t.Status, t.RevokedAt, t.RevocationReason = ocsp.Revoked, at.Add(-time.Hour), ocsp.KeyCompromise
		}
		der, err := ocsp.CreateResponse(g.root, g.root, t, g.rootKey)
		if err != nil {
			return nil, err
		}
		out = append(out, der)
	}
	g.ocspAt, g.ocspResp = now, out
	return out, nil
}

// evidence is each GPU's report answering the nonce derived for it, with
// its OCSP response stapled.
func (g *gpuSet) evidence(nonce []byte) ([]evidence.GPU, error) {
	staples, err := g.staples(time.Now())
	if err != nil {
		return nil, err
	}
	var out []evidence.GPU
	for i, d := range g.devs {
		n := evidence.GPUNonce(nonce, i)
		rep, err := spdm.Build(n, d.blocks, []spdm.OpaqueField{
			spdm.TextField(spdm.OpaqueDriverVersion, DemoGPUDriver), spdm.VBIOSField(DemoGPUVBIOS),
			spdm.TextField(spdm.OpaqueProject, "demo"), spdm.TextField(spdm.OpaqueProjectSKU, "0000"), spdm.TextField(spdm.OpaqueChipSKU, "000"),
			{Type: spdm.OpaqueDataVersion, Value: []byte{1, 0}}, {Type: spdm.OpaqueFeatureFlag, Value: []byte{g.feature, 0}}, // 0: CC, 2: PPCIe
		}, d.key)
		if err != nil {
			return nil, err
		}
		out = append(out, evidence.GPU{Arch: DemoGPUArch, Report: rep, CertChain: d.chain, OCSP: [][]byte{staples[i]}})
	}
	return out, nil
}

// WithGPUs attaches n demo GPUs (at most evidence.MaxGPUs): the bundle
// then carries their evidence (format v2) and REPORT_DATA binds it.
func WithGPUs(n int) Option { return func(o *options) { o.gpus = n } }

// WithGPUMeasurement makes demo GPU gpu report value as measurement block
// block (a swapped VBIOS, for tests).
func WithGPUMeasurement(gpu, block int, value []byte) Option {
	return func(o *options) {
		if o.gpuSwap == nil {
			o.gpuSwap = map[int]map[int][]byte{}
		}
		if o.gpuSwap[gpu] == nil {
			o.gpuSwap[gpu] = map[int][]byte{}
		}
		o.gpuSwap[gpu][block] = value
	}
}

// WithGPUsInPPCIe makes the demo GPUs report protected-PCIe mode instead
// of CC mode (for tests).
func WithGPUsInPPCIe() Option { return func(o *options) { o.gpuPPCIe = true } }

// WithGPUsCloned makes every demo GPU the first one: one device, reported
// as many times as WithGPUs says, each time answering the nonce derived
// for its place (how a host with one GPU would meet count=N; for tests).
func WithGPUsCloned() Option { return func(o *options) { o.gpuCloned = true } }

// WithGPURevoked makes the demo root's OCSP responder say GPU gpu's
// device certificate is revoked (for tests).
func WithGPURevoked(gpu int) Option {
	return func(o *options) {
		if o.gpuRevoked == nil {
			o.gpuRevoked = map[int]bool{}
		}
		o.gpuRevoked[gpu] = true
	}
}

// GPURootPEM is the demo GPUs' device root, for a 'trust-root gpu' line
// (nil without GPUs).
func (e *Enclave) GPURootPEM() []byte {
	if e.gpus == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.gpus.root.Raw})
}
