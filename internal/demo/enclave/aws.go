package enclave

import (
	sevabi "github.com/google/go-sev-guest/abi"
)

// AWSCSPID is the CSP_ID of the demo VLEK: AWS's VLEKs name the region's
// attestation endpoint (e.g. "CN=cc-us-east-2.amazonaws.com"), the demo
// names a host that cannot be anyone's.
const AWSCSPID = "CN=attestlog-demo.invalid"

// NewAWS returns a demo SEV-SNP enclave that plays an AWS EC2 instance:
// Milan, its reports signed by a VLEK (SIGNING_KEY = 1) under the test ARK
// → ASVK ("SEV-VLEK-Milan") chain with CSP_ID AWSCSPID, and its firmware
// provisional as on every AWS report seen: REPORTED_TCB (what the VLEK
// certifies) is the tcb option, COMMITTED_TCB two microcode patch levels
// above it and CURRENT_TCB three (as the public AWS sample: 217, 219,
// 220). Options override any of that (WithSNPCommittedTCB,
// WithSNPCurrentTCB). Its RootPEM is the ASVK and the ARK.
func NewAWS(measurement []byte, opts ...Option) (*Enclave, error) {
	o := defaults(opts)
	committed, current := o.tcb, o.tcb
	committed.Microcode += 2
	current.Microcode += 3
	all := append([]Option{func(o *options) {
		o.signer, o.cspID = sevabi.VlekReportSigner, AWSCSPID
		o.committed, o.current = &committed, &current
	}}, opts...)
	return NewSNP(measurement, all...)
}

// WithSNPCommittedTCB sets the report's COMMITTED_TCB (default: the TCB
// the VCEK/VLEK certifies; NewAWS: above it).
func WithSNPCommittedTCB(t SNPTCB) Option { return func(o *options) { o.committed = &t } }

// WithSNPCurrentTCB sets the report's CURRENT_TCB.
func WithSNPCurrentTCB(t SNPTCB) Option { return func(o *options) { o.current = &t } }

// WithSNPReportedTCB sets the report's REPORTED_TCB apart from the TCB
// the VCEK/VLEK certifies (for tests of their comparison).
func WithSNPReportedTCB(t SNPTCB) Option { return func(o *options) { o.reported = &t } }
