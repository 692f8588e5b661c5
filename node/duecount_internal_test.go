package node

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/skyring/skyring/wheel"
)

// dueIndex is an index of n armed timers: the first half due within a
// minute of now, the second half in about two hours.
func dueIndex(tb testing.TB, n int) (*index, int64) {
	tb.Helper()
	clock := wheel.NewFakeClock(time.Unix(1_800_000_000, 0))
	x, err := newIndex(clock, func([]string) {})
	if err != nil {
		tb.Fatal(err)
	}
	now := clock.Now().UnixNano()
	for i := range n {
		due := now + int64(30*time.Second)
		if i >= n/2 {
			due = now + int64(2*time.Hour)
		}
		x.arm("t-"+strconv.Itoa(i), due)
	}
	return x, now
}

// Up to the sample size every timer is counted (exact); beyond it, the
// sample's counts scale to within 5% of the true ones.
func TestSampleDue(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 10, dueSample, 10 * dueSample} {
		x, now := dueIndex(t, n)
		var soon, later float64
		scale := x.sampleDue(dueSample, func(due int64) {
			if due-now <= int64(time.Minute) {
				soon++
			} else {
				later++
			}
		})
		soon, later = soon*scale, later*scale
		if n <= dueSample {
			if scale != 1 || soon != float64(n/2) || later != float64(n-n/2) {
				t.Fatalf("n=%d: exact counts expected, got soon %v later %v scale %v", n, soon, later, scale)
			}
			continue
		}
		for _, got := range []float64{soon, later} {
			if math.Abs(got-float64(n/2)) > 0.05*float64(n/2) {
				t.Fatalf("n=%d: estimate %v, want %d within 5%%", n, got, n/2)
			}
		}
	}
}

// BenchmarkDueCollector compares a full pass over an index of 1,000,000
// armed timers with the sample a scrape of skyring_timers_pending_due
// reads; both hold the index's lock (creates on the node wait).
//
//	go test ./node -run '^$' -bench DueCollector -benchtime 10x
func BenchmarkDueCollector(b *testing.B) {
	x, _ := dueIndex(b, 1_000_000)
	b.Run("full", func(b *testing.B) {
		for range b.N {
			x.sampleDue(0, func(int64) {})
		}
	})
	b.Run("sample", func(b *testing.B) {
		for range b.N {
			x.sampleDue(dueSample, func(int64) {})
		}
	})
}
