package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// portError is a listen failure of the embedded server on a port in use.
type portError struct {
	what string // "NATS" or "cluster"
	port int
	err  error
}

func (e *portError) Error() string {
	return fmt.Sprintf("bus: %s port %d in use: %v", e.what, e.port, e.err)
}
func (e *portError) Unwrap() error        { return e.err }
func (e *portError) Is(target error) bool { return target == ErrPortInUse }

// maxSubsPerConn bounds the subscriptions of one client connection of the
// embedded server (a node's own connection holds about a dozen).
const maxSubsPerConn = 10_000

// startServer runs the embedded nats-server and waits until it listens.
func (b *Bus) startServer(ctx context.Context) (*server.Server, error) {
	o, err := b.serverOptions()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded NATS server: %w", err)
	}
	sl := &serverLogger{log: b.opts.Logger.With("component", "nats-server", "node_id", b.opts.NodeID), fatal: make(chan error, 1), opts: b.opts}
	debug := b.log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(sl, debug, false, false)

	srv.Start() // returns once the listeners are set up (or failed)
	if err := waitReady(ctx, srv, sl.fatal, b.opts.ConnectTimeout); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, err
	}
	if b.opts.Secret == "" && o.Cluster.Port != 0 {
		if ip := hostIP(b.opts.ClusterHost); ip == nil || !ip.IsLoopback() {
			b.log.Warn("the cluster port takes routes from anyone who reaches it: give every node the same --channel:secret",
				"cluster", net.JoinHostPort(b.opts.ClusterHost, strconv.Itoa(o.Cluster.Port)))
		}
	}
	b.log.Debug("embedded NATS server ready", "url", srv.ClientURL(), "cluster", o.Cluster.Port != 0)
	return srv, nil
}

func waitReady(ctx context.Context, srv *server.Server, fatal <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-fatal:
			return err
		default:
		}
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bus: waiting for the embedded NATS server: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bus: embedded NATS server not ready after %s", timeout)
		}
	}
}

func (b *Bus) serverOptions() (*server.Options, error) {
	o := &server.Options{
		ServerName: cmp.Or(b.opts.ServerName, "skyring-"+b.opts.NodeID),
		Host:       b.opts.NATSHost,
		Port:       b.opts.NATSPort,
		NoSigs:     true,
		NoLog:      !b.log.Enabled(context.Background(), slog.LevelDebug),
		MaxPayload: b.opts.MaxPayload,
		// Only nodes may use the internal subjects; every other client is
		// APIUser (and needs an API token when there are any).
		CustomClientAuthentication: newClientAuth(b.nodePass, b.opts.APITokens, b.opts.Prefix, b.opts.NodeID),
		// No system account: its request subjects ($SYS.REQ.…) would tell
		// any client the server's connections, subscriptions and peers.
		// JetStream's clustering needs it; API users may not publish on
		// $SYS.> either way.
		NoSystemAccount: !b.opts.JetStream,
		// Bounds on what clients can make the server hold.
		MaxSubs: maxSubsPerConn,
		MaxConn: b.opts.MaxConnections,
	}
	if b.opts.JetStream {
		o.JetStream = true
		o.StoreDir = b.opts.JetStreamDir
		o.JetStreamLimits.MaxBatchSize = JetStreamMaxBatch
		o.SyncAlways = b.opts.JetStreamSyncAlways
	}
	o.Cluster = server.ClusterOpts{
		Name: b.opts.ClusterName,
		Host: b.opts.ClusterHost,
		Port: b.opts.ClusterPort,
	}
	if b.opts.Secret != "" {
		o.Cluster.Username, o.Cluster.Password = routeUser, b.opts.Secret
	}
	if b.opts.ClusterTLS.set() {
		cfg, err := b.opts.ClusterTLS.clusterTLS()
		if err != nil {
			return nil, err
		}
		o.Cluster.TLSConfig = cfg
		o.Cluster.TLSTimeout = 2 // seconds
	}
	routes, err := b.routeURLs()
	if err != nil {
		return nil, err
	}
	o.Routes = routes
	if b.opts.JetStream && len(routes) == 0 {
		// A lone JetStream server: a cluster listener without routes
		// would make it a JetStream cluster that cannot form.
		o.Cluster = server.ClusterOpts{}
	}
	return o, nil
}

// routeURLs turns the seeds into nats-route URLs, leaving out this node's
// own cluster address.
func (b *Bus) routeURLs() ([]*url.URL, error) {
	var urls []*url.URL
	seen := make(map[string]bool)
	for _, seed := range b.opts.Seeds {
		seed = strings.TrimSpace(seed)
		seed = strings.TrimPrefix(seed, "nats-route://")
		if seed == "" {
			continue
		}
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			return nil, fmt.Errorf("bus: seed %q is not host:port: %w", seed, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("bus: seed %q has a bad port", seed)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		if p == b.opts.ClusterPort && sameHost(host, b.opts.ClusterHost) {
			continue
		}
		hp := net.JoinHostPort(host, port)
		if seen[hp] {
			continue
		}
		seen[hp] = true
		u := &url.URL{Scheme: "nats-route", Host: hp}
		if b.opts.Secret != "" {
			u.User = url.UserPassword(routeUser, b.opts.Secret)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// sameHost reports whether a seed host names the host this node listens on
// for routes (given the same port).
func sameHost(seed, own string) bool {
	if strings.EqualFold(seed, own) {
		return true
	}
	seedIP, ownIP := hostIP(seed), hostIP(own)
	if seedIP == nil || ownIP == nil {
		return false
	}
	switch {
	case seedIP.Equal(ownIP):
		return true
	case seedIP.IsLoopback() && ownIP.IsLoopback():
		return true
	case ownIP.IsUnspecified():
		// Listening on every address: any address of this machine is us.
		return seedIP.IsLoopback() || seedIP.IsUnspecified() || isLocalIP(seedIP)
	}
	return false
}

func hostIP(h string) net.IP {
	if strings.EqualFold(h, "localhost") {
		return net.IPv4(127, 0, 0, 1)
	}
	return net.ParseIP(strings.Trim(h, "[]"))
}

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// serverLogger sends the embedded server's logs to slog at debug level,
// and turns its fatal errors (which would exit the process with the
// server's own logger) into an error for Start.
type serverLogger struct {
	log   *slog.Logger
	fatal chan error
	opts  Options
}

func (l *serverLogger) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }

func (l *serverLogger) Fatalf(format string, v ...any) {
	err := l.fatalError(format, v)
	l.log.Error("embedded NATS server failed", "err", err)
	select {
	case l.fatal <- err:
	default:
	}
}

func (l *serverLogger) fatalError(format string, v []any) error {
	var cause error
	for _, a := range v {
		if e, ok := a.(error); ok {
			cause = e
		}
	}
	var what string
	var port int
	switch {
	case strings.HasPrefix(format, "Error listening on port"):
		what, port = "NATS", l.opts.NATSPort
	case strings.HasPrefix(format, "Error listening on router port"):
		what, port = "cluster", l.opts.ClusterPort
	default:
		return fmt.Errorf("bus: embedded NATS server: %s", fmt.Sprintf(format, v...))
	}
	if cause == nil {
		cause = errors.New(fmt.Sprintf(format, v...))
	}
	if errors.Is(cause, syscall.EADDRINUSE) {
		return &portError{what: what, port: port, err: cause}
	}
	return fmt.Errorf("bus: %s port %d: %w", what, port, cause)
}

// RouteCount is how many other servers the embedded server routes to: the
// seeds other than this node's own cluster address (0 with external
// servers or a bad seed, which Start reports).
func (o Options) RouteCount() int {
	if len(o.Servers) > 0 {
		return 0
	}
	urls, err := (&Bus{opts: o}).routeURLs()
	if err != nil {
		return 0
	}
	return len(urls)
}
