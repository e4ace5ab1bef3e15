package vindex

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// benchEntries are n signed releases, each with its own measurement and
// artifact, and a revocation every tenth entry.
func benchEntries(b testing.TB, n int) [][]byte {
	op, _ := statement.GenerateSigner(statement.AlgEd25519)
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		if i%10 == 9 {
			prev := uint64(len(out) - 1)
			p, _ := statement.EncodeRevocation(statement.RefOf(prev, out[prev]), &statement.Revocation{Reason: "r", Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
			e, _ := statement.Sign(p, op)
			out = append(out, e)
			continue
		}
		p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", i+1)}}}, &statement.Release{
			Version: fmt.Sprintf("1.0.%d", i), Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", i+1)}},
			Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		})
		if err != nil {
			b.Fatal(err)
		}
		e, _ := statement.Sign(p, op)
		out = append(out, e)
	}
	return out
}

// BenchmarkBuild is the cost of the map function per entry (parse, file
// under 2 keys, path-copying insert, root after every entry as the log
// and auditor keep it), and of rebuilding the map of an n-entry log:
//
//	go test ./log/vindex -run '^$' -bench Build -benchtime 1x
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		entries := benchEntries(b, n)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var d time.Duration
			var heap uint64
			for b.Loop() {
				before := heapAlloc()
				t0 := time.Now()
				bl := NewBuilder()
				// As the log keeps them: a snapshot per 1,000 entries,
				// the newest 4 alive.
				var snaps []*Map
				for i, e := range entries {
					bl.Add(uint64(i), e)
					bl.Root()
					if i%1000 == 999 {
						snaps = append(snaps, bl.Map().Snapshot())
						if len(snaps) > 4 {
							snaps = snaps[1:]
						}
					}
				}
				d += time.Since(t0)
				heap += heapAlloc() - before
				runtime.KeepAlive(bl)
				runtime.KeepAlive(snaps)
			}
			b.ReportMetric(float64(n*b.N)/d.Seconds(), "entries/s")
			b.ReportMetric(float64(heap)/float64(n*b.N), "heap-B/entry")
		})
		// The baseline: parsing the same entries with statement.ParseEntry
		// (which the map function must do) and nothing else.
		b.Run(fmt.Sprintf("entries=%d/parse-only", n), func(b *testing.B) {
			var d time.Duration
			for b.Loop() {
				t0 := time.Now()
				for _, e := range entries {
					statement.ParseEntry(e)
				}
				d += time.Since(t0)
			}
			b.ReportMetric(float64(n*b.N)/d.Seconds(), "entries/s")
		})
	}
}

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkProof is the size of a proof (presence and absence) and the
// cost to make and verify one, by map size.
func BenchmarkProof(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		var m Map
		var keys [][32]byte
		for i := range n {
			k := Key(KeyArtifactSHA256, []byte(fmt.Sprintf("%d", i)))
			keys = append(keys, k)
			m.Add(k, Item{Index: uint64(i), Kind: KindRelease})
		}
		root := m.Root()
		b.Run(fmt.Sprintf("keys=%d/prove+verify", n), func(b *testing.B) {
			var size int
			i := 0
			for b.Loop() {
				k := keys[i%n]
				i++
				items, pr := m.Prove(k)
				size += len(pr.Marshal())
				if err := pr.Verify(root, k, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)/float64(b.N), "proof-bytes")
		})
		b.Run(fmt.Sprintf("keys=%d/absent", n), func(b *testing.B) {
			var size int
			i := 0
			for b.Loop() {
				k := Key(KeyArtifactSHA256, []byte(fmt.Sprintf("absent-%d", i)))
				i++
				_, pr := m.Prove(k)
				size += len(pr.Marshal())
				if err := pr.Verify(root, k, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)/float64(b.N), "proof-bytes")
		})
	}
}
