package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/wheel"
)

// index is the set of timers this node holds and the timing wheel that arms
// them. Memory holds only each timer's id (once: the map key and the wheel
// value share it) and its due time; the rest stays in storage until it
// fires.
//
// An id maps to one of three things, and every read and write of that rule
// is in this file:
//
//   - its wheel entry: the timer is pending;
//   - nil: a create, update, cancel or hand-off of that id is being
//     written; the reservation keeps a second command on the same id out
//     until the first one is done;
//   - busy: the wheel handed the timer out and delivery has not read its
//     record yet, or its outcome (fate, next attempt) is being written. A
//     create of the same id waits until that is done (a moment), so that
//     it never overwrites a record that is still to be delivered, and the
//     outcome of the old generation never overwrites the new one. Update
//     and cancel find nothing to change, as for any fired timer.
//
// Beside that map:
//
//   - attempts: the ids whose delivery attempt is under way (the record
//     is read, the callback runs). A create of such an id does not wait:
//     it is a new generation and supersedes every attempt under way, whose
//     outcome is then written nowhere (beginAttempt, endAttempt).
//   - failed: the ids of dead letters (failed timers this node keeps).
//     They are in no wheel; a create of such an id replaces the dead
//     letter, a cancel drops it, a retry arms it again.
type index struct {
	mu       sync.Mutex // guards all below; may be held while calling the driver, never the reverse
	timers   map[string]*wheel.Entry[string]
	nbusy    int           // how many of timers are busy
	freed    chan struct{} // closed when busy ids are released; nil when no one waits
	attempts map[string]*attempt
	failed   map[string]struct{}
	driver   *wheel.Driver[string]
	fired    func(ids []string) // gets the ids the wheel handed out, once they are busy
}

// attempt counts the delivery attempts of one id under way and the
// creates of that id since; a token is the count of creates when an
// attempt began.
type attempt struct {
	n       int
	creates uint64
}

// busy marks an id whose fired generation still has storage work under way.
// It is no entry of the wheel: the driver's Remove refuses it.
var busy = new(wheel.Entry[string])

// moving marks an id in hand-off: claimed by this node to travel to its
// owner (until the owner acknowledged it, or it is armed here again), or
// being stored here from another node's hand-off. Commands on the id wait
// until it settles (settle), then find it wherever it went. Like busy, it
// is no entry of the wheel.
var moving = new(wheel.Entry[string])

// errMoving is claim's answer for an id in hand-off: wait (settle), then
// route the command again.
var errMoving = errors.New("node: timer in hand-off")

// newIndex returns an index whose wheel runs on clock and hands the timers
// that come due to fired (after taking them out of the index). The wheel
// does not run until start.
func newIndex(clock wheel.Clock, fired func(ids []string)) (*index, error) {
	x := &index{
		timers:   make(map[string]*wheel.Entry[string]),
		attempts: make(map[string]*attempt),
		failed:   make(map[string]struct{}),
		fired:    fired,
	}
	d, err := wheel.NewDriver(wheel.DriverOptions[string]{Clock: clock, Fire: x.fire})
	if err != nil {
		return nil, fmt.Errorf("node: building the timing wheel: %w", err)
	}
	x.driver = d
	return x, nil
}

// start runs the wheel: from now on timers come due, those already overdue
// (recovered ones) at once.
func (x *index) start(ctx context.Context) error {
	if err := x.driver.Start(ctx); err != nil {
		return fmt.Errorf("node: starting the timing wheel: %w", err)
	}
	return nil
}

// stop stops the wheel; what is left in it stays in storage.
func (x *index) stop() error { return x.driver.Close() }

// fire is the wheel's hand-out: the timers turn busy first (from now on PUT
// and DELETE answer 404), then go to delivery.
func (x *index) fire(batch []string) {
	x.mu.Lock()
	for _, id := range batch {
		x.timers[id] = busy
	}
	x.nbusy += len(batch)
	x.mu.Unlock()
	x.fired(batch)
}

// releaseBusy forgets those of ids that are busy and wakes the creates
// waiting for them.
func (x *index) releaseBusy(ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if x.timers[id] == busy {
			delete(x.timers, id)
			x.nbusy--
		}
	}
	x.wake()
}

// wake wakes the creates waiting for busy ids. Called with mu held.
func (x *index) wake() {
	if x.freed != nil {
		close(x.freed)
		x.freed = nil
	}
}

// arm puts a stored timer in the index and the wheel, replacing a
// reservation. The id is copied so that it never pins a larger buffer it was
// decoded from.
func (x *index) arm(id string, due int64) {
	id = strings.Clone(id)
	x.mu.Lock()
	x.timers[id] = x.driver.Add(due, id)
	x.wake() // a create waiting for the reservation
	x.mu.Unlock()
}

// rearmBusy arms a busy id again at due (a timer handed out before the
// clock read its due time).
func (x *index) rearmBusy(id string, due int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.timers[id] == busy {
		x.timers[id] = x.driver.Add(due, id)
		x.nbusy--
	}
}

// reserve takes id for a create. It fails with ErrTimerExists when the index
// holds id armed or moving; while id is busy or reserved by
// another command it waits, bounded by ctx.
func (x *index) reserve(ctx context.Context, id string) error {
	for {
		x.mu.Lock()
		e, ok := x.timers[id]
		if !ok {
			x.timers[id] = nil
			x.supersede(id)
			delete(x.failed, id) // a create replaces a dead letter
			x.mu.Unlock()
			return nil
		}
		if e != busy && e != nil {
			x.mu.Unlock()
			return skyring.ErrTimerExists
		}
		// Busy: the previous generation's delivery reads or writes its
		// record. Reserved (nil): a command on the id is being written;
		// whether the id exists depends on whether that write succeeds (a
		// create retried while its first try is still being written must
		// not hear 409 for a write that then fails).
		if !x.waitWake(ctx) {
			return fmt.Errorf("node: waiting for the command or delivery under way on %s: %w", id, skyring.ErrOwnerTimeout)
		}
	}
}

// waitWake releases mu (held by the caller) and waits for the next wake
// (an id released, settled or placed), or for ctx to end (then false).
func (x *index) waitWake(ctx context.Context) bool {
	if x.freed == nil {
		x.freed = make(chan struct{})
	}
	freed := x.freed
	x.mu.Unlock()
	select {
	case <-freed:
		return true
	case <-ctx.Done():
		return false
	}
}

// supersede records a new generation of id: every attempt of id under way
// is now outdated. Called with mu held.
func (x *index) supersede(id string) {
	if a := x.attempts[id]; a != nil {
		a.creates++
	}
}

// beginAttempt turns a busy id into an attempt under way (delivery has
// read its record): from now on a create of the id goes ahead as a new
// generation. The token goes to endAttempt.
func (x *index) beginAttempt(id string) (token uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.timers[id] == busy {
		delete(x.timers, id)
		x.nbusy--
	}
	a := x.attempts[id]
	if a == nil {
		a = new(attempt)
		x.attempts[id] = a
	}
	a.n++
	x.wake()
	return a.creates
}

// endAttempt ends an attempt begun with token. If no create of the id came
// since, the id turns busy (the caller writes the outcome, then releases
// it) and endAttempt reports true; otherwise the attempt's generation is
// outdated and its outcome must not be written.
func (x *index) endAttempt(id string, token uint64) (current bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := x.attempts[id]
	if a == nil {
		return false // not begun: a bug, but never overwrite anything
	}
	current = a.creates == token
	if a.n--; a.n == 0 {
		delete(x.attempts, id)
	}
	if !current {
		return false
	}
	if _, held := x.timers[id]; held {
		return false // cannot happen: a create or take supersedes
	}
	x.timers[id] = busy
	x.nbusy++
	return true
}

// addFailed turns ids into dead letters: busy ids (a final failure just
// written) or ids the index does not hold (recovered, taken over). Others
// are left alone.
func (x *index) addFailed(ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		switch e, held := x.timers[id]; {
		case held && e == busy:
			delete(x.timers, id)
			x.nbusy--
		case held:
			continue
		}
		x.failed[strings.Clone(id)] = struct{}{}
	}
	x.wake()
}

// claimFailed takes a dead letter for a retry or a drop: it leaves a
// reservation and reports true, or reports false if id is no dead letter.
func (x *index) claimFailed(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.failed[id]; !ok {
		return false
	}
	delete(x.failed, id)
	x.timers[id] = nil
	return true
}

// failedIDs returns up to limit dead-letter ids that sort after after, in
// order, and whether more follow.
func (x *index) failedIDs(after string, limit int) (ids []string, more bool) {
	x.mu.Lock()
	for id := range x.failed {
		if id > after {
			ids = append(ids, id)
		}
	}
	x.mu.Unlock()
	slices.Sort(ids)
	if len(ids) > limit {
		return ids[:limit], true
	}
	return ids, false
}

// nfailed is how many dead letters the index holds.
func (x *index) nfailed() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.failed)
}

// lockIdle turns busy those of ids that the index knows nothing about (not
// held, no attempt under way, no dead letter) and returns them: the
// records under them are finished timers, which the caller may now remove
// without racing a create. Release them with releaseBusy.
func (x *index) lockIdle(ids []string) []string {
	out := make([]string, 0, len(ids))
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		_, held := x.timers[id]
		_, failed := x.failed[id]
		if held || failed || x.attempts[id] != nil {
			continue
		}
		x.timers[id] = busy
		x.nbusy++
		out = append(out, id)
	}
	return out
}

// claim takes a pending timer out of the wheel and leaves a reservation. It
// fails with ErrTimerNotFound if the timer is unknown, reserved, or already
// handed out (its callback has started or is about to).
func (x *index) claim(id string) (*wheel.Entry[string], error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.timers[id]
	if e == moving {
		return nil, errMoving
	}
	if e == nil || e == busy || !x.driver.Remove(e) {
		return nil, skyring.ErrTimerNotFound
	}
	x.timers[id] = nil
	return e, nil
}

// isMoving reports whether id is in hand-off.
func (x *index) isMoving(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.timers[id] == moving
}

// settle waits while id is in hand-off, bounded by ctx.
func (x *index) settle(ctx context.Context, id string) error {
	for {
		x.mu.Lock()
		if x.timers[id] != moving {
			x.mu.Unlock()
			return nil
		}
		if !x.waitWake(ctx) {
			return fmt.Errorf("node: waiting for the hand-off of %s: %w", id, skyring.ErrOwnerTimeout)
		}
	}
}

// release forgets ids (reservations or entries already out of the wheel).
func (x *index) release(ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		delete(x.timers, id)
	}
	x.wake() // creates waiting for these reservations
}

// holds reports whether the index has id: armed, reserved, busy or a dead
// letter.
func (x *index) holds(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.timers[id]
	if !ok {
		_, ok = x.failed[id]
	}
	return ok
}

// armed reports whether id is armed (pending, not reserved, busy or
// moving).
func (x *index) armed(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.timers[id]
	return e != nil && e != busy && e != moving
}

// len is how many timers the index holds, reservations included, those
// handed out to delivery not.
func (x *index) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.timers) - x.nbusy
}

// armedIDs returns the ids of every armed timer (a snapshot).
func (x *index) armedIDs() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]string, 0, len(x.timers))
	for id, e := range x.timers {
		if e != nil && e != busy && e != moving {
			ids = append(ids, id)
		}
	}
	return ids
}

// claimed is a timer taken out of the wheel, or a dead letter taken, by
// claimSome.
type claimed struct {
	id     string
	due    int64
	failed bool // a dead letter
}

// claimSome claims each of ids that is still armed or a dead letter for a
// hand-off and returns them, marked moving; those cancelled, reserved,
// retried or handed out meanwhile are skipped. unclaim puts one back,
// releaseMoved forgets those the owner acknowledged.
func (x *index) claimSome(ids []string) []claimed {
	out := make([]claimed, 0, len(ids))
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if _, ok := x.failed[id]; ok {
			delete(x.failed, id)
			x.timers[id] = moving
			out = append(out, claimed{id: id, failed: true})
			continue
		}
		e := x.timers[id]
		if e == nil || e == busy || e == moving || !x.driver.Remove(e) {
			continue
		}
		x.timers[id] = moving
		out = append(out, claimed{id: id, due: e.Due()})
	}
	return out
}

// unclaim puts back what claimSome took: armed again, or a dead letter
// again.
func (x *index) unclaim(c claimed) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c.failed {
		delete(x.timers, c.id)
		x.failed[c.id] = struct{}{}
	} else {
		x.timers[c.id] = x.driver.Add(c.due, c.id)
	}
	x.wake()
}

// releaseMoved forgets ids in hand-off (acknowledged by their owner) and
// wakes the commands waiting for them.
func (x *index) releaseMoved(ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if x.timers[id] == moving {
			delete(x.timers, id)
		}
	}
	x.wake()
}

// takeResult is what the index says of a timer offered by a hand-off.
type takeResult int

const (
	takeFresh takeResult = iota // not known here: reserved (moving) for storing
	takeKnown                   // known here (armed, a dead letter, an attempt under way): compare generations
	takeLater                   // a command or hand-off of the id is under way here: not now
)

// offer sorts the timers of a hand-off (see takeResult).
func (x *index) offer(ts []*skyring.Timer) []takeResult {
	out := make([]takeResult, len(ts))
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, t := range ts {
		e, held := x.timers[t.ID]
		_, failed := x.failed[t.ID]
		switch {
		case held && (e == nil || e == busy || e == moving):
			out[i] = takeLater
		case held || failed || x.attempts[t.ID] != nil:
			out[i] = takeKnown
		default:
			x.timers[t.ID] = moving
			out[i] = takeFresh
		}
	}
	return out
}

// claimForReplace takes the timer id, armed or a dead letter, out of the
// wheel (or the dead letters) and marks it moving, so that a newer
// generation can replace it; false if it is neither any more.
func (x *index) claimForReplace(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.failed[id]; ok {
		delete(x.failed, id)
		x.timers[id] = moving
		return true
	}
	e, held := x.timers[id]
	if !held || e == nil || e == busy || e == moving || !x.driver.Remove(e) {
		return false
	}
	x.timers[id] = moving
	return true
}

// place arms or files a stored timer that was moving (taken or replaced):
// pending ones go in the wheel, dead letters to the dead letters, finished
// ones nowhere. Attempts of the id under way are superseded.
func (x *index) place(t *skyring.Timer) {
	id := strings.Clone(t.ID)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.supersede(id)
	switch t.State {
	case skyring.StatePending:
		x.timers[id] = x.driver.Add(t.FireAt(), id)
	case skyring.StateFailed:
		delete(x.timers, id)
		x.failed[id] = struct{}{}
	default:
		delete(x.timers, id)
	}
	x.wake()
}

// failedAll returns the ids of every dead letter (a snapshot).
func (x *index) failedAll() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]string, 0, len(x.failed))
	for id := range x.failed {
		ids = append(ids, id)
	}
	return ids
}

// sampleDue calls fn with the due time of at most max armed timers (every
// one when max is 0 or the index holds no more than max entries) and
// returns the scale that turns counts over the sample into estimates over
// every armed timer: entries held over entries looked at (1 when every one
// was). Go randomizes where a map's iteration starts, and its order is the
// ids' hash order, unrelated to their due times, so the sample is a fair
// one. It bounds how long a scrape holds the index's lock: a full pass
// over 1,000,000 timers takes ~60 ms, during which creates wait.
func (x *index) sampleDue(max int, fn func(due int64)) (scale float64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	looked := 0
	for _, e := range x.timers {
		if max > 0 && looked == max {
			break
		}
		looked++
		if e != nil && e != busy && e != moving {
			fn(e.Due())
		}
	}
	if looked == 0 {
		return 1
	}
	return float64(len(x.timers)) / float64(looked)
}
