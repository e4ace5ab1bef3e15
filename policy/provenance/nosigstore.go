//go:build attestlog_nosigstore

package provenance

// A build without sigstore-go (tagged attestlog_nosigstore: the
// WebAssembly client, where sigstore-go and the Rekor and protobuf code
// under it would nearly double the module). Policies without a
// sigstore-root line decide exactly as in the full build (a release
// without provenance is checked as CheckPresent says; provenance attached
// to a release fails CheckSignature); a policy with one is refused when
// loaded, since this build could verify none of its bundles.

import (
	"fmt"
	"time"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/check"
)

type sigstoreState struct{}

// ErrNoSigstore: this build verifies no Sigstore bundles.
var ErrNoSigstore = fmt.Errorf("%w: this build of attestlog verifies no Sigstore bundles (it was built with -tags attestlog_nosigstore, to stay small for browsers); a policy with a sigstore-root line needs the full build", ErrConfig)

func (v *Verifier) loadRoot() error { return ErrNoSigstore }

func (v *Verifier) checkBundle(*statement.Release, []statement.Subject, time.Time) (check.List, *Identity, error) {
	return check.List{check.Fail(CheckSignature, "%v", ErrNoSigstore)}, nil, nil
}

func (v *Verifier) prefilterKeyless([]byte) error { return nil }

func (v *Verifier) verifyKeyless([]byte, time.Time) ([]byte, *Identity, error) {
	return nil, nil, fmt.Errorf("%w: %v", ErrUnauthorized, ErrNoSigstore)
}
