package ring

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one node of the cluster: what its membership messages say of it
// (package bus sends it as this JSON), what the view keeps, and what
// GET /cluster shows. It is the only member type of Skyring.
type Member struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http"`   // e.g. "127.0.0.1:3000"
	Timers   int    `json:"timers"` // timers it holds, as last reported
	// Started is when this incarnation of the node started (Unix ms). A
	// member heard from with a later Started has restarted (see
	// [View.Seen]); 0 means unknown.
	Started int64             `json:"started,omitempty"`
	NATS    string            `json:"nats,omitempty"` // its NATS client URL, if it tells
	Meta    map[string]string `json:"meta,omitempty"` // optional extra (may be nil)
}

func (m Member) clone() Member {
	m.Meta = maps.Clone(m.Meta)
	return m
}

// View is the membership view of one node: itself plus the peers it has heard
// from, with when each peer was last heard from. It is safe for concurrent
// use. Every change of the member set bumps Version and publishes a new Ring;
// Ring and Version never block.
type View struct {
	vnodes int

	mu    sync.Mutex      // guards self and peers; held while publishing state
	self  Member          // always a member; its ID never changes
	peers map[string]peer // every member but self

	state atomic.Pointer[viewState]
}

type peer struct {
	m    Member
	seen time.Time
}

// viewState pairs a ring with its version so that readers see both from the
// same change.
type viewState struct {
	ring    *Ring
	version uint64
}

// NewView returns a view whose only member is self. Rings built by the view
// use vnodes virtual names per member (DefaultVNodes when vnodes <= 0). The
// first version is 1.
func NewView(self Member, vnodes int) *View {
	if vnodes <= 0 {
		vnodes = DefaultVNodes
	}
	v := &View{vnodes: vnodes, self: self.clone(), peers: make(map[string]peer)}
	v.state.Store(&viewState{ring: New([]string{self.ID}, vnodes), version: 1})
	return v
}

// Change is what [View.Seen] made of a membership message.
type Change int

const (
	// Unchanged: a known member refreshed its entry and last-seen time, or
	// the message was ignored.
	Unchanged Change = iota
	// Joined: the member was not in the view and now is.
	Joined
	// Restarted: a known member came back as a new incarnation (a later
	// Started) without having been dropped: it restarted within the member
	// timeout. Whatever it held in memory is gone, and what others kept for
	// it while it was down must reach it: treat it like a join.
	Restarted
)

func (c Change) String() string {
	switch c {
	case Joined:
		return "joined"
	case Restarted:
		return "restarted"
	default:
		return "unchanged"
	}
}

// Seen records that m was heard from at now, and reports what changed: a new
// member Joined; a known one with a later Started Restarted (the version
// grows, the member set does not change); anything else refreshes the entry
// and its last-seen time (Unchanged). The last-seen time never goes
// backwards, so a delayed message cannot bring expiry forward, and a message
// from an older incarnation than the one known (a smaller non-zero Started)
// is ignored. Seen ignores a member with an empty ID or self's ID (use
// SetSelf for self).
func (v *View) Seen(m Member, now time.Time) Change {
	if m.ID == "" {
		return Unchanged
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if m.ID == v.self.ID {
		return Unchanged
	}
	p, ok := v.peers[m.ID]
	if !ok {
		v.peers[m.ID] = peer{m: m.clone(), seen: now}
		v.publishLocked()
		return Joined
	}
	switch {
	case m.Started == 0:
		m.Started = p.m.Started // a sender that does not say keeps what is known
	case m.Started < p.m.Started:
		return Unchanged // a late message of the incarnation before
	}
	if p.seen.After(now) {
		now = p.seen
	}
	v.peers[m.ID] = peer{m: m.clone(), seen: now}
	if m.Started > p.m.Started && p.m.Started != 0 {
		v.publishLocked()
		return Restarted
	}
	return Unchanged
}

// Leave removes id after a graceful goodbye. It reports whether id was a
// member; self cannot be removed.
func (v *View) Leave(id string) (left bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.peers[id]; !ok {
		return false
	}
	delete(v.peers, id)
	v.publishLocked()
	return true
}

// Expire removes every peer last seen more than after before now and returns
// their ids, sorted (nil when none). Self never expires. All removals make a
// single change.
func (v *View) Expire(now time.Time, after time.Duration) (dropped []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, p := range v.peers {
		if now.Sub(p.seen) > after {
			dropped = append(dropped, id)
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	for _, id := range dropped {
		delete(v.peers, id)
	}
	slices.Sort(dropped)
	v.publishLocked()
	return dropped
}

// publishLocked builds the ring of the current members and publishes it with
// the next version. v.mu must be held.
func (v *View) publishLocked() {
	ids := make([]string, 0, len(v.peers)+1)
	ids = append(ids, v.self.ID)
	for id := range v.peers {
		ids = append(ids, id)
	}
	old := v.state.Load()
	v.state.Store(&viewState{ring: New(ids, v.vnodes), version: old.version + 1})
}

// Ring returns the ring of the current members. It is a single atomic load.
func (v *View) Ring() *Ring { return v.state.Load().ring }

// Version returns a counter that starts at 1 and grows by one with every
// change of the member set and every restart of a member. It is local to this view: versions of different
// nodes are not comparable (compare Ring().Checksum() instead).
func (v *View) Version() uint64 { return v.state.Load().version }

// Members returns every member, self included, sorted by ID. The entries are
// copies.
func (v *View) Members() []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Member, 0, len(v.peers)+1)
	out = append(out, v.self.clone())
	for _, p := range v.peers {
		out = append(out, p.m.clone())
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Get returns the member with the given id, self included.
func (v *View) Get(id string) (Member, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if id == v.self.ID {
		return v.self.clone(), true
	}
	p, ok := v.peers[id]
	if !ok {
		return Member{}, false
	}
	return p.m.clone(), true
}

// LastSeen returns when the peer id was last heard from. It returns false for
// self and for ids that are not members.
func (v *View) LastSeen(id string) (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.peers[id]
	return p.seen, ok
}

// Self returns this node's own entry (a copy).
func (v *View) Self() Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.self.clone()
}

// SetSelf updates this node's own HTTPAddr, Timers and Meta. The ID is fixed
// at NewView and m.ID is ignored. It does not change the ring or the version.
func (v *View) SetSelf(m Member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m = m.clone()
	m.ID = v.self.ID
	v.self = m
}
