//go:build linux

package loadtest

import (
	"crypto/sha256"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcCPU compares /proc's account of this process's CPU with
// getrusage's, an independent one, after burning some.
func TestProcCPU(t *testing.T) {
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(nil)
	for range 2_000_000 {
		h = sha256.Sum256(h[:])
	}
	got, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	want := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// /proc counts in 10 ms ticks, sampled; rusage in microseconds.
	if d := want - got; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("ProcCPU = %v, getrusage says %v", got, want)
	}
	if got <= before {
		t.Errorf("ProcCPU went from %v to %v over two million hashes", before, got)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Error("ProcCPU of a process that does not exist = nil error")
	}
}
