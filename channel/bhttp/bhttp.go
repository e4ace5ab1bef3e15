// Package bhttp is Binary HTTP ([RFC 9292]): the message/bhttp encoding
// of one HTTP request or response, in its known-length and
// indeterminate-length forms. Oblivious HTTP (channel/ohttp) encrypts
// these messages.
//
// Parsing is strict, as the RFC asks (§4: "Invalid messages MUST NOT be
// processed except to log an error and produce an error response"): a
// framing indicator other than 0..3, a field name that is not a
// lowercase token, a pseudo-field, a field value with a NUL, CR or LF
// or surrounding whitespace, a message truncated anywhere but where
// §3.1 and §3.2 allow, or non-zero padding is refused. Every parser is
// bounded by Limits: fields, field sections and content past them are
// refused before they are buffered.
//
// [RFC 9292]: https://www.rfc-editor.org/rfc/rfc9292.html
package bhttp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Framing indicators (RFC 9292 §3.3).
const (
	framingKnownRequest    = 0
	framingKnownResponse   = 1
	framingIndetRequest    = 2
	framingIndetResponse   = 3
	maxInformationalBlocks = 16
)

// ErrInvalid is wrapped by every error about a malformed message.
var ErrInvalid = errors.New("invalid binary HTTP message")

// ErrTooLarge is wrapped when a message exceeds its Limits.
var ErrTooLarge = errors.New("binary HTTP message exceeds its limits")

// Field is one field line. Names are lowercase, as in HTTP/2.
type Field struct{ Name, Value string }

// Request is an HTTP request (RFC 9292 §3.4: control data is method,
// scheme, authority and path, as in HTTP/2's pseudo-header fields).
type Request struct {
	Method, Scheme, Authority, Path string
	Header                          []Field
	Content                         []byte
	Trailer                         []Field
}

// Informational is an interim (1xx) response.
type Informational struct {
	Status int
	Header []Field
}

// Response is an HTTP response, with its interim responses.
type Response struct {
	Informational []Informational
	Status        int
	Header        []Field
	Content       []byte
	Trailer       []Field
}

// Limits bound what a parser accepts.
type Limits struct {
	// MaxFieldSection bounds the bytes of one header or trailer section
	// (names and values with their length prefixes).
	MaxFieldSection int
	// MaxFields bounds the field lines of one section.
	MaxFields int
	// MaxContent bounds the content of a message parsed whole (Parse*);
	// a streamed body (ReadResponse) is bounded by its reader.
	MaxContent int64
}

// DefaultLimits are the limits of the Parse functions.
var DefaultLimits = Limits{MaxFieldSection: 64 << 10, MaxFields: 256, MaxContent: 16 << 20}

// appendVarint appends v in the variable-length integer encoding of QUIC
// (RFC 9000 §16), in its shortest form.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	case v < 1<<62:
		return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	panic("bhttp: integer too large for a varint")
}

// AppendVarint appends v as a QUIC variable-length integer (v < 2^62).
func AppendVarint(b []byte, v uint64) []byte { return appendVarint(b, v) }

// ReadVarint reads a QUIC variable-length integer.
func ReadVarint(r io.ByteReader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < n; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func appendString(b []byte, s string) []byte {
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFields(b []byte, fs []Field) []byte {
	for _, f := range fs {
		b = appendString(b, f.Name)
		b = appendString(b, f.Value)
	}
	return b
}

func appendKnownFields(b []byte, fs []Field) []byte {
	s := appendFields(nil, fs)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendIndetFields(b []byte, fs []Field) []byte {
	return append(appendFields(b, fs), 0)
}

// checkFields checks what a parser would refuse, so that no encoder
// writes a message its peer must reject.
func checkFields(fs []Field) error {
	for _, f := range fs {
		if err := checkField(f); err != nil {
			return err
		}
	}
	return nil
}

func checkField(f Field) error {
	switch {
	case f.Name == "":
		return fmt.Errorf("%w: an empty field name", ErrInvalid)
	case strings.HasPrefix(f.Name, ":"):
		return fmt.Errorf("%w: pseudo-field %q (control data is not a field)", ErrInvalid, f.Name)
	case !validToken(f.Name) || strings.ToLower(f.Name) != f.Name:
		return fmt.Errorf("%w: field name %q is not a lowercase token", ErrInvalid, f.Name)
	case !validValue(f.Value) || strings.ContainsRune(f.Value, 0) || strings.Trim(f.Value, " \t") != f.Value:
		return fmt.Errorf("%w: the value of field %q has a forbidden byte or surrounding whitespace", ErrInvalid, f.Name)
	}
	return nil
}

func (r *Request) check() error {
	switch {
	case r.Method == "" || !validToken(r.Method):
		return fmt.Errorf("%w: method %q is not a token", ErrInvalid, r.Method)
	case r.Scheme == "" || strings.ContainsAny(r.Scheme, ":/ \t\r\n\x00"):
		return fmt.Errorf("%w: scheme %q", ErrInvalid, r.Scheme)
	case strings.ContainsAny(r.Authority, "/ \t\r\n\x00@"):
		return fmt.Errorf("%w: authority %q", ErrInvalid, r.Authority)
	case r.Method != "CONNECT" && (r.Path == "" || r.Path[0] != '/' && r.Path != "*") || strings.ContainsAny(r.Path, " \t\r\n\x00"):
		return fmt.Errorf("%w: path %q", ErrInvalid, r.Path)
	}
	if err := checkFields(r.Header); err != nil {
		return err
	}
	return checkFields(r.Trailer)
}

func (r *Request) appendControl(b []byte) []byte {
	b = appendString(b, r.Method)
	b = appendString(b, r.Scheme)
	b = appendString(b, r.Authority)
	return appendString(b, r.Path)
}

// MarshalKnownLength encodes r in the known-length form (framing 0),
// untruncated and unpadded.
func (r *Request) MarshalKnownLength() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := r.appendControl([]byte{framingKnownRequest})
	b = appendKnownFields(b, r.Header)
	b = appendVarint(b, uint64(len(r.Content)))
	b = append(b, r.Content...)
	return appendKnownFields(b, r.Trailer), nil
}

// MarshalIndeterminate encodes r in the indeterminate-length form
// (framing 2), its content as one chunk, followed by padding zero bytes.
func (r *Request) MarshalIndeterminate(padding int) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := r.appendControl([]byte{framingIndetRequest})
	b = appendIndetFields(b, r.Header)
	if len(r.Content) > 0 {
		b = appendVarint(b, uint64(len(r.Content)))
		b = append(b, r.Content...)
	}
	b = append(b, 0)
	b = appendIndetFields(b, r.Trailer)
	return append(b, make([]byte, padding)...), nil
}

func checkStatus(s int, final bool) error {
	if final && (s < 200 || s > 599) || !final && (s < 100 || s > 199) {
		return fmt.Errorf("%w: status %d", ErrInvalid, s)
	}
	return nil
}

func (r *Response) check() error {
	if len(r.Informational) > maxInformationalBlocks {
		return fmt.Errorf("%w: more than %d informational responses", ErrInvalid, maxInformationalBlocks)
	}
	for _, i := range r.Informational {
		if err := checkStatus(i.Status, false); err != nil {
			return err
		}
		if err := checkFields(i.Header); err != nil {
			return err
		}
	}
	if err := checkStatus(r.Status, true); err != nil {
		return err
	}
	if err := checkFields(r.Header); err != nil {
		return err
	}
	return checkFields(r.Trailer)
}

// MarshalKnownLength encodes r in the known-length form (framing 1).
func (r *Response) MarshalKnownLength() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := []byte{framingKnownResponse}
	for _, i := range r.Informational {
		b = appendVarint(b, uint64(i.Status))
		b = appendKnownFields(b, i.Header)
	}
	b = appendVarint(b, uint64(r.Status))
	b = appendKnownFields(b, r.Header)
	b = appendVarint(b, uint64(len(r.Content)))
	b = append(b, r.Content...)
	return appendKnownFields(b, r.Trailer), nil
}

// MarshalIndeterminate encodes r in the indeterminate-length form
// (framing 3), its content as one chunk, followed by padding zero bytes.
func (r *Response) MarshalIndeterminate(padding int) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := []byte{framingIndetResponse}
	for _, i := range r.Informational {
		b = appendVarint(b, uint64(i.Status))
		b = appendIndetFields(b, i.Header)
	}
	b = appendVarint(b, uint64(r.Status))
	b = appendIndetFields(b, r.Header)
	if len(r.Content) > 0 {
		b = appendVarint(b, uint64(len(r.Content)))
		b = append(b, r.Content...)
	}
	b = append(b, 0)
	b = appendIndetFields(b, r.Trailer)
	return append(b, make([]byte, padding)...), nil
}

// ResponseWriter writes a response in the indeterminate-length form as
// it is produced: the head, then each Write as one content chunk, then
// the trailer on Close. It writes to w at once (no buffering).
type ResponseWriter struct {
	w    io.Writer
	head bool
	done bool
}

// NewResponseWriter returns a writer of one response to w.
func NewResponseWriter(w io.Writer) *ResponseWriter { return &ResponseWriter{w: w} }

// WriteInformational writes an interim response; only before WriteHead.
func (rw *ResponseWriter) WriteInformational(status int, header []Field) error {
	if rw.head {
		return errors.New("bhttp: informational response after the final head")
	}
	if err := checkStatus(status, false); err != nil {
		return err
	}
	if err := checkFields(header); err != nil {
		return err
	}
	b := []byte{}
	if !rw.done { // first write carries the framing indicator
		b = append(b, framingIndetResponse)
		rw.done = true
	}
	b = appendVarint(b, uint64(status))
	_, err := rw.w.Write(appendIndetFields(b, header))
	return err
}

// WriteHead writes the final status and header section.
func (rw *ResponseWriter) WriteHead(status int, header []Field) error {
	if rw.head {
		return errors.New("bhttp: head written twice")
	}
	if err := checkStatus(status, true); err != nil {
		return err
	}
	if err := checkFields(header); err != nil {
		return err
	}
	var b []byte
	if !rw.done {
		b = append(b, framingIndetResponse)
		rw.done = true
	}
	rw.head = true
	b = appendVarint(b, uint64(status))
	_, err := rw.w.Write(appendIndetFields(b, header))
	return err
}

// Write writes p as one content chunk (nothing for an empty p).
func (rw *ResponseWriter) Write(p []byte) (int, error) {
	if !rw.head {
		return 0, errors.New("bhttp: content before the head")
	}
	if len(p) == 0 {
		return 0, nil
	}
	// One write per chunk: the length and the bytes travel together
	// (an encrypting writer below seals each write as a unit).
	b := appendVarint(make([]byte, 0, 8+len(p)), uint64(len(p)))
	if _, err := rw.w.Write(append(b, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the content and writes the trailer section.
func (rw *ResponseWriter) Close(trailer []Field) error {
	if !rw.head {
		return errors.New("bhttp: closed before the head")
	}
	if err := checkFields(trailer); err != nil {
		return err
	}
	_, err := rw.w.Write(appendIndetFields([]byte{0}, trailer))
	return err
}

// byteReader is what a decoder reads from.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// newDecoder returns a decoder of r, buffered unless r reads bytes one
// by one already (a bytes.Reader, an OHTTP chunk reader).
func newDecoder(r io.Reader, lim Limits) *decoder {
	br, ok := r.(byteReader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &decoder{r: br, lim: lim}
}

// decoder reads a message from a byte stream.
type decoder struct {
	r   byteReader
	lim Limits
	// ended: the message was truncated (EOF where a section may begin);
	// every later section is empty.
	ended bool
}

func (d *decoder) bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// varint reads an integer that must be there.
func (d *decoder) varint(what string) (uint64, error) {
	v, err := ReadVarint(d.r)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, d.bad("%s: %v", what, err)
	}
	return v, nil
}

// sectionStart reads the integer that begins a section, or reports
// truncation (EOF there is allowed: the rest of the message is empty).
func (d *decoder) sectionStart(what string) (uint64, error) {
	if d.ended {
		return 0, nil
	}
	v, err := ReadVarint(d.r)
	if err == io.EOF {
		d.ended = true
		return 0, nil
	}
	if err != nil {
		return 0, d.bad("%s: %v", what, err)
	}
	return v, nil
}

func (d *decoder) bytes(n uint64, max int, what string) ([]byte, error) {
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrTooLarge, what, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, d.bad("%s: truncated", what)
	}
	return b, nil
}

func (d *decoder) str(max int, what string) (string, int, error) {
	n, err := d.varint(what + " length")
	if err != nil {
		return "", 0, err
	}
	b, err := d.bytes(n, max, what)
	if err != nil {
		return "", 0, err
	}
	return string(b), len(b) + len(appendVarint(nil, n)), nil
}

// fieldLine reads one field line, charging its size to *budget.
func (d *decoder) fieldLine(nameLen uint64, budget *int, fs *[]Field) error {
	if nameLen == 0 {
		return d.bad("an empty field name")
	}
	if len(*fs) >= d.lim.MaxFields {
		return fmt.Errorf("%w: more than %d fields in a section", ErrTooLarge, d.lim.MaxFields)
	}
	name, err := d.bytes(nameLen, *budget, "field section")
	if err != nil {
		return err
	}
	*budget -= len(name)
	value, n, err := d.str(*budget, "field section")
	if err != nil {
		return err
	}
	*budget -= n
	f := Field{Name: string(name), Value: value}
	if err := checkField(f); err != nil {
		return err
	}
	*fs = append(*fs, f)
	return nil
}

// knownFields reads a known-length field section (its length already
// read as n).
func (d *decoder) knownFields(n uint64) ([]Field, error) {
	if n > uint64(d.lim.MaxFieldSection) {
		return nil, fmt.Errorf("%w: a field section of %d bytes (limit %d)", ErrTooLarge, n, d.lim.MaxFieldSection)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, d.bad("a field section truncated")
	}
	sub := newDecoder(bytes.NewReader(b), d.lim)
	var fs []Field
	budget := int(n)
	for {
		nl, err := ReadVarint(sub.r)
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return nil, d.bad("field name length: %v", err)
		}
		if err := sub.fieldLine(nl, &budget, &fs); err != nil {
			return nil, err
		}
	}
}

// indetFields reads an indeterminate-length field section up to its
// terminator (first is the first integer, already read).
func (d *decoder) indetFields(first uint64) ([]Field, error) {
	var fs []Field
	budget := d.lim.MaxFieldSection
	for nl := first; nl != 0; {
		if err := d.fieldLine(nl, &budget, &fs); err != nil {
			return nil, err
		}
		var err error
		if nl, err = d.varint("field name length"); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// fields reads a field section of either form, allowing truncation.
func (d *decoder) fields(indet bool) ([]Field, error) {
	n, err := d.sectionStart("field section")
	if err != nil || d.ended || n == 0 {
		return nil, err
	}
	if indet {
		return d.indetFields(n)
	}
	return d.knownFields(n)
}

// padding checks that everything left is zero.
func (d *decoder) padding() error {
	for {
		c, err := d.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c != 0 {
			return d.bad("non-zero byte 0x%02x after the message", c)
		}
	}
}

// ParseRequest reads a whole request in either form, within
// DefaultLimits.
func ParseRequest(b []byte) (*Request, error) { return ParseRequestLimits(b, DefaultLimits) }

// ParseRequestLimits reads a whole request within lim.
func ParseRequestLimits(b []byte, lim Limits) (*Request, error) {
	d := newDecoder(bytes.NewReader(b), lim)
	f, err := d.varint("framing indicator")
	if err != nil {
		return nil, err
	}
	if f != framingKnownRequest && f != framingIndetRequest {
		return nil, d.bad("framing indicator %d is not a request's (0 or 2)", f)
	}
	indet := f == framingIndetRequest
	r := &Request{}
	for _, p := range []*string{&r.Method, &r.Scheme, &r.Authority, &r.Path} {
		if *p, _, err = d.str(lim.MaxFieldSection, "control data"); err != nil {
			return nil, err
		}
	}
	if r.Header, err = d.fields(indet); err != nil {
		return nil, err
	}
	if r.Content, err = readAllContent(newContentReader(d, indet), lim.MaxContent); err != nil {
		return nil, err
	}
	if r.Trailer, err = d.fields(indet); err != nil {
		return nil, err
	}
	if err := d.padding(); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

func readAllContent(body *contentReader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: content of more than %d bytes", ErrTooLarge, max)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// contentReader yields the content of a message as it is read.
type contentReader struct {
	d     *decoder
	indet bool
	left  uint64 // of the current chunk (or the whole known-length content)
	start bool
	eof   bool
}

func newContentReader(d *decoder, indet bool) *contentReader {
	return &contentReader{d: d, indet: indet}
}

func (c *contentReader) Read(p []byte) (int, error) {
	if c.eof {
		return 0, io.EOF
	}
	if !c.start {
		c.start = true
		n, err := c.d.sectionStart("content length")
		if err != nil {
			return 0, err
		}
		if n == 0 {
			c.eof = true
			return 0, io.EOF
		}
		c.left = n
	}
	if c.left == 0 {
		if !c.indet {
			c.eof = true
			return 0, io.EOF
		}
		n, err := c.d.varint("chunk length")
		if err != nil {
			return 0, err
		}
		if n == 0 {
			c.eof = true
			return 0, io.EOF
		}
		c.left = n
	}
	if uint64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.d.r.Read(p)
	c.left -= uint64(n)
	if err == io.EOF {
		if c.left > 0 {
			return n, c.d.bad("content truncated")
		}
		err = nil // the end of this chunk (what follows reads the EOF again)
	}
	return n, err
}

// ParseResponse reads a whole response in either form, within
// DefaultLimits.
func ParseResponse(b []byte) (*Response, error) { return ParseResponseLimits(b, DefaultLimits) }

// ParseResponseLimits reads a whole response within lim.
func ParseResponseLimits(b []byte, lim Limits) (*Response, error) {
	sr, err := ReadResponse(bytes.NewReader(b), lim)
	if err != nil {
		return nil, err
	}
	r := &sr.Response
	if r.Content, err = readAllContent(sr.body, lim.MaxContent); err != nil {
		return nil, err
	}
	if r.Trailer, err = sr.Trailer(); err != nil {
		return nil, err
	}
	return r, nil
}

// StreamedResponse is a response whose head was read; its content is
// read from Body, and then Trailer reads the rest.
type StreamedResponse struct {
	Response // Content and Trailer are empty
	Body     io.Reader
	d        *decoder
	indet    bool
	body     *contentReader
}

// ReadResponse reads a response's head from r (either form) and returns
// it with a reader of its content. Header sections are bounded by lim;
// the content is not (bound it by what reads Body).
func ReadResponse(r io.Reader, lim Limits) (*StreamedResponse, error) {
	d := newDecoder(r, lim)
	f, err := d.varint("framing indicator")
	if err != nil {
		return nil, err
	}
	if f != framingKnownResponse && f != framingIndetResponse {
		return nil, d.bad("framing indicator %d is not a response's (1 or 3)", f)
	}
	sr := &StreamedResponse{d: d, indet: f == framingIndetResponse}
	for {
		s, err := d.varint("status code")
		if err != nil {
			return nil, err
		}
		if s >= 100 && s <= 199 {
			if len(sr.Informational) >= maxInformationalBlocks {
				return nil, fmt.Errorf("%w: more than %d informational responses", ErrTooLarge, maxInformationalBlocks)
			}
			fs, err := d.fields(sr.indet)
			if err != nil {
				return nil, err
			}
			if d.ended {
				return nil, d.bad("truncated after an informational response")
			}
			sr.Informational = append(sr.Informational, Informational{Status: int(s), Header: fs})
			continue
		}
		if err := checkStatus(int(min(s, 1000)), true); err != nil {
			return nil, err
		}
		sr.Status = int(s)
		break
	}
	if sr.Header, err = d.fields(sr.indet); err != nil {
		return nil, err
	}
	sr.body = newContentReader(d, sr.indet)
	sr.Body = sr.body
	return sr, nil
}

// Trailer reads the trailer section and checks the padding, after Body
// was read to its end.
func (sr *StreamedResponse) Trailer() ([]Field, error) {
	if !sr.body.eof {
		if _, err := io.Copy(io.Discard, sr.body); err != nil {
			return nil, err
		}
	}
	t, err := sr.d.fields(sr.indet)
	if err != nil {
		return nil, err
	}
	if err := sr.d.padding(); err != nil {
		return nil, err
	}
	return t, nil
}

// validToken reports whether s is an RFC 9110 §5.6.2 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validValue reports whether s is a field value (RFC 9110 §5.5): no
// control characters but horizontal tab, no DEL.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
