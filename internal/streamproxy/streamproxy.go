// Package streamproxy makes an httputil.ReverseProxy stream fast without
// holding anything back: the enclave agent (in front of the service) and
// `attestlog proxy` (in front of the user's programs) both use it.
//
// A ReverseProxy that must not delay a server-sent event flushes after
// every write (FlushInterval -1; it does so for every text/event-stream
// and every response without a Content-Length anyway). Each flush is a
// chunk trailer, a TLS record and a system call of its own, and the
// copy alternates reading and writing on one goroutine: on a bulk stream
// the relay spends its time in small writes and waits, not moving bytes.
//
// Handler instead reads the upstream's body ahead on a goroutine of its
// own (a few buffers, bounded: a slow client still holds the upstream
// back) and flushes when it has caught up — when no byte it read is left
// to write. A byte is never held while the relay waits for more: the
// moment the read-ahead has nothing queued, what was written is flushed.
// When data arrives faster than it leaves, consecutive writes share one
// flush, and reading overlaps writing.
package streamproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
)

// BufferSize is the size of the read-ahead buffers and of the copy
// buffer.
const BufferSize = 64 << 10

// Queue is how many read-ahead buffers may wait for the writer per
// response.
const Queue = 4

var pool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// bufferPool gives ReverseProxy its copy buffers from pool.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *(pool.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { b = b[:cap(b)]; pool.Put(&b) }

type stateKey struct{}

// state links a response's read-ahead body to its writer.
type state struct {
	// queued counts the bytes read from the upstream and not yet handed
	// to the writer.
	queued atomic.Int64
}

// Handler returns rp serving with read-ahead and coalesced flushes. It
// sets rp's FlushInterval (-1: flush whenever caught up), BufferPool and
// ModifyResponse (calling the one rp had first).
func Handler(rp *httputil.ReverseProxy) http.Handler {
	rp.FlushInterval = -1
	rp.BufferPool = bufferPool{}
	modify := rp.ModifyResponse
	rp.ModifyResponse = func(resp *http.Response) error {
		if modify != nil {
			if err := modify(resp); err != nil {
				return err
			}
		}
		s, ok := resp.Request.Context().Value(stateKey{}).(*state)
		// A protocol switch hands the connection itself over (the body
		// must stay the connection); an empty body has nothing to read.
		if !ok || resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
			return nil
		}
		resp.Body = newReadAhead(resp.Body, s)
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &state{}
		rp.ServeHTTP(&writer{ResponseWriter: w, s: s}, r.WithContext(context.WithValue(r.Context(), stateKey{}, s)))
	})
}

// writer flushes only when the read-ahead has caught up.
type writer struct {
	http.ResponseWriter
	s *state
}

// FlushError flushes what was written unless more is already read and
// about to be written (whose write is followed by a flush in turn).
func (w *writer) FlushError() error {
	if w.s.queued.Load() > 0 {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *writer) Flush() { w.FlushError() }

// Unwrap lets http.ResponseController reach the server's writer
// (Hijack for protocol switches, deadlines).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// chunk is what the read-ahead goroutine hands over: data, or the end.
type chunk struct {
	buf *[]byte
	n   int
	err error
}

// readAhead reads its body on a goroutine of its own.
type readAhead struct {
	body io.ReadCloser
	s    *state
	ch   chan chunk
	done chan struct{}
	once sync.Once

	cur chunk
	off int
	err error
}

func newReadAhead(body io.ReadCloser, s *state) *readAhead {
	r := &readAhead{body: body, s: s, ch: make(chan chunk, Queue), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *readAhead) run() {
	for {
		bp := pool.Get().(*[]byte)
		n, err := r.body.Read(*bp)
		if n > 0 {
			r.s.queued.Add(int64(n))
		} else {
			pool.Put(bp)
			bp = nil
		}
		select {
		case r.ch <- chunk{buf: bp, n: n, err: err}:
		case <-r.done:
			if bp != nil {
				r.s.queued.Add(-int64(n))
				pool.Put(bp)
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns queued bytes, waiting for some only when none is queued.
func (r *readAhead) Read(p []byte) (int, error) {
	for r.cur.buf == nil || r.off == r.cur.n {
		if r.cur.buf != nil {
			pool.Put(r.cur.buf)
			r.cur.buf = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		c, ok := <-r.ch
		if !ok {
			return 0, io.ErrClosedPipe
		}
		r.cur, r.off, r.err = c, 0, c.err
		if c.buf == nil {
			r.cur.n = 0
			if r.err != nil {
				return 0, r.err
			}
		}
	}
	n := copy(p, (*r.cur.buf)[r.off:r.cur.n])
	r.off += n
	r.s.queued.Add(-int64(n))
	return n, nil
}

// Close stops the read-ahead and closes the body.
func (r *readAhead) Close() error {
	var err error
	r.once.Do(func() {
		close(r.done)
		err = r.body.Close()
		// Return what was read and never written.
		for {
			select {
			case c := <-r.ch:
				if c.buf != nil {
					r.s.queued.Add(-int64(c.n))
					pool.Put(c.buf)
				}
			default:
				return
			}
		}
	})
	return err
}
