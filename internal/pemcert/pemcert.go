// Package pemcert reads the certificates of PEM text: trust roots, GPU
// device chains.
package pemcert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// Parse returns the CERTIFICATE blocks of b, parsed, in order; other
// blocks are skipped. b without one is an error.
func Parse(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE")
	}
	return certs, nil
}
