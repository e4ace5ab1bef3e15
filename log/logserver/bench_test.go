package logserver

import (
	"testing"

	"github.com/attestlog/attestlog/log/loadtest"
)

// BenchmarkAdmit measures admission and sequencing without HTTP; compare
// with 'attestlog bench append --baseline tessera' for the whole path.
func BenchmarkAdmit(b *testing.B) {
	tl := newTestLog(b, nil)
	gen := loadtest.NewGenerator(tl.operator)
	entries := make([][]byte, b.N)
	for i := range entries {
		entries[i], _ = gen.Next()
	}
	b.ResetTimer()
	b.SetParallelism(64)
	var i int64
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			<-mu
			e := entries[i]
			i++
			mu <- struct{}{}
			if _, err := tl.Admit(b.Context(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
