package ovmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// image builds a firmware tail: payload, the given entries (data, GUID),
// the footer entry and 32 bytes of reset vector.
func image(entries ...[2][]byte) []byte {
	var b []byte
	b = append(b, make([]byte, 64)...)
	for _, e := range entries {
		b = append(b, e[0]...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e[0])+18))
		b = append(b, e[1]...)
	}
	size := 18
	for _, e := range entries {
		size += len(e[0]) + 18
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(size))
	b = append(b, FooterGUID[:]...)
	return append(b, make([]byte, 32)...)
}

func TestGUID(t *testing.T) {
	const s = "96b582de-1fb2-45f7-baea-a366c55a082d"
	g := MustParseGUID(s)
	// The in-memory order: the first three groups byte-swapped.
	if got := g[:]; !bytes.Equal(got, []byte{0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d}) {
		t.Errorf("ParseGUID(%s) = %x", s, got)
	}
	if g.String() != s {
		t.Errorf("String() = %s, want %s", g.String(), s)
	}
	for _, bad := range []string{"", "96b582de1fb245f7baeaa366c55a082d", "96b582de-1fb2-45f7-baea-a366c55a082x"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
}

func TestParseTable(t *testing.T) {
	img := image([2][]byte{{1, 2, 3, 4}, SEVESResetBlockGUID[:]}, [2][]byte{{5, 6, 7, 8, 9}, TDXMetadataGUID[:]})
	tab, err := ParseTable(img)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := tab.Lookup(SEVESResetBlockGUID); !ok || !bytes.Equal(d, []byte{1, 2, 3, 4}) {
		t.Errorf("Lookup(SEV-ES reset block) = %x, %v", d, ok)
	}
	if v, err := tab.Uint32(TDXMetadataGUID, "TDX"); err != nil || v != 0x08070605 {
		t.Errorf("Uint32(TDX) = %#x, %v; want 0x08070605", v, err)
	}
	if _, err := tab.Uint32(SEVMetadataGUID, "SEV metadata"); err == nil || !strings.Contains(err.Error(), "no SEV metadata") {
		t.Errorf("Uint32(absent) error = %v", err)
	}
	if n := len(tab.GUIDs()); n != 2 {
		t.Errorf("len(GUIDs()) = %d, want 2", n)
	}

	// No footer GUID: an empty table.
	if tab, err := ParseTable(make([]byte, 100)); err != nil || len(tab.GUIDs()) != 0 {
		t.Errorf("ParseTable(zeros) = %v, %v; want an empty table", tab, err)
	}
	for _, tc := range []struct {
		name string
		img  []byte
	}{
		{"duplicate", image([2][]byte{{1, 2, 3, 4}, TDXMetadataGUID[:]}, [2][]byte{{1, 2, 3, 4}, TDXMetadataGUID[:]})},
		{"short footer", func() []byte {
			b := image()
			binary.LittleEndian.PutUint16(b[len(b)-32-18:], 3)
			return b
		}()},
		{"footer past start", func() []byte {
			b := image()
			binary.LittleEndian.PutUint16(b[len(b)-32-18:], 0xffff)
			return b
		}()},
		{"entry too long", func() []byte {
			b := image([2][]byte{{1, 2, 3, 4}, TDXMetadataGUID[:]})
			binary.LittleEndian.PutUint16(b[len(b)-32-18-18:], 200)
			return b
		}()},
		{"entry too short", func() []byte {
			b := image([2][]byte{{1, 2, 3, 4}, TDXMetadataGUID[:]})
			binary.LittleEndian.PutUint16(b[len(b)-32-18-18:], 0)
			return b
		}()},
	} {
		if _, err := ParseTable(tc.img); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTable(%s) error = %v, want ErrMalformed", tc.name, err)
		}
	}
	if _, err := ParseTable(make([]byte, MaxFirmwareSize+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseTable(too big) error = %v, want ErrMalformed", err)
	}
	short := image([2][]byte{{1}, SEVMetadataGUID[:]})
	tab, err = ParseTable(short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Uint32(SEVMetadataGUID, "SEV metadata"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Uint32(1-byte entry) error = %v, want ErrMalformed", err)
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add(image([2][]byte{{1, 2, 3, 4}, SEVESResetBlockGUID[:]}, [2][]byte{{5, 6, 7, 8}, TDXMetadataGUID[:]}))
	f.Add(image())
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := ParseTable(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		total := 0
		for _, g := range tab.GUIDs() {
			d, _ := tab.Lookup(g)
			total += len(d) + 18
		}
		if total > len(b) {
			t.Fatalf("entries cover %d bytes of a %d-byte image", total, len(b))
		}
	})
}
