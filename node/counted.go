package node

import (
	"context"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
)

// httpAPI is the node as the HTTP edge sees it: its commands, counted with
// interface "http" (skyring_timer_commands_total).
type httpAPI struct{ *Node }

func (a httpAPI) Create(ctx context.Context, t *skyring.Timer) error {
	err := a.Node.Create(ctx, t)
	a.metrics.command(opCreate, ifHTTP, err)
	return err
}

func (a httpAPI) Update(ctx context.Context, t *skyring.Timer) error {
	err := a.Node.Update(ctx, t)
	a.metrics.command(opUpdate, ifHTTP, err)
	return err
}

func (a httpAPI) Cancel(ctx context.Context, id string) error {
	err := a.Node.Cancel(ctx, id)
	a.metrics.command(opCancel, ifHTTP, err)
	return err
}

func (a httpAPI) Retry(ctx context.Context, id string) error {
	err := a.Node.Retry(ctx, id)
	a.metrics.command(opRetry, ifHTTP, err)
	return err
}

// The public NATS API's commands, counted with interface "nats".

func (h busHandler) Create(ctx context.Context, t *skyring.Timer) error {
	err := h.Node.Create(ctx, t)
	h.metrics.command(opCreate, ifNATS, err)
	return err
}

func (h busHandler) Update(ctx context.Context, t *skyring.Timer) error {
	err := h.Node.Update(ctx, t)
	h.metrics.command(opUpdate, ifNATS, err)
	return err
}

func (h busHandler) Cancel(ctx context.Context, id string) error {
	err := h.Node.Cancel(ctx, id)
	h.metrics.command(opCancel, ifNATS, err)
	return err
}

func (h busHandler) Retry(ctx context.Context, id string) error {
	err := h.Node.Retry(ctx, id)
	h.metrics.command(opRetry, ifNATS, err)
	return err
}

// relayOps maps the relayed commands that are counted to their op label.
var relayOps = map[bus.Op]cmdOp{
	bus.OpCreate: opCreate, bus.OpUpdate: opUpdate, bus.OpCancel: opCancel, bus.OpRetry: opRetry,
}

// countRelayed counts a command another node relayed to this one, by the
// status of the reply (probes of findElsewhere are not counted: they look
// for a timer, they do not carry out a command).
func (n *Node) countRelayed(cmd bus.Command, rep bus.Reply) {
	op, ok := relayOps[cmd.Op]
	if !ok || cmd.Probe || n.metrics == nil {
		return
	}
	n.metrics.command(op, ifRelay, rep.Err())
}

// sendRelay relays cmd to owner, timed and counted
// (skyring_relays_total, skyring_relay_duration_seconds).
func (n *Node) sendRelay(ctx context.Context, owner string, cmd bus.Command) (bus.Reply, error) {
	start := time.Now()
	rep, err := n.bus.Relay(ctx, owner, cmd)
	n.metrics.relayed(cmd.Op, time.Since(start), err, rep.Err())
	return rep, err
}
