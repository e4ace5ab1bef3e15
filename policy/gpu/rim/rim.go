// Package rim reads NVIDIA's Reference Integrity Manifests for GPUs: a
// SWID tag (ISO/IEC 19770-2) with TCG RIM attributes, listing the golden
// SHA-384 value of each measurement index, signed with an enveloped
// XML-DSig (ECDSA P-384 / SHA-384) whose certificate chain, in KeyInfo,
// ends at NVIDIA's CoRIM signing root (embedded). There is a driver RIM
// and a VBIOS RIM per board; RIM index i is SPDM measurement block i+1.
//
// The XML signature is checked with github.com/russellhaering/goxmldsig
// (exclusive canonicalisation, reference digests): it is the maintained
// Go XML-DSig implementation, and XML canonicalisation is not something
// to write again. NVIDIA writes SignatureValue as raw r‖s, which Go's
// x509 expects in ASN.1: it is converted before validation (it is not
// itself signed).
package rim

import (
	"bytes"
	_ "embed"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"crypto/x509"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// MaxSize bounds a RIM (NVIDIA's are about 21 KiB).
const MaxSize = 1 << 20

// ErrMalformed is wrapped by Parse errors.
var ErrMalformed = errors.New("malformed RIM")

// Measurement is one measurement index of a RIM.
type Measurement struct {
	Index  int
	Name   string
	Active bool
	// Golden are the accepted values (alternatives), SHA-384.
	Golden [][]byte
}

// RIM is a parsed manifest (not yet verified).
type RIM struct {
	TagID        string
	Product      string // e.g. GH100
	Version      string // colloquialVersion: the driver or VBIOS version
	Edition      string // e.g. GPU
	Measurements []Measurement
}

// Active returns the active measurements by index.
func (r *RIM) Active() map[int]Measurement {
	out := map[int]Measurement{}
	for _, m := range r.Measurements {
		if m.Active {
			out[m.Index] = m
		}
	}
	return out
}

// Parse reads a RIM's SWID tag strictly enough to use it: one
// SoftwareIdentity with a Meta and a Payload of Measurement resources,
// each with an index, active flag and Hash0..HashN hex SHA-384 values.
func Parse(b []byte) (*RIM, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrMalformed}, a...)...) }
	if len(b) > MaxSize {
		return nil, bad("%d bytes, the limit is %d", len(b), MaxSize)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, bad("%v", err)
	}
	return parseDoc(doc)
}

// parseDoc is Parse of a read document.
func parseDoc(doc *etree.Document) (*RIM, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrMalformed}, a...)...) }
	root := doc.Root()
	if root == nil || root.Tag != "SoftwareIdentity" {
		return nil, bad("not a SWID SoftwareIdentity")
	}
	r := &RIM{TagID: root.SelectAttrValue("tagId", "")}
	meta := child(root, "Meta")
	if meta == nil {
		return nil, bad("no Meta")
	}
	r.Product, r.Version, r.Edition = meta.SelectAttrValue("product", ""), meta.SelectAttrValue("colloquialVersion", ""), meta.SelectAttrValue("edition", "")
	payload := child(root, "Payload")
	if payload == nil {
		return nil, bad("no Payload")
	}
	seen := map[int]bool{}
	for _, res := range payload.ChildElements() {
		if res.Tag != "Resource" || res.SelectAttrValue("type", "") != "Measurement" {
			continue
		}
		idx, err := strconv.Atoi(res.SelectAttrValue("index", ""))
		if err != nil || idx < 0 || idx > 254 || seen[idx] {
			return nil, bad("measurement index %q", res.SelectAttrValue("index", ""))
		}
		seen[idx] = true
		m := Measurement{Index: idx, Name: res.SelectAttrValue("name", ""), Active: strings.EqualFold(res.SelectAttrValue("active", ""), "true")}
		alts, _ := strconv.Atoi(res.SelectAttrValue("alternatives", "1"))
		if alts < 1 || alts > 16 {
			return nil, bad("measurement %d: %d alternatives", idx, alts)
		}
		for i := range alts {
			var v string
			for _, a := range res.Attr {
				if a.Key == fmt.Sprintf("Hash%d", i) {
					v = a.Value
				}
			}
			h, err := hex.DecodeString(v)
			if err != nil || len(h) != 48 {
				return nil, bad("measurement %d: Hash%d is not 48 bytes of hex", idx, i)
			}
			m.Golden = append(m.Golden, h)
		}
		r.Measurements = append(r.Measurements, m)
	}
	if len(r.Measurements) == 0 {
		return nil, bad("no measurements")
	}
	sort.Slice(r.Measurements, func(i, j int) bool { return r.Measurements[i].Index < r.Measurements[j].Index })
	return r, nil
}

func child(e *etree.Element, tag string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

//go:embed nvidia_rim_root.pem
var rimRootPEM []byte

// Roots is NVIDIA's CoRIM signing root.
func Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(rimRootPEM)
	return p
}

// Verify checks a RIM's XML signature as of at: its KeyInfo chain
// verifies to roots, and the leaf signed the document. It returns the
// parsed RIM and the verified signing path, signer first and root last.
func Verify(b []byte, roots *x509.CertPool, at time.Time) (*RIM, []*x509.Certificate, error) {
	if len(b) > MaxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(b), MaxSize)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if doc.Root() == nil {
		return nil, nil, fmt.Errorf("%w: no document element", ErrMalformed)
	}
	sig := child(doc.Root(), "Signature")
	if sig == nil {
		return nil, nil, errors.New("RIM is not signed")
	}
	var chain []*x509.Certificate
	for _, c := range sig.FindElements(".//X509Certificate") {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), ""))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: KeyInfo certificate is not base64", ErrMalformed)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: KeyInfo certificate: %v", ErrMalformed, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("RIM signature has no certificate")
	}
	path, err := spdm.VerifyPath(chain, roots, at)
	if err != nil {
		return nil, nil, fmt.Errorf("RIM signing certificate: %v", err)
	}
	// Raw r‖s to ASN.1, as Go's x509 verifies ECDSA.
	sv := child(sig, "SignatureValue")
	if sv == nil {
		return nil, nil, fmt.Errorf("%w: no SignatureValue", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), ""))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SignatureValue is not base64", ErrMalformed)
	}
	if len(raw) == 96 {
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:48]), new(big.Int).SetBytes(raw[48:])})
		sv.SetText(base64.StdEncoding.EncodeToString(der))
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{chain[0]}})
	ctx.Clock = dsig.NewFakeClockAt(at)
	signed, err := ctx.Validate(doc.Root())
	if err != nil {
		return nil, nil, fmt.Errorf("RIM signature: %v", err)
	}
	// Read the golden values from what the signature covers, as
	// goxmldsig returns it, never from the document around it.
	sd := etree.NewDocument()
	sd.SetRoot(signed)
	r, err := parseDoc(sd)
	if err != nil {
		return nil, nil, err
	}
	return r, path, nil
}

// Match compares a GPU's measurement blocks (block i+1 is RIM index i)
// with the active measurements of rims, whose active indices must not
// overlap. It returns the indices compared, or the first mismatch.
func Match(blocks map[int][]byte, rims ...*RIM) ([]int, error) {
	owner := map[int]*RIM{}
	for _, r := range rims {
		for idx := range r.Active() {
			if o := owner[idx]; o != nil {
				return nil, fmt.Errorf("measurement index %d is active in both %s %s and %s %s", idx, o.Product, o.Version, r.Product, r.Version)
			}
			owner[idx] = r
		}
	}
	var done []int
	for idx, r := range owner {
		m := r.Active()[idx]
		got, ok := blocks[idx+1]
		if !ok {
			return nil, fmt.Errorf("the GPU reports no measurement block %d (RIM %s index %d)", idx+1, r.Version, idx)
		}
		matched := false
		for _, g := range m.Golden {
			matched = matched || bytes.Equal(g, got)
		}
		if !matched {
			return nil, fmt.Errorf("measurement block %d is %x, not a golden value of RIM %s %s index %d (%s)", idx+1, got[:8], r.Product, r.Version, idx, m.Name)
		}
		done = append(done, idx)
	}
	sort.Ints(done)
	return done, nil
}

// Summary is what `attestlog measure gpu` prints for a verified RIM: what
// a release's GPU section names.
type Summary struct {
	File    string `json:"file"`
	SHA256  string `json:"sha256"` // of the RIM file: how a release names it
	Product string `json:"product"`
	Version string `json:"version"`
	Signer  string `json:"signer"`
	// Golden maps each active SPDM block (RIM index + 1) to its accepted
	// values.
	Golden map[int][]string `json:"golden"`
}

// Summarize describes r, read from file with the given SHA-256.
func Summarize(file, sha256Hex string, r *RIM, signer *x509.Certificate) Summary {
	s := Summary{File: file, SHA256: sha256Hex, Product: r.Product, Version: r.Version, Golden: map[int][]string{}}
	if signer != nil {
		s.Signer = signer.Subject.CommonName
	}
	for idx, m := range r.Active() {
		for _, g := range m.Golden {
			s.Golden[idx+1] = append(s.Golden[idx+1], hex.EncodeToString(g))
		}
	}
	return s
}

// WriteText writes the summary: a header line, then "block N HEX" per
// active measurement, ascending.
func (s Summary) WriteText(w interface{ Write([]byte) (int, error) }) error {
	if _, err := fmt.Fprintf(w, "rim %s sha256:%s %s %s (signed by %s)\n", s.File, s.SHA256, s.Product, s.Version, s.Signer); err != nil {
		return err
	}
	var blocks []int
	for b := range s.Golden {
		blocks = append(blocks, b)
	}
	sort.Ints(blocks)
	for _, b := range blocks {
		fmt.Fprintf(w, "block %d %s\n", b, strings.Join(s.Golden[b], " | "))
	}
	return nil
}

// CheckMeasurements is the "GPU measurements" check: blocks against the
// active measurements of rims (Match), and each RIM's version against the
// version the GPU reports for it (driver RIMs against driver, VBIOS RIMs
// against VBIOS).
func CheckMeasurements(blocks map[int][]byte, driver, vbios string, rims ...*RIM) check.Check {
	if len(rims) == 0 {
		return check.Fail(CheckName, "no RIM to compare the GPU's measurements with")
	}
	for _, r := range rims {
		if r.Version != driver && r.Version != vbios {
			return check.Fail(CheckName, "RIM %s %s is for neither the GPU's driver %s nor its VBIOS %s", r.Product, r.Version, driver, vbios)
		}
	}
	done, err := Match(blocks, rims...)
	if err != nil {
		return check.Fail(CheckName, "%v", err)
	}
	var names []string
	for _, r := range rims {
		names = append(names, r.Product+" "+r.Version)
	}
	return check.Pass(CheckName, "%d active measurements equal the golden values of %s", len(done), strings.Join(names, " and "))
}

// CheckName names the GPU measurements check.
const CheckName = "GPU measurements"
