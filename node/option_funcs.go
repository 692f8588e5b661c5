package node

import (
	"errors"
	"log/slog"

	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/wheel"
)

// The Option functions of New: each sets one field of Options.

// WithHTTPAddr sets Options.HTTPAddr.
func WithHTTPAddr(addr string) Option {
	return func(o *Options) error { o.HTTPAddr = addr; return nil }
}

// WithStoragePath sets Options.StoragePath (goleveldb by default).
func WithStoragePath(path string) Option {
	return func(o *Options) error { o.StoragePath = path; return nil }
}

// WithStorageBackend sets Options.StorageBackend.
func WithStorageBackend(name string) Option {
	return func(o *Options) error { o.StorageBackend = name; return nil }
}

// WithStore makes the node use s as its storage.
func WithStore(s storage.Store) Option {
	return func(o *Options) error { o.Store = s; return nil }
}

// WithTransport enables an extra transport value on the node.
func WithTransport(t transports.Transport) Option {
	return func(o *Options) error {
		if t == nil {
			return errors.New("node: nil transport")
		}
		o.CustomTransports = append(o.CustomTransports, t)
		return nil
	}
}

// WithNATS makes the node use external NATS servers instead of an embedded
// one.
func WithNATS(urls ...string) Option {
	return func(o *Options) error { o.NATSHosts = append(o.NATSHosts, urls...); return nil }
}

// WithCluster sets this node's cluster address and its seeds.
func WithCluster(host string, port int, seeds ...string) Option {
	return func(o *Options) error {
		o.ChannelHost, o.ChannelPort, o.Seeds = host, port, seeds
		return nil
	}
}

// WithLogger sets Options.Logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *Options) error { o.Logger = l; return nil }
}

// WithOptions replaces every option with o; later options still apply.
func WithOptions(o Options) Option {
	return func(dst *Options) error { *dst = o; return nil }
}

// WithNATSPort sets the embedded NATS server's client port (-1: a free
// port).
func WithNATSPort(port int) Option {
	return func(o *Options) error { o.NATSPort = port; return nil }
}

// WithPrefix sets the subject prefix of the NATS API and events.
func WithPrefix(prefix string) Option {
	return func(o *Options) error { o.Prefix = prefix; return nil }
}

// WithClock sets the clock that drives the timing wheel (tests).
func WithClock(c wheel.Clock) Option {
	return func(o *Options) error { o.Clock = c; return nil }
}

// WithFaults sets Options.Faults (fault-injection tests only).
func WithFaults(f Faults) Option {
	return func(o *Options) error { o.Faults = f; return nil }
}
