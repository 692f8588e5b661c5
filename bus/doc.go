// Package bus is everything Skyring does over NATS: it runs the embedded
// nats-server (clustered with the seeds over routes) or connects to external
// servers, keeps the membership heartbeat, relays commands from one node to
// another, publishes events, and serves the public NATS API.
//
// The package is internal to Skyring and its Go API is not stable: the only
// intended caller is package node, which implements Handler. bus never
// imports node, http, storage, transports, ring or wheel; it calls back into
// the node only through Handler.
//
// # Subjects
//
// <prefix> is Options.Prefix ("skyring" by default), so several clusters can
// share one NATS. Public subjects (API.md sections 4 and 5), JSON payloads:
//
//	<prefix>.timer.create   create a timer; queue group "skyring-api"
//	<prefix>.timer.update   replace a timer (id required); queue group "skyring-api"
//	<prefix>.timer.cancel   cancel a timer ({"id":…}); queue group "skyring-api"
//	<prefix>.timer.get      read a timer ({"id":…}); queue group "skyring-api"
//	<prefix>.timer.list     a page of timers ({"state":…,"due_after":…,"due_before":…,"prefix":…,"host":…,"limit":…,"cursor":…}, all optional); queue group "skyring-api"
//	<prefix>.timer.cancel_many  cancel the timers the filters of list match (at least one filter, or "all":true); answers {"status":200,"cancelled":N}; queue group "skyring-api"
//	<prefix>.timer.retry    re-arm a failed timer ({"id":…}); queue group "skyring-api"
//	<prefix>.events.<type>  timer events: create, replace, execute, cancel, success, fail, evict (TimerEvent)
//	<prefix>.node.<type>    node events: ready, recover, rebalance, purge, shutdown, join, leave (NodeEvent)
//
// Every node subscribes to the six API subjects in one queue group, so
// exactly one node takes each message; that node asks its Handler, which
// relays to the owner (or, for list, to every node) if need be. A message
// with a reply subject gets {"id":…,"status":201|200|202} (retry: 202),
// {"status":200,"timer":{…}} for get, {"status":200,"timers":[…],"cursor":…}
// for list (the fields of GET /timer's page; no cursor on the last page),
// or {"status":N,"error":"…"}; one without is carried out all the same.
//
// Internal subjects, never part of the public contract:
//
//	_SKYRING.<prefix>.relay.<nodeID>  node-to-node commands (Relay), request-reply, binary
//	_SKYRING.<prefix>.members         membership: JSON Member plus "kind"
//	_SKYRING.<prefix>.inbox.<nodeID>.…  replies to the node's requests (its inbox prefix)
//	_SKYRING_CB.<prefix>.<nodeID>.…     replies to the nats transport's request callbacks
//
// # Who may use which subject
//
// Only nodes may use _SKYRING.>. The embedded server enforces it: the node's
// own connection logs in as NodeUser (password: Options.Secret, or a random
// one that never leaves the process), and every other client is APIUser,
// refused by the server on _SKYRING.>, on publishing <prefix>.events.> and
// <prefix>.node.>, and on subscribing to <prefix>.timer.> and
// _SKYRING_CB.>. APIUser has no allow_responses grant: nats-server does not
// check a publisher's reply subject, so with it a client could answer a
// message it sent itself with an internal reply subject. The nats
// transport delivers on a second connection (CallbackConn, CallbackUser),
// which may publish on nothing of Skyring's or the server's and whose
// inbox, _SKYRING_CB.<prefix>.<nodeID>, is where receivers answer request
// callbacks. With Options.APITokens, APIUser clients need a token. API
// requests whose reply subject is reserved are dropped. The server runs
// without a system account, with at most 10,000 subscriptions per
// connection and Options.MaxConnections connections. Routes between embedded servers need
// Options.Secret, and are mutual TLS with Options.ClusterTLS. With external
// Servers, the servers' own configuration does the same (README, "Securing
// the bus"); the node authenticates with Options.CredsFile, NkeyFile or a
// URL password, and TLS.
//
// The members subject carries four kinds of message, all {"kind":…, "id":…,
// "http":…, "timers":…, "started":…} (a goodbye has only kind and id).
// Every node but the sender calls MemberSeen for the first three:
//
//	announce   sent once by a node when it starts
//	sync       the same, asking every node to answer at once with a
//	           heartbeat; sent on start, after a reconnect to NATS, and, with
//	           an embedded clustered server, when another node's server
//	           becomes reachable over a route (the members subject gains
//	           subscribers), since an announce sent before was lost
//	heartbeat  sent every Options.HeartbeatInterval; also the answer to an
//	           announce or a sync, and to the first heartbeat of a member
//	           not known yet
//	goodbye    sent once by a node that leaves (Leave or Close); others call
//	           MemberLeft
//
// So members converge as soon as messages can flow, not a heartbeat later.
//
// # Relay encoding
//
// Relays are binary, small and cheap to encode. A command is
//
//	version byte (1), op byte, flags byte (bit 0: the first timer is
//	Command.Timer; bit 1: Command.Timer is relative),
//	uvarint timeout ms (0: none),
//	uvarint len + From, uvarint len + ID,
//	uvarint n, then n times: big-endian uint32 len + skyring.Timer binary
//	encoding (Timer.AppendBinary)
//
// where Command.Timer travels as the first timer (create, update), and
// Command.Timers as the rest (a handoff batch). Bit 1 carries
// skyring.Timer.Relative, which the timer's own encoding does not: the
// timer was given with a timeout, and the owner counts it again from when it
// stores it (Due - Created from the owner's now), so that a relayed timeout
// is never early by the clock of the node that accepted it, whatever the
// skew between the two. It is set only with bit 0. A command without it
// (every one from a build before it) carries an absolute timer, and a build
// before it ignores the bit and stores the timer as sent: a cluster of mixed
// builds behaves as the older one. Hand-off batches are always absolute. The timeout is what was
// left of the sender's context deadline; the receiver's handler gets it as
// its own deadline. Op 0 is a ping the bus answers itself: Start sends one
// to its own relay subject and fails with ErrDuplicateNode if another node
// answers. A command over the connection's max payload is not sent
// (ErrTooLarge): the node splits hand-offs with HandoffPieces. A reply is
//
//	version byte (3), uvarint status, code byte (skyring.Code),
//	uvarint len + Reason,
//	info byte (0: none, 1: an Info follows), then for an Info:
//	ID, Timeout, Data, Transport, Method, URI, Created, Due, Node,
//	Retry.Attempts, Retry.MinBackoff, Retry.MaxBackoff, State, Attempts,
//	NextAttempt, LastError, LastStatus, DeliveredAt, FinishedAt
//	(strings as uvarint len + bytes, numbers as (u)varints),
//	uvarint count of list timers, each a big-endian uint32 length and
//	its binary encoding, uvarint len + Cursor, More byte (0 or 1),
//	uvarint count of Acked ids, each uvarint len + bytes.
//
// The flags byte: bit 0, the first timer is Command.Timer; bit 1, that
// timer is relative; bit 2, Command.Resend; bit 3, Command.Probe; bit 4,
// the list or cancel_many filter fields follow.
//
// A list command (OpList) or a bulk cancel round (OpCancelMany) carries,
// after its ID (the id to go on after), its State (uvarint len + bytes)
// and Limit (uvarint), then, only when flag bit 4 is set (some filter
// beyond State), DueAfter and DueBefore (varints, Unix ms), Prefix and
// Host (uvarint len + bytes): an unfiltered list encodes as it did before
// filters existed, so older nodes read it. A handoff command carries,
// after its ID, its Ring (uvarint). The reply to an OpCancelMany round
// carries the ids it cancelled in Acked, the last id it examined in
// Cursor and whether more follow in More.
//
// The code is what the receiving side branches on (Reply.Err,
// skyring.ErrorFromCode): the reason is for people. Version 1 replies had
// no code, version 2 no fate or list fields; a node rejects replies of
// another version as corrupt rather than misread them. Both encodings use internal/wire's helpers,
// and timers inside commands are skyring.Timer's own binary encoding.
//
// # Embedded server
//
// Without Options.Servers the bus runs a nats-server in the process:
// clients on Options.NATSHost:NATSPort, routes on ClusterHost:ClusterPort
// (0 means the default port, -1 a free one, for both) to the seeds, minus this node's own address,
// max payload 8 MiB, no signal handlers, its logs through Options.Logger at
// debug level. The bus itself talks to it over an in-process connection (no
// TCP). A port that is taken fails Start at once with an error wrapping
// ErrPortInUse that names the port.
//
// # Lifecycle
//
// New checks the options, Start starts the embedded server (if any),
// connects, subscribes, announces and starts heartbeating, and returns once
// every subscription is registered with the server. Leave says goodbye and
// stops heartbeating while relays still work (a node hands off its timers
// after leaving the ring); StopAPI stops taking public API messages; Close
// does both if not done, drains every subscription, waits for in-flight
// handlers, closes the connection and shuts the embedded server down.
package bus
