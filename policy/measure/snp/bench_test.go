package snp

import (
	"crypto/sha512"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkLaunchDigest measures a 4 MiB firmware (random bytes ending in
// the AmdSev footer) with 64 vCPUs, next to the floor: SHA-384 of the same
// 4 MiB alone. Compare the two ns/op figures.
func BenchmarkLaunchDigest(b *testing.B) {
	const size = 4 << 20
	suffix := readTestdata(b, "ovmf_AmdSev_suffix.bin")
	img := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(img)
	copy(img[size-len(suffix):], suffix)

	b.Run("sha384-floor", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sha512.Sum384(img)
		}
	})
	measure := func() {
		fw, err := ParseFirmware(img)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := LaunchDigest(fw, Config{VCPUs: 64, VCPUSig: VCPUTypes["EPYC-Milan"], GuestFeatures: DefaultGuestFeatures}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("launch-digest-64-vcpus", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			measure()
		}
	})
	// ratio alternates the two in every iteration, so that load from other
	// processes on a shared machine affects both alike, and reports the
	// launch digest's time as a multiple of the floor's.
	b.Run("ratio", func(b *testing.B) {
		var floor, ld time.Duration
		for b.Loop() {
			t0 := time.Now()
			sha512.Sum384(img)
			t1 := time.Now()
			measure()
			floor += t1.Sub(t0)
			ld += time.Since(t1)
		}
		b.ReportMetric(float64(ld)/float64(floor), "x-floor")
	})
}
