// Package policy is attestlog's trust policy: which logs and witnesses a
// verifier trusts and with what quorum (the c2sp.org/tlog-policy lines),
// which operators may publish releases, which auditors may publish
// reproductions and which authorities may revoke, plus the attestation
// requirements (platforms, TCB floors, guest policy, reproductions,
// freshness) that later sections of the file add.
//
// The text format is line based; '#' starts a comment:
//
//	log <vkey> [<url>]                    # the log's note verifier key; origin = key name
//	witness <name> <vkey> [<url>]         # a cosignature/v1 witness key
//	group <name> <k>|any|all <member>...  # k of the members (witnesses or groups)
//	quorum <name>|none                    # the group (or witness) that must cosign
//	operator <name> <pubkey>              # may publish releases, revoke its own
//	auditor <name> <pubkey>               # may publish reproductions
//	authority <name> <pubkey>             # may revoke any release
//
// pubkey is "ed25519:BASE64" or "ecdsa-p256:BASE64" (see statement.PublicKey).
// Parse errors name the line. The grammar of every section is specified in
// docs/spec/policy.md (TestPolicySpec holds this package to it).
package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
)

// MaxSize is the largest policy file accepted.
const MaxSize = 1 << 20

// Policy is a parsed trust policy.
type Policy struct {
	Logs        []*Log
	Witnesses   []*Witness
	Quorum      Quorum // nil when the file has no quorum line
	Operators   []Principal
	Auditors    []Principal
	Authorities []Principal

	// Attestation holds the requirements on evidence; see attestation.go.
	Attestation AttestationPolicy
	Provenance  ProvenancePolicy // build provenance and keyless operators; see provenance.go

	names map[string]any // witnesses and groups by name
}

// Log is a log the policy trusts.
type Log struct {
	Origin   string
	VKey     string
	Verifier note.Verifier
	URL      string // may be empty
}

// Witness is a witness named in the policy.
type Witness struct {
	Name     string
	VKey     string
	Verifier note.Verifier // cosignature/v1
	URL      string        // may be empty (clients need no URL)
}

// Principal is a named statement signer.
type Principal struct {
	Name string
	Key  statement.PublicKey
}

// LineError is a parse error at a line of a policy file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}
func (e *LineError) Unwrap() error { return e.Err }

// Directive parses the fields of one policy line starting with its keyword.
// Sections of the policy defined in other files register theirs with
// registerDirective.
type Directive func(p *Policy, fields []string) error

var directives = map[string]Directive{}

func registerDirective(keyword string, d Directive) {
	if _, dup := directives[keyword]; dup {
		panic("policy: duplicate directive " + keyword)
	}
	directives[keyword] = d
}

func init() {
	registerDirective("log", parseLog)
	registerDirective("witness", parseWitness)
	registerDirective("group", parseGroup)
	registerDirective("quorum", parseQuorum)
	registerDirective("operator", principal(func(p *Policy) *[]Principal { return &p.Operators }))
	registerDirective("auditor", principal(func(p *Policy) *[]Principal { return &p.Auditors }))
	registerDirective("authority", principal(func(p *Policy) *[]Principal { return &p.Authorities }))
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(b)
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			le.File = path
			return nil, le
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Provenance.resolvePaths(path)
	return p, nil
}

// Parse parses a policy.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("policy is %d bytes; the limit is %d", len(b), MaxSize)
	}
	p := &Policy{names: map[string]any{}}
	p.Attestation = defaultAttestation()
	p.Provenance = defaultProvenance()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), MaxSize)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		d, ok := directives[fields[0]]
		if !ok {
			return nil, &LineError{Line: n, Err: fmt.Errorf("unknown keyword %q", fields[0])}
		}
		if err := d(p, fields); err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{Line: n + 1, Err: err}
	}
	return p, nil
}

func parseLog(p *Policy, f []string) error {
	if len(f) != 2 && len(f) != 3 {
		return errors.New("want: log <vkey> [<url>]")
	}
	v, err := note.NewVerifier(f[1])
	if err != nil {
		return fmt.Errorf("log key: %v", err)
	}
	for _, l := range p.Logs {
		if l.Origin == v.Name() {
			return fmt.Errorf("log %q listed twice", v.Name())
		}
	}
	l := &Log{Origin: v.Name(), VKey: f[1], Verifier: v}
	if len(f) == 3 {
		if err := checkURL(f[2]); err != nil {
			return err
		}
		l.URL = f[2]
	}
	p.Logs = append(p.Logs, l)
	return nil
}

func parseWitness(p *Policy, f []string) error {
	if len(f) != 3 && len(f) != 4 {
		return errors.New("want: witness <name> <vkey> [<url>]")
	}
	if err := p.checkNewName(f[1]); err != nil {
		return err
	}
	v, err := fnote.NewVerifierForCosignatureV1(f[2])
	if err != nil {
		return fmt.Errorf("witness %s: key is not a cosignature/v1 verifier key: %v", f[1], err)
	}
	w := &Witness{Name: f[1], VKey: f[2], Verifier: v}
	if len(f) == 4 {
		if err := checkURL(f[3]); err != nil {
			return err
		}
		w.URL = f[3]
	}
	p.Witnesses = append(p.Witnesses, w)
	p.names[w.Name] = w
	return nil
}

func parseGroup(p *Policy, f []string) error {
	if len(f) < 4 {
		return errors.New("want: group <name> <k>|any|all <member>...")
	}
	if err := p.checkNewName(f[1]); err != nil {
		return err
	}
	members := f[3:]
	var k int
	switch f[2] {
	case "any":
		k = 1
	case "all":
		k = len(members)
	default:
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 {
			return fmt.Errorf("threshold %q: want a positive number, any or all", f[2])
		}
		k = n
	}
	if k > len(members) {
		return fmt.Errorf("group %s: threshold %d is more than its %d members", f[1], k, len(members))
	}
	g := &group{name: f[1], k: k}
	seen := map[string]bool{}
	for _, m := range members {
		q, ok := p.names[m]
		if !ok {
			return fmt.Errorf("group %s: %q is not a witness or group defined above", f[1], m)
		}
		if seen[m] {
			return fmt.Errorf("group %s: member %q listed twice", f[1], m)
		}
		seen[m] = true
		g.members = append(g.members, asQuorum(q))
	}
	p.names[g.name] = g
	return nil
}

func parseQuorum(p *Policy, f []string) error {
	if len(f) != 2 {
		return errors.New("want: quorum <name>|none")
	}
	if p.Quorum != nil {
		return errors.New("quorum given twice")
	}
	if f[1] == "none" {
		p.Quorum = noQuorum{}
		return nil
	}
	q, ok := p.names[f[1]]
	if !ok {
		return fmt.Errorf("quorum %q is not a witness or group defined above", f[1])
	}
	p.Quorum = asQuorum(q)
	return nil
}

func principal(list func(*Policy) *[]Principal) Directive {
	return func(p *Policy, f []string) error {
		if len(f) != 3 {
			return fmt.Errorf("want: %s <name> <pubkey>", f[0])
		}
		k, err := statement.ParsePublicKey(f[2])
		if err != nil {
			return err
		}
		l := list(p)
		for _, o := range *l {
			if o.Name == f[1] {
				return fmt.Errorf("%s %q listed twice", f[0], f[1])
			}
		}
		*l = append(*l, Principal{Name: f[1], Key: k})
		return nil
	}
}

func (p *Policy) checkNewName(n string) error {
	switch n {
	case "any", "all", "none":
		return fmt.Errorf("%q is a keyword and cannot be a name", n)
	}
	if _, dup := p.names[n]; dup {
		return fmt.Errorf("name %q already defined", n)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("URL %q: want http(s)://host/…", s)
	}
	return nil
}

// Keys returns the public keys of principals.
func Keys(ps []Principal) []statement.PublicKey {
	ks := make([]statement.PublicKey, len(ps))
	for i, p := range ps {
		ks[i] = p.Key
	}
	return ks
}

// Named returns the principal whose key is k, or false.
func Named(ps []Principal, k statement.PublicKey) (Principal, bool) {
	for _, p := range ps {
		if p.Key.ID() == k.ID() {
			return p, true
		}
	}
	return Principal{}, false
}

// Log returns the trusted log with the given origin, or nil.
func (p *Policy) Log(origin string) *Log {
	for _, l := range p.Logs {
		if l.Origin == origin {
			return l
		}
	}
	return nil
}

// Revoker decides who may revoke a release — the one rule the log's
// admission, the auditor and the client decision all apply: an authority
// of the policy, or the operator whose key signed the release
// (releaseSigner, its key ID; "" or "keyless" for a release signed
// keylessly, which only an authority can revoke). A signature counts only
// if it verifies: the key ID it names is a hint, not evidence. It returns
// the principal whose signature authorizes the revocation.
func (p *Policy) Revoker(revocation *statement.Envelope, releaseSigner string) (Principal, bool) {
	if revocation == nil {
		return Principal{}, false
	}
	if k, ok := revocation.VerifiedBy(Keys(p.Authorities)); ok {
		if pr, ok := Named(p.Authorities, k); ok {
			return pr, true
		}
	}
	if releaseSigner == "" || releaseSigner == "keyless" {
		return Principal{}, false
	}
	for _, op := range p.Operators {
		if op.Key.ID() != releaseSigner {
			continue
		}
		if _, ok := revocation.VerifiedBy([]statement.PublicKey{op.Key}); ok {
			return op, true
		}
	}
	return Principal{}, false
}
