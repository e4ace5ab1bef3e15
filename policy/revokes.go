package policy

import (
	"fmt"

	"github.com/attestlog/attestlog/log/statement"
)

// Release is a release as the revocation rule sees it.
type Release struct {
	// Index is the release's entry index; NotLogged for a release being
	// admitted (after every entry of the log).
	Index uint64
	// Signers are the key IDs of the operator keys of the policy whose
	// signatures on it verify (Signers), or "keyless" for a release
	// signed keylessly: each may revoke it.
	Signers []string
	// Reinstated names the authority of the policy that co-signed it
	// (Reinstates), "" if none did: revocations logged before a release
	// an authority co-signed do not count for it.
	Reinstated string
}

// Signers are the key IDs of the policy's operator keys whose signatures
// on a release verify (nil for a keyless release: see Release.Signers).
func (p *Policy) Signers(release *statement.Envelope) []string {
	if release == nil {
		return []string{"keyless"}
	}
	var ids []string
	for _, k := range release.VerifiedAll(Keys(p.Operators)) {
		ids = append(ids, k.ID())
	}
	return ids
}

// NotLogged is the index of a release not yet in the log.
const NotLogged = ^uint64(0)

// Revocation is a revocation logged under a release's identity (in the
// log's verifiable index, key type identity).
type Revocation struct {
	Index uint64
	// Envelope is the revocation's DSSE envelope, nil when the caller
	// has not read the entry (it was not stapled).
	Envelope *statement.Envelope
}

// Reinstates reports whether an authority of the policy signed the
// release beside its operator, reinstating its identity: revocations
// logged before it no longer count for it (a later one does).
func (p *Policy) Reinstates(release *statement.Envelope) (Principal, bool) {
	if release == nil {
		return Principal{}, false
	}
	k, ok := release.VerifiedBy(Keys(p.Authorities))
	if !ok {
		return Principal{}, false
	}
	return Named(p.Authorities, k)
}

// Revokes decides whether revocation r, logged under the identity of
// release rel (the platform and every measurement rel fixes), revokes
// rel — the one rule the log's admission (refusing a new release of a
// revoked identity), the auditor's deployment watch and every client's
// NotRevoked check apply. It returns why, either way.
//
//   - A revocation logged before rel, which an authority co-signed,
//     does not count: rel reinstated the identity.
//   - A revocation whose entry the caller does not have counts: only its
//     signature can show that its signer may not revoke rel (fail
//     closed; an enclave staples the entry to show it).
//   - Otherwise it counts when Revoker accepts its signer for rel: an
//     authority of the policy (which revokes the identity for every
//     operator), or the operator key that signed rel (which revokes that
//     operator's releases of the identity, never another operator's).
func (p *Policy) Revokes(rel Release, r Revocation) (bool, string) {
	if r.Index < rel.Index && rel.Reinstated != "" {
		return false, fmt.Sprintf("entry %d is before release %d, which authority %s co-signed (a reinstatement)", r.Index, rel.Index, rel.Reinstated)
	}
	if r.Envelope == nil {
		return true, fmt.Sprintf("entry %d (not at hand: only its entry can show that its signer may not revoke this release)", r.Index)
	}
	signers := rel.Signers
	if len(signers) == 0 {
		signers = []string{""} // authorities only
	}
	for _, s := range signers {
		if pr, ok := p.Revoker(r.Envelope, s); ok {
			return true, fmt.Sprintf("entry %d, signed by %s", r.Index, pr.Name)
		}
	}
	return false, fmt.Sprintf("entry %d is signed by neither an authority of the policy nor an operator key that signed this release", r.Index)
}
