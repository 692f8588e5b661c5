package node

import (
	"context"
	"fmt"
	"github.com/skyring/skyring/bus"

	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/builtin"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
	"github.com/skyring/skyring/transports/natstransport"
)

// DefaultTransports returns a catalog of the built-in transports: "http" and
// "nats". A custom binary adds its own to it before running the CLI.
func DefaultTransports() *transports.Catalog {
	c := transports.NewCatalog()
	if err := c.Add(httptransport.Name, httptransport.Factory); err != nil {
		panic(err) // impossible: a fresh catalog
	}
	if err := c.Add(natstransport.Name, natstransport.Factory); err != nil {
		panic(err)
	}
	return c
}

// DefaultStorage returns a registry of the built-in storage backends:
// "leveldb" (aliases leveldown, goleveldb), "memory" (memdown, mem) and
// "jetstream" (js; a stream every node shares, opened by the node on its
// NATS connection: see shared.go).
func DefaultStorage() *storage.Registry { return defaultStorage() }

func defaultStorage() *storage.Registry {
	r := storage.NewRegistry()
	if err := builtin.Register(r); err != nil {
		panic(err) // impossible: a fresh registry
	}
	if err := r.Register(JetStreamBackend, openJetStreamByName, "js"); err != nil {
		panic(err)
	}
	if err := r.DeclareOptions(JetStreamBackend, jetStreamOptionKeys...); err != nil {
		panic(err)
	}
	return r
}

// openJetStreamByName is the registry's opener of the jetstream backend:
// the node opens that store itself, on its NATS connection, once the bus
// has connected (Node.startShared); the registry only names it and its
// options.
func openJetStreamByName(storage.Options) (storage.Store, error) {
	return nil, fmt.Errorf("node: the %s backend is opened by the node on its NATS connection", JetStreamBackend)
}

// buildTransports enables the configured transports and the custom ones.
func (n *Node) buildTransports() error {
	cat := n.opts.TransportCatalog
	if cat == nil {
		cat = DefaultTransports()
	}
	reg, err := cat.Build(n.opts.Transports, transports.Deps{
		Logger:  n.opts.Logger.With("component", "transport"),
		NATS:    lazyNATS{n},
		Timeout: n.opts.DeliveryTimeout,
		Version: Version,
		// The nats transport refuses the node's own subjects.
		Prefix:        n.opts.Prefix,
		NATSAllow:     n.opts.NATSCallbackAllow,
		CallbackDeny:  n.opts.CallbackDeny,
		CallbackAllow: n.opts.CallbackAllow,
	})
	if err != nil {
		return fmt.Errorf("node: enabling transports: %w", err)
	}
	for _, t := range n.opts.CustomTransports {
		if err := reg.Register(t); err != nil {
			return fmt.Errorf("node: enabling transport %q: %w", t.Name(), err)
		}
	}
	if err := n.signWebhooks(reg); err != nil {
		return err
	}
	n.transports = reg
	return nil
}

// signWebhooks hands the signer of Options.WebhookSecrets to the http
// transport. Secrets with an http transport that is not the built-in one
// are an error: they would silently sign nothing.
func (n *Node) signWebhooks(reg *transports.Registry) error {
	signer, err := httptransport.NewSigner(n.opts.WebhookSecrets)
	if err != nil || signer == nil {
		return err // checked by validate already
	}
	t, err := reg.Lookup(httptransport.Name)
	if err != nil {
		n.opts.Logger.Warn("webhook secrets set but the http transport is not enabled: nothing is signed")
		return nil
	}
	ht, ok := t.(*httptransport.Transport)
	if !ok {
		return fmt.Errorf("node: webhook secrets need the built-in http transport, got %T", t)
	}
	ht.SetSigner(signer)
	n.opts.Logger.Info("signing http deliveries (Standard Webhooks)", "secrets", len(n.opts.WebhookSecrets))
	return nil
}

// busOptions are the bus options of the node's options.
func (n *Node) busOptions() bus.Options {
	return bus.Options{
		NodeID:            n.id,
		Prefix:            n.opts.Prefix,
		Servers:           n.opts.NATSHosts,
		NATSHost:          n.opts.NATSHost,
		NATSPort:          n.opts.NATSPort,
		ClusterHost:       n.opts.ChannelHost,
		ClusterPort:       n.opts.ChannelPort,
		Seeds:             n.opts.Seeds,
		Secret:            n.opts.ClusterSecret,
		ClusterTLS:        n.opts.ClusterTLS,
		CredsFile:         n.opts.NATSCredsFile,
		NkeyFile:          n.opts.NATSNkeyFile,
		TLS:               n.opts.NATSTLS,
		APITokens:         n.embeddedTokens(),
		MaxConnections:    n.opts.NATSMaxConnections,
		HeartbeatInterval: n.opts.HeartbeatInterval,
		MaxTimeout:        n.opts.MaxTimeout,
		MaxBodySize:       int(n.opts.MaxBodyBytes),
		MaxPayload:        int32(min(max(n.opts.MaxBodyBytes+64<<10, bus.DefaultMaxPayload), 1<<30)),
		Logger:            n.opts.Logger,
		Now:               n.clock.Now,
		DropRelayReply:    n.opts.Faults.DropRelayReply,
	}
}

// embeddedTokens are the API tokens of the embedded server's clients: the
// HTTP API's, so that both APIs are guarded alike. None with external
// servers, whose own configuration guards them.
func (n *Node) embeddedTokens() []string {
	if len(n.opts.NATSHosts) > 0 {
		return nil
	}
	return n.opts.HTTPTokens
}

// errNoBus: a NATS delivery before the bus connected. Start runs delivery
// and the wheel only once the bus is connected, so only a custom use of the
// transport before Start can meet it.
var errNoBus = fmt.Errorf("node: NATS connection: %w", transports.ErrNotReady)

// lazyNATS hands the nats transport the bus connection once there is one.
// Transports are built before the bus connects, so that a bad transport
// configuration fails the start early and a relayed create arriving as soon
// as the bus runs can check its transport.
type lazyNATS struct{ n *Node }

func (l lazyNATS) conn() (natstransport.HeaderConn, transports.NATSConn, error) {
	if l.n.bus == nil || l.n.bus.CallbackConn() == nil {
		return nil, nil, errNoBus
	}
	// The callback connection: restricted by the embedded server to
	// subjects outside Skyring's and the server's.
	c := natstransport.FromConn(l.n.bus.CallbackConn())
	hc, _ := c.(natstransport.HeaderConn)
	return hc, c, nil
}

func (l lazyNATS) Publish(subj string, data []byte) error {
	_, c, err := l.conn()
	if err != nil {
		return err
	}
	return c.Publish(subj, data)
}

func (l lazyNATS) Request(ctx context.Context, subj string, data []byte) ([]byte, error) {
	_, c, err := l.conn()
	if err != nil {
		return nil, err
	}
	return c.Request(ctx, subj, data)
}

func (l lazyNATS) PublishHeader(subj string, hdr map[string][]string, data []byte) error {
	hc, c, err := l.conn()
	if err != nil {
		return err
	}
	if hc == nil {
		return c.Publish(subj, data)
	}
	return hc.PublishHeader(subj, hdr, data)
}

func (l lazyNATS) RequestHeader(ctx context.Context, subj string, hdr map[string][]string, data []byte) ([]byte, error) {
	hc, c, err := l.conn()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		return c.Request(ctx, subj, data)
	}
	return hc.RequestHeader(ctx, subj, hdr, data)
}
