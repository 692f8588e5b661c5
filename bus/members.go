package bus

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring/ring"
)

// Kinds of membership message (see the package doc).
const (
	kindAnnounce  = "announce"
	kindSync      = "sync"
	kindHeartbeat = "heartbeat"
	kindGoodbye   = "goodbye"
)

// memberMsg is the JSON of the members subject: a ring.Member plus its kind.
type memberMsg struct {
	Kind string `json:"kind"`
	ring.Member
}

// localMember asks the handler for this node's fresh info.
func (b *Bus) localMember() ring.Member {
	m := b.h.LocalMember()
	m.ID = b.opts.NodeID
	if m.Started == 0 {
		m.Started = b.started
	}
	return m
}

// publishMember sends a membership message of the given kind. After the
// goodbye nothing more is sent.
func (b *Bus) publishMember(kind string) {
	nc := b.nc.Load()
	if nc == nil || (kind != kindGoodbye && b.left.Load()) {
		return
	}
	msg := memberMsg{Kind: kind, Member: ring.Member{ID: b.opts.NodeID}}
	if kind != kindGoodbye {
		msg.Member = b.localMember()
	}
	data, err := json.Marshal(msg)
	if err != nil {
		b.log.Error("encoding membership message", "kind", kind, "err", err)
		return
	}
	if err := nc.Publish(b.membersSubject, data); err != nil {
		b.log.Debug("publishing membership message", "kind", kind, "err", err)
	}
}

// onMember handles the members subject. nats.go calls it serially, so the
// membership callbacks arrive in order.
func (b *Bus) onMember(m *nats.Msg) {
	var msg memberMsg
	if err := json.Unmarshal(m.Data, &msg); err != nil || !isToken(msg.ID) {
		b.log.Debug("ignoring bad membership message", "data", string(m.Data), "err", err)
		return
	}
	if msg.ID == b.opts.NodeID {
		return
	}
	answer := false
	// The membership callbacks run one at a time, in arrival order (a
	// NATS subscription's handler is never called concurrently).
	switch msg.Kind {
	case kindAnnounce, kindSync, kindHeartbeat:
		isNew := b.h.MemberSeen(msg.Member)
		// Answer a node that asks, or that is new to us (joined or
		// restarted): it may not know us either (its announce or our
		// answer may have been lost).
		answer = msg.Kind != kindHeartbeat || isNew
	case kindGoodbye:
		b.h.MemberLeft(msg.ID)
	default:
		b.log.Debug("ignoring membership message of unknown kind", "kind", msg.Kind, "member", msg.ID)
	}
	if answer {
		b.publishMember(kindHeartbeat)
	}
}

// interestPoll is how often an embedded clustered server is checked for new
// interest in the members subject.
const interestPoll = 50 * time.Millisecond

func (b *Bus) heartbeatLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(b.opts.HeartbeatInterval)
	defer tick.Stop()

	// With an embedded clustered server, watch how many subscribers the
	// members subject has, here and across the routes. It grows when a
	// route to another node's server comes up and that server's
	// subscriptions arrive; a sync then reaches the new node at once
	// rather than at the next heartbeat. (An announce sent before the
	// route was up was lost.)
	var watch <-chan time.Time
	var acc interface{ Interest(string) int }
	interest := 0
	if b.srv != nil {
		acc = b.srv.GlobalAccount()
		interest = acc.Interest(b.membersSubject)
		w := time.NewTicker(interestPoll)
		defer w.Stop()
		watch = w.C
	}
	// A sync at most once a heartbeat interval: a client toggling a
	// wildcard subscription (">") changes the interest too, and must not
	// make every node answer a sync 20 times a second. A rise seen within
	// the interval is owed and sent when it ends.
	var lastSync time.Time
	owed := false
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			b.publishMember(kindHeartbeat)
		case <-watch:
			if n := acc.Interest(b.membersSubject); n != interest {
				owed = owed || n > interest
				interest = n
			}
			if owed && time.Since(lastSync) >= b.opts.HeartbeatInterval {
				b.publishMember(kindSync)
				lastSync, owed = time.Now(), false
			}
		}
	}
}
