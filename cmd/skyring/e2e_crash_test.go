package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// createMany creates n timers with that many concurrent clients (workers);
// mk gives the i-th body. It returns the ids by index and the first error.
func createMany(p *proc, n, workers int, mk func(i int) map[string]any) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r, err := p.try(http.MethodPost, "/timer", mk(i))
				if err == nil && r.Status != http.StatusCreated {
					err = fmt.Errorf("POST /timer #%d: %s", i, r)
				}
				if err == nil {
					loc := r.Header.Get("Location")
					id, ok := strings.CutPrefix(loc, "/timer/")
					if !ok || id == "" {
						err = fmt.Errorf("POST /timer #%d: Location %q", i, loc)
					}
					ids[i] = id
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop everyone
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids, firstErr
}

// TestCrashRecovery is the durability acceptance test: 10,000 timers are
// created (32 concurrent clients), all due at one absolute time a few
// seconds ahead; the node is killed with SIGKILL before any is due and
// started again on the same data directory. Every timer is delivered, each
// exactly once, none before its due time.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 timers and a kill -9: skipped with -short")
	}
	const (
		n       = 10000
		workers = 32
		pilotN  = 256
	)
	s := newSink(t)
	p := startNode(t)

	// Pilot: measure how fast this node (and this machine) creates timers,
	// with far-future timers that must survive the crash too.
	start := time.Now()
	far := atIn(time.Hour)
	farIDs, err := createMany(p, pilotN, workers, func(int) map[string]any {
		return with(body(s, "/cb/never"), "timeout", remove, "at", far)
	})
	require.NoError(t, err)
	pilot := time.Since(start)
	estimate := pilot * n / pilotN
	lead := max(6*time.Second, 2*estimate+3*time.Second)
	at := time.Now().Add(lead).UnixMilli()
	t.Logf("pilot: %d creates in %v; estimate for %d: %v; due in %v", pilotN, pilot, n, estimate, lead)

	start = time.Now()
	ids, err := createMany(p, n, workers, func(i int) map[string]any {
		return with(body(s, fmt.Sprintf("/crash/%d", i)), "timeout", remove, "at", at, "data", fmt.Sprint(i))
	})
	require.NoError(t, err)
	created := time.Since(start)
	t.Logf("created %d timers in %v (%.0f/s)", n, created, float64(n)/created.Seconds())
	untilDue := time.Until(time.UnixMilli(at))
	require.Greaterf(t, untilDue, 500*time.Millisecond,
		"creating took longer than the pilot predicted (%v): the kill would not come before the due time", created)

	p.Kill()
	require.Empty(t, s.All(), "nothing was due before the kill")
	killedAt := time.Now()
	p.Restart()
	t.Logf("restarted in %v; timers due in %v", time.Since(killedAt), time.Until(time.UnixMilli(at)))

	s.waitFor(t, time.Until(time.UnixMilli(at))+90*time.Second, fmt.Sprintf("%d distinct callbacks", n), func() bool {
		return len(s.byPath) >= n
	})
	t.Logf("all %d delivered %v after their due time", n, time.Since(time.UnixMilli(at)))
	s.barrier(t, p, 500)

	dueNS := at * int64(time.Millisecond)
	var early, dup, wrong []string
	for i := range n {
		as := s.Arrivals(fmt.Sprintf("/crash/%d", i))
		switch {
		case len(as) == 0:
			t.Fatalf("timer %d (%s) never delivered", i, ids[i])
		case len(as) > 1:
			dup = append(dup, fmt.Sprintf("%d×%d", i, len(as)))
		}
		a := as[0]
		if a.At.Round(0).UnixNano() < dueNS {
			early = append(early, fmt.Sprintf("%d by %v", i, time.Duration(dueNS-a.At.Round(0).UnixNano())))
		}
		if string(a.Body) != fmt.Sprint(i) || a.ID() != ids[i] {
			wrong = append(wrong, fmt.Sprintf("%d: body %q id %q want %q", i, a.Body, a.ID(), ids[i]))
		}
	}
	require.Empty(t, dup, "timers delivered more than once (index×count)")
	require.Empty(t, early, "timers delivered before their due time")
	require.Empty(t, wrong, "deliveries with the wrong body or id")
	require.Len(t, s.All(), n+1, "the %d timers and the barrier, nothing else", n)

	for _, id := range farIDs {
		r := p.do(t, http.MethodGet, timerPath(id), nil)
		require.Equal(t, http.StatusOK, r.Status, "far-future timer %s after the crash: %s", id, r)
	}
	p.requireUp(t)
	p.Stop()
}
