// Package rim reads NVIDIA's Reference Integrity Manifests for GPUs: a
// SWID tag (ISO/IEC 19770-2) with TCG RIM attributes, listing the golden
// SHA-384 value of each measurement index, signed with an enveloped
// XML-DSig (ECDSA P-384 / SHA-384) whose certificate chain, in KeyInfo,
// ends at NVIDIA's CoRIM signing root (embedded). There is a driver RIM
// per chip and driver version and a VBIOS RIM per board and VBIOS
// version, each named by its signed tag id; a GPU is held to exactly its
// two, which must cover every block it measures (MatchGPU). RIM index i is
// SPDM measurement block i+1.
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
	"crypto/sha512"
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

// Errors of MatchGPU, wrapped with what was wrong.
var (
	// ErrNotThisGPU: a RIM is neither the GPU's driver RIM nor its
	// board's VBIOS RIM.
	ErrNotThisGPU = errors.New("a RIM is not this GPU's")
	// ErrMissingRIM: the GPU's driver or VBIOS RIM is not among those
	// given (or is there twice).
	ErrMissingRIM = errors.New("a RIM of the GPU is missing")
	// ErrUncovered: a measurement block the GPU reports is covered by no
	// active index of its RIMs, so nothing says what it must be.
	ErrUncovered = errors.New("a measurement block no RIM covers")
	// ErrMismatch: a measurement block is not a golden value of its RIM,
	// or the RIMs overlap.
	ErrMismatch = errors.New("the GPU's measurements differ from its RIMs")
)

// GPU is what one GPU's signed evidence says about itself that its RIMs
// are held to: its chip (named by its device certificate), its driver and
// VBIOS versions and its board (project and project SKU), from the
// report's opaque data, and its measurement blocks.
type GPU struct {
	Chip       string
	Driver     string
	VBIOS      string
	Project    string
	ProjectSKU string
	Blocks     map[int][]byte
}

// GPUOf reads a GPU from its report and the chip its verified device
// certificate names (spdm.CertifiedChip).
func GPUOf(r *spdm.Report, chip string) GPU {
	return GPU{Chip: chip, Driver: r.DriverVersion(), VBIOS: r.VBIOSVersion(), Project: r.Project(), ProjectSKU: r.ProjectSKU(), Blocks: r.BlockMap()}
}

// NVIDIA names a RIM by a tag id, the lowercase hex SHA-384 of a name that
// says what the RIM is for: "GH100_550.144.03" for the GH100 driver
// 550.144.03, "GH100_P1010_SKU0200_96.00.5E.00.01" for the VBIOS
// 96.00.5E.00.01 of the board with project 1010 and project SKU 0200 (as
// the GPU's report states them; every RIM NVIDIA published with its
// samples follows this: TestNVIDIATagIDs). The tag id is
// inside what NVIDIA signs, so it binds a RIM to its chip, driver, board
// and VBIOS; the file name does not.
func tagID(name string) string {
	h := sha512.Sum384([]byte(name))
	return hex.EncodeToString(h[:])
}

// DriverName is the name the tag id of g's driver RIM hashes.
func (g GPU) DriverName() string { return g.Chip + "_" + g.Driver }

// VBIOSName is the name the tag id of g's board's VBIOS RIM hashes.
func (g GPU) VBIOSName() string {
	return g.Chip + "_P" + g.Project + "_SKU" + g.ProjectSKU + "_" + g.VBIOS
}

// Pick finds g's driver RIM and VBIOS RIM among rims. A RIM is g's driver
// RIM if its tag id is that of DriverName, its product g's chip and its
// version g's driver; its VBIOS RIM likewise with VBIOSName and g's
// VBIOS. Every RIM must be one of the two, and each of the two must be
// there exactly once: whoever staples RIMs does not choose which of the
// GPU's measurements are compared.
func Pick(g GPU, rims []*RIM) (driver, vbios *RIM, err error) {
	if g.Chip == "" {
		return nil, nil, fmt.Errorf("%w: the GPU's certificate names no chip, so no RIM can be its own", ErrNotThisGPU)
	}
	drv, vb := tagID(g.DriverName()), tagID(g.VBIOSName())
	for _, r := range rims {
		var slot **RIM
		switch {
		case r.TagID == drv && r.Product == g.Chip && r.Version == g.Driver:
			slot = &driver
		case r.TagID == vb && r.Product == g.Chip && r.Version == g.VBIOS:
			slot = &vbios
		case r.Version == g.VBIOS:
			return nil, nil, fmt.Errorf("%w: RIM %s %s (tag id %.16s…) is a VBIOS RIM of another board or chip: this GPU's is tagged SHA-384(%q)", ErrNotThisGPU, r.Product, r.Version, r.TagID, g.VBIOSName())
		case r.Version == g.Driver:
			return nil, nil, fmt.Errorf("%w: RIM %s %s (tag id %.16s…) is a driver RIM of another chip: this GPU's is tagged SHA-384(%q)", ErrNotThisGPU, r.Product, r.Version, r.TagID, g.DriverName())
		default:
			return nil, nil, fmt.Errorf("%w: RIM %s %s is neither the RIM of the GPU's driver (%s) nor that of its board's VBIOS (%s)", ErrNotThisGPU, r.Product, r.Version, g.DriverName(), g.VBIOSName())
		}
		if *slot != nil {
			return nil, nil, fmt.Errorf("%w: RIM %s %s is given twice", ErrMissingRIM, r.Product, r.Version)
		}
		*slot = r
	}
	switch {
	case driver == nil:
		return nil, nil, fmt.Errorf("%w: no driver RIM for %s (NVIDIA's NV_GPU_DRIVER_%s): without it the driver's measurement blocks would go unchecked", ErrMissingRIM, g.DriverName(), g.DriverName())
	case vbios == nil:
		return nil, nil, fmt.Errorf("%w: no VBIOS RIM for %s: without it the VBIOS's measurement blocks would go unchecked", ErrMissingRIM, g.VBIOSName())
	}
	return driver, vbios, nil
}

// MatchGPU holds g to its RIMs: Pick its driver and VBIOS RIMs, compare
// every active index of each with its block (Match), and require that
// every block g reports with a value other than zeros is covered by an
// active index (all-zero blocks are the slots NVIDIA's GPUs leave
// unmeasured). It returns how many blocks were compared.
func MatchGPU(g GPU, rims ...*RIM) (int, error) {
	driver, vbios, err := Pick(g, rims)
	if err != nil {
		return 0, err
	}
	done, err := Match(g.Blocks, driver, vbios)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	covered := map[int]bool{}
	for _, idx := range done {
		covered[idx+1] = true
	}
	var uncovered []int
	for b, v := range g.Blocks {
		if !covered[b] && !allZero(v) {
			uncovered = append(uncovered, b)
		}
	}
	if len(uncovered) > 0 {
		sort.Ints(uncovered)
		return 0, fmt.Errorf("%w: the GPU reports measurement block %s, which no active index of its driver RIM (%s) or VBIOS RIM (%s) covers: nothing says what it must be", ErrUncovered, joinInts(uncovered), driver.Version, vbios.Version)
	}
	return len(done), nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// CheckMeasurements is the "GPU measurements" check of g against the
// stapled, verified rims (MatchGPU).
func CheckMeasurements(g GPU, rims ...*RIM) check.Check {
	if len(rims) == 0 {
		return check.Fail(CheckName, "no RIM to compare the GPU's measurements with")
	}
	n, err := MatchGPU(g, rims...)
	if err != nil {
		return check.Fail(CheckName, "%v", err)
	}
	return check.Pass(CheckName, "%d active measurements equal the golden values of driver RIM %s and VBIOS RIM %s %s P%s SKU%s, and they cover every measured block", n, g.DriverName(), g.Chip, g.VBIOS, g.Project, g.ProjectSKU)
}

// CheckName names the GPU measurements check.
const CheckName = "GPU measurements"
