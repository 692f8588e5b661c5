package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/internal/wire"
)

// Op is the operation of a node-to-node Command.
type Op uint8

// opPing is answered by the bus itself, never handed to the Handler: Start
// uses it to find another node with the same id.
const opPing Op = 0

// Operations of a Command.
const (
	OpCreate  Op = iota + 1 // store Command.Timer (new)
	OpUpdate                // replace Command.Timer
	OpCancel                // cancel Command.ID
	OpGet                   // read Command.ID; the Reply carries Info
	OpHandoff               // store every timer of Command.Timers (rebalance), then reply 200
	OpList                  // list this node's timers after Command.ID (Command.State, Command.Limit); the Reply carries Timers, Cursor, More
	OpRetry                 // re-arm the failed timer Command.ID
	// OpCancelMany cancels this node's timers after Command.ID that match
	// the command's filter (State, DueAfter, DueBefore, Prefix, Host), at
	// most Limit of them: the Reply carries the ids cancelled (Acked), the
	// last id examined (Cursor) and whether more follow (More).
	OpCancelMany
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpCancel:
		return "cancel"
	case OpGet:
		return "get"
	case OpHandoff:
		return "handoff"
	case OpList:
		return "list"
	case OpRetry:
		return "retry"
	case OpCancelMany:
		return "cancel_many"
	case opPing:
		return "ping"
	default:
		return "op(" + strconv.Itoa(int(o)) + ")"
	}
}

// Command is what one node asks of another over Relay.
type Command struct {
	Op     Op
	ID     string           // cancel, get
	Timer  *skyring.Timer   // create, update; its Relative travels with it
	Timers []*skyring.Timer // handoff batch: the receiver stores them all, then replies 200; always absolute
	From   string           // sender node id; Relay fills it in when empty
	State  string           // list, cancel_many: the state name to keep ("" all)
	Limit  int              // list: the most timers to return; cancel_many: the most to cancel
	// List, cancel_many: the rest of the filter (skyring.Filter).
	DueAfter, DueBefore int64
	Prefix, Host        string
	Ring                uint64 // handoff: the checksum of the ring by which the sender chose the receiver (0: none)
	// Resend marks a hand-off that carries timers sent before without an
	// answer: the receiver may have stored (and even delivered) them.
	Resend bool
	// Probe marks a command sent to look for a timer the owner does not
	// have (yet): the receiver carries it out only on its own copy and
	// never looks further itself.
	Probe bool
}

// Filter returns the filter a list or cancel_many command carries.
func (c *Command) Filter() skyring.Filter {
	return skyring.Filter{State: c.State, DueAfter: c.DueAfter, DueBefore: c.DueBefore, Prefix: c.Prefix, Host: c.Host}
}

// SetFilter sets the filter of a list or cancel_many command.
func (c *Command) SetFilter(f skyring.Filter) {
	c.State, c.DueAfter, c.DueBefore, c.Prefix, c.Host = f.State, f.DueAfter, f.DueBefore, f.Prefix, f.Host
}

// hasFilter reports whether c carries list fields.
func (c *Command) hasFilter() bool { return c.Op == OpList || c.Op == OpCancelMany }

// Reply is the answer to a Command. Build error replies with
// ReplyFromError so that they carry their Code; read them with Err.
type Reply struct {
	Status int           // HTTP-style status
	Code   skyring.Code  // which error, for non-2xx; CodeNone makes Err go by Status alone
	Reason string        // x-skyring-reason text on errors, for people: never branched on
	Info   *skyring.Info // get

	// List: the timers found (in id order, at most the limit), the last id
	// the node examined (Cursor) and whether it has more after it (More).
	// A node may stop before the limit (it bounds the records one request
	// reads); the asker resumes after Cursor.
	Timers []*skyring.Timer
	Cursor string
	More   bool

	// Handoff: the ids of the timers the receiver has stored, or already
	// had (the same generation), or decided against (an older generation
	// of one it holds): the sender removes exactly these and keeps the
	// rest for a later hand-off. Cancel_many: the ids cancelled.
	Acked []string
}

// Err turns the reply back into the error it stands for: the sentinel of
// its Code (skyring.ErrorFromCode), so errors.Is works across nodes; nil
// for a 2xx.
func (r Reply) Err() error { return skyring.ErrorFromCode(r.Code, r.Status, r.Reason) }

// ReplyFromError builds the reply for err: its status and reason from
// skyring.Status, its code from skyring.CodeOf. A nil err is 200.
func ReplyFromError(err error) Reply {
	status, reason := skyring.Status(err)
	return Reply{Status: status, Code: skyring.CodeOf(err), Reason: reason}
}

// Relay sends cmd to the node nodeID and waits for its reply. ctx bounds the
// wait (Options.RequestTimeout if it has no deadline), and the receiver's
// handler gets the remaining time as its context deadline.
//
// No node listening on nodeID's subject is an error wrapping
// ErrNodeUnreachable, returned at once, and a command over the max payload
// one wrapping ErrTooLarge: either way the command was not carried out. A
// context error means no answer came in time; the command may or may not
// have been carried out. Split a large hand-off with HandoffPieces.
func (b *Bus) Relay(ctx context.Context, nodeID string, cmd Command) (Reply, error) {
	if !isToken(nodeID) {
		return Reply{}, fmt.Errorf("bus: relay to invalid node id %q", nodeID)
	}
	nc := b.nc.Load()
	if nc == nil {
		return Reply{}, errors.New("bus: relay before Start")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	if cmd.From == "" {
		cmd.From = b.opts.NodeID
	}
	subj := relaySubject(b.opts.Prefix, nodeID)
	return b.request(ctx, nc, subj, nodeID, &cmd)
}

func (b *Bus) request(ctx context.Context, nc *nats.Conn, subj, nodeID string, cmd *Command) (Reply, error) {
	timeout := int64(0)
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl).Milliseconds(), 1)
	}
	data := appendCommand(make([]byte, 0, commandSize(cmd)), cmd, timeout)
	if int64(len(data)) > nc.MaxPayload() {
		return Reply{}, fmt.Errorf("%w: %s to %s, %d bytes, max %d", ErrTooLarge, cmd.Op, nodeID, len(data), nc.MaxPayload())
	}
	msg, err := nc.RequestWithContext(ctx, subj, data)
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return Reply{}, fmt.Errorf("%w: %s (%w)", ErrNodeUnreachable, nodeID, err)
		case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
			return Reply{}, fmt.Errorf("bus: relay %s to %s: %w (%w)", cmd.Op, nodeID, skyring.ErrClosed, err)
		default:
			return Reply{}, fmt.Errorf("bus: relay %s to %s: %w", cmd.Op, nodeID, err)
		}
	}
	rep, err := decodeReply(msg.Data)
	if err != nil {
		return Reply{}, fmt.Errorf("bus: relay %s to %s: %w", cmd.Op, nodeID, err)
	}
	return rep, nil
}

// HandoffPieces splits a hand-off into batches that each fit one message
// of the connection's max payload, in order. A timer too large to travel
// even alone is a piece of its own, which Relay refuses with ErrTooLarge:
// it never holds back the others.
func (b *Bus) HandoffPieces(timers []*skyring.Timer) [][]*skyring.Timer {
	limit := 1 << 20
	if nc := b.nc.Load(); nc != nil {
		limit = int(nc.MaxPayload())
	}
	limit -= commandHeaderMax + len(b.opts.NodeID)
	var pieces [][]*skyring.Timer
	for start := 0; start < len(timers); {
		end, size := start, 0
		for end < len(timers) {
			sz := 4 + timerSize(timers[end])
			if end > start && size+sz > limit {
				break
			}
			size += sz
			end++
		}
		pieces = append(pieces, timers[start:end])
		start = end
	}
	return pieces
}

// onRelay handles this node's relay subject.
func (b *Bus) onRelay(m *nats.Msg) {
	if !b.relayPool.submit(func() { b.serveRelay(m) }) {
		b.respondRelay(m, ReplyFromError(skyring.ErrClosed))
	}
}

func (b *Bus) serveRelay(m *nats.Msg) {
	cmd, timeout, err := decodeCommand(m.Data)
	if err != nil {
		b.log.Warn("bad relay command", "err", err)
		b.respondRelay(m, ReplyFromError(&skyring.ValidationError{Reason: err.Error(), Err: err}))
		return
	}
	if cmd.Op == opPing {
		b.respondRelay(m, Reply{Status: http.StatusOK})
		return
	}
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic serving relay", "op", cmd.Op, "from", cmd.From, "panic", r)
			b.respondRelay(m, ReplyFromError(fmt.Errorf("panic: %v", r)))
		}
	}()
	ctx := b.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Millisecond)
		defer cancel()
	}
	rep := b.h.HandleRelay(ctx, cmd)
	if rep.Status == 0 {
		b.log.Error("relay handler returned no status", "op", cmd.Op, "from", cmd.From)
		rep = ReplyFromError(errors.New("no status"))
	}
	if drop := b.opts.DropRelayReply; drop != nil && drop(cmd.Op) {
		b.log.Debug("dropping a relay reply (fault injection)", "op", cmd.Op, "from", cmd.From, "status", rep.Status)
		return
	}
	b.respondRelay(m, rep)
}

func (b *Bus) respondRelay(m *nats.Msg, rep Reply) {
	if m.Reply == "" {
		return
	}
	if err := m.Respond(appendReply(nil, &rep)); err != nil {
		b.log.Debug("answering relay", "err", err)
	}
}

// Wire encoding; see the package doc.

const (
	commandVersion   = 1
	replyVersion     = 3      // 2 added the code, 3 the fate and list fields; a node that reads another version rejects the reply as corrupt
	flagTimer        = 1 << 0 // the first timer of the list is Command.Timer
	flagRelative     = 1 << 1 // Command.Timer is relative (skyring.Timer.Relative); only with flagTimer
	flagResend       = 1 << 2 // Command.Resend
	flagProbe        = 1 << 3 // Command.Probe
	flagFilter       = 1 << 4 // a list or cancel_many command carries DueAfter, DueBefore, Prefix and Host
	commandHeaderMax = 3 + 4*wire.MaxVarintLen
)

var errCorrupt = errors.New("bus: corrupt relay message")

func timerSize(t *skyring.Timer) int {
	return 1 + 6*wire.MaxLenPrefix + 2*wire.MaxVarintLen + len(t.ID) + len(t.Data) +
		len(t.Callback.Transport) + len(t.Callback.Method) + len(t.Callback.URI)
}

func commandSize(cmd *Command) int {
	n := commandHeaderMax + len(cmd.From) + len(cmd.ID) + len(cmd.State) + len(cmd.Prefix) + len(cmd.Host) + 2*wire.MaxVarintLen
	if cmd.Timer != nil {
		n += 4 + timerSize(cmd.Timer)
	}
	for _, t := range cmd.Timers {
		n += 4 + timerSize(t)
	}
	return n
}

func appendCommand(b []byte, cmd *Command, timeoutMs int64) []byte {
	var flags byte
	n := len(cmd.Timers)
	if cmd.Timer != nil {
		flags |= flagTimer
		if cmd.Timer.Relative {
			flags |= flagRelative
		}
		n++
	}
	if cmd.Resend {
		flags |= flagResend
	}
	if cmd.Probe {
		flags |= flagProbe
	}
	// An unfiltered list encodes as before filters existed, so that a
	// node of an older build reads it.
	filtered := cmd.hasFilter() && (cmd.DueAfter != 0 || cmd.DueBefore != 0 || cmd.Prefix != "" || cmd.Host != "")
	if filtered {
		flags |= flagFilter
	}
	b = append(b, commandVersion, byte(cmd.Op), flags)
	b = wire.AppendUvarint(b, uint64(timeoutMs))
	b = wire.AppendString(b, cmd.From)
	b = wire.AppendString(b, cmd.ID)
	if cmd.hasFilter() {
		b = wire.AppendString(b, cmd.State)
		b = wire.AppendUvarint(b, uint64(max(cmd.Limit, 0)))
		if filtered {
			b = wire.AppendVarint(b, cmd.DueAfter)
			b = wire.AppendVarint(b, cmd.DueBefore)
			b = wire.AppendString(b, cmd.Prefix)
			b = wire.AppendString(b, cmd.Host)
		}
	}
	if cmd.Op == OpHandoff {
		b = wire.AppendUvarint(b, cmd.Ring)
	}
	b = wire.AppendUvarint(b, uint64(n))
	if cmd.Timer != nil {
		b = appendTimer(b, cmd.Timer)
	}
	for _, t := range cmd.Timers {
		b = appendTimer(b, t)
	}
	return b
}

// appendTimer appends a big-endian uint32 length, then the timer's binary
// encoding.
func appendTimer(b []byte, t *skyring.Timer) []byte {
	b, at := wire.BeginLen32(b)
	b, _ = t.AppendBinary(b) // never fails
	wire.EndLen32(b, at)
	return b
}

func decodeCommand(data []byte) (cmd Command, timeoutMs int64, err error) {
	if len(data) < 3 || data[0] != commandVersion {
		return Command{}, 0, fmt.Errorf("%w: unknown version", errCorrupt)
	}
	cmd.Op = Op(data[1])
	flags := data[2]
	r := wire.NewReader(data[3:])
	timeoutMs = int64(r.Uvarint())
	from, id := r.Field(), r.Field()
	if cmd.hasFilter() {
		state, limit := r.Field(), r.Uvarint()
		if limit > 1<<20 {
			return Command{}, 0, fmt.Errorf("%w: bad limit", errCorrupt)
		}
		cmd.State, cmd.Limit = string(state), int(limit)
		if flags&flagFilter != 0 {
			cmd.DueAfter, cmd.DueBefore = r.Varint(), r.Varint()
			prefix, host := r.Field(), r.Field()
			cmd.Prefix, cmd.Host = string(prefix), string(host)
		}
	} else if flags&flagFilter != 0 {
		return Command{}, 0, fmt.Errorf("%w: filter flag on a %s command", errCorrupt, cmd.Op)
	}
	if cmd.Op == OpHandoff {
		cmd.Ring = r.Uvarint()
	}
	n := r.Uvarint()
	if err := r.Err(); err != nil {
		return Command{}, 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if timeoutMs < 0 {
		return Command{}, 0, fmt.Errorf("%w: bad timeout", errCorrupt)
	}
	if len(from) > 0 {
		cmd.From = string(from)
	}
	if len(id) > 0 {
		cmd.ID = string(id)
	}
	if n > uint64(r.Len()/5) { // each timer takes at least 5 bytes
		return Command{}, 0, fmt.Errorf("%w: bad timer count", errCorrupt)
	}
	timers := make([]*skyring.Timer, n)
	for i := range timers {
		rec := r.Next(uint64(r.Uint32()))
		if err := r.Err(); err != nil {
			return Command{}, 0, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		t := new(skyring.Timer)
		if err := t.UnmarshalBinary(rec); err != nil {
			return Command{}, 0, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		timers[i] = t
	}
	if err := r.Done(); err != nil {
		return Command{}, 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if flags&flagTimer != 0 {
		if len(timers) == 0 {
			return Command{}, 0, fmt.Errorf("%w: missing timer", errCorrupt)
		}
		cmd.Timer, timers = timers[0], timers[1:]
		cmd.Timer.Relative = flags&flagRelative != 0
	} else if flags&flagRelative != 0 {
		return Command{}, 0, fmt.Errorf("%w: relative flag without a timer", errCorrupt)
	}
	if len(timers) > 0 {
		cmd.Timers = timers
	}
	cmd.Resend = flags&flagResend != 0
	cmd.Probe = flags&flagProbe != 0
	return cmd, timeoutMs, nil
}

func appendReply(b []byte, r *Reply) []byte {
	b = append(b, replyVersion)
	b = wire.AppendUvarint(b, uint64(r.Status))
	b = append(b, byte(r.Code))
	b = wire.AppendString(b, r.Reason)
	if r.Info == nil {
		b = append(b, 0)
	} else {
		i := r.Info
		b = append(b, 1)
		b = wire.AppendString(b, i.ID)
		b = wire.AppendVarint(b, i.Timeout)
		b = wire.AppendBytes(b, i.Data)
		b = wire.AppendString(b, i.Callback.Transport)
		b = wire.AppendString(b, i.Callback.Method)
		b = wire.AppendString(b, i.Callback.URI)
		b = wire.AppendVarint(b, i.Created)
		b = wire.AppendVarint(b, i.Due)
		b = wire.AppendString(b, i.Node)
		rp := i.Callback.Retry
		b = wire.AppendUvarint(b, uint64(max(rp.Attempts, 0)))
		b = wire.AppendVarint(b, rp.MinBackoff)
		b = wire.AppendVarint(b, rp.MaxBackoff)
		b = wire.AppendString(b, i.State)
		b = wire.AppendUvarint(b, uint64(max(i.Attempts, 0)))
		b = wire.AppendVarint(b, i.NextAttempt)
		b = wire.AppendString(b, i.LastError)
		b = wire.AppendUvarint(b, uint64(max(i.LastStatus, 0)))
		b = wire.AppendVarint(b, i.DeliveredAt)
		b = wire.AppendVarint(b, i.FinishedAt)
	}
	b = wire.AppendUvarint(b, uint64(len(r.Timers)))
	for _, t := range r.Timers {
		b = appendTimer(b, t)
	}
	b = wire.AppendString(b, r.Cursor)
	if r.More {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = wire.AppendUvarint(b, uint64(len(r.Acked)))
	for _, id := range r.Acked {
		b = wire.AppendString(b, id)
	}
	return b
}

// decodeReply reads from one string, so the strings of the reply share a
// single allocation.
func decodeReply(data []byte) (Reply, error) {
	if len(data) < 1 || data[0] != replyVersion {
		return Reply{}, fmt.Errorf("%w: unknown version", errCorrupt)
	}
	d := wire.NewReader(string(data[1:]))
	var r Reply
	status := d.Uvarint()
	if status > 999 {
		return Reply{}, fmt.Errorf("%w: bad status", errCorrupt)
	}
	r.Status = int(status)
	r.Code = skyring.Code(d.Byte())
	r.Reason = d.Field()
	switch d.Byte() {
	case 0:
	case 1:
		r.Info = decodeInfo(&d)
	default:
		if d.Err() == nil {
			return Reply{}, fmt.Errorf("%w: bad info flag", errCorrupt)
		}
	}
	n := d.Uvarint()
	if n > uint64(d.Len()/5) { // each timer takes at least 5 bytes
		return Reply{}, fmt.Errorf("%w: bad timer count", errCorrupt)
	}
	for range n {
		rec := d.Next(uint64(d.Uint32()))
		if err := d.Err(); err != nil {
			return Reply{}, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		t := new(skyring.Timer)
		if err := t.UnmarshalBinary([]byte(rec)); err != nil {
			return Reply{}, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		r.Timers = append(r.Timers, t)
	}
	r.Cursor = d.Field()
	r.More = d.Byte() == 1
	acked := d.Uvarint()
	if acked > uint64(d.Len()) { // each id takes at least 1 byte
		return Reply{}, fmt.Errorf("%w: bad acked count", errCorrupt)
	}
	for range acked {
		r.Acked = append(r.Acked, d.Field())
	}
	if err := d.Done(); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return r, nil
}

// decodeInfo reads an Info that appendReply wrote; errors stay in d.
func decodeInfo(d *wire.Reader[string]) *skyring.Info {
	const maxInt = 1<<31 - 1
	i := new(skyring.Info)
	i.ID = d.Field()
	i.Timeout = d.Varint()
	if data := d.Field(); data != "" {
		i.Data = []byte(data)
	}
	i.Callback.Transport = d.Field()
	i.Callback.Method = d.Field()
	i.Callback.URI = d.Field()
	i.Created = d.Varint()
	i.Due = d.Varint()
	i.Node = d.Field()
	i.Callback.Retry.Attempts = int(min(d.Uvarint(), maxInt))
	i.Callback.Retry.MinBackoff = d.Varint()
	i.Callback.Retry.MaxBackoff = d.Varint()
	i.State = d.Field()
	i.Attempts = int(min(d.Uvarint(), maxInt))
	i.NextAttempt = d.Varint()
	i.LastError = d.Field()
	i.LastStatus = int(min(d.Uvarint(), maxInt))
	i.DeliveredAt = d.Varint()
	i.FinishedAt = d.Varint()
	return i
}
