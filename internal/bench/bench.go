// Package bench runs the benchmarks of 'attestlog bench': each exported
// function is one subcommand, given its options (which cmd/attestlog parses
// from the command's flags and checks), writing its report to stdout and
// its progress to stderr, and running until it is done or ctx ends.
//
// Each measures attestlog against a baseline in the same run: a bare
// Tessera appender, the floor (the least a log that checks signatures must
// do) and Rekor v2 for [Append]; Tessera's fsck for [Audit]; litewitness
// for [Witness]; plain TLS and direct connections for [Channel]. [Grow]
// and [Soak] measure the log alone as it grows and under mixed load.
//
// Some start this process's executable again, so that a server's CPU and
// memory are its own: [Append] as 'attestlog bench floor-serve'
// ([FloorServe]), [Witness] as 'attestlog witness serve', [Channel] as
// 'attestlog enclave'. Those run only in the attestlog binary.
package bench
