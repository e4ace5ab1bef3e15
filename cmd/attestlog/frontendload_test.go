package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"golang.org/x/mod/sumdb/tlog"
)

// ack is one acknowledged statement: its index, its entry, the frontend
// that acknowledged it and when.
type ack struct {
	idx   uint64
	entry []byte
	fe    int
	at    time.Time
}

// frontendLoad is the writers of the multi-frontend tests (MariaDB, and
// S3 + MariaDB): 24 of them, each statement a new release sent to one
// frontend, rotating, and every 40th to two frontends at once. Nothing is
// retried: an answer other than 200 acknowledges nothing, and a frontend
// that fails is left alone for 50 ms, as a load balancer would.
type frontendLoad struct {
	mu      sync.Mutex // guards acks and doubles
	acks    []ack
	doubles [][2]api.AddResponse
	seq     atomic.Int64
	fails   atomic.Int64
}

// startLoad starts the writers on bg; they stop when stop is closed.
func startLoad(t *testing.T, urls []string, op *statement.Signer, stop chan struct{}, bg *sync.WaitGroup) *frontendLoad {
	ld := &frontendLoad{}
	hc := &http.Client{Timeout: 45 * time.Second}
	post := func(fe int, body []byte) (api.AddResponse, bool) {
		resp, err := hc.Post(urls[fe]+"/add", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			ld.fails.Add(1)
			time.Sleep(50 * time.Millisecond)
			return api.AddResponse{}, false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r api.AddResponse
		if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil {
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("frontend %d answered %d %s", fe, resp.StatusCode, b)
			}
			ld.fails.Add(1)
			time.Sleep(50 * time.Millisecond)
			return api.AddResponse{}, false
		}
		return r, true
	}
	newStatement := func() (body, entry []byte) {
		n := ld.seq.Add(1)
		r := &statement.Release{
			Version: fmt.Sprintf("1.0.%d", n), Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: fmt.Sprintf("%096x", n)}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("a", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
		}
		p, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", n)}}}, r)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		body, _ = statement.Sign(p, op)
		parsed, err := statement.ParseEntry(body)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		entry, _ = parsed.Entry()
		return body, entry
	}
	const writers = 24
	for w := range writers {
		bg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				body, entry := newStatement()
				fe := (w + k) % len(urls)
				if (w*1000+k)%40 == 0 {
					var rs [2]api.AddResponse
					var oks [2]bool
					var wg sync.WaitGroup
					for j := range 2 {
						wg.Go(func() { rs[j], oks[j] = post((fe+j)%len(urls), body) })
					}
					wg.Wait()
					ld.mu.Lock()
					for j := range 2 {
						if oks[j] {
							ld.acks = append(ld.acks, ack{rs[j].Index, entry, (fe + j) % len(urls), time.Now()})
						}
					}
					if oks[0] && oks[1] {
						ld.doubles = append(ld.doubles, rs)
					}
					ld.mu.Unlock()
					continue
				}
				if r, ok := post(fe, body); ok {
					ld.mu.Lock()
					ld.acks = append(ld.acks, ack{r.Index, entry, fe, time.Now()})
					ld.mu.Unlock()
				}
			}
		})
	}
	return ld
}

// checkpointWatch is what watchCheckpoints saw: a verified root per tree
// size, every checkpoint served.
type checkpointWatch struct {
	mu   sync.Mutex // guards seen
	seen map[int64]tlog.Hash
}

// watchCheckpoints polls /checkpoint of each URL every 200 ms on bg until
// stop is closed: each must verify under pol (log signature and witness
// quorum), and two of one size must have one root.
func watchCheckpoints(t *testing.T, urls []string, pol *policy.Policy, stop chan struct{}, bg *sync.WaitGroup) *checkpointWatch {
	w := &checkpointWatch{seen: map[int64]tlog.Hash{}}
	bg.Go(func() {
		for {
			for _, u := range urls {
				resp, err := http.Get(u + "/checkpoint")
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				cp, err := pol.VerifyCheckpoint(b)
				if err != nil {
					t.Errorf("%s served a checkpoint that does not verify: %v", u, err)
					continue
				}
				w.mu.Lock()
				if h, ok := w.seen[cp.N]; ok && h != cp.Hash {
					t.Errorf("two checkpoints of size %d with different roots", cp.N)
				}
				w.seen[cp.N] = cp.Hash
				w.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	return w
}
