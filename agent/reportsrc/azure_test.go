//go:build cgo

package reportsrc_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/agent/reportsrc"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/evidence"
)

// The tests below run the Azure source against a real TPM: go-tpm-tools'
// simulator (Microsoft's reference TPM 2.0, built with cgo), provisioned
// and driven as Azure's paravisor does it, with the demo enclave's
// hardware reports (under its demo roots) inside the HCL reports, and a
// fake IMDS on 127.0.0.1.

// hclIndexSize is the size the test's paravisor gives NV index
// 0x01400001: the reference TPM's MAX_NV_INDEX_SIZE (Azure's is 2600
// bytes); the HCL report is then zero-padded, as on Azure.
const hclIndexSize = 2048

// Commands the paravisor watches (TPM 2.0 Part 2, TPM_CC).
const (
	ccNVWrite      = 0x00000137
	ccNVReadPublic = 0x00000169
	ccQuote        = 0x00000158
)

// paravisor plays Azure's paravisor in front of the simulator: the guest
// talks to it as to its vTPM; after each successful TPM2_NV_Write to
// 0x01400002 it rewrites the HCL report at 0x01400001 for the user data
// written — at once, or only as the guest looks at the report for the
// lag-th time (TPM2_NV_ReadPublic, which go-tpm's NV read starts with:
// the earlier looks see the old report), or never when stale.
type paravisor struct {
	sim   *simulator.Simulator
	e     *enclave.Enclave
	ak    *rsa.PublicKey
	stale bool
	lag   int
	// moves is how many of the next quotes are followed by an
	// extension of PCR 10 (as Linux's IMA does at run time), before
	// the guest reads the PCRs.
	moves int

	cmd     []byte
	pending int // reads of 0x01400001 until the refresh; -1: none due
	writes  atomic.Int32
}

func (p *paravisor) Write(b []byte) (int, error) {
	p.cmd = append(p.cmd[:0], b...)
	return p.sim.Write(b)
}

func (p *paravisor) Read(b []byte) (int, error) {
	n, err := p.sim.Read(b)
	// A command's header is 10 bytes (tag, size, code), its handles
	// follow; a response's code is at 6.
	if err != nil || n < 10 || binary.BigEndian.Uint32(b[6:10]) != 0 || len(p.cmd) < 14 {
		return n, err
	}
	cc, h1, h2 := binary.BigEndian.Uint32(p.cmd[6:10]), binary.BigEndian.Uint32(p.cmd[10:14]), uint32(0)
	if len(p.cmd) >= 18 {
		h2 = binary.BigEndian.Uint32(p.cmd[14:18])
	}
	switch {
	case cc == ccQuote && p.moves > 0:
		p.moves--
		d := sha256.Sum256([]byte("a file IMA measured"))
		if err := tpm2.PCRExtend(p.sim, 10, tpm2.AlgSHA256, d[:], ""); err != nil {
			return 0, err
		}
	case cc == ccNVWrite && h2 == reportsrc.AzureUserDataIndex && !p.stale:
		p.pending = p.lag
	case cc == ccNVReadPublic && h1 == reportsrc.AzureHCLReportIndex && p.pending > 0:
		p.pending--
	}
	if p.pending == 0 {
		p.pending = -1
		ud, err := tpm2.NVReadEx(p.sim, reportsrc.AzureUserDataIndex, tpm2.HandleOwner, "", 0)
		if err != nil || len(ud) != 64 {
			return 0, fmt.Errorf("paravisor: reading the user data: %v", err)
		}
		if err := p.writeReport([64]byte(ud)); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (p *paravisor) Close() error { return nil }

// writeReport writes the HCL report for userData to 0x01400001.
func (p *paravisor) writeReport(userData [64]byte) error {
	hcl, err := p.e.AzureHCLReport(p.ak, userData)
	if err != nil || len(hcl) > hclIndexSize {
		return fmt.Errorf("paravisor: an HCL report of %d bytes: %v", len(hcl), err)
	}
	hcl = append(hcl, make([]byte, hclIndexSize-len(hcl))...)
	for off := 0; off < len(hcl); off += 1024 {
		if err := tpm2.NVWrite(p.sim, tpm2.HandleOwner, reportsrc.AzureHCLReportIndex, "", hcl[off:off+1024], uint16(off)); err != nil {
			return fmt.Errorf("paravisor: writing the HCL report: %v", err)
		}
	}
	p.writes.Add(1)
	return nil
}

// vm is an Azure confidential VM played on the simulator.
type vm struct {
	e        *enclave.Enclave
	para     *paravisor
	imds     *fakeIMDS
	eventLog string
}

// newVM provisions the simulator as Azure's paravisor does: a restricted
// RSA-2048 signing key (RSASSA-SHA256) persisted at 0x81000003, the HCL
// report of zero user data at 0x01400001; and measures the demo boot
// events into the SHA-256 PCRs, with their event log in a file.
func newVM(t testing.TB, platform string) *vm {
	t.Helper()
	m := make([]byte, 48)
	rand.Read(m)
	var e *enclave.Enclave
	var err error
	if platform == evidence.AzureTDX {
		e, err = enclave.NewAzureTDX(m)
	} else {
		e, err = enclave.NewAzureSNP(m)
	}
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Get()
	if err != nil {
		t.Fatalf("the TPM simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	tmpl := tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: tpm2.FlagSignerDefault,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}, KeyBits: 2048}}
	h, pub, err := tpm2.CreatePrimary(sim, tpm2.HandleOwner, tpm2.PCRSelection{}, "", "", tmpl)
	if err != nil {
		t.Fatalf("creating the AK: %v", err)
	}
	if err := tpm2.EvictControl(sim, "", tpm2.HandleOwner, h, reportsrc.AzureAKHandle); err != nil {
		t.Fatalf("persisting the AK: %v", err)
	}
	tpm2.FlushContext(sim, h)
	if err := tpm2.NVDefineSpace(sim, tpm2.HandleOwner, reportsrc.AzureHCLReportIndex, "", "", nil, tpm2.AttrOwnerRead|tpm2.AttrOwnerWrite, hclIndexSize); err != nil {
		t.Fatalf("defining the HCL report's index: %v", err)
	}
	for _, ev := range enclave.DemoBootEvents {
		d := sha256.Sum256(ev.Data)
		if err := tpm2.PCRExtend(sim, tpmutil.Handle(ev.PCR), tpm2.AlgSHA256, d[:], ""); err != nil {
			t.Fatalf("extending PCR %d: %v", ev.PCR, err)
		}
	}
	el := filepath.Join(t.TempDir(), "binary_bios_measurements")
	if err := os.WriteFile(el, enclave.BootEventLog(enclave.DemoBootEvents...), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &paravisor{sim: sim, e: e, ak: pub.(*rsa.PublicKey), pending: -1}
	if err := p.writeReport([64]byte{}); err != nil {
		t.Fatal(err)
	}
	v := &vm{e: e, para: p, eventLog: el, imds: &fakeIMDS{e: e}}
	srv := httptest.NewServer(v.imds)
	t.Cleanup(srv.Close)
	v.imds.url = srv.URL
	return v
}

func (v *vm) source(t testing.TB) reportsrc.Source {
	t.Helper()
	s, err := reportsrc.AzureVTPM(v.para, reportsrc.AzureOptions{IMDS: v.imds.url, EventLogPath: v.eventLog, ReportWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return reportsrc.Serialize(s, reportsrc.Retry{})
}

// fakeIMDS answers as Azure's IMDS: THIM's VCEK and TD quotes.
type fakeIMDS struct {
	e        *enclave.Enclave
	url      string
	vcek     atomic.Pointer[[]byte] // a VCEK to serve instead of the VM's
	oversize atomic.Bool
	calls    atomic.Int32
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Header.Get("Metadata") != "true" {
		http.Error(w, "Required metadata header not specified", http.StatusBadRequest)
		return
	}
	if f.oversize.Load() {
		w.Write(bytes.Repeat([]byte(" "), reportsrc.MaxIMDSAnswer+1))
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == reportsrc.IMDSVCEKPath:
		vcek := f.e.EndorsementKeyCert().Raw
		if p := f.vcek.Load(); p != nil {
			vcek = *p
		}
		json.NewEncoder(w).Encode(map[string]string{
			"vcekCert":         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vcek})),
			"certificateChain": string(f.e.RootPEM()),
			"tcbm":             "DB18000000000004",
		})
	case r.Method == http.MethodPost && r.URL.Path == reportsrc.IMDSTDQuotePath:
		var req struct{ Report string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep, err := base64.RawURLEncoding.DecodeString(req.Report)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q, err := f.e.AzureTDQuote(rep)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"quote": base64.RawURLEncoding.EncodeToString(q)})
	default:
		http.NotFound(w, r)
	}
}

// testKeySet is a key set valid for the next hour (its keys are not
// used here).
func testKeySet(t testing.TB) []byte {
	t.Helper()
	now := time.Now()
	spki := make([]byte, 32)
	rand.Read(spki)
	ks := &keyset.KeySet{NotBefore: now.Add(-time.Minute).Truncate(time.Second), NotAfter: now.Add(time.Hour).Truncate(time.Second),
		TLSSPKIHash: [32]byte(spki),
		HPKE:        []keyset.KeyConfig{{ID: 1, KEM: keyset.KEMX25519, PublicKey: bytes.Repeat([]byte{9}, 32), Symmetric: []keyset.Symmetric{{KDF: 1, AEAD: 1}}}}}
	b, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// azureVerifier trusts the VM's demo roots and allows its platform.
func azureVerifier(t *testing.T, e *enclave.Enclave) *attest.Verifier {
	t.Helper()
	root := map[string]string{evidence.AzureSEVSNP: "sev-snp", evidence.AzureTDX: "tdx"}[e.Platform()]
	pol, err := policy.Parse([]byte("quorum none\ntrust-root " + root + " root.pem\nplatform " + e.Platform() + "\ntdx-tcb-status unchecked\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/root.pem", e.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := attest.New(pol.Attestation, attest.WithBaseDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAzureVTPMAgent: an enclave agent on the Azure source (over the
// simulator) serves an attestation document, and answers a challenge,
// that the verifier accepts, with the PCRs the simulator measured and the
// event log replayed to them.
func TestAzureVTPMAgent(t *testing.T) {
	for _, platform := range []string{evidence.AzureSEVSNP, evidence.AzureTDX} {
		t.Run(platform, func(t *testing.T) {
			v := newVM(t, platform)
			v.para.lag = 2 // the report is refreshed only at the third look
			a, err := agent.New(t.Context(), agent.Options{Source: v.source(t)})
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) *evidence.Bundle {
				rec := httptest.NewRecorder()
				a.DocumentHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
				}
				b, err := evidence.ParseBundle(rec.Body.Bytes())
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				return b
			}
			ver := azureVerifier(t, v.e)
			doc := get(evidence.DocumentPath)
			res := ver.Verify(doc, nil)
			if !res.OK() || res.Platform != platform || res.VTPM == nil {
				t.Fatalf("the attestation document of the Azure source: %s\n%s", res.Platform, res.Checks)
			}
			t.Logf("the attestation document:\n%s", res.Checks)
			if want := v.e.PCRs()[11]; res.VTPM.PCRs["11"] != want {
				t.Errorf("quoted PCR 11 = %s, want the demo boot's %s (the simulator's extension of the same events)", res.VTPM.PCRs["11"], want)
			}
			if !strings.Contains(res.VTPM.EventLog, "3 events replayed") {
				t.Errorf("event log: %q, want the 3 demo boot events replayed", res.VTPM.EventLog)
			}
			nonce := make([]byte, 32)
			rand.Read(nonce)
			ch := get(evidence.Path + "?nonce=" + hex.EncodeToString(nonce))
			if res := ver.Verify(ch, nonce); !res.OK() {
				t.Fatalf("the answer to a challenge: %s", res.Checks)
			}
			// After a rotation, the new key set's document verifies, and
			// the old evidence does not pass for the new key set: its
			// user data and quote answer the old one only.
			if err := a.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			doc2 := get(evidence.DocumentPath)
			if res := ver.Verify(doc2, nil); !res.OK() || bytes.Equal(doc2.KeySet, doc.KeySet) {
				t.Fatalf("the document after a rotation: %s", res.Checks)
			}
			old := *doc
			old.KeySet = doc2.KeySet
			if res := ver.Verify(&old, nil); res.OK() {
				t.Error("the first key set's evidence verified for the second key set")
			}
			if n := v.para.writes.Load(); n != 4 {
				t.Errorf("the paravisor wrote %d HCL reports, want 4: one at provisioning and one per hardware report", n)
			}
		})
	}
}

// keySetEvidence asks src for the evidence of a fresh key set, as the
// agent does, and returns it as an attestation document.
func keySetEvidence(t testing.TB, src reportsrc.Source) (*evidence.Bundle, error) {
	t.Helper()
	ks := testKeySet(t)
	rd, err := evidence.KeySetReportData(ks, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Report(t.Context(), rd)
	if err != nil {
		return nil, err
	}
	b.Format, b.KeySet = evidence.FormatKeySet, ks
	return b, nil
}

// TestAzureVTPMStaleReport: a paravisor that does not refresh its HCL
// report (the user data written never appears) makes Report fail, saying
// so, instead of returning evidence of other user data.
func TestAzureVTPMStaleReport(t *testing.T) {
	v := newVM(t, evidence.AzureSEVSNP)
	v.para.stale = true
	start := time.Now()
	_, err := keySetEvidence(t, v.source(t))
	if !errors.Is(err, reportsrc.ErrStaleHCLReport) || !strings.Contains(err.Error(), "0x01400001") {
		t.Fatalf("Report with a stale HCL report = %v, want ErrStaleHCLReport naming the NV index", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("gave up after %v, before the 1s ReportWait", d)
	}
	if v.imds.calls.Load() != 0 {
		t.Error("IMDS was asked for a VCEK of a report that is not used")
	}
}

// TestAzureVTPMPCRsMove: a PCR extended between the quote and the
// reading of the PCRs (IMA does it at any time) makes the source quote
// again; when it keeps moving, Report fails instead of returning values
// the quote does not cover.
func TestAzureVTPMPCRsMove(t *testing.T) {
	v := newVM(t, evidence.AzureSEVSNP)
	v.para.moves = 1
	b, err := keySetEvidence(t, v.source(t))
	if err != nil {
		t.Fatal(err)
	}
	if res := azureVerifier(t, v.e).Verify(b, nil); !res.OK() {
		t.Fatalf("the evidence quoted again after PCR 10 moved: %s", res.Checks)
	}
	v.para.moves = 3
	if _, err := keySetEvidence(t, v.source(t)); err == nil || !strings.Contains(err.Error(), "PCRs changed") {
		t.Fatalf("Report while PCR 10 moves at every quote = %v, want a refusal", err)
	}
}

// TestAzureVTPMOtherChipVCEK: IMDS serving a VCEK of another chip makes
// Report fail; and evidence carrying it, were it served, is refused by
// the verifier.
func TestAzureVTPMOtherChipVCEK(t *testing.T) {
	v := newVM(t, evidence.AzureSEVSNP)
	good, err := keySetEvidence(t, v.source(t))
	if err != nil {
		t.Fatal(err)
	}
	ver := azureVerifier(t, v.e)
	if res := ver.Verify(good, nil); !res.OK() {
		t.Fatalf("the evidence with the VM's own VCEK: %s", res.Checks)
	}
	m := make([]byte, 48)
	other, err := enclave.NewAzureSNP(m)
	if err != nil {
		t.Fatal(err)
	}
	v.imds.vcek.Store(&other.EndorsementKeyCert().Raw)
	if _, err := keySetEvidence(t, v.source(t)); err == nil || !strings.Contains(err.Error(), "does not sign") {
		t.Fatalf("Report with another chip's VCEK = %v, want a refusal", err)
	}
	bad := *good
	bad.VCEK = other.EndorsementKeyCert().Raw
	if res := ver.Verify(&bad, nil); res.OK() {
		t.Fatal("the verifier accepted evidence whose VCEK is another chip's")
	}
}

// TestAzureVTPMIMDSLimits: an IMDS answer over MaxIMDSAnswer, or an
// error status, fails Report; for TDX as for SEV-SNP.
func TestAzureVTPMIMDSLimits(t *testing.T) {
	for _, platform := range []string{evidence.AzureSEVSNP, evidence.AzureTDX} {
		t.Run(platform, func(t *testing.T) {
			v := newVM(t, platform)
			v.imds.oversize.Store(true)
			if _, err := keySetEvidence(t, v.source(t)); err == nil || !strings.Contains(err.Error(), "answered over") {
				t.Fatalf("Report with an oversized IMDS answer = %v, want a refusal", err)
			}
			v.imds.oversize.Store(false)
			s, err := reportsrc.AzureVTPM(v.para, reportsrc.AzureOptions{IMDS: v.imds.url + "/nowhere", EventLogPath: v.eventLog})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := keySetEvidence(t, s); err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("Report with IMDS answering 404 = %v, want the status in the error", err)
			}
		})
	}
}

// TestAzureVTPMDetect: a TPM without NV index 0x01400001 (any machine's
// but an Azure confidential VM's) is not taken for Azure; the same TPM
// once the paravisor provisioned it is.
func TestAzureVTPMDetect(t *testing.T) {
	sim, err := simulator.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	only := func(p string) bool { return p == reportsrc.TPMPath }
	open := func() (io.ReadWriteCloser, error) { return nopClose{sim}, nil }
	if s, err := reportsrc.DetectWith(only, open); !errors.Is(err, reportsrc.ErrNoSource) || !strings.Contains(err.Error(), "no HCL report") {
		t.Fatalf("Detect on a plain TPM = %v, %v; want ErrNoSource saying the TPM has no HCL report", s, err)
	}
	// An index there that is not an HCL report is not Azure's either.
	if err := tpm2.NVDefineSpace(sim, tpm2.HandleOwner, reportsrc.AzureHCLReportIndex, "", "", nil, tpm2.AttrOwnerRead|tpm2.AttrOwnerWrite, 64); err != nil {
		t.Fatal(err)
	}
	if err := tpm2.NVWrite(sim, tpm2.HandleOwner, reportsrc.AzureHCLReportIndex, "", make([]byte, 64), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := reportsrc.DetectWith(only, open); !errors.Is(err, reportsrc.ErrNoSource) {
		t.Fatalf("Detect with a non-HCL index = %v, want ErrNoSource", err)
	}
	if err := tpm2.NVWrite(sim, tpm2.HandleOwner, reportsrc.AzureHCLReportIndex, "", append([]byte("HCLA"), make([]byte, 60)...), 0); err != nil {
		t.Fatal(err)
	}
	s, err := reportsrc.DetectWith(only, open)
	if err != nil || !strings.HasPrefix(s.Name(), "Azure vTPM ("+reportsrc.TPMPath) {
		t.Fatalf("Detect with an HCL report = %v, %v; want the Azure source", s, err)
	}
}

type nopClose struct{ io.ReadWriter }

func (nopClose) Close() error { return nil }

// BenchmarkAzureVTPMReport: one report of the Azure source on the
// simulator (NV write, HCL report read, quote, PCR reads, IMDS round
// trip) against the same evidence made in-process by the demo's software
// Azure VM (the baseline: the hardware report's signing, which both
// include).
func BenchmarkAzureVTPMReport(b *testing.B) {
	for _, platform := range []string{evidence.AzureSEVSNP, evidence.AzureTDX} {
		// One VM (one simulator: there is one at a time) per platform.
		b.Run(platform, func(b *testing.B) {
			v := newVM(b, platform)
			src := v.source(b)
			rd, err := evidence.KeySetReportData(testKeySet(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("demo", func(b *testing.B) {
				for b.Loop() {
					if _, err := v.e.Report(b.Context(), rd); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("simulator", func(b *testing.B) {
				for b.Loop() {
					if _, err := src.Report(b.Context(), rd); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
