package policy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/log/statement"
)

type keys struct {
	logSigner note.Signer
	logVKey   string
	wSigners  []note.Signer
	wVKeys    []string
	op        *statement.Signer
}

func newKeys(t testing.TB, nWitnesses int) *keys {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	k := &keys{logVKey: vkey}
	k.logSigner, _ = note.NewSigner(skey)
	for i := range nWitnesses {
		ws, wv, _ := note.GenerateKey(rand.Reader, fmt.Sprintf("w%d.example", i))
		s, err := fnote.NewSignerForCosignatureV1(ws)
		if err != nil {
			t.Fatal(err)
		}
		cv, _ := fnote.VKeyToCosignatureV1(wv)
		k.wSigners = append(k.wSigners, s)
		k.wVKeys = append(k.wVKeys, cv)
	}
	k.op, _ = statement.GenerateSigner(statement.AlgEd25519)
	return k
}

func (k *keys) policy(quorum string) string {
	return fmt.Sprintf(`# a policy
log %s https://log.example
witness a %s https://a.example
witness b %s
witness c %s
group ab all a b
group two 2 a b c
group any1 any c ab
operator acme %s   # the operator
quorum %s
`, k.logVKey, k.wVKeys[0], k.wVKeys[1], k.wVKeys[2], k.op.Public(), quorum)
}

func TestParseAndQuorums(t *testing.T) {
	k := newKeys(t, 3)
	for _, tc := range []struct {
		quorum string
		signed []int // witnesses that cosign
		want   bool
	}{
		{"two", []int{0, 1}, true},
		{"two", []int{2}, false},
		{"two", []int{0, 2}, true},
		{"ab", []int{0}, false},
		{"ab", []int{0, 1}, true},
		{"any1", []int{2}, true},
		{"any1", []int{0}, false},
		{"any1", []int{0, 1}, true},
		{"a", []int{0}, true},
		{"a", nil, false},
		{"none", nil, true},
	} {
		p, err := Parse([]byte(k.policy(tc.quorum)))
		if err != nil {
			t.Fatalf("Parse(quorum %s) = %v", tc.quorum, err)
		}
		if len(p.Operators) != 1 || p.Operators[0].Name != "acme" || len(p.Logs) != 1 || p.Logs[0].Origin != "example.com/log" {
			t.Fatalf("parsed %+v", p)
		}
		signers := []note.Signer{k.logSigner}
		for _, i := range tc.signed {
			signers = append(signers, k.wSigners[i])
		}
		cp, err := note.Sign(&note.Note{Text: "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.VerifyCheckpoint(cp)
		if got := err == nil; got != tc.want {
			t.Errorf("quorum %s with cosigners %v: VerifyCheckpoint = %v, want ok=%v", tc.quorum, tc.signed, err, tc.want)
		}
		if !tc.want && err != nil && !errors.Is(err, ErrQuorum) {
			t.Errorf("quorum %s: error %v, want ErrQuorum", tc.quorum, err)
		}
		if c != nil && (c.N != 5 || len(c.Cosigned) != len(tc.signed)) {
			t.Errorf("quorum %s: checkpoint N=%d cosigned=%v", tc.quorum, c.N, c.CosignerNames())
		}
	}
}

func TestCheckpointErrors(t *testing.T) {
	k := newKeys(t, 3)
	other := newKeys(t, 1)
	p, err := Parse([]byte(k.policy("a")))
	if err != nil {
		t.Fatal(err)
	}
	body := "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	// Signed by another key with the same name.
	forged, _ := note.Sign(&note.Note{Text: body}, other.logSigner)
	if _, err := p.InspectCheckpoint(forged); !errors.Is(err, ErrLogSignature) {
		t.Errorf("forged log signature: %v, want ErrLogSignature", err)
	}
	// Unknown origin.
	s2, _, _ := note.GenerateKey(rand.Reader, "other.example/log")
	sg, _ := note.NewSigner(s2)
	unknown, _ := note.Sign(&note.Note{Text: strings.Replace(body, "example.com/log", "other.example/log", 1)}, sg)
	if _, err := p.InspectCheckpoint(unknown); !errors.Is(err, ErrUnknownLog) {
		t.Errorf("unknown log: %v, want ErrUnknownLog", err)
	}
	// A witness cosignature under a key the policy does not list is not
	// counted.
	good, _ := note.Sign(&note.Note{Text: body}, k.logSigner, other.wSigners[0])
	c, err := p.InspectCheckpoint(good)
	if err != nil || len(c.Cosigned) != 0 || c.QuorumMet {
		t.Errorf("foreign cosignature counted: %+v, %v", c, err)
	}
	// Tampered body.
	tampered := []byte(strings.Replace(string(good), "\n5\n", "\n6\n", 1))
	if _, err := p.InspectCheckpoint(tampered); err == nil {
		t.Error("tampered checkpoint accepted")
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	k := newKeys(t, 3)
	for _, tc := range []struct {
		text, want string
	}{
		{"quorum none\nfrobnicate x\n", "line 2: unknown keyword"},
		{"log notakey\n", "line 1: log key"},
		{"witness a notakey\n", "line 1: witness a: key is not a cosignature/v1"},
		{"witness a " + k.wVKeys[0] + "\nwitness a " + k.wVKeys[1] + "\n", "line 2: name \"a\" already defined"},
		{"group g 2 a b\n", "line 1: group g: \"a\" is not a witness or group defined above"},
		{"witness a " + k.wVKeys[0] + "\ngroup g 3 a\n", "line 2: group g: threshold 3 is more than its 1 members"},
		{"quorum nothere\n", "line 1: quorum \"nothere\" is not"},
		{"quorum none\nquorum none\n", "line 2: quorum given twice"},
		{"operator acme ed25519:AAAA\n", "line 1: public key"},
		{"operator acme\n", "line 1: want: operator <name> <pubkey>"},
		{"log " + k.logVKey + " ftp://x\n", "line 1: URL"},
		{"witness any " + k.wVKeys[0] + "\n", "keyword"},
	} {
		_, err := Parse([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	k := newKeys(f, 3)
	f.Add([]byte(k.policy("two")))
	f.Add([]byte("quorum none\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if p.Quorum != nil {
			_ = p.Quorum.String()
			p.Quorum.Satisfied(map[string]bool{"a": true})
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	k := newKeys(f, 3)
	p, err := Parse([]byte(k.policy("two")))
	if err != nil {
		f.Fatal(err)
	}
	cp, _ := note.Sign(&note.Note{Text: "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, k.logSigner, k.wSigners[0], k.wSigners[1])
	f.Add(cp)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := p.InspectCheckpoint(b)
		if err != nil {
			return
		}
		// Whatever opens was signed by the log.
		if c.Log == nil || c.N < 0 {
			t.Fatalf("opened checkpoint without a log or with size %d", c.N)
		}
	})
}

// TestRevoker pins who may revoke a release: the one rule admission, the
// auditor and the client apply.
func TestRevoker(t *testing.T) {
	gen := func() *statement.Signer {
		s, err := statement.GenerateSigner(statement.AlgEd25519)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	op, other, auth, stranger := gen(), gen(), gen(), gen()
	pol, err := Parse([]byte(fmt.Sprintf("operator acme %s\noperator beta %s\nauthority sec %s\n", op.Public(), other.Public(), auth.Public())))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"revocation":"of release 3"}`)
	sign := func(ss ...*statement.Signer) *statement.Envelope {
		env := &statement.Envelope{PayloadType: statement.PayloadType, Payload: payload}
		for _, s := range ss {
			e, err := statement.SignEnvelope(payload, s)
			if err != nil {
				t.Fatal(err)
			}
			env.Signatures = append(env.Signatures, e.Signatures...)
		}
		return env
	}
	claiming := sign(stranger)
	claiming.Signatures[0].KeyID = op.Public().ID() // claims the operator's key ID
	relSigner := op.Public().ID()
	for _, tc := range []struct {
		name   string
		env    *statement.Envelope
		signer string
		want   string // principal name, "" for refused
	}{
		{"the release's operator", sign(op), relSigner, "acme"},
		{"an authority", sign(auth), relSigner, "sec"},
		{"another operator", sign(other), relSigner, ""},
		{"a stranger", sign(stranger), relSigner, ""},
		{"a signature that merely claims the operator's key ID", claiming, relSigner, ""},
		{"another operator and the release's operator", sign(other, op), relSigner, "acme"},
		{"a keyless release, by an operator", sign(op), "keyless", ""},
		{"a keyless release, by an authority", sign(auth), "keyless", "sec"},
		{"a release whose operator left the policy", sign(stranger), stranger.Public().ID(), ""},
		{"no envelope", nil, relSigner, ""},
	} {
		pr, ok := pol.Revoker(tc.env, tc.signer)
		if got := map[bool]string{true: pr.Name}[ok]; got != tc.want {
			t.Errorf("%s: Revoker = %q, %v; want %q", tc.name, pr.Name, ok, tc.want)
		}
	}
}

// TestQuorumTime: a checkpoint is as fresh as the moment its quorum last
// held, counting only cosignatures that make up the quorum.
func TestQuorumTime(t *testing.T) {
	w := func(i int) string {
		_, vkey, _ := note.GenerateKey(nil, fmt.Sprintf("w%d.example", i))
		cv, _ := fnote.VKeyToCosignatureV1(vkey)
		return cv
	}
	pol, err := Parse([]byte(fmt.Sprintf("witness a %s\nwitness b %s\nwitness c %s\ngroup two 2 a b c\nquorum two\n", w(0), w(1), w(2))))
	if err != nil {
		t.Fatal(err)
	}
	none, err := Parse([]byte("quorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	for _, tc := range []struct {
		name     string
		pol      *Policy
		cosigned map[string]time.Time
		want     time.Time
		ok       bool
	}{
		{"two of three, the older one dates it", pol, map[string]time.Time{"a": h(0), "b": h(5)}, h(0), true},
		{"a fresh third cosignature freshens it", pol, map[string]time.Time{"a": h(0), "b": h(5), "c": h(9)}, h(5), true},
		{"one fresh cosignature alone does not", pol, map[string]time.Time{"c": h(9)}, time.Time{}, false},
		{"none", pol, nil, time.Time{}, false},
		{"quorum none has nothing to date it", none, nil, time.Time{}, false},
	} {
		got, ok := tc.pol.QuorumTime(&Checkpoint{Cosigned: tc.cosigned})
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: QuorumTime = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
