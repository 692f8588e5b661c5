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
	"github.com/skyring/skyring/ring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/wheel"
)

// metaNodeID is the storage meta key of the node's stable identity.
const metaNodeID = "node-id"

// Node is one Skyring node. Build it with New or Options.New, then Start it;
// Close stops it. Its Create, Update, Cancel and Get methods are the same
// commands the HTTP and NATS APIs take, for embedders.
type Node struct {
	opts  Options
	log   *slog.Logger
	clock wheel.Clock

	id         string
	store      storage.Store
	storePath  string
	transports *transports.Registry
	driver     *wheel.Driver[string]
	bus        *bus.Bus
	http       *skyhttp.Server
	view       *ring.View

	// mu guards timers. A nil value is a reservation: a create or update
	// of that id is being written to storage.
	mu     sync.Mutex
	timers map[string]*wheel.Entry[string]

	deliverQ    chan string
	deliverCtx  context.Context // cancelled when Close gives up waiting for deliveries
	deliverStop context.CancelFunc
	workers     sync.WaitGroup
	deleteQ     chan bus.TimerEvent // outcomes of delivered timers: remove from storage, then publish
	deleter     sync.WaitGroup

	// ctx is the node's lifetime: cancelled (cause skyring.ErrClosed) by Close.
	ctx    context.Context
	cancel context.CancelCauseFunc
	duties sync.WaitGroup

	rebalanceC chan struct{}
	leaveRing  atomic.Pointer[leaveRing] // set once the node leaves the ring
	inflight   atomic.Int64              // commands admitted by enter
	state      atomic.Int32
	closeOnce  sync.Once
	closeErr   error
	started    time.Time
}

const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateClosing
	stateClosed
)

func newNode(o Options) (*Node, error) {
	n := &Node{
		opts:       o,
		log:        o.Logger.With("component", "node"),
		clock:      o.Clock,
		timers:     make(map[string]*wheel.Entry[string]),
		deliverQ:   make(chan string, 4096),
		deleteQ:    make(chan bus.TimerEvent, 8192),
		rebalanceC: make(chan struct{}, 1),
	}
	n.deliverCtx, n.deliverStop = context.WithCancel(context.Background())
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
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
	if n.bus == nil {
		return ""
	}
	return n.bus.ClientURL()
}

// StoragePath is where the node keeps its timers ("" for memory).
func (n *Node) StoragePath() string { return n.storePath }

// Len is the number of timers the node holds.
func (n *Node) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.timers)
}

// Start opens storage, recovers stored timers, joins the bus and starts the
// HTTP API. It returns once the node takes requests. On failure it closes
// what it had started.
func (n *Node) Start(ctx context.Context) (err error) {
	if !n.state.CompareAndSwap(stateNew, stateStarting) {
		return errors.New("node: Start called twice")
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.started = time.Now()
	if err := n.openStorage(ctx); err != nil {
		return err
	}
	if err := n.loadIdentity(ctx); err != nil {
		return err
	}
	n.log = n.log.With("node_id", n.id)
	if err := n.buildTransports(); err != nil {
		return err
	}
	driver, err := wheel.NewDriver(wheel.DriverOptions[string]{Clock: n.clock, Fire: n.fire})
	if err != nil {
		return fmt.Errorf("node: starting the timing wheel: %w", err)
	}
	n.driver = driver
	recovered, err := n.recover(ctx)
	if err != nil {
		return err
	}
	n.view = ring.NewView(ring.Member{ID: n.id}, n.opts.VNodes)

	b, err := bus.New(bus.Options{
		NodeID:            n.id,
		Prefix:            n.opts.Prefix,
		Servers:           n.opts.NATSHosts,
		NATSHost:          n.opts.NATSHost,
		NATSPort:          natsPort(n.opts.NATSPort),
		ClusterHost:       n.opts.ChannelHost,
		ClusterPort:       max(n.opts.ChannelPort, 0),
		Seeds:             n.opts.Seeds,
		HeartbeatInterval: n.opts.HeartbeatInterval,
		MaxTimeout:        n.opts.MaxTimeout,
		MaxBodySize:       int(n.opts.MaxBodyBytes),
		MaxPayload:        int32(min(max(n.opts.MaxBodyBytes+64<<10, bus.DefaultMaxPayload), 1<<30)),
		Logger:            n.opts.Logger,
		Now:               n.clock.Now,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.bus = b

	n.deleter.Add(1)
	go n.deleteLoop()
	for range n.opts.DeliveryWorkers {
		n.workers.Add(1)
		go n.deliverLoop()
	}
	if err := n.driver.Start(n.ctx); err != nil {
		return fmt.Errorf("node: starting the timing wheel: %w", err)
	}

	n.http = skyhttp.NewServer(n, skyhttp.Options{
		Addr:         n.opts.HTTPAddr,
		MaxBodyBytes: n.opts.MaxBodyBytes,
		MaxTimeout:   n.opts.MaxTimeout,
		Now:          n.clock.Now,
		Logger:       n.opts.Logger,
		Extra:        n.extraRoutes(),
	})
	// The bus goes first so that the HTTP address is known to members as
	// soon as the node takes requests; LocalMember reads it lazily.
	if err := n.http.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.bus.Start(ctx, busHandler{n}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.view.SetSelf(n.localMember())
	n.startDuties()
	n.state.Store(stateRunning)

	if recovered > 0 {
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: "recover", Node: n.id, Count: recovered})
	}
	n.bus.PublishNodeEvent(bus.NodeEvent{Type: "ready", Node: n.id})
	n.opts.Logger.Info("skyring ready",
		"node", n.id,
		"http", n.http.Addr().String(),
		"nats", n.bus.ClientURL(),
		"storage", n.storePath,
		"backend", n.opts.StorageBackend,
		"recovered", recovered,
	)
	return nil
}

func natsPort(p int) int {
	if p < 0 {
		return 0 // bus: 0 picks a free port
	}
	return p
}

func (n *Node) openStorage(ctx context.Context) error {
	if n.opts.Store != nil {
		n.store = n.opts.Store
		n.storePath = n.opts.StoragePath
		return nil
	}
	reg := n.opts.StorageRegistry
	if reg == nil {
		reg = defaultStorage()
	}
	s, err := reg.Open(n.opts.StorageBackend, storage.Options{
		Path:   n.opts.StoragePath,
		NoSync: n.opts.StorageNoSync,
		Extra:  n.opts.StorageExtra,
	})
	if err != nil {
		return fmt.Errorf("node: opening storage: %w", err)
	}
	n.store = s
	if !isMemoryBackend(n.opts.StorageBackend) {
		n.storePath = n.opts.StoragePath
	}
	return nil
}

func (n *Node) loadIdentity(ctx context.Context) error {
	stored, err := n.store.Meta(ctx, metaNodeID)
	if err != nil {
		return fmt.Errorf("node: reading the node id: %w", err)
	}
	switch {
	case n.opts.ID != "":
		n.id = n.opts.ID
	case len(stored) > 0:
		n.id = string(stored)
	default:
		n.id = skyring.NewID()
	}
	if err := validNodeID(n.id); err != nil {
		return err
	}
	if string(stored) != n.id {
		if err := n.store.SetMeta(ctx, metaNodeID, []byte(n.id)); err != nil {
			return fmt.Errorf("node: storing the node id: %w", err)
		}
	}
	return nil
}

// Close stops the node, in this order:
//
//  1. the HTTP edge stops taking requests and finishes those in flight;
//  2. the node leaves the ring (goodbye) and hands every timer it holds to
//     the remaining members; the last member keeps its timers on disk;
//  3. the timing wheel stops; deliveries under way finish, bounded by
//     ShutdownTimeout (what was not delivered stays in storage);
//  4. the shutdown event is published and the bus closes;
//  5. transports shut down, then storage closes.
//
// Close is idempotent and safe to call on a node that never started.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	was := n.state.Load()
	deadline := time.Now().Add(n.opts.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var errs []error

	if n.http != nil {
		if err := n.http.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing the HTTP API: %w", err))
		}
	}
	n.state.Store(stateClosing)
	if was == stateRunning && n.bus != nil {
		n.leave(ctx)
	}
	n.cancel(skyring.ErrClosed)
	n.duties.Wait()
	if n.driver != nil {
		if err := n.driver.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// Deliveries: let the queued and running ones finish, bounded.
	close(n.deliverQ)
	done := make(chan struct{})
	go func() { n.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.log.Warn("shutdown timeout: abandoning deliveries under way; they stay stored and fire on restart")
		n.deliverStop()
		<-done
	}
	n.deliverStop()
	close(n.deleteQ)
	n.deleter.Wait()

	if n.bus != nil {
		n.bus.PublishNodeEvent(bus.NodeEvent{Type: "shutdown", Node: n.id, Count: n.Len()})
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
	n.state.Store(stateClosed)
	if was == stateRunning {
		n.log.Info("skyring stopped")
	}
	return errors.Join(errs...)
}

// enter admits a command, or refuses it with ErrClosed once the node is
// closing; every admitted command calls exit when done. leave waits for the
// admitted ones before it hands timers off, so that none is written after
// the hand-off looked.
func (n *Node) enter() error {
	n.inflight.Add(1)
	if st := n.state.Load(); st != stateRunning && st != stateStarting {
		n.inflight.Add(-1)
		return skyring.ErrClosed
	}
	return nil
}

func (n *Node) exit() { n.inflight.Add(-1) }

// waitCommands waits until no admitted command is under way, bounded by ctx.
func (n *Node) waitCommands(ctx context.Context) {
	for n.inflight.Load() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // polling, bounded by ctx
	}
}
