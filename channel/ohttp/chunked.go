package ohttp

import (
	"bufio"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/attestlog/attestlog/channel/bhttp"
	"github.com/attestlog/attestlog/channel/keyset"
)

// Chunk sizes (draft-ietf-ohai-chunked-ohttp §3: "Implementations MUST
// support receiving chunks that contain 2^14 (16384) octets of data
// prior to encapsulation. Senders of chunks SHOULD limit their chunks
// to this size").
const (
	// ChunkSize is the largest plaintext of a chunk this package sends.
	ChunkSize = 16384
	// MaxSealedChunk bounds a sealed chunk this package reads (a final
	// chunk runs to the end of the stream, and is bounded the same).
	MaxSealedChunk = 4*ChunkSize + 16
)

// readBuffer is the buffer of a chunk reader: enough for the lengths
// and the small chunks; a larger chunk is read past it, straight into
// its own slice.
const readBuffer = 512

// ErrTruncated is returned when a chunked message ends before its final
// chunk: a relay or the network cut it.
var ErrTruncated = errors.New("chunked message truncated before its final chunk")

var finalAAD = []byte("final")

// ChunkedRequest is a client's chunked request (message/ohttp-chunked-req)
// being written, and the context that opens its chunked response.
type ChunkedRequest struct {
	ClientRequest
	w      io.Writer
	closed bool
}

// NewChunkedRequest writes the chunked request header (hdr ‖ enc) to w
// and returns the writer of its chunks.
func NewChunkedRequest(cfg keyset.KeyConfig, s Suite, w io.Writer) (*ChunkedRequest, error) {
	k, err := NewSealer(cfg, s)
	if err != nil {
		return nil, err
	}
	return k.NewChunkedRequest(w)
}

// NewChunkedRequest is the package's NewChunkedRequest to k's key.
func (k *Sealer) NewChunkedRequest(w io.Writer) (*ChunkedRequest, error) {
	hdr, cr, err := k.newSender(labelChunkedRequest, 0)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	cr.label = labelChunkedResponse
	return &ChunkedRequest{ClientRequest: *cr, w: w}, nil
}

// Write seals p as non-final chunks of at most ChunkSize bytes.
func (c *ChunkedRequest) Write(p []byte) (int, error) {
	if c.closed {
		return 0, errors.New("ohttp: write after the final chunk")
	}
	n := 0
	for len(p) > 0 {
		m := min(len(p), ChunkSize)
		ct, err := c.sender.Seal(nil, p[:m])
		if err != nil {
			return n, err
		}
		if _, err := c.w.Write(frame(ct)); err != nil {
			return n, err
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

// Close seals the final chunk (empty).
func (c *ChunkedRequest) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	ct, err := c.sender.Seal(finalAAD, nil)
	if err != nil {
		return err
	}
	_, err = c.w.Write(append([]byte{0}, ct...))
	return err
}

// OpenResponse returns a reader of the plaintext of the chunked response
// read from r. It fails with ErrDecrypt on a chunk that does not open
// (tampered, reordered, from another request) and with ErrTruncated when
// r ends before the final chunk.
func (c *ChunkedRequest) OpenResponse(r io.Reader) io.Reader {
	return &chunkReader{r: bufio.NewReaderSize(r, readBuffer), open: func(br *bufio.Reader) (chunkOpener, error) {
		n := responseNonceSize(c.suite)
		nonce := make([]byte, n)
		if _, err := io.ReadFull(br, nonce); err != nil {
			return nil, fmt.Errorf("%w: the response nonce: %w", ErrTruncated, err)
		}
		a, base, err := responseAEAD(c.sender, c.label, c.suite, c.enc, nonce)
		if err != nil {
			return nil, err
		}
		return &aeadChunks{a: a, base: base}, nil
	}}
}

// chunkOpener opens the chunks of one message in order.
type chunkOpener interface {
	open(ct []byte, final bool) ([]byte, error)
}

// frame is ct as a non-final chunk: its length, then ct.
func frame(ct []byte) []byte {
	return append(bhttp.AppendVarint(make([]byte, 0, 8+len(ct)), uint64(len(ct))), ct...)
}

type aeadChunks struct {
	a       cipher.AEAD
	base    []byte
	counter uint64
	n       [32]byte // the current nonce (Nn bytes of it)
}

// nonce is the base nonce XOR the chunk counter (the chunked draft §6.2).
func (c *aeadChunks) nonce() []byte {
	n := c.n[:copy(c.n[:], c.base)]
	for i := 0; i < 8; i++ {
		n[len(n)-1-i] ^= byte(c.counter >> (8 * i))
	}
	return n
}

func (c *aeadChunks) open(ct []byte, final bool) ([]byte, error) {
	var aad []byte
	if final {
		aad = finalAAD
	}
	pt, err := c.a.Open(nil, c.nonce(), ct, aad)
	c.counter++
	return pt, err
}

// seal appends the sealed chunk pt to dst.
func (c *aeadChunks) seal(dst, pt []byte, final bool) []byte {
	var aad []byte
	if final {
		aad = finalAAD
	}
	ct := c.a.Seal(dst, c.nonce(), pt, aad)
	c.counter++
	return ct
}

type hpkeChunks struct{ r *hpke.Recipient }

func (c hpkeChunks) open(ct []byte, final bool) ([]byte, error) {
	var aad []byte
	if final {
		aad = finalAAD
	}
	return c.r.Open(aad, ct)
}

// chunkReader reads the chunks of a message (after its header) and
// yields their plaintext.
type chunkReader struct {
	r    *bufio.Reader
	open func(*bufio.Reader) (chunkOpener, error)
	o    chunkOpener
	buf  []byte
	done bool
	err  error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if err := c.fill(); err != nil {
		return 0, err
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// ReadByte lets a parser of the plaintext (channel/bhttp) read it
// without a buffer of its own.
func (c *chunkReader) ReadByte() (byte, error) {
	if err := c.fill(); err != nil {
		return 0, err
	}
	b := c.buf[0]
	c.buf = c.buf[1:]
	return b, nil
}

// fill opens chunks until one has plaintext left, or the end.
func (c *chunkReader) fill() error {
	for len(c.buf) == 0 {
		if c.err != nil {
			return c.err
		}
		if c.done {
			return io.EOF
		}
		c.err = c.next()
	}
	return nil
}

func (c *chunkReader) next() error {
	if c.o == nil {
		o, err := c.open(c.r)
		if err != nil {
			return err
		}
		c.o = o
	}
	n, err := bhttp.ReadVarint(c.r)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	if err != nil {
		return err
	}
	var ct []byte
	final := n == 0
	if final {
		ct, err = io.ReadAll(io.LimitReader(c.r, MaxSealedChunk+1))
		if err != nil {
			return err
		}
		if len(ct) > MaxSealedChunk {
			return fmt.Errorf("%w: a final chunk of more than %d bytes", ErrMalformed, MaxSealedChunk)
		}
	} else {
		if n > MaxSealedChunk {
			return fmt.Errorf("%w: a chunk of %d bytes (limit %d)", ErrMalformed, n, MaxSealedChunk)
		}
		ct = make([]byte, n)
		if _, err := io.ReadFull(c.r, ct); err != nil {
			return ErrTruncated
		}
	}
	pt, err := c.o.open(ct, final)
	if err != nil {
		return ErrDecrypt
	}
	if !final && len(pt) == 0 {
		// > A receiver MUST treat the receipt of a chunk that contains
		// > no data as equivalent to a decryption error, unless that
		// > chunk is the final chunk.
		return ErrDecrypt
	}
	c.buf, c.done = pt, final
	return nil
}

// ChunkedRequestReader is a gateway's view of a chunked request: the
// plaintext (Read) and the writer of the chunked response (Response).
type ChunkedRequestReader struct {
	io.Reader
	gr *GatewayResponse
}

// OpenChunkedRequest reads the header of a message/ohttp-chunked-req
// body from r and returns the reader of its plaintext.
func (g *Gateway) OpenChunkedRequest(r io.Reader) (*ChunkedRequestReader, error) {
	br := bufio.NewReaderSize(r, readBuffer)
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: the request header: %v", ErrMalformed, err)
	}
	n := encSize(uint16(hdr[1])<<8 | uint16(hdr[2]))
	if n == 0 {
		return nil, fmt.Errorf("%w: KEM 0x%02x%02x", ErrUnknownKey, hdr[1], hdr[2])
	}
	enc := make([]byte, n)
	if _, err := io.ReadFull(br, enc); err != nil {
		return nil, fmt.Errorf("%w: the encapsulated key: %v", ErrMalformed, err)
	}
	gr, _, err := g.recipient(append(hdr, enc...), labelChunkedRequest)
	if err != nil {
		return nil, err
	}
	gr.label = labelChunkedResponse
	cr := &chunkReader{r: br, o: hpkeChunks{gr.recipient}}
	return &ChunkedRequestReader{Reader: cr, gr: gr}, nil
}

// ChunkedResponseWriter seals a chunked response as it is written.
type ChunkedResponseWriter struct {
	w      io.Writer
	c      *aeadChunks
	closed bool
}

// Response writes the response nonce to w and returns the writer of the
// response's chunks (after the request was read to its end).
func (r *ChunkedRequestReader) Response(w io.Writer) (*ChunkedResponseWriter, error) {
	nonce := make([]byte, responseNonceSize(r.gr.suite))
	rand.Read(nonce)
	return r.gr.chunkedResponse(w, nonce)
}

func (gr *GatewayResponse) chunkedResponse(w io.Writer, nonce []byte) (*ChunkedResponseWriter, error) {
	a, base, err := responseAEAD(gr.recipient, gr.label, gr.suite, gr.enc, nonce)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(nonce); err != nil {
		return nil, err
	}
	return &ChunkedResponseWriter{w: w, c: &aeadChunks{a: a, base: base}}, nil
}

// Write seals p as non-final chunks of at most ChunkSize bytes, written
// at once.
func (cw *ChunkedResponseWriter) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, errors.New("ohttp: write after the final chunk")
	}
	n := 0
	for len(p) > 0 {
		m := min(len(p), ChunkSize)
		ctLen := m + cw.c.a.Overhead()
		b := bhttp.AppendVarint(make([]byte, 0, 8+ctLen), uint64(ctLen))
		if _, err := cw.w.Write(cw.c.seal(b, p[:m], false)); err != nil {
			return n, err
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

// Close seals the final chunk (empty): without it the client reports
// the response truncated.
func (cw *ChunkedResponseWriter) Close() error {
	if cw.closed {
		return nil
	}
	cw.closed = true
	_, err := cw.w.Write(cw.c.seal([]byte{0}, nil, true))
	return err
}
