package bus

import "sync"

// pool runs handlers concurrently, at most n at a time. nats.go calls a
// subscription's handler serially; the handler submits the work here and
// returns, so one slow command does not hold up the others. When n handlers
// run, submit blocks, and further messages wait in the subscription's
// pending buffer.
//
// Workers are started on demand, up to n, and then kept: a worker's stack
// grows once to what a command needs (JSON decoding, storage writes) and
// stays grown, where a goroutine per message paid for growing (copying) its
// stack on every message, about a tenth of a node's CPU under a flood of
// NATS creates.
type pool struct {
	n    int
	work chan func()
	done chan struct{}

	mu      sync.Mutex
	workers int
	closed  bool
	wg      sync.WaitGroup
}

func newPool(n int) *pool {
	return &pool{n: n, work: make(chan func()), done: make(chan struct{})}
}

// submit runs f on a worker, waiting for a free one first. It reports
// false, without running f, once the pool is closed.
func (p *pool) submit(f func()) bool {
	select {
	case p.work <- f: // an idle worker took it
		return true
	case <-p.done:
		return false
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.workers < p.n {
		p.workers++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.worker(f)
		return true
	}
	p.mu.Unlock()
	select {
	case p.work <- f:
		return true
	case <-p.done:
		return false
	}
}

func (p *pool) worker(f func()) {
	defer p.wg.Done()
	for {
		f()
		select {
		case f = <-p.work:
		case <-p.done:
			return
		}
	}
}

// close refuses new work and waits for the running handlers.
func (p *pool) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
