// Package statement defines attestlog's log entries: release, reproduction
// and revocation statements, each an in-toto Statement v1
// (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// in a DSSE envelope signed with an Ed25519 or ECDSA P-256 key.
//
// Every statement has exactly one encoding. [Parse] accepts only that
// encoding (unknown fields, non-canonical JSON, bad hex and wrong digest
// lengths are rejected with an error naming the field), so the same
// statement always yields the same payload bytes and a resubmission is
// recognisable as a duplicate by [Parsed.PayloadHash].
package statement

import (
	"reflect"

	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	jsonv2 "github.com/attestlog/attestlog/internal/jsonv2"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxEntrySize is the largest envelope, in bytes, that the log accepts
// (Tessera's entry size limit).
const MaxEntrySize = 64 << 10

// StatementType is the in-toto Statement v1 _type.
const StatementType = "https://in-toto.io/Statement/v1"

// Predicate types of the three statement kinds.
const (
	PredicateRelease      = "https://attestlog.dev/release/v1"
	PredicateReproduction = "https://attestlog.dev/reproduction/v1"
	PredicateRevocation   = "https://attestlog.dev/revocation/v1"
)

// Kind names a statement kind.
type Kind string

const (
	KindRelease      Kind = "release"
	KindReproduction Kind = "reproduction"
	KindRevocation   Kind = "revocation"
)

// Platforms.
const (
	PlatformSNP = "sev-snp"
	PlatformTDX = "tdx"
)

// ErrMalformed is wrapped by every parse and validation error.
var ErrMalformed = errors.New("malformed statement")

// FieldError is a validation error about one field of a statement.
type FieldError struct {
	Field string // JSON path, e.g. "predicate.measurements.snp.launch_digest"
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrMalformed }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Statement is an in-toto Statement v1 whose predicate is one of ours.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is an in-toto ResourceDescriptor restricted to name + digest.
type Subject struct {
	Name   string `json:"name"`
	Digest Digest `json:"digest"`
}

// Digest holds lowercase hex digests; at least one must be set.
type Digest struct {
	SHA256 string `json:"sha256,omitempty"`
	SHA384 string `json:"sha384,omitempty"`
	SHA512 string `json:"sha512,omitempty"`
}

// DigestAlgs are the digest algorithms a Digest carries, in the in-toto
// names, strongest last.
var DigestAlgs = []string{"sha256", "sha384", "sha512"}

// Get returns the hex digest for alg ("" if unset or unknown).
func (d Digest) Get(alg string) string {
	switch alg {
	case "sha256":
		return d.SHA256
	case "sha384":
		return d.SHA384
	case "sha512":
		return d.SHA512
	}
	return ""
}

// Set lists the digests that are set, as algorithm → hex.
func (d Digest) Set() map[string]string {
	m := map[string]string{}
	for _, alg := range DigestAlgs {
		if v := d.Get(alg); v != "" {
			m[alg] = v
		}
	}
	return m
}

// Release is the predicate of a release statement: an enclave image an
// operator deploys. The statement's subjects are its artifacts.
type Release struct {
	Version      string       `json:"version"`
	Time         time.Time    `json:"time"`
	Platform     string       `json:"platform"`
	Measurements Measurements `json:"measurements"`
	Source       Source       `json:"source"`
	Recipe       Recipe       `json:"recipe"`
	// Provenance is a Sigstore bundle (v0.3) carrying SLSA v1 provenance
	// for the artifacts, or absent.
	Provenance json.RawMessage `json:"provenance,omitempty"`
	// GPUs is what the enclave's GPUs must run, or absent for an enclave
	// without GPUs.
	GPUs *GPUs `json:"gpus,omitempty"`
}

// GPUs are a release's GPU requirements: which GPUs and how many, the
// driver and VBIOS versions accepted, and where their golden measurements
// are — NVIDIA RIMs named by their files' SHA-256, and/or the golden
// values themselves (by SPDM block index) for a GPU with no public RIM.
// Count is of distinct devices; RIMs are exactly the RIMs the GPUs use
// (each GPU staples only RIMs named here, every one named is stapled).
type GPUs struct {
	Vendor  string            `json:"vendor" yaml:"vendor"`
	Arch    string            `json:"arch" yaml:"arch"`
	Count   int               `json:"count" yaml:"count"`
	Drivers []string          `json:"drivers,omitempty" yaml:"drivers"`
	VBIOS   []string          `json:"vbios,omitempty" yaml:"vbios"`
	RIMs    []string          `json:"rims,omitempty" yaml:"rims"`
	Golden  map[string]string `json:"golden,omitempty" yaml:"golden"`
}

// Measurements are the launch measurements the hardware reports. Exactly
// one of SNP and TDX is set, matching the platform. All values are
// lowercase hex.
type Measurements struct {
	SNP *SNPMeasurements `json:"snp,omitempty"`
	TDX *TDXMeasurements `json:"tdx,omitempty"`
	// VTPM is for platforms azure-sev-snp and azure-tdx (required there,
	// beside snp or tdx: the paravisor's launch measurement).
	VTPM *VTPMMeasurements `json:"vtpm,omitempty"`
}

// SNPMeasurements are the AMD SEV-SNP attestation report fields a release
// fixes.
type SNPMeasurements struct {
	LaunchDigest string `json:"launch_digest" yaml:"launch_digest"`         // MEASUREMENT, 48 bytes
	GuestPolicy  string `json:"guest_policy,omitempty" yaml:"guest_policy"` // POLICY, 8 bytes big-endian hex
	FamilyID     string `json:"family_id,omitempty" yaml:"family_id"`       // 16 bytes
	ImageID      string `json:"image_id,omitempty" yaml:"image_id"`         // 16 bytes
	// FirmwareEndorsement, when "google", says the launch digest is
	// Google Cloud's firmware: a client trusts the release only with a
	// stapled Google launch endorsement of it that verifies to a policy
	// trust-root gce-tcb root (policy/attest).
	FirmwareEndorsement string `json:"firmware_endorsement,omitempty" yaml:"firmware_endorsement"`
}

// FirmwareEndorsedByGoogle is the FirmwareEndorsement value naming Google
// Cloud's signed launch endorsements.
const FirmwareEndorsedByGoogle = "google"

// TDXMeasurements are the Intel TDX TD report fields a release fixes.
type TDXMeasurements struct {
	MRTD       string `json:"mrtd" yaml:"mrtd"` // 48 bytes
	RTMR0      string `json:"rtmr0,omitempty" yaml:"rtmr0"`
	RTMR1      string `json:"rtmr1,omitempty" yaml:"rtmr1"`
	RTMR2      string `json:"rtmr2,omitempty" yaml:"rtmr2"`
	RTMR3      string `json:"rtmr3,omitempty" yaml:"rtmr3"`
	MRConfigID string `json:"mrconfigid,omitempty" yaml:"mrconfigid"`
	// FirmwareEndorsement, when "google", says MRTD is Google Cloud's
	// firmware (see SNPMeasurements.FirmwareEndorsement); the workload is
	// then named by the RTMRs.
	FirmwareEndorsement string `json:"firmware_endorsement,omitempty" yaml:"firmware_endorsement"`
}

// Values returns every measurement value set, for indexing.
func (m Measurements) Values() []string {
	var v []string
	add := func(s string) {
		if s != "" {
			v = append(v, s)
		}
	}
	if m.SNP != nil {
		add(m.SNP.LaunchDigest)
	}
	if m.TDX != nil {
		add(m.TDX.MRTD)
		add(m.TDX.RTMR0)
		add(m.TDX.RTMR1)
		add(m.TDX.RTMR2)
		add(m.TDX.RTMR3)
		add(m.TDX.MRConfigID)
	}
	if m.VTPM != nil {
		for _, i := range m.VTPM.Indices() {
			add(m.VTPM.PCRs[strconv.Itoa(i)])
		}
	}
	return v
}

// Primary returns the measurement that identifies the release: the SNP
// launch digest or the TDX MRTD.
func (m Measurements) Primary() string {
	switch {
	case m.SNP != nil:
		return m.SNP.LaunchDigest
	case m.TDX != nil:
		return m.TDX.MRTD
	}
	return ""
}

// Source is where the release was built from.
type Source struct {
	Repo   string `json:"repo" yaml:"repo"`
	Commit string `json:"commit" yaml:"commit"` // 40 or 64 hex characters
}

// Recipe is the build an auditor can replay: argv run in an empty
// directory holding the source at Source.Commit, with Env as the only
// environment, producing Outputs (paths relative to that directory).
type Recipe struct {
	Argv    []string          `json:"argv"`
	Env     map[string]string `json:"env,omitempty"`
	Outputs []string          `json:"outputs,omitempty"`
	Measure *MeasureInputs    `json:"measure,omitempty"`
}

// MeasureInputs says which outputs, and which launch settings, make the
// measurement. Firmware, Kernel and Initrd name entries of Recipe.Outputs.
type MeasureInputs struct {
	Firmware string `json:"firmware,omitempty" yaml:"firmware"`
	Kernel   string `json:"kernel,omitempty" yaml:"kernel"`
	Initrd   string `json:"initrd,omitempty" yaml:"initrd"`
	Cmdline  string `json:"cmdline,omitempty" yaml:"cmdline"`
	VCPUs    int    `json:"vcpus,omitempty" yaml:"vcpus"`
	VCPUType string `json:"vcpu_type,omitempty" yaml:"vcpu_type"`
	VMMType  string `json:"vmm_type,omitempty" yaml:"vmm_type"`
	// GuestFeatures is the SEV features word, hex with 0x prefix.
	GuestFeatures string `json:"guest_features,omitempty" yaml:"guest_features"`
	// OVMFHash is the precomputed OVMF page hash (48 bytes hex) when the
	// firmware output is only a suffix.
	OVMFHash string `json:"ovmf_hash,omitempty" yaml:"ovmf_hash"`
	// Memory is the guest RAM as QEMU's -m takes it (e.g. "4G"): a TDX
	// direct boot with an initrd measures the initrd's load address,
	// which QEMU derives from it, into RTMR1.
	Memory string `json:"memory,omitempty" yaml:"memory"`
}

// Reproduction is the predicate of a reproduction statement: an auditor
// rebuilt the release that is the statement's single subject.
type Reproduction struct {
	Outcome      string       `json:"outcome"` // OutcomeMatch or OutcomeMismatch
	Time         time.Time    `json:"time"`
	Measurements Measurements `json:"measurements"`
	Detail       string       `json:"detail,omitempty"`
	// Unsandboxed says the auditor rebuilt without a sandbox
	// (rebuild.sandbox: off): the recipe ran on its host, so whatever the
	// recipe is could have changed the result. Clients' "reproductions N"
	// does not count it unless their policy says
	// allow-unsandboxed-reproductions.
	Unsandboxed bool `json:"unsandboxed,omitempty"`
}

// Reproduction outcomes.
const (
	OutcomeMatch    = "match"
	OutcomeMismatch = "mismatch"
)

// Revocation is the predicate of a revocation statement: the release that
// is the statement's single subject must no longer be trusted.
type Revocation struct {
	Reason   string    `json:"reason"`
	Advisory string    `json:"advisory,omitempty"`
	Time     time.Time `json:"time"`
}

// EntryRef names a log entry: the subject of reproductions and revocations.
// Its subject name is "entry/INDEX" and its digest the SHA-256 of the
// entry's bytes as logged.
type EntryRef struct {
	Index  uint64
	SHA256 string
}

// Subject returns r as an in-toto subject.
func (r EntryRef) Subject() Subject {
	return Subject{Name: fmt.Sprintf("entry/%d", r.Index), Digest: Digest{SHA256: r.SHA256}}
}

// RefOf returns the reference to the entry data logged at index.
func RefOf(index uint64, entry []byte) EntryRef {
	h := sha256.Sum256(entry)
	return EntryRef{Index: index, SHA256: fmt.Sprintf("%x", h)}
}

// Parsed is a statement that passed [Parse]: well formed and canonical.
// Its signature has not been checked against any policy.
type Parsed struct {
	// Envelope is the DSSE envelope of a key-signed statement; nil for a
	// keyless one, whose Sigstore bundle is Bundle.
	Envelope *Envelope
	Bundle   []byte
	// KeylessSigner is the policy name of the keyless operator that
	// signed Bundle, once verified (set by the verifier, not by parsing).
	KeylessSigner string
	Statement     Statement
	Kind          Kind

	Release      *Release      // set for KindRelease
	Reproduction *Reproduction // set for KindReproduction
	Revocation   *Revocation   // set for KindRevocation
	// IndexCheckpoint is set for KindIndexCheckpoint, an entry the log
	// appends itself (its signature is the log's: VerifyIndexCheckpoint).
	IndexCheckpoint *IndexCheckpoint
	Ref             EntryRef // the subject, for reproductions and revocations

	// PayloadHash is the SHA-256 of the statement payload: the identity
	// of the statement whatever signed it.
	PayloadHash [32]byte
}

// Entry returns the bytes the log stores: the canonical envelope, or the
// canonical encoding of a keyless statement's Sigstore bundle (see
// ParseEntry). Either parses back with ParseEntry to the same statement.
func (p *Parsed) Entry() ([]byte, error) {
	if p.Envelope == nil {
		return p.Bundle, nil
	}
	return p.Envelope.Marshal()
}

// Parse strictly parses a DSSE envelope carrying one of our statements.
// Errors wrap ErrMalformed and name the offending field.
func Parse(b []byte) (*Parsed, error) {
	env, h, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	return ParseEnvelope(env, h)
}

// DecodeEnvelope is Parse's first half: it strictly decodes and checks
// the DSSE envelope b (its type, its signatures' count and sizes), not
// its payload, and returns it with the SHA-256 of its payload (the
// statement's PayloadHash). Admission looks that hash up before it
// parses the payload; ParseEnvelope finishes the parse.
func DecodeEnvelope(b []byte) (*Envelope, [32]byte, error) {
	if len(b) > MaxEntrySize {
		return nil, [32]byte{}, fmt.Errorf("%w: envelope is %d bytes, the limit is %d", ErrMalformed, len(b), MaxEntrySize)
	}
	env := new(Envelope)
	if err := decodeStrict(b, env, "envelope"); err != nil {
		return nil, [32]byte{}, err
	}
	if env.PayloadType != PayloadType {
		return nil, [32]byte{}, fieldErr("payloadType", "must be %q, got %q", PayloadType, env.PayloadType)
	}
	if len(env.Signatures) == 0 {
		return nil, [32]byte{}, fieldErr("signatures", "at least one signature is required")
	}
	if len(env.Signatures) > 8 {
		return nil, [32]byte{}, fieldErr("signatures", "at most 8 signatures are allowed, got %d", len(env.Signatures))
	}
	for i, s := range env.Signatures {
		if len(s.Sig) == 0 || len(s.Sig) > 512 {
			return nil, [32]byte{}, fieldErr(fmt.Sprintf("signatures[%d].sig", i), "must be 1 to 512 bytes, got %d", len(s.Sig))
		}
		if len(s.KeyID) > 128 {
			return nil, [32]byte{}, fieldErr(fmt.Sprintf("signatures[%d].keyid", i), "longer than 128 characters")
		}
	}
	return env, sha256.Sum256(env.Payload), nil
}

// ParseEnvelope is Parse's second half: it strictly parses and validates
// the payload of env, an envelope DecodeEnvelope returned with h, its
// payload's SHA-256 (not computed again).
func ParseEnvelope(env *Envelope, h [32]byte) (*Parsed, error) {
	p, err := parseStatement(env.Payload, h)
	if err != nil {
		return nil, err
	}
	p.Envelope = env
	return p, nil
}

// ParseStatement strictly parses and validates an in-toto statement
// payload, requiring it to be in canonical form.
func ParseStatement(payload []byte) (*Parsed, error) {
	return parseStatement(payload, sha256.Sum256(payload))
}

// parseStatement is ParseStatement of payload whose SHA-256 is h.
func parseStatement(payload []byte, h [32]byte) (*Parsed, error) {
	p := &Parsed{PayloadHash: h}
	in := statementIn{p: p}
	in.Predicate.in = &in
	if err := decodeStrict(payload, &in, "payload"); err != nil {
		return nil, err
	}
	if in.Type != StatementType {
		return nil, fieldErr("payload._type", "must be %q, got %q", StatementType, in.Type)
	}
	p.Statement = Statement{Type: in.Type, Subject: in.Subject, PredicateType: in.PredicateType}
	pred, err := p.choosePredicate(in.PredicateType)
	if err != nil {
		return nil, err
	}
	switch {
	case in.Predicate.decoded:
		// Decoded in the same pass: predicateType came first, as in
		// canonical form.
	case in.Predicate.raw == nil:
		return nil, fieldErr("payload.predicate", "missing")
	default:
		// predicateType came after the predicate; the payload cannot be
		// canonical, but decode it for the more useful error.
		if err := decodeStrict(in.Predicate.raw, pred, "payload.predicate"); err != nil {
			return nil, err
		}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if ok, err := p.isCanonical(payload); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: payload is not in canonical form (sign statements with 'attestlog publish' or statement.Encode)", ErrMalformed)
	}
	return p, nil
}

// statementIn is what ParseStatement decodes: a Statement whose predicate
// is decoded straight into its typed value when predicateType precedes it.
type statementIn struct {
	p             *Parsed
	Type          string      `json:"_type"`
	Subject       []Subject   `json:"subject"`
	PredicateType string      `json:"predicateType"`
	Predicate     predicateIn `json:"predicate"`
}

type predicateIn struct {
	in      *statementIn
	decoded bool         // decoded into in.p's typed predicate
	raw     jsonv2.Value // kept for later when predicateType was not yet known
}

func (pi *predicateIn) UnmarshalJSONFrom(dec *jsonv2.Decoder) error {
	if pi.in.PredicateType != "" {
		if pred, err := pi.in.p.choosePredicate(pi.in.PredicateType); err == nil {
			pi.decoded = true
			return jsonv2.UnmarshalDecode(dec, pred)
		}
	}
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	pi.raw = v.Clone()
	return nil
}

// choosePredicate sets p's kind from a predicate type and returns the value
// to decode the predicate into (the same one on every call).
func (p *Parsed) choosePredicate(predicateType string) (any, error) {
	switch predicateType {
	case PredicateRelease:
		if p.Release == nil {
			p.Kind, p.Release = KindRelease, new(Release)
		}
		return p.Release, nil
	case PredicateReproduction:
		if p.Reproduction == nil {
			p.Kind, p.Reproduction = KindReproduction, new(Reproduction)
		}
		return p.Reproduction, nil
	case PredicateRevocation:
		if p.Revocation == nil {
			p.Kind, p.Revocation = KindRevocation, new(Revocation)
		}
		return p.Revocation, nil
	}
	return nil, fieldErr("payload.predicateType", "unknown predicate type %q (want %s, %s or %s)", predicateType, PredicateRelease, PredicateReproduction, PredicateRevocation)
}

// isCanonical reports whether payload is the canonical encoding of p.
func (p *Parsed) isCanonical(payload []byte) (bool, error) {
	b := encPool.Get().(*bytes.Buffer)
	defer encPool.Put(b)
	b.Reset()
	if err := appendEncoded(b, p.Statement.Subject, p.Statement.PredicateType, p.predicate()); err != nil {
		return false, err
	}
	return bytes.Equal(b.Bytes(), payload), nil
}

func (p *Parsed) predicate() any {
	switch p.Kind {
	case KindRelease:
		return p.Release
	case KindReproduction:
		return p.Reproduction
	case KindRevocation:
		return p.Revocation
	}
	return nil
}

// encPool holds buffers for canonical encodings; admission re-encodes
// every submission to check its form.
var encPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode returns the canonical encoding of a statement.
func encode(subject []Subject, predicateType string, pred any) ([]byte, error) {
	var b bytes.Buffer
	if err := appendEncoded(&b, subject, predicateType, pred); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// appendEncoded writes the canonical encoding of a statement to b: the
// Statement struct's encoding/json encoding (no HTML escaping), written
// out field by field so that the predicate is not re-compacted as a
// json.RawMessage would be.
func appendEncoded(b *bytes.Buffer, subject []Subject, predicateType string, pred any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	for _, part := range []struct {
		prefix string
		v      any
	}{{`{"_type":`, StatementType}, {`,"subject":`, subject}, {`,"predicateType":`, predicateType}, {`,"predicate":`, pred}} {
		b.WriteString(part.prefix)
		if err := enc.Encode(part.v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	b.WriteByte('}')
	return nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields, duplicate names, invalid UTF-8 and trailing data, and turns the
// decoder's errors into ones that name the field. It uses the
// encoding/json/v2 implementation (github.com/go-json-experiment/json),
// several times faster than encoding/json on our statements and strict by
// default.
func decodeStrict(b []byte, v any, where string) error {
	err := jsonv2.Unmarshal(b, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var se *jsonv2.SemanticError
	var sx *jsonv2.SyntacticError
	switch {
	case errors.As(err, &se):
		field := where + strings.ReplaceAll(string(se.JSONPointer), "/", ".")
		if errors.Is(se.Err, jsonv2.ErrUnknownName) {
			return fieldErr(field, "unknown field")
		}
		if se.Err == nil && se.GoType != nil {
			return fieldErr(field, "must be a JSON %s, got %s", jsonKind(se.GoType.Kind()), kindName(se.JSONKind))
		}
		return fieldErr(field, "%v", se.Err)
	case errors.As(err, &sx):
		if errors.Is(sx.Err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s: truncated or empty JSON", ErrMalformed, where)
		}
		return fmt.Errorf("%w: %s: invalid JSON at byte %d: %v", ErrMalformed, where, sx.ByteOffset, sx.Err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s: truncated or empty JSON", ErrMalformed, where)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformed, where, err)
}

func kindName(k jsonv2.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "a value of another type"
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array (or base64 string)"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	}
	return "number"
}

// Encode returns the canonical payload of a release with the given
// artifacts as subjects.
func EncodeRelease(artifacts []Subject, r *Release) ([]byte, error) {
	return encodeChecked(artifacts, PredicateRelease, r)
}

// EncodeReproduction returns the canonical payload of a reproduction of the
// release ref.
func EncodeReproduction(ref EntryRef, r *Reproduction) ([]byte, error) {
	return encodeChecked([]Subject{ref.Subject()}, PredicateReproduction, r)
}

// EncodeRevocation returns the canonical payload of a revocation of the
// release ref.
func EncodeRevocation(ref EntryRef, r *Revocation) ([]byte, error) {
	return encodeChecked([]Subject{ref.Subject()}, PredicateRevocation, r)
}

// encodeChecked validates the statement as Parse would and encodes it,
// so that nothing is signed that the log would reject as malformed.
func encodeChecked(subject []Subject, predicateType string, pred any) ([]byte, error) {
	p := &Parsed{Statement: Statement{Type: StatementType, Subject: subject, PredicateType: predicateType}}
	switch v := pred.(type) {
	case *Release:
		p.Kind, p.Release = KindRelease, v
	case *Reproduction:
		p.Kind, p.Reproduction = KindReproduction, v
	case *Revocation:
		p.Kind, p.Revocation = KindRevocation, v
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return encode(subject, predicateType, pred)
}

// Sign encodes payload in a signed envelope and returns the entry bytes.
func Sign(payload []byte, s *Signer, more ...*Signer) ([]byte, error) {
	env, err := SignEnvelope(payload, s)
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		sig, err := m.Sign(PAE(PayloadType, payload))
		if err != nil {
			return nil, fmt.Errorf("signing envelope: %w", err)
		}
		env.Signatures = append(env.Signatures, Signature{KeyID: m.Public().ID(), Sig: sig})
	}
	return env.Marshal()
}
