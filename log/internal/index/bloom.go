package index

import (
	"context"
	"encoding/binary"
	"sync"
)

// payloadFilter is a Bloom filter over the payload hashes in the index, so
// that admission can skip the SQLite lookup for a new statement (nearly
// every one). A hit may be false; a miss is certain. It holds ~16 bits per
// entry: 10 million entries take 20 MB.
type payloadFilter struct {
	mu    sync.RWMutex
	bits  []uint64
	mask  uint64
	n     int // entries added
	limit int // n above which the filter is rebuilt twice as large
}

const bloomHashes = 6

func newPayloadFilter(capacity int) *payloadFilter {
	m := uint64(1 << 20) // bits
	for m < uint64(capacity)*16 {
		m <<= 1
	}
	return &payloadFilter{bits: make([]uint64, m/64), mask: m - 1, limit: int(m / 16)}
}

// The payload hash is SHA-256, so its 32-bit words are independent
// uniform hashes.
func (f *payloadFilter) positions(h []byte) [bloomHashes]uint64 {
	var p [bloomHashes]uint64
	for i := range p {
		p[i] = uint64(binary.LittleEndian.Uint32(h[4*i:])) ^ uint64(binary.LittleEndian.Uint32(h[28-4*(i%4):]))<<32
		p[i] &= f.mask
	}
	return p
}

func (f *payloadFilter) add(h []byte) {
	if len(h) < 32 {
		return
	}
	f.mu.Lock()
	for _, p := range f.positions(h) {
		f.bits[p/64] |= 1 << (p % 64)
	}
	f.n++
	f.mu.Unlock()
}

func (f *payloadFilter) mayContain(h []byte) bool {
	if len(h) < 32 {
		return true
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, p := range f.positions(h) {
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *payloadFilter) full() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.n > f.limit
}

// loadFilter builds the filter from every payload hash in the index.
func (d *DB) loadFilter(ctx context.Context) (*payloadFilter, error) {
	var n int
	if err := d.ro.QueryRowContext(ctx, `SELECT COUNT(*) FROM entries`).Scan(&n); err != nil {
		return nil, err
	}
	f := newPayloadFilter(2 * n)
	rows, err := d.ro.QueryContext(ctx, `SELECT payload_hash FROM entries`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		f.add(h)
	}
	return f, rows.Err()
}
