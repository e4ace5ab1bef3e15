package logserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/statement"
)

// TestFairSlots: a freed slot goes to the waiting client holding the
// fewest, not to whoever has the most requests waiting — the second
// security review's item 6 (one client with thousands of requests in
// flight pushed every other submitter into 503).
func TestFairSlots(t *testing.T) {
	s := newFairSlots(4)
	ctx := context.Background()
	for range 4 {
		if err := s.acquire(ctx, "greedy", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The greedy client queues 8 more, then the modest one arrives.
	got := make(chan string, 16)
	wait := func(c string) {
		if err := s.acquire(ctx, c, 5*time.Second); err == nil {
			got <- c
		} else {
			got <- "timeout " + c
		}
	}
	for range 8 {
		go wait("greedy")
	}
	waitQueued(t, s, "greedy", 8)
	go wait("modest")
	waitQueued(t, s, "modest", 1)
	s.release("greedy")
	if c := <-got; c != "modest" {
		t.Fatalf("the freed slot went to %q, want the client holding none", c)
	}
	// Then back to the greedy client's queue, one per release.
	for range 8 {
		s.release("greedy")
		if c := <-got; c != "greedy" {
			t.Fatalf("got %q", c)
		}
	}
	// A waiter that gives up leaves nothing behind.
	err := s.acquire(ctx, "late", 10*time.Millisecond)
	if !errors.Is(err, errNoSlot) {
		t.Fatalf("acquire with every slot held = %v, want errNoSlot", err)
	}
	s.mu.Lock()
	n := len(s.waiting)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d clients still queued after giving up", n)
	}
	// Every slot comes back.
	s.release("modest")
	for range 3 {
		s.release("greedy")
	}
	s.mu.Lock()
	free, held := s.free, len(s.held)
	s.mu.Unlock()
	if free != 4 || held != 0 {
		t.Fatalf("after every release: free %d, held by %d clients", free, held)
	}
}

func waitQueued(t *testing.T, s *fairSlots, client string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		q := len(s.waiting[client])
		s.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %q's requests queued, want %d", q, client, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClientFromAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7:443", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:80", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
		{"not an address", "not an address"},
	} {
		if got := clientFromAddr(tc.in); got != tc.want {
			t.Errorf("clientFromAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDuplicateBeforeVerify: a statement already in the log is answered
// as the duplicate it is before its signature is looked at, so that a
// replay of public entries costs a lookup, not a verification (and a
// resubmission under a broken signature is still the original's index).
func TestDuplicateBeforeVerify(t *testing.T) {
	tl := newTestLog(t, nil)
	e := release(t, tl.operator, measurement(90))
	i := tl.add(t, e)
	p, err := statement.Parse(e)
	if err != nil {
		t.Fatal(err)
	}
	p.Envelope.Signatures[0].Sig = bytes.Repeat([]byte{1}, len(p.Envelope.Signatures[0].Sig))
	broken, err := p.Envelope.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.waitIndexed(t.Context(), i); err != nil {
		t.Fatal(err)
	}
	r, err := tl.client.Add(t.Context(), broken)
	if err != nil || !r.Duplicate || r.Index != i {
		t.Errorf("the logged statement under a broken signature = %+v, %v; want the duplicate of %d", r, err, i)
	}
	// A statement not in the log under a broken signature is still 403.
	q, _ := statement.Parse(release(t, tl.operator, measurement(91)))
	q.Envelope.Signatures[0].Sig = bytes.Repeat([]byte{1}, len(q.Envelope.Signatures[0].Sig))
	nb, _ := q.Envelope.Marshal()
	if code, msg := tl.post(t, nb); code != http.StatusForbidden {
		t.Errorf("a new statement under a broken signature = %d %q, want 403", code, msg)
	}
	if n := tl.size(t); n != 1 {
		t.Errorf("the log has %d entries, want 1", n)
	}
}

// TestAdmissionSharedFairly: with every admission slot held by one
// client's appends, which are slow, and more of its requests waiting, a
// request of another client is admitted at the next freed slot rather
// than after the greedy client's queue, or never (the second security
// review's item 6, through Admit).
func TestAdmissionSharedFairly(t *testing.T) {
	const slots = 4
	gate := make(chan struct{})
	tl := newTestLogOpts(t, nil, nil, "quorum none\n", "", false,
		func(l *Log) { l.slots = newFairSlots(slots) },
		withAppendHook(func(ctx context.Context, _ [32]byte) error {
			if clientOf(ctx) == "greedy" {
				<-gate
			}
			return nil
		}))
	greedy := withClient(t.Context(), "greedy")
	done := make(chan error, 3*slots)
	for i := range 3 * slots {
		e := release(t, tl.operator, measurement(200+i))
		go func() { _, err := tl.Admit(greedy, e); done <- err }()
	}
	waitQueued(t, tl.slots, "greedy", 2*slots)
	modest := make(chan error, 1)
	go func() {
		_, err := tl.Admit(withClient(t.Context(), "modest"), release(t, tl.operator, measurement(300)))
		modest <- err
	}()
	waitQueued(t, tl.slots, "modest", 1)
	gate <- struct{}{} // one greedy append finishes, freeing one slot
	select {
	case err := <-modest:
		if err != nil {
			t.Errorf("the other client's request = %v, want admitted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other client's request was not admitted at the freed slot")
	}
	close(gate)
	for range 3 * slots {
		<-done // the greedy client's requests end (admitted or turned away)
	}
}

// TestAdmitGivesUp: an append that does not complete (storage cut off)
// makes POST /add answer 503 with Retry-After within admitWait, rather
// than hold the request; a resubmission meanwhile gets 503 too, not a
// second append; once the append completes, a resubmission is answered
// with its index, as a duplicate, and the statement is in the log once.
func TestAdmitGivesUp(t *testing.T) {
	const wait = 500 * time.Millisecond
	g := newGate(nil)
	tl := newTestLogOpts(t, nil, nil, "quorum none\n", "", false,
		func(l *Log) { l.admitWait = wait }, withAppendHook(g.hook))
	e := release(t, tl.operator, measurement(1))
	post := func() (int, string, string, time.Duration) {
		start := time.Now()
		resp, err := http.Post(tl.url+"/add", "application/json", bytes.NewReader(e))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), time.Since(start)
	}
	for _, what := range []string{"the first submission", "a resubmission while the append hangs"} {
		code, ra, body, took := post()
		if code != http.StatusServiceUnavailable || ra == "" || !strings.Contains(body, "not appended within") || took > 10*wait {
			t.Fatalf("%s: %d (Retry-After %q) after %v: %s; want 503 with Retry-After within about %v", what, code, ra, took, body, wait)
		}
	}
	close(g.open)
	var r api.AddResponse
	waitForCond(t, func() bool {
		code, _, body, _ := post()
		return code == 200 && json.Unmarshal([]byte(body), &r) == nil
	}, "the resubmission to be acknowledged once the append completed")
	if !r.Duplicate {
		t.Errorf("resubmission after the append completed = %+v, want the original index as a duplicate", r)
	}
	if n := tl.size(t); n != 1 {
		t.Errorf("log size %d, want 1: the statement appended once", n)
	}
}
