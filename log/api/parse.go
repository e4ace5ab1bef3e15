package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxResponseSize bounds a JSON answer of the log API a client decodes.
const MaxResponseSize = 8 << 20

// MaxLookupEntries bounds the entries of one /lookup answer a client
// accepts.
const MaxLookupEntries = 100000

// ErrBadResponse: a log's answer is not a well-formed API response.
var ErrBadResponse = errors.New("malformed log API response")

// Kinds an EntryInfo may have.
var kinds = map[string]bool{"release": true, "reproduction": true, "revocation": true, "unreadable": true, "index-checkpoint": true}

// ParseAddResponse decodes the body of a POST /add answer.
func ParseAddResponse(b []byte) (*AddResponse, error) {
	var r AddResponse
	if err := decode(b, &r); err != nil {
		return nil, fmt.Errorf("bad /add response: %w", err)
	}
	return &r, nil
}

// ParseEntryInfo decodes the body of a GET /entry/N answer. The log's index
// is not authenticated: a caller that acts on it checks what it says
// against the entries themselves (their inclusion proofs).
func ParseEntryInfo(b []byte) (*EntryInfo, error) {
	var r EntryInfo
	if err := decode(b, &r); err != nil {
		return nil, fmt.Errorf("bad /entry response: %w", err)
	}
	if err := r.check("entry", 0); err != nil {
		return nil, fmt.Errorf("bad /entry response: %w", err)
	}
	return &r, nil
}

// ParseLookupResponse decodes the body of a GET /lookup answer (see
// ParseEntryInfo on trusting it).
func ParseLookupResponse(b []byte) (*LookupResponse, error) {
	var r LookupResponse
	if err := decode(b, &r); err != nil {
		return nil, fmt.Errorf("bad /lookup response: %w", err)
	}
	if len(r.Entries) > MaxLookupEntries {
		return nil, fmt.Errorf("bad /lookup response: %w: %d entries, at most %d are accepted", ErrBadResponse, len(r.Entries), MaxLookupEntries)
	}
	if r.IndexProof != "" && !strings.HasPrefix(r.IndexProof, "attestlog.dev/vindex-proof/v2\n") {
		return nil, fmt.Errorf("bad /lookup response: %w: index_proof is not an attestlog.dev/vindex-proof/v2", ErrBadResponse)
	}
	for i := range r.Entries {
		if err := r.Entries[i].check(fmt.Sprintf("entries[%d]", i), 0); err != nil {
			return nil, fmt.Errorf("bad /lookup response: %w", err)
		}
	}
	return &r, nil
}

func decode(b []byte, v any) error {
	if len(b) > MaxResponseSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadResponse, len(b), MaxResponseSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the JSON value", ErrBadResponse)
	}
	return nil
}

// check validates what the client code relies on: a known kind, and the
// nesting of a release's reproductions and revocations (one level).
func (e *EntryInfo) check(where string, depth int) error {
	if !kinds[e.Kind] {
		return fmt.Errorf("%w: %s: unknown kind %.40q", ErrBadResponse, where, e.Kind)
	}
	if e.Index >= 1<<63 {
		return fmt.Errorf("%w: %s: index %d out of range", ErrBadResponse, where, e.Index)
	}
	if depth > 0 && (len(e.Reproductions) > 0 || len(e.Revocations) > 0) {
		return fmt.Errorf("%w: %s: nested reproductions or revocations", ErrBadResponse, where)
	}
	for i := range e.Reproductions {
		if err := e.Reproductions[i].check(fmt.Sprintf("%s.reproductions[%d]", where, i), depth+1); err != nil {
			return err
		}
	}
	for i := range e.Revocations {
		if err := e.Revocations[i].check(fmt.Sprintf("%s.revocations[%d]", where, i), depth+1); err != nil {
			return err
		}
	}
	return nil
}
