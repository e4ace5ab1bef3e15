package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/log/statement"
)

// TestRevokes: the one rule of which revocations revoke a release.
func TestRevokes(t *testing.T) {
	gen := func() *statement.Signer {
		s, err := statement.GenerateSigner(statement.AlgEd25519)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	acme, beta, sec, stranger := gen(), gen(), gen(), gen()
	pol, err := Parse([]byte(fmt.Sprintf("operator acme %s\noperator beta %s\nauthority sec %s\n", acme.Public(), beta.Public(), sec.Public())))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s *statement.Signer) *statement.Envelope {
		e, err := statement.SignEnvelope([]byte(`{"revocation":1}`), s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	release := func(signers ...*statement.Signer) *statement.Envelope {
		env := &statement.Envelope{PayloadType: statement.PayloadType, Payload: []byte(`{"release":1}`)}
		for _, s := range signers {
			env.Signatures = append(env.Signatures, sign(s).Signatures...)
			env.Signatures[len(env.Signatures)-1].Sig, _ = s.Sign(statement.PAE(env.PayloadType, env.Payload))
		}
		return env
	}
	rel := func(idx uint64, env *statement.Envelope) Release {
		a, _ := pol.Reinstates(env)
		return Release{Index: idx, Signers: pol.Signers(env), Reinstated: a.Name}
	}
	for _, tc := range []struct {
		name    string
		rel     Release
		rev     Revocation
		revokes bool
		why     string
	}{
		{"its operator's", rel(5, release(acme)), Revocation{9, sign(acme)}, true, "signed by acme"},
		{"an authority's", rel(5, release(acme)), Revocation{9, sign(sec)}, true, "signed by sec"},
		{"another operator's", rel(5, release(acme)), Revocation{9, sign(beta)}, false, "neither"},
		{"a stranger's", rel(5, release(acme)), Revocation{9, sign(stranger)}, false, "neither"},
		{"not at hand", rel(5, release(acme)), Revocation{9, nil}, true, "not at hand"},
		{"either operator of a release both signed", rel(5, release(beta, acme)), Revocation{9, sign(acme)}, true, "signed by acme"},
		{"keyless, by an operator", Release{Index: 5, Signers: pol.Signers(nil)}, Revocation{9, sign(acme)}, false, "neither"},
		{"keyless, by an authority", Release{Index: 5, Signers: pol.Signers(nil)}, Revocation{9, sign(sec)}, true, "signed by sec"},
		{"before a reinstatement", rel(5, release(acme, sec)), Revocation{3, sign(sec)}, false, "reinstatement"},
		{"before a reinstatement, not at hand", rel(5, release(acme, sec)), Revocation{3, nil}, false, "reinstatement"},
		{"after a reinstatement", rel(5, release(acme, sec)), Revocation{9, sign(acme)}, true, "signed by acme"},
		{"co-signed by another operator is no reinstatement", rel(5, release(acme, beta)), Revocation{3, sign(acme)}, true, "signed by acme"},
		{"a release being admitted, after a reinstating co-signature", rel(NotLogged, release(acme, sec)), Revocation{3, sign(sec)}, false, "reinstatement"},
		{"a release being admitted", rel(NotLogged, release(acme)), Revocation{3, sign(acme)}, true, "signed by acme"},
	} {
		got, why := pol.Revokes(tc.rel, tc.rev)
		if got != tc.revokes || !strings.Contains(why, tc.why) {
			t.Errorf("%s: Revokes = %v, %q; want %v, %q", tc.name, got, why, tc.revokes, tc.why)
		}
	}
}
