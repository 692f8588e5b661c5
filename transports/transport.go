// Package transports delivers fired timers. A Transport executes a timer's
// callback (an HTTP webhook, a NATS publish, or anything a user writes);
// a Registry holds the transports a node has enabled, by name.
//
// Its API is meant for embedders: implement Transport (and optionally
// Shutdowner, and Validator to reject bad callbacks at create) and register
// it on a node to deliver timers your own way.
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

// Validator is implemented by transports that can tell, when a timer is
// created or updated, that its callback can never be delivered: a method the
// transport does not know, an address it cannot parse. Registry.Check calls
// it, so the client gets a 400 at once instead of a timer that fails when it
// fires.
//
// Validate must be cheap and must not do I/O (it runs on every create and
// update): it checks the callback's form, not whether the far end is there.
// It returns nil or, ideally, a *skyring.ValidationError whose Field is
// "callback.method" or "callback.uri" and whose Reason is one line for the
// client; any other error is wrapped in one by Registry.Check. A callback
// that Validate accepts should not fail in Execute for the same reason, and
// one it rejects should fail in Execute too (timers stored before the rule
// existed are delivered, and fail there).
//
// Implementing Validator is optional: a transport without it accepts every
// callback at create, and a bad one fails only when the timer fires.
type Validator interface {
	Validate(cb skyring.Callback) error
}

// Keyer is implemented by transports whose callbacks go to distinct
// destinations (hosts, brokers) that can fail independently. Key names the
// destination of cb; the node bounds the deliveries in flight per key and
// backs off a key that keeps failing (a circuit breaker), so one dead or
// hanging receiver cannot take the delivery workers from the others.
// Key must be cheap, must not do I/O, and should return the same key for
// callbacks that share a connection pool or a failure domain. A transport
// without Keyer is one destination: its name.
type Keyer interface {
	Key(cb skyring.Callback) string
}
