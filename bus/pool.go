package bus

import "sync"

// pool runs handlers concurrently, at most n at a time. nats.go calls a
// subscription's handler serially; the handler submits the work here and
// returns, so one slow command does not hold up the others. When n handlers
// run, submit blocks, and further messages wait in the subscription's
// pending buffer.
//
// Measured with BenchmarkAPICreate/request-parallel-1ms-handler (64
// concurrent requesters, a handler that waits 1ms): about 1.2-2.5ms per
// request when handled inline in the subscription's goroutine, 35-180us
// with this pool. A goroutine per message (bounded by a semaphore) was
// within the noise of a fixed set of workers reading a channel, and keeps no
// idle goroutines.
type pool struct {
	sem    chan struct{}
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newPool(n int) *pool { return &pool{sem: make(chan struct{}, n)} }

// submit runs f in its own goroutine, waiting for a free slot first. It
// reports false, without running f, once the pool is closed.
func (p *pool) submit(f func()) bool {
	p.sem <- struct{}{}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return false
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer func() {
			<-p.sem
			p.wg.Done()
		}()
		f()
	}()
	return true
}

// close refuses new work and waits for the running handlers.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}
