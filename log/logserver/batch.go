package logserver

import (
	"errors"
	"sync"
)

// group runs an operation over many items at once: the items submitted
// while a run is in flight wait for it, then go together in the next
// (up to maxBatch items a run). An item alone runs at once, so an idle
// log adds no latency; under load a database round trip is paid per
// batch, not per item (group commit). The zero value is ready to use.
type group[T any] struct {
	mu    sync.Mutex
	queue []*groupCall[T]
	busy  bool
}

type groupCall[T any] struct {
	item T
	err  error
	done chan struct{}
}

// errBatchShort is the answer to an item its run did not answer (a bug).
var errBatchShort = errors.New("logserver: a batch answered fewer items than it was given")

// maxBatch is the most items of one run: a statement of at most a few
// thousand parameters.
const maxBatch = 256

// do submits item and returns its result once a run of run has taken
// it. run gets at most maxBatch items, none twice, and returns one
// error per item (nil where it succeeded), or an error of the whole run
// (the database did not answer): that error then also answers, at once,
// every item queued behind the run, which would otherwise wait a run's
// timeout each in turn (an outage fails fast, and a server stopping
// during one is not held up by its queue). run must not call do. A run
// is not cancelled when a caller gives up: do always returns run's
// answer, so that a caller never loses track of what the run did on
// its behalf (a claim it made, an index it recorded).
func (g *group[T]) do(item T, run func([]T) ([]error, error)) error {
	c := &groupCall[T]{item: item, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.busy {
		g.busy = true
		go g.drain(run)
	}
	g.mu.Unlock()
	<-c.done
	return c.err
}

// drain runs the queue in batches until it is empty.
func (g *group[T]) drain(run func([]T) ([]error, error)) {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxBatch)
		if n == 0 {
			g.busy = false
			g.mu.Unlock()
			return
		}
		calls := g.queue[:n:n]
		g.queue = g.queue[n:]
		if len(g.queue) == 0 {
			g.queue = nil
		}
		g.mu.Unlock()
		items := make([]T, n)
		for i, c := range calls {
			items[i] = c.item
		}
		errs, err := run(items)
		if err != nil {
			g.mu.Lock()
			calls = append(calls, g.queue...)
			g.queue = nil
			g.mu.Unlock()
		}
		for i, c := range calls {
			switch {
			case err != nil:
				c.err = err
			case i < len(errs):
				c.err = errs[i]
			default:
				c.err = errBatchShort
			}
			close(c.done)
		}
	}
}
