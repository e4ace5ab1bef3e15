//go:build !unix

package channel_test

import "time"

// cpuTime is zero where the process's CPU time is not at hand (the
// benchmarks then report no CPU figures).
func cpuTime() time.Duration { return 0 }
