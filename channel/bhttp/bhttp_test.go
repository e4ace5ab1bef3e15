package bhttp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// The examples of RFC 9292 §5, as the RFC prints them (hex dumps).
const (
	rfcKnownRequest = `00034745 54056874 74707300 0a2f6865
6c6c6f2e 74787440 6c0a7573 65722d61 67656e74 34637572 6c2f372e 31362e33
206c6962 6375726c 2f372e31 362e3320 4f70656e 53534c2f 302e392e 376c207a
6c69622f 312e322e 3304686f 73740f77 77772e65 78616d70 6c652e63 6f6d0f61
63636570 742d6c61 6e677561 67650665 6e2c206d 690000`
	rfcIndetRequest = `02034745 54056874 74707300 0a2f6865
6c6c6f2e 7478740a 75736572 2d616765 6e743463 75726c2f 372e3136 2e33206c
69626375 726c2f37 2e31362e 33204f70 656e5353 4c2f302e 392e376c 207a6c69
622f312e 322e3304 686f7374 0f777777 2e657861 6d706c65 2e636f6d 0f616363
6570742d 6c616e67 75616765 06656e2c 206d6900 00000000 00000000 00000000`
	rfcIndetResponse = `03406607 72756e6e 696e670a 22736c65
65702031 35220040 67046c69 6e6b233c 2f737479 6c652e63 73733e3b 2072656c
3d707265 6c6f6164 3b206173 3d737479 6c65046c 696e6b24 3c2f7363 72697074
2e6a733e 3b207265 6c3d7072 656c6f61 643b2061 733d7363 72697074 0040c804
64617465 1d4d6f6e 2c203237 204a756c 20323030 39203132 3a32383a 35332047
4d540673 65727665 72064170 61636865 0d6c6173 742d6d6f 64696669 65641d57
65642c20 3232204a 756c2032 30303920 31393a31 353a3536 20474d54 04657461
67142233 34616133 38372d64 2d313536 38656230 30220d61 63636570 742d7261
6e676573 05627974 65730e63 6f6e7465 6e742d6c 656e6774 68023531 04766172
790f4163 63657074 2d456e63 6f64696e 670c636f 6e74656e 742d7479 70650a74
6578742f 706c6169 6e003348 656c6c6f 20576f72 6c642120 4d792063 6f6e7465
6e742069 6e636c75 64657320 61207472 61696c69 6e672043 524c462e 0d0a0000`
	rfcKnownResponse = `0140c800 1d546869 7320636f 6e74656e
7420636f 6e746169 6e732043 524c462e 0d0a0d07 74726169 6c657204 74657874`
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfcRequest is the request of RFC 9292 §5.1, written from its
// message/http form by hand.
var rfcRequest = &Request{
	Method: "GET", Scheme: "https", Authority: "", Path: "/hello.txt",
	Header: []Field{
		{"user-agent", "curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3"},
		{"host", "www.example.com"},
		{"accept-language", "en, mi"},
	},
}

var rfcResponse = &Response{
	Informational: []Informational{
		{102, []Field{{"running", `"sleep 15"`}}},
		{103, []Field{{"link", "</style.css>; rel=preload; as=style"}, {"link", "</script.js>; rel=preload; as=script"}}},
	},
	Status: 200,
	Header: []Field{
		{"date", "Mon, 27 Jul 2009 12:28:53 GMT"},
		{"server", "Apache"},
		{"last-modified", "Wed, 22 Jul 2009 19:15:56 GMT"},
		{"etag", `"34aa387-d-1568eb00"`},
		{"accept-ranges", "bytes"},
		{"content-length", "51"},
		{"vary", "Accept-Encoding"},
		{"content-type", "text/plain"},
	},
	Content: []byte("Hello World! My content includes a trailing CRLF.\r\n"),
}

var rfcChunkedResponse = &Response{
	Status:  200,
	Content: []byte("This content contains CRLF.\r\n"),
	Trailer: []Field{{"trailer", "text"}},
}

func TestRFC9292Examples(t *testing.T) {
	known, err := rfcRequest.MarshalKnownLength()
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, rfcKnownRequest); !bytes.Equal(known, want) {
		t.Errorf("known-length request = %x, want RFC 9292's %x", known, want)
	}
	indet, err := rfcRequest.MarshalIndeterminate(10)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, rfcIndetRequest); !bytes.Equal(indet, want) {
		t.Errorf("indeterminate-length request = %x, want RFC 9292's %x", indet, want)
	}
	resp, err := rfcResponse.MarshalIndeterminate(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, rfcIndetResponse); !bytes.Equal(resp, want) {
		t.Errorf("indeterminate-length response = %x, want RFC 9292's %x", resp, want)
	}
	kresp, err := rfcChunkedResponse.MarshalKnownLength()
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, rfcKnownResponse); !bytes.Equal(kresp, want) {
		t.Errorf("known-length response = %x, want RFC 9292's %x", kresp, want)
	}

	for _, tc := range []struct {
		name string
		hex  string
	}{
		{"known-length", rfcKnownRequest},
		{"indeterminate-length", rfcIndetRequest},
	} {
		b := unhex(t, tc.hex)
		got, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("ParseRequest(%s example): %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, rfcRequest) {
			t.Errorf("ParseRequest(%s example) = %+v, want %+v", tc.name, got, rfcRequest)
		}
		// §5.1: "the last two bytes ... can each be removed"; the
		// indeterminate form's 12 trailing bytes likewise.
		cut := 2
		if tc.name == "indeterminate-length" {
			cut = 12
		}
		for i := 1; i <= cut; i++ {
			if got, err := ParseRequest(b[:len(b)-i]); err != nil || !reflect.DeepEqual(got, rfcRequest) {
				t.Errorf("ParseRequest(%s example less %d bytes) = %+v, %v; want the same request", tc.name, i, got, err)
			}
		}
	}
	for _, tc := range []struct {
		hex  string
		want *Response
	}{{rfcIndetResponse, rfcResponse}, {rfcKnownResponse, rfcChunkedResponse}} {
		got, err := ParseResponse(unhex(t, tc.hex))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseResponse = %+v, want %+v", got, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	good := unhex(t, rfcKnownRequest)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrInvalid},
		{"framing 4", []byte{4}, ErrInvalid},
		{"response framing", []byte{1, 0x40, 0xc8}, ErrInvalid},
		{"truncated in control data", good[:8], ErrInvalid},
		{"truncated in the header section", good[:40], ErrInvalid},
		{"non-zero padding", append(bytes.Clone(good), 0, 0, 1), ErrInvalid},
		{"uppercase field name", mustKnown(t, Field{"User-Agent", "x"}), ErrInvalid},
		{"pseudo-field", mustKnownRaw(Field{":path", "/"}), ErrInvalid},
		{"CR in a value", mustKnownRaw(Field{"a", "b\rc"}), ErrInvalid},
		{"leading space", mustKnownRaw(Field{"a", " b"}), ErrInvalid},
		{"huge field section", []byte{0, 3, 'G', 'E', 'T', 5, 'h', 't', 't', 'p', 's', 0, 1, '/', 0xbf, 0xff, 0xff, 0xff}, ErrTooLarge},
		{"huge content", []byte{0, 3, 'G', 'E', 'T', 5, 'h', 't', 't', 'p', 's', 0, 1, '/', 0, 0xbf, 0xff, 0xff, 0xff}, ErrInvalid},
	} {
		if _, err := ParseRequest(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("ParseRequest(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := ParseResponse([]byte{1, 0x41, 0x00}); !errors.Is(err, ErrInvalid) { // status 256? no: 0x4100 = 256
		t.Logf("status 256 is a valid final status: %v", err)
	}
	if _, err := ParseResponse([]byte{1, 0x42, 0x58}); !errors.Is(err, ErrInvalid) { // 600
		t.Errorf("ParseResponse(status 600) = %v, want ErrInvalid", err)
	}
	if _, err := ParseResponse([]byte{1, 0x40, 0x66, 0}); !errors.Is(err, ErrInvalid) { // 102 then EOF
		t.Errorf("ParseResponse(informational then nothing) = %v, want ErrInvalid", err)
	}
	many := []byte{3}
	for range 20 {
		many = append(many, 0x40, 0x64, 0) // 100, empty section
	}
	if _, err := ParseResponse(many); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseResponse(20 informational responses) = %v, want ErrTooLarge", err)
	}
	lim := DefaultLimits
	lim.MaxContent = 10
	r := &Request{Method: "POST", Scheme: "https", Path: "/", Content: bytes.Repeat([]byte("a"), 11)}
	b, _ := r.MarshalIndeterminate(0)
	if _, err := ParseRequestLimits(b, lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseRequestLimits(11 bytes of content, limit 10) = %v, want ErrTooLarge", err)
	}
}

func mustKnown(t *testing.T, f Field) []byte {
	r := &Request{Method: "GET", Scheme: "https", Path: "/", Header: []Field{f}}
	if _, err := r.MarshalKnownLength(); err == nil {
		t.Errorf("MarshalKnownLength with field %q accepted", f.Name)
	}
	return mustKnownRaw(f)
}

// mustKnownRaw encodes a request with f, bypassing the encoder's checks.
func mustKnownRaw(f Field) []byte {
	r := &Request{Method: "GET", Scheme: "https", Path: "/"}
	b := r.appendControl([]byte{0})
	b = appendKnownFields(b, []Field{f})
	return append(b, 0, 0)
}

func TestResponseWriterStreams(t *testing.T) {
	var buf bytes.Buffer
	w := NewResponseWriter(&buf)
	if err := w.WriteInformational(103, []Field{{"link", "</a>"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteHead(200, []Field{{"content-type", "text/event-stream"}}); err != nil {
		t.Fatal(err)
	}
	headLen := buf.Len()
	// What a reader sees after the head only: the head parses at once.
	sr, err := ReadResponse(bytes.NewReader(buf.Bytes()), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Status != 200 || len(sr.Informational) != 1 || sr.Header[0].Value != "text/event-stream" {
		t.Errorf("head = %+v", sr.Response)
	}
	for _, s := range []string{"data: one\n\n", "data: two\n\n"} {
		w.Write([]byte(s))
	}
	if err := w.Close([]Field{{"x-done", "1"}}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= headLen {
		t.Fatal("nothing written after the head")
	}
	got, err := ParseResponse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Content) != "data: one\n\ndata: two\n\n" || got.Trailer[0].Name != "x-done" {
		t.Errorf("ParseResponse(streamed) = %+v", got)
	}
	// Cut anywhere inside a chunk: an error, not a short body.
	b := buf.Bytes()
	for i := headLen + 2; i < len(b)-3; i++ {
		sr, err := ReadResponse(bytes.NewReader(b[:i]), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(sr.Body); err == nil {
			// RFC 9292 §3.2 allows one cut here: after the content
			// terminator, leaving the trailer section empty.
			afterContent := len(b) - len(appendIndetFields(nil, []Field{{"x-done", "1"}}))
			if _, err := sr.Trailer(); err == nil && i != afterContent {
				t.Errorf("response cut at %d of %d read without error", i, len(b))
			}
		}
	}
}

func TestVarint(t *testing.T) {
	// RFC 9000 §A.1's examples.
	for _, tc := range []struct {
		hex string
		v   uint64
	}{{"c2197c5eff14e88c", 151288809941952652}, {"9d7f3e7d", 494878333}, {"7bbd", 15293}, {"25", 37}} {
		b := unhex(t, tc.hex)
		v, err := ReadVarint(bytes.NewReader(b))
		if err != nil || v != tc.v {
			t.Errorf("ReadVarint(%s) = %d, %v; want %d", tc.hex, v, err, tc.v)
		}
		if got := AppendVarint(nil, tc.v); !bytes.Equal(got, b) {
			t.Errorf("AppendVarint(%d) = %x, want %s", tc.v, got, tc.hex)
		}
	}
	// A non-minimal encoding decodes (RFC 9000 §16: "4025" is 37).
	if v, err := ReadVarint(bytes.NewReader([]byte{0x40, 0x25})); err != nil || v != 37 {
		t.Errorf("ReadVarint(4025) = %d, %v; want 37", v, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{rfcKnownRequest, rfcIndetRequest, rfcIndetResponse, rfcKnownResponse} {
		f.Add(unhex(f, s))
	}
	f.Add([]byte{2, 0, 0, 0, 0})
	lim := Limits{MaxFieldSection: 4096, MaxFields: 32, MaxContent: 1 << 16}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		if r, err := ParseRequestLimits(b, lim); err == nil {
			// What parses re-encodes and parses to the same request.
			e, err := r.MarshalKnownLength()
			if err != nil {
				t.Fatalf("a parsed request does not encode: %v", err)
			}
			r2, err := ParseRequestLimits(e, lim)
			if err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("re-parse = %+v, %v; want %+v", r2, err, r)
			}
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ParseRequest error %v wraps neither ErrInvalid nor ErrTooLarge", err)
		}
		if r, err := ParseResponseLimits(b, lim); err == nil {
			e, err := r.MarshalIndeterminate(0)
			if err != nil {
				t.Fatalf("a parsed response does not encode: %v", err)
			}
			if r2, err := ParseResponseLimits(e, lim); err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("re-parse = %+v, %v; want %+v", r2, err, r)
			}
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ParseResponse error %v wraps neither ErrInvalid nor ErrTooLarge", err)
		}
	})
}

// FuzzReadResponseFragmented: a response read as a stream arrives in
// whatever pieces the network (or a JavaScript ReadableStream) cuts it
// into; read a byte at a time, with the content read in small buffers,
// it decodes exactly as the whole message does, or fails as it does.
func FuzzReadResponseFragmented(f *testing.F) {
	f.Add(unhex(f, rfcIndetResponse), uint8(3))
	f.Add(unhex(f, rfcKnownResponse), uint8(1))
	lim := Limits{MaxFieldSection: 4096, MaxFields: 32, MaxContent: 1 << 16}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		if len(b) > 1<<16 {
			return
		}
		whole, werr := ParseResponseLimits(b, lim)
		sr, err := ReadResponse(iotest.OneByteReader(bytes.NewReader(b)), lim)
		var got *Response
		if err == nil {
			var content []byte
			buf := make([]byte, int(chunk)%7+1)
			for err == nil {
				var n int
				n, err = sr.Body.Read(buf)
				content = append(content, buf[:n]...)
				if int64(len(content)) > lim.MaxContent {
					err = ErrTooLarge
				}
			}
			if err == io.EOF {
				r := sr.Response
				r.Content = content
				if r.Trailer, err = sr.Trailer(); err == nil {
					got = &r
				}
			}
		}
		switch {
		case werr == nil && got == nil:
			t.Fatalf("whole: %+v; in pieces: %v", whole, err)
		case werr != nil && got != nil:
			t.Fatalf("whole: %v; in pieces: %+v", werr, got)
		case werr == nil && !reflect.DeepEqual(normal(whole), normal(got)):
			t.Fatalf("whole: %+v; in pieces: %+v", whole, got)
		}
	})
}

// normal makes empty and nil content alike.
func normal(r *Response) Response {
	c := *r
	if len(c.Content) == 0 {
		c.Content = nil
	}
	return c
}
