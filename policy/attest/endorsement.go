package attest

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	epb "github.com/google/gce-tcb-verifier/proto/endorsement"
	gceverify "github.com/google/gce-tcb-verifier/verify"
	"google.golang.org/protobuf/proto"

	"github.com/attestlog/attestlog/internal/pemcert"
	"github.com/attestlog/attestlog/policy/check"
)

// FirmwareEndorsement is what a verified Google launch endorsement says
// of the firmware the evidence measured.
type FirmwareEndorsement struct {
	// Signer is the endorsement certificate's subject common name.
	Signer string `json:"signer"`
	// SVN is Google's security version number of the firmware on the
	// evidence's platform.
	SVN uint32 `json:"svn"`
	// Time is when Google signed the golden measurement.
	Time time.Time `json:"time"`
	// Commit and CL are the firmware's source revision (either may be
	// empty).
	Commit string `json:"commit,omitempty"`
	CL     uint64 `json:"cl,omitempty"`
	// UEFIDigest is the SHA-384 of the firmware binary.
	UEFIDigest string `json:"uefi_digest"`
	// Matched says which endorsed measurement the evidence carries.
	Matched string `json:"matched"`
}

// String renders the endorsement on one line, for inspect.
func (e FirmwareEndorsement) String() string {
	return fmt.Sprintf("%s, svn %d, signed %s by %s", e.Matched, e.SVN, e.Time.UTC().Format(time.RFC3339), e.Signer)
}

// addGCERoot trusts a Google endorsement root, PEM or DER.
func (v *Verifier) addGCERoot(b []byte) error {
	var certs []*x509.Certificate
	if c, err := x509.ParseCertificate(b); err == nil {
		certs = append(certs, c)
	} else if certs, err = pemcert.Parse(b); err != nil {
		return err
	}
	if v.gceRoots == nil {
		v.gceRoots = x509.NewCertPool()
	}
	for _, c := range certs {
		v.gceRoots.AddCert(c)
	}
	return nil
}

// ErrNoGCERoot is the reason of a failed endorsement check when the policy
// trusts no endorsement root.
var ErrNoGCERoot = errors.New("the policy trusts no firmware-endorsement root: add a 'trust-root gce-tcb FILE' line naming Google's GCE-cc-tcb-root certificate")

// endorsementCheck verifies a stapled VMLaunchEndorsement with
// gce-tcb-verifier (certificate chain to a trust-root gce-tcb root at the
// verification time, RSA-PSS signature over the golden measurement,
// provenance present) and checks that it endorses the measurement in r:
// the SEV-SNP MEASUREMENT among its launch measurements, or the TDX MRTD
// among its TDX measurements.
func (v *Verifier) endorsementCheck(r *Result, raw []byte, now time.Time) check.Check {
	var e FirmwareEndorsement
	err := safely("firmware endorsement", func() error {
		var err error
		e, err = v.verifyEndorsement(r, raw, now)
		return err
	})
	if err != nil {
		return check.Fail(check.FirmwareEndorsement, "%v", err)
	}
	r.Endorsement = &e
	return check.Pass(check.FirmwareEndorsement, "Google's launch endorsement (signed by %s, chained to a trust-root gce-tcb root at %s) endorses the firmware: %s, svn %d, UEFI SHA-384 %s",
		e.Signer, now.UTC().Format("2006-01-02"), e.Matched, e.SVN, short(e.UEFIDigest))
}

func (v *Verifier) verifyEndorsement(r *Result, raw []byte, now time.Time) (FirmwareEndorsement, error) {
	var e FirmwareEndorsement
	if v.gceRoots == nil {
		return e, ErrNoGCERoot
	}
	var end epb.VMLaunchEndorsement
	if err := proto.Unmarshal(raw, &end); err != nil {
		return e, fmt.Errorf("the stapled firmware endorsement is not a VMLaunchEndorsement: %v", err)
	}
	var golden epb.VMGoldenMeasurement
	if err := proto.Unmarshal(end.GetSerializedUefiGolden(), &golden); err != nil {
		return e, fmt.Errorf("the endorsement's golden measurement does not parse: %v", err)
	}
	opts := &gceverify.Options{RootsOfTrust: v.gceRoots, Now: now}
	var measurement []byte
	var err error
	switch {
	case r.SNP != nil:
		if measurement, err = hex.DecodeString(r.SNP.LaunchDigest); err != nil {
			return e, err
		}
		opts.SNP = &gceverify.SNPOptions{Measurement: measurement}
	case r.TDX != nil:
		if measurement, err = hex.DecodeString(r.TDX.MRTD); err != nil {
			return e, err
		}
	default:
		return e, errors.New("no measurement to endorse")
	}
	if err := gceverify.EndorsementProto(&end, opts); err != nil {
		return e, fmt.Errorf("Google's endorsement does not hold: %v", err)
	}
	// EndorsementProto has checked the certificate; parse it for the name.
	cert, err := x509.ParseCertificate(golden.GetCert())
	if err != nil {
		return e, err
	}
	e = FirmwareEndorsement{Signer: cert.Subject.CommonName, Time: golden.GetTimestamp().AsTime(),
		Commit: hex.EncodeToString(golden.GetCommit()), CL: golden.GetClSpec(), UEFIDigest: hex.EncodeToString(golden.GetDigest())}
	if r.SNP != nil {
		e.SVN = golden.GetSevSnp().GetSvn()
		e.Matched = "MEASUREMENT " + short(r.SNP.LaunchDigest)
		for n, m := range golden.GetSevSnp().GetMeasurements() {
			if bytes.Equal(m, measurement) {
				e.Matched = fmt.Sprintf("MEASUREMENT %s for %d vCPUs", short(r.SNP.LaunchDigest), n)
			}
		}
		return e, nil
	}
	// gce-tcb-verifier v0.3.1 checks SEV-SNP measurements only; the TDX
	// ones are compared here.
	if golden.GetTdx() == nil {
		return e, fmt.Errorf("the endorsement names no TDX measurements: it does not endorse MRTD %s", short(r.TDX.MRTD))
	}
	e.SVN = golden.GetTdx().GetSvn()
	for _, m := range golden.GetTdx().GetMeasurements() {
		if bytes.Equal(m.GetMrtd(), measurement) {
			e.Matched = fmt.Sprintf("MRTD %s for %d GiB RAM", short(r.TDX.MRTD), m.GetRamGib())
			if m.GetEarlyAccept() {
				e.Matched += ", early accept"
			}
			return e, nil
		}
	}
	return e, fmt.Errorf("the endorsement does not endorse MRTD %s (it names %d TDX measurements of firmware %s)", short(r.TDX.MRTD), len(golden.GetTdx().GetMeasurements()), short(e.UEFIDigest))
}
