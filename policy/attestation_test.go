package policy

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAttestationDefaults(t *testing.T) {
	p, err := Parse([]byte("# nothing but a comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Attestation
	if a.SNP.AllowDebug || a.TDX.AllowDebug {
		t.Errorf("default policy allows debug: %+v", a)
	}
	if !a.SNP.AllowSMT || a.SNP.AllowMigrationAgent || a.SNP.AllowCXL {
		t.Errorf("default SNP guest policy = %+v, want SMT allowed, migration agent and CXL denied", a.SNP)
	}
	if a.Reproductions != 0 || a.MaxCheckpointAge != 0 || len(a.TrustRoots) != 0 {
		t.Errorf("defaults = %+v", a)
	}
	for _, pl := range []string{PlatformSEVSNP, PlatformTDX} {
		if !a.AllowsPlatform(pl) {
			t.Errorf("default AllowsPlatform(%s) = false", pl)
		}
	}
	if a.AllowsPlatform("sgx") {
		t.Errorf("AllowsPlatform(sgx) = true")
	}
}

func TestAttestationDirectives(t *testing.T) {
	vmpl0 := 0
	for _, tc := range []struct {
		text  string
		check func(a AttestationPolicy) bool
	}{
		{"platform sev-snp", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.Platforms, []string{"sev-snp"}) && a.AllowsPlatform("sev-snp") && !a.AllowsPlatform("tdx")
		}},
		{"platform tdx\nplatform sev-snp", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.Platforms, []string{"tdx", "sev-snp"})
		}},
		{"platform azure-sev-snp azure-tdx", func(a AttestationPolicy) bool {
			return a.AllowsPlatform("azure-sev-snp") && a.AllowsPlatform("azure-tdx") && !a.AllowsPlatform("sev-snp")
		}},
		{"snp-min-tcb snp=1", func(a AttestationPolicy) bool {
			// No platform line: Azure's paravisor is trusted only when named.
			return a.AllowsPlatform("sev-snp") && a.AllowsPlatform("tdx") && !a.AllowsPlatform("azure-sev-snp") && !a.AllowsPlatform("azure-tdx")
		}},
		{"snp-min-tcb bootloader=3 tee=0 snp=8 microcode=115", func(a AttestationPolicy) bool {
			return a.SNP.MinTCB == SNPTCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115}
		}},
		{"snp-min-tcb snp=22", func(a AttestationPolicy) bool { return a.SNP.MinTCB == SNPTCB{SNP: 22} }},
		{"snp-allow-debug", func(a AttestationPolicy) bool { return a.SNP.AllowDebug && !a.TDX.AllowDebug }},
		{"tdx-allow-debug", func(a AttestationPolicy) bool { return a.TDX.AllowDebug && !a.SNP.AllowDebug }},
		{"snp-policy smt=deny migrate-ma=allow cxl=allow single-socket=require abi-min=1.51 vmpl=0 min-guest-svn=7", func(a AttestationPolicy) bool {
			s := a.SNP
			return !s.AllowSMT && s.AllowMigrationAgent && s.AllowCXL && s.RequireSingleSocket &&
				s.MinABIMajor == 1 && s.MinABIMinor == 51 && reflect.DeepEqual(s.VMPL, &vmpl0) && s.MinGuestSVN == 7
		}},
		{"tdx-min-tee-tcb-svn 03000600000000000000000000000000", func(a AttestationPolicy) bool {
			return bytes.Equal(a.TDX.MinTeeTCBSVN, []byte{3, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		}},
		{"reproductions 2", func(a AttestationPolicy) bool { return a.Reproductions == 2 }},
		{"max-checkpoint-age 36h", func(a AttestationPolicy) bool { return a.MaxCheckpointAge == 36*time.Hour }},
		{"max-checkpoint-age 7d", func(a AttestationPolicy) bool { return a.MaxCheckpointAge == 7*24*time.Hour }},
		{"trust-root sev-snp test-ark.pem\ntrust-root tdx /etc/attestlog/test-sgx-root.pem", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.TrustRoots, []TrustRoot{{"sev-snp", "test-ark.pem"}, {"tdx", "/etc/attestlog/test-sgx-root.pem"}})
		}},
		{"crl milan.crl\ncrl genoa.crl", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.CRLs, []string{"milan.crl", "genoa.crl"}) && a.VLEKCRLs == nil
		}},
		// AMD publishes the VLEK CRL apart from the VCEK's.
		{"crl vcek milan.crl\ncrl vlek milan-vlek.crl", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.CRLs, []string{"milan.crl"}) && reflect.DeepEqual(a.VLEKCRLs, []string{"milan-vlek.crl"})
		}},
		{"snp-allow-provisional-firmware", func(a AttestationPolicy) bool { return a.SNP.AllowProvisionalFirmware && !a.SNP.AllowDebug }},
		{"snp-min-tcb turin fmc=1 snp=3\nsnp-min-tcb milan snp=24\nsnp-min-tcb microcode=9", func(a AttestationPolicy) bool {
			s := a.SNP
			turin, src, ok := s.Floor("Turin")
			genoa, gsrc, gok := s.Floor("Genoa")
			return turin == SNPTCB{FMC: 1, SNP: 3} && src == "snp-min-tcb turin" && ok &&
				s.MinTCBByLine["Milan"] == SNPTCB{SNP: 24} &&
				genoa == SNPTCB{Microcode: 9} && gsrc == "snp-min-tcb" && gok
		}},
		// Floors for some lines only: the others have none to meet, and fail closed.
		{"snp-min-tcb turin snp=3", func(a AttestationPolicy) bool {
			_, _, ok := a.SNP.Floor("Milan")
			f, _, tok := a.SNP.Floor("Turin")
			return !ok && tok && f == SNPTCB{SNP: 3}
		}},
		{"", func(a AttestationPolicy) bool {
			f, src, ok := a.SNP.Floor("Milan")
			return ok && f.IsZero() && src == "snp-min-tcb" && !a.SNP.AllowProvisionalFirmware
		}},
		{"tdx-collateral /var/cache/pcs  # comment", func(a AttestationPolicy) bool { return a.TDXCollateral == "/var/cache/pcs" }},
		{"tdx-allow-tcb-status SWHardeningNeeded UpToDate OutOfDate", func(a AttestationPolicy) bool {
			return a.TDX.RequireTCBStatus && reflect.DeepEqual(a.TDX.AllowTCBStatus, []string{"SWHardeningNeeded", "OutOfDate"}) &&
				a.TDX.AllowsTCBStatus("OutOfDate") && a.TDX.AllowsTCBStatus("UpToDate") && !a.TDX.AllowsTCBStatus("ConfigurationNeeded") && !a.TDX.AllowsTCBStatus("Revoked")
		}},
		{"platform tdx", func(a AttestationPolicy) bool {
			return !a.TDX.RequireTCBStatus && !a.TDX.TCBStatusUnchecked && a.TDX.AllowsTCBStatus("UpToDate") && !a.TDX.AllowsTCBStatus("SWHardeningNeeded")
		}},
		{"tdx-tcb-status unchecked", func(a AttestationPolicy) bool { return a.TDX.TCBStatusUnchecked && !a.TDX.RequireTCBStatus }},
		{"trust-root gce-tcb GCE-cc-tcb-root_1.crt", func(a AttestationPolicy) bool {
			return reflect.DeepEqual(a.TrustRoots, []TrustRoot{{"gce-tcb", "GCE-cc-tcb-root_1.crt"}})
		}},
	} {
		p, err := Parse([]byte(tc.text))
		if err != nil {
			t.Errorf("Parse(%q) = %v", tc.text, err)
			continue
		}
		if !tc.check(p.Attestation) {
			t.Errorf("Parse(%q).Attestation = %+v, not what the directive says", tc.text, p.Attestation)
		}
	}
}

func TestAttestationDirectiveErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		line int
		want string // substring of the error
	}{
		{"platform", 1, "want: platform"},
		{"platform sgx", 1, `platform "sgx"`},
		{"platform azure", 1, `platform "azure"`},
		{"platform tdx tdx", 1, "listed twice"},
		{"\nsnp-min-tcb", 2, "want: snp-min-tcb"},
		{"snp-min-tcb tee", 1, "want KEY=VALUE"},
		{"snp-min-tcb fmc=1", 1, "only Turin has an FMC"},
		{"snp-min-tcb milan fmc=1", 1, "only Turin has an FMC"},
		{"snp-min-tcb turin", 1, "want: snp-min-tcb turin KEY=N"},
		{"snp-min-tcb turin snp=1\nsnp-min-tcb turin tee=1", 2, "snp-min-tcb turin given twice"},
		{"snp-min-tcb venice snp=1", 1, "want KEY=VALUE"},
		{"snp-allow-provisional-firmware now", 1, "no arguments"},
		{"snp-min-tcb snp=256", 1, "snp=256: want a number 0-255"},
		{"snp-min-tcb snp=1 snp=2", 1, "key snp given twice"},
		{"snp-min-tcb snp=1\n\nsnp-min-tcb tee=1", 3, "snp-min-tcb given twice"},
		{"snp-allow-debug yes", 1, "no arguments"},
		{"snp-allow-debug\nsnp-allow-debug", 2, "given twice"},
		{"snp-policy smt=maybe", 1, "smt=maybe: want allow or deny"},
		{"snp-policy single-socket=yes", 1, "want require or any"},
		{"snp-policy abi-min=1", 1, "want MAJOR.MINOR"},
		{"snp-policy vmpl=4", 1, "want 0-3"},
		{"snp-policy min-guest-svn=-1", 1, "32-bit number"},
		{"snp-policy debug=allow", 1, `unknown key "debug"`},
		{"tdx-min-tee-tcb-svn 0300", 1, "32 hex characters"},
		{"tdx-min-tee-tcb-svn zz000600000000000000000000000000", 1, "32 hex characters"},
		{"reproductions -1", 1, "want a number 0-100"},
		{"reproductions many", 1, "want a number"},
		{"max-checkpoint-age soon", 1, "want a positive duration"},
		{"max-checkpoint-age -5m", 1, "want a positive duration"},
		{"max-checkpoint-age 0s", 1, "want a positive duration"},
		{"trust-root sev-snp", 1, "want: trust-root"},
		{"trust-root sgx root.pem", 1, `platform "sgx"`},
		{"trust-root tdx a.pem\ntrust-root tdx a.pem", 2, "listed twice"},
		{"crl", 1, "want: crl [vcek|vlek] FILE"},
		{"crl vlak a.crl", 1, "want: crl [vcek|vlek] FILE"},
		{"crl a.crl\ncrl vlek a.crl", 2, "listed twice"},
		{"tdx-collateral a b", 1, "want: tdx-collateral DIR"},
		{"tdx-allow-tcb-status", 1, "want: tdx-allow-tcb-status STATUS"},
		{"tdx-allow-tcb-status Revoked", 1, "Revoked is never allowed"},
		{"tdx-allow-tcb-status OutOfDate Revoked", 1, "Revoked is never allowed"},
		{"tdx-allow-tcb-status uptodate", 1, `unknown status "uptodate"`},
		{"tdx-allow-tcb-status OutOfDate OutOfDate", 1, "OutOfDate listed twice"},
		{"tdx-allow-tcb-status OutOfDate\ntdx-allow-tcb-status SWHardeningNeeded", 2, "given twice"},
		{"tdx-tcb-status checked", 1, "want: tdx-tcb-status unchecked"},
		{"tdx-tcb-status", 1, "want: tdx-tcb-status unchecked"},
		{"tdx-tcb-status unchecked\ntdx-tcb-status unchecked", 2, "given twice"},
		{"tdx-tcb-status unchecked\ntdx-allow-tcb-status OutOfDate", 2, "gives up"},
		{"tdx-allow-tcb-status OutOfDate\ntdx-tcb-status unchecked", 2, "contradicts"},
		{"trust-root google root.crt", 1, "want sev-snp, tdx, gpu or gce-tcb"},
		// One product line per line: this set Genoa's floor alone, and
		// Milan's reports met the line-less floor instead of tee=5.
		{"snp-min-tcb tee=1\nsnp-min-tcb milan genoa tee=5", 2, `"genoa": want KEY=VALUE`},
		// A gpu key once: the last one won, the weaker of two.
		{"gpu nvidia count=8 count=1", 1, "key count given twice"},
		{"gpu nvidia count=1 rims=required rims=optional", 1, "key rims given twice"},
		{"gpu nvidia count=1 ocsp=required ocsp=optional", 1, "key ocsp given twice"},
		{"gpu nvidia count=1 arch=hopper arch=blackwell", 1, "key arch given twice"},
		// An empty arch= accepted any architecture.
		{"gpu nvidia count=1 arch=", 1, `"arch=" is not KEY=VALUE`},
	} {
		_, err := Parse([]byte(tc.text))
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("Parse(%q) = %v, want a LineError", tc.text, err)
			continue
		}
		if le.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v (line %d), want line %d containing %q", tc.text, err, le.Line, tc.line, tc.want)
		}
	}
}

func FuzzParseAttestation(f *testing.F) {
	for _, s := range []string{
		"platform sev-snp tdx\nsnp-min-tcb bootloader=3 tee=0 snp=8 microcode=115\n",
		"snp-policy smt=deny migrate-ma=allow abi-min=1.51 vmpl=0\nsnp-allow-debug\n",
		"tdx-min-tee-tcb-svn 03000600000000000000000000000000\ntdx-allow-debug\n",
		"reproductions 2\nmax-checkpoint-age 7d\ntrust-root sev-snp a.pem\ncrl b.crl\ntdx-collateral c\n",
		"snp-min-tcb turin fmc=1 snp=3\nsnp-min-tcb milan snp=24\ncrl vlek v.crl\nsnp-allow-provisional-firmware\n",
		"tdx-allow-tcb-status SWHardeningNeeded OutOfDate\ntrust-root gce-tcb r.crt\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		a := p.Attestation
		for _, pl := range a.Platforms {
			if pl != PlatformSEVSNP && pl != PlatformTDX && pl != PlatformAzureSEVSNP && pl != PlatformAzureTDX {
				t.Errorf("accepted platform %q", pl)
			}
		}
		if a.TDX.MinTeeTCBSVN != nil && len(a.TDX.MinTeeTCBSVN) != 16 {
			t.Errorf("accepted a %d-byte TEE_TCB_SVN floor", len(a.TDX.MinTeeTCBSVN))
		}
		if a.Reproductions < 0 || a.Reproductions > MaxReproductions || a.MaxCheckpointAge < 0 {
			t.Errorf("accepted out-of-range values: %+v", a)
		}
		if a.SNP.VMPL != nil && (*a.SNP.VMPL < 0 || *a.SNP.VMPL > 3) {
			t.Errorf("accepted VMPL %d", *a.SNP.VMPL)
		}
		for line, f := range a.SNP.MinTCBByLine {
			if f.FMC != 0 && line != "Turin" {
				t.Errorf("accepted an FMC floor for %s", line)
			}
		}
		if a.SNP.MinTCB.FMC != 0 {
			t.Errorf("accepted an FMC floor for every product line")
		}
		for _, r := range a.TrustRoots {
			if r.File == "" {
				t.Errorf("accepted an empty trust-root file")
			}
		}
	})
}
