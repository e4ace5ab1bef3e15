package index

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

// BenchmarkAdd indexes releases in batches of 256 (an entry bundle, as the
// log's follower does), each with a measurement and six artifact digests.
func BenchmarkAdd(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
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
		r.Measurements = []string{r.Measurement}
		for j := 1; j <= 6; j++ {
			r.Digests = append(r.Digests, hexOf(i, j, 32))
		}
		return r
	}
	const batch = 256
	var next uint64
	b.ResetTimer()
	for b.Loop() {
		recs := make([]Record, batch)
		for k := range recs {
			recs[k] = rec(next + uint64(k))
		}
		if err := d.Add(b.Context(), recs, next+batch); err != nil {
			b.Fatal(err)
		}
		next += batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next), "ns/entry")
}
