package logserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// fairSlots bounds the admissions in progress and shares them between
// clients: a freed slot goes to the waiting client that holds the fewest,
// so one client with thousands of requests in flight cannot keep every
// other submitter waiting until its 503.
type fairSlots struct {
	mu      sync.Mutex
	free    int
	held    map[string]int
	waiting map[string][]*slotWaiter
}

type slotWaiter struct {
	ch      chan struct{}
	granted bool
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{free: n, held: map[string]int{}, waiting: map[string][]*slotWaiter{}}
}

// errNoSlot is acquire's error when no slot came within the wait.
var errNoSlot = errors.New("no admission slot")

// acquire takes a slot for client, waiting at most wait (or until ctx
// ends) for one to be freed.
func (s *fairSlots) acquire(ctx context.Context, client string, wait time.Duration) error {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.held[client]++
		s.mu.Unlock()
		return nil
	}
	w := &slotWaiter{ch: make(chan struct{})}
	s.waiting[client] = append(s.waiting[client], w)
	s.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-w.ch:
		return nil
	case <-t.C:
		err = errNoSlot
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted { // granted as it gave up: keep it (the caller releases)
		return nil
	}
	q := s.waiting[client]
	for i, x := range q {
		if x == w {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(s.waiting, client)
	} else {
		s.waiting[client] = q
	}
	return err
}

// release frees client's slot, handing it to the waiting client that
// holds the fewest (its longest-waiting request).
func (s *fairSlots) release(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[client]--; s.held[client] <= 0 {
		delete(s.held, client)
	}
	next, least := "", -1
	for c := range s.waiting {
		if h := s.held[c]; least < 0 || h < least || (h == least && c < next) {
			next, least = c, h
		}
	}
	if least < 0 {
		s.free++
		return
	}
	q := s.waiting[next]
	w := q[0]
	if len(q) == 1 {
		delete(s.waiting, next)
	} else {
		s.waiting[next] = q[1:]
	}
	w.granted = true
	s.held[next]++
	close(w.ch)
}

type clientKey struct{}

// withClient returns ctx naming the submitting client, whose share of the
// admission slots Admit bounds.
func withClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

// clientFromAddr is the client an HTTP request's remote address names:
// its IP address, or for IPv6 its /64 (one host commonly holds a whole
// /64, and would otherwise be as many clients as it likes).
func clientFromAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
