package node

import (
	"context"
	"fmt"
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
//     record yet, or its removal is being written. A create of the same id
//     waits until that is done (a moment), so that it never overwrites a
//     record that is still to be delivered, and the removal of the old
//     generation never deletes the new one. Update and cancel find nothing
//     to change, as for any fired timer.
type index struct {
	mu     sync.Mutex // guards timers and freed; may be held while calling the driver, never the reverse
	timers map[string]*wheel.Entry[string]
	nbusy  int           // how many of timers are busy
	freed  chan struct{} // closed when busy ids are released; nil when no one waits
	driver *wheel.Driver[string]
	fired  func(ids []string) // gets the ids the wheel handed out, once they are busy
}

// busy marks an id whose fired generation still has storage work under way.
// It is no entry of the wheel: the driver's Remove refuses it.
var busy = new(wheel.Entry[string])

// newIndex returns an index whose wheel runs on clock and hands the timers
// that come due to fired (after taking them out of the index). The wheel
// does not run until start.
func newIndex(clock wheel.Clock, fired func(ids []string)) (*index, error) {
	x := &index{timers: make(map[string]*wheel.Entry[string]), fired: fired}
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

// markBusy turns each of ids that the index does not hold busy and returns
// them; an id it holds has a newer generation, whose record the caller must
// leave alone.
func (x *index) markBusy(ids []string) []string {
	out := make([]string, 0, len(ids))
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if _, held := x.timers[id]; !held {
			x.timers[id] = busy
			x.nbusy++
			out = append(out, id)
		}
	}
	return out
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
// holds id (armed or reserved); while id is busy it waits, bounded by ctx.
func (x *index) reserve(ctx context.Context, id string) error {
	for {
		x.mu.Lock()
		e, ok := x.timers[id]
		if !ok {
			x.timers[id] = nil
			x.mu.Unlock()
			return nil
		}
		if e != busy {
			x.mu.Unlock()
			return skyring.ErrTimerExists
		}
		if x.freed == nil {
			x.freed = make(chan struct{})
		}
		freed := x.freed
		x.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for the previous delivery of %s: %w", id, skyring.ErrOwnerTimeout)
		}
	}
}

// reserveNew reserves the ids of ts that the index does not hold yet and
// returns those timers; the others keep the copy this node has.
func (x *index) reserveNew(ts []*skyring.Timer) []*skyring.Timer {
	fresh := make([]*skyring.Timer, 0, len(ts))
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, t := range ts {
		if _, ok := x.timers[t.ID]; ok {
			continue
		}
		x.timers[t.ID] = nil
		fresh = append(fresh, t)
	}
	return fresh
}

// claim takes a pending timer out of the wheel and leaves a reservation. It
// fails with ErrTimerNotFound if the timer is unknown, reserved, or already
// handed out (its callback has started or is about to).
func (x *index) claim(id string) (*wheel.Entry[string], error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.timers[id]
	if e == nil || !x.driver.Remove(e) {
		return nil, skyring.ErrTimerNotFound
	}
	x.timers[id] = nil
	return e, nil
}

// release forgets ids (reservations or entries already out of the wheel).
func (x *index) release(ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		delete(x.timers, id)
	}
}

// holds reports whether the index has id, armed or reserved.
func (x *index) holds(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.timers[id]
	return ok
}

// armed reports whether id is armed (pending, not reserved or busy).
func (x *index) armed(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.timers[id]
	return e != nil && e != busy
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
		if e != nil && e != busy {
			ids = append(ids, id)
		}
	}
	return ids
}

// claimed is a timer taken out of the wheel by claimSome.
type claimed struct {
	id  string
	due int64
}

// claimSome claims each of ids that is still armed and returns them; those
// cancelled, reserved or handed out meanwhile are skipped.
func (x *index) claimSome(ids []string) []claimed {
	out := make([]claimed, 0, len(ids))
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		e := x.timers[id]
		if e == nil || !x.driver.Remove(e) {
			continue
		}
		x.timers[id] = nil
		out = append(out, claimed{id: id, due: e.Due()})
	}
	return out
}
