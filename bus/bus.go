package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/ring"
)

// Defaults of Options.
const (
	DefaultNATSHost          = "127.0.0.1"
	DefaultNATSPort          = 4222
	DefaultClusterHost       = "127.0.0.1"
	DefaultClusterPort       = 3455
	DefaultClusterName       = "skyring"
	DefaultHeartbeatInterval = time.Second
	DefaultRequestTimeout    = 5 * time.Second
	DefaultConnectTimeout    = 5 * time.Second
	DefaultDrainTimeout      = 5 * time.Second
	DefaultMaxConcurrent     = 256
	// DefaultMaxPayload is the max payload of the embedded server: room for
	// handoff batches (larger batches are split anyway).
	DefaultMaxPayload = 8 << 20
	// DefaultMaxConnections bounds the embedded server's client
	// connections.
	DefaultMaxConnections = 4096
	// JetStreamMaxBatch is the embedded server's max_batch_size (JetStream
	// atomic batch publish) when it runs JetStream.
	JetStreamMaxBatch = 10_000
)

// APIQueueGroup is the queue group of the public NATS API subscriptions.
const APIQueueGroup = "skyring-api"

// ErrNodeUnreachable is returned (wrapped) by Relay when no node listens on
// the target's subject: the node is gone, or has not joined yet. The command
// was not carried out.
var ErrNodeUnreachable = errors.New("bus: node unreachable")

// ErrTooLarge is returned by Relay for a command over the connection's
// max payload: it was not sent.
var ErrTooLarge = errors.New("bus: command over the NATS max payload")

// ErrDuplicateNode is returned (wrapped) by Start when another node with the
// same NodeID already listens on the bus.
var ErrDuplicateNode = errors.New("bus: node id already in use")

// ErrPortInUse is returned (wrapped) by Start when the embedded server's
// client or cluster port is taken.
var ErrPortInUse = errors.New("bus: port in use")

// Options configure a Bus. The zero value of each field means its default.
type Options struct {
	// NodeID names this node; required. A NATS-subject-safe token: letters,
	// digits, '-' and '_'.
	NodeID string
	// Prefix is the subject prefix of the public API and events; default
	// skyring.DefaultPrefix ("skyring"). Dot-separated tokens without spaces
	// or wildcards.
	Prefix string
	// Servers are external NATS URLs (--nats:hosts). Empty runs an embedded
	// nats-server.
	Servers []string

	// NATSHost is the embedded server's client listen host; default
	// "127.0.0.1".
	NATSHost string
	// NATSPort is the embedded server's client port. As every port of
	// Skyring: 0 means the default (4222), -1 a free port picked at start.
	NATSPort int
	// ClusterHost is the embedded server's route listen host
	// (--channel:host); default "127.0.0.1".
	ClusterHost string
	// ClusterPort is the route listen port (--channel:port): 0 means the
	// default (3455), -1 a free port picked at start.
	ClusterPort int
	// Seeds are "host:port" route addresses of the seed nodes' cluster
	// ports. This node's own address is left out.
	Seeds []string
	// ClusterName is the embedded server's cluster name; default "skyring".
	ClusterName string
	// MaxPayload is the embedded server's max payload; default 8 MiB.
	MaxPayload int32
	// MaxConnections bounds the embedded server's client connections
	// (--nats:max-connections); default 4096.
	MaxConnections int
	// JetStream, when set, runs JetStream in the embedded server, storing
	// under JetStreamDir (required then). The embedded servers of routed
	// nodes form one JetStream cluster (their ServerNames are the node
	// ids), so a stream can be replicated on three nodes with no other
	// process. The server then keeps its system account, which JetStream's
	// clustering needs; API users may still publish on neither $SYS.> nor
	// $JS.>. Atomic batches may hold JetStreamMaxBatch messages.
	JetStream    bool
	JetStreamDir string
	// JetStreamSyncAlways makes the embedded server fsync every write
	// before it acknowledges it (sync_interval: always). Without it,
	// JetStream syncs every two minutes and a replicated stream relies on
	// its copies; a single server (R1) needs it to be durable.
	JetStreamSyncAlways bool
	// ServerName names the embedded server ("skyring-<NodeID>" if empty).
	// A JetStream cluster knows its peers by server name: a node that
	// comes back on a new data directory (a new NodeID) must keep its
	// server's name, or the cluster counts one more peer, for good.
	ServerName string

	// Secret is the cluster secret (--channel:secret). With the embedded
	// server it authenticates the routes between the nodes' servers (a
	// server refuses a route without it) and is the password of NodeUser
	// on the client port. Without it routes are not authenticated (keep
	// the cluster port on a private network) and the node's own connection
	// uses a random password that never leaves the process. Either way only
	// NodeUser may use the internal subjects: every other client of the
	// embedded server is APIUser.
	Secret string
	// APITokens, when set, are required of APIUser clients of the embedded
	// server (nats.Token, or any user name with a token as the password);
	// a client without one is refused. Several allow a rotation.
	APITokens []string
	// ClusterTLS, when set, makes the embedded server's routes mutual TLS:
	// the cluster listener and every route present CertFile and verify the
	// peer against CAFile.
	ClusterTLS TLSFiles
	// CredsFile (a JWT .creds file), NkeyFile (an nkey seed file) and TLS
	// (CA, client certificate and key) authenticate the node to external
	// Servers; they are nats.go's own options. Give the node's user every
	// subject (it publishes the nats transport's callbacks); give API
	// clients everything but _SKYRING.> (see APIUser for the rest).
	CredsFile, NkeyFile string
	TLS                 TLSFiles

	// HeartbeatInterval is how often the node announces itself; default 1s.
	HeartbeatInterval time.Duration
	// MaxTimeout is the largest accepted timeout in ms of the public NATS
	// API (skyring.ParseParams.MaxTimeout); 0 means the default.
	MaxTimeout int64
	// MaxBodySize is the largest public API message in bytes; larger ones
	// answer 413. Default skyring.DefaultMaxBodyBytes (1 MiB), as the HTTP
	// API.
	MaxBodySize int
	// MaxConcurrent bounds the handlers running at once, separately for the
	// public API and for relays; default 256.
	MaxConcurrent int
	// RequestTimeout bounds a Relay whose context has no deadline; default
	// 5s.
	RequestTimeout time.Duration
	// ConnectTimeout bounds connecting to external servers in Start and
	// waiting for the embedded server to listen; default 5s.
	ConnectTimeout time.Duration
	// DrainTimeout bounds how long Close waits for in-flight messages
	// before it cancels the handlers' context; default 5s.
	DrainTimeout time.Duration

	// Logger gets the bus's logs; default slog.Default(). The embedded
	// server logs through it at debug level.
	Logger *slog.Logger
	// Now stamps accepted NATS API creates and updates; default time.Now.
	Now func() time.Time

	// DropRelayReply is fault injection for tests (the hidden
	// --debug:drop-relay-replies flag); never set it in production. If set,
	// it is asked once a relayed command was carried out, before the reply
	// is sent; true drops the reply, so the sender gets no answer (a relay
	// timeout) although the command took effect: a lost reply.
	DropRelayReply func(Op) bool
}

func (o Options) withDefaults() Options {
	o.Prefix = cmp.Or(o.Prefix, skyring.DefaultPrefix)
	o.NATSHost = cmp.Or(o.NATSHost, DefaultNATSHost)
	o.NATSPort = cmp.Or(o.NATSPort, DefaultNATSPort)
	o.ClusterPort = cmp.Or(o.ClusterPort, DefaultClusterPort)
	o.ClusterHost = cmp.Or(o.ClusterHost, DefaultClusterHost)
	o.ClusterName = cmp.Or(o.ClusterName, DefaultClusterName)
	o.MaxPayload = cmp.Or(o.MaxPayload, DefaultMaxPayload)
	o.MaxConnections = cmp.Or(o.MaxConnections, DefaultMaxConnections)
	o.HeartbeatInterval = cmp.Or(o.HeartbeatInterval, DefaultHeartbeatInterval)
	o.MaxBodySize = cmp.Or(o.MaxBodySize, skyring.DefaultMaxBodyBytes)
	o.MaxConcurrent = cmp.Or(o.MaxConcurrent, DefaultMaxConcurrent)
	o.RequestTimeout = cmp.Or(o.RequestTimeout, DefaultRequestTimeout)
	o.ConnectTimeout = cmp.Or(o.ConnectTimeout, DefaultConnectTimeout)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, DefaultDrainTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) validate() error {
	if o.NodeID == "" {
		return errors.New("bus: NodeID is required")
	}
	if !isToken(o.NodeID) {
		return fmt.Errorf("bus: NodeID %q may hold only letters, digits, '-' and '_'", o.NodeID)
	}
	for _, tok := range strings.Split(o.Prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("bus: invalid subject prefix %q", o.Prefix)
		}
	}
	if o.NATSPort < -1 || o.NATSPort > 65535 {
		return fmt.Errorf("bus: invalid NATS port %d", o.NATSPort)
	}
	if o.ClusterPort < -1 || o.ClusterPort > 65535 {
		return fmt.Errorf("bus: invalid cluster port %d", o.ClusterPort)
	}
	for _, s := range o.Servers {
		if strings.TrimSpace(s) == "" {
			return errors.New("bus: empty NATS server URL")
		}
	}
	if len(o.Servers) == 0 && (o.CredsFile != "" || o.NkeyFile != "" || o.TLS.set()) {
		return errors.New("bus: NATS credentials and client TLS are for external servers; the embedded server needs none")
	}
	if len(o.Servers) > 0 && (o.ClusterTLS.set() || len(o.APITokens) > 0) {
		return errors.New("bus: cluster TLS and API tokens configure the embedded server; with external servers configure them there")
	}
	if o.CredsFile != "" && o.NkeyFile != "" {
		return errors.New("bus: give NATS credentials or an nkey seed, not both")
	}
	if o.ClusterTLS.set() {
		if _, err := o.ClusterTLS.clusterTLS(); err != nil {
			return err
		}
	}
	if o.JetStream && (len(o.Servers) > 0 || o.JetStreamDir == "") {
		return errors.New("bus: JetStream runs in the embedded server and needs a JetStreamDir")
	}
	if o.HeartbeatInterval < 0 || o.RequestTimeout < 0 ||
		o.ConnectTimeout < 0 || o.DrainTimeout < 0 {
		return errors.New("bus: durations must not be negative")
	}
	if o.MaxConcurrent < 0 || o.MaxBodySize < 0 || o.MaxPayload < 0 || o.MaxConnections < 0 {
		return errors.New("bus: limits must not be negative")
	}
	return nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// Handler is what the bus calls into; package node implements it. Every
// method may be called from several goroutines at once, except the
// membership callbacks (MemberSeen, MemberLeft), which are called one at a
// time, in the order the messages arrived. Handler methods may call Relay
// and the Publish methods, but not Leave, StopAPI or Close (those wait for
// the handlers).
type Handler interface {
	// Create, Update, Cancel and Get serve the public NATS API (API.md
	// section 4) with the semantics of HTTP; the node relays to the owner
	// itself. Errors map to statuses through skyring.Status.
	Create(ctx context.Context, t *skyring.Timer) error
	Update(ctx context.Context, t *skyring.Timer) error
	Cancel(ctx context.Context, id string) error
	Get(ctx context.Context, id string) (skyring.Info, error)
	// List pages through the timers of the whole cluster (<prefix>.timer.list).
	List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error)
	// CancelMatching cancels every pending or retrying timer of the whole
	// cluster that f matches, drops every failed one, and returns how
	// many (<prefix>.timer.cancel_many).
	CancelMatching(ctx context.Context, f skyring.Filter) (int, error)
	// Retry re-arms a failed timer now with a fresh attempt budget
	// (<prefix>.timer.retry). Errors: skyring.ErrTimerNotFound,
	// skyring.ErrNotFailed.
	Retry(ctx context.Context, id string) error
	// HandleRelay serves a command another node sent to this node's own
	// subject (Relay).
	HandleRelay(ctx context.Context, cmd Command) Reply
	// MemberSeen is called for every heartbeat, announce or sync answer of
	// another node (never for this node's own). It reports whether the
	// member is new to this node (joined, or restarted as a new
	// incarnation): the bus then answers with a heartbeat at once. The
	// bus keeps no liveness state of its own: the Handler decides when a
	// member that fell silent is gone.
	MemberSeen(m ring.Member) (isNew bool)
	// MemberLeft is called when another node says goodbye.
	MemberLeft(id string)
	// LocalMember returns this node's fresh membership info; it is called
	// before each membership message. ID is overwritten with
	// Options.NodeID, and a zero Started with the time Start was called.
	LocalMember() ring.Member
}

const (
	stateNew       = iota
	stateConnected // Connect ran: connected, nothing subscribed
	stateStarted
	stateClosed
)

// Bus is one node's NATS side. Create it with New, then Start it; Close it
// when done.
type Bus struct {
	opts Options
	log  *slog.Logger

	relaySubject   string
	membersSubject string

	mu    sync.Mutex // guards state and the fields set by Start
	state int
	h     Handler
	srv   *server.Server
	subs  struct {
		relay, members *nats.Subscription
		api            []*nats.Subscription
	}
	started int64 // Unix ms

	nc       atomic.Pointer[nats.Conn]
	cbc      atomic.Pointer[nats.Conn] // CallbackConn
	nodePass string                    // NodeUser's password on the embedded server

	ctx    context.Context // handlers' context, cancelled by Close
	cancel context.CancelCauseFunc

	apiPool, relayPool *pool

	hbStop chan struct{}
	hbDone chan struct{}

	leaveOnce   sync.Once
	stopAPIOnce sync.Once
	stopAPIErr  error
	closeOnce   sync.Once
	closeErr    error

	left atomic.Bool // this node said goodbye: send no other membership message
}

// New checks opts and returns a Bus that is not started yet.
func New(opts Options) (*Bus, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	b := &Bus{
		opts: opts,
		log:  opts.Logger.With("component", "bus", "node_id", opts.NodeID),
	}
	b.relaySubject = relaySubject(opts.Prefix, opts.NodeID)
	b.nodePass = b.nodePassword()
	b.membersSubject = "_SKYRING." + opts.Prefix + ".members"
	b.ctx, b.cancel = context.WithCancelCause(context.Background())
	b.apiPool = newPool(opts.MaxConcurrent)
	b.relayPool = newPool(opts.MaxConcurrent)
	return b, nil
}

// inboxPrefix is the prefix of the node's reply subjects.
func inboxPrefix(prefix, nodeID string) string {
	return "_SKYRING." + prefix + ".inbox." + nodeID
}

func relaySubject(prefix, nodeID string) string {
	return "_SKYRING." + prefix + ".relay." + nodeID
}

// Connect starts the embedded server (if no external Servers are set) and
// connects, without subscribing to anything or announcing the node: a node
// whose storage lives on NATS (JetStream) opens it on Conn before Start
// lets other nodes reach it. Start connects first if Connect was not
// called. A failed Connect undoes what it did; the Bus can then only be
// closed.
func (b *Bus) Connect(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateConnected, stateStarted:
		return nil
	case stateClosed:
		return fmt.Errorf("bus: connect: %w", skyring.ErrClosed)
	}
	if err := b.connect(ctx); err != nil {
		b.abortStart()
		b.state = stateClosed
		return err
	}
	b.state = stateConnected
	return nil
}

// Start connects (unless Connect did), subscribes to this node's relay
// subject, the membership subject and the public API (in a queue group),
// announces the node and starts heartbeating. It returns once every
// subscription is registered with the server. ctx bounds the start only. A
// failed Start undoes what it did; the Bus can then only be closed.
func (b *Bus) Start(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("bus: Start needs a Handler")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateStarted:
		return errors.New("bus: already started")
	case stateClosed:
		return fmt.Errorf("bus: start: %w", skyring.ErrClosed)
	}
	b.h = h
	b.started = b.opts.Now().UnixMilli()
	err := error(nil)
	if b.state != stateConnected {
		err = b.connect(ctx)
	}
	if err == nil {
		err = b.start(ctx)
	}
	if err != nil {
		b.abortStart()
		b.state = stateClosed
		return err
	}
	b.state = stateStarted
	return nil
}

// connect starts the embedded server (or dials the external ones) and
// opens the node's and the callbacks' connections. b.mu is held.
func (b *Bus) connect(ctx context.Context) error {
	var nc *nats.Conn
	var err error
	if len(b.opts.Servers) == 0 {
		if b.srv, err = b.startServer(ctx); err != nil {
			return err
		}
		nc, err = nats.Connect("", b.natsOptions(ctx, nats.InProcessServer(b.srv), nats.UserInfo(NodeUser, b.nodePass))...)
		if err != nil {
			return fmt.Errorf("bus: connecting to the embedded NATS server: %w", err)
		}
	} else {
		auth, err := b.opts.externalAuth()
		if err != nil {
			return err
		}
		nc, err = nats.Connect(strings.Join(b.opts.Servers, ","), b.natsOptions(ctx, auth...)...)
		if err != nil {
			if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
				err = fmt.Errorf("%w: %w", ErrAuth, err)
			}
			return fmt.Errorf("bus: connecting to NATS at %s: %w", redactURLs(b.opts.Servers), err)
		}
	}
	b.nc.Store(nc)
	if err := b.connectCallbacks(ctx); err != nil {
		return err
	}
	return b.checkNodeID(ctx, nc)
}

// start subscribes and announces the node. b.mu is held.
func (b *Bus) start(ctx context.Context) error {
	nc := b.nc.Load()
	if err := b.subscribe(nc); err != nil {
		return err
	}
	if err := flush(ctx, nc, b.opts.ConnectTimeout); err != nil {
		return fmt.Errorf("bus: registering subscriptions: %w", err)
	}
	b.publishMember(kindAnnounce)
	b.publishMember(kindSync)

	b.hbStop = make(chan struct{})
	b.hbDone = make(chan struct{})
	go b.heartbeatLoop(b.hbStop, b.hbDone)
	return nil
}

// connectCallbacks opens the connection the nats transport delivers on
// (CallbackConn): in process, as CallbackUser, with the embedded server;
// with the node's own credentials to external servers. Its inbox is
// _SKYRING_CB.<prefix>.<nodeID>, where receivers may answer but no client
// may listen.
func (b *Bus) connectCallbacks(ctx context.Context) error {
	opts := b.natsOptions(ctx)
	opts = append(opts,
		nats.Name("skyring-"+b.opts.NodeID+"-callbacks"),
		nats.CustomInboxPrefix(callbackInbox(b.opts.Prefix, b.opts.NodeID)),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("callback connection reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	)
	var nc *nats.Conn
	var err error
	if b.srv != nil {
		nc, err = nats.Connect("", append(opts, nats.InProcessServer(b.srv), nats.UserInfo(CallbackUser, b.nodePass))...)
	} else {
		auth, aerr := b.opts.externalAuth()
		if aerr != nil {
			return aerr
		}
		nc, err = nats.Connect(strings.Join(b.opts.Servers, ","), append(opts, auth...)...)
	}
	if err != nil {
		return fmt.Errorf("bus: the callback connection: %w", err)
	}
	b.cbc.Store(nc)
	return nil
}

// checkNodeID fails if another node already answers on this node's relay
// subject: two nodes with one id would steal each other's relays. (Across
// routes a node that started a moment ago may not be visible yet; this
// catches the common mistake, not every race.)
func (b *Bus) checkNodeID(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ping := appendCommand(nil, &Command{Op: opPing, From: b.opts.NodeID}, 0)
	_, err := nc.RequestWithContext(ctx, b.relaySubject, ping)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %q", ErrDuplicateNode, b.opts.NodeID)
	case errors.Is(err, nats.ErrNoResponders):
		return nil
	default:
		return fmt.Errorf("bus: checking node id %q: %w", b.opts.NodeID, err)
	}
}

// abortStart undoes a failed start. b.mu is held.
func (b *Bus) abortStart() {
	b.cancel(skyring.ErrClosed)
	if nc := b.cbc.Load(); nc != nil {
		nc.Close()
	}
	if nc := b.nc.Load(); nc != nil {
		nc.Close()
	}
	b.apiPool.close()
	b.relayPool.close()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

func flush(ctx context.Context, nc *nats.Conn, d time.Duration) error {
	if _, ok := ctx.Deadline(); ok {
		return nc.FlushWithContext(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return nc.FlushWithContext(ctx)
}

func (b *Bus) natsOptions(ctx context.Context, extra ...nats.Option) []nats.Option {
	timeout := b.opts.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	opts := []nats.Option{
		nats.Name("skyring-" + b.opts.NodeID),
		// Replies to this node's relays come on an internal subject, out
		// of API clients' reach: none can read them or forge one.
		nats.CustomInboxPrefix(inboxPrefix(b.opts.Prefix, b.opts.NodeID)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(32 << 20),
		nats.Timeout(max(timeout, time.Millisecond)),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("NATS async error", "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			b.publishMember(kindSync)
		}),
	}
	return append(opts, extra...)
}

// Close says goodbye (unless Leave did), stops heartbeating, drains every
// subscription, waits for the handlers in flight (cancelling their context
// after Options.DrainTimeout), closes the connection and shuts the embedded
// server down. It is idempotent, may be called without Start, and returns
// once every goroutine of the bus has exited.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Bus) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == stateConnected {
		b.abortStart() // closes the connections and the embedded server
	}
	if b.state != stateStarted {
		b.state = stateClosed
		b.cancel(skyring.ErrClosed)
		return nil
	}
	b.state = stateClosed
	nc := b.nc.Load()
	deadline := time.Now().Add(b.opts.DrainTimeout)

	b.leave()
	var errs []error
	subs := append([]*nats.Subscription{b.subs.relay, b.subs.members}, b.subs.api...)
	if err := drainSubs(subs, deadline); err != nil {
		errs = append(errs, err)
	}
	// Handlers still running after the deadline get their context
	// cancelled; Close waits for them all the same.
	expire := time.AfterFunc(time.Until(deadline), func() { b.cancel(skyring.ErrClosed) })
	b.apiPool.close()
	b.relayPool.close()
	expire.Stop()
	b.cancel(skyring.ErrClosed)

	if err := nc.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		b.log.Debug("flushing before close", "err", err)
	}
	if cbc := b.cbc.Load(); cbc != nil {
		if err := cbc.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Debug("flushing the callback connection before close", "err", err)
		}
		cbc.Close()
	}
	nc.Close()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	return errors.Join(errs...)
}

// drainSubs drains subs (unsubscribes, then lets the messages already
// received reach their handler) and waits until they are closed or the
// deadline passes.
func drainSubs(subs []*nats.Subscription, deadline time.Time) error {
	var chans []<-chan nats.SubStatus
	for _, s := range subs {
		if s == nil || !s.IsValid() {
			continue
		}
		ch := s.StatusChanged(nats.SubscriptionClosed)
		if err := s.Drain(); err != nil {
			continue // already gone
		}
		chans = append(chans, ch)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-timer.C:
			return errors.New("bus: timed out draining subscriptions")
		}
	}
	return nil
}

// StopAPI stops taking public NATS API messages: it drains the API
// subscriptions and waits, bounded by ctx, for the API handlers in flight.
// Relays and membership keep working. Idempotent; Close calls it.
func (b *Bus) StopAPI(ctx context.Context) error {
	b.mu.Lock()
	started := b.state == stateStarted
	subs := b.subs.api
	b.mu.Unlock()
	if !started {
		return nil
	}
	b.stopAPIOnce.Do(func() {
		deadline := time.Now().Add(b.opts.DrainTimeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		b.stopAPIErr = drainSubs(subs, deadline)
	})
	return b.stopAPIErr
}

// Leave says goodbye to the other members and stops heartbeating, while
// relays and the public API keep working: a node leaves the ring first, then
// hands its timers off, then closes. Idempotent; Close calls it.
func (b *Bus) Leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == stateStarted {
		b.leave()
	}
}

// leave stops the heartbeat and says goodbye, once. b.mu is held.
func (b *Bus) leave() {
	b.leaveOnce.Do(func() {
		close(b.hbStop)
		<-b.hbDone
		b.left.Store(true)
		b.publishMember(kindGoodbye)
	})
}

// ClientURL returns the NATS URL clients can use: the embedded server's, or
// the first external server's. Empty before Start.
func (b *Bus) ClientURL() string {
	if len(b.opts.Servers) > 0 {
		return redactURL(strings.TrimSpace(strings.Split(b.opts.Servers[0], ",")[0]))
	}
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	if srv == nil {
		return ""
	}
	return srv.ClientURL()
}

// Conn returns the bus's NATS connection; nil before Start.
func (b *Bus) Conn() *nats.Conn { return b.nc.Load() }

// CallbackConn returns the connection the nats transport delivers fired
// timers on (see CallbackUser); nil before Start. With the embedded
// server it may not publish on Skyring's or the server's subjects, so a
// callback cannot reach them even if the transport's own checks missed
// one.
func (b *Bus) CallbackConn() *nats.Conn { return b.cbc.Load() }

// Server returns the embedded server; nil with external servers or before
// Start. For tests and diagnostics.
func (b *Bus) Server() *server.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// NodeID returns Options.NodeID.
func (b *Bus) NodeID() string { return b.opts.NodeID }

// Subject joins the prefix and parts with dots: Subject("timer", "create")
// is "skyring.timer.create" with the default prefix.
func (b *Bus) Subject(parts ...string) string {
	if len(parts) == 0 {
		return b.opts.Prefix
	}
	return b.opts.Prefix + "." + strings.Join(parts, ".")
}

// subscribe registers every subscription. b.mu is held.
func (b *Bus) subscribe(nc *nats.Conn) error {
	var err error
	b.subs.relay, err = nc.Subscribe(b.relaySubject, b.onRelay)
	if err != nil {
		return fmt.Errorf("bus: subscribing to %s: %w", b.relaySubject, err)
	}
	b.subs.members, err = nc.Subscribe(b.membersSubject, b.onMember)
	if err != nil {
		return fmt.Errorf("bus: subscribing to %s: %w", b.membersSubject, err)
	}
	for _, op := range apiOps {
		subj := b.Subject("timer", op.name)
		sub, err := nc.QueueSubscribe(subj, APIQueueGroup, b.apiHandler(op))
		if err != nil {
			return fmt.Errorf("bus: subscribing to %s: %w", subj, err)
		}
		b.subs.api = append(b.subs.api, sub)
	}
	// Raise the pending limits above nats.go's defaults: the dispatcher
	// hands messages to the pool, so a burst waits here rather than being
	// dropped as a slow consumer. Bounded, so that a flood costs at most
	// relayPendingBytes + apiPendingBytes for each API subject but
	// cancel_many, whose rare, tiny messages get cancelManyPendingBytes, of
	// memory (321 MiB) before messages are dropped (logged as a slow
	// consumer).
	if err := b.subs.relay.SetPendingLimits(relayPendingMsgs, relayPendingBytes); err != nil {
		return fmt.Errorf("bus: setting pending limits: %w", err)
	}
	for i, s := range b.subs.api {
		msgs, bytes := apiPendingMsgs, apiPendingBytes
		if apiOps[i].kind == apiCancelMany {
			msgs, bytes = cancelManyPendingMsgs, cancelManyPendingBytes
		}
		if err := s.SetPendingLimits(msgs, bytes); err != nil {
			return fmt.Errorf("bus: setting pending limits: %w", err)
		}
	}
	return nil
}

// Pending limits of the subscriptions (see subscribe).
const (
	relayPendingMsgs  = 1 << 18
	relayPendingBytes = 128 << 20
	apiPendingMsgs    = 1 << 17
	apiPendingBytes   = 32 << 20

	cancelManyPendingMsgs  = 1 << 10
	cancelManyPendingBytes = 1 << 20
)
