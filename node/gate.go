package node

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/skyring/skyring"
)

// Lifecycle states of a Node.
const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateClosing
	stateClosed
)

// gate admits commands while the node is starting or running and counts
// those under way, so that a leaving node can wait for them before it hands
// its timers off (none is then written after the hand-off looked).
type gate struct {
	state    atomic.Int32
	inflight atomic.Int64
	// handoffs admits hand-offs from other nodes: from Start until this
	// node, leaving, has handed off what it holds. A leaving node still
	// takes hand-offs (two members leaving at once hand to each other) and
	// passes them on.
	handoffs atomic.Bool
}

// enter admits a command, or refuses it with ErrClosed once the node is
// closing; every admitted command calls exit when done.
func (g *gate) enter() error {
	g.inflight.Add(1)
	if st := g.state.Load(); st != stateRunning && st != stateStarting {
		g.inflight.Add(-1)
		return skyring.ErrClosed
	}
	return nil
}

func (g *gate) exit() { g.inflight.Add(-1) }

// enterHandoff admits a hand-off from another node (see handoffs); every
// admitted one calls exit when done.
func (g *gate) enterHandoff() error {
	g.inflight.Add(1)
	if st := g.state.Load(); st != stateRunning && st != stateStarting && !(st == stateClosing && g.handoffs.Load()) {
		g.inflight.Add(-1)
		return skyring.ErrClosed
	}
	return nil
}

// wait waits until no admitted command is under way, bounded by ctx.
func (g *gate) wait(ctx context.Context) {
	for g.inflight.Load() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // polling, bounded by ctx
	}
}
