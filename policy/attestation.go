package policy

// AttestationPolicy holds the policy's requirements on attestation
// evidence (platforms, TCB floors, guest policy, reproductions, checkpoint
// freshness). Its directives are registered in this file.
type AttestationPolicy struct{}

func defaultAttestation() AttestationPolicy { return AttestationPolicy{} }
