// Package channeltest builds an attested enclave for tests of the
// channel: internal/demo/fleet (a demo enclave running a release logged
// in an in-memory log, the policy that trusts them, the staple an agent
// serves) with test helpers. Test scaffolding: the binary never links
// it.
package channeltest

import (
	"testing"

	"github.com/attestlog/attestlog/internal/demo/fleet"
	"github.com/attestlog/attestlog/policy/verify"
)

// Fleet is a logged release and the demo enclave that runs it.
type Fleet struct{ *fleet.Fleet }

// NewFleet logs a release of a fresh measurement and returns the enclave
// that runs it (with gpus demo GPUs, carried as the release names them).
func NewFleet(t testing.TB, gpus int) *Fleet {
	t.Helper()
	f, err := fleet.New(t.TempDir(), gpus)
	if err != nil {
		t.Fatal(err)
	}
	return &Fleet{f}
}

// Verifier is a verifier for the fleet's policy.
func (f *Fleet) Verifier(t testing.TB) *verify.Verifier {
	t.Helper()
	v, err := f.Fleet.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Revoke logs the operator's revocation of the release: the next staple
// carries its proof, and clients refuse the enclave from then on.
func (f *Fleet) Revoke(t testing.TB) {
	t.Helper()
	if err := f.Fleet.Revoke(); err != nil {
		t.Fatal(err)
	}
}
