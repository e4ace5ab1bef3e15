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

// BenchmarkAdmitReplay measures admitting statements already in the log
// (a replay of its public entries): a parse and a lookup each, nothing
// verified. Its baseline is BenchmarkAdmit in the same run.
func BenchmarkAdmitReplay(b *testing.B) {
	tl := newTestLog(b, nil)
	gen := loadtest.NewGenerator(tl.operator)
	const logged = 256
	entries := make([][]byte, logged)
	for i := range entries {
		entries[i], _ = gen.Next()
		if _, err := tl.Admit(b.Context(), entries[i]); err != nil {
			b.Fatal(err)
		}
	}
	for i := range entries { // indexed, so each answer comes from the index
		if err := tl.waitIndexed(b.Context(), uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	// The baseline: what admission did before it looked for duplicates
	// first — parse, verify the signature and check the policy, then
	// look the payload up.
	b.Run("verify-then-lookup", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, _, err := tl.checkSigner(b.Context(), entries[next.Add(1)%logged])
				if err == nil {
					_, err = tl.idx.ByPayload(b.Context(), p.PayloadHash[:])
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("replay", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := tl.Admit(b.Context(), entries[next.Add(1)%logged])
				if err != nil || !r.Duplicate {
					b.Errorf("replay = %+v, %v", r, err)
					return
				}
			}
		})
	})
}
