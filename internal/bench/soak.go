package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/internal/up"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/loadtest"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/policy"
)

// soakStats collects what the soak's clients saw, per route.
type soakStats struct {
	mu     sync.Mutex
	status map[string]map[int]int
	lat    map[string][]time.Duration
	errs   map[string]int // transport errors (no answer)
	fails  []string       // failed checks (bad proofs, wrong entries), capped
	nFails int
}

func newSoakStats() *soakStats {
	return &soakStats{status: map[string]map[int]int{}, lat: map[string][]time.Duration{}, errs: map[string]int{}}
}

func (s *soakStats) record(route string, code int, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs[route]++
		return
	}
	if s.status[route] == nil {
		s.status[route] = map[int]int{}
	}
	s.status[route][code]++
	s.lat[route] = append(s.lat[route], d)
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nFails++
	if len(s.fails) < 20 {
		s.fails = append(s.fails, fmt.Sprintf(format, args...))
	}
}

// acked is what the log acknowledged: index → SHA-256 of the entry the
// log stores for it, and a measurement to look up.
type acked struct {
	mu      sync.Mutex
	entries map[uint64][32]byte
	order   []uint64
	meas    []string
}

func (a *acked) add(idx uint64, h [32]byte, m string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.entries[idx]; !dup {
		a.order = append(a.order, idx)
	}
	a.entries[idx] = h
	a.meas = append(a.meas, m)
}

func (a *acked) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.order)
}

// pick returns a random acknowledged index and measurement.
func (a *acked) pick() (uint64, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.order) == 0 {
		return 0, "", false
	}
	return a.order[mrand.IntN(len(a.order))], a.meas[mrand.IntN(len(a.meas))], true
}

// SoakOptions are the options of 'attestlog bench soak'.
type SoakOptions struct {
	// Up is the up.json of the running 'attestlog up' to load.
	Up string
	// Duration is how long the load runs.
	Duration time.Duration
	// Rate is the releases published a second over all Publishers.
	Rate       float64
	Publishers int
	// Readers read proofs and lookups and verify them; Explorer read the
	// explorer and the dashboard; Garbage send garbage, truncated bodies
	// and random paths; Slow send bodies slower than the read timeout.
	Readers, Explorer, Garbage, Slow int
	// Sample is how often the up process's RSS is sampled.
	Sample time.Duration
	// JSON prints the report ([SoakResult]) as JSON.
	JSON bool
}

// Soak runs mixed load (publishers, readers, explorer, witness, hostile
// clients) against 'attestlog up' and reports on stdout statuses, p99 per
// route, RSS over time and a final consistency check; it fails when the
// report does.
func Soak(ctx context.Context, o SoakOptions, stdout, stderr io.Writer) error {
	info, err := up.ReadInfo(o.Up)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s (start 'attestlog up' first): %w", o.Up, err)
	} else if err != nil {
		return err
	}
	signer, err := keyfile.LoadSigner(info.Operator.Key)
	if err != nil {
		return err
	}
	pol, err := policy.Load(info.ClientPolicy)
	if err != nil {
		return err
	}

	st := newSoakStats()
	ak := &acked{entries: map[uint64][32]byte{}}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	base := strings.TrimSuffix(info.Log.URL, "/")
	do := func(ctx context.Context, route, method, u string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				st.record(route, 0, 0, err)
			}
			return 0, nil, err
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		st.record(route, resp.StatusCode, time.Since(t0), err)
		return resp.StatusCode, rb, err
	}

	fmt.Fprintf(stderr, "soak: %v against %s (up pid %d): %d publishers at %.0f releases/s, %d readers, %d explorer, %d garbage, %d slow\n",
		o.Duration, base, info.PID, o.Publishers, o.Rate, o.Readers, o.Explorer, o.Garbage, o.Slow)
	lctx, lcancel := context.WithTimeout(ctx, o.Duration)
	defer lcancel()
	var wg sync.WaitGroup
	spawn := func(n int, f func(ctx context.Context, id int)) {
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(lctx, i) }()
		}
	}
	start := time.Now()

	// Publishers: fresh signed releases at --rate in all.
	interval := time.Duration(float64(time.Second) * float64(o.Publishers) / o.Rate)
	spawn(o.Publishers, func(ctx context.Context, _ int) {
		gen := loadtest.NewGenerator(signer)
		t := time.NewTicker(interval)
		defer t.Stop()
		for ctx.Err() == nil {
			e, err := gen.Next()
			if err != nil {
				st.fail("signing: %v", err)
				return
			}
			code, rb, err := do(ctx, "POST /add", http.MethodPost, base+"/add", e)
			if err == nil && code == http.StatusOK {
				r, perr := api.ParseAddResponse(rb)
				p, serr := statement.ParseEntry(e)
				if perr != nil || serr != nil {
					st.fail("acknowledged release: %v %v", perr, serr)
				} else {
					stored, _ := p.Entry()
					ak.add(r.Index, sha256.Sum256(stored), p.Release.Measurements.Primary())
				}
			}
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	})

	// Readers: proofs (verified under the client policy) and lookups.
	spawn(o.Readers, func(ctx context.Context, id int) {
		for ctx.Err() == nil {
			idx, m, ok := ak.pick()
			if !ok {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			switch id % 3 {
			case 0:
				code, rb, err := do(ctx, "GET /proof", http.MethodGet, fmt.Sprintf("%s/proof?index=%d", base, idx), nil)
				if err != nil || code != http.StatusOK {
					continue // 404 until a witnessed checkpoint covers it
				}
				pr, err := tlogproof.Parse(rb)
				if err != nil {
					st.fail("proof of %d does not parse: %v", idx, err)
					continue
				}
				cp, err := pol.VerifyCheckpoint(pr.Checkpoint)
				if err != nil {
					st.fail("proof of %d: checkpoint: %v", idx, err)
					continue
				}
				if err := pr.VerifyInclusion(pr.Extra, cp.N, cp.Hash); err != nil {
					st.fail("proof of %d: inclusion: %v", idx, err)
				}
				ak.mu.Lock()
				want := ak.entries[idx]
				ak.mu.Unlock()
				if pr.Index != idx || sha256.Sum256(pr.Extra) != want {
					st.fail("proof of %d is for another entry", idx)
				}
			case 1:
				code, rb, err := do(ctx, "GET /lookup", http.MethodGet, base+"/lookup?measurement="+m, nil)
				if err == nil && code == http.StatusOK {
					if _, err := api.ParseLookupResponse(rb); err != nil {
						st.fail("lookup %s: %v", m, err)
					}
				}
			default:
				code, rb, err := do(ctx, "GET /entry", http.MethodGet, fmt.Sprintf("%s/entry/%d", base, idx), nil)
				if err == nil && code == http.StatusOK {
					if e, err := api.ParseEntryInfo(rb); err != nil || e.Index != idx || e.Kind != "release" {
						st.fail("entry %d: %+v %v", idx, e, err)
					}
				}
			}
		}
	})

	// Explorer and dashboard readers, and witness traffic.
	spawn(o.Explorer, func(ctx context.Context, id int) {
		for i := 0; ctx.Err() == nil; i++ {
			idx, m, ok := ak.pick()
			var route, path string
			switch {
			case !ok || i%6 == 0:
				route, path = "GET /ui/", "/ui/"
			case i%6 == 1:
				route, path = "GET /ui/entry", fmt.Sprintf("/ui/entry/%d", idx)
			case i%6 == 2:
				route, path = "GET /ui/m", "/ui/m/"+m
			case i%6 == 3:
				route, path = "GET /ui/checkpoints", "/ui/checkpoints"
			case i%6 == 4:
				route, path = "GET /audit/", "/audit/"
			default:
				// The witness: a stale or replayed add-checkpoint, as a
				// confused log would send (409 or 4xx, never 5xx).
				code, cp, err := do(ctx, "GET /checkpoint", http.MethodGet, base+"/checkpoint", nil)
				if err == nil && code == http.StatusOK {
					body := append([]byte("old 0\n\n"), cp...)
					do(ctx, "witness POST /add-checkpoint", http.MethodPost, strings.TrimSuffix(info.Witness.URL, "/")+"/add-checkpoint", body)
				}
				sleepCtx(ctx, 200*time.Millisecond)
				continue
			}
			do(ctx, route, http.MethodGet, strings.TrimSuffix(info.URL, "/")+path, nil)
			sleepCtx(ctx, 50*time.Millisecond)
		}
	})

	// Hostile clients: garbage bodies, truncated bodies, random paths.
	spawn(o.Garbage, func(ctx context.Context, id int) {
		for i := 0; ctx.Err() == nil; i++ {
			switch i % 4 {
			case 0:
				junk := make([]byte, 1+mrand.IntN(64<<10))
				rand.Read(junk)
				do(ctx, "garbage POST /add", http.MethodPost, base+"/add", junk)
			case 1:
				do(ctx, "garbage POST /add", http.MethodPost, base+"/add", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
			case 2:
				n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
				do(ctx, "garbage GET", http.MethodGet, fmt.Sprintf("%s/ui/m/%x%s", strings.TrimSuffix(info.URL, "/"), n, strings.Repeat("zz", mrand.IntN(2000))), nil)
			default:
				code, err := shortBody(ctx, base, "/add")
				st.record("short-body POST /add", code, 0, err)
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
	})

	// Slow clients: bodies slower than the read timeout.
	spawn(o.Slow, func(ctx context.Context, _ int) {
		for ctx.Err() == nil {
			t0 := time.Now()
			code, err := slowBody(ctx, base, "/add")
			if ctx.Err() != nil {
				return
			}
			st.record("slow-body POST /add", code, time.Since(t0), err)
		}
	})

	// RSS of the up process over time.
	var rss []RSSSample
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.Sample)
		defer t.Stop()
		for {
			if kb, err := vmRSS(info.PID); err == nil {
				rss = append(rss, RSSSample{Duration(time.Since(start).Round(time.Second)), kb})
				fmt.Fprintf(stderr, "  %v: RSS %d MiB, %d entries acknowledged\n", time.Since(start).Round(time.Second), kb>>10, ak.count())
			}
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if kb, err := vmRSS(info.PID); err == nil {
		rss = append(rss, RSSSample{Duration(elapsed.Round(time.Second)), kb})
	}

	fmt.Fprintf(stderr, "load done; checking every acknowledged entry against the tree…\n")
	cons := soakConsistency(ctx, hc, base, pol, ak)
	rep := soakReport(st, rss, elapsed, cons, ak.count())
	if o.JSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		rep.print(stdout)
	}
	if !rep.OK {
		return errors.New("soak failed: see the report")
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func hostPort(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

// shortBody sends a POST whose body stops short of its Content-Length and
// returns the status.
func shortBody(ctx context.Context, base, path string) (int, error) {
	return partialBody(ctx, base, path, true)
}

// slowBody sends part of a body and then nothing, until the server's read
// timeout answers; it returns the status.
func slowBody(ctx context.Context, base, path string) (int, error) {
	return partialBody(ctx, base, path, false)
}

// partialBody sends a POST with 11 of its 5000 declared body bytes, then
// half-closes the connection (end) or holds it open, and returns the
// status the server answers with.
func partialBody(ctx context.Context, base, path string, end bool) (int, error) {
	addr, err := hostPort(base)
	if err != nil {
		return 0, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 5000\r\n\r\n{\"payload\":", path, addr)
	if end {
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// RSSSample is the resident memory of the up process (KiB) at a time
// into the soak.
type RSSSample struct {
	At Duration `json:"at"`
	KB int64    `json:"kb"`
}

// Duration is a duration written as text ("1m0s") in JSON.
type Duration time.Duration

// String is d as [time.Duration] writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a JSON string ("1m0s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a JSON string that [time.ParseDuration] accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// vmRSS reads a process's resident set size in KiB from /proc.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// SoakCheck is the final consistency check's outcome: of Acked
// acknowledged entries, Missing are not in the tree of size TreeSize (or
// hold another entry), and RootMatch says whether the root recomputed from
// the tiles is the witnessed checkpoint's; Error says why the check could
// not finish.
type SoakCheck struct {
	TreeSize  uint64 `json:"tree_size"`
	Acked     int    `json:"acknowledged"`
	Missing   int    `json:"missing_or_different"`
	RootMatch bool   `json:"root_matches_checkpoint"`
	Error     string `json:"error,omitempty"`
}

// soakConsistency waits for a witnessed checkpoint covering every
// acknowledged entry, then, with Tessera's tiles client (not the log's
// API), reads every entry bundle, recomputes the tree's root from the
// leaves (RFC 6962) and compares it with the checkpoint's, and checks
// that each acknowledged index holds the entry acknowledged.
func soakConsistency(ctx context.Context, hc *http.Client, base string, pol *policy.Policy, ak *acked) SoakCheck {
	ak.mu.Lock()
	var maxIdx uint64
	for i := range ak.entries {
		maxIdx = max(maxIdx, i)
	}
	out := SoakCheck{Acked: len(ak.entries)}
	ak.mu.Unlock()
	u, _ := url.Parse(base + "/")
	f, err := client.NewHTTPFetcher(u, hc)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	var cp *policy.Checkpoint
	deadline := time.Now().Add(2 * time.Minute)
	for {
		raw, err := f.ReadCheckpoint(ctx)
		if err == nil {
			cp, err = pol.VerifyCheckpoint(raw)
		}
		if err == nil && (out.Acked == 0 || uint64(cp.N) > maxIdx) {
			break
		}
		if time.Now().After(deadline) {
			out.Error = fmt.Sprintf("no witnessed checkpoint covers entry %d after 2 minutes (last: %v)", maxIdx, err)
			return out
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	size := uint64(cp.N)
	out.TreeSize = size
	// The root from the leaves with transparency-dev/merkle's compact
	// range (RFC 6962 hashing), not with the log's own code.
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	found := 0
	ak.mu.Lock()
	defer ak.mu.Unlock()
	for bi := uint64(0); bi*layout.EntryBundleWidth < size; bi++ {
		b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, bi, size)
		if err != nil {
			out.Error = fmt.Sprintf("entry bundle %d: %v", bi, err)
			return out
		}
		for j, e := range b.Entries {
			idx := bi*layout.EntryBundleWidth + uint64(j)
			if idx >= size {
				break
			}
			if want, ok := ak.entries[idx]; ok {
				if sha256.Sum256(e) == want {
					found++
				}
			}
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
				out.Error = err.Error()
				return out
			}
		}
	}
	if root, err := rng.GetRootHash(nil); err == nil && rng.End() == size {
		out.RootMatch = bytes.Equal(root, cp.Hash[:])
	}
	out.Missing = out.Acked - found
	return out
}

// SoakResult is the soak's report, as 'bench soak --json' prints it; OK
// is false on a server error (5xx but 503), a failed check or an
// inconsistent tree.
type SoakResult struct {
	Duration    Duration                  `json:"duration"`
	Requests    map[string]map[string]int `json:"requests"` // route → status (or "no answer") → count
	P99         map[string]Duration       `json:"p99"`
	ServerError int                       `json:"server_errors"` // 5xx other than 503
	NoAnswer    int                       `json:"no_answer"`
	CheckFails  int                       `json:"failed_checks"`
	Fails       []string                  `json:"failures,omitempty"`
	RSS         []RSSSample               `json:"rss"`
	Consistency SoakCheck                 `json:"consistency"`
	OK          bool                      `json:"ok"`
}

func soakReport(st *soakStats, rss []RSSSample, d time.Duration, cons SoakCheck, acked int) SoakResult {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := SoakResult{Duration: Duration(d.Round(time.Second)), Requests: map[string]map[string]int{}, P99: map[string]Duration{},
		CheckFails: st.nFails, Fails: st.fails, RSS: rss, Consistency: cons}
	for route, codes := range st.status {
		m := map[string]int{}
		for c, n := range codes {
			m[strconv.Itoa(c)] += n
			if c >= 500 && c != http.StatusServiceUnavailable {
				r.ServerError += n
			}
		}
		r.Requests[route] = m
		l := st.lat[route]
		slices.Sort(l)
		if len(l) > 0 {
			r.P99[route] = Duration(l[min(len(l)*99/100, len(l)-1)].Round(time.Microsecond))
		}
	}
	for route, n := range st.errs {
		if r.Requests[route] == nil {
			r.Requests[route] = map[string]int{}
		}
		r.Requests[route]["no answer"] += n
		r.NoAnswer += n
	}
	r.OK = r.ServerError == 0 && r.CheckFails == 0 && cons.Error == "" && cons.Missing == 0 && cons.RootMatch && acked > 0
	return r
}

func (r SoakResult) print(w io.Writer) {
	fmt.Fprintf(w, "soak of %v\n\n%-30s %-40s %10s\n", r.Duration, "route", "answers", "p99")
	routes := make([]string, 0, len(r.Requests))
	for k := range r.Requests {
		routes = append(routes, k)
	}
	sort.Strings(routes)
	for _, k := range routes {
		var parts []string
		codes := make([]string, 0, len(r.Requests[k]))
		for c := range r.Requests[k] {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s×%d", c, r.Requests[k][c]))
		}
		fmt.Fprintf(w, "%-30s %-40s %10v\n", k, strings.Join(parts, " "), r.P99[k])
	}
	fmt.Fprintf(w, "\nserver errors (5xx but 503): %d; requests without an answer: %d; failed checks: %d\n", r.ServerError, r.NoAnswer, r.CheckFails)
	for _, f := range r.Fails {
		fmt.Fprintf(w, "  %s\n", f)
	}
	if len(r.RSS) > 0 {
		var parts []string
		lo, hi := r.RSS[0].KB, r.RSS[0].KB
		for _, s := range r.RSS {
			parts = append(parts, fmt.Sprintf("%v %d", s.At, s.KB>>10))
			lo, hi = min(lo, s.KB), max(hi, s.KB)
		}
		fmt.Fprintf(w, "RSS of up (MiB) over time: %s (min %d, max %d)\n", strings.Join(parts, ", "), lo>>10, hi>>10)
	}
	c := r.Consistency
	fmt.Fprintf(w, "consistency: %d acknowledged entries, %d missing or different, tree of size %d recomputed from its tiles %s the witnessed checkpoint's root",
		c.Acked, c.Missing, c.TreeSize, map[bool]string{true: "matches", false: "DOES NOT match"}[c.RootMatch])
	if c.Error != "" {
		fmt.Fprintf(w, " (%s)", c.Error)
	}
	fmt.Fprintf(w, "\nresult: %s\n", map[bool]string{true: "OK", false: "FAILED"}[r.OK])
}
