// Package wheel is Skyring's timing wheel: it holds every pending timer of a
// node and hands out the ones whose due time has come, never early.
//
// It has two layers.
//
// [Wheel] is the pure core: a hierarchical timing wheel with no goroutine, no
// lock and no clock of its own. Time is an argument (Unix nanoseconds,
// int64): [Wheel.Add] files a value under its due time, [Wheel.Remove] takes
// it out again, and [Wheel.Advance] hands out every value whose due time is at
// or before the time it is given. Both Add and Remove are O(1): each pending
// value lives in one small [Entry] that is linked into a bucket's intrusive
// doubly linked list, and the handle returned by Add is the entry itself.
//
// [Driver] runs a Wheel on an injected [Clock] in one goroutine of its own.
// It sleeps until the earliest due time ([Wheel.Next]) or until an Add with an
// earlier due time wakes it, and hands expired values to a callback in
// batches, without holding its lock, so the callback may Add or Remove and
// may block to apply back-pressure. [SystemClock] is real time; [FakeClock]
// is a manual clock for tests, in this package and in its callers.
//
// # Layout of the core
//
// Time is cut into ticks (1 ms by default) counted from the start time given
// to [New]. Level 0 has 64 buckets of one tick each, level 1 has 64 buckets of
// 64 ticks, level n 64 buckets of 64^n ticks; there are as many levels as it
// takes to cover the whole int64 range, so any due time fits and no overflow
// list is needed (8 levels for a 1 ms tick). An entry is filed at the level of
// the highest 6-bit digit in which its due tick differs from the current tick,
// which makes every entry of a lower level expire before every entry of a
// higher one; a 64-bit occupancy mask per level finds the next non-empty bucket
// with one instruction. When time reaches a bucket above level 0, its entries
// are cascaded down; when it passes a level-0 bucket, the whole bucket moves to
// the list of expired entries in O(1).
//
// Bucket boundaries are tick boundaries, but due times are exact nanoseconds:
// in the bucket of the current tick, only the entries whose due time is at or
// before now are handed out, the others stay, and [Wheel.Next] reports the
// exact earliest due time of a level-0 bucket, so the driver sleeps until it.
//
// # What it must not do
//
// The package knows nothing of timers' meaning, NATS, HTTP or storage, and
// imports only the standard library. It never starts a goroutine or a
// runtime timer per pending value. Its API is internal to Skyring and may
// change; embedders should use package node.
package wheel
