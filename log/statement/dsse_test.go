package statement

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkMarshal holds Envelope.Marshal to the encoding it had when it was
// written with encoding/json (every stored entry was written by it):
// the sorted envelope's json.Marshal, byte for byte.
func checkMarshal(t *testing.T, e *Envelope) {
	t.Helper()
	want, err := json.Marshal(e.sorted())
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal = %q, encoding/json = %q", got, want)
	}
}

func TestEnvelopeMarshalMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Characters encoding/json escapes or replaces, and plain ones.
	alphabet := []string{"a", "Z", "0", ":", "/", "+", "=", " ", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\x7f", "é", "\u2028", "\xff", "😀"}
	str := func() string {
		var b []byte
		for range r.IntN(12) {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		return string(b)
	}
	bytesOf := func() []byte {
		if r.IntN(8) == 0 {
			return nil
		}
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	fast := 0
	for range 20000 {
		e := &Envelope{PayloadType: PayloadType, Payload: bytesOf()}
		if r.IntN(4) == 0 {
			e.PayloadType = str()
		}
		if r.IntN(10) > 0 {
			for range r.IntN(4) {
				e.Signatures = append(e.Signatures, Signature{KeyID: str(), Sig: bytesOf()})
			}
			if e.Signatures == nil {
				e.Signatures = []Signature{}
			}
		}
		checkMarshal(t, e)
		if plainJSONString(e.PayloadType) && !slices.ContainsFunc(e.Signatures, func(s Signature) bool { return !plainJSONString(s.KeyID) }) {
			fast++
		}
	}
	if fast < 5000 {
		t.Fatalf("only %d of 20000 cases took the fast path", fast)
	}
}

func FuzzEnvelopeMarshal(f *testing.F) {
	f.Add(PayloadType, []byte(`{"_type":"x"}`), "key<1>", []byte{1, 2, 3}, "k2", []byte(nil))
	f.Add("", []byte(nil), "", []byte{}, "\x00\"\\", []byte{0xff})
	f.Fuzz(func(t *testing.T, pt string, payload []byte, k1 string, s1 []byte, k2 string, s2 []byte) {
		if len(payload)+len(s1)+len(s2)+len(pt)+len(k1)+len(k2) > 1<<16 {
			return
		}
		checkMarshal(t, &Envelope{PayloadType: pt, Payload: payload, Signatures: []Signature{{KeyID: k1, Sig: s1}, {KeyID: k2, Sig: s2}}})
	})
}
