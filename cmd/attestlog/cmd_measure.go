package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/attestlog/attestlog/policy/gpu/rim"
	"github.com/attestlog/attestlog/policy/measure/ovmf"
	"github.com/attestlog/attestlog/policy/measure/snp"
	"github.com/attestlog/attestlog/policy/measure/tdx"
)

func init() {
	register("measure snp", "compute an SEV-SNP launch digest from OVMF, kernel and vCPU settings", runMeasureSNP)
	register("measure snp-ovmf-hash", "compute the SEV-SNP launch digest of the OVMF pages alone", runMeasureSNPOVMFHash)
	register("measure tdx", "compute a TDX MRTD from a TDVF (OVMF) image, and the RTMR1 and RTMR2 events of a QEMU direct boot", runMeasureTDX)
	register("measure tdx-replay", "replay a CC event log against a TDX quote's RTMRs", runMeasureTDXReplay)
	register("measure gpu", "verify NVIDIA GPU RIMs (driver, VBIOS) and print their golden measurements", runMeasureGPU)
	allowsArgs["attestlog measure gpu"] = true
}

// measureStdout is where the measure commands print; tests replace it.
var measureStdout io.Writer = os.Stdout

// optionalInt is an int flag that records whether it was set.
type optionalInt struct {
	v   int64
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

// ptr returns the value, or nil when the flag was not set.
func (o *optionalInt) ptr() *int64 {
	if !o.set {
		return nil
	}
	return &o.v
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	o.v, o.set = v, true
	return nil
}

func runMeasureSNP(args []string) error {
	fs := newFlagSet("measure snp", "--ovmf FILE --vcpus N (--vcpu-type TYPE | --vcpu-sig SIG | --vcpu-family F --vcpu-model M --vcpu-stepping S) [flags]")
	ovmfPath := fs.String("ovmf", "", "OVMF firmware image `FILE` (required)")
	kernel := fs.String("kernel", "", "kernel `FILE` for measured direct boot (needs an OvmfPkg/AmdSev build)")
	initrd := fs.String("initrd", "", "initrd `FILE` (with --kernel)")
	appendArg := fs.String("append", "", "kernel command `LINE` (with --kernel)")
	vcpus := fs.Int("vcpus", 0, "number of guest vCPUs (required)")
	vcpuType := fs.String("vcpu-type", "", "guest vCPU `TYPE`, one of "+strings.Join(snp.VCPUTypeNames(), ", "))
	var vcpuSig, family, model, stepping optionalInt
	fs.Var(&vcpuSig, "vcpu-sig", "guest vCPU signature `VALUE` (CPUID Fn0000_0001_EAX; decimal or 0x hex)")
	fs.Var(&family, "vcpu-family", "guest vCPU `FAMILY` (with --vcpu-model and --vcpu-stepping)")
	fs.Var(&model, "vcpu-model", "guest vCPU `MODEL`")
	fs.Var(&stepping, "vcpu-stepping", "guest vCPU `STEPPING`")
	vmmType := fs.String("vmm-type", "QEMU", "`VMM` type: QEMU, ec2 or gce")
	features := fs.String("guest-features", "0x1", "guest SEV features `VALUE` (the VMSA's SEV_FEATURES; decimal or 0x hex)")
	ovmfHash := fs.String("snp-ovmf-hash", "", "precomputed `HEX` launch digest of the OVMF pages (from 'measure snp-ovmf-hash'); the image's pages are then not hashed")
	format := fs.String("output-format", "hex", "output `FORMAT`: hex or base64")
	verbose := fs.Bool("v", false, "print a label before the digest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *ovmfPath == "":
		return usageError(fs, "missing --ovmf FILE")
	case *vcpus < 1:
		return usageError(fs, "missing --vcpus N (at least 1)")
	case *initrd != "" && *kernel == "":
		return usageError(fs, "--initrd needs --kernel")
	case *appendArg != "" && *kernel == "":
		return usageError(fs, "--append needs --kernel")
	case *format != "hex" && *format != "base64":
		return usageError(fs, "--output-format must be hex or base64")
	}
	vmm, err := snp.ParseVMMType(*vmmType)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	gf, err := snp.ParseGuestFeatures(*features)
	if err != nil {
		return usageError(fs, "--guest-features: %v", err)
	}
	sig, err := snp.VCPU{Family: family.ptr(), Model: model.ptr(), Stepping: stepping.ptr(), Sig: vcpuSig.ptr(), Type: *vcpuType}.Signature(vmm)
	if err != nil {
		return usageError(fs, "%v (see --vcpu-type, --vcpu-sig, --vcpu-family/--vcpu-model/--vcpu-stepping)", err)
	}

	img, err := ovmf.ReadFile(*ovmfPath)
	if err != nil {
		return err
	}
	fw, err := snp.ParseFirmware(img)
	if err != nil {
		return fmt.Errorf("%s: %w", *ovmfPath, err)
	}
	cfg := snp.Config{VCPUs: *vcpus, VCPUSig: sig, VMM: vmm, GuestFeatures: gf}
	if *ovmfHash != "" {
		cfg.OVMFHash, err = hex.DecodeString(*ovmfHash)
		if err != nil || len(cfg.OVMFHash) != snp.DigestSize {
			return usageError(fs, "--snp-ovmf-hash must be %d hex digits", 2*snp.DigestSize)
		}
	}
	if *kernel != "" {
		if cfg.Kernel, err = hashKernelFiles(*kernel, *initrd, *appendArg); err != nil {
			return err
		}
	}
	ld, err := snp.LaunchDigest(fw, cfg)
	if err != nil {
		return err
	}
	out := hex.EncodeToString(ld[:])
	if *format == "base64" {
		out = base64.StdEncoding.EncodeToString(ld[:])
	}
	if *verbose {
		fmt.Fprintf(measureStdout, "Calculated SEV-SNP guest measurement: %s\n", out)
	} else {
		fmt.Fprintln(measureStdout, out)
	}
	return nil
}

func hashKernelFiles(kernel, initrd, cmdline string) (*snp.KernelHashes, error) {
	k, err := os.Open(kernel)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	var ir io.Reader
	if initrd != "" {
		f, err := os.Open(initrd)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		ir = f
	}
	return snp.HashKernel(k, ir, cmdline)
}

func runMeasureSNPOVMFHash(args []string) error {
	fs := newFlagSet("measure snp-ovmf-hash", "--ovmf FILE")
	ovmfPath := fs.String("ovmf", "", "OVMF firmware image `FILE` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ovmfPath == "" {
		fmt.Fprintln(fs.Output(), "missing --ovmf FILE")
		fs.Usage()
		return errUsage
	}
	img, err := ovmf.ReadFile(*ovmfPath)
	if err != nil {
		return err
	}
	h, err := snp.OVMFHash(img)
	if err != nil {
		return fmt.Errorf("%s: %w", *ovmfPath, err)
	}
	fmt.Fprintln(measureStdout, hex.EncodeToString(h[:]))
	return nil
}

func runMeasureTDX(args []string) error {
	fs := newFlagSet("measure tdx", "--firmware FILE [--page-order single-pass|two-pass] [--kernel FILE [--initrd FILE --memory SIZE] [--append CMDLINE]] [--json]")
	fwPath := fs.String("firmware", "", "TDVF (OVMF) firmware image `FILE` (required)")
	order := fs.String("page-order", tdx.DefaultPageOrder.String(), "how the VMM adds and measures pages: `ORDER` single-pass (each page added then extended; upstream KVM) or two-pass (a section's pages all added, then all extended; earlier TDX trees)")
	both := fs.Bool("both-orders", false, "print the MRTD of both page orders (not with boot inputs)")
	asJSON := fs.Bool("json", false, "print JSON (with the computed RTMR events)")
	kernel := fs.String("kernel", "", "bzImage `FILE` given to QEMU's -kernel (direct boot; must have an EFI stub): computes RTMR1, and RTMR2 as a Linux 6.9 or later EFI stub measures the command line and initrd")
	initrd := fs.String("initrd", "", "initrd `FILE` given to QEMU's -initrd (with --kernel and --memory)")
	appendArg := fs.String("append", "", "kernel command `LINE` given to QEMU's -append (with --kernel)")
	memory := fs.String("memory", "", "guest RAM `SIZE` as QEMU's -m takes it (a bare number is MiB; suffixes K, M, G, T); needed with --initrd, whose load address QEMU derives from it and patches into the measured kernel")
	acpiTables := fs.String("acpi-tables", "", "not supported yet: RTMR0 (TD HOB, ACPI tables, UEFI variables) depends on the host's QEMU and OVMF versions and is not computed; compare its events with 'measure tdx-replay'")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootInputs := *kernel != "" || *initrd != "" || *appendArg != "" || *memory != ""
	switch {
	case *fwPath == "":
		return usageError(fs, "missing --firmware FILE")
	case *acpiTables != "":
		return fmt.Errorf("--acpi-tables: computing RTMR0 is not implemented: it measures the TD HOB QEMU builds from the memory size, QEMU's ACPI tables and the firmware's variable store, whose layout differs between QEMU and OVMF versions and has not been verified against a real TD here; replay the guest's event log with 'attestlog measure tdx-replay' and compare its RTMR0 events")
	case *initrd != "" && *kernel == "":
		return usageError(fs, "--initrd needs --kernel")
	case *appendArg != "" && *kernel == "":
		return usageError(fs, "--append needs --kernel")
	case *initrd != "" && *memory == "":
		return usageError(fs, "--initrd needs --memory: QEMU patches the initrd's load address, derived from the guest memory size, into the kernel that TDVF measures into RTMR1")
	case *both && bootInputs:
		return usageError(fs, "--both-orders prints MRTDs only; leave out the boot inputs")
	}
	o, err := tdx.ParsePageOrder(*order)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	var memSize uint64
	if *memory != "" {
		if memSize, err = tdx.ParseMemorySize(*memory); err != nil {
			return usageError(fs, "--memory %q: %v", *memory, err)
		}
	}
	img, err := ovmf.ReadFile(*fwPath)
	if err != nil {
		return err
	}
	fw, err := tdx.ParseFirmware(img)
	if err != nil {
		return fmt.Errorf("%s: %w", *fwPath, err)
	}
	if !bootInputs {
		orders := []tdx.PageOrder{o}
		if *both {
			orders = []tdx.PageOrder{tdx.SinglePass, tdx.TwoPass}
		}
		type result struct {
			PageOrder string `json:"page_order"`
			MRTD      string `json:"mrtd"`
		}
		var results []result
		for _, o := range orders {
			m, err := tdx.MRTD(fw, o)
			if err != nil {
				return err
			}
			results = append(results, result{o.String(), hex.EncodeToString(m[:])})
		}
		if *asJSON {
			e := json.NewEncoder(measureStdout)
			e.SetIndent("", "  ")
			if *both {
				return e.Encode(results)
			}
			return e.Encode(results[0])
		}
		for _, r := range results {
			if *both {
				fmt.Fprintf(measureStdout, "mrtd %s %s\n", r.MRTD, r.PageOrder)
			} else {
				fmt.Fprintf(measureStdout, "mrtd %s\n", r.MRTD)
			}
		}
		return nil
	}

	b := tdx.DirectBoot{Cmdline: *appendArg, MemorySize: memSize}
	if *kernel != "" {
		if b.Kernel, err = readLimited(*kernel, tdx.MaxKernelSize); err != nil {
			return err
		}
	}
	if *initrd != "" {
		if b.Initrd, err = readLimited(*initrd, tdx.MaxInitrdSize); err != nil {
			return err
		}
	}
	m, err := tdx.MeasureBoot(fw, o, b)
	if err != nil {
		return fmt.Errorf("%s: %w", *kernel, err)
	}
	if *asJSON {
		e := json.NewEncoder(measureStdout)
		e.SetIndent("", "  ")
		return e.Encode(m)
	}
	return m.WriteText(measureStdout)
}

func runMeasureTDXReplay(args []string) error {
	fs := newFlagSet("measure tdx-replay", "--event-log FILE (--quote FILE | --rtmrs HEX,HEX,HEX,HEX) [--json]")
	logPath := fs.String("event-log", "", "CC event log `FILE` (e.g. a copy of /sys/firmware/acpi/tables/data/CCEL) (required)")
	quotePath := fs.String("quote", "", "TDX DCAP quote `FILE` (v4 or v5) whose RTMRs the log must replay to (its signature is not checked here)")
	rtmrList := fs.String("rtmrs", "", "comma-separated `HEX` RTMR0..RTMR3 to replay against instead of a quote (empty entries are not compared)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logPath == "" || (*quotePath == "") == (*rtmrList == "") {
		fmt.Fprintln(fs.Output(), "need --event-log FILE and exactly one of --quote FILE or --rtmrs")
		fs.Usage()
		return errUsage
	}
	var reported [][]byte
	if *quotePath != "" {
		q, err := os.ReadFile(*quotePath)
		if err != nil {
			return err
		}
		m, err := tdx.ParseQuoteMeasurements(q)
		if err != nil {
			return fmt.Errorf("%s: %w", *quotePath, err)
		}
		reported = m.RTMRs
	} else {
		for i, s := range strings.Split(*rtmrList, ",") {
			if s == "" {
				reported = append(reported, nil)
				continue
			}
			b, err := hex.DecodeString(s)
			if err != nil || len(b) != tdx.DigestSize || i >= tdx.NumRTMRs {
				fmt.Fprintf(fs.Output(), "--rtmrs entry %d is not %d hex digits (or there are more than %d)\n", i, 2*tdx.DigestSize, tdx.NumRTMRs)
				return errUsage
			}
			reported = append(reported, b)
		}
	}
	f, err := os.Open(*logPath)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(f, tdx.MaxEventLogSize+1))
	f.Close()
	if err != nil {
		return err
	}
	r, err := tdx.ReplayEventLog(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *logPath, err)
	}
	rep := r.Compare(reported)
	if *asJSON {
		e := json.NewEncoder(measureStdout)
		e.SetIndent("", "  ")
		if err := e.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(measureStdout); err != nil {
		return err
	}
	if rep.Err != nil {
		return &exitError{code: 1, err: rep.Err}
	}
	return nil
}

var _ flag.Value = (*optionalInt)(nil)

func runMeasureGPU(args []string) error {
	fs := newFlagSet("measure gpu", "[--at TIME] [--json] RIM...")
	at := fs.String("at", "", "verify the RIM signatures as of `TIME` (RFC 3339; RIM signing certificates are short-lived)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(fs, "give one or more RIM files (NVIDIA's signed SWID tags)")
	}
	when, err := atFlag(*at)
	if err != nil {
		return err
	}
	var rims []*rim.RIM
	var out []rim.Summary
	for _, f := range fs.Args() {
		b, err := readLimited(f, rim.MaxSize)
		if err != nil {
			return err
		}
		r, signer, err := rim.Verify(b, rim.Roots(), when)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		h := sha256.Sum256(b)
		rims = append(rims, r)
		out = append(out, rim.Summarize(f, hex.EncodeToString(h[:]), r, signer[0]))
	}
	if _, err := rim.Match(map[int][]byte{}, rims...); err != nil && strings.Contains(err.Error(), "active in both") {
		return err
	}
	if *asJSON {
		e := json.NewEncoder(measureStdout)
		e.SetIndent("", "  ")
		return e.Encode(out)
	}
	for _, s := range out {
		if err := s.WriteText(measureStdout); err != nil {
			return err
		}
	}
	return nil
}
