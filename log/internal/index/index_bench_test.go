package index

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// BenchmarkAdd indexes 50,000 releases into a new index, in transactions
// of one entry bundle (256) up to the follower's largest batch (4096);
// ns/entry is the cost of one.
func BenchmarkAdd(b *testing.B) {
	for _, batch := range []int{64, 256, 1024, 4096} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkAdd(b, uint64(batch)) })
	}
}

func benchmarkAdd(b *testing.B, batch uint64) {
	const total = 50_000
	hexOf := func(i uint64, j, n int) string {
		var buf [16]byte
		binary.BigEndian.PutUint64(buf[:], i)
		binary.BigEndian.PutUint64(buf[8:], uint64(j))
		h := sha256.Sum256(buf[:])
		s := hex.EncodeToString(h[:])
		return (s + s)[:2*n]
	}
	rec := func(i uint64) Record {
		r := Record{Entry: Entry{Index: i, Kind: statement.KindRelease, EntrySHA256: hexOf(i, 99, 32),
			SignerKey: "abcdef0123456789", SignerName: "operator", Platform: statement.PlatformSNP,
			Version: "1.2.3", Measurement: hexOf(i, 0, 48), Time: time.Unix(1_790_000_000, 0)}}
		h := sha256.Sum256([]byte(r.EntrySHA256))
		r.PayloadHash = h[:]
		return r
	}
	var all []Record
	for i := range uint64(total) {
		all = append(all, rec(i))
	}
	for b.Loop() {
		b.StopTimer()
		d, err := Open(filepath.Join(b.TempDir(), "index.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for next := uint64(0); next < total; next += batch {
			end := min(next+batch, total)
			if err := d.Add(b.Context(), all[next:end], end); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/entry")
}
