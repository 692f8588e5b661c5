package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/ring"
)

// nodeEventPublisher is the part of the bus membership needs.
type nodeEventPublisher interface {
	PublishNodeEvent(bus.NodeEvent)
}

// membership is this node's view of the ring and the one judge of which
// members are alive: it takes the membership messages the bus receives,
// drops members not heard from for the member timeout, and asks for a
// rebalance whenever the ring changes, a member restarts included. It also
// answers who owns a timer, and stops owning anything once the node leaves.
type membership struct {
	self      string
	log       *slog.Logger
	view      *ring.View
	vnodes    int
	interval  time.Duration // heartbeat interval: how often expiry looks
	timeout   time.Duration // member timeout
	events    nodeEventPublisher
	local     func() ring.Member // this node's fresh entry
	rebalance func()             // asks for a rebalance (never blocks)

	leaving atomic.Pointer[leaveRing] // set once the node leaves the ring
	// partitioned: ownership goes by partition (ring.Placement of the
	// members) rather than by the hashring of ids: the shared-store mode,
	// where a new owner loads whole partitions from the store.
	partitioned bool
	placed      atomic.Pointer[placed] // the placement of the view's latest version
	changed     atomic.Int64           // Unix ns of the last ring change seen here
	loop        sync.WaitGroup
}

// ringChanged notes a change of the ring and asks for a rebalance.
func (m *membership) ringChanged() {
	m.changed.Store(time.Now().UnixNano())
	m.rebalance()
}

// changedWithin reports whether the ring changed in the last d (or the
// node started then): timers may still be on their way to their owners.
func (m *membership) changedWithin(d time.Duration) bool {
	return time.Since(time.Unix(0, m.changed.Load())) < d
}

// placed is the placement of the members of one version of the view (or
// of its leave ring).
type placed struct {
	version uint64
	leaving bool
	p       *ring.Placement
}

// placement returns the placement owner answers by in partitioned mode:
// the view's members, without this node once it leaves.
func (m *membership) placement() *ring.Placement {
	v := m.view.Version()
	leaving := m.leaving.Load() != nil
	if pl := m.placed.Load(); pl != nil && pl.version == v && pl.leaving == leaving {
		return pl.p
	}
	members := m.view.Ring().Members()
	if leaving {
		members = slices.DeleteFunc(members, func(id string) bool { return id == m.self })
	}
	pl := &placed{version: v, leaving: leaving, p: ring.NewPlacement(members, ring.DefaultPartitions, ring.DefaultLoad)}
	m.placed.Store(pl)
	return pl.p
}

// ownsPartition reports whether this node owns partition p (partitioned
// mode only).
func (m *membership) ownsPartition(p int) bool { return m.placement().Owner(p) == m.self }

// leaveRing is the ring without this node, used once it leaves; rebuilt
// when the view changes.
type leaveRing struct {
	version uint64
	ring    *ring.Ring
}

func newMembership(n *Node, rebalance func()) *membership {
	return &membership{
		self:      n.id,
		log:       n.log,
		view:      ring.NewView(ring.Member{ID: n.id}, n.opts.VNodes),
		vnodes:    n.opts.VNodes,
		interval:  n.opts.HeartbeatInterval,
		timeout:   n.opts.MemberTimeout,
		events:    n.bus,
		local:     n.localMember,
		rebalance: rebalance,
	}
}

// start runs the expiry loop until ctx ends; stop waits for it.
func (m *membership) start(ctx context.Context) {
	m.changed.Store(time.Now().UnixNano())
	m.view.SetSelf(m.local())
	m.loop.Add(1)
	go m.expireLoop(ctx)
}

func (m *membership) stop() { m.loop.Wait() }

// expireLoop drops members not heard from for the member timeout.
func (m *membership) expireLoop(ctx context.Context) {
	defer m.loop.Done()
	t := time.NewTicker(m.interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, id := range m.view.Expire(now, m.timeout) {
				m.log.Warn("member dropped: no heartbeat", "member", id, "after", m.timeout)
				m.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeLeave, Node: m.self, Member: id, Message: "heartbeat timeout"})
				m.ringChanged()
			}
		}
	}
}

// seen takes another member's heartbeat, announce or sync; it reports
// whether the member is new to this node (joined or restarted).
func (m *membership) seen(mb ring.Member) bool {
	if mb.ID == m.self {
		return false
	}
	switch m.view.Seen(mb, time.Now()) {
	case ring.Joined:
		m.log.Info("member joined", "member", mb.ID, "http", mb.HTTPAddr, "members", len(m.view.Members()))
		m.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeJoin, Node: m.self, Member: mb.ID})
	case ring.Restarted:
		// It restarted within the member timeout, so no one dropped it:
		// what others kept for it while it was down must move to it now.
		m.log.Info("member restarted", "member", mb.ID, "http", mb.HTTPAddr)
		m.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeJoin, Node: m.self, Member: mb.ID, Message: "restarted"})
	default:
		return false
	}
	m.ringChanged()
	return true
}

// left takes another member's goodbye.
func (m *membership) left(id string) {
	if m.view.Leave(id) {
		m.log.Info("member left", "member", id, "members", len(m.view.Members()))
		m.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeLeave, Node: m.self, Member: id})
		m.ringChanged()
	}
}

// owner is the ring member that owns id. A node that is leaving owns
// nothing: it asks the ring without itself.
func (m *membership) owner(id string) string {
	if m.partitioned {
		p := m.placement()
		if owner := p.Owner(p.PartitionOf(id)); owner != "" {
			return owner
		}
		return m.self
	}
	r := m.view.Ring()
	if lr := m.leaveRing(); lr != nil {
		r = lr
	}
	owner, ok := r.Owner(id)
	if !ok {
		return m.self
	}
	return owner
}

// ringChecksum is the checksum of the ring owner() answers by: the view's,
// or, once the node leaves, the view's without this node.
func (m *membership) ringChecksum() uint64 {
	if lr := m.leaveRing(); lr != nil {
		return lr.Checksum()
	}
	return m.view.Ring().Checksum()
}

// leaveRing returns the ring without this node, rebuilt if the view
// changed since, or nil while the node has not left.
func (m *membership) leaveRing() *ring.Ring {
	lr := m.leaving.Load()
	if lr == nil {
		return nil
	}
	if v := m.view.Version(); lr.version != v {
		lr = &leaveRing{version: v, ring: ringWithout(m.view.Ring(), m.self, m.vnodes)}
		m.leaving.Store(lr)
	}
	return lr.ring
}

// agrees reports whether a hand-off chosen by the ring with checksum sum
// agrees with this node's view: the same members. A leaving node takes
// any hand-off (it passes them on).
func (m *membership) agrees(sum uint64) bool {
	return sum == 0 || m.leaving.Load() != nil || sum == m.view.Ring().Checksum()
}

// leave makes the node own nothing from now on; it returns how many other
// members remain.
func (m *membership) leave() int {
	m.leaving.Store(&leaveRing{version: m.view.Version(), ring: ringWithout(m.view.Ring(), m.self, m.vnodes)})
	return len(m.view.Members()) - 1
}

func ringWithout(r *ring.Ring, id string, vnodes int) *ring.Ring {
	members := slices.DeleteFunc(r.Members(), func(m string) bool { return m == id })
	return ring.New(members, vnodes)
}
