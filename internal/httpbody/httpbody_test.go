package httpbody

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// TestReadSizesFromContentLength: a body whose length is stated is read
// into one buffer of about that size, not grown by doubling (admission
// reads every entry through here).
func TestReadSizesFromContentLength(t *testing.T) {
	for _, n := range []int{1, 511, 512, 6115, 65536} {
		body := bytes.Repeat([]byte("x"), n)
		r := httptest.NewRequest("POST", "/add", bytes.NewReader(body))
		got, err := Read(r)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		// The allocator rounds up to its size classes (at most an eighth
		// here); growing again after the stated length doubles it.
		if c := cap(got); c > n+n/4+bytes.MinRead+64 {
			t.Errorf("%d bytes read into a buffer of %d: grown after the stated length", n, c)
		}
	}
}
