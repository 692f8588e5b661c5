package wheel_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/wheel"
)

// fuzzScales are the magnitudes a fuzzed time offset is drawn from: every
// level of the wheel, tick boundaries, and the far end of int64.
var fuzzScales = [16]int64{
	0, 1, 7, 1_000, 999_983, ms, 64 * ms, sec,
	int64(time.Hour), 24 * int64(time.Hour), year, (1<<31 - 1) * ms,
	1 << 50, 1 << 58, 1 << 62, math.MaxInt64 / 200,
}

func fuzzDelta(a, b byte) int64 {
	s := fuzzScales[a%16]
	if s >= math.MaxInt64/256 {
		return s/16*int64(b>>4) + int64(b&15)
	}
	return s*int64(b)/16 + int64(b&3)
}

func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// FuzzWheel runs a byte-coded sequence of Add, Remove, Advance and Next
// against a reference model and checks the invariants: nothing is handed out
// before its due time, every entry not removed is handed out exactly once
// once time passes its due time, a removed entry never is, Remove reports
// whether the entry was pending, Len counts the pending entries, and Next is
// at or before the earliest due time (and after now right after Advance).
func FuzzWheel(f *testing.F) {
	f.Add([]byte{3, 0, 5, 10, 0, 5, 200, 3, 5, 100, 3, 5, 255, 4, 0, 0})
	f.Add([]byte{0, 0, 11, 255, 1, 12, 1, 2, 0, 0, 3, 11, 254, 3, 11, 1, 3, 14, 255})
	f.Add([]byte{1, 0, 0x85, 3, 3, 0, 0, 0, 6, 9, 2, 0, 1, 3, 6, 9})
	f.Add([]byte{4, 0, 15, 255, 0, 14, 255, 3, 15, 255, 3, 15, 255})
	f.Add([]byte{2, 0, 4, 1, 0, 4, 2, 0, 4, 3, 2, 0, 1, 3, 4, 2, 4, 0, 0})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		seed := make([]byte, 64+rng.IntN(256))
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		ticks := []time.Duration{1, 7, time.Microsecond, time.Millisecond, time.Second, 999_983}
		starts := []int64{0, 1_700_000_000 * sec, -sec, 12345}
		tick := ticks[int(data[0])%len(ticks)]
		now := starts[int(data[0]/16)%len(starts)]
		data = data[1:]

		type rec struct {
			due            int64
			e              *wheel.Entry[int]
			removed, fired bool
		}
		var recs []*rec
		pending := 0
		w := wheel.New[int](now, tick)
		fire := func(v int) {
			r := recs[v]
			if r.fired || r.removed || r.due > now {
				t.Fatalf("entry %d (due %d) handed out at %d: fired=%v removed=%v", v, r.due, now, r.fired, r.removed)
			}
			r.fired = true
			pending--
		}
		checkNext := func(afterAdvance bool) {
			t.Helper()
			earliest := int64(math.MaxInt64)
			for _, r := range recs {
				if !r.fired && !r.removed {
					earliest = min(earliest, r.due)
				}
			}
			next, ok := w.Next()
			require.Equal(t, pending > 0, ok, "Next ok with %d pending", pending)
			if !ok {
				return
			}
			require.LessOrEqual(t, next, earliest, "Next after the earliest due time")
			if afterAdvance {
				require.Greater(t, next, now, "Next at or before now right after Advance")
			}
		}
		checkDue := func() {
			t.Helper()
			for i, r := range recs {
				if !r.fired && !r.removed && r.due <= now {
					t.Fatalf("entry %d due %d still pending at %d", i, r.due, now)
				}
			}
		}

		for len(data) >= 3 {
			op, a, b := data[0], data[1], data[2]
			data = data[3:]
			switch op % 5 {
			case 0, 1:
				d := fuzzDelta(a, b)
				if a&0x80 != 0 {
					d = -d
				}
				r := &rec{due: satAdd(now, d)}
				r.e = w.Add(r.due, len(recs))
				require.Equal(t, r.due, r.e.Due())
				require.Equal(t, len(recs), r.e.Value())
				recs = append(recs, r)
				pending++
			case 2:
				if len(recs) == 0 {
					continue
				}
				r := recs[(int(a)<<8|int(b))%len(recs)]
				require.Equal(t, !r.fired && !r.removed, w.Remove(r.e), "Remove result")
				if !r.fired && !r.removed {
					r.removed = true
					pending--
				}
			case 3:
				now = satAdd(now, fuzzDelta(a, b))
				w.Advance(now, fire)
				checkDue()
				checkNext(true)
			case 4:
				checkNext(false)
			}
			require.Equal(t, pending, w.Len(), "Len")
		}

		now = math.MaxInt64
		w.Advance(now, fire)
		require.Zero(t, w.Len())
		for i, r := range recs {
			require.True(t, r.fired != r.removed, "entry %d: fired=%v removed=%v", i, r.fired, r.removed)
		}
	})
}
