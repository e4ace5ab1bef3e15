package tdx

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
)

// signedKernels returns the Debian kernels in /boot that carry an
// Authenticode signature (package linux-image-amd64), or calls
// testenv.Missing.
func signedKernels(t *testing.T) []string {
	t.Helper()
	paths, _ := filepath.Glob("/boot/vmlinuz-*")
	var signed []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && embeddedAuthenticodeSHA256(b) != nil {
			signed = append(signed, p)
		}
	}
	if len(signed) == 0 {
		testenv.Missing(t, "a signed Debian kernel in /boot (Debian package linux-image-amd64)", errors.New("no signed /boot/vmlinuz-*"))
	}
	return signed
}

// embeddedAuthenticodeSHA256 returns the SHA-256 image digest that the
// signer put in the PKCS#7 SpcIndirectDataContent of a signed PE (the
// DigestInfo right after the SPC_PE_IMAGE_DATA: SEQUENCE { sha256 OID, NULL }
// followed by OCTET STRING(32)), or nil. It reads the certificate table
// directly and shares no code with AuthenticodeDigest.
func embeddedAuthenticodeSHA256(pe []byte) []byte {
	if len(pe) < 0x40 {
		return nil
	}
	off := int(binary.LittleEndian.Uint32(pe[0x3c:]))
	if off+24+112+40 > len(pe) || binary.LittleEndian.Uint16(pe[off+24:]) != 0x20b {
		return nil
	}
	dir := pe[off+24+112+4*8:]
	certOff, certSize := int(binary.LittleEndian.Uint32(dir)), int(binary.LittleEndian.Uint32(dir[4:]))
	if certOff == 0 || certOff+certSize > len(pe) {
		return nil
	}
	// SPC_INDIRECT_DATA_OBJID 1.3.6.1.4.1.311.2.1.4, then the digest.
	p7 := pe[certOff : certOff+certSize]
	spc := []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04}
	i := bytes.Index(p7, spc)
	if i < 0 {
		return nil
	}
	digestInfo := []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	j := bytes.Index(p7[i:], digestInfo)
	if j < 0 || i+j+len(digestInfo)+32 > len(p7) {
		return nil
	}
	return p7[i+j+len(digestInfo) : i+j+len(digestInfo)+32]
}

// osslsigncodeDigest returns the "Calculated message digest" osslsigncode
// prints for a signed PE file, or "" when osslsigncode is not installed.
func osslsigncodeDigest(t *testing.T, path string) string {
	t.Helper()
	if _, err := exec.LookPath("osslsigncode"); err != nil {
		return ""
	}
	out, _ := exec.Command("osslsigncode", "verify", "-in", path).CombinedOutput() // fails: no Debian CA here
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode verify -in %s printed no calculated digest:\n%s", path, out)
	}
	return strings.ToLower(string(m[1]))
}

// The Authenticode SHA-256 of a Debian-signed kernel must equal the digest
// Debian's signer embedded in its signature, and osslsigncode's own
// computation.
func TestAuthenticodeDebianKernel(t *testing.T) {
	for _, p := range signedKernels(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AuthenticodeDigest(b, sha256.New())
		if err != nil {
			t.Fatalf("AuthenticodeDigest(%s) error: %v", p, err)
		}
		if want := embeddedAuthenticodeSHA256(b); !bytes.Equal(got, want) {
			t.Errorf("AuthenticodeDigest(%s, SHA-256) = %x, want %x (the signature's SpcIndirectDataContent digest)", p, got, want)
		}
		if want := osslsigncodeDigest(t, p); want != "" && hex.EncodeToString(got) != want {
			t.Errorf("AuthenticodeDigest(%s, SHA-256) = %x, want %s (osslsigncode's calculated digest)", p, got, want)
		}
	}
}

// synthPE builds a minimal PE32+ image: headers of 0x200 bytes, the given
// sections (name, file offset, size; their bytes are filled with a pattern),
// then trailer bytes and a certificate table of certSize bytes.
func synthPE(sections [][3]int, trailer, certSize int) []byte {
	const peOff = 0x80
	img := make([]byte, 0x200)
	copy(img, "MZ")
	binary.LittleEndian.PutUint32(img[0x3c:], peOff)
	copy(img[peOff:], "PE\x00\x00")
	coff := peOff + 4
	binary.LittleEndian.PutUint16(img[coff:], 0x8664)
	binary.LittleEndian.PutUint16(img[coff+2:], uint16(len(sections)))
	binary.LittleEndian.PutUint16(img[coff+16:], 240) // optional header with 16 directories
	opt := coff + 20
	binary.LittleEndian.PutUint16(img[opt:], 0x20b)
	binary.LittleEndian.PutUint32(img[opt+60:], 0x200) // SizeOfHeaders
	binary.LittleEndian.PutUint32(img[opt+64:], 0xdeadbeef)
	binary.LittleEndian.PutUint32(img[opt+108:], 16)
	end := 0x200
	for i, s := range sections {
		h := img[opt+240+40*i:]
		h[0] = byte(s[0])
		binary.LittleEndian.PutUint32(h[16:], uint32(s[2]))
		binary.LittleEndian.PutUint32(h[20:], uint32(s[1]))
		end = max(end, s[1]+s[2])
	}
	for i := 0x200; i < end+trailer; i++ {
		img = append(img, byte(i*7))
	}
	if certSize > 0 {
		cert := opt + 112 + 4*8
		binary.LittleEndian.PutUint32(img[cert:], uint32(len(img)))
		binary.LittleEndian.PutUint32(img[cert+4:], uint32(certSize))
		img = append(img, bytes.Repeat([]byte{0xcc}, certSize)...)
	}
	return img
}

func TestAuthenticodeSynthetic(t *testing.T) {
	// Two sections listed out of file order, 16 bytes of trailing data
	// that are hashed, and an 8-byte certificate table that is not.
	img := synthPE([][3]int{{'b', 0x300, 0x100}, {'a', 0x200, 0x100}}, 16, 8)
	opt := 0x84 + 20
	cert := opt + 112 + 32
	var want bytes.Buffer
	want.Write(img[:opt+64])
	want.Write(img[opt+68 : cert])
	want.Write(img[cert+8 : 0x200])
	want.Write(img[0x200:0x300])
	want.Write(img[0x300:0x400])
	want.Write(img[0x400:0x410])
	got, err := AuthenticodeDigest(img, sha256.New())
	if err != nil {
		t.Fatal(err)
	}
	if w := sha256.Sum256(want.Bytes()); !bytes.Equal(got, w[:]) {
		t.Errorf("AuthenticodeDigest(synthetic) = %x, want %x", got, w)
	}
	// The checksum and certificate directory do not change the digest.
	img2 := bytes.Clone(img)
	img2[opt+64] ^= 0xff
	if got2, _ := AuthenticodeDigest(img2, sha256.New()); !bytes.Equal(got, got2) {
		t.Errorf("AuthenticodeDigest changed with the CheckSum field")
	}
}

func TestAuthenticodeErrors(t *testing.T) {
	good := synthPE([][3]int{{'a', 0x200, 0x100}}, 0, 8)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	le32 := binary.LittleEndian.PutUint32
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "no MZ DOS header"},
		{"ELF", append([]byte("\x7fELF"), make([]byte, 0x100)...), "no MZ DOS header"},
		{"PE offset outside", mod(func(b []byte) []byte { le32(b[0x3c:], 0xfffffff0); return b }), "PE header offset"},
		{"no PE signature", mod(func(b []byte) []byte { b[0x80] = 'X'; return b }), "no PE signature"},
		{"bad magic", mod(func(b []byte) []byte { b[0x98] = 0x07; return b }), "optional header magic"},
		{"truncated headers", good[:0x1a0], "SizeOfHeaders 0x200 exceeds"},
		{"truncated section", good[:0x280], "section 0 (\"a\") data"},
		{"SizeOfHeaders too big", mod(func(b []byte) []byte { le32(b[0x98+60:], 0x10000000); return b }), "SizeOfHeaders"},
		{"certificate table too big", mod(func(b []byte) []byte { le32(b[0x98+112+36:], 0x1000); return b }), "certificate table"},
		{"too many sections", mod(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[0x86:], 1000); return b }), "sections"},
	} {
		_, err := AuthenticodeDigest(tc.img, sha256.New())
		if !errors.Is(err, ErrNotPE) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AuthenticodeDigest(%s) error = %v, want ErrNotPE mentioning %q", tc.name, err, tc.want)
		}
	}
}

func FuzzAuthenticodeDigest(f *testing.F) {
	f.Add(synthPE([][3]int{{'a', 0x200, 0x100}}, 16, 8))
	f.Add(synthPE(nil, 0, 0))
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, img []byte) {
		d, err := AuthenticodeDigest(img, sha256.New())
		if err == nil && len(d) != sha256.Size {
			t.Fatalf("digest of %d bytes", len(d))
		}
	})
}
