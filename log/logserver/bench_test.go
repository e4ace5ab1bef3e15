package logserver

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/attestlog/attestlog/log/client"

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

// BenchmarkAddHTTP is BenchmarkAdmit through POST /add on loopback.
func BenchmarkAddHTTP(b *testing.B) {
	tl := newTestLog(b, nil)
	gen := loadtest.NewGenerator(tl.operator)
	entries := make([][]byte, b.N)
	for i := range entries {
		entries[i], _ = gen.Next()
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	c, _ := client.New(tl.url, hc)
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(128)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := entries[next.Add(1)-1]
			if _, err := c.Add(b.Context(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
