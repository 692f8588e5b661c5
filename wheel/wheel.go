package wheel

import (
	"math"
	"math/bits"
	"time"
)

const (
	slotBits = 6             // bits of the tick number resolved by one level
	numSlots = 1 << slotBits // buckets per level; one occupancy bit each in a uint64
	slotMask = numSlots - 1
)

// DefaultTick is the tick of a wheel when none is given: the width of a
// level-0 bucket. It bounds how much work the core does per call, not the
// precision of due times, which are exact nanoseconds.
const DefaultTick = time.Millisecond

// Entry is one pending value of a [Wheel], and the handle returned by
// [Wheel.Add] that [Wheel.Remove] takes to cancel it in O(1).
//
// Due and Value may be read at any time, also from other goroutines than the
// one using the wheel: they never change.
type Entry[T any] struct {
	next, prev *Entry[T] // bucket list links; prev is nil once the entry is no longer pending
	due        int64
	value      T
}

// Due returns the due time the entry was added with, in Unix nanoseconds.
func (e *Entry[T]) Due() int64 { return e.due }

// Value returns the value the entry was added with.
func (e *Entry[T]) Value() T { return e.value }

// pending reports whether the entry is still in a wheel.
func (e *Entry[T]) pending() bool { return e.prev != nil }

// level is one ring of 64 buckets. Each bucket is the sentinel of a circular
// doubly linked list; occupied has the bit of every bucket that may hold
// entries (a bit may stay set for a bucket emptied by Remove; it is cleared
// lazily when the bucket is next looked at).
type level[T any] struct {
	occupied uint64
	slots    [numSlots]Entry[T]
}

// Wheel is a hierarchical timing wheel: the pure core of the package, with
// time passed in as Unix nanoseconds. See the package documentation for its
// layout.
//
// A Wheel is not safe for concurrent use; [Driver] wraps one with a lock. The
// zero value is not usable, and a Wheel must not be copied: use [New].
type Wheel[T any] struct {
	start int64  // time of tick 0
	tick  uint64 // nanoseconds per tick
	now   int64  // the latest time given to Advance (start before the first call)
	cur   uint64 // current tick, counted from start: every entry of an earlier tick has expired
	n     int    // pending entries, including those in expired

	levels []level[T]

	// While level-0 bucket i is not empty, min0[i] is at or before the
	// earliest due time in it and max0[i] at or after the latest (both exact
	// unless an entry was removed since).
	min0, max0 [numSlots]int64

	// expired holds the entries whose due time has passed but which have not
	// been handed out yet, oldest first; expiredMin is at or before their
	// earliest due time.
	expired    Entry[T]
	expiredMin int64
}

// New returns an empty wheel whose time starts at start (Unix nanoseconds)
// and whose level-0 buckets are tick wide. A tick <= 0 means [DefaultTick].
// Due times before start are accepted and expire on the next Advance.
func New[T any](start int64, tick time.Duration) *Wheel[T] {
	if tick <= 0 {
		tick = DefaultTick
	}
	w := &Wheel[T]{
		start:      start,
		tick:       uint64(tick),
		now:        start,
		expiredMin: math.MaxInt64,
	}
	// Enough levels for the largest tick number, (2^64-1)/tick.
	maxTicks := math.MaxUint64 / w.tick
	w.levels = make([]level[T], (bits.Len64(maxTicks)+slotBits-1)/slotBits)
	for l := range w.levels {
		for i := range w.levels[l].slots {
			s := &w.levels[l].slots[i]
			s.next, s.prev = s, s
		}
	}
	for i := range w.min0 {
		w.min0[i] = math.MaxInt64
	}
	w.expired.next, w.expired.prev = &w.expired, &w.expired
	return w
}

// Len returns the number of pending entries: added, not removed and not
// handed out yet.
func (w *Wheel[T]) Len() int { return w.n }

// Add files v under the due time due (Unix nanoseconds) and returns its
// handle. A due time at or before the latest time given to [Wheel.Advance] is
// accepted and handed out by the next Advance. O(1).
func (w *Wheel[T]) Add(due int64, v T) *Entry[T] {
	e := &Entry[T]{due: due, value: v}
	w.n++
	if due <= w.now {
		w.pushExpired(e)
		return e
	}
	w.place(e)
	return e
}

// Remove cancels a pending entry so that it is never handed out. It returns
// false if the entry was already handed out or removed. O(1).
//
// e must have been returned by Add on this wheel.
func (w *Wheel[T]) Remove(e *Entry[T]) bool {
	if e == nil || !e.pending() {
		return false
	}
	unlink(e)
	w.n--
	return true
}

// Advance moves the wheel's time to now and calls fn, in the calling
// goroutine, with the value of every pending entry whose due time is at or
// before now, never with one due later. Each entry is removed from the wheel
// before fn is called with its value, so fn sees it neither in Len nor to
// Remove. Values come out roughly in due order: by tick, in no fixed order
// within a tick.
//
// fn may call Add and Remove (an entry removed by fn before its turn is not
// handed out; one added by fn with a due time at or before now is), but not
// Advance. A now earlier than a previous call's is treated as that time.
func (w *Wheel[T]) Advance(now int64, fn func(T)) {
	w.collect(now)
	for !w.expiredEmpty() {
		e := w.expired.next
		unlink(e)
		w.n--
		fn(e.value)
	}
	w.expiredMin = math.MaxInt64
}

// Rewind moves the wheel's time back to now, for a clock that stepped
// backwards (an NTP step, a VM resumed with an old clock): every pending
// entry due after now waits again, even one already expired but not handed
// out yet, so that nothing is handed out before the clock reads its due time.
// Entries due at or before now stay expired. Entry handles stay valid. A now
// at or after the wheel's time does nothing. O(pending entries).
func (w *Wheel[T]) Rewind(now int64) {
	if now >= w.now {
		return
	}
	var all Entry[T]
	all.next, all.prev = &all, &all
	for lvl := range w.levels {
		l := &w.levels[lvl]
		for i := range l.slots {
			spliceBack(&l.slots[i], &all)
		}
		l.occupied = 0
	}
	spliceBack(&w.expired, &all)
	for i := range w.min0 {
		w.min0[i] = math.MaxInt64
	}
	w.expiredMin = math.MaxInt64
	w.start, w.now, w.cur = now, now, 0
	for all.next != &all {
		e := all.next
		unlink(e)
		if e.due <= now {
			w.pushExpired(e)
		} else {
			w.place(e)
		}
	}
}

// Now returns the wheel's time: the latest time given to Advance, or to
// Rewind after it.
func (w *Wheel[T]) Now() int64 { return w.now }

// Next returns a time at or before the earliest due time of the pending
// entries, and false if there are none. For entries due within the current
// 64 ticks it is their exact due time (unless a removal left it earlier);
// for later ones it is the start of their bucket, and when time gets there
// Advance moves them to finer buckets so that Next grows exact. Right after
// Advance(now), Next is after now unless an entry due at or before now has
// been added since, so a caller sleeping until Next never spins.
func (w *Wheel[T]) Next() (int64, bool) {
	if w.n == 0 {
		return 0, false
	}
	if !w.expiredEmpty() {
		return w.expiredMin, true
	}
	lvl, idx, t, ok := w.nextSlot()
	if !ok {
		return 0, false
	}
	if lvl == 0 {
		return w.min0[idx], true
	}
	return w.timeOf(t), true
}

// collect moves the wheel's time to now and every entry due at or before now
// to the expired list, cascading the buckets it reaches on the way. Its cost
// is the number of entries moved plus the number of non-empty buckets met.
func (w *Wheel[T]) collect(now int64) {
	if now < w.now {
		now = w.now
	}
	w.now = now
	target := w.tickOf(now)
	for {
		lvl, idx, t, ok := w.nextSlot()
		if !ok || t > target {
			break
		}
		l := &w.levels[lvl]
		head := &l.slots[idx]
		w.cur = max(w.cur, t)
		if lvl > 0 {
			// Time reached a coarse bucket: refile its entries relative to the
			// bucket's start, which puts every one of them on a lower level.
			for head.next != head {
				e := head.next
				unlink(e)
				w.place(e)
			}
			l.occupied &^= 1 << idx
			continue
		}
		if t < target {
			// The whole tick lies before now: every entry of it is due.
			w.expiredMin = min(w.expiredMin, w.min0[idx])
			spliceBack(head, &w.expired)
			l.occupied &^= 1 << idx
			w.min0[idx] = math.MaxInt64
			continue
		}
		// The bucket of the current tick: hand out only what is due, keep the
		// rest and compute its exact earliest due time. Skipped while now is
		// before the bucket's earliest due time; the whole bucket goes at once
		// if now is past its latest.
		if now >= w.max0[idx] {
			w.expiredMin = min(w.expiredMin, w.min0[idx])
			spliceBack(head, &w.expired)
			l.occupied &^= 1 << idx
			w.min0[idx] = math.MaxInt64
		} else if now >= w.min0[idx] {
			lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
			for e := head.next; e != head; {
				nx := e.next
				if e.due <= now {
					unlink(e)
					w.pushExpired(e)
				} else {
					lo, hi = min(lo, e.due), max(hi, e.due)
				}
				e = nx
			}
			w.min0[idx], w.max0[idx] = lo, hi
			if head.next == head {
				l.occupied &^= 1 << idx
			}
		}
		break
	}
	w.cur = max(w.cur, target)
}

// nextSlot finds the earliest bucket that holds entries: its level, index and
// first tick. Entries of a lower level always expire before those of a higher
// level, so the first level with a non-empty bucket at or after the current
// tick has it. Stale occupancy bits met on the way are cleared.
func (w *Wheel[T]) nextSlot() (lvl int, idx uint, first uint64, ok bool) {
	for lvl = range w.levels {
		l := &w.levels[lvl]
		if l.occupied == 0 {
			continue
		}
		shift := uint(lvl) * slotBits
		ci := uint(w.cur>>shift) & slotMask
		// Level 0 holds the current tick's bucket; higher levels only buckets
		// after the current one.
		from := ci
		if lvl > 0 {
			from++
		}
		var m uint64
		if from < numSlots {
			m = l.occupied >> from << from
		}
		for m != 0 {
			i := uint(bits.TrailingZeros64(m))
			if s := &l.slots[i]; s.next == s {
				l.occupied &^= 1 << i
				m &^= 1 << i
				if lvl == 0 {
					w.min0[i] = math.MaxInt64
				}
				continue
			}
			var base uint64
			if span := shift + slotBits; span < 64 {
				base = w.cur >> span << span
			}
			return lvl, i, base | uint64(i)<<shift, true
		}
	}
	return 0, 0, 0, false
}

// place files e in the bucket for its due tick relative to the current tick.
// The level is that of the highest 6-bit digit in which the two differ.
func (w *Wheel[T]) place(e *Entry[T]) {
	t := max(w.tickOf(e.due), w.cur)
	lvl := 0
	if x := t ^ w.cur; x > slotMask {
		lvl = (bits.Len64(x) - 1) / slotBits
	}
	idx := uint(t>>(uint(lvl)*slotBits)) & slotMask
	l := &w.levels[lvl]
	head := &l.slots[idx]
	if lvl == 0 {
		if head.next == head {
			w.min0[idx], w.max0[idx] = e.due, e.due
		} else {
			w.min0[idx], w.max0[idx] = min(w.min0[idx], e.due), max(w.max0[idx], e.due)
		}
	}
	pushBack(head, e)
	l.occupied |= 1 << idx
}

// drain removes every pending entry and calls fn with its value, in due order
// by bucket.
func (w *Wheel[T]) drain(fn func(T)) {
	for lvl := range w.levels {
		l := &w.levels[lvl]
		// Buckets from the current one on, in time order; no entry lives in an
		// earlier bucket of the same level.
		shift := uint(lvl) * slotBits
		ci := uint(w.cur>>shift) & slotMask
		for k := range uint(numSlots) {
			i := (ci + k) & slotMask
			spliceBack(&l.slots[i], &w.expired)
			if lvl == 0 {
				w.min0[i] = math.MaxInt64
			}
		}
		l.occupied = 0
	}
	for !w.expiredEmpty() {
		e := w.expired.next
		unlink(e)
		w.n--
		fn(e.value)
	}
	w.expiredMin = math.MaxInt64
}

// popExpired appends to batch the values of up to max expired entries,
// removing them from the wheel, and returns the extended batch.
func (w *Wheel[T]) popExpired(batch []T, max int) []T {
	for k := 0; k < max && !w.expiredEmpty(); k++ {
		e := w.expired.next
		unlink(e)
		w.n--
		batch = append(batch, e.value)
	}
	if w.expiredEmpty() {
		w.expiredMin = math.MaxInt64
	}
	return batch
}

func (w *Wheel[T]) expiredEmpty() bool { return w.expired.next == &w.expired }

func (w *Wheel[T]) pushExpired(e *Entry[T]) {
	w.expiredMin = min(w.expiredMin, e.due)
	pushBack(&w.expired, e)
}

// tickOf returns the tick, counted from start, that holds time t; 0 for
// times before start.
func (w *Wheel[T]) tickOf(t int64) uint64 {
	if t <= w.start {
		return 0
	}
	return (uint64(t) - uint64(w.start)) / w.tick
}

// timeOf returns the first nanosecond of tick t. Only called for ticks at or
// before a pending due time, so it fits an int64.
func (w *Wheel[T]) timeOf(t uint64) int64 {
	return int64(uint64(w.start) + t*w.tick)
}

func pushBack[T any](head, e *Entry[T]) {
	last := head.prev
	e.prev, e.next = last, head
	last.next = e
	head.prev = e
}

func unlink[T any](e *Entry[T]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.next, e.prev = nil, nil
}

// spliceBack moves every entry of the list src to the end of the list dst.
func spliceBack[T any](src, dst *Entry[T]) {
	if src.next == src {
		return
	}
	first, last := src.next, src.prev
	tail := dst.prev
	tail.next, first.prev = first, tail
	last.next, dst.prev = dst, last
	src.next, src.prev = src, src
}
