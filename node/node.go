package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	skyhttp "github.com/skyring/skyring/http"
	"github.com/skyring/skyring/http/ui"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/wheel"
)

// Node is one Skyring node. Build it with New or Options.New, then Start it;
// Close stops it. Its Create, Update, Cancel and Get methods are the same
// commands the HTTP and NATS APIs take, for embedders.
//
// Node composes one part per duty, each owning its goroutines and stopped
// by Close: the timer index and its wheel (index.go), delivery (delivery.go),
// membership and ownership (membership.go), rebalancing (rebalance.go),
// and the sweep of finished timers (sweeper.go, fate.go). The Prometheus
// instrumentation (metrics.go, counted.go) and the health probes
// (health.go) own no goroutine: the duties call the first, and both are
// read when scraped or probed.
type Node struct {
	opts  Options
	log   *slog.Logger
	clock wheel.Clock

	id          string
	incarnation uint64 // starts on this storage, this one included (storage.go)
	started     time.Time
	store       storage.Store
	meta        storage.Store // node-level values (identity, incarnation): store, or a local one in shared mode
	shared      *sharedStore  // the shared store's own API in shared mode (shared.go), else nil
	storePath   string
	transports  *transports.Registry
	bus         *bus.Bus
	http        *skyhttp.Server
	natsURL     atomic.Pointer[string] // set once the bus runs

	index     *index
	delivery  *delivery
	members   *membership
	rebalance *rebalancer
	sweeper   *sweeper
	metrics   *metrics // nil when Options.NoMetrics

	// draining is set first thing by Close: /readyz answers 503 from then
	// on, while the HTTP edge still serves (Options.ShutdownDrain).
	draining atomic.Bool

	// ctx is the node's lifetime: cancelled (cause skyring.ErrClosed) by
	// Close once the node has left the ring.
	ctx    context.Context
	cancel context.CancelCauseFunc
	gate   gate

	failed    *failStop
	corrupt   atomic.Int64 // records moved aside as undecodable
	closeOnce sync.Once
	closeErr  error
}

func newNode(o Options) (*Node, error) {
	n := &Node{
		opts:   o,
		log:    o.Logger.With("component", "node"),
		clock:  o.Clock,
		failed: newFailStop(),
	}
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	if !o.NoMetrics {
		n.metrics = newMetrics(n)
	}
	return n, nil
}

// ID is the node's identity in the ring (known after Start).
func (n *Node) ID() string { return n.id }

// HTTPAddr is the address the public HTTP API listens on (after Start).
func (n *Node) HTTPAddr() net.Addr {
	if n.http == nil {
		return nil
	}
	return n.http.Addr()
}

// NATSURL is the NATS client URL the node uses: its embedded server's, or the
// first external server's (after Start).
func (n *Node) NATSURL() string {
	if u := n.natsURL.Load(); u != nil {
		return *u
	}
	return ""
}

// StoragePath is where the node keeps its timers ("" for memory).
func (n *Node) StoragePath() string { return n.storePath }

// Len is the number of timers the node holds.
func (n *Node) Len() int {
	if n.index == nil {
		return 0
	}
	return n.index.len()
}

// Start starts the node and returns once it takes requests. On failure it
// closes what it had started. The order is what makes a start safe:
//
//  1. storage opens and the node's identity is read from it;
//  2. the parts are built (transports, index, delivery, membership,
//     rebalancing, the bus, the HTTP edge): nothing runs yet, and a bad
//     configuration fails here;
//  3. stored timers are recovered into the index; the wheel does not run,
//     so none fires yet;
//  4. the HTTP listener opens (not serving yet), so that the node's first
//     announce carries its address;
//  5. the bus connects, subscribes and announces the node: from here
//     relays, hand-offs and the NATS API reach it, and it can relay;
//  6. membership expiry, rebalancing and the sweeper start;
//  7. delivery and then the wheel start: overdue timers fire now, when
//     every transport can deliver (the nats transport needs the bus);
//  8. the HTTP edge serves.
func (n *Node) Start(ctx context.Context) (err error) {
	if !n.gate.state.CompareAndSwap(stateNew, stateStarting) {
		return errors.New("node: Start called twice")
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.started = time.Now()
	if IsJetStreamBackend(n.opts.StorageBackend) && n.opts.Store == nil {
		return n.startSharedNode(ctx)
	}
	if err := n.openStorage(ctx); err != nil {
		return err
	}
	if err := n.bumpIncarnation(ctx); err != nil {
		return err
	}
	if err := n.loadIdentity(ctx); err != nil {
		return err
	}
	n.log = n.log.With("node_id", n.id)
	if err := n.build(); err != nil {
		return err
	}
	recovered, err := n.recoverTimers(ctx)
	if err != nil {
		return err
	}
	if err := n.http.Listen(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.bus.Start(ctx, busHandler{n}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return n.run(ctx, recovered)
}

// startSharedNode is Start in shared-store mode (shared.go): the bus
// connects and the shared store opens first; the node joins the ring, waits
// for its view to settle, and loads the partitions it owns before its wheel
// runs.
func (n *Node) startSharedNode(ctx context.Context) error {
	if err := n.startShared(ctx); err != nil {
		return err
	}
	if err := n.build(); err != nil {
		return err
	}
	if err := n.http.Listen(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.bus.Start(ctx, busHandler{n}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.members.start(n.ctx)
	n.settleView(ctx)
	loaded, err := n.rebalance.loadPartitions(ctx)
	if err != nil {
		return err
	}
	return n.run(ctx, loaded)
}

// run starts what runs once the bus is up (steps 6 to 8 of Start).
func (n *Node) run(ctx context.Context, recovered int) error {
	natsURL := n.bus.ClientURL()
	n.natsURL.Store(&natsURL)
	n.gate.handoffs.Store(true)
	if !n.sharedMode() {
		n.members.start(n.ctx)
	}
	n.rebalance.start(n.ctx, n.members.owner, n.members.ringChecksum)
	n.sweeper.start(n.ctx)
	n.delivery.start(n.ctx.Done(), n.opts.DeliveryWorkers)
	if err := n.index.start(n.ctx); err != nil {
		return err
	}
	if err := n.http.Serve(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.gate.state.Store(stateRunning)
	n.announceReady(recovered)
	return nil
}

// build makes the node's parts; nothing of theirs runs yet.
func (n *Node) build() error {
	var err error
	if n.bus == nil { // shared mode built them already (startShared)
		if err = n.buildTransports(); err != nil {
			return err
		}
		n.metrics.knownTransports(n.transports.Names())
		if n.bus, err = bus.New(n.busOptions()); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	n.delivery = newDelivery(n)
	if n.index, err = newIndex(n.clock, n.delivery.enqueue); err != nil {
		return err
	}
	n.delivery.index = n.index
	if n.shared != nil {
		n.delivery.claims = n.shared.js
	}
	n.rebalance = newRebalancer(n)
	n.members = newMembership(n, n.rebalance.request)
	if n.shared != nil {
		n.members.partitioned = true
		n.rebalance.parts = newPartitions(n.shared.js, n.members.ownsPartition)
	}
	n.sweeper = newSweeper(n)
	n.http = skyhttp.NewServer(httpAPI{n}, skyhttp.Options{
		Addr:         n.opts.HTTPAddr,
		MaxBodyBytes: n.opts.MaxBodyBytes,
		MaxTimeout:   n.opts.MaxTimeout,
		Now:          n.clock.Now,
		Logger:       n.opts.Logger,
		Extra:        n.extraRoutes(),
		Public:       ui.Routes(),
		Tokens:       n.opts.HTTPTokens,
		AllowOrigins: n.opts.HTTPAllowOrigins,
		TLSCertFile:  n.opts.HTTPTLSCertFile,
		TLSKeyFile:   n.opts.HTTPTLSKeyFile,
	})
	return nil
}

// announceReady publishes the recover and ready events and logs the start.
func (n *Node) announceReady(recovered int) {
	if recovered > 0 {
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeRecover, Node: n.id, Count: recovered})
	}
	n.bus.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeReady, Node: n.id})
	n.opts.Logger.Info("skyring ready",
		"node", n.id,
		"http", n.http.Addr().String(),
		"nats", n.NATSURL(),
		"storage", n.storePath,
		"backend", n.opts.StorageBackend,
		"recovered", recovered,
	)
}

// Close stops the node, in this order:
//
//  0. the node turns not ready (GET /readyz answers 503) while the HTTP
//     edge still serves, for Options.ShutdownDrain, so that a load
//     balancer stops sending it requests;
//  1. the HTTP edge stops taking requests and finishes those in flight;
//  2. the node leaves the ring (goodbye) and hands every timer it holds to
//     the remaining members; the last member keeps its timers on disk;
//  3. membership, rebalancing and the sweeper stop, then the timing wheel; deliveries
//     under way finish, bounded by ShutdownTimeout (what was not delivered
//     stays in storage);
//  4. the shutdown event is published and the bus closes;
//  5. transports shut down, then storage closes.
//
// Close is idempotent and safe to call on a node that never started, or
// whose Start failed part way.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	was := n.gate.state.Load()
	n.draining.Store(true)
	if was == stateRunning && n.opts.ShutdownDrain > 0 {
		n.log.Info("not ready: draining before the HTTP API stops", "drain", n.opts.ShutdownDrain)
		time.Sleep(n.opts.ShutdownDrain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
	defer cancel()
	var errs []error
	if n.http != nil {
		if err := n.http.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing the HTTP API: %w", err))
		}
	}
	n.gate.state.Store(stateClosing)
	if was == stateRunning {
		n.leave(ctx)
	}
	n.gate.handoffs.Store(false)
	n.cancel(skyring.ErrClosed)
	if n.members != nil {
		n.members.stop()
		n.rebalance.stop()
		n.sweeper.stop()
	}
	if n.index != nil {
		if err := n.index.stop(); err != nil {
			errs = append(errs, err)
		}
		n.delivery.stop(ctx)
	}
	if n.bus != nil {
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeShutdown, Node: n.id, Count: n.Len()})
		if err := n.bus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the bus: %w", err))
		}
	}
	if n.transports != nil {
		if err := n.transports.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down transports: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing storage: %w", err))
		}
	}
	if n.meta != nil && n.meta != n.store {
		if err := n.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the node's local database: %w", err))
		}
	}
	n.gate.state.Store(stateClosed)
	if was == stateRunning {
		n.log.Info("skyring stopped")
	}
	return errors.Join(errs...)
}

// leave says goodbye to the ring and hands every timer to the remaining
// members. The last member keeps its timers on disk.
func (n *Node) leave(ctx context.Context) {
	// From the end of the leave on, hand-offs to this node are refused.
	defer n.gate.handoffs.Store(false)
	// Other nodes in the API queue group take the NATS API from here on.
	if err := n.bus.StopAPI(ctx); err != nil {
		n.log.Warn("stopping the NATS API", "err", err)
	}
	n.bus.Leave()
	// Commands admitted before the node began closing finish first.
	n.gate.wait(ctx)
	if n.members.leave() <= 0 {
		return
	}
	n.bus.PublishNodeEvent(bus.NodeEvent{Type: bus.NodePurge, Node: n.id, Count: n.Len()})
	// Hand off until nothing is left, or the deadline: what other leaving
	// members hand to this one meanwhile is taken and passed on too.
	for ctx.Err() == nil {
		if moved, left := n.rebalance.handOff(ctx); left == 0 && moved == 0 && n.index.len()+n.index.nfailed() == 0 {
			break
		}
		sleepCtx(ctx, backoffMin)
	}
	if left := n.index.len() + n.index.nfailed(); left > 0 {
		n.log.Warn("timers kept on disk after leaving: they fire when this node starts again", "count", left)
	}
}
