package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// floorUserAgent is what the floor sends instead of skyring/<version>.
const floorUserAgent = "skyring/bench-floor"

// floor plays Skyring's part in floor mode: it holds every callback request
// in memory and sends each to the sink at its due instant, through one
// shared keep-alive client limited to conns connections, with conns
// delivery workers: the way Skyring's http transport delivers.
type floor struct {
	client      *http.Client
	uri         string
	ids         idScheme
	bodies      [][]byte
	due         func(seq int) int64
	conns       int
	contentType []string

	sent    atomic.Int64
	errs    atomic.Int64
	reasons reasons
}

func newFloor(cfg Config, uri string, ids idScheme, b *bodies, n int, due func(int) int64) *floor {
	f := &floor{
		client:      newHTTPClient(cfg.FloorConns, cfg.FloorConns, cfg.RequestTimeout),
		uri:         uri,
		ids:         ids,
		bodies:      make([][]byte, n),
		due:         due,
		conns:       cfg.FloorConns,
		contentType: []string{"text/plain; charset=utf-8"},
	}
	if b.object {
		f.contentType = []string{"application/json"}
	}
	for seq := range n {
		f.bodies[seq] = b.appendData(nil, seq, due(seq))
	}
	return f
}

// run sends every request at its due instant, never before, and returns
// once all were answered or ctx is done.
func (f *floor) run(ctx context.Context) {
	defer f.client.CloseIdleConnections()
	work := make(chan int, f.conns)
	var wg sync.WaitGroup
	for range f.conns {
		wg.Go(func() {
			for seq := range work {
				f.deliver(ctx, seq)
			}
		})
	}
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	defer tm.Stop()
dispatch:
	for seq := range f.bodies {
		if !sleepUntil(ctx, tm, f.due(seq)) {
			break
		}
		select {
		case work <- seq:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(work)
	wg.Wait()
}

func (f *floor) deliver(ctx context.Context, seq int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.uri, bytes.NewReader(f.bodies[seq]))
	if err != nil {
		f.fail(err.Error())
		return
	}
	req.Header["User-Agent"] = []string{floorUserAgent}
	req.Header["Content-Type"] = f.contentType
	req.Header["X-Skyring-Timer-Id"] = []string{f.ids.id(seq)}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			f.fail(oneLine(err.Error()))
		}
		return
	}
	drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		f.fail(resp.Status)
		return
	}
	f.sent.Add(1)
}

func (f *floor) fail(reason string) {
	f.errs.Add(1)
	f.reasons.add(reason)
}

// sleepUntil waits until the wall clock reads at least Unix ns t (never
// less: it re-checks after each wake-up). It reports false if ctx ended
// first. tm must be stopped.
func sleepUntil(ctx context.Context, tm *time.Timer, t int64) bool {
	for {
		d := time.Duration(t - time.Now().UnixNano())
		if d <= 0 {
			return true
		}
		tm.Reset(d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return false
		}
	}
}
