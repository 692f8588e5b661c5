// Package transports delivers fired timers. A Transport executes a timer's
// callback (an HTTP webhook, a NATS publish, or anything a user writes);
// a Registry holds the transports a node has enabled, by name.
//
// Its API is meant for embedders: implement Transport (and optionally
// Shutdowner) and register it on a node to deliver timers your own way.
package transports

import (
	"context"

	"github.com/skyring/skyring"
)

// Transport executes the callback of a fired timer.
type Transport interface {
	// Name is the name clients put in callback.transport.
	Name() string
	// Execute delivers t (t.Callback.Method, t.Callback.URI, t.Body()).
	// A nil error is success; any error is a failure, reported in a fail
	// event. Execute must honour ctx (its deadline is the delivery timeout)
	// and be safe for concurrent use. t must not be modified or retained.
	Execute(ctx context.Context, t *skyring.Timer) error
}

// Shutdowner is implemented by transports that hold resources (connection
// pools, subscriptions). Shutdown is called once when the node closes, after
// the last delivery; it must return by ctx's deadline.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}
