package gpu

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/attestlog/attestlog/policy/check"
)

// CheckOCSP names the check of the stapled OCSP responses for a GPU's
// device chain and the signing chains of its RIMs.
const CheckOCSP = "GPU certificate status"

// ocspSkew tolerates clocks that disagree a little.
const ocspSkew = 5 * time.Minute

// errNotStapled is certStatus's answer for a certificate no staple is
// about.
var errNotStapled = errors.New("no OCSP response stapled")

// certStatus finds and verifies the stapled response about cert, whose
// issuer (from a verified path) is issuer: signed by the issuer or by a
// responder the issuer delegated to (an OCSP-signing certificate it
// issued, valid now), current at now. A staple about another certificate
// is skipped; a staple about this one that does not verify is an error,
// never skipped.
func certStatus(cert, issuer *x509.Certificate, staples [][]byte, now time.Time) (*ocsp.Response, error) {
	for _, raw := range staples {
		// The serial is read before the signature is checked only to find
		// the staple meant for cert; nothing else is taken from it.
		if _, err := ocsp.ParseResponseForCert(raw, cert, nil); err != nil {
			continue
		}
		r, err := ocsp.ParseResponseForCert(raw, cert, issuer)
		if err != nil {
			return nil, fmt.Errorf("the OCSP response for %s does not verify: %v", cert.Subject.CommonName, err)
		}
		if rc := r.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) {
			// x/crypto/ocsp checks that the issuer signed the responder's
			// certificate, not that it made it a responder.
			if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
				return nil, fmt.Errorf("the OCSP response for %s is signed by %s, which %s did not make an OCSP responder", cert.Subject.CommonName, rc.Subject.CommonName, issuer.Subject.CommonName)
			}
			if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
				return nil, fmt.Errorf("the OCSP responder certificate %s is not valid at %s", rc.Subject.CommonName, now.UTC().Format(time.RFC3339))
			}
		}
		switch {
		case r.NextUpdate.IsZero():
			return nil, fmt.Errorf("the OCSP response for %s has no nextUpdate: nothing says how long it holds", cert.Subject.CommonName)
		case now.Add(ocspSkew).Before(r.ThisUpdate):
			return nil, fmt.Errorf("the OCSP response for %s is from %s, in the future", cert.Subject.CommonName, r.ThisUpdate.UTC().Format(time.RFC3339))
		case now.Add(-ocspSkew).After(r.NextUpdate):
			return nil, fmt.Errorf("the OCSP response for %s expired at %s: staple a fresh one", cert.Subject.CommonName, r.NextUpdate.UTC().Format(time.RFC3339))
		}
		return r, nil
	}
	return nil, errNotStapled
}

// statusOf checks the certificates path[from:len(path)-1] (each issued by
// the next; the root is trusted as configured) against the staples. It
// returns the check and whether there is one to show: with required
// false and nothing stapled, there is none (no evidence either way, and
// the policy says that is acceptable). A revoked certificate or a staple
// that does not verify fails whatever the policy says.
func statusOf(what string, path []*x509.Certificate, from int, staples [][]byte, now time.Time, required bool) (check.Check, bool) {
	var good, missing []string
	for i := from; i < len(path)-1; i++ {
		c := path[i]
		r, err := certStatus(c, path[i+1], staples, now)
		switch {
		case errors.Is(err, errNotStapled):
			missing = append(missing, fmt.Sprintf("%s (serial %x)", c.Subject.CommonName, c.SerialNumber))
			continue
		case err != nil:
			return check.Fail(CheckOCSP, "%s: %v", what, err), true
		}
		switch r.Status {
		case ocsp.Good:
			good = append(good, c.Subject.CommonName)
		case ocsp.Revoked:
			return check.Fail(CheckOCSP, "%s: %s is revoked as of %s (OCSP reason %d), says %s", what, c.Subject.CommonName, r.RevokedAt.UTC().Format(time.RFC3339), r.RevocationReason, path[i+1].Subject.CommonName), true
		default:
			missing = append(missing, fmt.Sprintf("%s (OCSP status unknown)", c.Subject.CommonName))
		}
	}
	switch {
	case len(missing) > 0 && required:
		return check.Fail(CheckOCSP, "%s: %s: staple its issuer's current OCSP response, or say ocsp=optional in the gpu line", what, strings.Join(missing, ", ")+" has no good OCSP status"), true
	case len(good) == 0 && len(missing) == 0:
		if required {
			return check.Fail(CheckOCSP, "%s: the chain has no certificate whose status OCSP could give, and the policy requires OCSP", what), true
		}
		return check.Check{}, false
	case len(good) == 0:
		return check.Check{}, false
	case len(missing) > 0:
		return check.Pass(CheckOCSP, "%s: %s good per OCSP; %s not stapled (ocsp=optional)", what, strings.Join(good, ", "), strings.Join(missing, ", ")), true
	}
	return check.Pass(CheckOCSP, "%s: %s good per stapled OCSP responses", what, strings.Join(good, ", ")), true
}
