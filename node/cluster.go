package node

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/ring"
	"github.com/skyring/skyring/wheel"
)

// ownerOf is the ring member that owns id. A node that is leaving owns
// nothing: it asks the ring without itself.
func (n *Node) ownerOf(id string) string {
	r := n.view.Ring()
	if lr := n.leaveRing.Load(); lr != nil {
		if lr.version != n.view.Version() {
			lr = &leaveRing{version: n.view.Version(), ring: ringWithout(r, n.id, n.opts.VNodes)}
			n.leaveRing.Store(lr)
		}
		r = lr.ring
	}
	owner, ok := r.Owner(id)
	if !ok {
		return n.id
	}
	return owner
}

// Owner is the ring member that owns the timer id, as this node sees the
// ring now.
func (n *Node) Owner(id string) string { return n.ownerOf(id) }

// leaveRing is the ring without this node, used once it leaves; rebuilt
// when the view changes.
type leaveRing struct {
	version uint64
	ring    *ring.Ring
}

func ringWithout(r *ring.Ring, id string, vnodes int) *ring.Ring {
	members := slices.DeleteFunc(r.Members(), func(m string) bool { return m == id })
	return ring.New(members, vnodes)
}

// busHandler adapts the node to bus.Handler without widening Node's API.
type busHandler struct{ *Node }

func (h busHandler) HandleRelay(ctx context.Context, cmd bus.Command) bus.Reply {
	n := h.Node
	if err := n.enter(); err != nil {
		return replyErr(err)
	}
	defer n.exit()
	switch cmd.Op {
	case bus.OpCreate:
		if cmd.Timer == nil {
			return bus.Reply{Status: http.StatusBadRequest, Reason: "missing timer"}
		}
		return replyErr(n.createLocal(ctx, cmd.Timer), http.StatusCreated)
	case bus.OpUpdate:
		if cmd.Timer == nil {
			return bus.Reply{Status: http.StatusBadRequest, Reason: "missing timer"}
		}
		return replyErr(n.updateLocal(ctx, cmd.Timer))
	case bus.OpCancel:
		return replyErr(n.cancelLocal(ctx, cmd.ID), http.StatusAccepted)
	case bus.OpGet:
		info, err := n.getLocal(cmd.ID)
		if err != nil {
			return replyErr(err)
		}
		return bus.Reply{Status: http.StatusOK, Info: &info}
	case bus.OpHandoff:
		return replyErr(n.takeHandoff(ctx, cmd.From, cmd.Timers))
	default:
		return bus.Reply{Status: http.StatusBadRequest, Reason: "unknown command"}
	}
}

func replyErr(err error, okStatus ...int) bus.Reply {
	if err == nil {
		st := http.StatusOK
		if len(okStatus) > 0 {
			st = okStatus[0]
		}
		return bus.Reply{Status: st}
	}
	st, reason := skyring.Status(err)
	return bus.Reply{Status: st, Reason: reason}
}

func (h busHandler) MemberSeen(m bus.Member) {
	n := h.Node
	if m.ID == n.id {
		return
	}
	if n.view.Seen(ring.Member{ID: m.ID, HTTPAddr: m.HTTPAddr, Timers: m.Timers}, time.Now()) {
		n.log.Info("member joined", "member", m.ID, "http", m.HTTPAddr, "members", len(n.view.Members()))
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: "join", Node: n.id, Member: m.ID})
		n.requestRebalance()
	}
}

func (h busHandler) MemberLeft(id string) {
	n := h.Node
	if n.view.Leave(id) {
		n.log.Info("member left", "member", id, "members", len(n.view.Members()))
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: "leave", Node: n.id, Member: id})
		n.requestRebalance()
	}
}

func (h busHandler) LocalMember() bus.Member {
	m := h.Node.localMember()
	h.Node.view.SetSelf(m)
	return bus.Member{ID: m.ID, HTTPAddr: m.HTTPAddr, Timers: m.Timers, Started: h.Node.started.UnixMilli()}
}

func (n *Node) localMember() ring.Member {
	m := ring.Member{ID: n.id, Timers: n.Len()}
	if n.http != nil && n.http.Addr() != nil {
		m.HTTPAddr = n.http.Addr().String()
		// Listening on every interface: advertise the cluster host.
		if a, ok := n.http.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
			m.HTTPAddr = net.JoinHostPort(n.opts.ChannelHost, strconv.Itoa(a.Port))
		}
	}
	return m
}

func (n *Node) requestRebalance() {
	select {
	case n.rebalanceC <- struct{}{}:
	default:
	}
}

// startDuties starts the node's background loops: member expiry and
// rebalancing.
func (n *Node) startDuties() {
	n.duties.Add(2)
	go n.expireLoop()
	go n.rebalanceLoop()
}

// expireLoop drops members not heard from for MemberTimeout.
func (n *Node) expireLoop() {
	defer n.duties.Done()
	t := time.NewTicker(n.opts.HeartbeatInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			for _, id := range n.view.Expire(now, n.opts.MemberTimeout) {
				n.log.Warn("member dropped: no heartbeat", "member", id, "after", n.opts.MemberTimeout)
				n.bus.PublishNodeEvent(bus.NodeEvent{Type: "leave", Node: n.id, Member: id, Message: "heartbeat timeout"})
				n.requestRebalance()
			}
		}
	}
}

// rebalanceSettle lets a burst of membership changes settle before timers
// move.
const rebalanceSettle = 200 * time.Millisecond

func (n *Node) rebalanceLoop() {
	defer n.duties.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.rebalanceC:
		}
		settle := time.NewTimer(rebalanceSettle)
		select {
		case <-n.ctx.Done():
			settle.Stop()
			return
		case <-settle.C:
		}
		if moved := n.handOff(n.ctx); moved > 0 {
			n.bus.PublishNodeEvent(bus.NodeEvent{Type: "rebalance", Node: n.id, Count: moved})
		}
	}
}

// handoffBatch is how many timers one hand-off command carries (the bus
// splits a command that would exceed the NATS max payload).
const handoffBatch = 1000

// handOff moves every timer this node holds but no longer owns to its owner:
// each is taken out of the wheel first (so it is never armed on two nodes),
// sent in batches, and deleted here only once the owner has stored it. A
// batch the owner does not take is armed here again. It returns how many
// timers moved.
func (n *Node) handOff(ctx context.Context) int {
	type claimed struct {
		id string
		e  *wheel.Entry[string]
	}
	// Find the timers to move without holding the lock: the owner lookup (a
	// hash per timer) is the slow part, and creates and fires go on
	// meanwhile.
	n.mu.Lock()
	ids := make([]string, 0, len(n.timers))
	for id, e := range n.timers {
		if e != nil {
			ids = append(ids, id)
		}
	}
	n.mu.Unlock()
	byOwner := map[string][]string{}
	for _, id := range ids {
		if owner := n.ownerOf(id); owner != n.id {
			byOwner[owner] = append(byOwner[owner], id)
		}
	}

	moved := 0
	for owner, items := range byOwner {
		for len(items) > 0 {
			k := min(len(items), handoffBatch)
			// Claim one batch right before it travels, so that a timer is
			// unarmed only while its own batch is on the way.
			batch := make([]claimed, 0, k)
			n.mu.Lock()
			for _, id := range items[:k] {
				e := n.timers[id]
				if e == nil || !n.driver.Remove(e) {
					continue // cancelled, being written, or firing meanwhile
				}
				n.timers[id] = nil
				batch = append(batch, claimed{id: id, e: e})
			}
			n.mu.Unlock()
			items = items[k:]
			timers := make([]*skyring.Timer, 0, len(batch))
			kept := batch[:0]
			for _, c := range batch {
				t, err := n.store.Get(context.WithoutCancel(ctx), c.id)
				if err != nil {
					n.log.Error("reading a timer to hand off failed; keeping it", "timer_id", c.id, "err", err)
					n.arm(c.id, c.e.Due())
					continue
				}
				timers = append(timers, t)
				kept = append(kept, c)
			}
			batch = kept
			if len(batch) == 0 {
				continue
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			rep, err := n.bus.Relay(rctx, owner, bus.Command{Op: bus.OpHandoff, Timers: timers, From: n.id})
			cancel()
			if err == nil {
				err = skyring.ErrorFromStatus(rep.Status, rep.Reason)
			}
			if err != nil {
				n.log.Warn("hand-off failed; keeping the timers", "to", owner, "count", len(batch), "err", err)
				for _, c := range batch {
					n.arm(c.id, c.e.Due())
				}
				// Try again at the next membership change.
				continue
			}
			ids := make([]string, len(batch))
			for i, c := range batch {
				ids[i] = c.id
			}
			if err := n.store.Delete(context.WithoutCancel(ctx), ids...); err != nil {
				n.log.Error("deleting handed-off timers failed; they may fire twice after a restart", "count", len(ids), "err", err)
			}
			n.mu.Lock()
			for _, id := range ids {
				delete(n.timers, id)
			}
			n.mu.Unlock()
			for _, c := range batch {
				n.bus.PublishTimerEvent(bus.TimerEvent{Type: "evict", Timer: c.id, Node: n.id, To: owner, Due: ms(c.e.Due())})
			}
			moved += len(batch)
		}
	}
	if moved > 0 {
		n.log.Info("handed off timers", "count", moved)
	}
	return moved
}

// takeHandoff stores and arms timers handed over by another node. A timer
// whose id this node already holds keeps the copy it has.
func (n *Node) takeHandoff(ctx context.Context, from string, timers []*skyring.Timer) error {
	fresh := make([]*skyring.Timer, 0, len(timers))
	n.mu.Lock()
	for _, t := range timers {
		if _, ok := n.timers[t.ID]; ok {
			continue
		}
		n.timers[t.ID] = nil
		fresh = append(fresh, t)
	}
	n.mu.Unlock()
	if err := n.store.Put(context.WithoutCancel(ctx), fresh...); err != nil {
		n.mu.Lock()
		for _, t := range fresh {
			delete(n.timers, t.ID)
		}
		n.mu.Unlock()
		return err
	}
	for _, t := range fresh {
		n.arm(t.ID, t.Due)
	}
	n.log.Debug("took hand-off", "from", from, "count", len(fresh))
	return nil
}

// leave says goodbye to the ring and hands every timer to the remaining
// members. The last member keeps its timers on disk.
func (n *Node) leave(ctx context.Context) {
	// Other nodes in the API queue group take the NATS API from here on.
	if err := n.bus.StopAPI(ctx); err != nil {
		n.log.Warn("stopping the NATS API", "err", err)
	}
	n.bus.Leave()
	// Commands admitted before the node began closing finish first.
	n.waitCommands(ctx)
	n.leaveRing.Store(&leaveRing{version: n.view.Version(), ring: ringWithout(n.view.Ring(), n.id, n.opts.VNodes)})
	others := len(n.view.Members()) - 1
	if others <= 0 {
		return
	}
	n.bus.PublishNodeEvent(bus.NodeEvent{Type: "purge", Node: n.id, Count: n.Len()})
	// Two passes: the second takes what relays brought in meanwhile.
	for range 2 {
		if n.handOff(ctx) == 0 || ctx.Err() != nil {
			break
		}
	}
	if left := n.Len(); left > 0 {
		n.log.Warn("timers kept on disk after leaving", "count", left)
	}
}

// ClusterInfo is what GET /cluster shows: this node, the live members as
// this node sees them, and the version of its ring.
type ClusterInfo struct {
	Node        MemberInfo   `json:"node"`
	Members     []MemberInfo `json:"members"`
	RingVersion uint64       `json:"ring_version"`
}

// MemberInfo is one ring member.
type MemberInfo struct {
	ID     string `json:"id"`
	HTTP   string `json:"http"`
	Timers int    `json:"timers"`
	NATS   string `json:"nats,omitempty"`
}

// Cluster returns this node's view of the cluster (after Start).
func (n *Node) Cluster() ClusterInfo {
	self := n.localMember()
	info := ClusterInfo{
		Node:        MemberInfo{ID: self.ID, HTTP: self.HTTPAddr, Timers: self.Timers, NATS: n.NATSURL()},
		RingVersion: n.view.Version(),
	}
	for _, m := range n.view.Members() {
		if m.ID == n.id {
			m = self
		}
		info.Members = append(info.Members, MemberInfo{ID: m.ID, HTTP: m.HTTPAddr, Timers: m.Timers})
	}
	return info
}

func (n *Node) extraRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"/cluster": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(n.Cluster())
		}),
	}
}
