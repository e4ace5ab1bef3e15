package reportsrc

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// fakeConfigFS is go-configfs-tsm's fake configfs whose provider is
// sev_guest (or tdx_guest) and whose outblob and auxblob are the demo
// enclave's report (or quote) for the inblob written: the kernel's
// interface, with demo-signed evidence behind it.
func fakeConfigFS(t *testing.T, e *enclave.Enclave) *faketsm.Client {
	t.Helper()
	sub := faketsm.ReportV7(0)
	provider := "sev_guest\n"
	if e.Platform() == evidence.TDX {
		provider = "tdx_guest\n"
	}
	sub.ReadAttr = func(en *faketsm.ReportEntry, attr string) ([]byte, error) {
		if attr == "provider" {
			return []byte(provider), nil
		}
		var rd [64]byte
		copy(rd[:], en.InAttrs["inblob"].Value)
		b, err := e.Report(context.Background(), rd)
		if err != nil {
			return nil, err
		}
		switch attr {
		case "outblob":
			if b.Platform == evidence.TDX {
				return b.Quote, nil
			}
			return b.Report, nil
		case "auxblob":
			return b.CertTable, nil
		case "privlevel_floor":
			return []byte("0\n"), nil
		}
		return nil, syscall.ENOENT
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// busyFirst fails the first n writes with EBUSY (the kernel's answer to
// a concurrent request).
type busyFirst struct {
	configfsi.Client
	n atomic.Int32
}

func (b *busyFirst) WriteFile(name string, contents []byte) error {
	if b.n.Add(-1) >= 0 {
		return syscall.EBUSY
	}
	return b.Client.WriteFile(name, contents)
}

func verifier(t *testing.T, e *enclave.Enclave) *attest.Verifier {
	t.Helper()
	// A TD's configfs-tsm quote comes without Intel collateral (the
	// agent's configuration staples none here).
	pol, err := policy.Parse([]byte("quorum none\ntrust-root " + e.Platform() + " root.pem\nplatform " + e.Platform() + "\ntdx-tcb-status unchecked\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/root.pem", e.RootPEM())
	v, err := attest.New(pol.Attestation, attest.WithBaseDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestConfigFS(t *testing.T) {
	for _, platform := range []string{evidence.SEVSNP, evidence.TDX} {
		t.Run(platform, func(t *testing.T) {
			m := make([]byte, 48)
			rand.Read(m)
			e, err := enclave.NewSNP(m)
			if platform == evidence.TDX {
				e, err = enclave.NewTDX(m)
			}
			if err != nil {
				t.Fatal(err)
			}
			src := Serialize(ConfigFS(fakeConfigFS(t, e)), Retry{})
			nonce := make([]byte, 32)
			rand.Read(nonce)
			rd, _ := evidence.ReportData(nonce, nil)
			b, err := src.Report(t.Context(), rd)
			if err != nil {
				t.Fatal(err)
			}
			// The evidence verifies, bound to the REPORT_DATA asked for.
			res := verifier(t, e).Verify(b, nonce)
			if !res.OK() || res.Platform != platform {
				t.Fatalf("evidence from configfs-tsm: %s\n%s", res.Platform, res.Checks)
			}
		})
	}
}

func TestSerializeRetriesBusy(t *testing.T) {
	m := make([]byte, 48)
	e, err := enclave.NewSNP(m)
	if err != nil {
		t.Fatal(err)
	}
	busy := &busyFirst{Client: fakeConfigFS(t, e)}
	busy.n.Store(2)
	var rd [64]byte
	if _, err := Serialize(ConfigFS(busy), Retry{Attempts: 3, Backoff: 1}).Report(t.Context(), rd); err != nil {
		t.Fatalf("two EBUSY then success, 3 attempts: %v", err)
	}
	busy.n.Store(5)
	_, err = Serialize(ConfigFS(busy), Retry{Attempts: 3, Backoff: 1}).Report(t.Context(), rd)
	if err == nil || !Transient(err) {
		t.Fatalf("EBUSY past the attempts = %v, want a transient error", err)
	}
	// Not transient: not retried.
	if Transient(errors.New("configfs-tsm provider \"fake\": attestlog reads sev_guest and tdx_guest")) {
		t.Error("an unknown provider counts as transient")
	}
}

// TestSerializeOneAtATime: concurrent callers reach the source one at a
// time.
func TestSerializeOneAtATime(t *testing.T) {
	var in, most atomic.Int32
	src := Serialize(sourceFunc(func(context.Context, [64]byte) (*evidence.Bundle, error) {
		n := in.Add(1)
		defer in.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		return &evidence.Bundle{}, nil
	}), Retry{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { src.Report(context.Background(), [64]byte{}) })
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d calls reached the source at once, want 1", most.Load())
	}
}

type sourceFunc func(context.Context, [64]byte) (*evidence.Bundle, error)

func (f sourceFunc) Name() string { return "func" }
func (f sourceFunc) Report(ctx context.Context, rd [64]byte) (*evidence.Bundle, error) {
	return f(ctx, rd)
}

func TestProviderRefused(t *testing.T) {
	// go-configfs-tsm's own fake provider ("fake"): not a TEE.
	c := &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}
	if _, err := ConfigFS(c).Report(t.Context(), [64]byte{}); err == nil {
		t.Fatal("the fake provider's blob was taken for evidence")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAzureChecksAcceptRealReports: the checks the Azure source makes of
// the HCL report it reads (it parses; its hardware REPORT_DATA is SHA-256
// of its runtime claims; they carry user data) hold for the HCL reports
// recorded on Azure (policy/vtpm/testdata): the source would not wait
// out a genuine report as torn.
func TestAzureChecksAcceptRealReports(t *testing.T) {
	for _, f := range []string{"azure-snp/evidence-v2.json", "azure-snp/evidence-genoa.json", "azure-tdx/evidence-v1.json"} {
		raw, err := os.ReadFile("../../policy/vtpm/testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := evidence.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		h, err := vtpm.ParseHCLReport(b.VTPM.HCLReport)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c, err := vtpm.ParseRuntimeClaims(h.Claims)
		if err != nil || !bindsClaims(h) || len(c.UserData) != 64 {
			t.Errorf("%s: claims %v, binds %v, user data of %d bytes; want a report the source accepts", f, err, bindsClaims(h), len(c.UserData))
		}
	}
}
