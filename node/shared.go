package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/jsstore"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
)

// The shared-store mode: with --storage:backend jetstream, every node keeps
// its timers in one JetStream stream that all nodes share (storage/jsstore),
// replicated by JetStream (R3 on a cluster, R1 alone), rather than on its own
// disk. What changes in the node:
//
//   - start order: the bus connects first (the store lives on it), then the
//     store opens, then the node joins the ring;
//   - ownership goes by partition (1,024, ring.Placement of the members,
//     within 1.1x of an even share), not by the hashring of ids;
//   - a node holds the timers of the partitions it owns: it loads a
//     partition from the stream when it gains it (at start, when a member
//     joins, leaves or is dropped after the member timeout), and hands the
//     timers of the partitions it lost to their new owner without moving
//     any data (the owner reads the same stream);
//   - every delivery attempt is claimed in the stream first (a write
//     conditioned on the record's version): of two nodes that both believe
//     they own a timer for a moment, one claim wins and the other drops
//     the timer; the claim raises the timer's fence;
//   - a write the store could not confirm is an error for that command
//     (504: the outcome is unknown, retrying with the same id is safe), not
//     a fail-stop: a lost JetStream server is a fault the cluster rides out;
//   - the node's identity and incarnation stay in a small local database
//     (<path>/node): the stream's values are shared by every node.

// JetStreamBackend is the name of the shared JetStream backend
// (--storage:backend jetstream, alias "js").
const JetStreamBackend = "jetstream"

// IsJetStreamBackend reports whether name selects the JetStream backend.
func IsJetStreamBackend(name string) bool { return name == JetStreamBackend || name == "js" }

// jetStreamOptionKeys are the --storage:<key> options of the JetStream
// backend beyond the base ones.
var jetStreamOptionKeys = []string{"replicas"}

// storeOpenWait is how long one try to open the shared store waits before
// it logs and tries again (a replicated stream needs a quorum of servers).
const storeOpenWait = 5 * time.Second

// sharedStore is the shared store's API beyond storage.Store.
type sharedStore struct {
	js       *jsstore.Store
	replicas int
}

// sharedMode reports whether the node runs in shared-store mode.
func (n *Node) sharedMode() bool { return n.shared != nil }

// replicas is the replica count of the shared stream: --storage:replicas,
// else 3 on a cluster (two or more other seeds, or several external NATS
// URLs) and 1 otherwise.
func (o *Options) replicas() (int, error) {
	if v := o.StorageExtra["replicas"]; len(v) > 0 {
		r, err := strconv.Atoi(v[len(v)-1])
		if err != nil || (r != 1 && r != 3) {
			return 0, &skyring.ValidationError{Field: "storage:replicas", Reason: fmt.Sprintf("must be 1 or 3, not %q", v[len(v)-1])}
		}
		return r, nil
	}
	if len(o.NATSHosts) > 1 {
		return 3, nil // an external cluster
	}
	if len(o.NATSHosts) == 0 && o.routes() >= 2 {
		return 3, nil // an embedded cluster of three or more
	}
	return 1, nil
}

// routes is how many other nodes' servers the embedded server routes to.
func (o *Options) routes() int {
	return bus.Options{Seeds: o.Seeds, ClusterHost: o.ChannelHost, ClusterPort: o.ChannelPort}.RouteCount()
}

// startShared does the first steps of Start in shared-store mode: the local
// database of the node's identity, the transports and the bus (connected,
// not yet subscribed), then the shared store on the bus's connection.
func (n *Node) startShared(ctx context.Context) error {
	replicas, err := n.opts.replicas()
	if err != nil {
		return err
	}
	if n.opts.StoragePath == "" {
		n.meta = memstore.New()
	} else {
		n.storePath = n.opts.StoragePath
		if n.meta, err = leveldbstore.OpenStore(storage.Options{Path: filepath.Join(n.opts.StoragePath, "node"), Logger: n.log}); err != nil {
			return fmt.Errorf("node: opening the node's local database: %w", err)
		}
	}
	if err := n.bumpIncarnation(ctx); err != nil {
		return err
	}
	if err := n.loadIdentity(ctx); err != nil {
		return err
	}
	n.log = n.log.With("node_id", n.id)
	if err := n.buildTransports(); err != nil {
		return err
	}
	n.metrics.knownTransports(n.transports.Names())
	bo := n.busOptions()
	if len(bo.Servers) == 0 {
		if n.opts.StoragePath == "" {
			return errors.New("node: the jetstream backend with embedded NATS needs --storage:path")
		}
		bo.JetStream = true
		bo.JetStreamDir = filepath.Join(n.opts.StoragePath, "jetstream")
		// One copy must be on disk before it is acknowledged; three
		// copies on three servers are the durability of a replicated
		// stream.
		bo.JetStreamSyncAlways = replicas == 1 && !n.opts.StorageNoSync
		bo.ServerName = jetStreamServerName(n.opts.ChannelPort)
	}
	if n.bus, err = bus.New(bo); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.bus.Connect(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	js, err := n.openJetStream(ctx, replicas)
	if err != nil {
		return err
	}
	n.shared = &sharedStore{js: js, replicas: replicas}
	n.store = js
	if wrap := n.opts.Faults.WrapStore; wrap != nil {
		n.store = wrap(n.store)
	}
	n.store = n.metrics.timeStore(n.store)
	return nil
}

// jetStreamServerName is the embedded JetStream server's name: the host's
// name and the cluster port, which outlive the data directory. A node whose
// directory is lost comes back as a new node id but as the same JetStream
// peer, which catches up from the others; under a new name the JetStream
// cluster would count the lost peer for good and lose its quorum at the
// next loss.
func jetStreamServerName(port int) string {
	if port <= 0 {
		return "" // a port picked at start: no stable name to keep
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	return "skyring-" + host + "-" + strconv.Itoa(port)
}

// jetStreamMaxBatch is the largest atomic batch the store may send: the
// embedded servers' limit, or an external cluster's default (the node's
// own multi-timer writes in shared mode are sweeps of at most
// sharedSweepBatch).
func (n *Node) jetStreamMaxBatch() int {
	if len(n.opts.NATSHosts) > 0 {
		return jsstore.DefaultMaxBatch
	}
	return bus.JetStreamMaxBatch
}

// storePrefix is the subject prefix of the shared stream: under _SKYRING,
// where API users may neither publish nor subscribe.
func (n *Node) storePrefix() string { return "_SKYRING." + n.opts.Prefix + ".store" }

// openJetStream opens the shared stream, trying again until ctx ends: a
// replicated stream can be created only once a quorum of JetStream servers
// is up, and the nodes of a new cluster start in any order.
func (n *Node) openJetStream(ctx context.Context, replicas int) (*jsstore.Store, error) {
	for try := 1; ; try++ {
		octx, cancel := context.WithTimeout(ctx, storeOpenWait)
		js, err := jsstore.Open(octx, jsstore.Options{
			Conn:      n.bus.Conn(),
			Prefix:    n.storePrefix(),
			Replicas:  replicas,
			MaxBatch:  n.jetStreamMaxBatch(),
			Logger:    n.log.With("component", "storage"),
			OnCorrupt: func(string, error) { n.corrupt.Add(1) },
		})
		cancel()
		if err == nil {
			return js, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("node: opening the JetStream store: %w", err)
		}
		n.log.Warn("waiting for JetStream to open the timer stream (a replicated stream needs a quorum of servers)", "replicas", replicas, "try", try, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node: opening the JetStream store: %w", context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settleView waits, after the node announced itself, until its view of the
// ring has not changed for a moment (the other members answer an announce
// at once), bounded by two heartbeat intervals, so that its first load of
// partitions is of those it owns and not of every partition.
func (n *Node) settleView(ctx context.Context) {
	quiet := 300 * time.Millisecond
	deadline := time.Now().Add(2 * n.opts.HeartbeatInterval)
	last := n.members.view.Version()
	lastChange := time.Now()
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, 25*time.Millisecond) {
			return
		}
		if v := n.members.view.Version(); v != last {
			last, lastChange = v, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
}

// sharedFault is storageFault in shared-store mode: a write JetStream did
// not confirm is no reason to stop the node (the cluster rides out a lost
// server; the next write may well succeed). The command fails: 504 when
// the write may have landed (retrying with the same id is safe), 503 when
// it surely did not.
func sharedFault(op string, err error) error {
	if err == nil || errors.Is(err, skyring.ErrClosed) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, storage.ErrWrite) {
		return fmt.Errorf("%w: %s: the store did not confirm the write: %w", skyring.ErrOwnerTimeout, op, err)
	}
	return fmt.Errorf("%w: %s: %w", skyring.ErrNoOwner, op, err)
}
