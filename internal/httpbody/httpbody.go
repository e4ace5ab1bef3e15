// Package httpbody reads request bodies for attestlog's servers, sorting
// what can go wrong into the client's faults, each with its 4xx status: a
// body over the limit (413), one that stops short of its Content-Length or
// is not a valid chunked stream (400), and one slower than the server's
// read timeout (408). None of them is the server's fault, so none may
// become a 500.
package httpbody

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

var (
	// ErrIncomplete: the body ended before its declared length, or its
	// chunked encoding is broken.
	ErrIncomplete = errors.New("incomplete request body")
	// ErrTimeout: the body did not arrive within the server's read
	// timeout.
	ErrTimeout = errors.New("request body not received in time")
)

// Read reads r's body. Limit it first (http.MaxBytesHandler or
// http.MaxBytesReader); an over-limit body yields the *http.MaxBytesError.
func Read(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= 1<<20 {
		// One allocation instead of ReadAll's doubling; ReadFrom wants
		// MinRead bytes free to see the end, or it grows the buffer again.
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, Classify(err)
	}
	return buf.Bytes(), nil
}

// Classify wraps an error from reading a request body in ErrTimeout or
// ErrIncomplete; a *http.MaxBytesError is returned as is.
func Classify(err error) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the body ended before its Content-Length", ErrIncomplete)
	}
	// Anything else a request body's reader returns is the connection or
	// the framing failing (a bad chunk header, a reset connection).
	return fmt.Errorf("%w: %v", ErrIncomplete, err)
}

// Status is the HTTP status of an error from Read, and false if err did
// not come from Read.
func Status(err error) (int, bool) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, true
	case errors.Is(err, ErrTimeout):
		return http.StatusRequestTimeout, true
	case errors.Is(err, ErrIncomplete):
		return http.StatusBadRequest, true
	}
	return 0, false
}
