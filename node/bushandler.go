package node

import (
	"context"
	"errors"
	"net/http"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/ring"
)

// busHandler is what the bus calls into (bus.Handler): the public NATS API
// (Node's own Create, Update, Cancel and Get), the relays other nodes send
// this node, and the membership messages. It keeps Node's API narrow.
type busHandler struct{ *Node }

// HandleRelay carries out a command another node relayed to this one.
func (h busHandler) HandleRelay(ctx context.Context, cmd bus.Command) (rep bus.Reply) {
	n := h.Node
	defer func() { n.countRelayed(cmd, rep) }()
	enter := n.gate.enter
	if cmd.Op == bus.OpHandoff {
		enter = n.gate.enterHandoff
	}
	if err := enter(); err != nil {
		return bus.ReplyFromError(err)
	}
	defer n.gate.exit()
	switch cmd.Op {
	case bus.OpCreate:
		if cmd.Timer == nil {
			return bus.ReplyFromError(errMissingTimer)
		}
		err := n.createLocal(ctx, cmd.Timer)
		if err == nil && n.members.owner(cmd.Timer.ID) != n.id {
			// The sender's view of the ring differs from this node's (a
			// member joined or left a moment ago): stored here as asked,
			// it moves to its owner by this node's view within a
			// reconcile period.
			n.rebalance.keep(cmd.Timer.ID)
		}
		return withStatus(bus.ReplyFromError(err), http.StatusCreated)
	case bus.OpUpdate:
		if cmd.Timer == nil {
			return bus.ReplyFromError(errMissingTimer)
		}
		return bus.ReplyFromError(n.served(ctx, cmd, nil, func() error { return n.updateLocal(ctx, cmd.Timer) }))
	case bus.OpCancel:
		return withStatus(bus.ReplyFromError(n.served(ctx, cmd, nil, func() error { return n.cancelLocal(ctx, cmd.ID) })), http.StatusAccepted)
	case bus.OpGet:
		var info skyring.Info
		err := n.served(ctx, cmd, &info, func() error {
			var err error
			info, err = n.getLocal(cmd.ID) // a copy in hand-off is stored until acknowledged
			return err
		})
		if err != nil {
			return bus.ReplyFromError(err)
		}
		return bus.Reply{Status: http.StatusOK, Info: &info}
	case bus.OpRetry:
		return withStatus(bus.ReplyFromError(n.served(ctx, cmd, nil, func() error { return n.retryLocal(ctx, cmd.ID) })), http.StatusAccepted)
	case bus.OpHandoff:
		// Timers move only between nodes that agree on the ring: a sender
		// with another view (it missed a join or a leave, or this node
		// did) tries again once the membership messages have gone round.
		if !n.members.agrees(cmd.Ring) {
			return bus.ReplyFromError(skyring.ErrStaleRing)
		}
		acked, err := n.rebalance.take(ctx, cmd.From, cmd.Timers, cmd.Resend)
		if err != nil {
			return bus.ReplyFromError(err)
		}
		return bus.Reply{Status: http.StatusOK, Acked: acked}
	case bus.OpList:
		return n.listReply(ctx, cmd)
	case bus.OpCancelMany:
		return n.cancelManyReply(ctx, cmd)
	default:
		return bus.ReplyFromError(&skyring.ValidationError{Reason: "unknown command " + cmd.Op.String()})
	}
}

// served runs a command another node relayed on this node's copy of its
// timer; if a hand-off of it is under way here, it waits for that first
// (bounded by settleWait; a read does not wait). A timer this node owns
// but does not have is looked for on the other members within missWindow
// of a ring change (it may be on its way here), unless the command is
// itself such a probe.
func (n *Node) served(ctx context.Context, cmd bus.Command, info *skyring.Info, local func() error) error {
	id := cmd.ID
	if cmd.Timer != nil {
		id = cmd.Timer.ID
	}
	for range 3 {
		if cmd.Op != bus.OpGet {
			sctx, cancel := context.WithTimeout(ctx, settleWait)
			err := n.index.settle(sctx, id)
			cancel()
			if err != nil {
				return err
			}
		}
		err := local()
		if errors.Is(err, errMoving) {
			continue
		}
		if cmd.Probe || !errors.Is(err, skyring.ErrTimerNotFound) || n.members.owner(id) != n.id || !n.members.changedWithin(missWindow) {
			return err
		}
		if ferr, found := n.findElsewhere(ctx, cmd, info); found {
			return ferr
		}
		if !n.index.armed(id) && !n.index.isMoving(id) {
			return err
		}
	}
	return skyring.ErrOwnerTimeout
}

// errMissingTimer answers a create or update relayed without its timer.
var errMissingTimer = &skyring.ValidationError{Reason: "missing timer"}

// withStatus replaces the 200 of a successful reply with status.
func withStatus(r bus.Reply, status int) bus.Reply {
	if r.Status == http.StatusOK {
		r.Status = status
	}
	return r
}

// MemberSeen passes another member's heartbeat to membership.
func (h busHandler) MemberSeen(m ring.Member) bool { return h.members.seen(m) }

// MemberLeft passes another member's goodbye to membership.
func (h busHandler) MemberLeft(id string) { h.members.left(id) }

// LocalMember is this node's entry for its next membership message.
func (h busHandler) LocalMember() ring.Member {
	m := h.localMember()
	h.members.view.SetSelf(m)
	return m
}
