package bus

import (
	"os"
	"sync"
)

var poolMode = os.Getenv("BUS_POOL_MODE")

type pool struct {
	sem    chan struct{}
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	work   chan func()
	once   sync.Once
}

func newPool(n int) *pool {
	p := &pool{sem: make(chan struct{}, n)}
	if poolMode == "workers" {
		p.work = make(chan func(), n)
		for range n {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for f := range p.work {
					f()
				}
			}()
		}
	}
	return p
}

func (p *pool) submit(f func()) bool {
	switch poolMode {
	case "inline":
		f()
		return true
	case "workers":
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return false
		}
		p.mu.Unlock()
		p.work <- f
		return true
	}
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

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if p.work != nil {
		p.once.Do(func() { close(p.work) })
	}
	p.wg.Wait()
}
