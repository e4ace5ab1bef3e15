// Package reportsrc is where an enclave agent gets its hardware evidence
// from, inside a confidential VM: Linux's configfs-tsm
// (/sys/kernel/config/tsm/report, through google/go-configfs-tsm), the
// older /dev/sev-guest (go-sev-guest) and /dev/tdx_guest (go-tdx-guest)
// devices, an Azure confidential VM's vTPM (/dev/tpmrm0, through
// go-tpm, and Azure's Instance Metadata Service: azure.go), and NVIDIA
// GPUs through NVML (github.com/NVIDIA/go-nvml, in builds with cgo).
// Detect picks the first that exists.
//
// A source returns evidence whose REPORT_DATA is the 64 bytes it is
// given, or, behind Azure's paravisor, whose runtime claims carry them as
// user data (and whose TPM quote answers evidence.KeySetQuoteData of
// them).
package reportsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	tsmreport "github.com/google/go-configfs-tsm/report"
	sevclient "github.com/google/go-sev-guest/client"
	tdxclient "github.com/google/go-tdx-guest/client"
	"github.com/google/go-tpm/legacy/tpm2"

	"github.com/attestlog/attestlog/policy/evidence"
)

// Source produces the CPU's hardware evidence.
type Source interface {
	// Name says which source this is (the agent logs it at start).
	Name() string
	// Report returns evidence whose REPORT_DATA is rd: the platform
	// and its report and certificate table, or its quote; nothing
	// stapled. Implementations need not be safe for concurrent use:
	// wrap them in Serialize.
	Report(ctx context.Context, rd [64]byte) (*evidence.Bundle, error)
}

// GPUSource produces the GPUs' evidence.
type GPUSource interface {
	// Name says which source this is.
	Name() string
	// GPUEvidence returns the evidence of every GPU, GPU i answering
	// the SPDM nonce evidence.GPUNonce(seed, i).
	GPUEvidence(ctx context.Context, seed []byte) ([]evidence.GPU, error)
}

// ErrNoSource is returned by Detect when no hardware source exists.
var ErrNoSource = errors.New("no hardware report source: neither an Azure confidential VM's vTPM (/dev/tpmrm0 with an HCL report at NV index 0x01400001), /sys/kernel/config/tsm/report (configfs-tsm), /dev/sev-guest nor /dev/tdx_guest exists; run inside an SEV-SNP or TDX guest (or, for a demo, use source: demo)")

// Paths Detect looks at.
const (
	ConfigFSPath = "/sys/kernel/config/tsm/report"
	SEVGuestPath = "/dev/sev-guest"
	TDXGuestPath = "/dev/tdx_guest"
)

// Detect returns the first source that exists: an Azure confidential
// VM's vTPM (TPMPath exists and NV index 0x01400001 holds an HCL report:
// a TPM without it, as on any other machine, is not picked), then
// configfs-tsm, /dev/sev-guest, /dev/tdx_guest. Azure comes first because
// its paravisor, not the guest, holds the hardware: a guest device there
// gives no report the verifier can use.
func Detect() (Source, error) {
	return detector{}.detect()
}

// detector is what Detect looks at; tests replace it.
type detector struct {
	exists  func(path string) bool
	openTPM func() (io.ReadWriteCloser, error)
	azure   AzureOptions
}

func (d detector) detect() (Source, error) {
	if d.exists == nil {
		d.exists = func(p string) bool { _, err := os.Stat(p); return err == nil }
	}
	if d.openTPM == nil {
		d.openTPM = func() (io.ReadWriteCloser, error) { return tpm2.OpenTPM(TPMPath) }
	}
	var tpmNote error
	if d.exists(TPMPath) {
		rw, err := d.openTPM()
		if err == nil {
			if err = probeAzure(rw); err == nil {
				return azureSource(rw, TPMPath, d.azure)
			}
			rw.Close()
		}
		tpmNote = fmt.Errorf("%s: %w", TPMPath, err)
	}
	if d.exists(ConfigFSPath) {
		c, err := linuxtsm.MakeClient()
		if err != nil {
			return nil, fmt.Errorf("configfs-tsm: %w", err)
		}
		return ConfigFS(c), nil
	}
	if d.exists(SEVGuestPath) {
		return OpenSEVGuest()
	}
	if d.exists(TDXGuestPath) {
		return OpenTDXGuest()
	}
	if tpmNote != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoSource, tpmNote)
	}
	return nil, ErrNoSource
}

// Open returns the source named: "auto" (Detect), "azure-vtpm",
// "configfs-tsm", "sev-guest" or "tdx-guest".
func Open(name string) (Source, error) {
	switch name {
	case "", "auto":
		return Detect()
	case "azure-vtpm":
		return OpenAzureVTPM(AzureOptions{})
	case "configfs-tsm":
		c, err := linuxtsm.MakeClient()
		if err != nil {
			return nil, fmt.Errorf("configfs-tsm: %w", err)
		}
		return ConfigFS(c), nil
	case "sev-guest":
		return OpenSEVGuest()
	case "tdx-guest":
		return OpenTDXGuest()
	}
	return nil, fmt.Errorf("report source %q: want auto, azure-vtpm, configfs-tsm, sev-guest or tdx-guest", name)
}

// --- configfs-tsm

type configFS struct{ c configfsi.Client }

// ConfigFS is the configfs-tsm source on c (linuxtsm.MakeClient in a
// guest; faketsm in tests): its provider says the platform, sev_guest
// (outblob the report, auxblob the certificate table) or tdx_guest
// (outblob the quote).
func ConfigFS(c configfsi.Client) Source { return &configFS{c: c} }

func (s *configFS) Name() string { return "configfs-tsm (" + ConfigFSPath + ")" }

func (s *configFS) Report(_ context.Context, rd [64]byte) (*evidence.Bundle, error) {
	resp, err := tsmreport.Get(s.c, &tsmreport.Request{InBlob: rd[:], GetAuxBlob: true})
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	b := &evidence.Bundle{Format: evidence.Format}
	switch p := trimNL(resp.Provider); p {
	case "sev_guest":
		b.Platform, b.Report, b.CertTable = evidence.SEVSNP, resp.OutBlob, resp.AuxBlob
	case "tdx_guest":
		b.Platform, b.Quote = evidence.TDX, resp.OutBlob
	default:
		return nil, fmt.Errorf("configfs-tsm provider %q: attestlog reads sev_guest and tdx_guest", p)
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("configfs-tsm (%s) answered: %w", resp.Provider, err)
	}
	return b, nil
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == 0) {
		s = s[:len(s)-1]
	}
	return s
}

// --- /dev/sev-guest

type sevGuest struct{ d sevclient.Device }

// OpenSEVGuest opens /dev/sev-guest.
func OpenSEVGuest() (Source, error) {
	d, err := sevclient.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SEVGuestPath, err)
	}
	return SEVGuest(d), nil
}

// SEVGuest is the source of an SEV-SNP guest device: the extended report
// (the report and the host's certificate table).
func SEVGuest(d sevclient.Device) Source { return &sevGuest{d: d} }

func (s *sevGuest) Name() string { return SEVGuestPath + " (go-sev-guest)" }

func (s *sevGuest) Report(_ context.Context, rd [64]byte) (*evidence.Bundle, error) {
	rep, certs, err := sevclient.GetRawExtendedReport(s.d, rd)
	if err != nil {
		return nil, fmt.Errorf("%s extended report: %w", SEVGuestPath, err)
	}
	b := &evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP, Report: rep, CertTable: certs}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("%s answered: %w", SEVGuestPath, err)
	}
	return b, nil
}

// --- /dev/tdx_guest

type tdxGuest struct{ d tdxclient.Device }

// OpenTDXGuest opens /dev/tdx_guest.
func OpenTDXGuest() (Source, error) {
	d, err := tdxclient.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", TDXGuestPath, err)
	}
	return TDXGuest(d), nil
}

// TDXGuest is the source of a TDX guest device: a DCAP quote.
func TDXGuest(d tdxclient.Device) Source { return &tdxGuest{d: d} }

func (s *tdxGuest) Name() string { return TDXGuestPath + " (go-tdx-guest)" }

func (s *tdxGuest) Report(_ context.Context, rd [64]byte) (*evidence.Bundle, error) {
	q, err := tdxclient.GetRawQuote(s.d, rd)
	if err != nil {
		return nil, fmt.Errorf("%s quote: %w", TDXGuestPath, err)
	}
	b := &evidence.Bundle{Format: evidence.Format, Platform: evidence.TDX, Quote: q}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("%s answered: %w", TDXGuestPath, err)
	}
	return b, nil
}

// --- serialising

// Retry bounds Serialize's retries.
type Retry struct {
	// Attempts is how many times a call is made at most (default 5).
	Attempts int
	// Backoff is the wait after the first failure, doubled after each
	// (default 50ms).
	Backoff time.Duration
}

type serialized struct {
	mu sync.Mutex
	s  Source
	r  Retry
}

// Serialize makes s safe for concurrent use: one call at a time (the
// kernel interfaces collide when asked concurrently), and a call that
// fails with EBUSY, EINTR or EAGAIN, or with configfs-tsm's generation
// error (another writer changed the entry), is made again after a
// backoff, up to r.Attempts times or until ctx ends.
func Serialize(s Source, r Retry) Source {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Backoff <= 0 {
		r.Backoff = 50 * time.Millisecond
	}
	return &serialized{s: s, r: r}
}

func (s *serialized) Name() string { return s.s.Name() }

func (s *serialized) Report(ctx context.Context, rd [64]byte) (*evidence.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := s.r.Backoff
	for i := 1; ; i++ {
		b, err := s.s.Report(ctx, rd)
		if err == nil || !Transient(err) || i >= s.r.Attempts {
			if err != nil && Transient(err) {
				err = fmt.Errorf("%w (after %d attempts)", err, i)
			}
			return b, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (retrying after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// Transient reports whether err is one a retry may cure: EBUSY, EINTR,
// EAGAIN, or configfs-tsm's generation conflict. go-configfs-tsm words
// some of its errors with %v, which keeps the errno's text but not the
// errno: that text counts too.
func Transient(err error) bool {
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) || tsmreport.GetGenerationErr(err) != nil {
		return true
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, e := range []syscall.Errno{syscall.EBUSY, syscall.EINTR, syscall.EAGAIN} {
		if strings.Contains(msg, e.Error()) {
			return true
		}
	}
	return false
}
