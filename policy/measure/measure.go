// Package measure computes, from build outputs, the launch measurements that
// confidential-computing hardware reports, so that an auditor can check a
// measurement seen in the field against a reproducible build.
//
// The work is split by platform:
//
//   - [github.com/attestlog/attestlog/policy/measure/snp]: the AMD SEV-SNP
//     launch digest of an OVMF guest, as computed by virtee's sev-snp-measure
//     (and by the AMD-SP during SNP_LAUNCH_UPDATE).
//   - [github.com/attestlog/attestlog/policy/measure/tdx]: the Intel TDX MRTD
//     of a TDVF (OVMF) image, as the TDX module accumulates it during
//     TDH.MEM.PAGE.ADD and TDH.MR.EXTEND, the RTMR event digests that TDVF
//     extends for direct boot, and replay of a CCEL event log.
//
// Both read the firmware's GUIDed footer table through
// [github.com/attestlog/attestlog/policy/measure/ovmf].
//
// Firmware is untrusted input: every parser here bounds sizes, rejects
// malformed structures with an error and never panics.
package measure
