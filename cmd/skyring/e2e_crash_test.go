package main_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// errLate is what createMany returns when its deadline came first.
var errLate = errors.New("creates still running at the deadline")

// createMany creates n timers with that many concurrent clients (workers);
// mk gives the i-th body. No create is sent from until on (zero: no
// deadline); then it returns errLate. It returns the ids by index and the
// first error.
func createMany(p *proc, n, workers int, until time.Time, mk func(i int) map[string]any) ([]string, error) {
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
				if !until.IsZero() && !time.Now().Before(until) {
					errOnce.Do(func() { firstErr = errLate })
					next.Store(int64(n))
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
//
// A pilot measures how fast the node creates, to choose the lead; should
// the creates still run too close to the due time for the kill to come
// first, the attempt is put away and run again on a fresh node with the
// lead the slow attempt measured (withLead).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 timers and a kill -9: skipped with -short")
	}
	const (
		n       = 10000
		workers = 32
		pilotN  = 256
	)
	withLead(t, 0, func(lead time.Duration) time.Duration {
		s := newSink(t)
		p := startNode(t)

		// Pilot: measure how fast this node (and this machine) creates
		// timers, with far-future timers that must survive the crash too.
		start := time.Now()
		far := atIn(time.Hour)
		farIDs, err := createMany(p, pilotN, workers, time.Time{}, func(int) map[string]any {
			return with(body(s, "/cb/never"), "timeout", remove, "at", far)
		})
		require.NoError(t, err)
		pilot := time.Since(start)
		estimate := pilot * n / pilotN
		lead = max(lead, 6*time.Second, 2*estimate+3*time.Second)
		at := time.Now().Add(lead).UnixMilli()
		t.Logf("pilot: %d creates in %v; estimate for %d: %v; due in %v", pilotN, pilot, n, estimate, lead)

		start = time.Now()
		// No create is sent in the last second before the due time: the
		// kill has to come first.
		ids, err := createMany(p, n, workers, time.UnixMilli(at).Add(-time.Second), func(i int) map[string]any {
			return with(body(s, fmt.Sprintf("/crash/%d", i)), "timeout", remove, "at", at, "data", fmt.Sprint(i))
		})
		created := time.Since(start)
		if errors.Is(err, errLate) {
			p.Kill()
			t.Logf("creating took longer than the pilot predicted: %v, and not done", created)
			// Twice what all n would take at the rate seen.
			return 2*created*n/time.Duration(max(1, countSet(ids))) + 3*time.Second
		}
		require.NoError(t, err)
		t.Logf("created %d timers in %v (%.0f/s)", n, created, float64(n)/created.Seconds())
		if untilDue := time.Until(time.UnixMilli(at)); untilDue < 500*time.Millisecond {
			p.Kill()
			t.Logf("creating took longer than the pilot predicted (%v, due in %v): the kill would not come before the due time", created, untilDue)
			return 2*created + 3*time.Second
		}

		p.Kill()
		killedAt := time.Now()
		if killedAt.UnixMilli() >= at {
			t.Logf("killed %v after the due time", killedAt.Sub(time.UnixMilli(at)))
			return 2*created + 3*time.Second
		}
		require.Empty(t, s.All(), "nothing was due before the kill")
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
		return 0
	})
}

// countSet counts the ids that are set.
func countSet(ids []string) int {
	k := 0
	for _, id := range ids {
		if id != "" {
			k++
		}
	}
	return k
}
