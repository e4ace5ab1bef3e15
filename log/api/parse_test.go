package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseResponses: the log's answers are untrusted input to clients
// and auditors. Parsing never panics, and what it accepts encodes and
// parses back to the same value.
func FuzzParseResponses(f *testing.F) {
	f.Add([]byte(`{"index":3,"duplicate":true}`))
	f.Add([]byte(`{"index":0,"kind":"release","signer":"acme","has_provenance":false,"reproductions":[{"index":1,"kind":"reproduction"}]}`))
	f.Add([]byte(`{"query":"ab","entries":[{"index":1000000000,"kind":"release"}]}`))
	f.Add([]byte(`{"index":2,"kind":"unreadable","problem":"x"}`))
	f.Add([]byte(`{"index":1,"kind":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseAddResponse(b); err == nil {
			roundTrip(t, r, ParseAddResponse)
		}
		if r, err := ParseEntryInfo(b); err == nil {
			if !kinds[r.Kind] {
				t.Fatalf("accepted kind %q", r.Kind)
			}
			roundTrip(t, r, ParseEntryInfo)
		}
		if r, err := ParseLookupResponse(b); err == nil {
			if len(r.Entries) > MaxLookupEntries {
				t.Fatalf("accepted %d entries", len(r.Entries))
			}
			roundTrip(t, r, ParseLookupResponse)
		}
	})
}

func roundTrip[T any](t *testing.T, v *T, parse func([]byte) (*T, error)) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted value does not encode: %v", err)
	}
	w, err := parse(b)
	if err != nil {
		t.Fatalf("re-encoded value does not parse: %v\n%s", err, b)
	}
	// Times lose their monotonic reading and location in JSON; compare
	// encodings.
	b2, _ := json.Marshal(w)
	if !reflect.DeepEqual(b, b2) {
		t.Fatalf("round trip changed the value:\n%s\n%s", b, b2)
	}
}

func TestParseEntryInfoRefuses(t *testing.T) {
	for _, in := range []string{
		`{"index":1,"kind":"nonsense"}`,
		`{"index":1,"kind":"release"} {"more":1}`,
		`{"index":1,"kind":"release","reproductions":[{"index":2,"kind":"reproduction","revocations":[{"index":3,"kind":"revocation"}]}]}`,
		`{"index":18446744073709551615,"kind":"release"}`,
		`[]`,
	} {
		if _, err := ParseEntryInfo([]byte(in)); err == nil {
			t.Errorf("ParseEntryInfo(%s) accepted", in)
		}
	}
}
