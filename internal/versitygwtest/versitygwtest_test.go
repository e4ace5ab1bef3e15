package versitygwtest

import (
	"testing"

	"github.com/attestlog/attestlog/internal/s3proctest"
)

// TestVersitygw checks what Tessera's AWS driver and the log's readers
// rely on (s3proctest.Probe): conditional puts, anonymous reads, refused
// anonymous writes, and data kept across a crash and restart.
func TestVersitygw(t *testing.T) {
	s3proctest.Probe(t, Start(t, "probe"))
}
