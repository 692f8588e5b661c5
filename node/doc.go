// Package node is a running Skyring node and the embedding API.
//
// A Node composes the other packages: it takes commands from the public HTTP
// edge (package http) and the NATS API (package bus), decides which ring
// member owns each timer (package ring), relays commands it does not own to
// the owner over NATS, stores what it owns (package storage), arms it in a
// timing wheel (package wheel), and delivers it through a transport (package
// transports) when it is due. It recovers stored timers at start and hands
// timers to their new owners when members join or leave.
//
// Embed a node in your own program:
//
//	n, err := node.New(node.WithHTTPAddr(":3000"), node.WithStoragePath("/var/lib/skyring"))
//	if err != nil { ... }
//	if err := n.Start(ctx); err != nil { ... }
//	defer n.Close()
//
// # Guarantees
//
// A create is answered only once the timer is in storage (fsynced unless
// NoSync). A timer never fires before its due time. A timer given with a
// timeout (skyring.Timer.Relative) gets its due time on the node that owns
// it, counted from when that node stores it (skew.go), so a relayed timeout
// is never early by the clock of the node that accepted it. A fired timer
// stops being pending in storage only after its transport returned (it is
// then stored as delivered or failed: its fate, fate.go), so a crash can
// repeat a delivery that was under way but never loses one; the repeat
// carries a higher fence (skyring.Timer.Fence). A hand-off deletes a timer
// here only once its new owner acknowledged it, and the owner stores a
// hand-off idempotently, so a hand-off never loses a timer nor, without a
// crash, delivers one twice (rebalance.go).
//
// # Parts
//
// A Node composes one part per duty, each in its own file, each owning the
// goroutines it starts and stopping them in Close:
//
//   - index (index.go): the timers this node holds and the timing wheel that
//     arms them, the dead letters, and the attempts under way; the rules of
//     an id (reserved, busy, moving in a hand-off, superseded by a new
//     generation) live there alone;
//   - delivery (delivery.go): the workers that run fired timers' callbacks,
//     and the remover that writes their outcomes in batches (the fate, or
//     the next attempt) before their events go out; retry.go holds the
//     retry policy and backoff;
//   - membership (membership.go): the ring view, the one judge of which
//     members are alive (expiry, goodbyes, restarts), and who owns an id;
//   - rebalancer (rebalance.go): hands timers to their owners (acknowledged,
//     idempotent, reconciled every 500 ms and on every ring change) and
//     takes hand-offs from other nodes;
//   - sweeper (sweeper.go): removes delivered and cancelled timers once
//     their retention is over; fate.go holds retry-on-request and the
//     cluster-wide list;
//   - gate (gate.go): admits commands while the node runs (hand-offs also
//     while it leaves) and lets a leaving node wait for those under way.
//
// Start and Close document the order in which the parts start and stop.
//
// # Locks
//
// index.mu guards the timer index. It may be held while calling into the
// wheel driver (which takes its own lock), never the other way round: the
// driver calls index.fire without holding its lock. ring.View has its own
// lock, a leaf; rebalancer.mu guards its kept, limbo and backoff sets and
// is never held while calling anything else. No lock is held across
// storage writes, relays or transport calls.
package node
