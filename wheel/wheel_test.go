package wheel_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/wheel"
)

const (
	ms   = int64(time.Millisecond)
	sec  = int64(time.Second)
	year = int64(365 * 24 * time.Hour)
)

// pendingDue tracks what a test added, to check Len and Next against.
type model map[string]int64

// checkNext asserts the contract of Next right after Advance(now): false iff
// nothing is pending, otherwise at or before the earliest due time and after
// now (a driver sleeping until Next must not spin).
func checkNext(t *testing.T, w *wheel.Wheel[string], pending model, now int64) {
	t.Helper()
	earliest := int64(math.MaxInt64)
	for _, due := range pending {
		earliest = min(earliest, due)
	}
	checkNextEarliest(t, w, len(pending), earliest, now)
}

func checkNextEarliest(t *testing.T, w *wheel.Wheel[string], n int, earliest, now int64) {
	t.Helper()
	if w.Len() != n {
		require.Equal(t, n, w.Len(), "Len")
	}
	next, ok := w.Next()
	if n == 0 {
		require.False(t, ok, "Next on an empty wheel")
		return
	}
	if !ok || next > earliest || next <= now {
		require.True(t, ok, "Next with %d pending", n)
		require.LessOrEqual(t, next, earliest, "Next after the earliest due time")
		require.Greater(t, next, now, "Next at or before now right after Advance(now)")
	}
}

func advance(w *wheel.Wheel[string], now int64) []string {
	var got []string
	w.Advance(now, func(v string) { got = append(got, v) })
	slices.Sort(got)
	return got
}

func TestWheelTable(t *testing.T) {
	t.Parallel()
	type add struct {
		v   string
		due int64
	}
	type step struct {
		now  int64
		want []string // fired at this step, sorted
	}
	tests := []struct {
		name   string
		tick   time.Duration
		start  int64
		adds   []add
		remove []string
		steps  []step
	}{
		{
			name: "never early inside a tick, exact boundary",
			tick: time.Millisecond,
			adds: []add{{"a", 1500 * 1000}},
			steps: []step{
				{now: ms},
				{now: 1500*1000 - 1},
				{now: 1500 * 1000, want: []string{"a"}},
				{now: 10 * ms},
			},
		},
		{
			name: "due on a tick boundary",
			tick: time.Millisecond,
			adds: []add{{"a", 2 * ms}},
			steps: []step{
				{now: 2*ms - 1},
				{now: 2 * ms, want: []string{"a"}},
			},
		},
		{
			name: "one tick split by now",
			tick: time.Millisecond,
			adds: []add{{"a", ms + 200_000}, {"b", ms + 800_000}, {"c", ms + 800_000}},
			steps: []step{
				{now: ms + 500_000, want: []string{"a"}},
				{now: ms + 799_999},
				{now: ms + 800_000, want: []string{"b", "c"}},
			},
		},
		{
			name: "cancel means never fires",
			tick: time.Millisecond,
			adds: []add{{"a", 5 * ms}, {"b", 5 * ms}, {"far", year}},
			remove: []string{
				"a", "far",
			},
			steps: []step{
				{now: 5 * ms, want: []string{"b"}},
				{now: 2 * year},
			},
		},
		{
			name:  "past due fires on the next advance",
			tick:  time.Millisecond,
			start: 10 * sec,
			adds:  []add{{"before-start", sec}, {"negative", -5}, {"at-start", 10 * sec}, {"future", 10*sec + 1}},
			steps: []step{
				{now: 10 * sec, want: []string{"at-start", "before-start", "negative"}},
				{now: 10*sec + 1, want: []string{"future"}},
			},
		},
		{
			name: "2^31-1 ms cascades down every level",
			tick: time.Millisecond,
			adds: []add{{"a", (1<<31 - 1) * ms}, {"b", (1<<31-1)*ms + 1}},
			steps: []step{
				{now: sec},
				{now: 1 << 20 * ms},
				{now: (1<<31-1)*ms - 1},
				{now: (1<<31 - 1) * ms, want: []string{"a"}},
				{now: (1<<31-1)*ms + 1, want: []string{"b"}},
			},
		},
		{
			name: "a year ahead in one jump after a near one",
			tick: time.Millisecond,
			adds: []add{{"near", 3 * ms}, {"year", year}},
			steps: []step{
				{now: year - 1, want: []string{"near"}},
				{now: year, want: []string{"year"}},
			},
		},
		{
			name: "the largest due time",
			tick: time.Millisecond,
			adds: []add{{"max", math.MaxInt64}, {"max-1", math.MaxInt64 - 1}},
			steps: []step{
				{now: math.MaxInt64 - 2},
				{now: math.MaxInt64 - 1, want: []string{"max-1"}},
				{now: math.MaxInt64, want: []string{"max"}},
			},
		},
		{
			name: "nanosecond tick across levels",
			tick: 1,
			adds: []add{{"a", 63}, {"b", 64}, {"c", 4095}, {"d", 4096}, {"e", 1 << 40}, {"f", math.MaxInt64}},
			steps: []step{
				{now: 63, want: []string{"a"}},
				{now: 4095, want: []string{"b", "c"}},
				{now: 4096, want: []string{"d"}},
				{now: 1<<40 - 1},
				{now: 1 << 40, want: []string{"e"}},
				{now: math.MaxInt64, want: []string{"f"}},
			},
		},
		{
			name:  "negative start",
			tick:  7,
			start: -sec,
			adds:  []add{{"a", -sec / 2}, {"b", 0}, {"c", sec / 2}},
			steps: []step{
				{now: -sec/2 - 1},
				{now: -1, want: []string{"a"}},
				{now: 0, want: []string{"b"}},
				{now: sec, want: []string{"c"}},
			},
		},
		{
			name: "time going back is ignored",
			tick: time.Millisecond,
			adds: []add{{"a", 5 * ms}},
			steps: []step{
				{now: 4 * ms},
				{now: 0},
				{now: 5 * ms, want: []string{"a"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := wheel.New[string](tt.start, tt.tick)
			pending := model{}
			entries := map[string]*wheel.Entry[string]{}
			for _, a := range tt.adds {
				e := w.Add(a.due, a.v)
				require.Equal(t, a.due, e.Due())
				require.Equal(t, a.v, e.Value())
				entries[a.v] = e
				pending[a.v] = a.due
			}
			for _, v := range tt.remove {
				require.True(t, w.Remove(entries[v]), "Remove(%s)", v)
				require.False(t, w.Remove(entries[v]), "second Remove(%s)", v)
				delete(pending, v)
			}
			last := tt.start
			for _, s := range tt.steps {
				got := advance(w, s.now)
				require.Equal(t, s.want, got, "Advance(%d)", s.now)
				last = max(last, s.now)
				for _, v := range got {
					require.LessOrEqual(t, pending[v], last, "%s handed out early", v)
					delete(pending, v)
					require.False(t, w.Remove(entries[v]), "Remove after expiry")
				}
				checkNext(t, w, pending, last)
			}
		})
	}
}

// TestWheelExactAtEveryDue walks time through every due time of a random
// set, stopping 1 ns before each and at it: nothing may come out early, and
// everything must come out at its exact due time.
func TestWheelExactAtEveryDue(t *testing.T) {
	t.Parallel()
	scales := []struct {
		name string
		tick time.Duration
		span int64
	}{
		{"1ms tick within a second", time.Millisecond, sec},
		{"1ms tick within a minute", time.Millisecond, 60 * sec},
		{"1ms tick within 2^31 ms", time.Millisecond, (1 << 31) * ms},
		{"1ms tick within 3 years", time.Millisecond, 3 * year},
		{"1ns tick within 2^62", 1, 1 << 62},
		{"1s tick within a day", time.Second, 86400 * sec},
		{"odd tick", 999_983, 10 * year},
	}
	for i, sc := range scales {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			start := int64(1_700_000_000) * sec
			w := wheel.New[string](start, sc.tick)
			pending := model{}
			byDue := map[int64][]string{}
			for k := range 2000 {
				// Log-uniform offsets hit every level.
				off := int64(math.Exp(rng.Float64()*math.Log(float64(sc.span)))) + rng.Int64N(3)
				due := start + off
				v := string(rune('a'+k%26)) + "-" + time.Duration(k).String()
				w.Add(due, v)
				pending[v] = due
				byDue[due] = append(byDue[due], v)
			}
			dues := slices.Sorted(func(yield func(int64) bool) {
				for d := range byDue {
					if !yield(d) {
						return
					}
				}
			})
			n := len(pending)
			for i, due := range dues {
				require.Empty(t, advance(w, due-1), "early at %d", due-1)
				checkNextEarliest(t, w, n, due, due-1)
				want := slices.Clone(byDue[due])
				slices.Sort(want)
				require.Equal(t, want, advance(w, due), "at %d", due)
				n -= len(want)
				earliest := int64(math.MaxInt64)
				if i+1 < len(dues) {
					earliest = dues[i+1]
				}
				checkNextEarliest(t, w, n, earliest, due)
			}
			require.Zero(t, w.Len())
		})
	}
}

func TestWheelManyAtOneInstant(t *testing.T) {
	t.Parallel()
	const n = 100_000
	w := wheel.New[int](0, time.Millisecond)
	due := 42*sec + 123
	for i := range n {
		w.Add(due, i)
	}
	require.Equal(t, n, w.Len())
	next, ok := w.Next()
	require.True(t, ok)
	require.LessOrEqual(t, next, due)

	w.Advance(due-1, func(int) { t.Fatal("fired early") })
	next, ok = w.Next()
	require.True(t, ok)
	require.Equal(t, due, next, "Next is exact once the bucket is the current one")

	seen := make([]bool, n)
	count := 0
	w.Advance(due, func(v int) {
		if seen[v] {
			t.Errorf("value %d handed out twice", v)
		}
		seen[v] = true
		count++
	})
	require.Equal(t, n, count)
	require.Zero(t, w.Len())
	_, ok = w.Next()
	require.False(t, ok)
}

func TestWheelOrderByTick(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	w := wheel.New[int64](0, time.Millisecond)
	for range 5000 {
		due := rng.Int64N(100 * sec)
		w.Add(due, due)
	}
	var prev int64 = -1
	w.Advance(100*sec, func(due int64) {
		require.GreaterOrEqual(t, due/ms, prev/ms, "handed out out of tick order")
		prev = due
	})
	require.Zero(t, w.Len())
}

func TestWheelRemove(t *testing.T) {
	t.Parallel()
	w := wheel.New[string](0, time.Millisecond)
	require.False(t, w.Remove(nil))

	a := w.Add(5*ms, "a")
	b := w.Add(5*ms, "b")
	c := w.Add(year, "c")
	require.Equal(t, 3, w.Len())

	require.True(t, w.Remove(b))
	require.False(t, w.Remove(b), "removed twice")
	require.Equal(t, 2, w.Len())

	require.Equal(t, []string{"a"}, advance(w, 5*ms))
	require.False(t, w.Remove(a), "Remove after expiry")
	require.Equal(t, 1, w.Len())

	require.True(t, w.Remove(c))
	require.Zero(t, w.Len())
	_, ok := w.Next()
	require.False(t, ok, "Next after removing everything")
	require.Empty(t, advance(w, 2*year))

	// A bucket emptied by Remove and filled again reports the new due time.
	d := w.Add(2*year+10*ms+100, "d")
	require.True(t, w.Remove(d))
	w.Add(2*year+10*ms+900, "e")
	next, ok := w.Next()
	require.True(t, ok)
	require.LessOrEqual(t, next, 2*year+10*ms+900)
	require.Empty(t, advance(w, 2*year+10*ms+899))
	require.Equal(t, []string{"e"}, advance(w, 2*year+10*ms+900))
}

func TestWheelNext(t *testing.T) {
	t.Parallel()
	w := wheel.New[string](0, time.Millisecond)
	_, ok := w.Next()
	require.False(t, ok, "empty wheel")

	w.Add(1*sec+300, "a")
	next, ok := w.Next()
	require.True(t, ok)
	require.LessOrEqual(t, next, 1*sec+300)

	w.Add(20*ms+7, "b")
	next, ok = w.Next()
	require.True(t, ok)
	require.Equal(t, 20*ms+7, next, "exact within the first 64 ticks")

	// Walking by Next never spins and reaches the exact due times.
	var fired []string
	now := int64(0)
	for steps := 0; w.Len() > 0; steps++ {
		require.Less(t, steps, 20, "too many wake-ups")
		next, ok := w.Next()
		require.True(t, ok)
		require.Greater(t, next, now)
		now = next
		w.Advance(now, func(v string) { fired = append(fired, v) })
	}
	require.Equal(t, []string{"b", "a"}, fired)
	require.Equal(t, 1*sec+300, now, "last wake-up is the exact due time")

	// An entry due at or before now: Next is at or before its due time.
	w.Add(5, "past")
	next, ok = w.Next()
	require.True(t, ok)
	require.LessOrEqual(t, next, int64(5))
	require.Equal(t, []string{"past"}, advance(w, now))
}

func TestWheelReentrantFn(t *testing.T) {
	t.Parallel()
	w := wheel.New[string](0, time.Millisecond)
	var victim *wheel.Entry[string]
	w.Add(ms, "killer")
	victim = w.Add(ms, "victim")
	w.Add(2*ms, "adder")

	var fired []string
	w.Advance(2*ms, func(v string) {
		fired = append(fired, v)
		switch v {
		case "killer":
			w.Remove(victim)
		case "victim":
			// The killer may come second within its tick; then the victim
			// went first and the Remove above must report false.
		case "adder":
			w.Add(0, "added-past")
			w.Add(3*ms, "added-future")
		}
	})
	if slices.Contains(fired, "victim") {
		require.Equal(t, []string{"victim", "killer", "adder", "added-past"}, fired)
	} else {
		require.Equal(t, []string{"killer", "adder", "added-past"}, fired)
	}
	require.Equal(t, 1, w.Len())
	require.Equal(t, []string{"added-future"}, advance(w, 3*ms))
}

func TestWheelDefaultTick(t *testing.T) {
	t.Parallel()
	w := wheel.New[string](0, 0)
	w.Add(1500_000, "a")
	require.Empty(t, advance(w, 1499_999))
	require.Equal(t, []string{"a"}, advance(w, 1500_000))
}

// TestWheelRewind: after Rewind, entries due after the new time are pending
// again (also one already expired but not handed out), the rest stay
// expired, handles stay valid, and Next is exact.
func TestWheelRewind(t *testing.T) {
	t.Parallel()
	const ms = int64(time.Millisecond)
	w := wheel.New[string](0, 0)
	w.Add(10*ms, "early")
	late := w.Add(5000*ms, "late")
	later := w.Add(9000*ms, "later")
	var got []string
	collect := func(now int64) []string {
		got = got[:0]
		w.Advance(now, func(v string) { got = append(got, v) })
		return got
	}
	require.Equal(t, []string{"early"}, collect(100*ms))
	// Added at or before the wheel's time: expired at once.
	w.Add(90*ms, "re-created")
	w.Add(20*ms, "overdue")

	w.Rewind(50 * ms)
	require.Equal(t, 50*ms, w.Now())
	require.Equal(t, 4, w.Len())
	next, ok := w.Next()
	require.True(t, ok)
	require.Equal(t, 20*ms, next, "the overdue one is still due")
	require.Equal(t, []string{"overdue"}, collect(50*ms))
	next, _ = w.Next()
	require.Equal(t, 90*ms, next)
	require.Empty(t, collect(90*ms-1), "nothing before its due time")
	require.Equal(t, []string{"re-created"}, collect(90*ms))

	require.True(t, w.Remove(late), "handles stay valid")
	w.Rewind(100 * ms) // not back: nothing changes
	require.Equal(t, 90*ms, w.Now())
	require.Empty(t, collect(9000*ms-1))
	require.Equal(t, []string{"later"}, collect(9000*ms))
	require.False(t, w.Remove(later))
	require.Zero(t, w.Len())
}
