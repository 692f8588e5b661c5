package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// cleanup cancels every timer of the run that may still be pending: each
// id the workers claimed (a create that failed on the client's side may
// still have been stored) whose callback has not arrived. It cancels over
// the API the run created through (the first target, or NATS), with
// Concurrency workers, and returns how many timers it cancelled; ids the
// cluster no longer holds pending (delivered, never stored) are skipped.
// It runs to the end even when ctx is cancelled (an interrupted run is the
// one that most needs it), each request bounded by RequestTimeout.
func (e *engine) cleanup(ctx context.Context) (int64, error) {
	ctx = context.WithoutCancel(ctx)
	c, done, err := e.cleanupClient()
	if err != nil {
		return 0, fmt.Errorf("cleanup: %w", err)
	}
	defer done()
	claimed := int(e.next.Load())
	if e.planned > 0 {
		claimed = min(claimed, e.planned)
	}
	var (
		next      atomic.Int64
		cancelled atomic.Int64
		failed    atomic.Int64
		firstErr  error
		mu        sync.Mutex
		wg        sync.WaitGroup
	)
	for range min(e.cfg.Concurrency, max(claimed, 1)) {
		wg.Go(func() {
			for {
				seq := int(next.Add(1) - 1)
				if seq >= claimed {
					return
				}
				if e.sink.arrived(seq) {
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
				err := c.Cancel(rctx, e.ids.id(seq))
				cancel()
				switch {
				case err == nil:
					cancelled.Add(1)
				case errors.Is(err, skyring.ErrTimerNotFound):
				default:
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return cancelled.Load(), fmt.Errorf("cleanup: %d cancels failed, the first: %w", n, firstErr)
	}
	return cancelled.Load(), nil
}

// cleanupClient is a client of the API the run created through, and what
// closes it.
func (e *engine) cleanupClient() (client.Client, func(), error) {
	cfg := e.cfg
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL,
			nats.Name("skyring-bench-cleanup"),
			nats.IgnoreDiscoveredServers(),
			nats.Timeout(cfg.RequestTimeout),
			nats.Token(cfg.Token), // ignored when empty
		)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", cfg.NATSURL, err)
		}
		c, err := client.NewNATS(nc, client.WithPrefix(cfg.Prefix), client.WithTimeout(cfg.RequestTimeout))
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return c, nc.Close, nil
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}}
	opts := []client.HTTPOption{client.WithHTTPClient(hc)}
	if cfg.Token != "" {
		opts = append(opts, client.WithToken(cfg.Token))
	}
	c, err := client.NewHTTP(cfg.Targets[0], opts...)
	if err != nil {
		return nil, nil, err
	}
	return c, hc.CloseIdleConnections, nil
}
