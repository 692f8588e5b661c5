package node

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
	"github.com/skyring/skyring/wheel"
)

// Defaults of Options.
const (
	DefaultPrefix             = skyring.DefaultPrefix
	DefaultChannelHost        = bus.DefaultClusterHost
	DefaultChannelPort        = bus.DefaultClusterPort
	DefaultNATSPort           = bus.DefaultNATSPort
	DefaultStorageBackend     = "leveldb"
	DefaultDeliveryTimeout    = 10 * time.Second
	DefaultDeliveryWorkers    = 256
	DefaultDeliveryAttempts   = 5
	DefaultDeliveryMinBackoff = time.Second
	DefaultDeliveryMaxBackoff = time.Hour
	DefaultShutdownTimeout    = 15 * time.Second
	DefaultTimerRetention     = 24 * time.Hour
	DefaultHandoffTimeout     = 10 * time.Second
	DefaultHeartbeatInterval  = bus.DefaultHeartbeatInterval
	DefaultMemberTimeout      = 5 * time.Second
	DefaultMaxBodyBytes       = skyring.DefaultMaxBodyBytes
)

// DefaultTransportNames are the transports enabled when Options.Transports is
// empty.
var DefaultTransportNames = []string{"http", "nats"}

// Options configure a Node: one field per command-line flag of `skyring run`.
// The zero value of a field means its default.
type Options struct {
	// ID is the node's identity in the ring. Default: the id stored with the
	// node's data, or a new random one (then stored).
	ID string

	// HTTPTokens, when set, are the bearer tokens the HTTP API accepts
	// (skyhttp.Options.Tokens): without one a request is a 401; /ping
	// stays open. With the embedded NATS server they are also the API
	// tokens its clients must present (nats.Token): the NATS API is
	// guarded as the HTTP one.
	HTTPTokens []string
	// HTTPAllowOrigins are the browser origins whose cross-site requests
	// the HTTP API serves (skyhttp.Options.AllowOrigins); any other Origin
	// is a 403.
	HTTPAllowOrigins []string
	// HTTPTLSCertFile and HTTPTLSKeyFile, when set, make the HTTP API serve
	// HTTPS (skyhttp.Options.TLSCertFile).
	HTTPTLSCertFile, HTTPTLSKeyFile string
	// CallbackDeny and CallbackAllow are the callback policy of the http
	// transport (httptransport.Policy): CIDRs, addresses or host patterns
	// a callback may not, or only may, reach. Link-local addresses (cloud
	// metadata) are denied unless allowed by name.
	CallbackDeny, CallbackAllow []string
	// HTTPAddr is the public HTTP API's listen address. Default ":3000".
	// It is a net.Listen address: an empty host listens on every interface,
	// and port 0 there picks a free port (the CLI's --port -1).
	HTTPAddr string
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64
	// MaxTimeout is the largest accepted timeout in ms. Default 2^31-1.
	MaxTimeout int64

	// NATSHosts are external NATS servers. Empty runs an embedded NATS
	// server that clusters with the seeds.
	NATSHosts []string
	// NATSHost and NATSPort are the embedded NATS server's client address.
	// NATSPort default: 4222 + (ChannelPort - 3455), so nodes that share a
	// machine with distinct channel ports get distinct NATS ports (3455 →
	// 4222, 3456 → 4223); a free port when ChannelPort is a free port.
	//
	// Every port of Skyring, here, on the command line and in package bus,
	// means the same: 0 the default, -1 a free port picked at start.
	NATSHost string
	NATSPort int
	// Prefix starts every public subject (API and events). Default "skyring".
	// The nats transport refuses callbacks to the node's own subjects under
	// it (and to _SKYRING., _INBOX., $SYS., $JS.).
	Prefix string
	// NATSCallbackAllow, when not empty, restricts nats callbacks to the
	// subjects matching one of these patterns (NATS wildcards "*" and ">";
	// --nats:callback-allow); others get a 400 at create.
	NATSCallbackAllow []string
	// ChannelHost and ChannelPort are this node's cluster address: the
	// embedded NATS server's route listener. Default 127.0.0.1:3455;
	// ChannelPort -1 picks a free port.
	ChannelHost string
	ChannelPort int
	// Seeds are host:port cluster addresses of seed nodes.
	Seeds []string
	// ClusterSecret (--channel:secret) authenticates the embedded servers'
	// routes: a server refuses a route without it. Give every node the
	// same. Empty: routes are not authenticated, fine only when the
	// cluster port is on a private network (the node warns when it is not
	// loopback). Whatever the secret, only nodes may use the internal
	// subjects; other clients of the embedded server get the public ones
	// (bus.APIUser), and need one of HTTPTokens when there are any.
	ClusterSecret string
	// ClusterTLS makes the routes mutual TLS (--channel:tls-cert, -key,
	// -ca): each server presents CertFile and verifies its peer against
	// CAFile.
	ClusterTLS bus.TLSFiles
	// NATSCredsFile, NATSNkeyFile and NATSTLS authenticate the node to
	// external NATSHosts (--nats:creds, --nats:nkey, --nats:tls-ca, -cert,
	// -key); nats.go's own options. See bus.Options.CredsFile for the
	// permissions the node's user needs.
	NATSCredsFile, NATSNkeyFile string
	// NATSMaxConnections bounds the embedded server's client connections
	// (--nats:max-connections); default bus.DefaultMaxConnections.
	NATSMaxConnections int
	NATSTLS            bus.TLSFiles
	// HeartbeatInterval is how often the node announces itself. Default 1s.
	HeartbeatInterval time.Duration
	// MemberTimeout drops a member not heard from for this long. Default 5s.
	MemberTimeout time.Duration
	// VNodes is the number of virtual names per member on the ring.
	VNodes int

	// StorageBackend names the storage backend: "leveldb" (aliases
	// "leveldown", "goleveldb"), "memory" (aliases "memdown", "mem"), or a
	// custom one registered in StorageRegistry. Default "leveldb".
	StorageBackend string
	// StoragePath is the backend's location (the data directory).
	StoragePath string
	// StorageNoSync turns off fsync before acknowledging writes.
	StorageNoSync bool
	// StorageExtra are further --storage:* options for custom backends.
	StorageExtra map[string][]string
	// Store, if set, is used as is instead of opening StorageBackend; the
	// node closes it on Close.
	Store storage.Store
	// StorageRegistry resolves StorageBackend. Default: the built-in
	// backends.
	StorageRegistry *storage.Registry

	// MaxPending caps the timers this node holds pending (--timer:max-pending):
	// a create beyond it, local or relayed here, answers
	// skyring.ErrTooManyTimers (503). Hand-offs from other members are let
	// through (refusing them would strand timers), so the count may exceed
	// it while the ring changes, as it may by a few under concurrent
	// creates. 0, the default, is unlimited.
	MaxPending int

	// Transports are the names of the enabled transports. Default http, nats.
	Transports []string
	// TransportCatalog resolves Transports by name. Default: the built-in
	// transports.
	TransportCatalog *transports.Catalog
	// CustomTransports are extra transport values, enabled in addition.
	CustomTransports []transports.Transport
	// WebhookSecrets, if any, sign every delivery of the http transport
	// with the Standard Webhooks headers (webhook-id, webhook-timestamp,
	// webhook-signature; see package httptransport): each "whsec_<base64>"
	// decoding to at least 24 bytes, the first the current one, the others
	// (during a rotation) adding one more v1 signature each. A malformed one
	// fails New. They are never logged.
	WebhookSecrets []string
	// DeliveryTimeout bounds one delivery. Default 10s.
	DeliveryTimeout time.Duration
	// DeliveryWorkers is how many deliveries run at once. Default 256.
	DeliveryWorkers int
	// DeliveryAttempts is how many delivery attempts a timer gets, the
	// first included, unless its callback.retry.attempts says otherwise:
	// 1 to skyring.MaxRetryAttempts (1: no retry). Default 5.
	DeliveryAttempts int
	// DeliveryMinBackoff and DeliveryMaxBackoff bound the wait before a
	// retry (exponential, with jitter; see node/retry.go), unless the
	// timer's callback.retry says otherwise. At least 1ms, at most
	// skyring.MaxBackoffLimit ms, Max not below Min. Defaults 1s and 1h.
	DeliveryMinBackoff time.Duration
	DeliveryMaxBackoff time.Duration
	// DeliveryPerDestination bounds the delivery attempts in flight to one
	// destination (transports.Registry.Key: for http a URL's host:port);
	// fired timers beyond it wait parked, holding no worker (isolate.go).
	// Default DefaultDeliveryPerDestination(DeliveryWorkers): max(4,
	// workers/8), 32 for 256 workers; at most DeliveryWorkers.
	DeliveryPerDestination int
	// The circuit breaker per destination: it opens after
	// DeliveryBreakerFailures consecutive failed attempts (default 20),
	// stays open DeliveryBreakerOpen (default 5s), then lets
	// DeliveryBreakerProbes attempts through (default 3). A timer due while
	// it is open is armed again after DeliveryBreakerRetry (default 1s,
	// plus up to half of it), costing no attempt.
	DeliveryBreakerFailures int
	DeliveryBreakerOpen     time.Duration
	DeliveryBreakerProbes   int
	DeliveryBreakerRetry    time.Duration
	// TimerRetention is how long a delivered or cancelled timer is kept
	// after it finished, so that GET and lists answer for it (its state,
	// attempts, last error); then it is swept. Failed timers (dead letters)
	// are kept until retried or dropped, whatever this says. Zero means
	// DefaultTimerRetention (24h); negative keeps none: a delivered or
	// cancelled timer is removed at once, as the original did.
	TimerRetention time.Duration
	// SweepInterval is how often (real time) the sweeper removes the
	// delivered and cancelled timers past their retention. Default
	// TimerRetention/24, at least 1s, at most 1h.
	SweepInterval time.Duration
	// HandoffTimeout bounds one hand-off message: a piece not answered in
	// time may have been stored by the owner; it stays here, unarmed, and
	// is sent again on the next pass (the owner's store is idempotent).
	// Default 10s.
	HandoffTimeout time.Duration
	// ShutdownTimeout bounds Close: in-flight deliveries and hand-off.
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long Close keeps serving HTTP, not ready
	// (GET /readyz answers 503), before the HTTP edge stops taking
	// requests: time for a load balancer or Kubernetes to notice. Default
	// 0: the edge stops at once (readiness still turns first).
	ShutdownDrain time.Duration
	// NoMetrics turns the Prometheus instrumentation off: nothing is
	// counted and GET /metrics answers 404. Default false (metrics on).
	NoMetrics bool

	// Logger receives the node's structured logs. Default slog.Default().
	Logger *slog.Logger
	// Clock drives the timing wheel and stamps timers. Default: real time.
	Clock wheel.Clock

	// Faults are fault-injection hooks for tests and the hidden
	// `skyring run --debug:*` flags. The zero value injects nothing; never
	// set them in production.
	Faults Faults
}

// Faults are the fault-injection hooks of Options.Faults.
type Faults struct {
	// WrapStore, if set, wraps the node's store (the backend it opened, or
	// Options.Store) before the node uses it, e.g. to slow its writes
	// (--debug:slow-writes). The node closes what it returns.
	WrapStore func(storage.Store) storage.Store
	// DropRelayReply, if set, is asked before the node answers a command
	// another node relayed to it, once the command was carried out; true
	// drops the answer, so the sender sees no reply (a relay timeout), as a
	// lost message would (--debug:drop-relay-replies). See
	// bus.Options.DropRelayReply.
	DropRelayReply func(bus.Op) bool
}

// Option sets one field of Options.
type Option func(*Options) error

// WithDefaults returns a copy of o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	o.HTTPAddr = cmp.Or(o.HTTPAddr, ":"+strconv.Itoa(skyring.DefaultHTTPPort))
	o.MaxBodyBytes = cmp.Or(o.MaxBodyBytes, DefaultMaxBodyBytes)
	o.MaxTimeout = cmp.Or(o.MaxTimeout, skyring.DefaultMaxTimeout)
	o.Prefix = cmp.Or(o.Prefix, DefaultPrefix)
	o.ChannelHost = cmp.Or(o.ChannelHost, DefaultChannelHost)
	o.ChannelPort = cmp.Or(o.ChannelPort, DefaultChannelPort)
	o.NATSHost = cmp.Or(o.NATSHost, bus.DefaultNATSHost)
	if o.NATSPort == 0 {
		o.NATSPort = -1 // a free port, as the channel port
		if o.ChannelPort > 0 {
			o.NATSPort = DefaultNATSPort + o.ChannelPort - DefaultChannelPort
		}
	}
	o.HeartbeatInterval = cmp.Or(o.HeartbeatInterval, DefaultHeartbeatInterval)
	o.MemberTimeout = cmp.Or(o.MemberTimeout, DefaultMemberTimeout)
	o.StorageBackend = cmp.Or(o.StorageBackend, DefaultStorageBackend)
	if len(o.Transports) == 0 {
		o.Transports = DefaultTransportNames
	}
	o.TimerRetention = cmp.Or(o.TimerRetention, DefaultTimerRetention)
	o.HandoffTimeout = cmp.Or(o.HandoffTimeout, DefaultHandoffTimeout)
	o.DeliveryTimeout = cmp.Or(o.DeliveryTimeout, DefaultDeliveryTimeout)
	o.DeliveryWorkers = cmp.Or(o.DeliveryWorkers, DefaultDeliveryWorkers)
	o.DeliveryAttempts = cmp.Or(o.DeliveryAttempts, DefaultDeliveryAttempts)
	o.DeliveryMinBackoff = cmp.Or(o.DeliveryMinBackoff, DefaultDeliveryMinBackoff)
	o.DeliveryMaxBackoff = cmp.Or(o.DeliveryMaxBackoff, max(DefaultDeliveryMaxBackoff, o.DeliveryMinBackoff))
	o.DeliveryPerDestination = cmp.Or(o.DeliveryPerDestination, DefaultDeliveryPerDestination(o.DeliveryWorkers))
	o.DeliveryBreakerFailures = cmp.Or(o.DeliveryBreakerFailures, DefaultBreakerFailures)
	o.DeliveryBreakerOpen = cmp.Or(o.DeliveryBreakerOpen, DefaultBreakerOpen)
	o.DeliveryBreakerProbes = cmp.Or(o.DeliveryBreakerProbes, DefaultBreakerProbes)
	o.DeliveryBreakerRetry = cmp.Or(o.DeliveryBreakerRetry, DefaultBreakerRetry)
	o.ShutdownTimeout = cmp.Or(o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = wheel.SystemClock()
	}
	return o
}

func (o *Options) validate() error {
	if o.ID != "" {
		if err := validNodeID(o.ID); err != nil {
			return err
		}
	}
	if o.MaxTimeout < 1 {
		return fmt.Errorf("node: max timeout must be at least 1 ms, got %d", o.MaxTimeout)
	}
	if o.Store == nil && o.StoragePath == "" && !isMemoryBackend(o.StorageBackend) {
		return errors.New("node: a storage path is required for the " + o.StorageBackend + " backend")
	}
	for name, p := range map[string]int{"channel": o.ChannelPort, "NATS": o.NATSPort} {
		if p < -1 || p > 65535 {
			return fmt.Errorf("node: %s port %d is not a port (0: the default, -1: a free one)", name, p)
		}
	}
	if _, err := httptransport.NewSigner(o.WebhookSecrets); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if o.MaxPending < 0 {
		return fmt.Errorf("node: max pending timers must not be negative (0: unlimited), got %d", o.MaxPending)
	}
	if o.DeliveryWorkers < 1 {
		return fmt.Errorf("node: delivery workers must be at least 1, got %d", o.DeliveryWorkers)
	}
	if o.DeliveryPerDestination < 1 {
		return fmt.Errorf("node: delivery per destination must be at least 1, got %d", o.DeliveryPerDestination)
	}
	if o.DeliveryBreakerFailures < 1 || o.DeliveryBreakerProbes < 1 {
		return fmt.Errorf("node: delivery breaker failures and probes must be at least 1, got %d and %d", o.DeliveryBreakerFailures, o.DeliveryBreakerProbes)
	}
	if o.DeliveryBreakerOpen <= 0 || o.DeliveryBreakerRetry <= 0 {
		return fmt.Errorf("node: delivery breaker open and retry periods must be positive, got %s and %s", o.DeliveryBreakerOpen, o.DeliveryBreakerRetry)
	}
	return o.validateRetry()
}

// validateRetry checks the node's default retry policy with the bounds of
// callback.retry.
func (o *Options) validateRetry() error {
	if o.DeliveryAttempts < 1 || o.DeliveryAttempts > skyring.MaxRetryAttempts {
		return fmt.Errorf("node: delivery attempts must be between 1 and %d, got %d", skyring.MaxRetryAttempts, o.DeliveryAttempts)
	}
	limit := time.Duration(skyring.MaxBackoffLimit) * time.Millisecond
	for name, d := range map[string]time.Duration{"min": o.DeliveryMinBackoff, "max": o.DeliveryMaxBackoff} {
		if d < time.Millisecond || d > limit {
			return fmt.Errorf("node: delivery %s backoff must be between 1ms and %s, got %s", name, limit, d)
		}
	}
	if o.DeliveryMaxBackoff < o.DeliveryMinBackoff {
		return fmt.Errorf("node: delivery max backoff %s is below the min backoff %s", o.DeliveryMaxBackoff, o.DeliveryMinBackoff)
	}
	return nil
}

func isMemoryBackend(name string) bool {
	switch name {
	case "memory", "memdown", "mem":
		return true
	}
	return false
}

// validNodeID: node ids are NATS subject tokens.
func validNodeID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return fmt.Errorf("node: id must be 1-128 characters, got %q", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("node: id %q may hold only letters, digits, '-' and '_'", id)
		}
	}
	return nil
}

// New builds a node from o (after WithDefaults). It opens nothing; Start
// does.
func (o Options) New() (*Node, error) {
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return newNode(o)
}

// New builds a node from options applied over the defaults.
func New(opts ...Option) (*Node, error) {
	var o Options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return o.New()
}
