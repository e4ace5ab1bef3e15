package vtpm

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	eltd "github.com/google/go-eventlog/testdata"
	tpmpb "github.com/google/go-tpm-tools/proto/tpm"
	tpmquote "github.com/google/go-tpm-tools/quote"

	"github.com/attestlog/attestlog/policy/evidence"
)

// The samples (testdata/README.md): evidence recorded on Azure
// confidential VMs, as the Confidential Containers trustee keeps it.
type sample struct {
	file        string
	hclVersion  uint32
	typ         ReportType
	claimsSHA   string // SHA-256 of the runtime claims = REPORT_DATA[0:32]
	ak          string // SHA-256 of HCLAkPub's SPKI
	extraData   string
	pcr0        string
	userDataHex string
}

// Facts read by hand from the files (python3: hashlib over the claims
// bytes at offset 1236, the quote's TPM2B extraData after the qualified
// signer, the first PCR value as given).
var samples = []sample{
	{"testdata/azure-snp/evidence-v2.json", 1, ReportSNP, "cf7cc0731c50f64876804b3943b2bfbd93dba69f5928e3df223e78ff34dd46ee",
		"21cc573de727d7c6e4dc4dcadb6949c45f49e024e7c66006a020121b6eb09cfe",
		"982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef",
		"84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
		"982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef00000000000000000000000000000000"},
	{"testdata/azure-snp/evidence-genoa.json", 2, ReportSNP, "", "470adc365b667e2de8e933a77d9badd733ceb15955c77a5298102a88f63ed49a",
		"0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f", "", strings.Repeat("00", 64)},
	{"testdata/azure-tdx/evidence-v1.json", 2, ReportTDX, "", "b65400f6602deed0f03a3667cb1866de086387d9ddcb69085c193df086cdc69f",
		hex.EncodeToString([]byte("challenge")), "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273", strings.Repeat("00", 64)},
}

func loadSample(t testing.TB, file string) *evidence.Bundle {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, kind, err := evidence.Parse(raw)
	if err != nil || kind != evidence.KindAzureTrustee {
		t.Fatalf("evidence.Parse(%s) = %q, %v", file, kind, err)
	}
	return b
}

func TestSamples(t *testing.T) {
	for _, s := range samples {
		b := loadSample(t, s.file)
		h, err := ParseHCLReport(b.VTPM.HCLReport)
		if err != nil {
			t.Fatalf("%s: ParseHCLReport = %v", s.file, err)
		}
		if h.Version != s.hclVersion || h.Type != s.typ {
			t.Errorf("%s: version %d, type %v; want %d, %v", s.file, h.Version, h.Type, s.hclVersion, s.typ)
		}
		rd := h.ExpectedReportData()
		if !bytes.Equal(h.ReportData(), rd[:]) {
			t.Errorf("%s: the hardware report's REPORT_DATA %x is not SHA-256(claims) || zeros %x", s.file, h.ReportData(), rd)
		}
		if s.claimsSHA != "" && hex.EncodeToString(rd[:32]) != s.claimsSHA {
			t.Errorf("%s: SHA-256(claims) = %x, want %s", s.file, rd[:32], s.claimsSHA)
		}
		c, err := ParseRuntimeClaims(h.Claims)
		if err != nil {
			t.Fatalf("%s: ParseRuntimeClaims = %v", s.file, err)
		}
		if got := KeyID(c.AK); got != s.ak || c.AK.N.BitLen() != 2048 || c.AK.E != 65537 {
			t.Errorf("%s: AK %s (%d bits, e=%d), want %s", s.file, got, c.AK.N.BitLen(), c.AK.E, s.ak)
		}
		if hex.EncodeToString(c.UserData) != s.userDataHex {
			t.Errorf("%s: user-data %x, want %s", s.file, c.UserData, s.userDataHex)
		}
		q, err := ParseQuote(b.VTPM.Quote, b.VTPM.Signature)
		if err != nil {
			t.Fatalf("%s: ParseQuote = %v", s.file, err)
		}
		if hex.EncodeToString(q.ExtraData) != s.extraData || len(q.PCRs) != 24 || q.SignatureAlg() != "RSASSA-SHA256" {
			t.Errorf("%s: extraData %x, PCRs %v, %s; want %s, 0-23, RSASSA-SHA256", s.file, q.ExtraData, q.PCRs, q.SignatureAlg(), s.extraData)
		}
		if s.pcr0 != "" && hex.EncodeToString(b.VTPM.PCRs[0]) != s.pcr0 {
			t.Errorf("%s: PCR0 %x, want %s", s.file, b.VTPM.PCRs[0], s.pcr0)
		}
		if err := q.VerifySignature(c.AK); err != nil {
			t.Errorf("%s: VerifySignature = %v", s.file, err)
		}
		if err := q.CheckPCRs(b.VTPM.PCRs); err != nil {
			t.Errorf("%s: CheckPCRs = %v", s.file, err)
		}
		if err := q.VerifyLibrary(c.AK, q.ExtraData, b.VTPM.PCRs); err != nil {
			t.Errorf("%s: go-tpm-tools quote.Verify = %v", s.file, err)
		}
	}
}

// TestQuoteAgreesWithGoTPMTools flips each byte of each sample's quote
// and signature in turn, and a PCR value, and checks that the separate
// checks (signature, PCR digest, extraData) refuse exactly what
// go-tpm-tools' quote.Verify refuses.
func TestQuoteAgreesWithGoTPMTools(t *testing.T) {
	for _, s := range samples {
		b := loadSample(t, s.file)
		h, _ := ParseHCLReport(b.VTPM.HCLReport)
		c, _ := ParseRuntimeClaims(h.Claims)
		nonce, _ := hex.DecodeString(s.extraData)
		try := func(what string, attest, sig []byte, pcrs [][]byte) {
			q, err := ParseQuote(attest, sig)
			if err != nil {
				m := map[uint32][]byte{}
				for i, v := range pcrs {
					m[uint32(i)] = v
				}
				lib := tpmquote.Verify(&tpmpb.Quote{Quote: attest, RawSig: sig, Pcrs: &tpmpb.PCRs{Hash: tpmpb.HashAlgo_SHA256, Pcrs: m}}, c.AK, nonce)
				if lib == nil {
					t.Errorf("%s %s: ParseQuote refuses (%v) what go-tpm-tools accepts", s.file, what, err)
				}
				return
			}
			ours := errors.Join(q.VerifySignature(c.AK), q.CheckPCRs(pcrs))
			if !bytes.Equal(q.ExtraData, nonce) {
				ours = errors.Join(ours, errors.New("extraData"))
			}
			lib := q.VerifyLibrary(c.AK, nonce, pcrs)
			if (ours == nil) != (lib == nil) {
				t.Errorf("%s %s: ours %v, go-tpm-tools %v", s.file, what, ours, lib)
			}
		}
		for i := range b.VTPM.Quote {
			a := bytes.Clone(b.VTPM.Quote)
			a[i] ^= 1
			try("quote byte "+itoa(i), a, b.VTPM.Signature, b.VTPM.PCRs)
		}
		for i := range b.VTPM.Signature {
			sg := bytes.Clone(b.VTPM.Signature)
			sg[i] ^= 1
			try("signature byte "+itoa(i), b.VTPM.Quote, sg, b.VTPM.PCRs)
		}
		p := append([][]byte(nil), b.VTPM.PCRs...)
		p[4] = bytes.Repeat([]byte{4}, 32)
		try("PCR 4", b.VTPM.Quote, b.VTPM.Signature, p)
		try("as given", b.VTPM.Quote, b.VTPM.Signature, b.VTPM.PCRs)
	}
}

func itoa(i int) string { return hex.EncodeToString(binary.BigEndian.AppendUint16(nil, uint16(i))) }

func TestParseHCLReportRejects(t *testing.T) {
	good := loadSample(t, samples[0].file).VTPM.HCLReport
	set := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"short", good[:1000], "at least 1236"},
		{"too long", append(bytes.Clone(good), make([]byte, MaxHCLReportSize)...), "the limit is"},
		{"magic", append([]byte("HCLB"), good[4:]...), `"HCLA"`},
		{"version", set(4, 3), "version 3"},
		{"igvm version", set(IGVMRequestDataOffset+4, 2), "IGVM request data version 2"},
		{"report type", set(IGVMRequestDataOffset+8, 1), "report type 1"},
		{"hash type", set(IGVMRequestDataOffset+12, 2), "hash type 2"},
		{"claims size", set(IGVMRequestDataOffset+16, 1111), "IGVM request data size"},
		{"claims past the end", set(IGVMRequestDataOffset+16, 5000), "run past"},
		{"data size", set(IGVMRequestDataOffset, 1131), "IGVM request data size 1131"},
		{"report size", set(8, 2347), "size field 2347"},
	} {
		_, err := ParseHCLReport(tc.in)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHCLReport(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParseRuntimeClaimsRejects(t *testing.T) {
	h, _ := ParseHCLReport(loadSample(t, samples[0].file).VTPM.HCLReport)
	good := string(h.Claims)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not JSON", "{", "runtime claims"},
		{"duplicate name", strings.Replace(good, `"user-data"`, `"user-data":"00","user-data"`, 1), "duplicate"},
		{"no AK", strings.Replace(good, `"HCLAkPub"`, `"other"`, 1), "no key"},
		{"two AKs", strings.Replace(good, `"HCLEkPub"`, `"HCLAkPub"`, 1), "two keys"},
		{"EC AK", strings.Replace(good, `"kty":"RSA","e":"AQAB","n":"mUK7`, `"kty":"EC","e":"AQAB","n":"mUK7`, 1), "kty"},
		{"short modulus", strings.Replace(good, `"n":"mUK7fQAAxMMh`, `"n":"mUK7fQAAxMMh","x":"`, 1), "72-bit modulus"},
		{"padded n", strings.Replace(good, `G8snUpKQ"`, `G8snUpKQ=="`, 1), "base64url"},
		{"even e", strings.Replace(good, `"e":"AQAB","n":"mUK7`, `"e":"AQAA","n":"mUK7`, 1), "exponent"},
		{"user-data not hex", strings.Replace(good, `"user-data":"98`, `"user-data":"zz`, 1), "user-data"},
		{"user-data short", strings.Replace(good, `00000000000000000000000000000000"}`, `"}`, 1), "user-data"},
	} {
		_, err := ParseRuntimeClaims([]byte(tc.in))
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRuntimeClaims(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Members attestlog does not read are the paravisor's to add.
	if _, err := ParseRuntimeClaims([]byte(strings.Replace(good, `"user-data"`, `"new-claim":[1,2],"user-data"`, 1))); err != nil {
		t.Errorf("an unknown member: %v", err)
	}
}

func TestParseQuoteRejects(t *testing.T) {
	b := loadSample(t, samples[0].file)
	q, sig := b.VTPM.Quote, b.VTPM.Signature
	mod := func(in []byte, off int, v ...byte) []byte {
		out := bytes.Clone(in)
		copy(out[off:], v)
		return out
	}
	// Offsets in the sample: magic 0, type 4, qualified signer (2+34) 6,
	// extraData (2+48) 42, clock info 92, firmware 109, selection count
	// 117, hash 121, size 123, select 124, digest 127.
	for _, tc := range []struct {
		name      string
		attest    []byte
		signature []byte
		want      string
	}{
		{"empty", nil, sig, "want 1 to"},
		{"magic", mod(q, 0, 0xfe), sig, "magic"},
		{"time attestation, not a quote", mod(q, 4, 0x80, 0x19), sig, "TPM quote"},
		{"trailing byte", append(bytes.Clone(q), 0), sig, "canonically"},
		{"SHA-1 bank", mod(q, 121, 0x00, 0x04), sig, "SHA-256 bank"},
		{"no PCRs", mod(q, 124, 0, 0, 0), sig, "no PCRs"},
		{"signature trailing", q, append(bytes.Clone(sig), 0), "trailing"},
		{"RSAPSS", q, mod(sig, 0, 0x00, 0x16), "scheme"},
		{"SHA-1 signature", q, mod(sig, 2, 0x00, 0x04), "signature hash"},
	} {
		_, err := ParseQuote(tc.attest, tc.signature)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseQuote(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// replayed computes the PCR values a real event log extends, with
// crypto/sha256 over the digests go-eventlog's parser reads: the
// extension is ours, the parsing go-eventlog's.
func replayed(t *testing.T, log []byte) map[int][]byte {
	t.Helper()
	el, err := tcg.ParseEventLog(log, tcg.ParseOpts{})
	if err != nil {
		t.Fatal(err)
	}
	pcrs := map[int][]byte{}
	for _, e := range el.Events(register.HashSHA256) {
		if e.UntrustedType() == 3 { // EV_NO_ACTION is not extended
			continue
		}
		v, ok := pcrs[e.Index]
		if !ok {
			v = make([]byte, 32)
		}
		d := sha256.Sum256(append(v, e.ReplayedDigest()...))
		pcrs[e.Index] = d[:]
	}
	return pcrs
}

func TestReplayEventLog(t *testing.T) {
	log := eltd.Ubuntu2404AmdSevSnpEventLog // a real SEV-SNP guest's log
	want := replayed(t, log)
	q := &Quote{SigHash: crypto.SHA256}
	var values [][]byte
	for i := range PCRCount {
		q.PCRs = append(q.PCRs, i)
		v := want[i]
		if v == nil {
			v = make([]byte, 32)
		}
		values = append(values, v)
	}
	r, err := ReplayEventLog(log, q, values)
	if err != nil {
		t.Fatalf("ReplayEventLog = %v", err)
	}
	if r.Events == 0 || len(r.PCRs) != len(want) {
		t.Errorf("replayed %d events to PCRs %v, want PCRs of %d", r.Events, r.PCRs, len(want))
	}
	bad := append([][]byte(nil), values...)
	bad[r.PCRs[0]] = bytes.Repeat([]byte{1}, 32)
	if _, err := ReplayEventLog(log, q, bad); !errors.Is(err, ErrEventLog) {
		t.Errorf("ReplayEventLog(PCR %d changed) = %v, want ErrEventLog", r.PCRs[0], err)
	}
	cut := log[:len(log)/2]
	if _, err := ReplayEventLog(cut, q, values); !errors.Is(err, ErrEventLog) {
		t.Errorf("ReplayEventLog(half the log) = %v, want ErrEventLog", err)
	}
}

// FuzzParseHCLReport fuzzes the HCL report's header, request data and
// claims: the input is the report without its hardware area but for the
// area's first byte (the TDREPORT type), which the target restores as
// zeros, so that inputs stay small and the fuzzer spends its time on the
// fields the parser reads.
func FuzzParseHCLReport(f *testing.F) {
	expand := func(in []byte) []byte {
		if len(in) < HCLHeaderSize+1 {
			return in
		}
		out := append(bytes.Clone(in[:HCLHeaderSize+1]), make([]byte, HardwareReportSize-1)...)
		return append(out, in[HCLHeaderSize+1:]...)
	}
	h := make([]byte, HCLHeaderSize+1+20, HCLHeaderSize+1+22)
	copy(h, HCLMagic)
	binary.LittleEndian.PutUint32(h[4:], 1)
	binary.LittleEndian.PutUint32(h[8:], RuntimeClaimsOffset+2)
	r := h[HCLHeaderSize+1:]
	binary.LittleEndian.PutUint32(r, 22)
	binary.LittleEndian.PutUint32(r[4:], 1)
	binary.LittleEndian.PutUint32(r[8:], 2)
	binary.LittleEndian.PutUint32(r[12:], 1)
	binary.LittleEndian.PutUint32(r[16:], 2)
	h = append(h, "{}"...)
	if _, err := ParseHCLReport(expand(h)); err != nil {
		f.Fatalf("the seed does not parse: %v", err)
	}
	f.Add(h)
	f.Add([]byte("HCLA"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4<<10 {
			return
		}
		b := expand(in)
		r, err := ParseHCLReport(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(r.Hardware) != HardwareReportSize || len(r.Claims) == 0 || !bytes.Equal(r.Claims, b[RuntimeClaimsOffset:RuntimeClaimsOffset+len(r.Claims)]) {
			t.Fatalf("accepted with a %d-byte hardware report and claims %q", len(r.Hardware), r.Claims)
		}
		_ = r.ReportData()
		_ = r.TDReportMRTD()
	})
}

func FuzzParseRuntimeClaims(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"` + strings.Repeat("A", 342) + `w"}],"user-data":"` + strings.Repeat("00", 64) + `"}`))
	f.Add([]byte(`{"keys":[],"vm-configuration":{"secure-boot":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxRuntimeClaimsSize+1 {
			return
		}
		c, err := ParseRuntimeClaims(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.AK == nil || c.AK.N.BitLen() < 2041 || (c.UserData != nil && len(c.UserData) != UserDataSize) || KeyID(c.AK) == "" {
			t.Fatalf("accepted claims with AK %v, user data %x", c.AK, c.UserData)
		}
	})
}

func FuzzParseQuote(f *testing.F) {
	b := loadSample(f, samples[2].file)
	f.Add(b.VTPM.Quote[:40], b.VTPM.Signature[:8])
	f.Add(b.VTPM.Quote, []byte{0, 0x18, 0, 0x0b, 0, 0x20, 1, 0, 0x20, 2})
	f.Fuzz(func(t *testing.T, attest, sig []byte) {
		q, err := ParseQuote(attest, sig)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(q.PCRs) == 0 || q.PCRs[len(q.PCRs)-1] >= PCRCount {
			t.Fatalf("accepted PCRs %v", q.PCRs)
		}
		_ = q.SignatureAlg()
		values := make([][]byte, len(q.PCRs))
		for i := range values {
			values[i] = make([]byte, PCRSize)
		}
		_ = q.CheckPCRs(values)
	})
}

func FuzzReplayEventLog(f *testing.F) {
	f.Add(eltd.Ubuntu2404AmdSevSnpEventLog[:200])
	f.Add([]byte{0, 0, 0, 0, 3, 0, 0, 0})
	q := &Quote{SigHash: crypto.SHA256, PCRs: []int{0, 4, 7}}
	values := [][]byte{make([]byte, 32), make([]byte, 32), make([]byte, 32)}
	f.Fuzz(func(t *testing.T, log []byte) {
		if len(log) > 64<<10 {
			return
		}
		r, err := ReplayEventLog(log, q, values)
		if err != nil {
			if !errors.Is(err, ErrEventLog) {
				t.Fatalf("error %v does not wrap ErrEventLog", err)
			}
			return
		}
		for _, p := range r.PCRs {
			if p != 0 && p != 4 && p != 7 {
				t.Fatalf("replayed PCR %d, not quoted", p)
			}
		}
	})
}
