package bus

import "encoding/json"

// Timer event types (API.md section 5): TimerEvent.Type, published on
// <prefix>.events.<type>. The values are the public contract; publishers
// use these names, never string literals.
const (
	EventCreate   = "create"   // a timer was stored (POST, NATS create); not sent for a replace
	EventReplace  = "replace"  // an update replaced a pending timer
	EventExecute  = "execute"  // the timer fired: sent every time, before its transport runs
	EventCancel   = "cancel"   // a pending timer was cancelled
	EventSuccess  = "success"  // the transport delivered it (Attempt); sent once the timer is removed from storage
	EventRetry    = "retry"    // an attempt failed and another is scheduled (Attempt, Error, Next); sent once that is stored
	EventFail     = "fail"     // the transport failed for good (Attempt: attempts made); sent once the timer is removed from storage
	EventEvict    = "evict"    // the timer was handed to another node (TimerEvent.To)
	EventConflict = "conflict" // two timers under one id met in a hand-off: this one (Payload: its data) lost to the later write and was dropped
)

// Node event types (API.md section 5): NodeEvent.Type, published on
// <prefix>.node.<type>.
const (
	NodeReady     = "ready"     // the node started and takes commands
	NodeRecover   = "recover"   // at start, the node re-armed its stored timers (NodeEvent.Count)
	NodeRebalance = "rebalance" // after a membership change, the node handed timers off (Count)
	NodePurge     = "purge"     // the node is leaving and hands off its timers (Count still held)
	NodeShutdown  = "shutdown"  // the node is stopping (Count: timers it still holds)
	NodeJoin      = "join"      // a member joined the ring (NodeEvent.Member)
	NodeLeave     = "leave"     // a member left the ring, or was dropped after its heartbeats stopped (Member)
)

// TimerEvent is the JSON of a timer event.
type TimerEvent struct {
	Type     string          `json:"type"`               // one of the Event* constants
	Timer    string          `json:"timer"`              // id
	Node     string          `json:"node"`               // filled with Options.NodeID when empty
	Created  int64           `json:"created,omitempty"`  // Unix ms
	Due      int64           `json:"due,omitempty"`      // Unix ms
	Payload  json.RawMessage `json:"payload,omitempty"`  // the timer's data / callback, as the original sends
	Executed int64           `json:"executed,omitempty"` // Unix ms
	Message  string          `json:"message,omitempty"`
	Error    string          `json:"error,omitempty"`
	To       string          `json:"to,omitempty"`      // evict: the new owner
	From     string          `json:"from,omitempty"`    // conflict: the node that held the dropped timer
	Attempt  int             `json:"attempt,omitempty"` // execute, retry, success, fail: the 1-based delivery attempt (fail: attempts made)
	Fence    uint64          `json:"fence,omitempty"`   // execute: the attempt's fencing token (x-skyring-fence)
	Next     int64           `json:"next,omitempty"`    // retry: Unix ms of the next attempt, at the earliest
}

// NodeEvent is the JSON of a node event.
type NodeEvent struct {
	Type    string `json:"type"`             // one of the Node* constants
	Node    string `json:"node"`             // filled with Options.NodeID when empty
	Member  string `json:"member,omitempty"` // join, leave: which member
	Count   int    `json:"count,omitempty"`
	Message string `json:"message,omitempty"`
}

// PublishTimerEvent publishes e on <prefix>.events.<type>. It does not
// block (the connection buffers) and never fails: errors are logged at
// debug level. Before Start and after Close it does nothing.
func (b *Bus) PublishTimerEvent(e TimerEvent) {
	if e.Node == "" {
		e.Node = b.opts.NodeID
	}
	b.publishEvent("events", e.Type, &e)
}

// PublishNodeEvent publishes e on <prefix>.node.<type>, like
// PublishTimerEvent.
func (b *Bus) PublishNodeEvent(e NodeEvent) {
	if e.Node == "" {
		e.Node = b.opts.NodeID
	}
	b.publishEvent("node", e.Type, &e)
}

func (b *Bus) publishEvent(kind, typ string, v any) {
	nc := b.nc.Load()
	if nc == nil {
		return
	}
	if !isToken(typ) {
		b.log.Debug("dropping event of invalid type", "kind", kind, "type", typ)
		return
	}
	subject := b.opts.Prefix + "." + kind + "." + typ
	// With the embedded server the bus knows, cluster-wide (routes register
	// their subscriptions here too), whether anyone listens: an event no one
	// subscribed to would be dropped by the server anyway, so it is neither
	// encoded nor sent. That is most of a node's events, and a tenth of the
	// CPU of a create.
	if b.srv != nil && b.srv.GlobalAccount().Interest(subject) == 0 {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		b.log.Debug("encoding event", "kind", kind, "type", typ, "err", err)
		return
	}
	if err := nc.Publish(subject, data); err != nil {
		b.log.Debug("publishing event", "kind", kind, "type", typ, "err", err)
	}
}
