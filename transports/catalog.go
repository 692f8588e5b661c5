package transports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownTransportName is returned by Catalog.Build for a name no factory
// was added under (a --transport flag naming a transport this binary does not
// have).
var ErrUnknownTransportName = errors.New("transports: unknown transport name")

// Factory builds a transport from what the node hands every transport.
type Factory func(deps Deps) (Transport, error)

// Deps is what a node gives a Factory.
type Deps struct {
	// Logger for the transport. Build never passes nil (it substitutes a
	// logger that discards).
	Logger *slog.Logger
	// NATS is the node's NATS connection, nil when the node has none.
	// Transports that need it fail to build without it.
	NATS NATSConn
	// Timeout is the delivery timeout the node applies; 0 means the
	// transport's own default.
	Timeout time.Duration
	// Version is the Skyring version (User-Agent and similar); "" means the
	// transport's default.
	Version string
	// Prefix is the node's NATS subject prefix (the nats transport refuses
	// callbacks to the node's own subjects under it); "" when unknown.
	Prefix string
	// NATSAllow, when not empty, restricts the nats transport's callbacks
	// to subjects matching one of these patterns (--nats:callback-allow).
	NATSAllow []string
	// CallbackDeny and CallbackAllow are the callback policy of the
	// transports that reach addresses (--callback:deny, --callback:allow;
	// see httptransport.Policy).
	CallbackDeny, CallbackAllow []string
}

// NATSConn is the part of a NATS connection a transport needs.
//
// It is declared here, with no nats.go types, so that this package and
// custom transports need not import nats.go, and so that Deps can carry it
// without an import cycle (natstransport imports this package, not the other
// way round). natstransport.FromConn adapts a *nats.Conn to it.
type NATSConn interface {
	// Publish sends data to subj (fire and forget).
	Publish(subj string, data []byte) error
	// Request sends data to subj and waits, until ctx is done, for the
	// first reply, whose payload it returns. No responder is an error.
	Request(ctx context.Context, subj string, data []byte) ([]byte, error)
}

// Catalog maps transport names to factories: the transports a binary has
// compiled in. The CLI enables some of them by name (--transport/-t) with
// Build; a custom binary Adds its own before the CLI runs. A Catalog is a
// value the caller owns (there is no global registry) and is safe for
// concurrent use.
type Catalog struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{factories: map[string]Factory{}}
}

// Add registers f under name. An empty name or nil factory is an error; a
// name already taken is an error wrapping ErrDuplicateTransport.
func (c *Catalog) Add(name string, f Factory) error {
	if name == "" {
		return errors.New("transports: catalog add: empty name")
	}
	if f == nil {
		return fmt.Errorf("transports: catalog add %q: nil factory", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.factories[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateTransport, name)
	}
	if c.factories == nil {
		c.factories = map[string]Factory{}
	}
	c.factories[name] = f
	return nil
}

// Names returns the names of the factories, sorted.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.factories))
}

// Build builds the named transports and returns them in a new Registry.
// A name given twice is built once. Every name is checked before anything is
// built: an unknown one is an error wrapping ErrUnknownTransportName that
// lists the known names. A factory that fails, or builds a transport whose
// Name differs from the name it was added under, fails the whole Build; the
// transports built so far are then shut down (bounded by a few seconds).
func (c *Catalog) Build(names []string, deps Deps) (*Registry, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.mu.RLock()
	factories := make([]Factory, 0, len(names))
	wanted := make([]string, 0, len(names))
	for _, name := range names {
		if slices.Contains(wanted, name) {
			continue
		}
		f, ok := c.factories[name]
		if !ok {
			known := slices.Sorted(maps.Keys(c.factories))
			c.mu.RUnlock()
			return nil, fmt.Errorf("%w %q; known: %s", ErrUnknownTransportName, name, strings.Join(known, ", "))
		}
		wanted = append(wanted, name)
		factories = append(factories, f)
	}
	c.mu.RUnlock()

	reg, _ := NewRegistry()
	fail := func(err error) (*Registry, error) {
		ctx, cancel := context.WithTimeout(context.Background(), buildCleanupTimeout)
		defer cancel()
		if serr := reg.Shutdown(ctx); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	for i, name := range wanted {
		t, err := factories[i](deps)
		if err != nil {
			return fail(fmt.Errorf("transports: building %q: %w", name, err))
		}
		if t == nil {
			return fail(fmt.Errorf("transports: building %q: factory returned no transport", name))
		}
		if got := t.Name(); got != name {
			if sd, ok := t.(Shutdowner); ok {
				ctx, cancel := context.WithTimeout(context.Background(), buildCleanupTimeout)
				_ = sd.Shutdown(ctx)
				cancel()
			}
			return fail(fmt.Errorf("transports: building %q: factory built a transport named %q", name, got))
		}
		if err := reg.Register(t); err != nil {
			return fail(err) // cannot happen: names are distinct
		}
	}
	return reg, nil
}

// buildCleanupTimeout bounds the shutdown of half-built transports when
// Build fails.
const buildCleanupTimeout = 5 * time.Second
